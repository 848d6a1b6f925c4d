/// `routes:` — which requests go to which upstream.
enum RouteSection {
    static let keys = ["name", "match", "upstream", "max_body_bytes", "peers", "token", "webhook", "rate_limit", "forward_client_cert"]
    /// Route requirements that later versions enforce. A route written for such a version
    /// must not load here: it would forward without the checks its author asked for.
    static let plannedKeys: [String] = []

    /// What a route may refer to, from the rest of the file.
    struct Context {
        var trustDomains: [String] = []
        /// Every issuer's name, valid entry or not.
        var issuers: [String] = []
        var mintingConfigured = false
        /// The valid `rate_limits`, and every name (valid or not).
        var rateLimits: [RateLimitConfig] = []
        var rateLimitNames: [String] = []
    }
    static let matchKeys = ["host", "path_prefix", "path", "methods"]

    /// A route plus the nodes the cross-checks report at.
    struct Parsed {
        var route: RouteConfig
        var node: ConfigNode
        var nameNode: ConfigNode
        var matchNode: ConfigNode
        var upstreamNode: ConfigNode
    }

    /// Reads every route, then checks what needs the whole list: unique names, upstream
    /// references, and that no two routes match exactly the same requests.
    static func readAll(_ node: ConfigNode, upstreams: [UpstreamConfig], context: Context) -> [RouteConfig] {
        guard let items = node.list() else { return [] }
        let parsed = items.compactMap { read($0, context: context) }

        var names: [String: String] = [:]
        for entry in parsed {
            if let first = names[entry.route.name] {
                entry.nameNode.report("duplicate route name `\(entry.route.name)` (already used by \(first))")
            } else {
                names[entry.route.name] = entry.node.path
            }
        }

        let known = upstreams.map(\.name)
        for entry in parsed where !known.contains(entry.route.upstream) {
            let hint = MappingReader.suggestion(for: entry.route.upstream, among: known).map { " (did you mean `\($0)`?)" } ?? ""
            entry.upstreamNode.report(
                "unknown upstream `\(entry.route.upstream)`\(hint)",
                expected: known.isEmpty ? "an upstream defined under `upstreams`" : "one of \(MappingReader.list(known))")
        }

        // Two routes with the same host and path and a method in common: which one wins would
        // depend on file order, and a reader of the file could not tell. Refuse it.
        for (index, entry) in parsed.enumerated() {
            if let earlier = parsed[..<index].first(where: { overlaps($0.route.match, entry.route.match) }) {
                entry.matchNode.report(
                    "ambiguous: matches the same host, path and methods as route `\(earlier.route.name)` (\(earlier.node.path), line \(earlier.node.location.line))")
            }
        }
        return parsed.map(\.route)
    }

    static func overlaps(_ a: RouteMatch, _ b: RouteMatch) -> Bool {
        guard a.host == b.host, a.path == b.path else { return false }
        guard let aMethods = a.methods, let bMethods = b.methods else { return true }
        return !aMethods.isDisjoint(with: bMethods)
    }

    static func read(_ node: ConfigNode, context: Context) -> Parsed? {
        let trustDomains = context.trustDomains
        guard let map = node.mapping(keys: keys, planned: plannedKeys) else { return nil }
        let nameNode = map.required("name")
        let name = nameNode?.identifier(allowingDots: true)
        let matchNode = map.required("match")
        let match = matchNode.flatMap(readMatch)
        let upstreamNode = map.required("upstream", expected: "the name of an entry of `upstreams`")
        let upstream = upstreamNode?.identifier()
        let maxBodyNode = map.optional("max_body_bytes")
        let maxBodyBytes = maxBodyNode?.size()
        let peersNode = map.optional("peers")
        let peersRead = peersNode.flatMap { readPeers($0, trustDomains: trustDomains) }
        let peers = peersRead?.policy
        let tokenNode = map.optional("token")
        let token = tokenNode.flatMap { TokenSection.readRoute($0, issuers: context.issuers, mintingConfigured: context.mintingConfigured) }
        let webhookNode = map.optional("webhook")
        let webhook = webhookNode.flatMap(WebhookSection.read)
        let forwardNode = map.optional("forward_client_cert")
        let forwardClientCert = forwardNode?.oneOf(ForwardClientCertMode.self)
        // The server buffers a webhook body up to `webhook.max_body` to verify it; a second
        // limit beside it would leave a reader guessing which one applies.
        var bodyLimitsAgree = true
        if let maxBodyNode, webhookNode != nil {
            maxBodyNode.report("a webhook route's body limit is `webhook.max_body`", expected: "`max_body` under `webhook`")
            bodyLimitsAgree = false
        }

        // A `peers` list with a bad entry must not load as a shorter list: it would change who
        // is allowed. Any problem rejects the route (the problem itself is already logged).
        guard let name, let nameNode, let match, let matchNode, let upstream, let upstreamNode,
            peersNode == nil || peers != nil, forwardNode == nil || forwardClientCert != nil,
            tokenNode == nil || token != nil, webhookNode == nil || webhook != nil, bodyLimitsAgree
        else { return nil }
        var route = RouteConfig(
            // A webhook route's body limit is its `max_body`, so the data path enforces it
            // like any route's limit, before a check runs.
            name: name, match: match, upstream: upstream, maxBodyBytes: webhook?.maxBodyBytes ?? maxBodyBytes, peers: peers,
            forwardClientCert: forwardClientCert ?? .set, location: node.location)
        route.peersMode = peersRead?.mode ?? .enforce
        route.token = token
        route.webhook = webhook
        if let rateNode = map.optional("rate_limit") {
            guard let limit = readRateLimit(rateNode, route: route, context: context),
                RateLimitSection.checkVerified(limit, route: route, node: rateNode)
            else { return nil }
            route.rateLimit = limit
        }
        return Parsed(route: route, node: node, nameNode: nameNode, matchNode: matchNode, upstreamNode: upstreamNode)
    }

    /// `rate_limit`: the name of an entry of `rate_limits`, or a limit of the route's own.
    static func readRateLimit(_ node: ConfigNode, route: RouteConfig, context: Context) -> RateLimitConfig? {
        if case .mapping = node.node { return RateLimitSection.read(node, name: route.name) }
        guard let name = node.identifier() else { return nil }
        if let limit = context.rateLimits.first(where: { $0.name == name }) { return limit }
        if !context.rateLimitNames.contains(name) {
            let hint = MappingReader.suggestion(for: name, among: context.rateLimitNames).map { " (did you mean `\($0)`?)" } ?? ""
            node.report("unknown rate limit `\(name)`\(hint)",
                expected: context.rateLimitNames.isEmpty ? "a limit defined under `rate_limits`, or an inline `{ key, rate, burst }`" : "one of \(MappingReader.list(context.rateLimitNames))")
        }
        return nil
    }

    /// `peers`: SPIFFE ID patterns, or `{ allow: [patterns], mode: shadow }`. An empty list
    /// is valid and allows nobody.
    static func readPeers(_ node: ConfigNode, trustDomains: [String]) -> (policy: PeerPolicy, mode: CheckMode)? {
        var listNode = node
        var mode = CheckMode.enforce
        if case .mapping = node.node {
            guard let map = node.mapping(keys: ["allow", "mode"]),
                let allow = map.required("allow", expected: "a list of SPIFFE ID patterns (empty: nobody)")
            else { return nil }
            if let modeNode = map.optional("mode") {
                guard let value = modeNode.oneOf(CheckMode.self) else { return nil }
                mode = value
            }
            listNode = allow
        }
        guard let items = listNode.list() else { return nil }
        let patterns = ConfigNode.distinctEntries(items, duplicate: { "duplicate peer pattern `\($0)`" }) {
            $0.spiffePattern(trustDomains: trustDomains)
        }
        return patterns.map { (PeerPolicy(patterns: $0), mode) }
    }

    static func readMatch(_ node: ConfigNode) -> RouteMatch? {
        guard let map = node.mapping(keys: matchKeys) else { return nil }
        let hostNode = map.optional("host")
        let host = hostNode?.parse("a host name", ConfigValueParser.routeHost)
        // An invalid part must never widen the match (a bad host must not mean "any host"),
        // so any problem makes the whole match nil; the problem itself is already logged.
        var valid = hostNode == nil || host != nil

        var path: PathMatch?
        switch (map.optional("path_prefix"), map.optional("path")) {
        case (let prefixNode?, nil):
            path = prefixNode.parse("a path", ConfigValueParser.routePath).map(PathMatch.prefix)
        case (nil, let exactNode?):
            path = exactNode.parse("a path", ConfigValueParser.routePath).map(PathMatch.exact)
        case (_?, let exactNode?):
            exactNode.report("`path` and `path_prefix` cannot both be set", expected: "exactly one of them")
        case (nil, nil):
            node.report("no path to match", expected: "exactly one of `path_prefix` or `path`")
        }

        var methods: Set<String>?
        if let methodsNode = map.optional("methods") {
            var seen = Set<String>()
            for item in methodsNode.nonEmptyList() ?? [] {
                guard let method = item.parse("an HTTP method", ConfigValueParser.method) else { continue }
                if !seen.insert(method).inserted {
                    item.report("duplicate method `\(method)`")
                }
            }
            methods = seen.isEmpty ? nil : seen
            if seen.isEmpty { valid = false }
        }

        guard let path, valid else { return nil }
        return RouteMatch(host: host, path: path, methods: methods)
    }
}
