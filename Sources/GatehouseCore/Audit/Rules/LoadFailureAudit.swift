/// A file that does not load is still audited: each of the loader's errors becomes a finding
/// at its file:line, with a dedicated id where the error is itself a trust problem.
enum LoadFailureAudit {
    static func findings(_ issues: [ConfigIssue]) -> [AuditFinding] {
        issues.map { issue in
            let rule: AuditRule
            if issue.message.contains("secrets are never inline") {
                rule = .secretInline
            } else if issue.keyPath.hasSuffix(".audiences"), issue.keyPath.hasPrefix("issuers."),
                issue.message == "required key is missing" || issue.message == "must not be empty"
            {
                rule = .issuerNoAudience
            } else {
                rule = .configInvalid
            }
            // The loader's messages never repeat an inline secret's value.
            var message = "\(issue.keyPath.isEmpty ? "<root>" : issue.keyPath): \(issue.message)"
            if let expected = issue.expected { message += " (expected \(expected))" }
            return AuditFinding(rule, at: issue.location, key: issue.keyPath, message)
        }
    }
}
