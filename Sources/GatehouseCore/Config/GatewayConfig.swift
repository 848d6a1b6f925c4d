/// The decoded and validated configuration file. Plain values, no behaviour: the loader
/// builds it, `GatewaySnapshot` compiles it for the data path.
public struct GatewayConfig: Sendable, Equatable {
    /// Free-form environment name (`prod`, `staging`, ...). Required: it scopes secrets and state.
    public var environment: String
    public var listeners: [ListenerConfig]
    public var admin: AdminConfig
    /// SPIFFE trust domains and their CA bundles, in file order.
    public var trustDomains: [TrustDomainConfig]
    /// Token issuers, in file order.
    public var issuers: [IssuerConfig] = []
    /// The gateway's own token issuer, for routes with `token.upstream: mint`.
    public var tokenMinting: TokenMintingConfig?
    public var state = StateConfig()
    /// Upstreams in file order.
    public var upstreams: [UpstreamConfig]
    /// Routes in file order.
    public var routes: [RouteConfig]
    public var decisionLog: DecisionLogConfig
    /// The file this was loaded from.
    public var sourceFile: String
    /// Hex SHA-256 of the file bytes.
    public var version: String
    /// The top-level `version`, when the file names its policy (e.g. `v42`).
    public var declaredVersion: String?
    /// A candidate policy being rolled out beside this one.
    public var rollout: RolloutConfig?

    /// The policy version in decision records and metrics: the declared one, else the first
    /// 12 hex digits of the file's SHA-256.
    public var policyVersion: String { declaredVersion ?? String(version.prefix(12)) }

    public init(
        environment: String, listeners: [ListenerConfig], admin: AdminConfig, trustDomains: [TrustDomainConfig] = [],
        upstreams: [UpstreamConfig], routes: [RouteConfig], decisionLog: DecisionLogConfig,
        sourceFile: String, version: String
    ) {
        self.environment = environment
        self.listeners = listeners
        self.admin = admin
        self.trustDomains = trustDomains
        self.upstreams = upstreams
        self.routes = routes
        self.decisionLog = decisionLog
        self.sourceFile = sourceFile
        self.version = version
    }
}

/// `host:port`; host is an IP literal or a name. IPv6 literals are written `[::1]:8443`.
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A secret is never inline in the file: `env:NAME` or `file:/path`.
public enum SecretReference: Sendable, Hashable, CustomStringConvertible {
    case environment(String)
    case file(String)

    public var description: String {
        switch self {
        case .environment(let name): return "env:\(name)"
        case .file(let path): return "file:\(path)"
        }
    }
}

public enum TLSMinimumVersion: String, Sendable, Hashable {
    case v1_2 = "1.2"
    case v1_3 = "1.3"
}

/// `trust_domains.NAME`: a SPIFFE trust domain and the CA certificates that vouch for its IDs.
public struct TrustDomainConfig: Sendable, Equatable {
    /// The trust domain name, e.g. `prod.example`.
    public var name: String
    /// PEM file of the trust domain's CA certificates (re-read when it changes).
    public var bundlePath: String
    public var location: SourceLocation
    /// Where `bundle:` is written, for errors about the file.
    public var bundleLocation: SourceLocation
    public init(name: String, bundlePath: String, location: SourceLocation, bundleLocation: SourceLocation? = nil) {
        self.name = name
        self.bundlePath = bundlePath
        self.location = location
        self.bundleLocation = bundleLocation ?? location
    }
}

/// Whether a listener asks clients for a certificate (an X.509-SVID).
public enum ClientCertificateMode: String, Sendable, Hashable, CaseIterable {
    /// No certificate is requested.
    case none
    /// A certificate is requested; one that is presented must verify. Routes with `peers` deny
    /// a connection without one (`peer.missing`).
    case optional
    /// The handshake fails without a valid certificate (`tls.no_client_cert`).
    case required
}

public struct ListenerTLSConfig: Sendable, Equatable {
    /// Path to the PEM certificate chain (leaf first). Not a secret.
    public var certificatePath: String
    /// The PEM private key, by reference.
    public var privateKey: SecretReference
    public var minimumVersion: TLSMinimumVersion
    public var clientCertificates: ClientCertificateMode
    public init(
        certificatePath: String, privateKey: SecretReference, minimumVersion: TLSMinimumVersion = .v1_2,
        clientCertificates: ClientCertificateMode = .none
    ) {
        self.certificatePath = certificatePath
        self.privateKey = privateKey
        self.minimumVersion = minimumVersion
        self.clientCertificates = clientCertificates
    }
}

/// Size limits enforced while the request is decoded, before any check runs.
public struct RequestLimits: Sendable, Equatable {
    public var maxHeaderBytes: Int = 32 * 1024
    public var maxHeaderCount: Int = 100
    public var maxURIBytes: Int = 8 * 1024
    public var maxBodyBytes: Int = 10 * 1024 * 1024
    public init() {}
}

public struct ListenerTimeouts: Sendable, Equatable {
    /// Time a client has to finish the TLS handshake.
    public var handshake: Duration = .seconds(10)
    /// Time a client has to send a complete request head once it started one.
    public var headerRead: Duration = .seconds(10)
    /// Time a keep-alive connection may sit with no request in progress.
    public var idle: Duration = .seconds(60)
    /// Time in-flight exchanges get to finish on shutdown.
    public var drain: Duration = .seconds(15)
    public init() {}
}

/// An IPv4 or IPv6 network in CIDR form.
public struct CIDR: Sendable, Hashable, CustomStringConvertible {
    /// 4 bytes for IPv4, 16 for IPv6.
    public var address: [UInt8]
    public var prefixLength: Int
    public init(address: [UInt8], prefixLength: Int) {
        self.address = address
        self.prefixLength = prefixLength
    }

    public func contains(_ ip: [UInt8]) -> Bool {
        guard ip.count == address.count else { return false }
        var remaining = prefixLength
        var index = 0
        while remaining > 0 {
            let bits = min(8, remaining)
            let mask: UInt8 = bits == 8 ? 0xFF : ~(0xFF >> UInt8(bits))
            if ip[index] & mask != address[index] & mask { return false }
            remaining -= bits
            index += 1
        }
        return true
    }

    public var description: String {
        if address.count == 4 {
            return address.map(String.init).joined(separator: ".") + "/\(prefixLength)"
        }
        var groups: [String] = []
        for i in stride(from: 0, to: 16, by: 2) {
            groups.append(String(UInt16(address[i]) << 8 | UInt16(address[i + 1]), radix: 16))
        }
        return groups.joined(separator: ":") + "/\(prefixLength)"
    }
}

public struct ListenerConfig: Sendable, Equatable {
    public var name: String
    public var address: HostPort
    /// nil only when `insecurePlaintext` is true (the loader enforces it).
    public var tls: ListenerTLSConfig?
    public var insecurePlaintext: Bool
    /// Direct clients whose X-Forwarded-For / X-Request-Id / traceparent are trusted.
    public var trustedProxies: [CIDR]
    public var limits: RequestLimits
    public var timeouts: ListenerTimeouts
    public var maxConnections: Int
    /// Collapse `//` into `/` during normalisation.
    public var mergeSlashes: Bool
    /// Put the reason code in error responses (for staging; off by default).
    public var exposeReason: Bool
    public var location: SourceLocation

    public init(
        name: String, address: HostPort, tls: ListenerTLSConfig?, insecurePlaintext: Bool = false,
        trustedProxies: [CIDR] = [], limits: RequestLimits = .init(), timeouts: ListenerTimeouts = .init(),
        maxConnections: Int = 10_000, mergeSlashes: Bool = false, exposeReason: Bool = false,
        location: SourceLocation
    ) {
        self.name = name
        self.address = address
        self.tls = tls
        self.insecurePlaintext = insecurePlaintext
        self.trustedProxies = trustedProxies
        self.limits = limits
        self.timeouts = timeouts
        self.maxConnections = maxConnections
        self.mergeSlashes = mergeSlashes
        self.exposeReason = exposeReason
        self.location = location
    }
}

public struct AdminConfig: Sendable, Equatable {
    /// Loopback by default; `nil` disables the admin listener.
    public var address: HostPort?
    /// The bearer token the mutating admin endpoints require; without it they are disabled.
    public var token: SecretReference?
    /// Where `token` is written, for errors about it.
    public var tokenLocation: SourceLocation?
    public init(address: HostPort? = HostPort(host: "127.0.0.1", port: 9901), token: SecretReference? = nil) {
        self.address = address
        self.token = token
    }
}

public struct UpstreamPoolConfig: Sendable, Equatable {
    /// Idle keep-alive connections kept per event loop.
    public var maxIdlePerLoop: Int = 64
    /// Open connections (idle + busy) per event loop; requests beyond wait in a bounded queue.
    public var maxConnectionsPerLoop: Int = 1024
    /// Requests that may wait for a connection per event loop before 503.
    public var maxPendingPerLoop: Int = 1024
    /// An idle pooled connection is closed after this long.
    public var idleTimeout: Duration = .seconds(60)
    public init() {}
}

public struct EjectionConfig: Sendable, Equatable {
    /// Consecutive connect failures that eject an endpoint.
    public var consecutiveFailures: Int = 5
    /// How long an ejected endpoint is skipped.
    public var duration: Duration = .seconds(30)
    public init() {}
}

/// `upstreams.NAME.tls`: the hop to the upstream is TLS, and its certificate is verified.
public struct UpstreamTLSConfig: Sendable, Equatable {
    /// Where the roots that verify the upstream's chain come from.
    public enum Roots: Sendable, Equatable {
        /// A PEM file of CA certificates.
        case caFile(String)
        /// The bundle of a configured SPIFFE trust domain.
        case trustDomain(String)
    }
    public var roots: Roots
    /// SNI and, without `spiffeIDs`, the name the certificate must carry. Defaults to the endpoint host.
    public var serverName: String?
    /// The gateway's own client certificate (its SVID) and key, for upstream mTLS.
    public var certificatePath: String?
    public var privateKey: SecretReference?
    /// The SPIFFE IDs the upstream may present; when set, they replace host-name verification.
    public var spiffeIDs: [SPIFFEID]
    public init(
        roots: Roots, serverName: String? = nil, certificatePath: String? = nil, privateKey: SecretReference? = nil,
        spiffeIDs: [SPIFFEID] = []
    ) {
        self.roots = roots
        self.serverName = serverName
        self.certificatePath = certificatePath
        self.privateKey = privateKey
        self.spiffeIDs = spiffeIDs
    }
}

public struct UpstreamConfig: Sendable, Equatable {
    public var name: String
    public var endpoints: [HostPort]
    /// nil: plaintext HTTP/1.1 to the upstream.
    public var tls: UpstreamTLSConfig?
    public var connectTimeout: Duration = .seconds(2)
    /// Longest the upstream may stay silent while a response is due (head or next body bytes).
    public var responseTimeout: Duration = .seconds(30)
    public var pool: UpstreamPoolConfig = .init()
    public var ejection: EjectionConfig = .init()
    public var location: SourceLocation

    public init(name: String, endpoints: [HostPort], location: SourceLocation) {
        self.name = name
        self.endpoints = endpoints
        self.location = location
    }
}

public enum PathMatch: Sendable, Hashable {
    /// Matches at segment boundaries: `/billing` matches `/billing` and `/billing/x`, not `/billingx`.
    case prefix(String)
    case exact(String)
}

public struct RouteMatch: Sendable, Equatable {
    /// Lowercased host without port; nil matches any host.
    public var host: String?
    public var path: PathMatch
    /// Uppercased methods; nil matches any method. Never empty (the loader rejects `[]`).
    public var methods: Set<String>?
    public init(host: String? = nil, path: PathMatch, methods: Set<String>? = nil) {
        self.host = host
        self.path = path
        self.methods = methods
    }
}

/// What the upstream is told about the verified client certificate (`forward_client_cert`).
/// Whatever the mode, copies sent by a client that is not a trusted proxy are removed first.
public enum ForwardClientCertMode: String, Sendable, Hashable, CaseIterable {
    /// Send no identity headers at all.
    case sanitize
    /// Replace: `X-Forwarded-Client-Cert` and `X-Gatehouse-Peer-Id` describe this connection's peer.
    case set
    /// Like `set`, but an `X-Forwarded-Client-Cert` from a trusted proxy is kept and this hop's
    /// element appended to it.
    case append
}

public struct RouteConfig: Sendable, Equatable {
    public var name: String
    public var match: RouteMatch
    /// Name of an entry in `upstreams`.
    public var upstream: String
    /// Overrides the listener's body limit for this route. For a webhook route, its `webhook.max_body`.
    public var maxBodyBytes: Int?
    /// The workloads that may call this route. nil: the route does not look at peers;
    /// an empty policy allows nobody.
    public var peers: PeerPolicy?
    /// `peers: { allow: [...], mode: shadow }`: evaluated and recorded, never denies.
    public var peersMode: CheckMode = .enforce
    /// nil when the route does not look at bearer tokens.
    public var token: RouteTokenConfig?
    /// nil when the route is not rate-limited.
    public var rateLimit: RateLimitConfig?
    /// nil when the route does not verify webhook signatures.
    public var webhook: RouteWebhookConfig?
    public var forwardClientCert: ForwardClientCertMode
    public var location: SourceLocation

    public init(
        name: String, match: RouteMatch, upstream: String, maxBodyBytes: Int? = nil, peers: PeerPolicy? = nil,
        forwardClientCert: ForwardClientCertMode = .set, location: SourceLocation
    ) {
        self.name = name
        self.match = match
        self.upstream = upstream
        self.maxBodyBytes = maxBodyBytes
        self.peers = peers
        self.forwardClientCert = forwardClientCert
        self.location = location
    }
}

/// `state`: the store of replay keys (token `jti`, webhook deliveries) and rate cells.
public struct StateConfig: Sendable, Equatable {
    /// Entries each in-memory store holds at most (about 32 bytes each, reserved up front and
    /// resident as used); when full, new keys are refused with 503 `state.unavailable`.
    public var maxEntries = 1_000_000
    /// Set for `backend: redis`: every instance pointing at the same Redis shares the state.
    public var redis: RedisConfig?
    public init() {}
}

/// `state` with `backend: redis`.
public struct RedisConfig: Sendable, Equatable {
    public var address: HostPort
    public var password: SecretReference?
    /// TLS to Redis; nil: plaintext (loopback or a trusted network only).
    public var tls: RedisTLSConfig?
    /// Put before every key, then the environment, so several deployments can share a Redis.
    public var keyPrefix = "gatehouse:"
    /// Longest wait for one answer; then the check's failure policy decides.
    public var timeout: Duration = .milliseconds(50)
    /// Connections kept open to Redis (commands are pipelined on them).
    public var connections = 2
    public var location: SourceLocation

    public init(address: HostPort, location: SourceLocation) {
        self.address = address
        self.location = location
    }
}

public struct RedisTLSConfig: Sendable, Equatable {
    /// PEM CA certificates; nil: the system roots.
    public var caFile: String?
    /// The name the server's certificate must carry; default the address's host.
    public var serverName: String?
    public var certificatePath: String?
    public var privateKey: SecretReference?
    public init() {}
}

public struct DecisionLogConfig: Sendable, Equatable {
    /// `-` for stdout, else a file path (appended to, reopened on SIGHUP).
    public var path: String = "-"
    /// Records that may wait for the writer; beyond it records are counted as dropped and reported on stderr.
    public var queueCapacity: Int = 65_536
    public init(path: String = "-") { self.path = path }
}

/// A claim value a token must carry exactly (`required_claims`, route `claims`).
public enum ClaimValue: Sendable, Hashable, CustomStringConvertible {
    case string(String)
    case int(Int)
    case bool(Bool)

    public var description: String {
        switch self {
        case .string(let value): return value
        case .int(let value): return String(value)
        case .bool(let value): return String(value)
        }
    }
}

/// `issuers.NAME`: who may issue the bearer tokens routes accept, and how to check them.
public struct IssuerConfig: Sendable, Equatable {
    public var name: String
    /// The exact `iss` value.
    public var issuer: String
    /// A JWKS document on disk.
    public var jwksFile: String?
    /// A JWKS document fetched in the background; with `jwksFile`, both sets serve.
    public var jwksEndpoint: JWKSEndpointConfig?
    /// Accepted `aud` values; never empty.
    public var audiences: [String]
    /// Allowed `alg` values; nil: the asymmetric family of the keys in the set.
    public var algorithms: [String]?
    /// The HMAC secret of an issuer that signs with HS256, by reference.
    public var hmacSecret: SecretReference?
    public var clockSkew: Duration = .seconds(30)
    /// Longest lifetime (`exp - iat`, or remaining life) a token may have.
    public var maxLifetime: Duration?
    /// Claims every token of this issuer must carry with exactly these values.
    public var requiredClaims: [String: ClaimValue] = [:]
    /// A file of revoked `jti:` and `sub:` values, re-read when it changes.
    public var revokedFile: String?
    public var location: SourceLocation

    public init(name: String, issuer: String, jwksFile: String?, audiences: [String], location: SourceLocation) {
        self.name = name
        self.issuer = issuer
        self.jwksFile = jwksFile
        self.audiences = audiences
        self.location = location
    }
}

/// `https://host:port/target`, already checked by the loader.
public struct HTTPSURL: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    /// Path and query, starting with `/`.
    public var target: String

    public init(host: String, port: Int, target: String) {
        self.host = host
        self.port = port
        self.target = target
    }

    public var description: String {
        let hostText = host.contains(":") ? "[\(host)]" : host
        return "https://\(hostText)" + (port == 443 ? "" : ":\(port)") + target
    }
}

/// `issuers.NAME.jwks_uri` and how the gateway keeps the fetched key set fresh.
public struct JWKSEndpointConfig: Sendable, Equatable {
    public var url: HTTPSURL
    /// PEM CA certificates the endpoint's certificate must chain to; nil: the system roots.
    public var caFile: String?
    /// Longest time between fetches; a shorter `Cache-Control: max-age` wins (never below 30 s).
    public var refreshInterval: Duration = .seconds(300)
    /// How long the last fetched set keeps serving while the endpoint fails; then tokens of
    /// this issuer are refused with `token.keys_unavailable`.
    public var staleFor: Duration = .seconds(3600)

    public init(url: HTTPSURL, caFile: String? = nil) {
        self.url = url
        self.caFile = caFile
    }
}

/// Where a route finds the bearer token.
public enum TokenSource: Sendable, Hashable {
    /// `Authorization: Bearer <token>`.
    case authorizationBearer
    /// The whole value of a named header (lowercased).
    case header(String)
}

/// `routes[].token`: the bearer token a request must present.
public struct RouteTokenConfig: Sendable, Equatable {
    /// Names of entries of `issuers`; a token from any of them is accepted.
    public var issuers: [String]
    /// Every one is required, from `scope` (space-separated) or `scp` (a list).
    public var scopes: [String] = []
    public var claims: [String: ClaimValue] = [:]
    public var source: TokenSource = .authorizationBearer
    /// `mtls`: the token must be bound to the connection's client certificate (RFC 8705).
    public var bindToClientCertificate = false
    /// Remove the token from the request before it goes upstream.
    public var stripUpstream = false
    /// `replay: jti`: each token id is accepted once, until the token expires.
    public var rejectReplay = false
    /// `upstream: mint`: the upstream gets a short-lived token minted by the gateway instead.
    public var mintUpstream = false
    /// Verified claims forwarded as headers: claim name to header name (lowercased).
    public var claimsToHeaders: [String: String] = [:]
    public var mode: CheckMode = .enforce
    public var location: SourceLocation

    public init(issuers: [String], location: SourceLocation) {
        self.issuers = issuers
        self.location = location
    }
}

/// `token_minting`: the gateway as a token issuer for the next hop (ES256).
public struct TokenMintingConfig: Sendable, Equatable {
    /// `iss` of minted tokens.
    public var issuer: String
    /// The PEM P-256 (ES256) or Ed25519 (EdDSA) private key, by reference.
    public var privateKey: SecretReference
    /// Lifetime of a minted token (default 60 s, at most 5 min).
    public var lifetime: Duration = .seconds(60)
    public var location: SourceLocation
    public init(issuer: String, privateKey: SecretReference, location: SourceLocation) {
        self.issuer = issuer
        self.privateKey = privateKey
        self.location = location
    }
}
