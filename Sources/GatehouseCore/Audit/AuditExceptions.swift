import Foundation

/// One accepted risk from the exceptions file: a finding id, the route or key it covers,
/// who accepted it, why, and until when.
public struct AuditException: Sendable, Hashable {
    public var id: String
    public var route: String?
    public var key: String?
    /// The person who accepted the risk; an exception without one suppresses nothing.
    public var owner: String?
    public var reason: String
    /// `YYYY-MM-DD`; the exception is in force through that day (UTC).
    public var expires: String
    /// Limits the exception to findings in this config file (as given on the command line);
    /// nil: every file of the run.
    public var config: String?
    public var location: SourceLocation

    public func matches(_ finding: AuditFinding) -> Bool {
        guard finding.id == id else { return false }
        if let config, Self.standardized(config) != Self.standardized(finding.location.file) { return false }
        if let route { return finding.route == route }
        if let key { return finding.key == key || finding.key.hasPrefix(key + ".") || finding.key.hasPrefix(key + "[") }
        return false
    }

    /// Expired once `today` (`YYYY-MM-DD`, UTC) is after `expires`; ISO dates sort as text.
    public func isExpired(today: String) -> Bool { expires < today }

    /// What the exception covers, for listings.
    public var scope: String { (route.map { "route \($0)" } ?? "key \(key ?? "?")") + (config.map { " in \($0)" } ?? "") }

    static func standardized(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }
}

/// Reads the exceptions file (`--exceptions FILE`): a YAML list of
/// `{ id, route | key, owner, reason, expires: YYYY-MM-DD, config? }`. Unknown keys, unknown finding
/// ids and malformed dates are errors with file:line, like the config loader's.
public enum AuditExceptions {
    static let keys = ["id", "route", "key", "owner", "reason", "expires", "config"]

    /// - Throws: `ConfigErrors`.
    public static func load(path: String) throws -> [AuditException] {
        guard case .success(let data) = ConfigLoader.readFile(path), let text = String(data: data, encoding: .utf8) else {
            throw ConfigErrors([ConfigIssue(location: .wholeFile(path), keyPath: "", message: "cannot read the exceptions file")])
        }
        return try parse(yaml: text, file: path)
    }

    /// - Throws: `ConfigErrors`.
    public static func parse(yaml: String, file: String) throws -> [AuditException] {
        let log = IssueLog(file: file)
        var exceptions: [AuditException] = []
        if let root = YAMLDocument.compose(yaml, log: log) {
            for item in ConfigNode(node: root, path: "", log: log).list() ?? [] {
                if let exception = read(item) { exceptions.append(exception) }
            }
        }
        guard log.issues.isEmpty else { throw ConfigErrors(log.sortedIssues) }
        return exceptions
    }

    static func read(_ node: ConfigNode) -> AuditException? {
        guard let map = node.mapping(keys: keys) else { return nil }
        let knownIDs = AuditRule.all.map(\.id)
        let id = map.required("id", expected: "a finding id such as `route.no_identity`")?.nonEmptyString()
        if let id, !knownIDs.contains(id) {
            map.optional("id")?.report("unknown finding id `\(id)`", expected: "one of \(MappingReader.list(knownIDs))")
        }
        let route = map.optional("route")?.nonEmptyString()
        let config = map.optional("config")?.nonEmptyString()
        let key = map.optional("key")?.nonEmptyString()
        if map.has("route") == map.has("key") {
            node.report("an exception applies to one route or one key", expected: "exactly one of `route`, `key`")
        }
        // Ownerless is reported as a finding, not refused: the run still shows it.
        let owner = map.optional("owner")?.string().flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0 }
        let reason = map.required("reason", expected: "why the risk is accepted")?.nonEmptyString()
        let expires = map.required("expires", expected: "a date `YYYY-MM-DD`")?.parse("a date `YYYY-MM-DD`", date)
        guard let id, knownIDs.contains(id), let reason, let expires, map.has("route") != map.has("key"), route != nil || key != nil else { return nil }
        guard map.has("config") == (config != nil) else { return nil }
        return AuditException(id: id, route: route, key: key, owner: owner, reason: reason, expires: expires, config: config, location: node.location)
    }

    static func date(_ text: String) throws(ConfigValueError) -> String {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]),
            year >= 2000, (1...12).contains(month), (1...31).contains(day)
        else {
            throw ConfigValueError("`\(text)` is not a date", expected: "`YYYY-MM-DD`, e.g. `2027-03-31`")
        }
        return text
    }

    /// Today in UTC as `YYYY-MM-DD`.
    public static func today(_ now: Date = Date()) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day], from: now)
        return String(format: "%04d-%02d-%02d", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0)
    }
}
