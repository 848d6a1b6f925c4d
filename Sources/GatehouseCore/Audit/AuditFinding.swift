/// How much a finding matters; `--fail-on` compares against it.
public enum AuditSeverity: String, Sendable, Hashable, Comparable, CaseIterable, Codable {
    case low
    case medium
    case high

    private var rank: Int {
        switch self {
        case .low: return 0
        case .medium: return 1
        case .high: return 2
        }
    }

    public static func < (lhs: AuditSeverity, rhs: AuditSeverity) -> Bool { lhs.rank < rhs.rank }
}

/// One thing `gatehouse audit` found: which rule, where, what it allows and how to fix it.
/// Never carries a secret or a hash of one.
public struct AuditFinding: Sendable, Hashable {
    public var rule: AuditRule
    public var location: SourceLocation
    /// The route name the finding is about, if it is about a route (exceptions match on it).
    public var route: String?
    /// The key path the finding is about (`issuers.corp`, `admin.address`); exceptions match on it.
    public var key: String
    /// What the configuration allows, in this instance.
    public var message: String

    public var id: String { rule.id }
    public var severity: AuditSeverity { rule.severity }
    public var fix: String { rule.fix }

    public init(_ rule: AuditRule, at location: SourceLocation, route: String? = nil, key: String, _ message: String) {
        self.rule = rule
        self.location = location
        self.route = route
        self.key = key
        self.message = message
    }
}

extension AuditFinding {
    /// File order, then rule id: the order every output format uses.
    static func fileOrder(_ a: AuditFinding, _ b: AuditFinding) -> Bool {
        (a.location.file, a.location.line, a.location.column, a.id, a.key) < (b.location.file, b.location.line, b.location.column, b.id, b.key)
    }
}
