/// Finds the route for a request: host, then path, then method. Built once from the compiled
/// configuration and never mutated, so it is shared freely across event loops.
///
/// Semantics:
/// - Routes for the request's host (canonicalised by ``canonicalHost(_:)``) are searched
///   first; if none of them matches, the routes without a host are searched.
/// - Within one set, an exact path match beats every prefix; otherwise the longest matching
///   prefix wins. Prefixes match whole segments (`/billing` matches `/billing`, `/billing/`
///   and `/billing/x`, not `/billingx`); a trailing `/` on a prefix is insignificant and
///   `/` matches every path. Exact paths match literally.
/// - A route whose method set lacks the request's method is skipped and the search goes on
///   with the next-shorter prefix (and, after the whole set, with the host-less set).
/// - Routes on the same path are tried in declaration order; the first whose methods allow
///   the request wins.
///
/// Cost: one dictionary lookup for exact paths plus one per path segment walked in a
/// segment trie; it does not depend on the number of routes. Matching allocates nothing
/// when the host is already canonical.
public struct Router<Payload: Sendable>: Sendable {
    /// One route as the router sees it.
    public struct Entry: Sendable {
        /// Host to match (canonicalised at build time); nil matches any host.
        public var host: String?
        public var path: PathMatch
        /// Allowed methods, compared exactly (the loader uppercases them); nil allows any.
        public var methods: Set<String>?
        public var payload: Payload

        public init(host: String? = nil, path: PathMatch, methods: Set<String>? = nil, payload: Payload) {
            self.host = host
            self.path = path
            self.methods = methods
            self.payload = payload
        }
    }

    private let tablesByHost: [String: Table]
    private let anyHost: Table

    public init(_ entries: [Entry]) {
        var byHost: [String: Table] = [:]
        var anyHost = Table()
        for entry in entries {
            if let host = entry.host {
                byHost[Self.canonicalHost(host), default: Table()].insert(entry)
            } else {
                anyHost.insert(entry)
            }
        }
        self.tablesByHost = byHost
        self.anyHost = anyHost
    }

    public init(entries: [(host: String?, path: PathMatch, methods: Set<String>?, payload: Payload)]) {
        self.init(entries.map { Entry(host: $0.host, path: $0.path, methods: $0.methods, payload: $0.payload) })
    }

    /// The payload of the best route for this request, or nil when no route matches.
    /// `path` is expected to be normalised already (see `PathNormalizer`).
    public func match(host: String?, path: String, method: String) -> Payload? {
        if let host, !self.tablesByHost.isEmpty {
            if let table = self.tablesByHost[Self.canonicalHost(host)],
                let payload = table.match(path: path, method: method)
            {
                return payload
            }
        }
        return self.anyHost.match(path: path, method: method)
    }

    /// Lowercases ASCII letters and strips a `:port` suffix and one trailing `.`:
    /// `API.Example.com:8443` → `api.example.com`, `[::1]:8080` → `[::1]`,
    /// `example.com.` → `example.com` (the same host in DNS, so it must route the same).
    /// Returns the input unchanged, without allocating, when it is already canonical.
    public static func canonicalHost(_ host: String) -> String {
        let utf8 = host.utf8
        var end = utf8.endIndex
        if utf8.first == UInt8(ascii: "[") {
            // IPv6 literal: keep through the closing bracket, drop what follows.
            if let close = utf8.firstIndex(of: UInt8(ascii: "]")) {
                end = utf8.index(after: close)
            }
        } else if let colon = utf8.firstIndex(of: UInt8(ascii: ":")) {
            end = colon
        }
        if end > utf8.startIndex, utf8[utf8.index(before: end)] == UInt8(ascii: ".") {
            end = utf8.index(before: end)
        }
        let hasUppercase = utf8[..<end].contains { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }
        if end == utf8.endIndex && !hasUppercase { return host }
        if !hasUppercase { return String(host[..<end]) }
        return String(
            decoding: utf8[..<end].lazy.map { byte in
                byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
            },
            as: UTF8.self
        )
    }
}

extension Router {
    /// Routes sharing one path, in declaration order.
    private struct Candidates: Sendable {
        var routes: [(methods: Set<String>?, payload: Payload)] = []

        func first(allowing method: String) -> Payload? {
            for route in self.routes where route.methods?.contains(method) ?? true {
                return route.payload
            }
            return nil
        }
    }

    /// A node of the prefix trie: one per distinct leading run of segments.
    private struct Node: Sendable {
        /// Child node indices keyed by the next segment. Keys are substrings of the configured
        /// prefixes, so a request's own substrings look them up without allocating.
        var children: [Substring: Int] = [:]
        var prefixRoutes = Candidates()
    }

    /// The routes of one host (or of no host).
    private struct Table: Sendable {
        var exact: [String: Candidates] = [:]
        /// `nodes[0]` is the root, which holds the `/` prefix routes.
        var nodes: [Node] = [Node()]

        mutating func insert(_ entry: Entry) {
            switch entry.path {
            case .exact(let path):
                self.exact[path, default: Candidates()].routes.append((entry.methods, entry.payload))
            case .prefix(let prefix):
                var node = 0
                for segment in Self.prefixSegments(prefix) {
                    if let child = self.nodes[node].children[segment] {
                        node = child
                    } else {
                        self.nodes.append(Node())
                        self.nodes[node].children[segment] = self.nodes.count - 1
                        node = self.nodes.count - 1
                    }
                }
                self.nodes[node].prefixRoutes.routes.append((entry.methods, entry.payload))
            }
        }

        /// `/a/b/` → ["a", "b"]; `/` and `` → []. One leading and one trailing `/` are
        /// insignificant; empty segments are kept (`/a//b` → ["a", "", "b"], `//` → [""]),
        /// so such a prefix matches only paths that have the same empty segment.
        static func prefixSegments(_ prefix: String) -> [Substring] {
            var body = prefix[...]
            if body.hasPrefix("/") { body = body.dropFirst() }
            if body.isEmpty { return [] }
            if body.hasSuffix("/") { body = body.dropLast() }
            return body.split(separator: "/", omittingEmptySubsequences: false)
        }

        func match(path: String, method: String) -> Payload? {
            // Empty maps are skipped: hashing the key first would be the lookup's whole cost.
            if !self.exact.isEmpty, let exact = self.exact[path], let payload = exact.first(allowing: method) {
                return payload
            }
            // Walk down the trie; the deepest node with a route allowing the method wins, so a
            // method mismatch falls back to the next-shorter prefix without a stack.
            var best = self.nodes[0].prefixRoutes.first(allowing: method)
            var node = 0
            let utf8 = path.utf8
            var start = utf8.startIndex
            if utf8.first == UInt8(ascii: "/") { start = utf8.index(after: start) }
            while true {
                let end = utf8[start...].firstIndex(of: UInt8(ascii: "/")) ?? utf8.endIndex
                guard !self.nodes[node].children.isEmpty, let child = self.nodes[node].children[path[start..<end]] else { break }
                node = child
                if let payload = self.nodes[node].prefixRoutes.first(allowing: method) {
                    best = payload
                }
                if end == utf8.endIndex { break }
                start = utf8.index(after: end)
            }
            return best
        }
    }
}
