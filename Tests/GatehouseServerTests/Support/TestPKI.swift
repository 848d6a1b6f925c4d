import Foundation

/// CAs, a localhost server certificate and client X.509-SVIDs made with the `openssl`
/// command line, so the TLS and identity paths are tested against certificates the gateway
/// did not make itself.
///
/// `ca.pem` is the CA of trust domain `prod.example` (it also signs the server certificate),
/// `staging-ca.pem` that of `staging.example`, `other-ca.pem` a CA nothing trusts.
enum TestPKI {
    struct Files {
        let directory: String
        var caCertificate: String { directory + "/ca.pem" }
        var stagingCACertificate: String { directory + "/staging-ca.pem" }
        var otherCACertificate: String { directory + "/other-ca.pem" }
        var serverCertificate: String { directory + "/server.pem" }
        var serverKey: String { directory + "/server.key" }
        /// `(certificate, key)` of a client certificate made by `make()`.
        func client(_ name: Client) -> (certificate: String, key: String) {
            (directory + "/\(name.rawValue).pem", directory + "/\(name.rawValue).key")
        }
    }

    /// The client certificates, by what is special about them.
    enum Client: String, CaseIterable {
        /// spiffe://prod.example/ns/pay/sa/checkout, signed by prod's CA.
        case prodCheckout = "prod-checkout"
        /// spiffe://prod.example/ns/pay/sa/sidecar: another workload in the same trust domain.
        case prodSidecar = "prod-sidecar"
        /// spiffe://staging.example/ns/pay/sa/checkout, signed by staging's CA.
        case stagingCheckout = "staging-checkout"
        /// Claims a staging ID but is signed by prod's CA: must fail against staging's bundle.
        case stagingIDSignedByProd = "staging-id-signed-by-prod"
        /// spiffe://prod.example/ns/pay/sa/checkout signed by a CA nobody trusts.
        case untrusted = "untrusted"
        /// Two URI SANs.
        case twoURIs = "two-uris"
        /// A CA certificate (CA:TRUE, keyCertSign) with a SPIFFE URI SAN, used as a client cert.
        case caAsClient = "ca-as-client"
        /// Expired yesterday.
        case expired = "expired"
        /// No URI SAN at all, only a DNS name.
        case noURI = "no-uri"
    }

    static let checkoutID = "spiffe://prod.example/ns/pay/sa/checkout"
    static let sidecarID = "spiffe://prod.example/ns/pay/sa/sidecar"
    static let stagingCheckoutID = "spiffe://staging.example/ns/pay/sa/checkout"

    private static let made: Result<Files, Error> = Result { try make() }

    static func files() throws -> Files { try made.get() }

    private static func make() throws -> Files {
        let directory = TestScratch.path("pki")
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
            openssl ecparam -name prime256v1 -genkey -noout -out staging-ca.key
            openssl req -x509 -new -key staging-ca.key -sha256 -days 2 -subj '/CN=Gatehouse Test Staging CA' -out staging-ca.pem
            openssl ecparam -name prime256v1 -genkey -noout -out other-ca.key
            openssl req -x509 -new -key other-ca.key -sha256 -days 2 -subj '/CN=Gatehouse Test Other CA' -out other-ca.pem
            svid() {  # name, CA prefix, SAN, days, extra extensions
                openssl ecparam -name prime256v1 -genkey -noout -out "$1.key"
                openssl req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr"
                printf 'subjectAltName=%s\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nbasicConstraints=critical,CA:FALSE\n' "$3" > "$1.cnf"
                if [ -n "$5" ]; then printf "$5" > "$1.cnf"; fi
                openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days "$4" -sha256 -extfile "$1.cnf" -out "$1.pem" 2>/dev/null
            }
            svid prod-checkout ca 'URI:\(checkoutID)' 2 ''
            svid prod-sidecar ca 'URI:\(sidecarID)' 2 ''
            svid staging-checkout staging-ca 'URI:\(stagingCheckoutID)' 2 ''
            svid staging-id-signed-by-prod ca 'URI:\(stagingCheckoutID)' 2 ''
            svid untrusted other-ca 'URI:\(checkoutID)' 2 ''
            svid two-uris ca 'URI:\(checkoutID),URI:\(sidecarID)' 2 ''
            svid ca-as-client ca '' 2 'subjectAltName=URI:\(checkoutID)\nkeyUsage=critical,digitalSignature,keyCertSign,cRLSign\nbasicConstraints=critical,CA:TRUE\n'
            svid expired ca 'URI:\(checkoutID)' -1 ''
            svid no-uri ca 'DNS:checkout.prod.example' 2 ''
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
        return parse(result.stdout)
    }

    /// Parses the output of `curl -i`.
    static func parse(_ output: String) -> CurlResponse {
        // With -i, each response (including a 100 Continue) starts with a status line.
        var blocks = output.components(separatedBy: "\r\n\r\n")
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
