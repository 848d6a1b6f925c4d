/// `upstreams:` — named groups of backend endpoints that routes forward to.
/// A mapping rather than a list so that the name is the key routes refer to; file order is kept.
enum UpstreamSection {
    static let keys = ["endpoints", "connect_timeout", "response_timeout", "pool", "ejection"]

    static func readAll(_ node: ConfigNode) -> [UpstreamConfig] {
        guard let entries = node.namedEntries() else { return [] }
        return entries.map { read(name: $0.name, $0.value) }
    }

    /// One upstream. `nameNode` is the mapping key (its location is the upstream's location).
    /// Always returns a value, even an invalid one (its problems are logged and the file will
    /// be rejected), so that routes naming it are not also told the upstream does not exist.
    static func read(name nameNode: ConfigNode, _ node: ConfigNode) -> UpstreamConfig {
        let name = nameNode.identifier() ?? nameNode.scalarText ?? ""
        var upstream = UpstreamConfig(name: name, endpoints: [], location: nameNode.location)
        guard let map = node.mapping(keys: keys) else { return upstream }

        var endpoints: [HostPort] = []
        var seen: [HostPort: String] = [:]
        for item in map.required("endpoints", expected: "a list of `host:port`")?.nonEmptyList() ?? [] {
            guard let endpoint = item.hostPort() else { continue }
            if let first = seen[endpoint] {
                item.report("duplicate endpoint `\(endpoint)` (already listed as \(first))")
                continue
            }
            seen[endpoint] = item.path
            endpoints.append(endpoint)
        }

        upstream.endpoints = endpoints
        if let value = map.optional("connect_timeout")?.duration() { upstream.connectTimeout = value }
        if let value = map.optional("response_timeout")?.duration() { upstream.responseTimeout = value }
        if let pool = map.optional("pool") { upstream.pool = readPool(pool) }
        if let ejection = map.optional("ejection") { upstream.ejection = readEjection(ejection) }
        return upstream
    }

    static func readPool(_ node: ConfigNode) -> UpstreamPoolConfig {
        var pool = UpstreamPoolConfig()
        guard let map = node.mapping(keys: ["max_idle_per_loop", "max_connections_per_loop", "max_pending_per_loop", "idle_timeout"])
        else { return pool }
        let idleNode = map.optional("max_idle_per_loop")
        // 0 idle connections is valid: every request then opens a fresh connection.
        if let value = idleNode?.int(in: 0...100_000) { pool.maxIdlePerLoop = value }
        if let value = map.optional("max_connections_per_loop")?.int(in: 1...100_000) { pool.maxConnectionsPerLoop = value }
        // 0 pending means "fail fast with 503" when every connection is busy.
        if let value = map.optional("max_pending_per_loop")?.int(in: 0...1_000_000) { pool.maxPendingPerLoop = value }
        if let value = map.optional("idle_timeout")?.duration() { pool.idleTimeout = value }
        if pool.maxIdlePerLoop > pool.maxConnectionsPerLoop {
            (idleNode ?? node).report(
                "\(pool.maxIdlePerLoop) idle connections exceed max_connections_per_loop (\(pool.maxConnectionsPerLoop))",
                expected: "at most max_connections_per_loop")
        }
        return pool
    }

    static func readEjection(_ node: ConfigNode) -> EjectionConfig {
        var ejection = EjectionConfig()
        guard let map = node.mapping(keys: ["consecutive_failures", "duration"]) else { return ejection }
        if let value = map.optional("consecutive_failures")?.int(in: 1...10_000) { ejection.consecutiveFailures = value }
        if let value = map.optional("duration")?.duration() { ejection.duration = value }
        return ejection
    }
}
