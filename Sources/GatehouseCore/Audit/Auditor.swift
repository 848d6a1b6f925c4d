import Foundation

/// What one `gatehouse audit` run found, after exceptions.
public struct AuditResult: Sendable {
    /// Findings not covered by an exception in force, in file order.
    public var findings: [AuditFinding]
    /// Findings an exception in force covers, with that exception.
    public var suppressed: [(finding: AuditFinding, exception: AuditException)]
    /// Exceptions with an owner that have not expired: listed on every run.
    public var exceptionsInForce: [AuditException]
    /// The files audited, in argument order.
    public var files: [String]

    /// The most severe finding, nil when there is none.
    public var highestSeverity: AuditSeverity? { findings.map(\.severity).max() }
}

/// Runs every rule over every file, then applies the exceptions.
public struct Auditor: Sendable {
    /// Reads secrets for the cross-environment comparison; nil when one cannot be read.
    public var secretResolver: @Sendable (SecretReference) -> [UInt8]?
    /// `YYYY-MM-DD`, UTC: exceptions expire after this day.
    public var today: String

    public init(today: String = AuditExceptions.today(), secretResolver: @escaping @Sendable (SecretReference) -> [UInt8]? = { try? SecretResolver.resolve($0) }) {
        self.today = today
        self.secretResolver = secretResolver
    }

    public func audit(paths: [String], exceptions: [AuditException] = []) -> AuditResult {
        audit(paths.map(AuditedConfig.init(path:)), exceptions: exceptions)
    }

    func audit(_ files: [AuditedConfig], exceptions: [AuditException]) -> AuditResult {
        var raw: [AuditFinding] = []
        for file in files {
            switch file.content {
            case .failed(let issues): raw += LoadFailureAudit.findings(issues)
            case .loaded(let config):
                raw += RouteAudit.findings(in: file, config)
                if let candidate = file.rolloutCandidate() { raw += RouteAudit.findings(in: candidate, candidate.config ?? config) }
                raw += IssuerAudit.findings(in: file, config)
                raw += NetworkAudit.findings(in: file, config)
            }
        }
        raw += CrossEnvironmentAudit(secretResolver: secretResolver).findings(files)

        var inForce: [AuditException] = []
        var findings: [AuditFinding] = []
        for exception in exceptions {
            if exception.owner == nil {
                findings.append(AuditFinding(.exceptionNoOwner, at: exception.location, key: exception.scope,
                    "the exception for `\(exception.id)` on \(exception.scope) has no owner, so it suppresses nothing"))
            } else if exception.isExpired(today: today) {
                findings.append(AuditFinding(.exceptionExpired, at: exception.location, key: exception.scope,
                    "the exception for `\(exception.id)` on \(exception.scope) expired on \(exception.expires); the finding is reported again"))
            } else {
                inForce.append(exception)
            }
        }
        var suppressed: [(finding: AuditFinding, exception: AuditException)] = []
        for finding in Set(raw).sorted(by: AuditFinding.fileOrder) {
            if let exception = inForce.first(where: { $0.matches(finding) }) {
                suppressed.append((finding, exception))
            } else {
                findings.append(finding)
            }
        }
        return AuditResult(findings: findings.sorted(by: AuditFinding.fileOrder), suppressed: suppressed,
            exceptionsInForce: inForce, files: files.map(\.path))
    }
}
