import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// A real `redis-server` of its own for a test: a free loopback port, no persistence, and
/// optionally a password or TLS. It is never skipped: when the binary is missing or the
/// server does not answer, `start` fails the test with what went wrong (`make test`
/// installs the `redis-server` package).
final class RedisServer {
    struct TLS {
        var certificate: String
        var key: String
        var caCertificate: String
        /// `tls-auth-clients`: whether clients must present a certificate.
        var requireClientCertificate = false
    }

    static let binary = "/usr/bin/redis-server"

    /// The plain-TCP port (also used to probe readiness when TLS is on).
    let port: Int
    /// The TLS port, when started with `tls`.
    let tlsPort: Int?
    let password: String?
    private let tls: TLS?
    private let extraArguments: [String]
    private let directory: String
    private var process: Process?

    /// Starts a server and waits (at most 10 s) until it answers PING. Fails the test and
    /// throws when it cannot.
    /// - Parameter extraArguments: more `redis-server` options, one word per element.
    static func start(
        password: String? = nil, tls: TLS? = nil, extraArguments: [String] = [], file: StaticString = #filePath, line: UInt = #line
    ) throws -> RedisServer {
        do {
            let server = try RedisServer(
                port: try freePort(), tlsPort: tls == nil ? nil : try freePort(), password: password, tls: tls, extraArguments: extraArguments)
            try server.launch()
            return server
        } catch {
            XCTFail("redis-server did not start, and these tests need a real one (apt-get install redis-server, or `make test`): \(error)", file: file, line: line)
            throw error
        }
    }

    private init(port: Int, tlsPort: Int?, password: String?, tls: TLS?, extraArguments: [String]) throws {
        self.extraArguments = extraArguments
        self.port = port
        self.tlsPort = tlsPort
        self.password = password
        self.tls = tls
        self.directory = NSTemporaryDirectory() + "gatehouse-redis-\(getpid())-\(port)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: directory)  // its log, and nothing else
    }

    /// Stops it (SIGTERM, then SIGKILL after 3 s); a later `restart()` uses the same port.
    func stop() {
        guard let process, process.isRunning else { return }
        process.terminate()
        if !Self.waitUntil(timeout: 3, { !process.isRunning }) {
            kill(process.processIdentifier, SIGKILL)
            _ = Self.waitUntil(timeout: 2, { !process.isRunning })
        }
        self.process = nil
    }

    /// Starts it again on the same port(s), after `stop()`.
    func restart() throws {
        stop()
        try launch()
    }

    private func launch() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw RedisServerError("\(Self.binary) is missing")
        }
        var arguments = [
            "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", directory, "--enable-debug-command", "local", "--daemonize", "no",
        ]
        if let password { arguments += ["--requirepass", password] }
        arguments += extraArguments
        if let tls, let tlsPort {
            arguments += [
                "--tls-port", String(tlsPort), "--tls-cert-file", tls.certificate, "--tls-key-file", tls.key,
                "--tls-ca-cert-file", tls.caCertificate, "--tls-auth-clients", tls.requireClientCertificate ? "yes" : "no",
            ]
        }
        let logPath = directory + "/redis.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = arguments
        process.standardOutput = log
        process.standardError = log
        try process.run()
        self.process = process
        let ready = Self.waitUntil(timeout: 10) { !process.isRunning || Self.answersPing(port: self.port) }
        guard ready, process.isRunning else {
            let output = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            stop()
            throw RedisServerError("redis-server on port \(port) did not answer PING within 10 s; its log:\n\(output.suffix(2000))")
        }
    }

    /// Sends a raw PING; the server is up when it answers (+PONG, or -NOAUTH with a password).
    private static func answersPing(port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = loopback(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return false }
        let ping = Array("PING\r\n".utf8)
        guard write(descriptor, ping, ping.count) == ping.count else { return false }
        var reply = [UInt8](repeating: 0, count: 64)
        let count = read(descriptor, &reply, reply.count)
        guard count > 0 else { return false }
        let text = String(decoding: reply[..<count], as: UTF8.self)
        return text.hasPrefix("+PONG") || text.hasPrefix("-NOAUTH")
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        return address
    }

    static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw RedisServerError("socket() failed") }
        defer { close(descriptor) }
        var address = loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) } }
        guard bound == 0 else { throw RedisServerError("bind() failed") }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Polls `condition` every 20 ms until it holds or `timeout` seconds pass.
    static func waitUntil(timeout: TimeInterval, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            usleep(20_000)
        }
        return condition()
    }
}

struct RedisServerError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
