import Foundation
import GatehouseCore
import XCTest

@testable import GatehouseServer

/// A candidate policy beside the stable one: shadow, canary by cohort, auto-rollback on an
/// injected clock, and the admin API. Real TLS, curl as the client.
final class RolloutEndToEndTests: XCTestCase {
    /// The stable policy lets anyone in; the candidate wants the checkout workload.
    private static func rollout(
        _ mode: RolloutConfig.Mode, percent: Double = 0, cohort: RolloutConfig.Cohort = .peer, autoRollback: AutoRollbackConfig? = nil
    ) -> RolloutConfig {
        let candidateRoute = MutualTLS.route("orders", .prefix("/"), peers: ["spiffe://prod.example/ns/pay/sa/checkout"])
        return RolloutConfig(
            candidateFile: "candidate.yaml", candidate: CandidatePolicy(version: "v2", routes: [candidateRoute], sha256: ""),
            mode: mode, percent: percent, cohort: cohort, autoRollback: autoRollback, location: MutualTLS.here)
    }

    private static func configure(_ config: inout GatewayConfig, _ rollout: RolloutConfig, adminToken: Bool = false) {
        MutualTLS.configure(&config, pki: try! TestPKI.files(), mode: .optional, routes: [MutualTLS.route("orders", .prefix("/"), peers: nil)])
        config.declaredVersion = "v1"
        config.rollout = rollout
        if adminToken { config.admin.token = .environment("ADMIN_TOKEN") }
    }

    func testInShadowModeTheStablePolicyDecidesAndTheCandidateIsRecorded() async throws {
        let fixture = try await GatewayFixture { Self.configure(&$0, Self.rollout(.shadow)) }
        defer { Task { await fixture.shutdown() } }
        XCTAssertEqual(try MutualTLS.curl(fixture, "/a", client: fixture.pki.client(.prodCheckout)).response?.status, 200)
        XCTAssertEqual(try MutualTLS.curl(fixture, "/a", client: fixture.pki.client(.prodSidecar)).response?.status, 200)
        XCTAssertEqual(try MutualTLS.curl(fixture, "/a", client: nil).response?.status, 200)
        let records = fixture.records(atLeast: 3)
        XCTAssertEqual(records.map { $0.policy?["version"] as? String }, ["v1", "v1", "v1"])
        XCTAssertEqual(records.map { $0.policy?["cohort"] as? String }, ["stable", "stable", "stable"])
        XCTAssertEqual(records.map(\.candidateOutcome), ["v2:allow:allowed", "v2:deny:peer.not_allowed", "v2:deny:peer.missing"])
    }

    func testACanaryDecidesForItsCohortOnlyAndEachCallerStaysInItsCohort() async throws {
        let fixture = try await GatewayFixture { Self.configure(&$0, Self.rollout(.canary, percent: 100)) }
        defer { Task { await fixture.shutdown() } }
        // Every workload with a SPIFFE ID is in a 100% canary; a caller without one has no
        // cohort key and stays on the stable policy.
        for _ in 0..<2 {
            XCTAssertEqual(try MutualTLS.curl(fixture, "/a", client: fixture.pki.client(.prodCheckout)).response?.status, 200)
            XCTAssertEqual(try MutualTLS.curl(fixture, "/a", client: fixture.pki.client(.prodSidecar)).response?.status, 403)
            XCTAssertEqual(try MutualTLS.curl(fixture, "/a", client: nil).response?.status, 200)
        }
        let records = fixture.records(atLeast: 6)
        XCTAssertEqual(records.map { $0.policy?["cohort"] as? String }, ["candidate", "candidate", "stable", "candidate", "candidate", "stable"])
        XCTAssertEqual(records.map { $0.policy?["version"] as? String }, ["v2", "v2", "v1", "v2", "v2", "v1"])
        XCTAssertEqual(records[1].reason, "peer.not_allowed")
        XCTAssertEqual(records[1].candidateOutcome, "v1:allow:allowed", "the stable policy's verdict is recorded beside it")
        XCTAssertEqual(records[2].candidateOutcome, "v2:deny:peer.missing")
    }

    /// The issue's figure: a 10% canary over 1,000 distinct callers (here: verified token
    /// subjects) puts 10% ± 3% of them in the candidate, and each caller stays where it is.
    func testATenPercentCanaryTakesATenthOfOneThousandCallersAndKeepsEachInItsCohort() async throws {
        let jwks = try TestTokens.jwksFile(for: self)
        let fixture = try await GatewayFixture(tls: false) { config in
            config.issuers = [IssuerConfig(name: "idp", issuer: "https://idp.test", jwksFile: jwks, audiences: ["billing"], location: MutualTLS.here)]
            var stable = MutualTLS.route("orders", .prefix("/"), peers: nil)
            stable.token = RouteTokenConfig(issuers: ["idp"], location: MutualTLS.here)
            // The candidate also wants a claim no caller has: its cohort is refused with 403.
            var candidate = stable
            candidate.token?.claims = ["tier": .string("gold")]
            config.routes = [stable]
            config.declaredVersion = "v1"
            config.rollout = RolloutConfig(
                candidateFile: "candidate.yaml", candidate: CandidatePolicy(version: "v2", routes: [candidate], sha256: ""),
                mode: .canary, percent: 10, cohort: .subject, autoRollback: nil, location: MutualTLS.here)
        }
        defer { Task { await fixture.shutdown() } }
        let tokens = try (0..<1000).map { try TestTokens.token(["sub": "\"caller-\($0)\""]) }
        let client = try RawHTTPClient(port: fixture.port)
        func status(_ token: String) -> Int {
            client.send("GET /orders HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer \(token)\r\n\r\n")
            return client.readResponses(1).first?.status ?? 0
        }
        let first = tokens.map(status)
        XCTAssertEqual(Set(first), [200, 403])
        let inCandidate = first.filter { $0 == 403 }.count
        XCTAssertEqual(Double(inCandidate), 100, accuracy: 30, "10% ± 3% of 1,000 callers")
        // Every caller asks again (a fresh token, same subject): nobody changes cohort.
        let again = try (0..<1000).map { status(try TestTokens.token(["sub": "\"caller-\($0)\""])) }
        XCTAssertEqual(again, first)
        let records = fixture.records(atLeast: 2000).filter { $0["decision"] != nil }
        XCTAssertEqual(records.filter { $0.policy?["cohort"] as? String == "candidate" }.count, 2 * inCandidate)
    }

    func testACandidateThatDeniesLegitimateCallersRollsBackWithinItsWindow() async throws {
        let clock = ManualClock()
        let limits = AutoRollbackConfig(window: .seconds(60), minRequests: 10, maxExtraDenyRate: 0.2)
        let metrics = GatewayMetrics()
        let fixture = try await GatewayFixture(metrics: metrics, rolloutClock: clock) {
            Self.configure(&$0, Self.rollout(.canary, percent: 100, autoRollback: limits))
        }
        defer { Task { await fixture.shutdown() } }
        let sidecar = fixture.pki.client(.prodSidecar)
        // Requests spread over 50 s of the 60 s window; the candidate refuses every one.
        var statuses: [Int] = []
        for _ in 0..<10 {
            statuses.append(try MutualTLS.curl(fixture, "/a", client: sidecar).response?.status ?? 0)
            clock.advance(by: .seconds(5))
        }
        XCTAssertEqual(statuses, Array(repeating: 403, count: 10), "the candidate enforced until the window had min_requests")
        // The 10th request tripped it: the very next one is the stable policy's again.
        XCTAssertEqual(try MutualTLS.curl(fixture, "/a", client: sidecar).response?.status, 200)
        let lines = fixture.records(atLeast: 12)
        let event = try XCTUnwrap(lines.first { $0["event"] as? String == "rollout.rolled_back" })
        XCTAssertEqual(event["cause"] as? String, "auto: max_extra_deny_rate")
        let figures = try XCTUnwrap(event["figures"] as? [String: Any])
        XCTAssertEqual(figures["requests"] as? Int, 10)
        XCTAssertEqual(figures["candidate_denies"] as? Int, 10)
        XCTAssertEqual(figures["stable_denies"] as? Int, 0)
        XCTAssertEqual((figures["candidate_adds"] as? [[String: Any]])?.first?["reason"] as? String, "peer.not_allowed")
        let last = try XCTUnwrap(lines.last { $0["decision"] != nil })
        XCTAssertEqual(last.policy?["cohort"] as? String, "stable")
        XCTAssertEqual(last.candidateOutcome, "v2:deny:peer.not_allowed", "still evaluated in shadow after the rollback")

        let status = try Self.json(fixture.adminCurl("/rollout").body)
        XCTAssertEqual(status["state"] as? String, "rolled_back")
        let exposition = String(decoding: metrics.exposition(), as: UTF8.self)
        XCTAssertTrue(exposition.contains(#"gatehouse_rollout_rolled_back{stable="v1",candidate="v2",mode="canary"} 1"#), exposition)
        XCTAssertTrue(exposition.contains(#"gatehouse_rollout_candidate_enforcing{stable="v1",candidate="v2",mode="canary"} 0"#))
        // It stays rolled back: more time and more requests change nothing.
        clock.advance(by: .seconds(600))
        XCTAssertEqual(try MutualTLS.curl(fixture, "/a", client: sidecar).response?.status, 200)
    }

    func testAWindowWithinItsLimitsKeepsTheCandidateEnforcing() async throws {
        let clock = ManualClock()
        let limits = AutoRollbackConfig(window: .seconds(60), minRequests: 4, maxExtraDenyRate: 0.6)
        let fixture = try await GatewayFixture(rolloutClock: clock) {
            Self.configure(&$0, Self.rollout(.canary, percent: 100, autoRollback: limits))
        }
        defer { Task { await fixture.shutdown() } }
        // Half the requests are refused by the candidate only: 0.5 extra, under 0.6.
        var statuses: [Int] = []
        for index in 0..<8 {
            let client = fixture.pki.client(index.isMultiple(of: 2) ? .prodCheckout : .prodSidecar)
            statuses.append(try MutualTLS.curl(fixture, "/a", client: client).response?.status ?? 0)
        }
        XCTAssertEqual(statuses, [200, 403, 200, 403, 200, 403, 200, 403])
        XCTAssertEqual(try Self.json(fixture.adminCurl("/rollout").body)["state"] as? String, "canary")
    }

    func testTheAdminAPIPromotesAndRollsBackOnlyWithTheAdminToken() async throws {
        let metrics = GatewayMetrics()
        let fixture = try await GatewayFixture(metrics: metrics, environment: ["ADMIN_TOKEN": "let-me-in"]) {
            Self.configure(&$0, Self.rollout(.canary, percent: 100), adminToken: true)
        }
        defer { Task { await fixture.shutdown() } }
        let sidecar = fixture.pki.client(.prodSidecar)
        let status = try Self.json(fixture.adminCurl("/rollout").body)
        XCTAssertEqual(status["state"] as? String, "canary")
        XCTAssertEqual((status["policy"] as? [String: Any])?["candidate"] as? String, "v2")

        XCTAssertEqual(try fixture.adminCurl("/rollout/rollback", ["-X", "POST"]).status, 401)
        XCTAssertEqual(try fixture.adminCurl("/rollout/rollback", ["-X", "POST", "-H", "Authorization: Bearer wrong"]).status, 401)
        XCTAssertEqual(try MutualTLS.curl(fixture, "/a", client: sidecar).response?.status, 403, "refused calls changed nothing")

        let rolledBack = try fixture.adminCurl("/rollout/rollback", ["-X", "POST", "-H", "Authorization: Bearer let-me-in"])
        XCTAssertEqual(rolledBack.status, 200)
        XCTAssertEqual(try MutualTLS.curl(fixture, "/a", client: sidecar).response?.status, 200, "the stable policy decides again")

        let promoted = try fixture.adminCurl("/rollout/promote", ["-X", "POST", "-H", "Authorization: Bearer let-me-in"])
        XCTAssertEqual(promoted.status, 200)
        XCTAssertEqual(try Self.json(promoted.body)["enforcing"] as? String, "v2")
        XCTAssertEqual(try MutualTLS.curl(fixture, "/a", client: sidecar).response?.status, 403, "the candidate is now the policy")
        XCTAssertEqual(try Self.json(fixture.adminCurl("/rollout").body)["state"] as? String, "none")
        XCTAssertEqual(try fixture.adminCurl("/rollout/promote", ["-X", "POST", "-H", "Authorization: Bearer let-me-in"]).status, 409)
        let last = try XCTUnwrap(fixture.records(atLeast: 4).last { $0["decision"] != nil })
        XCTAssertEqual(last.policy?["version"] as? String, "v2")
        XCTAssertNil(last.policy?["shadow"])
        let exposition = String(decoding: metrics.exposition(), as: UTF8.self)
        XCTAssertTrue(exposition.contains(#"gatehouse_config_info{version="v2""#), "the running policy is the candidate's")
        XCTAssertTrue(fixture.records(atLeast: 4).contains { $0["event"] as? String == "rollout.promoted" })
    }

    func testWithoutAnAdminTokenTheMutatingEndpointsAreDisabled() async throws {
        let fixture = try await GatewayFixture { Self.configure(&$0, Self.rollout(.canary, percent: 100)) }
        defer { Task { await fixture.shutdown() } }
        let response = try fixture.adminCurl("/rollout/promote", ["-X", "POST", "-H", "Authorization: Bearer anything"])
        XCTAssertEqual(response.status, 403)
        XCTAssertTrue(response.body.contains("admin.token"))
        XCTAssertEqual(try MutualTLS.curl(fixture, "/a", client: fixture.pki.client(.prodSidecar)).response?.status, 403)
    }

    static func json(_ text: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], text)
    }
}

extension Dictionary where Key == String, Value == Any {
    /// `policy.shadow` as `version:decision:reason`.
    var candidateOutcome: String? {
        guard let other = policy?["shadow"] as? [String: Any] else { return nil }
        return "\(other["version"] as? String ?? "?"):\(other["decision"] as? String ?? "?"):\(other["reason"] as? String ?? "?")"
    }
}
