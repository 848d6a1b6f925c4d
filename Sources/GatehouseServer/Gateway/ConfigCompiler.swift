import GatehouseCore

/// The one validation that `gatehouse check`, `serve` and live reload share: read and
/// validate the file (`ConfigDocument.load`), then compile it into the snapshot the data
/// path runs (secrets resolved, upstream TLS contexts built, endpoint names resolved,
/// webhook keys parsed). Anything that fails is a `ConfigIssue` naming file, line and key.
public enum ConfigCompiler {
    /// Reads and validates `path` and the files it includes (the rollout candidate).
    public static func load(path: String) throws(ConfigErrors) -> ConfigDocument {
        try ConfigDocument.load(path: path)
    }

    /// Compiles a validated config. `previous` (on reload) lends the running upstream
    /// clusters and minter where their settings did not change.
    static func compile(
        _ config: GatewayConfig, trust: TrustDomainStore?, tokens: TokenVerifierStore?, environment: [String: String],
        reusing previous: GatewaySnapshot? = nil, rolloutHooks: RolloutHooks = RolloutHooks()
    ) throws(ConfigErrors) -> GatewaySnapshot {
        do {
            return try GatewaySnapshot(
                config: config, trust: trust, tokens: tokens, environment: environment, reusing: previous, rolloutHooks: rolloutHooks)
        } catch let errors as ConfigErrors {
            throw errors
        } catch {
            throw ConfigErrors([ConfigIssue(location: .wholeFile(config.sourceFile), keyPath: "", message: "\(error)")])
        }
    }

    /// The sections a running gateway does not swap: listeners are bound, the admin
    /// listener too, trust bundles are shared with the listeners' TLS, issuers own their JWKS
    /// refreshers, the state store and decision log are open connections and files, and the
    /// environment scopes secrets and state keys. Everything else (routes, upstreams,
    /// rate_limits, token_minting, rollout, version) applies live.
    public static let restartSections = [
        "environment", "listeners", "admin", "trust_domains", "issuers", "state", "decision_log",
    ]

    /// One issue per restart-only section that `new` changes (wherever it is written: only
    /// the settings count, not their lines), located at the section's key in the new file.
    static func restartRequired(running: GatewayConfig, new document: ConfigDocument) -> [ConfigIssue] {
        let new = document.config
        var changed: [String] = []
        if running.environment != new.environment { changed.append("environment") }
        if running.listeners.map(\.settings) != new.listeners.map(\.settings) { changed.append("listeners") }
        if running.admin.settings != new.admin.settings { changed.append("admin") }
        if running.trustDomains.map(\.settings) != new.trustDomains.map(\.settings) { changed.append("trust_domains") }
        if running.issuers.map(\.settings) != new.issuers.map(\.settings) { changed.append("issuers") }
        if running.state.settings != new.state.settings { changed.append("state") }
        if running.decisionLog != new.decisionLog { changed.append("decision_log") }
        return changed.map { key in
            ConfigIssue(
                location: document.location(ofSection: key), keyPath: key,
                message: "changed: restart to apply (a reload does not swap `\(key)`; the running configuration stays)")
        }
    }
}

/// Each config value with its source locations blanked, so that two loads compare equal
/// when only the lines around them moved.
extension AdminConfig {
    var settings: AdminConfig {
        var copy = self
        copy.tokenLocation = nil
        return copy
    }
}

extension ListenerConfig {
    var settings: ListenerConfig {
        var copy = self
        copy.location = .wholeFile("")
        return copy
    }
}

extension TrustDomainConfig {
    var settings: TrustDomainConfig {
        var copy = self
        copy.location = .wholeFile("")
        copy.bundleLocation = copy.location
        return copy
    }
}

extension IssuerConfig {
    var settings: IssuerConfig {
        var copy = self
        copy.location = .wholeFile("")
        return copy
    }
}

extension StateConfig {
    var settings: StateConfig {
        var copy = self
        copy.redis?.location = .wholeFile("")
        return copy
    }
}

extension TokenMintingConfig {
    func sameSettings(as other: TokenMintingConfig) -> Bool {
        var copy = self
        copy.location = other.location
        return copy == other
    }
}
