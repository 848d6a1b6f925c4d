import Foundation
import GatehouseCore
import Metrics
import Prometheus
import XCTest
@testable import GatehouseServer

private func sampleRecord(
    route: String? = "app", decision: DecisionRecord.Decision = .allow, reason: ReasonCode = .allowed,
    version: String = "v1", cohort: String = "stable", millis: Double = 3
) -> DecisionRecord {
    DecisionRecord(
        timestampMillis: 0, requestID: "r", listener: "public", route: route, method: "GET", path: "/p",
        clientIP: "192.0.2.1", decision: decision, reason: reason, status: 200, durationMillis: millis,
        policyVersion: version, cohort: cohort)
}

/// The per-request cache behind `gatehouse_decisions_total` and
/// `gatehouse_request_duration_seconds`.
final class DecisionMetricsTests: XCTestCase {
    private func scrape(_ registry: PrometheusCollectorRegistry) -> PrometheusText {
        PrometheusText(registry.emitToString())
    }

    func testOneSeriesPerLabelCombinationWithExactCounts() {
        let registry = PrometheusCollectorRegistry()
        let metrics = DecisionMetrics(registry: registry)
        for _ in 0..<100 { metrics.recordRequest(sampleRecord()) }
        for _ in 0..<3 { metrics.recordRequest(sampleRecord(route: nil, decision: .deny, reason: .routeNotFound)) }
        metrics.recordRequest(sampleRecord(version: "v2"))
        metrics.recordRequest(sampleRecord(cohort: "candidate"))

        // 4 decision series + 2 duration series (routes "app" and none).
        XCTAssertEqual(metrics.seriesCount, 6)
        let text = scrape(registry)
        let name = "gatehouse_decisions_total"
        XCTAssertEqual(text.value(name, ["route": "app", "reason": "allowed", "policy_version": "v1", "cohort": "stable"]), 100)
        XCTAssertEqual(text.value(name, ["route": "", "decision": "deny", "reason": "route.not_found"]), 3)
        XCTAssertEqual(text.value(name, ["policy_version": "v2"]), 1)
        XCTAssertEqual(text.value(name, ["cohort": "candidate"]), 1)
        XCTAssertEqual(text.value("gatehouse_request_duration_seconds_count", ["route": "app"]), 102)
        // 3 ms: above the 2.5 ms bucket, within 5 ms.
        XCTAssertEqual(text.value("gatehouse_request_duration_seconds_bucket", ["route": "app", "le": "0.0025"]), 0)
        XCTAssertEqual(text.value("gatehouse_request_duration_seconds_bucket", ["route": "app", "le": "0.005"]), 102)
        // The record's path and client address never become labels.
        XCTAssertFalse(text.samples.flatMap(\.labels.values).contains { $0 == "/p" || $0 == "192.0.2.1" })
    }

    func testRefusalIsCountedWithoutADuration() {
        let registry = PrometheusCollectorRegistry()
        let metrics = DecisionMetrics(registry: registry)
        metrics.recordRefusal(sampleRecord(route: nil, decision: .deny, reason: .tlsUntrustedChain, millis: 0))
        let text = scrape(registry)
        XCTAssertEqual(text.value("gatehouse_decisions_total", ["reason": "tls.untrusted_chain"]), 1)
        XCTAssertFalse(text.samples.contains { $0.name.hasPrefix("gatehouse_request_duration_seconds") })
    }

    func testAtTheCapNewSeriesAreDroppedAndCounted() {
        let registry = PrometheusCollectorRegistry()
        let metrics = DecisionMetrics(registry: registry, maxSeries: 3)
        metrics.recordRequest(sampleRecord(version: "v1"))  // decision series + duration series
        metrics.recordRequest(sampleRecord(version: "v2"))  // one more decision series: at the cap
        for version in 3...12 { metrics.recordRequest(sampleRecord(version: "v\(version)")) }
        metrics.recordRequest(sampleRecord(route: "other", version: "v1"))  // counter and histogram both refused

        XCTAssertEqual(metrics.seriesCount, 3)
        let text = scrape(registry)
        XCTAssertEqual(text.value("gatehouse_metrics_series_dropped_total"), 12)
        XCTAssertEqual(text.samples.filter { $0.name == "gatehouse_decisions_total" }.count, 2)
        // Existing series keep counting at the cap.
        metrics.recordRequest(sampleRecord(version: "v1"))
        XCTAssertEqual(scrape(registry).value("gatehouse_decisions_total", ["policy_version": "v1"]), 2)
        XCTAssertEqual(scrape(registry).value("gatehouse_request_duration_seconds_count", ["route": "app"]), 13)
    }

    func testConcurrentRecordsAreAllCounted() {
        let registry = PrometheusCollectorRegistry()
        let metrics = DecisionMetrics(registry: registry)
        let reasons: [ReasonCode] = [.allowed, .routeNotFound, .peerMissing, .rateLimited]
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for i in 0..<1_000 {
                let reason = reasons[(worker + i) % reasons.count]
                metrics.recordRequest(sampleRecord(decision: reason == .allowed ? .allow : .deny, reason: reason))
            }
        }
        let text = scrape(registry)
        for reason in reasons {
            XCTAssertEqual(text.value("gatehouse_decisions_total", ["reason": reason.rawValue]), 2_000, reason.rawValue)
        }
    }

    /// Not a pass/fail benchmark (debug builds, a shared machine): prints the cost per record
    /// of the cache next to what a swift-metrics `Counter` made per request would cost.
    func testCostPerRecord() {
        let registry = PrometheusCollectorRegistry()
        let metrics = DecisionMetrics(registry: registry)
        let sample = sampleRecord(version: String(repeating: "ab", count: 6))
        let iterations = 200_000
        metrics.recordRequest(sample)

        let clock = ContinuousClock()
        let cached = clock.measure { for _ in 0..<iterations { metrics.recordRequest(sample) } }
        let factory = PrometheusMetricsFactory(registry: PrometheusCollectorRegistry())
        let perRequest = clock.measure {
            for _ in 0..<iterations {
                Metrics.Counter(
                    label: "gatehouse_decisions_total",
                    dimensions: [("route", "app"), ("decision", "allow"), ("reason", "allowed"),
                                 ("policy_version", sample.policyVersion), ("cohort", "stable")],
                    factory: factory
                ).increment()
            }
        }
        let nanos = { (duration: Duration) in Double(duration.components.attoseconds / 1_000_000_000 + duration.components.seconds * 1_000_000_000) / Double(iterations) }
        print("DecisionMetrics.recordRequest: \(Int(nanos(cached))) ns/record (counter + histogram); swift-metrics Counter per request: \(Int(nanos(perRequest))) ns/record (counter only)")
        XCTAssertEqual(scrape(registry).value("gatehouse_decisions_total", ["reason": "allowed"]), Double(iterations + 1))
    }
}
