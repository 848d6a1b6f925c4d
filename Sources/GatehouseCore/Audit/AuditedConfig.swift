/// One file given to `gatehouse audit`: the loaded config with its key locations, or the
/// loader's errors when it does not load.
struct AuditedConfig: Sendable {
    enum Content: Sendable {
        case loaded(GatewayConfig)
        case failed([ConfigIssue])
    }

    let path: String
    let content: Content
    let keys: KeyLocations

    init(path: String) {
        self.path = path
        do {
            content = .loaded(try ConfigLoader.load(path: path))
        } catch let errors as ConfigErrors {
            content = .failed(errors.issues)
        } catch {
            content = .failed([ConfigIssue(location: .wholeFile(path), keyPath: "", message: "\(error)")])
        }
        keys = KeyLocations(file: path)
    }

    init(config: GatewayConfig, yaml: String) {
        path = config.sourceFile
        content = .loaded(config)
        keys = KeyLocations(file: config.sourceFile, yaml: yaml)
    }

    /// The rollout's candidate policy as a config of its own (the main file's listeners,
    /// trust domains and issuers, the candidate's routes and file), so that the route rules
    /// see the routes that may be promoted.
    func rolloutCandidate() -> AuditedConfig? {
        guard var config, let rollout = config.rollout,
            case .success(let data) = ConfigLoader.readFile(rollout.candidateFile)
        else { return nil }
        config.routes = rollout.candidate.routes
        config.sourceFile = rollout.candidateFile
        config.rollout = nil
        return AuditedConfig(config: config, yaml: String(decoding: data, as: UTF8.self))
    }

    var config: GatewayConfig? {
        if case .loaded(let config) = content { return config }
        return nil
    }

    /// Location of the first of `keyPaths` written in this file (see `KeyLocations`), else `fallback`.
    func location(_ keyPaths: String..., fallback: SourceLocation) -> SourceLocation {
        keys.location(keyPaths, fallback: fallback)
    }
}
