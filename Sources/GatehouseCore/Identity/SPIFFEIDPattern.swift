/// One entry of a `peers` list: a SPIFFE ID, or a SPIFFE ID with `/*` meaning "anything below".
///
/// - `spiffe://td/a/b` → ``exact(_:)``: that ID only;
/// - `spiffe://td/a/*` → ``below(_:)``: `spiffe://td/a/x` and deeper, but not `spiffe://td/a`
///   itself and not `spiffe://td/ab` (matching is per segment, never per character);
/// - `spiffe://td/*` → ``trustDomain(_:)``: every ID in `td`, the trust domain's own ID included.
///
/// `*` is accepted only as the whole last segment; `spiffe://td/a*`, `spiffe://*/x`,
/// `spiffe://td/*/x` and `spiffe://td/**` are refused with ``SPIFFEIDError/misplacedWildcard``.
public enum SPIFFEIDPattern: Sendable, Hashable, CustomStringConvertible {
    case exact(SPIFFEID)
    case below(SPIFFEID)
    case trustDomain(String)

    public init(parsing text: String) throws(SPIFFEIDError) {
        let utf8 = text.utf8
        let stars = utf8.lazy.filter { $0 == UInt8(ascii: "*") }.count
        if stars == 0 {
            self = .exact(try SPIFFEID(parsing: text))
            return
        }
        // The one accepted shape is `<valid ID>/*`. The `/` must not be the last one of
        // `spiffe://`, so that `spiffe://*` is a misplaced wildcard, not a bad scheme.
        guard stars == 1, utf8.count >= SPIFFEID.schemePrefix.count + 2, utf8.last == UInt8(ascii: "*"),
            utf8[utf8.index(utf8.endIndex, offsetBy: -2)] == UInt8(ascii: "/")
        else {
            throw .misplacedWildcard
        }
        let base = try SPIFFEID(parsing: String(decoding: utf8.dropLast(2), as: UTF8.self))
        self = base.path.isEmpty ? .trustDomain(base.trustDomain) : .below(base)
    }

    /// The trust domain every matching ID belongs to.
    public var trustDomain: String {
        switch self {
        case .exact(let id), .below(let id): return id.trustDomain
        case .trustDomain(let name): return name
        }
    }

    public var description: String {
        switch self {
        case .exact(let id): return id.description
        case .below(let id): return id.description + "/*"
        case .trustDomain(let name): return "spiffe://" + name + "/*"
        }
    }

    public func matches(_ id: SPIFFEID) -> Bool {
        switch self {
        case .exact(let expected): return id == expected
        case .below(let parent): return id.trustDomain == parent.trustDomain && Self.isStrictlyBelow(id.path, parent.path)
        case .trustDomain(let name): return id.trustDomain == name
        }
    }

    /// `/a/b` is below `/a`; `/a` and `/ab` are not. Compares bytes: both are ASCII once validated.
    static func isStrictlyBelow(_ path: String, _ parentPath: String) -> Bool {
        let child = path.utf8
        let parent = parentPath.utf8
        guard child.count > parent.count, child.starts(with: parent) else { return false }
        return child[child.index(child.startIndex, offsetBy: parent.count)] == UInt8(ascii: "/")
    }
}

/// A route's `peers` list, compiled for lookup: which verified SPIFFE IDs may use the route.
///
/// An empty list allows nobody (fail closed). A lookup costs one set probe for exact IDs, one
/// for whole trust domains, and a scan of the `below` prefixes of the ID's own trust domain
/// only (lists are config-sized, so a scan beats building a trie).
public struct PeerPolicy: Sendable, Hashable {
    public let patterns: [SPIFFEIDPattern]

    private let exactIDs: Set<SPIFFEID>
    private let wholeTrustDomains: Set<String>
    /// Trust domain → parent paths of its `below` patterns.
    private let belowPaths: [String: [String]]

    public init(patterns: [SPIFFEIDPattern]) {
        self.patterns = patterns
        var exactIDs = Set<SPIFFEID>()
        var wholeTrustDomains = Set<String>()
        var belowPaths: [String: [String]] = [:]
        for pattern in patterns {
            switch pattern {
            case .exact(let id): exactIDs.insert(id)
            case .trustDomain(let name): wholeTrustDomains.insert(name)
            case .below(let parent): belowPaths[parent.trustDomain, default: []].append(parent.path)
            }
        }
        self.exactIDs = exactIDs
        self.wholeTrustDomains = wholeTrustDomains
        self.belowPaths = belowPaths
    }

    public func allows(_ id: SPIFFEID) -> Bool {
        if self.exactIDs.contains(id) || self.wholeTrustDomains.contains(id.trustDomain) { return true }
        guard let parents = self.belowPaths[id.trustDomain] else { return false }
        return parents.contains { SPIFFEIDPattern.isStrictlyBelow(id.path, $0) }
    }

    /// Two policies are equal when their lists are (the lookup tables derive from the list).
    public static func == (lhs: PeerPolicy, rhs: PeerPolicy) -> Bool {
        lhs.patterns == rhs.patterns
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(self.patterns)
    }
}
