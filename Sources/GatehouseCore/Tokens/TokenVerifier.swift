import Crypto
import Foundation

/// Verifies a bearer JWT (JWS compact serialization) against a route's ``TokenRequirement``.
///
/// Order, so that each refusal names the precise reason:
/// 1. empty → `token.missing`; longer than ``maxTokenLength`` (before any parsing), not three
///    strict base64url parts, header not a JSON object with a string `alg` (and string `typ`,
///    `kid` when present), any `crit`, payload not a JSON object, a repeated JSON key anywhere,
///    a registered claim of the wrong type → `token.malformed`;
/// 2. `alg: none` or an unknown `alg` → `token.algorithm_not_allowed`;
/// 3. `iss` not among the requirement's issuers → `token.unknown_issuer`;
/// 4. `alg` not in that issuer's allow-list → `token.algorithm_not_allowed`;
/// 5. `kid` names no key of the issuer, or is absent while the issuer has several keys →
///    `token.unknown_kid`; the named key does not verify `alg` → `token.algorithm_not_allowed`;
/// 6. the signature (jwt-kit) → `token.invalid_signature`;
/// 7. `exp` missing or past → `token.expired`; `nbf`/`iat` in the future → `token.not_yet_valid`
///    (both with the issuer's clock skew); `exp - iat` or the remaining life above
///    `max_lifetime` → `token.lifetime_too_long`;
/// 8. `aud` → `token.audience_mismatch`; the issuer's required claims, then the route's
///    claims → `token.claim_mismatch`; scopes → `token.scope_missing`;
/// 9. `bind: mtls` → `token.binding_mismatch`.
///
/// `jku`, `x5u`, `jwk` and `x5c` header parameters are ignored: keys come only from the
/// issuer's configured key set, never from the token. Steps 1-6 (and the issuer-level checks
/// of 7-8) are what ``VerifiedTokenCache`` remembers; the time checks and everything
/// route-specific run on every request, cached or not.
///
/// Synchronous: jwt-kit is async only where keys are built (``TokenKeySet/load``); a built
/// key verifies synchronously. Measured in release on the 2-core dev machine, whole `verify`
/// of a ~300-byte-payload token: RS256 (2048-bit) about 19 µs, ES256 about 42 µs; a cache
/// hit about 0.7 µs (SHA-256 of the token, a locked lookup, the per-request checks); the
/// connection's own last token (``RecentToken``) skips the SHA-256 and the lock.
public struct TokenVerifier: Sendable {
    /// Longest token accepted, checked before any decoding: bounds the work a client can ask for.
    public static let maxTokenLength = 8192

    /// By config name.
    public let issuers: [String: TokenIssuer]
    /// Shared across requests; belongs to this set of issuers and keys (a key-set change
    /// should come with a new verifier and a new cache, so no verdict outlives its keys).
    public let cache: VerifiedTokenCache?

    public init(issuers: [TokenIssuer], cache: VerifiedTokenCache? = nil) {
        self.issuers = Dictionary(issuers.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.cache = cache
    }

    public func verify(
        token: String,
        requirement: TokenRequirement,
        clientCertificateDER: [UInt8]?,
        now: Date
    ) -> Result<VerifiedToken, TokenRefusal> {
        verify(token: token, requirement: requirement, clientCertificateSHA256: clientCertificateDER.map { Array(SHA256.hash(data: $0)) }, now: now)
    }

    /// As above, with the SHA-256 of the client certificate's DER, which the data path keeps
    /// per connection rather than the certificate itself.
    public func verify(
        token: String,
        requirement: TokenRequirement,
        clientCertificateSHA256: [UInt8]?,
        now: Date
    ) -> Result<VerifiedToken, TokenRefusal> {
        verify(token: token[...], requirement: requirement, clientCertificateSHA256: clientCertificateSHA256, now: now)
    }

    /// The data path's form: the token as a slice of the request's header value, read in
    /// place (a cache hit copies nothing), and the connection's previous token in `recent`.
    public func verify(
        token: Substring,
        requirement: TokenRequirement,
        clientCertificateSHA256: [UInt8]?,
        now: Date,
        recent: inout RecentToken
    ) -> Result<VerifiedToken, TokenRefusal> {
        let inPlace = token.utf8.withContiguousStorageIfAvailable { bytes in
            verify(bytes, requirement: requirement, clientCertificateSHA256: clientCertificateSHA256, now: now, recent: &recent)
        }
        if let inPlace { return inPlace }
        return Array(token.utf8).withUnsafeBufferPointer { bytes in
            verify(bytes, requirement: requirement, clientCertificateSHA256: clientCertificateSHA256, now: now, recent: &recent)
        }
    }

    /// As above, for a caller without a connection to remember tokens for.
    public func verify(
        token: Substring,
        requirement: TokenRequirement,
        clientCertificateSHA256: [UInt8]?,
        now: Date
    ) -> Result<VerifiedToken, TokenRefusal> {
        var none = RecentToken()
        return verify(token: token, requirement: requirement, clientCertificateSHA256: clientCertificateSHA256, now: now, recent: &none)
    }

    private func verify(
        _ bytes: UnsafeBufferPointer<UInt8>,
        requirement: TokenRequirement,
        clientCertificateSHA256: [UInt8]?,
        now: Date,
        recent: inout RecentToken
    ) -> Result<VerifiedToken, TokenRefusal> {
        guard !bytes.isEmpty else { return .failure(TokenRefusal(.tokenMissing, "empty token")) }
        guard bytes.count <= Self.maxTokenLength else {
            return .failure(TokenRefusal(.tokenMalformed, "token longer than \(Self.maxTokenLength) bytes"))
        }

        let authenticated: AuthenticatedToken
        // A hit (the connection's last token, or the cache's) counts only for a route that
        // accepts the issuer it was verified for; otherwise the full path decides (another
        // issuer of this route may share the `iss`).
        if let cache, let again = recent.authenticated(bytes, cache: cache, now: now), requirement.issuers.contains(again.issuerName) {
            if let refusal = Self.checkIssuerRules(again, now: now) { return .failure(refusal) }
            authenticated = again
        } else {
            let cacheKey = cache.map { _ in VerifiedTokenCache.Key(token: bytes) }
            if let cache, let cacheKey, let hit = cache.lookup(cacheKey, now: now), requirement.issuers.contains(hit.issuerName) {
                if let refusal = Self.checkIssuerRules(hit, now: now) { return .failure(refusal) }
                authenticated = hit
            } else {
                switch self.authenticate(Array(bytes), issuerNames: requirement.issuers) {
                case .failure(let refusal): return .failure(refusal)
                case .success(let fresh): authenticated = fresh
                }
                if let refusal = Self.checkIssuerRules(authenticated, now: now) { return .failure(refusal) }
                // Authenticated for its issuer: worth remembering even if this route refuses it.
                if let cache, let cacheKey { cache.insert(cacheKey, authenticated) }
            }
            if let cache { recent.remember(bytes, authenticated, cache: cache) }
        }

        if let refusal = Self.checkRoute(authenticated, requirement: requirement, clientCertificateSHA256: clientCertificateSHA256) {
            return .failure(refusal)
        }
        return .success(authenticated.verified)
    }

    // MARK: - Steps 1-6: the cacheable part

    func authenticate(_ bytes: [UInt8], issuerNames: [String]) -> Result<AuthenticatedToken, TokenRefusal> {
        let dots = bytes.indices.filter { bytes[$0] == UInt8(ascii: ".") }
        guard dots.count == 2 else { return .failure(Self.malformed("not three dot-separated parts")) }
        guard let headerBytes = Base64URL.decode(bytes[..<dots[0]]),
            let payloadBytes = Base64URL.decode(bytes[(dots[0] + 1)..<dots[1]]),
            let signature = Base64URL.decode(bytes[(dots[1] + 1)...])
        else { return .failure(Self.malformed("a part is not unpadded base64url")) }

        let header: JOSEHeader
        switch JOSEHeader.parse(headerBytes) {
        case .failure(let refusal): return .failure(refusal)
        case .success(let parsed): header = parsed
        }
        guard let algorithm = TokenAlgorithm(rawValue: header.alg) else {
            return .failure(TokenRefusal(.tokenAlgorithmNotAllowed, "alg \(Self.printable(header.alg)) is not supported"))
        }

        let claims: TokenClaims
        switch TokenClaims.parse(payloadBytes) {
        case .failure(let refusal): return .failure(refusal)
        case .success(let parsed): claims = parsed
        }

        guard let issuer = issuerNames.lazy.compactMap({ self.issuers[$0] }).first(where: { $0.issuer == claims.iss })
        else { return .failure(TokenRefusal(.tokenUnknownIssuer, "iss is not an issuer of this route")) }
        guard issuer.algorithms.contains(algorithm) else {
            return .failure(TokenRefusal(.tokenAlgorithmNotAllowed, "\(algorithm.rawValue) not allowed for issuer \(issuer.name)"))
        }

        let key: TokenKey
        switch Self.selectKey(issuer.keys, kid: header.kid, algorithm: algorithm) {
        case .failure(var refusal):
            if refusal.reason == .tokenUnknownKID {
                // Without the whole key set, a missing kid proves nothing: fail closed with 503.
                if !issuer.keys.isComplete { refusal = TokenRefusal(.tokenKeysUnavailable, "key set of issuer \(issuer.name) unavailable") }
                refusal.issuerName = issuer.name
            }
            return .failure(refusal)
        case .success(let selected): key = selected
        }
        guard key.verifies(signature: signature, signingInput: bytes[..<dots[1]]) else {
            return .failure(TokenRefusal(.tokenInvalidSignature, "signature does not verify with \(algorithm.rawValue) key"))
        }
        return .success(AuthenticatedToken(issuer: issuer, claims: claims))
    }

    /// Never a default key: a token names its key, or the issuer has exactly one of that kind.
    static func selectKey(_ set: TokenKeySet, kid: String?, algorithm: TokenAlgorithm) -> Result<TokenKey, TokenRefusal> {
        let candidates: [TokenKey]
        if let kid {
            candidates = set.keys.filter { $0.kid == kid }
            guard !candidates.isEmpty else { return .failure(TokenRefusal(.tokenUnknownKID, "kid \(printable(kid)) is not in the key set")) }
        } else {
            candidates = set.keys.filter { $0.algorithm.isHMAC == algorithm.isHMAC }
            let sources = Set(candidates.map(\.source))
            guard sources.count == 1 else {
                return .failure(TokenRefusal(.tokenUnknownKID, "no kid and \(sources.count) candidate keys"))
            }
        }
        guard let key = candidates.first(where: { $0.algorithm == algorithm }) else {
            return .failure(TokenRefusal(.tokenAlgorithmNotAllowed, "the key does not verify \(algorithm.rawValue)"))
        }
        return .success(key)
    }

    // MARK: - Steps 7-9: every request

    /// Time, lifetime, audience and the issuer's required claims.
    static func checkIssuerRules(_ token: AuthenticatedToken, now: Date) -> TokenRefusal? {
        let claims = token.claims
        let skew = token.clockSkew
        let t = now.timeIntervalSince1970
        guard let exp = claims.exp else { return TokenRefusal(.tokenExpired, "no exp") }
        if t >= exp + skew { return TokenRefusal(.tokenExpired, "exp passed") }
        if let nbf = claims.nbf, nbf > t + skew { return TokenRefusal(.tokenNotYetValid, "nbf in the future") }
        if let iat = claims.iat, iat > t + skew { return TokenRefusal(.tokenNotYetValid, "iat in the future") }
        if let max = token.maxLifetime {
            if let iat = claims.iat, exp - iat > max { return TokenRefusal(.tokenLifetimeTooLong, "exp - iat above max_lifetime") }
            if exp - t > max + skew { return TokenRefusal(.tokenLifetimeTooLong, "remaining life above max_lifetime") }
        }
        guard claims.aud.contains(where: token.audiences.contains) else {
            return TokenRefusal(.tokenAudienceMismatch, "aud names none of the issuer's audiences")
        }
        if let name = firstMismatch(token.requiredClaims, in: claims.all) {
            return TokenRefusal(.tokenClaimMismatch, "issuer requires claim \(printable(name))")
        }
        return nil
    }

    static func checkRoute(
        _ token: AuthenticatedToken, requirement: TokenRequirement, clientCertificateSHA256: [UInt8]?
    ) -> TokenRefusal? {
        if let name = firstMismatch(requirement.claims, in: token.claims.all) {
            return TokenRefusal(.tokenClaimMismatch, "route requires claim \(printable(name))")
        }
        // Sorted only to name the missing scope: the check itself allocates nothing.
        if !requirement.scopes.allSatisfy(token.claims.scopes.contains),
            let missing = requirement.scopes.sorted().first(where: { !token.claims.scopes.contains($0) })
        {
            return TokenRefusal(.tokenScopeMissing, "scope \(printable(missing)) missing")
        }
        if requirement.bind == .mtls {
            guard let digest = clientCertificateSHA256 else {
                return TokenRefusal(.tokenBindingMismatch, "bound token without a client certificate")
            }
            guard let thumbprint = token.claims.certificateThumbprint else {
                return TokenRefusal(.tokenBindingMismatch, "no cnf.x5t#S256 in token")
            }
            guard thumbprint == Base64URL.encode(digest) else {
                return TokenRefusal(.tokenBindingMismatch, "cnf.x5t#S256 is not the client certificate's")
            }
        }
        return nil
    }

    /// The first required claim (by name, so the detail is stable) that the token lacks or
    /// does not match; sorted only when there is one.
    private static func firstMismatch(_ required: [String: JSONValue], in claims: [String: JSONValue]) -> String? {
        func mismatches(_ name: String, _ expected: JSONValue) -> Bool {
            guard let value = claims[name] else { return true }
            return !value.matches(expected)
        }
        guard required.contains(where: mismatches) else { return nil }
        return required.keys.sorted().first { mismatches($0, required[$0]!) }
    }

    static func malformed(_ detail: String) -> TokenRefusal { TokenRefusal(.tokenMalformed, detail) }

    /// Attacker-chosen text in a detail: short and printable ASCII only.
    static func printable(_ text: String) -> String {
        let cleaned = text.unicodeScalars.prefix(64).map { $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F ? Character($0) : "?" }
        return "\"" + String(cleaned) + "\""
    }
}

/// What steps 1-6 established: the issuer whose key signed these claims.
/// A class, so a cache hit hands out one reference rather than copying some twenty fields.
final class AuthenticatedToken: Sendable {
    let issuerName: String
    let clockSkew: TimeInterval
    let maxLifetime: TimeInterval?
    let audiences: Set<String>
    let requiredClaims: [String: JSONValue]
    let claims: TokenClaims
    /// What a request gets once the per-request checks pass; built once, shared by every hit.
    let verified: VerifiedToken

    init(issuer: TokenIssuer, claims: TokenClaims) {
        self.issuerName = issuer.name
        self.clockSkew = issuer.clockSkew
        self.maxLifetime = issuer.maxLifetime
        self.audiences = issuer.audiences
        self.requiredClaims = issuer.requiredClaims
        self.claims = claims
        self.verified = VerifiedToken(
            issuerName: issuer.name, iss: claims.iss, sub: claims.sub, jti: claims.jti,
            exp: Date(timeIntervalSince1970: claims.exp ?? 0), scopes: claims.scopes, claims: claims.all
        )
    }

    /// Until when a cache may hold it: past `exp` plus skew it is refused anyway.
    var validUntil: Date { Date(timeIntervalSince1970: (claims.exp ?? 0) + clockSkew) }
}
