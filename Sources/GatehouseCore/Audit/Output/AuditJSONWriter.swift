import Foundation

/// `--format json`: findings, suppressed findings and exceptions in force, keys sorted.
public enum AuditJSONWriter {
    struct Document: Encodable {
        var files: [String]
        var findings: [Finding]
        var suppressed: [Finding]
        var exceptionsInForce: [Exception]
        enum CodingKeys: String, CodingKey {
            case files, findings, suppressed
            case exceptionsInForce = "exceptions_in_force"
        }
    }

    struct Finding: Encodable {
        var id: String
        var severity: String
        var file: String
        var line: Int
        var column: Int
        var route: String?
        var key: String
        var message: String
        var fix: String
        var exception: Exception?

        init(_ finding: AuditFinding, exception: AuditException? = nil) {
            id = finding.id
            severity = finding.severity.rawValue
            file = finding.location.file
            line = finding.location.line
            column = finding.location.column
            route = finding.route
            key = finding.key
            message = finding.message
            fix = finding.fix
            self.exception = exception.map(Exception.init)
        }
    }

    struct Exception: Encodable {
        var id: String
        var route: String?
        var key: String?
        var owner: String?
        var reason: String
        var expires: String
        var location: String

        init(_ exception: AuditException) {
            id = exception.id
            route = exception.route
            key = exception.key
            owner = exception.owner
            reason = exception.reason
            expires = exception.expires
            location = exception.location.description
        }
    }

    public static func render(_ result: AuditResult) -> String {
        let document = Document(
            files: result.files, findings: result.findings.map { Finding($0) },
            suppressed: result.suppressed.map { Finding($0.finding, exception: $0.exception) },
            exceptionsInForce: result.exceptionsInForce.map(Exception.init))
        return JSONText.encode(document)
    }
}

/// Deterministic pretty JSON for the CLI's outputs.
enum JSONText {
    /// - Parameter snakeCase: `unusedGrants` → `unused_grants`, like decision records; off for
    ///   SARIF, whose property names are camelCase.
    static func encode(_ value: some Encodable, snakeCase: Bool = false) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        if snakeCase { encoder.keyEncodingStrategy = .convertToSnakeCase }
        // Encoding plain structs of strings and numbers cannot fail.
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
