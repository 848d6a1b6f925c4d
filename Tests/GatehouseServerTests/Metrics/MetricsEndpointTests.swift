import Foundation
import GatehouseCore
import XCTest
@testable import GatehouseServer

/// `/metrics` on the admin listener, end to end: real requests through the gateway over TLS,
/// then a scrape with curl, asserting exact counts and that no label carries request data.
final class MetricsEndpointTests: XCTestCase {
    func testScrapeCountsEachDecisionByRouteAndReason() async throws {
        let metrics = GatewayMetrics()
        let fixture = try await GatewayFixture(metrics: metrics) { config in
            MutualTLS.configure(&config, pki: try! TestPKI.files(), mode: .optional, routes: [
                MutualTLS.route("app", .prefix("/api"), peers: nil),
                MutualTLS.route("payments", .prefix("/payments"), peers: [TestPKI.checkoutID]),
            ])
        }
        defer { Task { await fixture.shutdown() } }

        XCTAssertEqual(try fixture.curl("/api/items?id=7").status, 200)
        XCTAssertEqual(try fixture.curl("/api/other/secret-looking-path").status, 200)
        XCTAssertEqual(try fixture.curl("/nowhere/at/all").status, 404)
        XCTAssertEqual(try fixture.curl("/payments/charge").status, 401)  // peer.missing: no client certificate
        let refused = try MutualTLS.curl(fixture, "/api/x", client: fixture.pki.client(.untrusted))
        XCTAssertNotEqual(refused.exit, 0, "the handshake with an untrusted client certificate must fail")
        // Metrics are updated just before each record is queued: once all five are logged,
        // all five are counted.
        XCTAssertEqual(fixture.records(atLeast: 5).count, 5)

        let scrape = try CurlResponse.run(["http://127.0.0.1:\(fixture.adminPort)/metrics"], caFile: nil)
        XCTAssertEqual(scrape.status, 200)
        XCTAssertTrue(scrape.header("content-type")?.hasPrefix("text/plain; version=0.0.4") == true, "\(scrape.headers)")
        let text = PrometheusText(scrape.body)
        XCTAssertEqual(text.unparsed, [])

        let decisions = "gatehouse_decisions_total"
        let version = "abababababab"
        XCTAssertEqual(text.value(decisions, [
            "route": "app", "decision": "allow", "reason": "allowed", "policy_version": version, "cohort": "stable",
        ]), 2)
        XCTAssertEqual(text.value(decisions, ["route": "", "decision": "deny", "reason": "route.not_found"]), 1)
        XCTAssertEqual(text.value(decisions, ["route": "payments", "decision": "deny", "reason": "peer.missing"]), 1)
        XCTAssertEqual(text.value(decisions, ["route": "", "decision": "deny", "reason": "tls.untrusted_chain"]), 1)
        XCTAssertEqual(text.samples.filter { $0.name == decisions }.map(\.value).reduce(0, +), 5)

        // Durations for requests, not for the refused handshake.
        XCTAssertEqual(text.value("gatehouse_request_duration_seconds_count", ["route": "app"]), 2)
        XCTAssertEqual(text.value("gatehouse_request_duration_seconds_count", ["route": "payments"]), 1)
        XCTAssertEqual(text.value("gatehouse_request_duration_seconds_count", ["route": ""]), 1)
        XCTAssertEqual(text.value("gatehouse_request_duration_seconds_bucket", ["route": "app", "le": "10.0"]), 2)
        XCTAssertEqual(text.value("gatehouse_metrics_series_dropped_total"), 0)
        XCTAssertEqual(text.value("gatehouse_replay_store_entries"), 0)

        // Handshakes by result; upstream requests by result; one peer check per request on
        // the `payments` route; the pools' connections.
        XCTAssertEqual(text.value("gatehouse_tls_handshakes_total", ["listener": "public", "result": "ok"]), 4)
        XCTAssertEqual(text.value("gatehouse_tls_handshakes_total", ["listener": "public", "result": "tls.untrusted_chain"]), 1)
        XCTAssertEqual(text.value("gatehouse_upstream_requests_total", ["upstream": "app", "result": "2xx"]), 2)
        XCTAssertEqual(text.value("gatehouse_check_duration_seconds_count", ["check": "peers"]), 1)
        XCTAssertEqual(text.value("gatehouse_check_duration_seconds_count", ["check": "token"]), 0)
        XCTAssertEqual(text.value("gatehouse_upstream_ejections_total", ["upstream": "app"]), 0)
        let open = try XCTUnwrap(text.value("gatehouse_upstream_connections", ["upstream": "app", "state": "open"]))
        let idle = try XCTUnwrap(text.value("gatehouse_upstream_connections", ["upstream": "app", "state": "idle"]))
        XCTAssertGreaterThanOrEqual(open, 1, "the two requests left keep-alive connections")
        XCTAssertEqual(idle, open, "nothing is in flight")

        // Read at scrape time: the records above have been written by now.
        fixture.gateway.decisionLog.flush()
        let again = PrometheusText(String(decoding: metrics.exposition(), as: UTF8.self))
        XCTAssertEqual(again.value("gatehouse_decision_log_records_total", ["result": "written"]), 5)
        XCTAssertEqual(again.value("gatehouse_decision_log_records_total", ["result": "dropped"]), 0)

        // Labels come from closed sets: nothing from the request line or the client.
        let labelValues = text.samples.flatMap(\.labels.values)
        for leaked in ["127.0.0.1", "/api/items", "secret-looking-path", "/nowhere/at/all", "id=7", TestPKI.checkoutID] {
            XCTAssertFalse(labelValues.contains { $0.contains(leaked) }, "label value contains \(leaked)")
        }
    }

    func testEachGatewayHasItsOwnRegistry() async throws {
        let first = try await GatewayFixture(tls: false)
        defer { Task { await first.shutdown() } }
        let second = try await GatewayFixture(tls: false)
        defer { Task { await second.shutdown() } }

        XCTAssertEqual(try first.curl("/a").status, 200)
        XCTAssertEqual(first.records(atLeast: 1).count, 1)

        let counted = { (fixture: GatewayFixture) in
            PrometheusText(String(decoding: fixture.gateway.metrics.exposition(), as: UTF8.self))
                .value("gatehouse_decisions_total", ["route": "app", "reason": "allowed"])
        }
        XCTAssertEqual(counted(first), 1)
        XCTAssertNil(counted(second))
    }

    func testOtherAdminPathsAreStillNotFound() async throws {
        let fixture = try await GatewayFixture(tls: false)
        defer { Task { await fixture.shutdown() } }
        let base = "http://127.0.0.1:\(fixture.adminPort)"
        XCTAssertEqual(try CurlResponse.run([base + "/metrics/x"], caFile: nil).status, 404)
        XCTAssertEqual(try CurlResponse.run(["-X", "POST", base + "/metrics"], caFile: nil).status, 404)
        let health = try CurlResponse.run([base + "/healthz"], caFile: nil)
        XCTAssertEqual(health.status, 200)
        XCTAssertEqual(health.header("content-type"), "application/json")
    }
}
