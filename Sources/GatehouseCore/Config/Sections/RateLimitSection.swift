/// `rate_limits:` and `routes[].rate_limit` — how often a verified caller may call a route.
enum RateLimitSection {
    static let keys = ["key", "rate", "burst", "on_full", "on_store_error", "mode"]

    /// Every named limit, valid or not, so a route naming a broken one is not also told it does not exist.
    static func names(_ node: ConfigNode) -> [String] {
        TokenSection.issuerNames(node)
    }

    static func readAll(_ node: ConfigNode) -> [RateLimitConfig] {
        guard let entries = node.namedEntries() else { return [] }
        return entries.compactMap { entry in
            guard let name = entry.name.identifier() else { return nil }
            return read(entry.value, name: name)
        }
    }

    /// A limit's settings; nil when anything is wrong (the problem is logged).
    static func read(_ node: ConfigNode, name: String) -> RateLimitConfig? {
        guard let map = node.mapping(keys: keys) else { return nil }
        let key = map.required("key", expected: "`peer`, `subject`, `client_id`, `ip`, `header:NAME`, `route`, or a list of them")
            .flatMap(readKey)
        let rate = map.required("rate", expected: "a rate such as `100/s` or `6000/m`")?.parse("a rate such as `100/s`", ConfigValueParser.rate)
        // Explicit: how many requests may arrive at once is a policy decision, not a default.
        let burst = map.required("burst", expected: "the requests a caller may send at once, e.g. `20`")?.int(in: 1...1_000_000)
        let onFull = map.optional("on_full")?.oneOf(RateLimitFallback.self)
        let onStoreError = map.optional("on_store_error")?.oneOf(RateLimitFallback.self)
        let mode = map.optional("mode")?.oneOf(CheckMode.self)
        guard let key, let rate, let burst, map.has("on_full") == (onFull != nil), map.has("on_store_error") == (onStoreError != nil),
            map.has("mode") == (mode != nil)
        else { return nil }
        var config = RateLimitConfig(
            name: name, key: key, policy: RatePolicy(count: rate.count, period: rate.period, burst: burst), location: node.location)
        if let onFull { config.onFull = onFull }
        if let onStoreError { config.onStoreError = onStoreError }
        if let mode { config.mode = mode }
        return config
    }

    static func readKey(_ node: ConfigNode) -> [RateLimitKeyPart]? {
        let items: [ConfigNode]
        if case .sequence = node.node { items = node.nonEmptyList() ?? [] } else { items = [node] }
        guard !items.isEmpty else { return nil }
        return ConfigNode.distinctEntries(items, duplicate: { "`\($0)` appears twice in the key" }, readKeyPart)
    }

    static func readKeyPart(_ item: ConfigNode) -> RateLimitKeyPart? {
        guard let text = item.string() else { return nil }
        switch text {
        case "peer": return .peer
        case "subject": return .subject
        case "client_id": return .clientID
        case "ip": return .ip
        case "route": return .route
        default:
            let name = text.hasPrefix("header:") ? String(text.dropFirst("header:".count)) : ""
            guard ConfigValueParser.isHeaderName(name) else {
                item.report("`\(text)` is not a rate-limit key", expected: "`peer`, `subject`, `client_id`, `ip`, `header:NAME` or `route`")
                return nil
            }
            return .header(name.lowercased())
        }
    }

    /// A key part must come from something the route verifies: `peer` needs `peers`, and
    /// `subject`/`client_id` a `token`; otherwise every caller would share one bucket, or the
    /// key would rest on nothing.
    static func checkVerified(_ limit: RateLimitConfig, route: RouteConfig, node: ConfigNode) -> Bool {
        var valid = true
        for part in limit.key {
            switch part {
            case .peer where route.peers == nil:
                node.report("rate limit `\(limit.name)` is keyed on `peer`, but route `\(route.name)` verifies no peer",
                    expected: "`peers` on the route, or another key")
                valid = false
            case .subject where route.token == nil, .clientID where route.token == nil:
                node.report("rate limit `\(limit.name)` is keyed on `\(part)`, but route `\(route.name)` verifies no token",
                    expected: "`token` on the route, or another key")
                valid = false
            default:
                continue
            }
        }
        return valid
    }
}
