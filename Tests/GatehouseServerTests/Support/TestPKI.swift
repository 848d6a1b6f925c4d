import Foundation

/// A CA and a localhost server certificate made with the `openssl` command line, so the
/// TLS path is tested against certificates the gateway did not make itself.
enum TestPKI {
    struct Files {
        let directory: String
        var caCertificate: String { directory + "/ca.pem" }
        var serverCertificate: String { directory + "/server.pem" }
        var serverKey: String { directory + "/server.key" }
    }

    private static let made: Result<Files, Error> = Result { try make() }

    static func files() throws -> Files { try made.get() }

    private static func make() throws -> Files {
        let directory = NSTemporaryDirectory() + "gatehouse-testpki-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let script = """
            set -e
            cd '\(directory)'
            openssl ecparam -name prime256v1 -genkey -noout -out ca.key
            openssl req -x509 -new -key ca.key -sha256 -days 2 -subj '/CN=Gatehouse Test CA' -out ca.pem
            openssl ecparam -name prime256v1 -genkey -noout -out server.key
            openssl req -new -key server.key -subj '/CN=localhost' -out server.csr
            printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\nbasicConstraints=critical,CA:FALSE\\n' > ext.cnf
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -sha256 -extfile ext.cnf -out server.pem
            """
        let result = try Shell.run("/bin/sh", ["-c", script])
        guard result.status == 0 else {
            throw NSError(domain: "TestPKI", code: Int(result.status), userInfo: [NSLocalizedDescriptionKey: result.stderr])
        }
        return Files(directory: directory)
    }
}

enum Shell {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func run(_ executable: String, _ arguments: [String], stdin: Data? = nil) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let input = Pipe()
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(stdin) }
        try? input.fileHandleForWriting.close()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus,
            stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self)
        )
    }
}

/// curl as the client: the real thing users point at the gateway.
struct CurlResponse {
    var status: Int
    var headers: [(String, String)]
    var body: String

    func header(_ name: String) -> String? {
        headers.last { $0.0.lowercased() == name.lowercased() }?.1
    }

    static func run(_ arguments: [String], caFile: String?) throws -> CurlResponse {
        var args = ["-sS", "-i", "--max-time", "20"]
        if let caFile { args += ["--cacert", caFile] }
        let result = try Shell.run("/usr/bin/curl", args + arguments)
        guard result.status == 0 else {
            throw NSError(domain: "curl", code: Int(result.status), userInfo: [NSLocalizedDescriptionKey: result.stderr])
        }
        // With -i, each response (including a 100 Continue) starts with a status line.
        var blocks = result.stdout.components(separatedBy: "\r\n\r\n")
        var head = blocks.removeFirst()
        while head.hasPrefix("HTTP/1.1 100"), !blocks.isEmpty { head = blocks.removeFirst() }
        let body = blocks.joined(separator: "\r\n\r\n")
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        let headers = lines.compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        return CurlResponse(status: Int(statusLine[1]) ?? 0, headers: headers, body: body)
    }
}
