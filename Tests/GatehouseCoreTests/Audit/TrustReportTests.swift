import Foundation
import XCTest
@testable import GatehouseCore

/// `gatehouse report` over a small log written with the gateway's own record encoder.
final class TrustReportTests: XCTestCase {
    private let now: Int64 = 1_795_000_000_000
    private let day: Int64 = 86_400_000

    private func record(
        _ route: String?, _ decision: DecisionRecord.Decision, _ reason: ReasonCode, ageDays: Int64 = 1, peer: String? = nil,
        token: DecisionRecord.Token? = nil, webhookIndex: Int? = nil, ip: String = "10.0.0.1"
    ) -> String {
        DecisionRecord(
            timestampMillis: now - ageDays * day, requestID: "r", listener: "public", route: route, method: "GET", path: "/x",
            clientIP: ip, peer: peer.map { .init(spiffeID: $0, certificateSHA256: "ab") }, token: token,
            webhook: webhookIndex.map { .init(scheme: "github", secretIndex: $0, deliveryID: "d") },
            decision: decision, reason: reason, status: decision == .allow ? 200 : 403, durationMillis: 1, policyVersion: "v1"
        ).jsonLine()
    }

    /// clean.yaml: `orders` (peers prod.example/ns/shop/*), `ledger` (token corp), `hook` (one webhook secret).
    private func report(_ lines: [String], since: Int64? = nil) throws -> TrustReportSummary {
        let config = try ConfigLoader.load(path: AuditFixtures.directory.appendingPathComponent("clean.yaml").path)
        let log = NSTemporaryDirectory() + "gatehouse-report-\(UUID().uuidString).jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: log, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: log) }
        var reader = try DecisionLogReader(path: log)
        var report = TrustReport(config: config, sinceMillis: since)
        while let line = try reader.nextLine() { report.add(line: line) }
        return TrustReportSummary(report, since: nil, oversizeLines: reader.oversizeLines)
    }

    private func sampleLog() -> [String] {
        var lines: [String] = []
        lines += (0..<5).map { _ in record("orders", .allow, .allowed, peer: "spiffe://prod.example/ns/shop/sa/cart") }
        lines += (0..<3).map { _ in record("orders", .deny, .peerNotAllowed, peer: "spiffe://staging.example/ns/shop/sa/cart") }
        lines += (0..<2).map { _ in
            record("ledger", .deny, .tokenAudienceMismatch, token: .init(issuer: "https://idp.prod.example", subject: "alice", id: nil))
        }
        lines += (0..<4).map { _ in record("hook", .allow, .allowed, webhookIndex: 0) }
        lines.append(record(nil, .deny, .routeNotFound, ip: "203.0.113.9"))
        lines.append(record("orders", .allow, .allowed, ageDays: 200, peer: "spiffe://prod.example/ns/shop/sa/cart"))
        lines.append("{not json")
        lines.append(#"{"ts":"2026-11-22T20:00:01.000Z","event":"rollout.rolled_back","cause":"manual","policy":{"stable":"v1","candidate":"v2","mode":"canary"}}"#)
        return lines
    }

    func testCountsOfASmallLog() throws {
        let summary = try report(sampleLog(), since: now - 90 * day)
        XCTAssertEqual(summary.window.records, 15)
        XCTAssertEqual(summary.window.outsideWindow, 1)
        XCTAssertEqual(summary.window.unreadableLines, 1)
        XCTAssertEqual(summary.window.gatewayEvents, 1, "a rollout event is neither a request nor garbage")
        XCTAssertEqual(summary.unusedGrants, [
            .init(route: "ledger", kind: "route", grant: "no allowed request"),
            .init(route: "ledger", kind: "issuer", grant: "corp (https://idp.prod.example)"),
        ])
        XCTAssertEqual(summary.topDeniedCallers.map(\.caller), [
            "spiffe://staging.example/ns/shop/sa/cart", "sub:alice@https://idp.prod.example", "ip:203.0.113.9",
        ])
        XCTAssertEqual(summary.topDeniedCallers.map(\.denied), [3, 2, 1])
        XCTAssertEqual(summary.topDeniedCallers[0].reasons, ["peer.not_allowed": 3])
        XCTAssertEqual(summary.foreignCredentials.spiffeTrustDomains.map(\.name), ["staging.example"])
        XCTAssertEqual(summary.foreignCredentials.spiffeTrustDomains.map(\.count), [3])
        XCTAssertEqual(summary.foreignCredentials.tokenAudienceMismatches.map(\.name), ["ledger"])
        XCTAssertEqual(summary.foreignCredentials.tokenAudienceMismatches.map(\.count), [2])
        XCTAssertTrue(summary.notJudgeable.contains { $0.hasPrefix("token lifetimes") })
        XCTAssertTrue(summary.text().contains("grants never exercised in the window (candidates to revoke): 2"), summary.text())
    }

    /// Without a window every record counts; a pattern and a webhook secret never used show up.
    func testUnusedPatternAndWebhookSecret() throws {
        let lines = [record("ledger", .allow, .allowed, token: .init(issuer: "https://idp.prod.example", subject: "bob", id: "j"))]
        let summary = try report(lines)
        XCTAssertEqual(summary.window.records, 1)
        XCTAssertEqual(summary.unusedGrants.map(\.kind), ["route", "peer", "route", "webhook_secret"])
        XCTAssertEqual(summary.unusedGrants.map(\.grant)[1], "spiffe://prod.example/ns/shop/*")
    }

    func testBoundedCounterKeepsTheLargestAndSaysItPruned() {
        var counter = BoundedCounter<String>(capacity: 2)
        for _ in 0..<10 { counter.add("heavy") }
        for _ in 0..<5 { counter.add("medium") }
        for index in 0..<100 { counter.add("rare-\(index)") }
        XCTAssertLessThan(counter.counts.count, 4)
        XCTAssertEqual(counter.top(2).map(\.key), ["heavy", "medium"])
        XCTAssertEqual(counter.top(2).map(\.count), [10, 5])
        XCTAssertGreaterThan(counter.evicted, 90)
    }

    /// Lines that straddle chunk boundaries come out whole; an oversize line is skipped and counted.
    func testReaderStreamsLinesAcrossChunksAndSkipsOversizeLines() throws {
        let log = NSTemporaryDirectory() + "gatehouse-reader-\(UUID().uuidString).jsonl"
        defer { try? FileManager.default.removeItem(atPath: log) }
        var text = ""
        for index in 0..<20_000 { text += "line-\(index)-" + String(repeating: "x", count: index % 97) + "\n" }
        text += String(repeating: "y", count: DecisionLogReader.maxLineBytes * 5) + "\n"
        text += "last"
        try text.write(toFile: log, atomically: true, encoding: .utf8)
        var reader = try DecisionLogReader(path: log)
        var count = 0
        var last = ""
        while let line = try reader.nextLine() {
            if count < 20_000 { XCTAssertTrue(String(decoding: line, as: UTF8.self).hasPrefix("line-\(count)-")) }
            last = String(decoding: line, as: UTF8.self)
            count += 1
        }
        XCTAssertEqual(count, 20_001)
        XCTAssertEqual(last, "last")
        XCTAssertEqual(reader.oversizeLines, 1)
    }

    func testRFC3339Parsing() {
        XCTAssertEqual(DecisionLogEntry.millis(rfc3339: "1970-01-01T00:00:00.000Z"), 0)
        XCTAssertEqual(DecisionLogEntry.millis(rfc3339: "2026-11-22T19:28:11.123Z"), 1_795_375_691_123)
        XCTAssertEqual(DecisionLogEntry.millis(rfc3339: "2024-02-29T00:00:01Z"), 1_709_164_801_000)
        XCTAssertNil(DecisionLogEntry.millis(rfc3339: "yesterday"))
    }
}
