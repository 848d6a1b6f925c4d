import Crypto
import Foundation

/// Reads and validates the gateway's YAML configuration file.
///
/// Either the whole file is valid and a `GatewayConfig` comes back, or `ConfigErrors` is
/// thrown listing every problem found, each as `FILE:LINE:COL: key.path: what is wrong
/// (expected ...)`, in file order. There is no partial result: an invalid file never replaces
/// a valid one. See docs/CONFIG.md for the schema.
public enum ConfigLoader {
    /// Reads `path` and parses it (with its rollout candidate). An unreadable file is
    /// reported as one issue at line 0. `ConfigDocument.load` also keeps the text.
    /// - Throws: `ConfigErrors`.
    public static func load(path: String) throws -> GatewayConfig {
        try ConfigDocument.load(path: path).config
    }

    /// Parses YAML text; `file` is used in error locations and as `sourceFile`.
    /// `version` is the SHA-256 of the text's UTF-8 bytes, i.e. of the file as read by `load`.
    /// - Throws: `ConfigErrors`.
    public static func parse(yaml: String, file: String) throws -> GatewayConfig {
        try decode(yaml, file: file, version: sha256Hex(Data(yaml.utf8)))
    }

    static func decode(_ yaml: String, file: String, version: String) throws(ConfigErrors) -> GatewayConfig {
        let log = IssueLog(file: file)
        if let root = YAMLDocument.compose(yaml, log: log),
           let config = RootSection.read(ConfigNode(node: root, path: "", log: log), sourceFile: file, version: version),
           log.issues.isEmpty
        {
            return config
        }
        throw ConfigErrors(log.sortedIssues)
    }

    static func sha256Hex(_ data: Data) -> String {
        SHA256.hash(data: data).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 0x10 ? "0" + hex : hex
        }.joined()
    }

    struct ReadFailure: Error {
        var reason: String
    }

    /// Reads a whole file, with a short portable reason on failure (Foundation's error text
    /// differs between platforms, and on some a directory reads as an empty file).
    static func readFile(_ path: String) -> Result<Data, ReadFailure> {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            return .failure(ReadFailure(reason: "no such file"))
        }
        guard !isDirectory.boolValue else { return .failure(ReadFailure(reason: "is a directory")) }
        do {
            return .success(try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            let readable = FileManager.default.isReadableFile(atPath: path)
            return .failure(ReadFailure(reason: readable ? "read failed" : "permission denied"))
        }
    }
}
