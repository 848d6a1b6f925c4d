import Foundation
import XCTest
@testable import GatehouseCore

/// The SARIF output validates against the official SARIF 2.1.0 schema (OASIS, errata 01,
/// vendored in Tests/Fixtures/audit) with python3-jsonschema, which `scripts/install-deps.sh
/// --test` installs. A missing validator fails the test: it must never pass unchecked.
final class SARIFWriterTests: XCTestCase {
    private func allFindings() throws -> AuditResult {
        let names = try AuditFixtures.names().filter { $0 != "clean.yaml" }
        let paths = try AuditFixtures.materialise(names, for: self)
        let exception = try AuditExceptions.parse(yaml: """
            - { id: route.no_identity, route: open, owner: alice, reason: demo, expires: 2099-01-01 }
            - { id: admin.off_loopback, key: admin.address, reason: nobody owns this, expires: 2099-01-01 }
            """, file: "exceptions.yaml")
        return Auditor(secretResolver: AuditFixtures.resolver).audit(paths: paths, exceptions: exception)
    }

    func testSARIFValidatesAgainstTheSchema() throws {
        let result = try allFindings()
        XCTAssertGreaterThan(result.findings.count, 20)
        XCTAssertEqual(result.suppressed.count, 1)
        let sarif = NSTemporaryDirectory() + "gatehouse-audit-\(UUID().uuidString).sarif"
        try SARIFWriter.render(result).write(toFile: sarif, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: sarif) }
        let schema = AuditFixtures.directory.appendingPathComponent("sarif-schema-2.1.0.json").path
        let script = """
            import json, sys
            import jsonschema
            schema = json.load(open(sys.argv[1]))
            document = json.load(open(sys.argv[2]))
            errors = list(jsonschema.Draft4Validator(schema).iter_errors(document))
            for error in errors[:10]:
                print("/".join(map(str, error.absolute_path)), error.message)
            sys.exit(1 if errors else 0)
            """
        let process = Process()
        // Debian's python3, where python3-jsonschema installs (a pyenv python3 first on PATH would not see it).
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script, schema, sarif]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "SARIF does not validate (or python3-jsonschema is missing: run scripts/install-deps.sh --test):\n\(text)")
    }

    func testSARIFCarriesRulesLocationsAndSuppressions() throws {
        let result = try allFindings()
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(SARIFWriter.render(result).utf8)) as? [String: Any])
        XCTAssertEqual(json["version"] as? String, "2.1.0")
        let run = try XCTUnwrap((json["runs"] as? [[String: Any]])?.first)
        let driver = try XCTUnwrap((run["tool"] as? [String: Any])?["driver"] as? [String: Any])
        let rules = try XCTUnwrap(driver["rules"] as? [[String: Any]])
        XCTAssertEqual(rules.compactMap { $0["id"] as? String }, AuditRule.all.map(\.id))
        let results = try XCTUnwrap(run["results"] as? [[String: Any]])
        XCTAssertEqual(results.count, result.findings.count + result.suppressed.count)
        let noIdentity = try XCTUnwrap(results.first { $0["ruleId"] as? String == "route.no_identity" })
        let physical = try XCTUnwrap(((noIdentity["locations"] as? [[String: Any]])?.first?["physicalLocation"]) as? [String: Any])
        XCTAssertTrue(((physical["artifactLocation"] as? [String: Any])?["uri"] as? String)?.hasSuffix("/route.no_identity.yaml") == true)
        XCTAssertEqual((physical["region"] as? [String: Any])?["startLine"] as? Int, 9)
        XCTAssertEqual((physical["region"] as? [String: Any])?["startColumn"] as? Int, 5)
        XCTAssertNotNil(noIdentity["suppressions"])
        XCTAssertEqual(results.first { $0["ruleId"] as? String == "admin.off_loopback" }?["level"] as? String, "error")
    }

    func testJSONOutputListsFindingsSuppressedAndExceptionsInForce() throws {
        let result = try allFindings()
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(AuditJSONWriter.render(result).utf8)) as? [String: Any])
        XCTAssertEqual((json["findings"] as? [Any])?.count, result.findings.count)
        XCTAssertEqual((json["suppressed"] as? [[String: Any]])?.first?["id"] as? String, "route.no_identity")
        XCTAssertEqual((json["exceptions_in_force"] as? [[String: Any]])?.count, 1)
        XCTAssertTrue(result.findings.contains { $0.id == "exception.no_owner" })
    }
}
