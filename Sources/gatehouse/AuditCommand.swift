import ArgumentParser
import Foundation
import GatehouseCore

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Review the trust one or more configs grant: findings with id, severity, FILE:LINE:COL, what it allows and the fix.",
        discussion: """
            Give every environment's config together (e.g. staging and prod) so that secrets, trust bundles and key sets \
            shared across environments are found; secrets are compared by a keyed hash under a key drawn for each run \
            and never printed. A config that does not load is reported as findings (`config.invalid`, `secret.inline`).
            Exit status: 0 when no finding is at or above --fail-on, 1 when one is, 2 for usage errors and unreadable files.
            """
    )

    @Argument(help: "The configuration files to audit together.")
    var configs: [String]

    @Option(name: .long, help: "Accepted risks: a YAML list of { id, route | key, owner, reason, expires: YYYY-MM-DD, config (optional) }.")
    var exceptions: String?

    @Option(name: .long, help: "text, json or sarif (SARIF 2.1.0).")
    var format: String = "text"

    @Option(name: .customLong("fail-on"), help: "Exit 1 when a finding is at or above this severity: high, medium, low, or none.")
    var failOn: String = "high"

    func run() throws {
        guard ["text", "json", "sarif"].contains(format) else { try usage("--format must be text, json or sarif") }
        let threshold: AuditSeverity?
        if failOn == "none" { threshold = nil } else if let severity = AuditSeverity(rawValue: failOn) { threshold = severity } else {
            try usage("--fail-on must be high, medium, low or none")
        }
        for path in configs + (exceptions.map { [$0] } ?? []) where !FileManager.default.isReadableFile(atPath: path) {
            try usage("\(path): cannot read the file")
        }
        var accepted: [AuditException] = []
        if let exceptions {
            do {
                accepted = try AuditExceptions.load(path: exceptions)
            } catch let errors as ConfigErrors {
                for issue in errors.issues { printError(issue.description) }
                throw ExitCode(2)
            }
        }
        let result = Auditor().audit(paths: configs, exceptions: accepted)
        switch format {
        case "json": print(AuditJSONWriter.render(result), terminator: "")
        case "sarif": print(SARIFWriter.render(result), terminator: "")
        default: print(AuditTextWriter.render(result), terminator: "")
        }
        if let threshold, let highest = result.highestSeverity, highest >= threshold { throw ExitCode(1) }
    }
}
