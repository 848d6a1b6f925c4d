/// The top level of the file, plus the two small sections `admin` and `decision_log`.
enum RootSection {
    static let keys = [
        "environment", "listeners", "admin", "trust_domains", "issuers", "token_minting", "upstreams", "routes", "decision_log",
        "state", "rate_limits",
    ]
    /// Top-level sections of later versions (see ARCHITECTURE.md, "Contract with operators").
    static let plannedKeys = ["rollout"]

    /// The whole configuration, or nil when anything is wrong (every problem is in the log).
    static func read(_ node: ConfigNode, sourceFile: String, version: String) -> GatewayConfig? {
        guard let map = node.mapping(keys: keys, planned: plannedKeys) else { return nil }
        let environment = map.required("environment", expected: "a name such as `prod`")?.identifier()
        let trustDomains = map.optional("trust_domains").map(TrustDomainSection.readAll) ?? []
        let domainNames = trustDomains.map(\.name)
        let issuersNode = map.optional("issuers")
        let issuers = issuersNode.map(TokenSection.readIssuers) ?? []
        let mintingNode = map.optional("token_minting")
        let minting = mintingNode.flatMap(TokenSection.readMinting)
        let listeners = map.required("listeners", expected: "a list of listeners")
            .map { ListenerSection.readAll($0, trustDomains: domainNames) } ?? []
        let admin = map.optional("admin").map { readAdmin($0, listeners: listeners) } ?? AdminConfig()
        let upstreams = map.required("upstreams", expected: "a mapping of upstream names to upstreams")
            .map { UpstreamSection.readAll($0, trustDomains: domainNames) } ?? []
        let rateLimitsNode = map.optional("rate_limits")
        let routeContext = RouteSection.Context(
            trustDomains: domainNames, issuers: issuersNode.map(TokenSection.issuerNames) ?? [], mintingConfigured: mintingNode != nil,
            rateLimits: rateLimitsNode.map(RateLimitSection.readAll) ?? [], rateLimitNames: rateLimitsNode.map(RateLimitSection.names) ?? [])
        let routes = map.required("routes", expected: "a list of routes")
            .map { RouteSection.readAll($0, upstreams: upstreams, context: routeContext) } ?? []
        let decisionLog = map.optional("decision_log").map(readDecisionLog) ?? DecisionLogConfig()
        let state = map.optional("state").map(readState) ?? StateConfig()
        TokenSection.checkDistinctIssuers(routes: routes, issuers: issuers, log: node.log)

        guard let environment, node.log.issues.isEmpty else { return nil }
        var config = GatewayConfig(
            environment: environment, listeners: listeners, admin: admin, trustDomains: trustDomains, upstreams: upstreams,
            routes: routes, decisionLog: decisionLog, sourceFile: sourceFile, version: version)
        config.issuers = issuers
        config.tokenMinting = minting
        config.state = state
        return config
    }

    /// The admin listener is on by default, on loopback. It is turned off with `enabled: false`
    /// (one way only, so that two files that mean the same thing look the same).
    static func readAdmin(_ node: ConfigNode, listeners: [ListenerConfig]) -> AdminConfig {
        guard let map = node.mapping(keys: ["address", "enabled"]) else { return AdminConfig() }
        let enabled = map.optional("enabled")?.bool() ?? true
        var address = AdminConfig().address
        if let addressNode = map.optional("address") {
            if case .scalar = addressNode.node, addressNode.node.tagName == .null {
                addressNode.report("wrong type: found null", expected: "`host:port`; to turn the admin listener off, write `enabled: false`")
            } else if let value = addressNode.hostPort(ports: 0...65535) {
                address = value
                if value.port != 0, let listener = listeners.first(where: { $0.address == value }) {
                    addressNode.report("address `\(value)` is already used by listener `\(listener.name)`")
                }
            }
        }
        return AdminConfig(address: enabled ? address : nil)
    }

    /// `state`: where replay keys (token `jti`, webhook deliveries) are kept.
    static func readState(_ node: ConfigNode) -> StateConfig {
        var config = StateConfig()
        guard let map = node.mapping(keys: ["backend", "max_entries"], planned: ["address", "password", "tls", "key_prefix", "timeout"]) else {
            return config
        }
        if let backendNode = map.optional("backend") {
            switch backendNode.string() {
            case "memory": break
            case "redis": backendNode.report("`redis` is not supported by this version of gatehouse", expected: "`memory`")
            case let other?: backendNode.report("unknown backend `\(other)`", expected: "`memory`")
            case nil: break
            }
        }
        if let entries = map.optional("max_entries")?.int(in: 1...100_000_000) { config.maxEntries = entries }
        return config
    }

    static func readDecisionLog(_ node: ConfigNode) -> DecisionLogConfig {
        var config = DecisionLogConfig()
        guard let map = node.mapping(keys: ["path", "queue_capacity"]) else { return config }
        if let path = map.optional("path")?.nonEmptyString() { config.path = path }
        if let capacity = map.optional("queue_capacity")?.int(in: 1...10_000_000) { config.queueCapacity = capacity }
        return config
    }
}
