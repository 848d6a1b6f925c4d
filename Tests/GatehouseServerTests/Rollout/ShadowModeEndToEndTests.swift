import Foundation
import GatehouseCore
import XCTest

@testable import GatehouseServer

/// Checks in `mode: shadow`: evaluated and recorded (`shadow: [{check, decision, reason}]`),
/// never denying, over real TLS with curl.
final class ShadowModeEndToEndTests: XCTestCase {
    func testAShadowedTokenLetsAnUnauthenticatedRequestThroughAndRecordsTheWouldBeDenial() async throws {
        let jwks = try TestTokens.jwksFile(for: self)
        let fixture = try await GatewayFixture { config in
            config.issuers = [IssuerConfig(name: "idp", issuer: "https://idp.test", jwksFile: jwks, audiences: ["billing"], location: MutualTLS.here)]
            var route = MutualTLS.route("orders", .prefix("/"), peers: nil)
            var token = RouteTokenConfig(issuers: ["idp"], location: MutualTLS.here)
            token.mode = .shadow
            token.claimsToHeaders = ["sub": "x-subject"]
            route.token = token
            config.routes = [route]
        }
        defer { Task { await fixture.shutdown() } }
        XCTAssertEqual(try fixture.curl("/no-token").status, 200)
        XCTAssertEqual(try fixture.curl("/forged", ["-H", "Authorization: Bearer not.a.token", "-H", "X-Subject: admin"]).status, 200)
        let valid = try TestTokens.token(["sub": "\"alice\""])
        XCTAssertEqual(try fixture.curl("/valid", ["-H", "Authorization: Bearer \(valid)"]).status, 200)

        XCTAssertEqual(fixture.upstream.requests.count, 3, "a shadowed check never denies")
        XCTAssertNil(fixture.upstream.requests[1].head.headers["x-subject"].first, "a claim header is the gateway's only, even in shadow")
        XCTAssertEqual(fixture.upstream.requests[2].head.headers["x-subject"].first, "alice")
        let records = fixture.records(atLeast: 3)
        XCTAssertEqual(records.map(\.decision), ["allow", "allow", "allow"])
        XCTAssertEqual(records.map(\.reason), ["allowed", "allowed", "allowed"])
        XCTAssertEqual(records.map(\.shadowChecks), [
            ["token:deny:token.missing"], ["token:deny:token.malformed"], ["token:allow:allowed"],
        ])
    }

    func testAShadowedPeerPolicyRecordsWhoItWouldRefuse() async throws {
        let fixture = try await GatewayFixture { config in
            var route = MutualTLS.route("orders", .prefix("/"), peers: ["spiffe://prod.example/ns/pay/sa/checkout"])
            route.peersMode = .shadow
            MutualTLS.configure(&config, pki: try! TestPKI.files(), mode: .optional, routes: [route])
        }
        defer { Task { await fixture.shutdown() } }
        XCTAssertEqual(try MutualTLS.curl(fixture, "/a", client: fixture.pki.client(.prodCheckout)).response?.status, 200)
        XCTAssertEqual(try MutualTLS.curl(fixture, "/a", client: fixture.pki.client(.prodSidecar)).response?.status, 200)
        XCTAssertEqual(try MutualTLS.curl(fixture, "/a", client: nil).response?.status, 200)
        let records = fixture.records(atLeast: 3)
        XCTAssertEqual(records.map(\.shadowChecks), [
            ["peers:allow:allowed"], ["peers:deny:peer.not_allowed"], ["peers:deny:peer.missing"],
        ])
        XCTAssertEqual(records[1].peerID, "spiffe://prod.example/ns/pay/sa/sidecar", "the record says who would be refused")
    }

    func testAShadowedRateLimitCountsButNeverLimits() async throws {
        let metrics = GatewayMetrics()
        let fixture = try await GatewayFixture(metrics: metrics) { config in
            var route = MutualTLS.route("orders", .prefix("/"), peers: nil)
            var limit = RateLimitConfig(
                name: "per-ip", key: [.ip], policy: RatePolicy(count: 1, period: .seconds(60), burst: 1), location: MutualTLS.here)
            limit.mode = .shadow
            route.rateLimit = limit
            config.routes = [route]
        }
        defer { Task { await fixture.shutdown() } }
        let responses = try (0..<3).map { _ in try fixture.curl("/x") }
        XCTAssertEqual(responses.map(\.status), [200, 200, 200])
        XCTAssertNil(responses[2].header("RateLimit"), "no client is told about a limit that is not enforced")
        XCTAssertNil(responses[2].header("Retry-After"))
        let records = fixture.records(atLeast: 3)
        XCTAssertEqual(records.map(\.shadowChecks), [["rate_limit:allow:allowed"], ["rate_limit:deny:rate.limited"], ["rate_limit:deny:rate.limited"]])
        let text = PrometheusText(String(decoding: metrics.exposition(), as: UTF8.self))
        XCTAssertEqual(text.value("gatehouse_state_store_operations_total", ["backend": "memory", "op": "rate_limit"]), 3)
        XCTAssertEqual(text.value("gatehouse_state_store_errors_total", ["backend": "memory", "kind": "full"]), 0)
        XCTAssertEqual(text.value("gatehouse_check_duration_seconds_count", ["check": "rate_limit"]), 3)
    }

    func testAShadowedWebhookForwardsAnUnsignedDeliveryAndRecordsIt() async throws {
        let fixture = try await GatewayFixture(environment: ["HOOK_SECRET": "s3cret"]) { config in
            var route = MutualTLS.route("hooks", .prefix("/hooks"), peers: nil)
            var webhook = RouteWebhookConfig(scheme: .github, secrets: [.environment("HOOK_SECRET")], location: MutualTLS.here)
            webhook.mode = .shadow
            route.webhook = webhook
            route.maxBodyBytes = webhook.maxBodyBytes
            config.routes = [route]
        }
        defer { Task { await fixture.shutdown() } }
        let response = try fixture.curl("/hooks/x", [
            "-H", "X-Hub-Signature-256: sha256=" + String(repeating: "0", count: 64), "-H", "X-GitHub-Delivery: d-1",
            "--data-binary", #"{"action":"opened"}"#,
        ])
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(fixture.upstream.requests.first?.bodyBytes, #"{"action":"opened"}"#.utf8.count, "the body went upstream")
        let record = try XCTUnwrap(fixture.records(atLeast: 1).first)
        XCTAssertEqual(record.decision, "allow")
        XCTAssertEqual(record.shadowChecks, ["webhook:deny:webhook.bad_signature"])
    }
}

extension Dictionary where Key == String, Value == Any {
    /// `shadow` entries as `check:decision:reason`.
    var shadowChecks: [String] {
        (self["shadow"] as? [[String: Any]] ?? []).map { entry in
            "\(entry["check"] as? String ?? "?"):\(entry["decision"] as? String ?? "?"):\(entry["reason"] as? String ?? "?")"
        }
    }
    var policy: [String: Any]? { self["policy"] as? [String: Any] }
}
