import Foundation
import GatehouseCore
import Metrics
import NIOCore
import NIOPosix
import Prometheus
import XCTest
@testable import GatehouseServer

private func sampleRecord(
    route: String? = "app", decision: DecisionRecord.Decision = .allow, reason: ReasonCode = .allowed,
    version: String = "v1", cohort: String = "stable", millis: Double = 3, upstream: DecisionRecord.Upstream? = nil
) -> DecisionRecord {
    DecisionRecord(
        timestampMillis: 0, requestID: "r", listener: "public", route: route, method: "GET", path: "/p",
        clientIP: "192.0.2.1", decision: decision, reason: reason, status: 200, upstream: upstream, durationMillis: millis,
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

    /// A connection's remembered series: reused while the series stays the same, replaced
    /// when it changes, so every record lands in its own series exactly once.
    func testRecentSeriesCountEveryRecordInItsOwnSeries() {
        let registry = PrometheusCollectorRegistry()
        let metrics = DecisionMetrics(registry: registry)
        var recent = DecisionMetrics.RecentSeries()
        func record(version: String = "v1", reason: ReasonCode = .allowed, upstreamStatus: Int? = 200) {
            let record = sampleRecord(
                decision: reason == .allowed ? .allow : .deny, reason: reason, version: version,
                upstream: upstreamStatus.map { .init(name: "origin", endpoint: "127.0.0.1:1", status: $0) })
            metrics.recordRequest(record, recent: &recent)
        }
        for _ in 0..<5 { record() }
        record(version: "v2")
        record()
        record(upstreamStatus: 503)
        record(upstreamStatus: 503)
        record(reason: .peerNotAllowed, upstreamStatus: nil)
        record()

        let text = scrape(registry)
        let name = "gatehouse_decisions_total"
        XCTAssertEqual(text.value(name, ["reason": "allowed", "policy_version": "v1"]), 9)
        XCTAssertEqual(text.value(name, ["reason": "allowed", "policy_version": "v2"]), 1)
        XCTAssertEqual(text.value(name, ["reason": "peer.not_allowed"]), 1)
        XCTAssertEqual(text.value("gatehouse_upstream_requests_total", ["upstream": "origin", "result": "2xx"]), 8)
        XCTAssertEqual(text.value("gatehouse_upstream_requests_total", ["upstream": "origin", "result": "5xx"]), 2)
        XCTAssertEqual(text.value("gatehouse_request_duration_seconds_count", ["route": "app"]), 11)
    }

    /// Past the cap nothing is remembered: each record of a refused series counts a drop.
    func testRecentSeriesAtTheCapStillCountEveryDrop() {
        let registry = PrometheusCollectorRegistry()
        let metrics = DecisionMetrics(registry: registry, maxSeries: 2)
        var recent = DecisionMetrics.RecentSeries()
        metrics.recordRequest(sampleRecord(version: "v1"), recent: &recent)  // counter + histogram: at the cap
        for _ in 0..<4 { metrics.recordRequest(sampleRecord(version: "v2"), recent: &recent) }
        metrics.recordRequest(sampleRecord(version: "v1"), recent: &recent)

        let text = scrape(registry)
        XCTAssertEqual(text.value("gatehouse_metrics_series_dropped_total"), 4)
        XCTAssertEqual(text.value("gatehouse_decisions_total", ["policy_version": "v1"]), 2)
        XCTAssertEqual(text.value("gatehouse_request_duration_seconds_count", ["route": "app"]), 6)
    }

    /// Held on the event loops: invisible in the registry until a burst fills or a scrape
    /// comes, then every record counted in its own series, none twice.
    func testHeldObservationsAreCountedAtABurstAndAtEveryScrape() throws {
        let metrics = GatewayMetrics()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        defer { try? group.syncShutdownGracefully() }
        let loops = Array(group.makeIterator())
        let held = loops.map { metrics.decisions.observations(for: $0) }
        XCTAssertTrue(held[0] !== held[1], "one buffer per loop")
        XCTAssertTrue(metrics.decisions.observations(for: loops[0]) === held[0])
        var recent = [DecisionMetrics.RecentSeries(), DecisionMetrics.RecentSeries()]
        func record(_ loop: Int, version: String = "v1", upstreamStatus: Int = 200) {
            let record = sampleRecord(
                version: version, upstream: .init(name: "origin", endpoint: "127.0.0.1:1", status: upstreamStatus))
            metrics.decisions.recordRequest(record, recent: &recent[loop], held: held[loop])
        }
        func registryValue(_ name: String, _ labels: [String: String]) -> Double? {
            PrometheusText(metrics.registry.emitToString()).value(name, labels)
        }
        let name = "gatehouse_decisions_total"
        for _ in 0..<10 { record(0) }
        for _ in 0..<5 { record(1) }
        record(1, upstreamStatus: 503)
        // The first of each series is counted at once (it finds the series); repeats are held.
        XCTAssertEqual(registryValue(name, ["policy_version": "v1"]), 3)

        var text = PrometheusText(String(decoding: metrics.exposition(), as: UTF8.self))
        XCTAssertEqual(text.value(name, ["policy_version": "v1"]), 16)
        XCTAssertEqual(text.value("gatehouse_upstream_requests_total", ["upstream": "origin", "result": "2xx"]), 15)
        XCTAssertEqual(text.value("gatehouse_upstream_requests_total", ["upstream": "origin", "result": "5xx"]), 1)
        XCTAssertEqual(text.value("gatehouse_request_duration_seconds_count", ["route": "app"]), 16)
        text = PrometheusText(String(decoding: metrics.exposition(), as: UTF8.self))
        XCTAssertEqual(text.value(name, ["policy_version": "v1"]), 16, "nothing counted twice")

        // A full buffer is counted without a scrape.
        for _ in 0..<300 { record(0, version: "v2") }
        let counted = try XCTUnwrap(registryValue(name, ["policy_version": "v2"]))
        XCTAssertGreaterThanOrEqual(counted, 256)
        XCTAssertLessThan(counted, 300)
        text = PrometheusText(String(decoding: metrics.exposition(), as: UTF8.self))
        XCTAssertEqual(text.value(name, ["policy_version": "v2"]), 300)
    }

    func testCheckDurationsHeldOnALoopAreObservedAtTheScrape() throws {
        let metrics = GatewayMetrics()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let recorder = metrics.checks.recorder(for: group.next())
        for _ in 0..<7 { recorder.observe(.token, since: .now()) }
        metrics.checks.observe(.peers, since: .now())
        let count = "gatehouse_check_duration_seconds_count"
        XCTAssertEqual(PrometheusText(metrics.registry.emitToString()).value(count, ["check": "token"]), 0)
        let text = PrometheusText(String(decoding: metrics.exposition(), as: UTF8.self))
        XCTAssertEqual(text.value(count, ["check": "token"]), 7)
        XCTAssertEqual(text.value(count, ["check": "peers"]), 1)
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
        var recent = DecisionMetrics.RecentSeries()
        let remembered = clock.measure { for _ in 0..<iterations { metrics.recordRequest(sample, recent: &recent) } }
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
        print("DecisionMetrics.recordRequest: \(Int(nanos(cached))) ns/record (counter + histogram), \(Int(nanos(remembered))) ns with the connection's recent series; swift-metrics Counter per request: \(Int(nanos(perRequest))) ns/record (counter only)")
        XCTAssertEqual(scrape(registry).value("gatehouse_decisions_total", ["reason": "allowed"]), Double(2 * iterations + 1))
    }
}
