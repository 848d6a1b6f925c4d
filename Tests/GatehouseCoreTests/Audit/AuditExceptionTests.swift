import Foundation
import XCTest
@testable import GatehouseCore

final class AuditExceptionTests: XCTestCase {
    private func exceptions(_ yaml: String) throws -> [AuditException] {
        try AuditExceptions.parse(yaml: yaml, file: "exceptions.yaml")
    }

    private func audit(_ fixture: String, _ yaml: String, today: String = "2026-06-01") throws -> AuditResult {
        let paths = try AuditFixtures.materialise([fixture], for: self)
        return Auditor(today: today, secretResolver: AuditFixtures.resolver).audit(paths: paths, exceptions: try exceptions(yaml))
    }

    private let accepted = """
        - id: route.no_identity
          route: open
          owner: alice@example.com
          reason: public health page, nothing behind it
          expires: 2026-06-30
        """

    func testAnExceptionInForceSuppressesTheMatchingFindingAndIsListed() throws {
        let result = try audit("route.no_identity.yaml", accepted)
        XCTAssertEqual(result.findings, [])
        XCTAssertEqual(result.suppressed.map(\.finding.id), ["route.no_identity"])
        XCTAssertEqual(result.exceptionsInForce.map(\.owner), ["alice@example.com"])
        let text = AuditTextWriter.render(result)
        XCTAssertTrue(text.contains("exceptions in force: 1"), text)
        XCTAssertTrue(text.contains("route.no_identity on route open: owner alice@example.com, expires 2026-06-30, suppresses 1 finding(s)"), text)
    }

    func testAnExceptionForAnotherRouteOrKeySuppressesNothing() throws {
        let other = accepted.replacingOccurrences(of: "route: open", with: "route: closed")
        XCTAssertEqual(try audit("route.no_identity.yaml", other).findings.map(\.id), ["route.no_identity"])
        let byKey = """
            - id: admin.off_loopback
              key: admin.address
              owner: bob
              reason: admin behind a firewall
              expires: 2026-12-31
            """
        let result = try audit("admin.off_loopback.yaml", byKey)
        XCTAssertEqual(result.findings, [])
        XCTAssertEqual(result.suppressed.count, 1)
    }

    /// `config:` limits an exception to one file of the run.
    func testAnExceptionCanBeLimitedToOneConfigFile() throws {
        let paths = try AuditFixtures.materialise(["route.no_identity.yaml"], for: self)
        let scoped = accepted + "\n  config: \(paths[0])"
        let auditor = Auditor(today: "2026-06-01", secretResolver: AuditFixtures.resolver)
        XCTAssertEqual(auditor.audit(paths: paths, exceptions: try exceptions(scoped)).findings, [])
        let elsewhere = accepted + "\n  config: conf/other.yaml"
        XCTAssertEqual(auditor.audit(paths: paths, exceptions: try exceptions(elsewhere)).findings.map(\.id), ["route.no_identity"])
    }

    /// The last day is still covered; the day after, the finding is back and the expired
    /// exception is a finding of its own, at the exception's line.
    func testAnExpiredExceptionIsAFindingAndSuppressesNothing() throws {
        XCTAssertEqual(try audit("route.no_identity.yaml", accepted, today: "2026-06-30").findings, [])
        let result = try audit("route.no_identity.yaml", accepted, today: "2026-07-01")
        XCTAssertEqual(result.findings.map(\.id).sorted(), ["exception.expired", "route.no_identity"])
        let expired = try XCTUnwrap(result.findings.first { $0.id == "exception.expired" })
        XCTAssertEqual(expired.location, SourceLocation(file: "exceptions.yaml", line: 1, column: 3))
        XCTAssertEqual(expired.severity, .medium)
        XCTAssertEqual(result.exceptionsInForce, [])
    }

    func testAnOwnerlessExceptionIsAFindingAndSuppressesNothing() throws {
        let ownerless = accepted.replacingOccurrences(of: "  owner: alice@example.com\n", with: "")
        let result = try audit("route.no_identity.yaml", ownerless)
        XCTAssertEqual(result.findings.map(\.id).sorted(), ["exception.no_owner", "route.no_identity"])
        XCTAssertEqual(result.findings.first { $0.id == "exception.no_owner" }?.location.line, 1)
    }

    func testUnknownKeysIdsAndBadDatesAreErrorsWithFileAndLine() throws {
        let bad = """
            - id: route.no_identity
              route: open
              owner: alice
              reason: ok
              expires: 2026-06-30
              approved_by: carol
            - id: route.no_such_rule
              route: open
              owner: alice
              reason: ok
              expires: 30/06/2026
            """
        XCTAssertThrowsError(try exceptions(bad)) { error in
            let lines = (error as? ConfigErrors)?.issues.map(\.description) ?? []
            XCTAssertTrue(lines.contains { $0.hasPrefix("exceptions.yaml:6:3: [0].approved_by: unknown key") }, "\(lines)")
            XCTAssertTrue(lines.contains { $0.hasPrefix("exceptions.yaml:7:7: [1].id: unknown finding id `route.no_such_rule`") }, "\(lines)")
            XCTAssertTrue(lines.contains { $0.hasPrefix("exceptions.yaml:11:12: [1].expires: `30/06/2026` is not a date") }, "\(lines)")
        }
        XCTAssertThrowsError(try exceptions("- { id: route.no_identity, owner: a, reason: r, expires: 2026-01-01 }"))
    }
}
