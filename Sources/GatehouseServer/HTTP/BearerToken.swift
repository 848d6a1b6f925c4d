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

    /// Byte-level on purpose: this runs on every request over a token of up to 8 KiB, and
    /// `Character`-level splitting (grapheme breaking) of it cost about a microsecond.
    /// `authorization`: the request's `Authorization` field as the validator found it in its
    /// pass over the fields (``RequestValidator/Validated/authorization``): not searched again.
    static func extract(from headers: HTTPHeaders, authorization: FieldOccurrence, source: TokenSource) -> Extracted {
        let occurrence: FieldOccurrence
        switch source {
        case .authorizationBearer: occurrence = authorization
        case .header(let name): occurrence = headers.occurrence(of: name)
        }
        switch occurrence {
        case .absent: return .missing
        // Two copies of the header: which one would the upstream read? Refuse.
        case .repeated: return .malformed
        case .once(let value):
            guard source == .authorizationBearer else { return checkedToken(value[...]) }
            guard let space = value.utf8.firstIndex(of: 0x20), value[..<space].equalsLowercase("bearer") else {
                return .malformed
            }
            return checkedToken(value[value.utf8.index(after: space)...])
        }
    }

    /// A token: not empty, no spaces (`Bearer  x` and `a b` are malformed).
    private static func checkedToken(_ token: Substring) -> Extracted {
        guard !token.isEmpty, !ASCII.contains(0x20, in: token) else { return .malformed }
        return .token(token)
    }

    /// The header a route's token travels in (removed upstream with `upstream: strip`).
    static func headerName(_ source: TokenSource) -> String {
        switch source {
        case .authorizationBearer: return "authorization"
        case .header(let name): return name
        }
    }
}
