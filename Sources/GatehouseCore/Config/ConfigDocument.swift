import Foundation
import Yams

/// A validated configuration together with the exact text it was read from (and its rollout
/// candidate's), so that `GET /config` shows what runs, not what the file says now.
///
/// `load(path:)` is the one read-and-validate step: `gatehouse check`, `serve` and live
/// reload all go through it (then through the same compile, see `ConfigCompiler`).
public struct ConfigDocument: Sendable {
    public let config: GatewayConfig
    /// The main file's text; its SHA-256 is `config.version`.
    public let text: String
    /// The candidate file's text (its SHA-256 is `config.rollout.candidate.sha256`); nil without `rollout`.
    public let candidateText: String?

    /// How often `load` starts over when the candidate file changes while it is being read.
    static let maximumReadAttempts = 3

    /// Reads, parses and validates `path` (and the rollout candidate it names).
    /// - Throws: `ConfigErrors`, every problem with file, line, column and key path.
    public static func load(path: String) throws(ConfigErrors) -> ConfigDocument {
        for _ in 0..<maximumReadAttempts {
            let data: Data
            switch ConfigLoader.readFile(path) {
            case .success(let bytes): data = bytes
            case .failure(let failure):
                throw ConfigErrors([fileIssue(path, "cannot read the configuration file (\(failure.reason))")])
            }
            guard let text = String(data: data, encoding: .utf8) else {
                throw ConfigErrors([fileIssue(path, "the configuration file is not valid UTF-8")])
            }
            let config = try ConfigLoader.decode(text, file: path, version: ConfigLoader.sha256Hex(data))
            guard let rollout = config.rollout else { return ConfigDocument(config: config, text: text, candidateText: nil) }
            // The loader read the candidate once to validate it; read it again for its text and
            // keep it only if it is the same bytes (else the file changed in between: start over).
            if case .success(let bytes) = ConfigLoader.readFile(rollout.candidateFile),
                ConfigLoader.sha256Hex(bytes) == rollout.candidate.sha256, let candidateText = String(data: bytes, encoding: .utf8)
            {
                return ConfigDocument(config: config, text: text, candidateText: candidateText)
            }
        }
        throw ConfigErrors([fileIssue(path, "the rollout candidate kept changing while it was read; try again")])
    }

    public init(config: GatewayConfig, text: String, candidateText: String?) {
        self.config = config
        self.text = text
        self.candidateText = candidateText
    }

    /// The document of a config loaded earlier from `config.sourceFile`, if the files still
    /// hold exactly what was loaded (same SHA-256); nil otherwise (e.g. a config built in code).
    public init?(recovering config: GatewayConfig) {
        guard case .success(let bytes) = ConfigLoader.readFile(config.sourceFile),
            ConfigLoader.sha256Hex(bytes) == config.version, let text = String(data: bytes, encoding: .utf8)
        else { return nil }
        var candidateText: String?
        if let rollout = config.rollout {
            guard case .success(let candidate) = ConfigLoader.readFile(rollout.candidateFile),
                ConfigLoader.sha256Hex(candidate) == rollout.candidate.sha256
            else { return nil }
            candidateText = String(data: candidate, encoding: .utf8)
        }
        self.init(config: config, text: text, candidateText: candidateText)
    }

    /// Hex SHA-256 of a file's bytes, or nil when it cannot be read (missing, a directory...).
    public static func fileSHA256(_ path: String) -> String? {
        guard case .success(let bytes) = ConfigLoader.readFile(path) else { return nil }
        return ConfigLoader.sha256Hex(bytes)
    }

    private static func fileIssue(_ path: String, _ message: String) -> ConfigIssue {
        ConfigIssue(location: .wholeFile(path), keyPath: "", message: message)
    }

    /// Where top-level `key` is written in the main file; the file's first line when absent.
    public func location(ofSection key: String) -> SourceLocation {
        let file = config.sourceFile
        guard let root = try? Yams.compose(yaml: text), case .mapping(let mapping) = root else {
            return SourceLocation(file: file, line: 1, column: 1)
        }
        for (keyNode, _) in mapping {
            if case .scalar(let scalar) = keyNode, scalar.string == key, let mark = keyNode.mark {
                return SourceLocation(file: file, line: mark.line, column: mark.column)
            }
        }
        return SourceLocation(file: file, line: 1, column: 1)
    }
}

extension GatewayConfig {
    /// Files this configuration reads on its own that no certificate watcher covers: the
    /// file itself, its rollout candidate, webhook secrets and keys given as `file:`, the
    /// admin token file. A change to any of them is a reason to reload.
    public var referencedFiles: [String] {
        var files = [sourceFile]
        if let rollout { files.append(rollout.candidateFile) }
        let routes = self.routes + (rollout?.candidate.routes ?? [])
        for webhook in routes.compactMap(\.webhook) {
            for reference in webhook.secrets + webhook.publicKeys {
                if case .file(let path) = reference { files.append(path) }
            }
        }
        if case .file(let path)? = admin.token { files.append(path) }
        var seen = Set<String>()
        return files.filter { seen.insert($0).inserted }
    }
}
