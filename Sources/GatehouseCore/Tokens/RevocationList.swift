import Foundation

/// `issuers.NAME.revoked`: token ids and subjects that must no longer be accepted, one per
/// line as `jti:VALUE` or `sub:VALUE`; blank lines and `#` comments are ignored.
public struct RevocationList: Sendable, Equatable {
    public private(set) var tokenIDs: Set<String> = []
    public private(set) var subjects: Set<String> = []

    public static let empty = RevocationList()

    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public let line: Int
        public let message: String
        public var description: String { "line \(line): \(message)" }
    }

    public init() {}

    /// Strict: an unreadable line must not silently leave a token valid.
    public init(parsing text: String) throws(ParseError) {
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("jti:"), line.count > 4 {
                tokenIDs.insert(String(line.dropFirst(4)))
            } else if line.hasPrefix("sub:"), line.count > 4 {
                subjects.insert(String(line.dropFirst(4)))
            } else {
                throw ParseError(line: index + 1, message: "expected `jti:VALUE` or `sub:VALUE`")
            }
        }
    }

    public func revokes(_ token: VerifiedToken) -> Bool {
        if let jti = token.jti, tokenIDs.contains(jti) { return true }
        if let sub = token.sub, subjects.contains(sub) { return true }
        return false
    }
}
