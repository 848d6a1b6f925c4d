/// A SPIFFE ID (`spiffe://trust-domain/path`), validated strictly per the SPIFFE-ID standard.
///
/// Rules, checked in this order:
/// - not empty, at most ``maxLength`` bytes;
/// - the scheme is exactly `spiffe://` (lowercase: `SPIFFE://` is refused, not folded);
/// - the trust domain (up to the first `/`, `?` or `#`) is non-empty, at most
///   ``maxTrustDomainLength`` bytes, only `a-z 0-9 . - _`, with no user info (`@`) and no port (`:`);
/// - no query (`?`) and no fragment (`#`) anywhere after the trust domain;
/// - the path is empty or `/segment/segment…`; each segment is only `a-z A-Z 0-9 . - _`, not
///   empty (no `//`, no trailing `/`) and not `.` or `..`;
/// - no percent-encoding anywhere: `%` is refused outright rather than decoded, so one ID has
///   exactly one spelling and string equality is identity equality.
///
/// Equality and hashing use the full text, which the rules make canonical.
public struct SPIFFEID: Sendable, Hashable, CustomStringConvertible {
    /// Longest accepted SPIFFE ID in bytes, scheme included (SPIFFE-ID §2.3).
    public static let maxLength = 2048
    /// Longest accepted trust domain name in bytes (the RFC 3986 host limit, SPIFFE-ID §2.3).
    public static let maxTrustDomainLength = 255

    static let schemePrefix: [UInt8] = Array("spiffe://".utf8)

    /// The trust domain name, e.g. `prod.example`.
    public let trustDomain: String
    /// `""` for the trust domain's own ID, otherwise `/ns/default/sa/x`.
    public let path: String
    /// The whole ID, e.g. `spiffe://prod.example/ns/default/sa/x`.
    public let description: String

    public init(parsing text: String) throws(SPIFFEIDError) {
        var text = text
        // `withUTF8` is free for native strings. The closure cannot throw a typed error, so
        // the outcome comes back as a Result.
        let parts: Result<(String, String), SPIFFEIDError> = text.withUTF8 { bytes in
            Self.scan(bytes).map { authorityEnd in
                (
                    String(decoding: UnsafeBufferPointer(rebasing: bytes[Self.schemePrefix.count..<authorityEnd]), as: UTF8.self),
                    String(decoding: UnsafeBufferPointer(rebasing: bytes[authorityEnd...]), as: UTF8.self)
                )
            }
        }
        (self.trustDomain, self.path) = try parts.get()
        self.description = text
    }

    /// Checks a bare trust domain name (`prod.example`, not `spiffe://prod.example`), as used
    /// for trust-bundle keys.
    public static func validateTrustDomain(_ name: String) throws(SPIFFEIDError) {
        var name = name
        if name.utf8.starts(with: Self.schemePrefix) { throw .notABareTrustDomain }
        let result: SPIFFEIDError? = name.withUTF8 { Self.checkTrustDomain($0[...]) }
        if let result { throw result }
    }

    public static func == (lhs: SPIFFEID, rhs: SPIFFEID) -> Bool {
        lhs.description == rhs.description
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(self.description)
    }

    // MARK: - Scanning

    /// Validates `bytes` and returns where the trust domain ends (and the path starts).
    private static func scan(_ bytes: UnsafeBufferPointer<UInt8>) -> Result<Int, SPIFFEIDError> {
        if bytes.isEmpty { return .failure(.empty) }
        if bytes.count > Self.maxLength { return .failure(.tooLong) }
        guard bytes.starts(with: Self.schemePrefix) else { return .failure(.wrongScheme) }

        let authorityStart = Self.schemePrefix.count
        var authorityEnd = authorityStart
        while authorityEnd < bytes.count, !Self.endsAuthority(bytes[authorityEnd]) {
            authorityEnd += 1
        }
        if let error = Self.checkTrustDomain(bytes[authorityStart..<authorityEnd]) {
            return .failure(error)
        }

        // A query or a fragment is its own rule, reported before any path rule so that
        // `spiffe://td/a?b` says "query", not "bad character".
        var pathEnd = authorityEnd
        while pathEnd < bytes.count, bytes[pathEnd] != UInt8(ascii: "?"), bytes[pathEnd] != UInt8(ascii: "#") {
            pathEnd += 1
        }
        if pathEnd < bytes.count {
            return .failure(bytes[pathEnd] == UInt8(ascii: "?") ? .query : .fragment)
        }
        if let error = Self.checkPath(bytes[authorityEnd..<pathEnd]) {
            return .failure(error)
        }
        return .success(authorityEnd)
    }

    private static func endsAuthority(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "/") || byte == UInt8(ascii: "?") || byte == UInt8(ascii: "#")
    }

    /// One pass that records what it saw, then reports by priority: `user@host:port` must
    /// say "user info", not "port", whatever the byte order.
    private static func checkTrustDomain(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> SPIFFEIDError? {
        if bytes.isEmpty { return .missingTrustDomain }
        var sawAt = false
        var sawColon = false
        var sawPercent = false
        var sawUppercase = false
        var sawOther = false
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"):
                continue
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): sawUppercase = true
            case UInt8(ascii: "@"): sawAt = true
            case UInt8(ascii: ":"): sawColon = true
            case UInt8(ascii: "%"): sawPercent = true
            default: sawOther = true
            }
        }
        if sawAt { return .userInfo }
        if sawColon { return .port }
        if sawPercent { return .percentEncoded }
        if sawOther { return .badTrustDomainCharacter }
        if sawUppercase { return .uppercaseTrustDomain }
        if bytes.count > Self.maxTrustDomainLength { return .trustDomainTooLong }
        return nil
    }

    /// `bytes` is empty or starts with `/` (the trust domain ended at a `/`).
    private static func checkPath(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> SPIFFEIDError? {
        var index = bytes.startIndex
        while index < bytes.endIndex {
            // `index` is at a `/`: the segment runs to the next `/` or the end.
            let segmentStart = index + 1
            var segmentEnd = segmentStart
            var dots = 0
            while segmentEnd < bytes.endIndex, bytes[segmentEnd] != UInt8(ascii: "/") {
                switch bytes[segmentEnd] {
                case UInt8(ascii: "."): dots += 1
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
                    break
                case UInt8(ascii: "%"): return .percentEncoded
                default: return .badPathCharacter
                }
                segmentEnd += 1
            }
            let length = segmentEnd - segmentStart
            if length == 0 {
                return segmentEnd == bytes.endIndex ? .trailingSlash : .emptySegment
            }
            if dots == length, length <= 2 { return .dotSegment }
            index = segmentEnd
        }
        return nil
    }
}

/// Why a text is not a valid SPIFFE ID (or ID pattern). One case per rule.
public enum SPIFFEIDError: Error, Hashable, CaseIterable, CustomStringConvertible {
    case empty
    case tooLong
    case wrongScheme
    case missingTrustDomain
    case trustDomainTooLong
    case uppercaseTrustDomain
    case badTrustDomainCharacter
    case userInfo
    case port
    case query
    case fragment
    case percentEncoded
    case badPathCharacter
    case emptySegment
    case trailingSlash
    case dotSegment
    /// Only from ``SPIFFEID/validateTrustDomain(_:)``: a `spiffe://` URI where a bare name belongs.
    case notABareTrustDomain
    /// Only from ``SPIFFEIDPattern``: `*` anywhere but as the whole last path segment.
    case misplacedWildcard

    public var description: String {
        switch self {
        case .empty: return "the SPIFFE ID is empty"
        case .tooLong: return "a SPIFFE ID must be at most \(SPIFFEID.maxLength) bytes long"
        case .wrongScheme: return "a SPIFFE ID must start with spiffe:// (lowercase)"
        case .missingTrustDomain: return "the trust domain is missing"
        case .trustDomainTooLong: return "the trust domain must be at most \(SPIFFEID.maxTrustDomainLength) bytes long"
        case .uppercaseTrustDomain: return "the trust domain must be lowercase"
        case .badTrustDomainCharacter:
            return "the trust domain may contain only lowercase letters, digits, dots, dashes and underscores"
        case .userInfo: return "a SPIFFE ID must not contain user info (@)"
        case .port: return "a SPIFFE ID must not contain a port"
        case .query: return "a SPIFFE ID must not contain a query (?)"
        case .fragment: return "a SPIFFE ID must not contain a fragment (#)"
        case .percentEncoded: return "a SPIFFE ID must not contain percent-encoding"
        case .badPathCharacter: return "path segments may contain only letters, digits, dots, dashes and underscores"
        case .emptySegment: return "the path must not contain empty segments (//)"
        case .trailingSlash: return "the path must not end with /"
        case .dotSegment: return "the path must not contain . or .. segments"
        case .notABareTrustDomain: return "give the trust domain name alone (prod.example), not a spiffe:// URI"
        case .misplacedWildcard: return "* is allowed only as the whole last path segment (spiffe://td/* or spiffe://td/a/*)"
        }
    }
}
