import Crypto
import Foundation

/// Findings that need several configs: the same secret, trust bundle or key set used by
/// configs of different `environment`s (a staging credential that opens prod).
///
/// Secrets are compared by HMAC-SHA256 under a key drawn at random for each run, so that no
/// comparable digest of a secret outlives the run; neither the secret nor its digest is printed.
struct CrossEnvironmentAudit {
    /// Everything that identifies one use of a shared thing.
    struct Use {
        var environment: String
        var file: String
        var key: String
        var location: SourceLocation
        var label: String
    }

    let secretResolver: @Sendable (SecretReference) -> [UInt8]?
    private let runKey = SymmetricKey(size: .bits256)

    init(secretResolver: @escaping @Sendable (SecretReference) -> [UInt8]?) {
        self.secretResolver = secretResolver
    }

    func findings(_ files: [AuditedConfig]) -> [AuditFinding] {
        var secrets: [String: [Use]] = [:]
        var bundles: [String: [Use]] = [:]
        var keySets: [String: [Use]] = [:]
        for file in files {
            guard let config = file.config else { continue }
            for (reference, key) in secretReferences(config) {
                let use = Use(environment: config.environment, file: file.path, key: key,
                    location: file.location(key, fallback: SourceLocation(file: file.path, line: 1, column: 1)), label: reference.description)
                secrets[fingerprint(reference), default: []].append(use)
            }
            for domain in config.trustDomains {
                let key = "trust_domains.\(domain.name).bundle"
                bundles[contentIdentity(domain.bundlePath), default: []].append(Use(
                    environment: config.environment, file: file.path, key: key, location: domain.bundleLocation,
                    label: "bundle `\(domain.bundlePath)` of trust domain `\(domain.name)`"))
            }
            for issuer in config.issuers {
                let key = "issuers.\(issuer.name)"
                if let jwks = issuer.jwksFile {
                    keySets[contentIdentity(jwks), default: []].append(Use(
                        environment: config.environment, file: file.path, key: key,
                        location: file.location("\(key).jwks_file", fallback: issuer.location), label: "JWKS file `\(jwks)` of issuer `\(issuer.name)`"))
                }
                if let endpoint = issuer.jwksEndpoint {
                    keySets["uri:\(endpoint.url)", default: []].append(Use(
                        environment: config.environment, file: file.path, key: key,
                        location: file.location("\(key).jwks_uri", fallback: issuer.location), label: "JWKS `\(endpoint.url)` of issuer `\(issuer.name)`"))
                }
            }
        }
        return shared(secrets, .secretSharedAcrossEnvironments) { use, others, resolved in
            let how = resolved ? "the same secret value (compared by a keyed hash; resolved in this run)" : "the same reference (it could not be resolved, so values were not compared)"
            return "secret \(use.label) at `\(use.key)` is \(how) as in environment(s) \(others): a leak of the weaker environment opens this one"
        } + shared(bundles, .trustBundleSharedAcrossEnvironments) { use, others, _ in
            "the \(use.label) is also trusted in environment(s) \(others): workloads certified there are accepted here"
        } + shared(keySets, .jwksSharedAcrossEnvironments) { use, others, _ in
            "the \(use.label) is also trusted in environment(s) \(others): tokens issued there verify here"
        }
    }

    /// One finding per use of a thing used by more than one environment.
    private func shared(
        _ groups: [String: [Use]], _ rule: AuditRule, _ message: (Use, String, Bool) -> String
    ) -> [AuditFinding] {
        var findings: [AuditFinding] = []
        for (identity, uses) in groups {
            let environments = Set(uses.map(\.environment))
            guard environments.count > 1 else { continue }
            for use in uses {
                let others = environments.subtracting([use.environment]).sorted().map { "`\($0)`" }.joined(separator: ", ")
                findings.append(AuditFinding(rule, at: use.location, key: use.key, message(use, others, !identity.hasPrefix("ref:"))))
            }
        }
        return findings
    }

    /// `hmac:<base64>` of the resolved value, or `ref:<reference>` when it cannot be resolved.
    private func fingerprint(_ reference: SecretReference) -> String {
        guard let value = secretResolver(reference) else { return "ref:\(reference)" }
        return "hmac:" + Data(HMAC<SHA256>.authenticationCode(for: value, using: runKey)).base64EncodedString()
    }

    /// A file's content digest when readable (two paths to one bundle are one bundle), else its path.
    private func contentIdentity(_ path: String) -> String {
        if let data = FileManager.default.contents(atPath: path) {
            return "sha256:" + SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
        }
        return "path:" + URL(fileURLWithPath: path).standardizedFileURL.path
    }

    /// Every secret reference in the config, with its key path.
    func secretReferences(_ config: GatewayConfig) -> [(SecretReference, String)] {
        var references: [(SecretReference, String)] = []
        for (index, listener) in config.listeners.enumerated() {
            if let key = listener.tls?.privateKey { references.append((key, "listeners[\(index)].tls.private_key")) }
        }
        if let token = config.admin.token { references.append((token, "admin.token")) }
        for issuer in config.issuers {
            if let secret = issuer.hmacSecret { references.append((secret, "issuers.\(issuer.name).hmac_secret")) }
        }
        if let minting = config.tokenMinting { references.append((minting.privateKey, "token_minting.private_key")) }
        for upstream in config.upstreams {
            if let key = upstream.tls?.privateKey { references.append((key, "upstreams.\(upstream.name).tls.private_key")) }
        }
        for (index, route) in config.routes.enumerated() {
            for (secretIndex, secret) in (route.webhook?.secrets ?? []).enumerated() {
                references.append((secret, "routes[\(index)].webhook.secrets[\(secretIndex)]"))
            }
        }
        if let redis = config.state.redis {
            if let password = redis.password { references.append((password, "state.password")) }
            if let key = redis.tls?.privateKey { references.append((key, "state.tls.private_key")) }
        }
        return references
    }
}
