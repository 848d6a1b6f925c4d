import Foundation
import XCTest

/// `gatehouse audit`, `graph` and `report` as an operator runs them: exit codes and output.
final class TrustReviewCommandTests: XCTestCase {
    private var binary: String {
        let bundle = Bundle(for: Self.self).bundleURL
        let candidates = [bundle.appendingPathComponent("gatehouse"), bundle.deletingLastPathComponent().appendingPathComponent("gatehouse")]
        return (candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[0]).path
    }

    private let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/audit").path

    func testAuditExitStatusFollowsFailOn() throws {
        let clean = try Shell.run(binary, ["audit", fixtures + "/clean.yaml"])
        XCTAssertEqual(clean.status, 0, clean.stderr)
        XCTAssertTrue(clean.stdout.contains("1 file(s): 0 finding(s)"), clean.stdout)

        let high = try Shell.run(binary, ["audit", fixtures + "/route.no_identity.yaml"])
        XCTAssertEqual(high.status, 1)
        XCTAssertTrue(high.stdout.hasPrefix("\(fixtures)/route.no_identity.yaml:9:5: high route.no_identity: "), high.stdout)

        let medium = fixtures + "/issuer.no_max_lifetime.yaml"
        XCTAssertEqual(try Shell.run(binary, ["audit", medium]).status, 0)
        XCTAssertEqual(try Shell.run(binary, ["audit", "--fail-on", "medium", medium]).status, 1)
        XCTAssertEqual(try Shell.run(binary, ["audit", "--fail-on", "none", fixtures + "/route.no_identity.yaml"]).status, 0)
    }

    func testAuditUsageErrorsExit2() throws {
        XCTAssertEqual(try Shell.run(binary, ["audit"]).status, 2)
        XCTAssertEqual(try Shell.run(binary, ["audit", "--no-such-option", fixtures + "/clean.yaml"]).status, 2)
        XCTAssertEqual(try Shell.run(binary, ["audit", fixtures + "/no-such-file.yaml"]).status, 2)
        XCTAssertEqual(try Shell.run(binary, ["audit", "--format", "xml", fixtures + "/clean.yaml"]).status, 2)
        XCTAssertEqual(try Shell.run(binary, ["audit", "--fail-on", "critical", fixtures + "/clean.yaml"]).status, 2)
        let exceptions = NSTemporaryDirectory() + "gatehouse-exceptions-\(UUID().uuidString).yaml"
        try "- { id: route.no_identity, route: open, owner: a, reason: r, expires: 2099-01-01, ticket: X-1 }\n"
            .write(toFile: exceptions, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: exceptions) }
        let bad = try Shell.run(binary, ["audit", "--exceptions", exceptions, fixtures + "/clean.yaml"])
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("\(exceptions):1:"), bad.stderr)
        XCTAssertTrue(bad.stderr.contains("ticket: unknown key"), bad.stderr)
    }

    func testAuditSARIFAndJSONFormats() throws {
        let sarif = try Shell.run(binary, ["audit", "--format", "sarif", fixtures + "/route.no_identity.yaml"])
        XCTAssertEqual(sarif.status, 1)
        XCTAssertTrue(sarif.stdout.contains("\"version\" : \"2.1.0\""), sarif.stdout)
        let json = try Shell.run(binary, ["audit", "--format", "json", fixtures + "/clean.yaml"])
        XCTAssertEqual(json.status, 0)
        XCTAssertNotNil(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)))
    }

    func testGraphFormats() throws {
        for format in ["mermaid", "dot", "json"] {
            let result = try Shell.run(binary, ["graph", "--format", format, fixtures + "/clean.yaml"])
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertTrue(result.stdout.contains("mTLS+SPIFFE"), result.stdout)
        }
        XCTAssertEqual(try Shell.run(binary, ["graph", "--format", "png", fixtures + "/clean.yaml"]).status, 2)
        XCTAssertEqual(try Shell.run(binary, ["graph", fixtures + "/config.invalid.yaml"]).status, 2)
    }

    func testReportReadsALogAndRejectsBadArguments() throws {
        let log = NSTemporaryDirectory() + "gatehouse-report-\(UUID().uuidString).jsonl"
        try """
            {"ts":"2026-01-01T00:00:00.000Z","request_id":"a","listener":"public","route":"orders","client_ip":"10.0.0.1","peer":{"spiffe_id":"spiffe://prod.example/ns/shop/sa/cart"},"decision":"allow","reason":"allowed","status":200}

            """.write(toFile: log, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: log) }
        let text = try Shell.run(binary, ["report", "--config", fixtures + "/clean.yaml", "--log", log])
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.stdout.contains("  orders: 1 / 0"), text.stdout)
        let json = try Shell.run(binary, ["report", "--config", fixtures + "/clean.yaml", "--log", log, "--format", "json"])
        XCTAssertEqual(json.status, 0)
        XCTAssertNotNil(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)))
        XCTAssertEqual(try Shell.run(binary, ["report", "--config", fixtures + "/clean.yaml", "--log", log, "--since", "soon"]).status, 2)
        XCTAssertEqual(try Shell.run(binary, ["report", "--config", fixtures + "/clean.yaml", "--log", log + ".missing"]).status, 2)
    }
}
