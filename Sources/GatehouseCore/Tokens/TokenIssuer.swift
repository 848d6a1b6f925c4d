import Foundation

/// `issuers.NAME`: who may mint tokens, for whom, and with which keys.
public struct TokenIssuer: Sendable {
    public enum ConfigurationError: Error, Sendable, Equatable {
        case emptyAudiences
        case emptyAlgorithms
        /// An HMAC algorithm without an HMAC secret in the key set: a JWKS key never serves as one.
        case hmacWithoutSecret
        case negativeDuration(String)
    }

    /// The config name, for records and logs.
    public let name: String
    /// The exact `iss` value.
    public let issuer: String
    /// At least one; a token's `aud` must name one of them.
    public let audiences: Set<String>
    public let algorithms: Set<TokenAlgorithm>
    public let clockSkew: TimeInterval
    /// When set, `exp - iat` and the remaining life must not exceed it.
    public let maxLifetime: TimeInterval?
    /// Claims every token of this issuer must carry with exactly these values (e.g. `env: prod`).
    public let requiredClaims: [String: JSONValue]
    public let keys: TokenKeySet

    public init(
        name: String,
        issuer: String,
        audiences: Set<String>,
        algorithms: Set<TokenAlgorithm>,
        keys: TokenKeySet,
        clockSkew: TimeInterval = 30,
        maxLifetime: TimeInterval? = nil,
        requiredClaims: [String: JSONValue] = [:]
    ) throws(ConfigurationError) {
        guard !audiences.isEmpty else { throw .emptyAudiences }
        guard !algorithms.isEmpty else { throw .emptyAlgorithms }
        if algorithms.contains(where: \.isHMAC), !keys.keys.contains(where: { $0.algorithm.isHMAC }) {
            throw .hmacWithoutSecret
        }
        guard clockSkew >= 0 else { throw .negativeDuration("clock_skew") }
        if let maxLifetime, maxLifetime <= 0 { throw .negativeDuration("max_lifetime") }
        self.name = name
        self.issuer = issuer
        self.audiences = audiences
        self.algorithms = algorithms
        self.keys = keys
        self.clockSkew = clockSkew
        self.maxLifetime = maxLifetime
        self.requiredClaims = requiredClaims
    }

    /// The algorithms the issuer's keys can verify, minus HMAC: the default allow-list.
    public static func defaultAlgorithms(for keys: TokenKeySet) -> Set<TokenAlgorithm> {
        Set(keys.keys.map(\.algorithm).filter { !$0.isHMAC })
    }
}

/// `routes[].token`: what a request's token must prove for this route.
public struct TokenRequirement: Sendable, Equatable {
    public enum Binding: String, Sendable, Equatable {
        case none
        /// RFC 8705: the token's `cnf.x5t#S256` must be the client certificate's thumbprint.
        case mtls
    }

    /// Issuer names (keys of `issuers`), one or more.
    public let issuers: [String]
    /// All required, from `scope` (space-separated) or `scp` (array).
    public let scopes: Set<String>
    /// Exact values the route requires, on top of the issuer's required claims.
    public let claims: [String: JSONValue]
    public let bind: Binding

    public init(issuers: [String], scopes: Set<String> = [], claims: [String: JSONValue] = [:], bind: Binding = .none) {
        self.issuers = issuers
        self.scopes = scopes
        self.claims = claims
        self.bind = bind
    }
}

/// A token that passed every check: what later stages need (records, headers, minting,
/// replay and revocation) and nothing secret. A class: it travels through several stages of
/// every request, and a copy of seven fields was seven reference counts each time.
public final class VerifiedToken: Sendable, Equatable {
    /// The issuer's config name.
    public let issuerName: String
    public let iss: String
    public let sub: String?
    public let jti: String?
    public let exp: Date
    public let scopes: Set<String>
    /// All payload claims, for `claims_to_headers` and the route's claim checks.
    public let claims: [String: JSONValue]

    init(issuerName: String, iss: String, sub: String?, jti: String?, exp: Date, scopes: Set<String>, claims: [String: JSONValue]) {
        self.issuerName = issuerName
        self.iss = iss
        self.sub = sub
        self.jti = jti
        self.exp = exp
        self.scopes = scopes
        self.claims = claims
    }

    public static func == (lhs: VerifiedToken, rhs: VerifiedToken) -> Bool {
        lhs.issuerName == rhs.issuerName && lhs.iss == rhs.iss && lhs.sub == rhs.sub && lhs.jti == rhs.jti
            && lhs.exp == rhs.exp && lhs.scopes == rhs.scopes && lhs.claims == rhs.claims
    }
}

/// Why a token was refused. A value: a bad token is an expected outcome.
public struct TokenRefusal: Error, Sendable, Equatable {
    public let reason: ReasonCode
    /// Short, for logs. Never holds the token or a signature.
    public let detail: String
    /// The issuer whose keys were consulted, for `token.unknown_kid` and
    /// `token.keys_unavailable`: the gateway refetches that issuer's `jwks_uri`.
    public var issuerName: String?

    public init(_ reason: ReasonCode, _ detail: String) {
        self.reason = reason
        self.detail = detail
    }
}
