import GatehouseCore
import NIOHTTP1

/// The cell a request is counted in: the limit's name, then each key part's value.
enum RateLimitKey {
    /// Each value is length-prefixed, so no value (a token's `sub` may hold anything) can
    /// shift the boundaries and land in another caller's cell.
    static func make(
        _ limit: RateLimitConfig, route: String, peer: ConnectionPeer?, token: VerifiedToken?, clientIP: String,
        headers: HTTPHeaders
    ) -> String {
        var key = "rl:" + field(limit.name)
        for part in limit.key {
            // A missing value ("-") is one shared cell: never a way around the limit.
            let value: String
            switch part {
            case .peer: value = peer?.spiffeID ?? "-"
            case .subject: value = token?.sub ?? "-"
            case .clientID:
                if case .string(let id)? = token?.claims["client_id"] { value = id } else { value = "-" }
            case .ip: value = clientIP
            case .header(let name): value = headers.first(name: name).map { String($0.prefix(256)) } ?? "-"
            case .route: value = route
            }
            key += field(value)
        }
        return key
    }

    private static func field(_ value: String) -> String {
        "\(value.utf8.count):\(value)"
    }
}

/// The IETF `RateLimit-Policy` and `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers)
/// and `Retry-After`.
enum RateLimitHeaders {
    static func fields(_ limit: RateLimitConfig, _ decision: RateDecision) -> [(String, String)] {
        let window = limit.policy.period.components.seconds
        return [
            ("ratelimit-policy", "\"\(limit.name)\";q=\(limit.policy.count);w=\(window)"),
            ("ratelimit", "\"\(limit.name)\";r=\(decision.remaining);t=\(seconds(decision.resetAfterNanos))"),
        ]
    }

    /// Whole seconds, rounded up, at least 1: a client told 0 would come straight back.
    static func retryAfter(_ decision: RateDecision) -> String {
        String(max(1, seconds(decision.retryAfterNanos)))
    }

    private static func seconds(_ nanos: Int64) -> Int64 {
        (nanos + 999_999_999) / 1_000_000_000
    }
}
