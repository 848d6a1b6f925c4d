/// Where a config value came from, so that every error can name file, line and column.
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }

    /// The file as a whole (line 0): for a problem with no line of its own (unreadable file,
    /// shutting down) and, with an empty path, for comparing values with their places blanked.
    public static func wholeFile(_ path: String) -> SourceLocation {
        SourceLocation(file: path, line: 0, column: 0)
    }
}

/// One problem found in a configuration file.
/// Printed as `FILE:LINE:COL: key.path: what is wrong (expected ...)`.
public struct ConfigIssue: Error, Sendable, Hashable, CustomStringConvertible {
    public var location: SourceLocation
    public var keyPath: String
    public var message: String
    public var expected: String?

    public init(location: SourceLocation, keyPath: String, message: String, expected: String? = nil) {
        self.location = location
        self.keyPath = keyPath
        self.message = message
        self.expected = expected
    }

    public var description: String {
        var text = "\(location): \(keyPath.isEmpty ? "<root>" : keyPath): \(message)"
        if let expected { text += " (expected \(expected))" }
        return text
    }
}

/// Every problem found in one load; a config with any issue is never used.
public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    public var issues: [ConfigIssue]
    public init(_ issues: [ConfigIssue]) { self.issues = issues }
    public var description: String { issues.map(\.description).joined(separator: "\n") }
}
