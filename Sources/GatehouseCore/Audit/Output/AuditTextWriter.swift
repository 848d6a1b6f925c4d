/// The default output: one line per finding (`FILE:LINE:COL: severity id: what it allows`),
/// its fix, the exceptions in force and a summary.
public enum AuditTextWriter {
    public static func render(_ result: AuditResult) -> String {
        var lines: [String] = []
        for finding in result.findings {
            lines.append("\(finding.location): \(finding.severity.rawValue) \(finding.id): \(finding.message)")
            lines.append("    fix: \(finding.fix)")
        }
        lines.append("exceptions in force: \(result.exceptionsInForce.count)")
        for exception in result.exceptionsInForce {
            let covered = result.suppressed.filter { $0.exception == exception }.count
            lines.append("    \(exception.id) on \(exception.scope): owner \(exception.owner ?? "-"), expires \(exception.expires), "
                + "suppresses \(covered) finding(s) — \(exception.reason)")
        }
        let counts = AuditSeverity.allCases.reversed().map { severity in
            "\(result.findings.filter { $0.severity == severity }.count) \(severity.rawValue)"
        }
        lines.append("\(result.files.count) file(s): \(result.findings.count) finding(s) (\(counts.joined(separator: ", "))), \(result.suppressed.count) suppressed by exceptions")
        return lines.joined(separator: "\n") + "\n"
    }
}
