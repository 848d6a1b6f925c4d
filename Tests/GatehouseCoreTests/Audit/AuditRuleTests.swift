import Foundation
import XCTest
@testable import GatehouseCore

/// One fixture per finding: the audit finds exactly that finding, with its severity, at the
/// marked line, and nothing else.
final class AuditRuleTests: XCTestCase {
    private func assertFinds(_ id: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let names = try AuditFixtures.names().filter { $0.hasPrefix(id + ".") }
        XCTAssertFalse(names.isEmpty, "no fixture for \(id)", file: file, line: line)
        let paths = try AuditFixtures.materialise(names, for: self)
        let result = Auditor(today: "2026-01-01", secretResolver: AuditFixtures.resolver).audit(paths: paths)
        let rule = try XCTUnwrap(AuditRule.all.first { $0.id == id }, file: file, line: line)
        XCTAssertEqual(result.findings.map(\.id), Array(repeating: id, count: paths.count), "\(result.findings)", file: file, line: line)
        for path in paths {
            let found = result.findings.filter { $0.location.file == path }
            XCTAssertEqual(found.map(\.location.line), try AuditFixtures.markedLines(path), path, file: file, line: line)
            XCTAssertEqual(found.map(\.severity), [rule.severity], file: file, line: line)
        }
    }

    func testRouteNoIdentity() throws { try assertFinds("route.no_identity") }
    func testRouteAllShadowInProd() throws { try assertFinds("route.all_shadow_in_prod") }
    func testPeerWholeTrustDomain() throws { try assertFinds("peer.whole_trust_domain") }
    func testPeerForeignTrustDomain() throws { try assertFinds("peer.foreign_trust_domain") }
    func testIssuerNoAudience() throws { try assertFinds("issuer.no_audience") }
    func testIssuerNoMaxLifetime() throws { try assertFinds("issuer.no_max_lifetime") }
    func testIssuerLongMaxLifetime() throws { try assertFinds("issuer.long_max_lifetime") }
    func testIssuerHMAC() throws { try assertFinds("issuer.hmac") }
    func testIssuerNoEnvironmentBinding() throws { try assertFinds("issuer.no_environment_binding") }
    func testWebhookNoReplay() throws { try assertFinds("webhook.no_replay") }
    func testWebhookLongTolerance() throws { try assertFinds("webhook.long_tolerance") }
    func testSecretSharedAcrossEnvironments() throws { try assertFinds("secret.shared_across_environments") }
    func testTrustBundleSharedAcrossEnvironments() throws { try assertFinds("trust.bundle_shared_across_environments") }
    func testJWKSSharedAcrossEnvironments() throws { try assertFinds("issuer.jwks_shared_across_environments") }
    func testListenerTrustedProxiesPublic() throws { try assertFinds("listener.trusted_proxies_public") }
    func testAdminOffLoopback() throws { try assertFinds("admin.off_loopback") }
    func testAdminNoToken() throws { try assertFinds("admin.no_token") }
    func testUpstreamPlaintextRemote() throws { try assertFinds("upstream.plaintext_remote") }
    func testUpstreamTLSNoIdentity() throws { try assertFinds("upstream.tls_no_identity") }
    func testSecretInline() throws { try assertFinds("secret.inline") }
    func testConfigInvalid() throws { try assertFinds("config.invalid") }

    /// The routes of a rollout's candidate policy are audited in the candidate's own file.
    func testRolloutCandidateRoutesAreAudited() throws {
        let paths = try AuditFixtures.materialise(["rollout.route.all_shadow_in_prod.yaml"], for: self)
        let result = Auditor(secretResolver: AuditFixtures.resolver).audit(paths: paths)
        let candidate = paths[0].replacingOccurrences(of: ".yaml", with: ".candidate.yml")
        XCTAssertEqual(result.findings.map(\.id), ["route.all_shadow_in_prod"])
        XCTAssertEqual(result.findings.map(\.location.file), [candidate])
        XCTAssertEqual(result.findings.map(\.location.line), try AuditFixtures.markedLines(candidate))
    }

    /// Every rule that a config can trigger has its fixture (the exception rules are tested
    /// with an exceptions file).
    func testEveryConfigRuleHasAFixture() throws {
        let names = try AuditFixtures.names()
        for rule in AuditRule.all where !rule.id.hasPrefix("exception.") {
            XCTAssertTrue(names.contains { $0.hasPrefix(rule.id + ".") }, rule.id)
        }
    }

    /// The README's finding-id table is the rule catalogue, row for row.
    func testTheReadmeTableListsEveryRule() throws {
        let readme = try String(contentsOf: AuditFixtures.directory.appendingPathComponent("../../../README.md").standardizedFileURL, encoding: .utf8)
        for rule in AuditRule.all {
            XCTAssertTrue(readme.contains("| `\(rule.id)` | \(rule.severity.rawValue) | \(rule.title) |"), rule.id)
        }
    }

    func testCleanConfigHasNoFindings() throws {
        let paths = try AuditFixtures.materialise(["clean.yaml"], for: self)
        let result = Auditor(secretResolver: AuditFixtures.resolver).audit(paths: paths)
        XCTAssertEqual(result.findings, [])
        XCTAssertNil(result.highestSeverity)
    }

    /// Configs of one environment may share secrets; only a second environment makes it a leak.
    func testSameSecretInOneEnvironmentIsNoFinding() throws {
        let paths = try AuditFixtures.materialise(["secret.shared_across_environments.prod.yaml", "clean.yaml"], for: self)
        let copy = paths[0].replacingOccurrences(of: ".prod.yaml", with: ".prod-copy.yaml")
        try FileManager.default.copyItem(atPath: paths[0], toPath: copy)
        let result = Auditor(secretResolver: AuditFixtures.resolver).audit(paths: [paths[0], copy])
        XCTAssertEqual(result.findings, [])
    }

    /// An unresolvable secret is compared by its reference, and the finding says so; a
    /// resolved one is compared by value (two references to one value are one secret), and
    /// neither the value nor its hash appears in any output.
    func testSecretsAreComparedByKeyedHashAndNeverPrinted() throws {
        let paths = try AuditFixtures.materialise(["secret.shared_across_environments.prod.yaml", "secret.shared_across_environments.staging.yaml"], for: self)
        let unresolved = Auditor(secretResolver: { _ in nil }).audit(paths: paths)
        XCTAssertEqual(unresolved.findings.count, 2)
        XCTAssertTrue(unresolved.findings[0].message.contains("could not be resolved"), unresolved.findings[0].message)

        let staging = try String(contentsOfFile: paths[1], encoding: .utf8).replacingOccurrences(of: "AUDIT_SHARED_ADMIN_TOKEN", with: "STAGING_ADMIN_TOKEN")
        try staging.write(toFile: paths[1], atomically: true, encoding: .utf8)
        let secret = "correct-horse-battery-staple"
        let sameValue = Auditor(secretResolver: { _ in Array(secret.utf8) }).audit(paths: paths)
        XCTAssertEqual(sameValue.findings.map(\.id), ["secret.shared_across_environments", "secret.shared_across_environments"])
        XCTAssertTrue(sameValue.findings[0].message.contains("same secret value"))
        for output in [AuditTextWriter.render(sameValue), AuditJSONWriter.render(sameValue), SARIFWriter.render(sameValue)] {
            XCTAssertFalse(output.contains(secret))
            XCTAssertFalse(output.contains("hmac:"))
        }
        let distinct = Auditor(secretResolver: { Array("\($0)".utf8) }).audit(paths: paths)
        XCTAssertEqual(distinct.findings, [])
    }
}
