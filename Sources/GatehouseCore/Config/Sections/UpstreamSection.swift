/// `upstreams:` — named groups of backend endpoints that routes forward to.
/// A mapping rather than a list so that the name is the key routes refer to; file order is kept.
enum UpstreamSection {
    static let keys = ["endpoints", "connect_timeout", "response_timeout", "pool", "ejection", "tls"]
    static let tlsKeys = ["ca", "trust_domain", "server_name", "certificate", "private_key", "spiffe_id"]

    static func readAll(_ node: ConfigNode, trustDomains: [String] = []) -> [UpstreamConfig] {
        guard let entries = node.namedEntries() else { return [] }
        return entries.map { read(name: $0.name, $0.value, trustDomains: trustDomains) }
    }

    /// One upstream. `nameNode` is the mapping key (its location is the upstream's location).
    /// Always returns a value, even an invalid one (its problems are logged and the file will
    /// be rejected), so that routes naming it are not also told the upstream does not exist.
    static func read(name nameNode: ConfigNode, _ node: ConfigNode, trustDomains: [String] = []) -> UpstreamConfig {
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
        if let tls = map.optional("tls") { upstream.tls = readTLS(tls, trustDomains: trustDomains) }
        return upstream
    }

    /// The upstream hop over TLS. The upstream's certificate is always verified: against a CA
    /// file or a trust domain's bundle, then either by SPIFFE ID (`spiffe_id`) or by host name.
    static func readTLS(_ node: ConfigNode, trustDomains: [String]) -> UpstreamTLSConfig? {
        guard let map = node.mapping(keys: tlsKeys) else { return nil }
        var roots: UpstreamTLSConfig.Roots?
        switch (map.optional("ca"), map.optional("trust_domain")) {
        case (let caNode?, nil):
            roots = caNode.nonEmptyString().map(UpstreamTLSConfig.Roots.caFile)
        case (nil, let domainNode?):
            if let name = domainNode.string() {
                if trustDomains.contains(name) {
                    roots = .trustDomain(name)
                } else {
                    domainNode.report("trust domain `\(name)` is not configured",
                        expected: trustDomains.isEmpty ? "an entry under `trust_domains`" : "one of \(MappingReader.list(trustDomains))")
                }
            }
        case (_?, let domainNode?):
            domainNode.report("`ca` and `trust_domain` cannot both be set", expected: "exactly one of them")
        case (nil, nil):
            node.report("no roots to verify the upstream with", expected: "`ca: FILE` or `trust_domain: NAME`")
        }
        let serverNameNode = map.optional("server_name")
        let serverName = serverNameNode?.parse("a host name") { (text) throws(ConfigValueError) in
            guard ConfigValueParser.isHostname(text) || ConfigValueParser.ipAddress(text) != nil else {
                throw ConfigValueError("`\(text)` is not a host name", expected: "a DNS name such as `billing.internal`")
            }
            return text
        }
        let certificate = map.optional("certificate")?.nonEmptyString()
        let privateKey = map.optional("private_key")?.secretReference()
        var pairValid = true
        if map.has("certificate") != map.has("private_key") {
            node.report("`certificate` and `private_key` go together", expected: "both, or neither")
            pairValid = false
        }
        var spiffeIDs: [SPIFFEID] = []
        var idsValid = true
        if let idNode = map.optional("spiffe_id") {
            let items: [ConfigNode]
            if case .sequence = idNode.node { items = idNode.nonEmptyList() ?? [] } else { items = [idNode] }
            for item in items {
                guard let id = item.spiffeID() else {
                    idsValid = false
                    continue
                }
                if case .trustDomain(let domain)? = roots, id.trustDomain != domain {
                    item.report("`\(id)` is not in trust domain `\(domain)`, whose bundle verifies this upstream",
                        expected: "a SPIFFE ID in `spiffe://\(domain)/...`")
                    idsValid = false
                }
                spiffeIDs.append(id)
            }
            if items.isEmpty { idsValid = false }
        }
        guard let roots, pairValid, idsValid, serverNameNode == nil || serverName != nil else { return nil }
        return UpstreamTLSConfig(
            roots: roots, serverName: serverName, certificatePath: certificate, privateKey: privateKey,
            spiffeIDs: spiffeIDs)
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
