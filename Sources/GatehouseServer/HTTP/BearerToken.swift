import GatehouseCore
import NIOHTTP1

/// Finds the bearer token a route reads, or says why there is none usable.
enum BearerToken {
    enum Extracted: Equatable {
        case token(Substring)
        case missing
        /// Present but not usable: repeated, or not `Bearer <token>`.
        case malformed
    }

    /// Byte-level checks on purpose: with Foundation imported, `contains(" ")` on a string
    /// resolves to NSString's search and bridges the whole (long) token on every request.
    static func extract(from headers: HTTPHeaders, source: TokenSource) -> Extracted {
        switch source {
        case .authorizationBearer:
            let values = headers["authorization"]
            guard let value = values.first else { return .missing }
            // Two Authorization headers: which one would the upstream read? Refuse.
            guard values.count == 1 else { return .malformed }
            let parts = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0].lowercased() == "bearer", !parts[1].isEmpty, !parts[1].utf8.contains(0x20) else {
                return .malformed
            }
            return .token(parts[1])
        case .header(let name):
            let values = headers[name]
            guard let value = values.first else { return .missing }
            guard values.count == 1, !value.isEmpty, !value.utf8.contains(0x20) else { return .malformed }
            return .token(Substring(value))
        }
    }

    /// The header a route's token travels in (removed upstream with `upstream: strip`).
    static func headerName(_ source: TokenSource) -> String {
        switch source {
        case .authorizationBearer: return "authorization"
        case .header(let name): return name
        }
    }
}
