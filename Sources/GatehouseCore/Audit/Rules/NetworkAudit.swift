/// Findings about who can reach what: trusted proxies, the admin listener, upstream hops.
enum NetworkAudit {
    static func findings(in file: AuditedConfig, _ config: GatewayConfig) -> [AuditFinding] {
        var findings: [AuditFinding] = []
        for (index, listener) in config.listeners.enumerated() {
            let key = "listeners[\(index)].trusted_proxies"
            for (proxyIndex, cidr) in listener.trustedProxies.enumerated() where !AddressScope.isPrivate(cidr) {
                findings.append(AuditFinding(.listenerPublicTrustedProxies, at: file.location("\(key)[\(proxyIndex)]", fallback: listener.location), key: key,
                    "clients from \(cidr) on listener `\(listener.name)` may set X-Forwarded-For and X-Request-Id, i.e. choose the client address that rate limits and records see"))
            }
        }
        if let address = config.admin.address, !AddressScope.isLoopback(address.host) {
            findings.append(AuditFinding(.adminOffLoopback, at: file.location("admin.address", "admin", fallback: SourceLocation(file: file.path, line: 1, column: 1)),
                key: "admin.address", "the admin listener (metrics, health, keys) on \(address) is reachable from other machines"))
        }
        if let rollout = config.rollout, config.admin.address != nil, config.admin.token == nil {
            findings.append(AuditFinding(.adminNoToken, at: file.location("admin", fallback: rollout.location), key: "admin.token",
                "the rollout's promote/rollback endpoints have no token: they are either open to anyone who reaches the admin listener or unusable"))
        }
        for upstream in config.upstreams {
            let key = "upstreams.\(upstream.name)"
            if let tls = upstream.tls {
                if tls.spiffeIDs.isEmpty {
                    let name = tls.serverName ?? upstream.endpoints.first?.host ?? "?"
                    findings.append(AuditFinding(.upstreamTLSNoIdentity, at: file.location("\(key).tls", fallback: upstream.location), key: key,
                        "any workload with a certificate for `\(name)` from the configured roots can stand in for `\(upstream.name)`"))
                }
            } else if let remote = upstream.endpoints.first(where: { !AddressScope.isLoopback($0.host) }) {
                findings.append(AuditFinding(.upstreamPlaintextRemote, at: file.location("\(key).endpoints", fallback: upstream.location), key: key,
                    "requests, identity headers and tokens forwarded to `\(upstream.name)` cross the network to \(remote) in plaintext"))
            }
        }
        return findings
    }
}
