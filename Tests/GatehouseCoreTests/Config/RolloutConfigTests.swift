import Foundation
import XCTest

@testable import GatehouseCore

/// `mode: shadow` on each check, `version`, `admin.token` and `rollout` with its candidate file.
final class RolloutConfigTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "gatehouse-rollout-\(UUID().uuidString)/"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func yaml(route: String = "", rollout: String = "", top: String = "") -> String {
        """
        environment: staging
        \(top)
        trust_domains:
          staging.example: { bundle: ca.pem }
        issuers:
          corp: { issuer: "https://idp.example", jwks_file: keys.json, audiences: [billing] }
        listeners:
          - { name: public, address: "127.0.0.1:0", insecure_plaintext: true }
        upstreams:
          app: { endpoints: ["127.0.0.1:9000"] }
        routes:
          - name: r
            match: { path_prefix: / }
            upstream: app
        \(route)
        \(rollout)

        """
    }

    private func candidate(_ text: String) throws -> String {
        let path = directory + "candidate.yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testEveryCheckTakesAMode() throws {
        let config = try ConfigLoader.parse(yaml: yaml(route: """
                peers: { allow: ["spiffe://staging.example/*"], mode: shadow }
                token: { issuer: corp, mode: shadow }
                rate_limit: { key: ip, rate: 10/s, burst: 5, mode: shadow }
            """), file: "t.yaml")
        let route = config.routes[0]
        XCTAssertEqual(route.checks, [.peers, .token, .rateLimit])
        XCTAssertEqual(route.shadowedChecks, [.peers, .token, .rateLimit])
        XCTAssertEqual(route.peers?.patterns.count, 1)

        let enforced = try ConfigLoader.parse(yaml: yaml(route: """
                peers: ["spiffe://staging.example/*"]
                token: { issuer: corp, mode: enforce }
            """), file: "t.yaml")
        XCTAssertEqual(enforced.routes[0].shadowedChecks, [])
        XCTAssertEqual(enforced.routes[0].mode(of: .peers), .enforce)
    }

    func testABadModeIsAnErrorNotAnEnforcedOrSkippedCheck() {
        XCTAssertEqual(configErrors(yaml(route: """
                token: { issuer: corp, mode: shadw }
            """)), ["t.yaml:15:34: routes[0].token.mode: unknown value `shadw` (expected one of `enforce`, `shadow`)"])
        XCTAssertEqual(configErrors(yaml(route: """
                peers: { mode: shadow }
            """)), ["t.yaml:15:12: routes[0].peers.allow: required key is missing (expected a list of SPIFFE ID patterns (empty: nobody))"])
    }

    func testARolloutReadsItsCandidateWithTheMainFilesUpstreamsAndIssuers() throws {
        let path = try candidate("""
            version: v2
            rate_limits:
              tight: { key: ip, rate: 1/s, burst: 1 }
            routes:
              - name: r
                match: { path_prefix: / }
                upstream: app
                token: { issuer: corp }
                rate_limit: tight
            """)
        let config = try ConfigLoader.parse(yaml: yaml(rollout: """
            rollout:
              candidate: \(path)
              mode: canary
              percent: 12.5
              cohort: subject
              auto_rollback: { window: 5m, min_requests: 200, max_extra_deny_rate: 0.02, max_error_rate: 0.05 }
            """, top: "version: v1\nadmin: { token: env:ADMIN_TOKEN }"), file: "t.yaml")
        XCTAssertEqual(config.policyVersion, "v1")
        XCTAssertEqual(config.admin.token, .environment("ADMIN_TOKEN"))
        let rollout = try XCTUnwrap(config.rollout)
        XCTAssertEqual(rollout.mode, .canary)
        XCTAssertEqual(rollout.percent, 12.5)
        XCTAssertEqual(rollout.cohort, .subject)
        XCTAssertEqual(rollout.autoRollback, AutoRollbackConfig(window: .seconds(300), minRequests: 200, maxExtraDenyRate: 0.02, maxErrorRate: 0.05))
        XCTAssertEqual(rollout.candidate.version, "v2")
        XCTAssertEqual(rollout.candidate.routes.first?.token?.issuers, ["corp"])
        XCTAssertEqual(rollout.candidate.routes.first?.rateLimit?.name, "tight")
        XCTAssertEqual(rollout.candidate.routes.first?.location.file, path, "candidate errors and audits point into its own file")
    }

    func testCandidateProblemsNameTheCandidateFileAndLine() throws {
        let path = try candidate("""
            version: v2
            routes:
              - name: r
                match: { path_prefix: / }
                upstream: nowhere
            listeners: []
            """)
        XCTAssertEqual(configErrors(yaml(rollout: "rollout: { candidate: \(path), mode: shadow }")), [
            "\(path):5:15: routes[0].upstream: unknown upstream `nowhere` (expected one of `app`)",
            "\(path):6:1: listeners: unknown key (expected one of `version`, `routes`, `rate_limits`)",
        ])
    }

    func testRolloutMistakesAreNamed() throws {
        let path = try candidate("version: v1\nroutes: []\n")
        XCTAssertEqual(configErrors(yaml(rollout: "rollout: { candidate: \(path), mode: canary }", top: "version: v1")), [
            "t.yaml:16:10: rollout: a canary needs its share of callers (expected `percent: N` (0 to 100))",
        ])
        XCTAssertEqual(configErrors(yaml(rollout: "rollout: { candidate: \(path), mode: shadow, percent: 5 }", top: "version: v0")), [
            "t.yaml:16:122: rollout.percent: `percent` is the canary's share; in shadow mode the stable policy decides every request (expected `mode: canary`, or no `percent`)",
        ])
        XCTAssertEqual(configErrors(yaml(rollout: "rollout: { candidate: \(path), mode: shadow }", top: "version: v1")), [
            "t.yaml:2:10: version: the candidate policy has the same version `v1` (expected distinct versions, so that records and metrics tell the two policies apart)",
        ])
        XCTAssertEqual(configErrors(yaml(rollout: "rollout: { candidate: \(directory)missing.yaml, mode: shadow }")), [
            "t.yaml:16:23: rollout.candidate: cannot read the candidate policy `\(directory)missing.yaml` (no such file) (expected a readable YAML file)",
        ])
        XCTAssertEqual(configErrors(yaml(rollout: """
            rollout:
              candidate: \(path)
              mode: canary
              percent: 150
              auto_rollback: { window: 5m, min_requests: 10, max_extra_deny_rate: 2 }
            """, top: "version: v0")).count, 2)
    }

    func testAdminTokenIsAReferenceNeverAnInlineSecret() {
        let errors = configErrors(yaml(top: "admin: { token: hunter2 }"))
        XCTAssertEqual(errors.count, 1)
        XCTAssertTrue(errors[0].hasPrefix("t.yaml:2:17: admin.token:"), errors[0])
        XCTAssertFalse(errors[0].contains("hunter2"), "an inline secret is never echoed")
    }
}
