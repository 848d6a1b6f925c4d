import Foundation

/// Why a secret could not be read. Names the reference (`env:NAME`, `file:/path`), never the
/// secret's content, so it is safe to log.
public struct SecretResolutionError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reference: SecretReference
    public var reason: String

    public init(reference: SecretReference, reason: String) {
        self.reference = reference
        self.reason = reason
    }

    public var description: String { "secret \(reference): \(reason)" }
}

/// Reads the bytes a `SecretReference` points at. Kept apart from loading so that the loader
/// stays pure (it never reads secrets) and so that secrets can be re-read on reload.
public enum SecretResolver {
    /// - Parameter environment: the variables `env:` references are looked up in; injectable for tests.
    /// - Throws: `SecretResolutionError` when the variable is unset or empty, or the file is
    ///   unreadable or empty. An empty secret is never valid: it would be a key nobody chose.
    public static func resolve(
        _ ref: SecretReference, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> [UInt8] {
        switch ref {
        case .environment(let name):
            guard let value = environment[name] else {
                throw SecretResolutionError(reference: ref, reason: "environment variable `\(name)` is not set")
            }
            guard !value.isEmpty else {
                throw SecretResolutionError(reference: ref, reason: "environment variable `\(name)` is empty")
            }
            return Array(value.utf8)
        case .file(let path):
            let data: Data
            switch ConfigLoader.readFile(path) {
            case .success(let bytes): data = bytes
            case .failure(let failure):
                throw SecretResolutionError(reference: ref, reason: "cannot read file (\(failure.reason))")
            }
            guard !data.isEmpty else {
                throw SecretResolutionError(reference: ref, reason: "file is empty")
            }
            return Array(data)
        }
    }
}
