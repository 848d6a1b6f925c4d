/// Why the gateway decided what it did. A closed set: every deny path names exactly one
/// of these, and `httpStatus` is the one place that maps a reason to a status.
public enum ReasonCode: String, Sendable, CaseIterable, Codable {
    case allowed = "allowed"

    case routeNotFound = "route.not_found"

    case requestMalformed = "request.malformed"
    case requestInvalidPath = "request.invalid_path"
    case requestAmbiguousFraming = "request.ambiguous_framing"
    case requestTooLarge = "request.too_large"
    case requestURITooLong = "request.uri_too_long"
    case requestHeadersTooLarge = "request.headers_too_large"
    case requestTimeout = "request.timeout"
    case requestExpectationFailed = "request.expectation_failed"
    case requestUnsupportedMethod = "request.unsupported_method"

    case tlsHandshakeFailed = "tls.handshake_failed"
    case tlsHandshakeTimeout = "tls.handshake_timeout"
    /// The listener requires a client certificate and none was presented.
    case tlsNoClientCert = "tls.no_client_cert"
    /// The chain does not verify against the bundle of the trust domain the SVID claims.
    case tlsUntrustedChain = "tls.untrusted_chain"
    /// The client certificate is not a valid X.509-SVID (URI SANs, SPIFFE ID, CA flag, key usage).
    case tlsInvalidSVID = "tls.invalid_svid"
    /// The client certificate is expired or not yet valid.
    case tlsCertificateExpired = "tls.cert_expired"

    /// The route requires a peer and the connection has no verified client certificate.
    case peerMissing = "peer.missing"
    /// The verified peer is not in the route's `peers`.
    case peerNotAllowed = "peer.not_allowed"

    /// The route requires a bearer token and the request carries none.
    case tokenMissing = "token.missing"
    /// Not a well-formed JWS compact token: too long, not three base64url parts, bad or
    /// duplicate-keyed JSON, a `crit` header, a claim of the wrong type.
    case tokenMalformed = "token.malformed"
    /// `iss` is none of the route's issuers.
    case tokenUnknownIssuer = "token.unknown_issuer"
    /// `kid` names no key of the issuer (or is missing where the issuer has several keys).
    case tokenUnknownKID = "token.unknown_kid"
    /// `alg` is `none`, not in the issuer's allow-list, or not the algorithm of the named key.
    case tokenAlgorithmNotAllowed = "token.algorithm_not_allowed"
    case tokenInvalidSignature = "token.invalid_signature"
    /// `exp` is missing or past (beyond the clock skew).
    case tokenExpired = "token.expired"
    /// `nbf` or `iat` is in the future (beyond the clock skew).
    case tokenNotYetValid = "token.not_yet_valid"
    /// `exp - iat`, or the remaining life, exceeds the issuer's `max_lifetime`.
    case tokenLifetimeTooLong = "token.lifetime_too_long"
    /// `aud` names none of the issuer's audiences.
    case tokenAudienceMismatch = "token.audience_mismatch"
    /// A claim required by the issuer or the route is missing or has another value.
    case tokenClaimMismatch = "token.claim_mismatch"
    /// The token lacks a scope the route requires.
    case tokenScopeMissing = "token.scope_missing"
    /// `bind: mtls` and the token's `cnf.x5t#S256` is not the client certificate's thumbprint.
    case tokenBindingMismatch = "token.binding_mismatch"
    /// The token's `jti` or subject is on the revocation list.
    case tokenRevoked = "token.revoked"
    /// The issuer's key set is unavailable (never fetched, or stale beyond `stale_for`).
    case tokenKeysUnavailable = "token.keys_unavailable"
    /// A webhook route's signature header is absent, or carries only signature versions this
    /// gateway does not check (e.g. only Stripe `v0`).
    case webhookMissingSignature = "webhook.missing_signature"
    /// The signature header (or the timestamp or id header the signature needs) cannot be
    /// read: repeated, too long, too many entries, bad hex or base64, wrong length.
    case webhookMalformedSignature = "webhook.malformed_signature"
    /// No offered signature matches the body under any of the route's secrets.
    case webhookBadSignature = "webhook.bad_signature"
    /// The signed timestamp is further from now than the route's `tolerance`, either way.
    case webhookStaleTimestamp = "webhook.stale_timestamp"
    /// A nonce (token `jti`, webhook delivery id) was already seen.
    case replayDetected = "replay.detected"
    /// A state store that must answer (replay) is full or unreachable: fail closed.
    case stateUnavailable = "state.unavailable"
    /// The caller's rate limit for this route is spent; `Retry-After` says when to come back.
    case rateLimited = "rate.limited"

    case upstreamUnavailable = "upstream.unavailable"
    case upstreamTimeout = "upstream.timeout"
    case upstreamProtocolError = "upstream.protocol_error"
    case upstreamPoolExhausted = "upstream.pool_exhausted"
    /// The upstream's certificate verified but does not carry the SPIFFE ID the upstream must present.
    case upstreamIdentityMismatch = "upstream.identity_mismatch"
    /// The TLS handshake with the upstream failed (untrusted chain, protocol error).
    case upstreamTLSFailed = "upstream.tls_failed"

    /// The HTTP status a client receives for this reason. TLS reasons have no HTTP
    /// exchange; their records carry status 0.
    public var httpStatus: Int {
        switch self {
        case .allowed: return 200
        case .routeNotFound: return 404
        case .requestMalformed, .requestInvalidPath, .requestAmbiguousFraming: return 400
        case .requestTooLarge: return 413
        case .requestURITooLong: return 414
        case .requestHeadersTooLarge: return 431
        case .requestTimeout: return 408
        case .requestExpectationFailed: return 417
        case .requestUnsupportedMethod: return 405
        case .tlsHandshakeFailed, .tlsHandshakeTimeout, .tlsNoClientCert, .tlsUntrustedChain, .tlsInvalidSVID,
            .tlsCertificateExpired:
            return 0
        case .peerMissing: return 401
        case .peerNotAllowed: return 403
        case .tokenMissing, .tokenMalformed, .tokenUnknownIssuer, .tokenUnknownKID, .tokenAlgorithmNotAllowed,
            .tokenInvalidSignature, .tokenExpired, .tokenNotYetValid, .tokenLifetimeTooLong, .tokenAudienceMismatch,
            .tokenBindingMismatch, .tokenRevoked:
            return 401
        case .tokenClaimMismatch, .tokenScopeMissing: return 403
        case .webhookMissingSignature, .webhookMalformedSignature, .webhookBadSignature, .webhookStaleTimestamp: return 401
        case .tokenKeysUnavailable: return 503
        case .replayDetected: return 409
        case .stateUnavailable: return 503
        case .rateLimited: return 429
        case .upstreamUnavailable, .upstreamProtocolError, .upstreamIdentityMismatch, .upstreamTLSFailed: return 502
        case .upstreamTimeout: return 504
        case .upstreamPoolExhausted: return 503
        }
    }

    /// The short, generic text a client sees. Never says more than the status does.
    public var publicMessage: String {
        switch self.httpStatus {
        case 200: return "ok"
        case 400: return "bad request"
        case 401: return "unauthorized"
        case 403: return "forbidden"
        case 404: return "not found"
        case 405: return "method not allowed"
        case 408: return "request timeout"
        case 409: return "conflict"
        case 413: return "payload too large"
        case 414: return "uri too long"
        case 417: return "expectation failed"
        case 429: return "too many requests"
        case 431: return "request header fields too large"
        case 502: return "bad gateway"
        case 503: return "service unavailable"
        case 504: return "gateway timeout"
        default: return "error"
        }
    }
}
