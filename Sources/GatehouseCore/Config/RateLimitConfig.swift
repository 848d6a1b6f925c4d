/// One part of a rate-limit key. Every part but `header` comes from what the gateway
/// verified (or saw itself): a client cannot pick its own bucket.
public enum RateLimitKeyPart: Sendable, Hashable, CustomStringConvertible {
    /// The verified peer's SPIFFE ID (the route must check `peers`).
    case peer
    /// The verified token's `sub` (the route must check a `token`).
    case subject
    /// The verified token's `client_id` claim (the route must check a `token`).
    case clientID
    /// The client's address (the socket's, or the one trusted proxies forwarded).
    case ip
    /// A request header the operator names explicitly (lowercased): unverified, by choice.
    case header(String)
    /// The route's name: one budget per route.
    case route

    public var description: String {
        switch self {
        case .peer: return "peer"
        case .subject: return "subject"
        case .clientID: return "client_id"
        case .ip: return "ip"
        case .header(let name): return "header:\(name)"
        case .route: return "route"
        }
    }
}

/// What to do when the store cannot give an answer.
public enum RateLimitFallback: String, Sendable, Hashable, CaseIterable {
    case allow
    case deny
}

/// `rate_limits.NAME`, or a route's inline `rate_limit`.
public struct RateLimitConfig: Sendable, Equatable {
    /// The name in `rate_limits`, or the route's name for an inline limit. Part of every cell
    /// key, so two limits never share cells; also the `RateLimit-Policy` name.
    public var name: String
    public var key: [RateLimitKeyPart]
    public var policy: RatePolicy
    /// The in-memory store is full of live cells and this key is new.
    public var onFull: RateLimitFallback = .allow
    /// The shared store (Redis) is slow or down.
    public var onStoreError: RateLimitFallback = .allow
    public var mode: CheckMode = .enforce
    public var location: SourceLocation

    public init(name: String, key: [RateLimitKeyPart], policy: RatePolicy, location: SourceLocation) {
        self.name = name
        self.key = key
        self.policy = policy
        self.location = location
    }
}
