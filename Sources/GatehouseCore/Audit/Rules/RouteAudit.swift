/// Findings about routes: who may call them, and whether what they require is enforced.
enum RouteAudit {
    /// The identity requirements: a rate limit alone says nothing about who the caller is.
    static let identityChecks: Set<RouteCheck> = [.peers, .token, .webhook]

    static func findings(in file: AuditedConfig, _ config: GatewayConfig) -> [AuditFinding] {
        var findings: [AuditFinding] = []
        let exposed = config.listeners.filter { !AddressScope.isLoopback($0.address.host) }
        let own = ownTrustDomains(config)
        for (index, route) in config.routes.enumerated() {
            let path = "routes[\(index)]"
            let identity = route.checks.filter(identityChecks.contains)
            if identity.isEmpty, let listener = exposed.first {
                findings.append(AuditFinding(.routeNoIdentity, at: route.location, route: route.name, key: path,
                    "route `\(route.name)` (\(describe(route.match))) admits anyone who reaches listener `\(listener.name)` on \(listener.address)"))
            }
            if !identity.isEmpty, identity.allSatisfy({ route.mode(of: $0) == .shadow }), isProd(config.environment) {
                findings.append(AuditFinding(.routeAllShadowInProd, at: file.location("\(path).\(identity[0].rawValue).mode", fallback: route.location),
                    route: route.name, key: path,
                    "every identity requirement of `\(route.name)` (\(identity.map(\.rawValue).joined(separator: ", "))) is in shadow mode: in prod it admits anyone"))
            }
            if let peers = route.peers {
                for (patternIndex, pattern) in peers.patterns.enumerated() {
                    let at = file.location("\(path).peers[\(patternIndex)]", "\(path).peers.allow[\(patternIndex)]", fallback: route.location)
                    if case .trustDomain(let domain) = pattern {
                        findings.append(AuditFinding(.peerWholeTrustDomain, at: at, route: route.name, key: "\(path).peers",
                            "`\(pattern)` lets every workload of trust domain `\(domain)` call `\(route.name)`"))
                    }
                    if !own.contains(pattern.trustDomain) {
                        findings.append(AuditFinding(.peerForeignTrustDomain, at: at, route: route.name, key: "\(path).peers",
                            "`\(pattern)` lets workloads of trust domain `\(pattern.trustDomain)` call `\(route.name)` in environment `\(config.environment)`"))
                    }
                }
            }
            if let webhook = route.webhook {
                if !webhook.rejectReplay {
                    findings.append(AuditFinding(.webhookNoReplay, at: file.location("\(path).webhook.replay", fallback: webhook.location),
                        route: route.name, key: "\(path).webhook",
                        "a captured `\(webhook.scheme.rawValue)` delivery to `\(route.name)` can be sent again and is accepted"))
                }
                if webhook.tolerance > .seconds(600) {
                    findings.append(AuditFinding(.webhookLongTolerance, at: file.location("\(path).webhook.tolerance", fallback: webhook.location),
                        route: route.name, key: "\(path).webhook",
                        "a signed delivery to `\(route.name)` stays acceptable for \(ConfigValueParser.text(webhook.tolerance)) after it was signed"))
                }
            }
        }
        return findings
    }

    /// `prod` and `production` (any case).
    static func isProd(_ environment: String) -> Bool {
        ["prod", "production"].contains(environment.lowercased())
    }

    /// The trust domains that are this environment's own: those with the environment's name as
    /// one of their dot-separated labels (`prod.example` for `prod`).
    static func ownTrustDomains(_ config: GatewayConfig) -> Set<String> {
        let environment = config.environment.lowercased()
        return Set(config.trustDomains.map(\.name).filter { name in
            name.lowercased().split(separator: ".").contains { $0 == environment }
        })
    }

    static func describe(_ match: RouteMatch) -> String {
        let methods = match.methods.map { $0.sorted().joined(separator: ",") } ?? "any method"
        let path: String
        switch match.path {
        case .prefix(let prefix): path = prefix + (prefix.hasSuffix("/") ? "*" : "/*")
        case .exact(let exact): path = exact
        }
        return "\(methods) \(match.host.map { $0 } ?? "")\(path)"
    }
}
