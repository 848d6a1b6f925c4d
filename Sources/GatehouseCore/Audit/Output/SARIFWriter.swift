import Foundation

/// `--format sarif`: SARIF 2.1.0, so that CI systems annotate the config in review. Every rule
/// is listed; suppressed findings are results with an `accepted` external suppression.
public enum SARIFWriter {
    public static let schemaURI = "https://json.schemastore.org/sarif-2.1.0.json"

    struct Log: Encodable {
        var schema = SARIFWriter.schemaURI
        var version = "2.1.0"
        var runs: [Run]
        enum CodingKeys: String, CodingKey {
            case schema = "$schema"
            case version, runs
        }
    }

    struct Run: Encodable {
        var tool: Tool
        var results: [Result]
    }

    struct Tool: Encodable {
        var driver: Driver
    }

    struct Driver: Encodable {
        var name = "gatehouse audit"
        var version = GatehouseCoreVersion.string
        var rules: [Rule]
    }

    struct Text: Encodable {
        var text: String
    }

    struct Rule: Encodable {
        var id: String
        var shortDescription: Text
        var help: Text
        var defaultConfiguration: Configuration
        var properties: Properties
    }

    struct Configuration: Encodable {
        var level: String
    }

    struct Properties: Encodable {
        var severity: String
    }

    struct Result: Encodable {
        var ruleId: String
        var ruleIndex: Int
        var level: String
        var message: Text
        var locations: [Location]
        var suppressions: [Suppression]?
    }

    struct Location: Encodable {
        var physicalLocation: PhysicalLocation
    }

    struct PhysicalLocation: Encodable {
        var artifactLocation: ArtifactLocation
        var region: Region?
    }

    struct ArtifactLocation: Encodable {
        var uri: String
    }

    struct Region: Encodable {
        var startLine: Int
        var startColumn: Int
    }

    struct Suppression: Encodable {
        var kind = "external"
        var status = "accepted"
        var justification: String
    }

    static func level(_ severity: AuditSeverity) -> String {
        switch severity {
        case .high: return "error"
        case .medium: return "warning"
        case .low: return "note"
        }
    }

    public static func render(_ result: AuditResult) -> String {
        let rules = AuditRule.all
        func sarifResult(_ finding: AuditFinding, _ exception: AuditException?) -> Result {
            let location = finding.location
            // A file that could not be read has no line (0): SARIF regions start at 1.
            let region = location.line > 0 ? Region(startLine: location.line, startColumn: max(1, location.column)) : nil
            let uri = location.file.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? location.file
            return Result(
                ruleId: finding.id, ruleIndex: rules.firstIndex(of: finding.rule) ?? 0, level: level(finding.severity),
                message: Text(text: "\(finding.message). Fix: \(finding.fix)"),
                locations: [Location(physicalLocation: PhysicalLocation(artifactLocation: ArtifactLocation(uri: uri), region: region))],
                suppressions: exception.map { [Suppression(justification: "\($0.reason) (owner \($0.owner ?? "-"), expires \($0.expires))")] })
        }
        let log = Log(runs: [Run(
            tool: Tool(driver: Driver(rules: rules.map {
                Rule(id: $0.id, shortDescription: Text(text: $0.title), help: Text(text: $0.fix),
                    defaultConfiguration: Configuration(level: level($0.severity)), properties: Properties(severity: $0.severity.rawValue))
            })),
            results: result.findings.map { sarifResult($0, nil) } + result.suppressed.map { sarifResult($0.finding, $0.exception) })])
        return JSONText.encode(log)
    }
}
