/// The top level of the file, plus the two small sections `admin` and `decision_log`.
enum RootSection {
    static let keys = [
        "environment", "version", "listeners", "admin", "trust_domains", "issuers", "token_minting", "upstreams", "routes",
        "decision_log", "state", "rate_limits", "rollout",
    ]
    /// Top-level sections of later versions (see ARCHITECTURE.md, "Contract with operators").
    static let plannedKeys: [String] = []

    /// The whole configuration, or nil when anything is wrong (every problem is in the log).
    static func read(_ node: ConfigNode, sourceFile: String, version: String) -> GatewayConfig? {
        guard let map = node.mapping(keys: keys, planned: plannedKeys) else { return nil }
        let environment = map.required("environment", expected: "a name such as `prod`")?.identifier()
        let versionNode = map.optional("version")
        let declaredVersion = versionNode.flatMap(readVersion)
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
        let rolloutNode = map.optional("rollout")
        let rollout = rolloutNode.flatMap { RolloutSection.read($0, upstreams: upstreams, context: routeContext) }
        let decisionLog = map.optional("decision_log").map(readDecisionLog) ?? DecisionLogConfig()
        let state = map.optional("state").map(readState) ?? StateConfig()
        TokenSection.checkDistinctIssuers(routes: routes, issuers: issuers, log: node.log)

        guard let environment, versionNode == nil || declaredVersion != nil, rolloutNode == nil || rollout != nil,
            node.log.issues.isEmpty
        else { return nil }
        var config = GatewayConfig(
            environment: environment, listeners: listeners, admin: admin, trustDomains: trustDomains, upstreams: upstreams,
            routes: routes, decisionLog: decisionLog, sourceFile: sourceFile, version: version)
        config.issuers = issuers
        config.tokenMinting = minting
        config.state = state
        config.declaredVersion = declaredVersion
        config.rollout = rollout
        if let rollout, rollout.candidate.version == config.policyVersion, let versionNode {
            versionNode.report("the candidate policy has the same version `\(rollout.candidate.version)`",
                expected: "distinct versions, so that records and metrics tell the two policies apart")
            return nil
        }
        return config
    }

    /// `version`: how records and metrics name this policy (e.g. `v42`, `2026-11-22.1`).
    static func readVersion(_ node: ConfigNode) -> String? {
        node.parse("a version such as `v42`") { (text) throws(ConfigValueError) in
            guard (1...64).contains(text.utf8.count),
                text.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x2E || $0 == 0x2D || $0 == 0x5F })
            else {
                throw ConfigValueError("`\(text)` is not a version", expected: "1 to 64 letters, digits, `.`, `-` or `_`, e.g. `v42`")
            }
            return text
        }
    }

    /// The admin listener is on by default, on loopback. It is turned off with `enabled: false`
    /// (one way only, so that two files that mean the same thing look the same).
    static func readAdmin(_ node: ConfigNode, listeners: [ListenerConfig]) -> AdminConfig {
        guard let map = node.mapping(keys: ["address", "enabled", "token"]) else { return AdminConfig() }
        let tokenNode = map.optional("token")
        let token = tokenNode?.secretReference()
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
        var config = AdminConfig(address: enabled ? address : nil, token: token)
        config.tokenLocation = tokenNode?.location
        return config
    }

    /// `state`: where replay keys (token `jti`, webhook deliveries) and rate cells are kept.
    static func readState(_ node: ConfigNode) -> StateConfig {
        var config = StateConfig()
        let redisKeys = ["address", "password", "tls", "key_prefix", "timeout", "connections"]
        guard let map = node.mapping(keys: ["backend", "max_entries"] + redisKeys) else { return config }
        let backend = map.optional("backend").flatMap { backendNode -> String? in
            switch backendNode.string() {
            case "memory": return "memory"
            case "redis": return "redis"
            case let other?:
                backendNode.report("unknown backend `\(other)`", expected: "`memory` or `redis`")
                return nil
            case nil: return nil
            }
        } ?? "memory"
        if backend == "redis" {
            if map.has("max_entries") {
                map.optional("max_entries")?.report("`max_entries` bounds the in-memory store", expected: "no `max_entries` with `backend: redis`")
            }
            config.redis = readRedis(node, map)
        } else {
            for key in redisKeys where map.has(key) {
                map.optional(key)?.report("`\(key)` applies to `backend: redis`", expected: "`backend: redis`, or no `\(key)`")
            }
            if let entries = map.optional("max_entries")?.int(in: 1...100_000_000) { config.maxEntries = entries }
        }
        return config
    }

    static func readRedis(_ node: ConfigNode, _ map: MappingReader) -> RedisConfig? {
        guard let address = map.required("address", expected: "`host:port` of the Redis server")?.hostPort() else { return nil }
        var config = RedisConfig(address: address, location: node.location)
        var valid = true
        if let passwordNode = map.optional("password") {
            if let reference = passwordNode.secretReference() { config.password = reference } else { valid = false }
        }
        if let prefixNode = map.optional("key_prefix") {
            if let prefix = prefixNode.string(), prefix.utf8.count <= 64, prefix.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != 0x7B && $0 != 0x7D }) {
                config.keyPrefix = prefix
            } else {
                prefixNode.report("not a key prefix", expected: "up to 64 printable characters without spaces or braces, e.g. `gatehouse:`")
                valid = false
            }
        }
        if let timeoutNode = map.optional("timeout") {
            if let timeout = timeoutNode.duration(), timeout <= .seconds(10) {
                config.timeout = timeout
            } else {
                if timeoutNode.duration() != nil { timeoutNode.report("a state store answer is awaited at most 10 s", expected: "e.g. `50ms`") }
                valid = false
            }
        }
        if let connectionsNode = map.optional("connections") {
            if let count = connectionsNode.int(in: 1...64) { config.connections = count } else { valid = false }
        }
        if let tlsNode = map.optional("tls") {
            guard let tls = tlsNode.mapping(keys: ["ca", "server_name", "certificate", "private_key"]) else { return nil }
            var settings = RedisTLSConfig()
            settings.caFile = tls.optional("ca")?.nonEmptyString()
            settings.serverName = tls.optional("server_name")?.nonEmptyString()
            settings.certificatePath = tls.optional("certificate")?.nonEmptyString()
            settings.privateKey = tls.optional("private_key")?.secretReference()
            if tls.has("certificate") != tls.has("private_key") {
                tlsNode.report("a client certificate needs its key", expected: "both `certificate` and `private_key`, or neither")
                valid = false
            }
            config.tls = settings
        }
        return valid ? config : nil
    }

    static func readDecisionLog(_ node: ConfigNode) -> DecisionLogConfig {
        var config = DecisionLogConfig()
        guard let map = node.mapping(keys: ["path", "queue_capacity"]) else { return config }
        if let path = map.optional("path")?.nonEmptyString() { config.path = path }
        if let capacity = map.optional("queue_capacity")?.int(in: 1...10_000_000) { config.queueCapacity = capacity }
        return config
    }
}
