import NIOSSL

/// How the gateway reaches Redis for shared state (`state: { backend: redis, ... }`).
/// Secrets arrive resolved: the config layer turns `password: env:NAME` into bytes.
struct RedisStoreSettings: Sendable {
    /// The server's host name or IP address.
    var host: String
    var port: Int
    /// For `AUTH username password` (Redis 6 ACLs); nil sends `AUTH password`.
    var username: String?
    /// Sent with `AUTH` on every new connection; nil sends no `AUTH`.
    var password: [UInt8]?
    /// TLS to the server; nil is plain TCP.
    var tls: RedisTLSSettings?
    /// Prepended to every key, e.g. `gatehouse:`; lets several deployments share one Redis.
    var keyPrefix: String = "gatehouse:"
    /// The gateway's `environment`: instances share state only within one environment.
    var environment: String
    /// How long one command may wait for its reply (`state.timeout`).
    var timeout: Duration = .milliseconds(50)
    /// Connections in the pool, shared by every event loop.
    var connections: Int = 2
    /// Dial, TLS handshake and the connection's set-up commands (`AUTH`, `SCRIPT LOAD`).
    var connectTimeout: Duration = .seconds(1)
    /// Commands in flight per connection; beyond it a command fails at once.
    var maxPendingCommandsPerConnection: Int = 4096
    /// Reconnect delays: the first, doubled per failed attempt up to the maximum, jittered.
    /// The maximum is 1 s so service comes back within about a second of Redis.
    var reconnectBackoff: (initial: Duration, maximum: Duration) = (.milliseconds(50), .seconds(1))

    init(host: String, port: Int, environment: String) {
        self.host = host
        self.port = port
        self.environment = environment
    }

    /// What is wrong with these settings, as messages naming the `state` key; empty when usable.
    /// `RedisStateStore` refuses settings with problems.
    var problems: [String] {
        var problems: [String] = []
        if host.isEmpty { problems.append("state.address: the host is empty") }
        if !(1...65535).contains(port) { problems.append("state.address: port \(port) is not 1...65535") }
        // A brace would move the Redis Cluster hash tag off the per-key part.
        if keyPrefix.contains(where: { $0 == "{" || $0 == "}" }) { problems.append("state.key_prefix: must not contain { or }") }
        if environment.contains(where: { $0 == "{" || $0 == "}" }) { problems.append("environment: must not contain { or } (it is part of Redis keys)") }
        if timeout <= .zero { problems.append("state.timeout: must be more than 0") }
        if connectTimeout <= .zero { problems.append("state.connect_timeout: must be more than 0") }
        if !(1...64).contains(connections) { problems.append("state.connections: \(connections) is not 1...64") }
        if maxPendingCommandsPerConnection < 1 { problems.append("state.max_pending: must be at least 1") }
        if reconnectBackoff.initial <= .zero || reconnectBackoff.maximum < reconnectBackoff.initial {
            problems.append("state.reconnect_backoff: needs 0 < initial <= maximum")
        }
        return problems
    }

    /// `host:port`, `[v6]:port`; the port defaults to 6379.
    static func parseAddress(_ address: String) -> (host: String, port: Int)? {
        var host = Substring(address)
        var port = 6379
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return nil }
            let rest = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let value = Int(rest.dropFirst()) else { return nil }
                port = value
            }
        } else if let colon = host.lastIndex(of: ":") {
            guard let value = Int(host[host.index(after: colon)...]) else { return nil }
            port = value
            host = host[..<colon]
        }
        guard !host.isEmpty, (1...65535).contains(port) else { return nil }
        return (String(host), port)
    }
}

/// TLS toward Redis: whom to trust, the name to expect, and an optional client certificate.
struct RedisTLSSettings: Sendable {
    enum Roots: Sendable {
        /// The system's trust store.
        case system
        /// Only these CA certificates (e.g. from a `ca` file).
        case certificates([NIOSSLCertificate])
    }

    var roots: Roots = .system
    /// The name the server's certificate must carry (and the SNI); nil uses `host`.
    var serverName: String?
    /// A client certificate chain and its key, for servers with `tls-auth-clients yes`.
    var certificateChain: [NIOSSLCertificate] = []
    var privateKey: NIOSSLPrivateKey?

    init(roots: Roots = .system, serverName: String? = nil) {
        self.roots = roots
        self.serverName = serverName
    }

    /// The client context, built once when the store is created (never on an event loop).
    func makeContext() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        // The chain is verified by BoringSSL; the name by `RedisTLSHandshakeHandler`.
        configuration.certificateVerification = .noHostnameVerification
        switch roots {
        case .system: configuration.trustRoots = .default
        case .certificates(let certificates): configuration.trustRoots = .certificates(certificates)
        }
        if let privateKey {
            configuration.certificateChain = certificateChain.map { .certificate($0) }
            configuration.privateKey = .privateKey(privateKey)
        }
        return try NIOSSLContext(configuration: configuration)
    }
}
