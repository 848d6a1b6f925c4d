/// Findings about token issuers: what a token of theirs must prove before it is accepted.
enum IssuerAudit {
    /// Longer than this, a stolen token stays useful for too long.
    static let longestLifetime: Duration = .seconds(3600)
    static let hmacAlgorithms: Set<String> = ["HS256", "HS384", "HS512"]

    static func findings(in file: AuditedConfig, _ config: GatewayConfig) -> [AuditFinding] {
        var findings: [AuditFinding] = []
        for issuer in config.issuers {
            let key = "issuers.\(issuer.name)"
            let users = config.routes.filter { $0.token?.issuers.contains(issuer.name) == true }.map(\.name)
            let usedBy = users.isEmpty ? "no route yet" : "route(s) \(users.map { "`\($0)`" }.joined(separator: ", "))"
            if issuer.audiences.isEmpty {
                findings.append(AuditFinding(.issuerNoAudience, at: issuer.location, key: key,
                    "a token `\(issuer.issuer)` minted for any service is accepted by \(usedBy)"))
            }
            if let lifetime = issuer.maxLifetime {
                if lifetime > longestLifetime {
                    findings.append(AuditFinding(.issuerLongMaxLifetime, at: file.location("\(key).max_lifetime", fallback: issuer.location), key: key,
                        "tokens of `\(issuer.name)` living up to \(ConfigValueParser.text(lifetime)) are accepted by \(usedBy)"))
                }
            } else {
                findings.append(AuditFinding(.issuerNoMaxLifetime, at: issuer.location, key: key,
                    "tokens of `\(issuer.name)` of any lifetime (up to their own `exp`) are accepted by \(usedBy)"))
            }
            let hmac = issuer.hmacSecret != nil || (issuer.algorithms ?? []).contains(where: hmacAlgorithms.contains)
            if hmac {
                findings.append(AuditFinding(.issuerHMAC, at: file.location("\(key).algorithms", "\(key).hmac_secret", fallback: issuer.location), key: key,
                    "whoever holds `\(issuer.name)`'s HMAC secret (every verifier) can mint tokens accepted by \(usedBy)"))
            }
            if !bindsEnvironment(issuer, config.environment) {
                findings.append(AuditFinding(.issuerNoEnvironmentBinding, at: file.location("\(key).required_claims", fallback: issuer.location), key: key,
                    "a token of `\(issuer.name)` issued for another environment is accepted here (no required claim equals `\(config.environment)`)"))
            }
        }
        return findings
    }

    /// Some required claim's value is the environment's name (`env: prod`, `tenant: prod`).
    static func bindsEnvironment(_ issuer: IssuerConfig, _ environment: String) -> Bool {
        issuer.requiredClaims.values.contains { $0.description == environment }
    }
}
