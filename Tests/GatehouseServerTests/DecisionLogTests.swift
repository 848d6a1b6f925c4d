import Foundation
import GatehouseCore
import XCTest
@testable import GatehouseServer

final class DecisionLogTests: XCTestCase {
    private func record(_ index: Int) -> DecisionRecord {
        DecisionRecord(
            timestampMillis: 0, requestID: "r\(index)", listener: "l", clientIP: "127.0.0.1", decision: .allow,
            reason: .allowed, status: 200, durationMillis: 0, policyVersion: "v"
        )
    }

    private func lines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    func testRecordsAreWrittenOnePerLineAndTheFileIsReopenedForRotation() throws {
        let path = NSTemporaryDirectory() + "decisions-\(UUID().uuidString).jsonl"
        defer { try? FileManager.default.removeItem(atPath: path); try? FileManager.default.removeItem(atPath: path + ".1") }
        let log = DecisionLog(config: DecisionLogConfig(path: path))
        try log.start()
        log.record(record(1))
        log.record(record(2))
        log.flush()
        try FileManager.default.moveItem(atPath: path, toPath: path + ".1")  // logrotate
        log.record(record(3))  // still goes to the renamed file until reopened
        log.flush()
        log.reopen()
        log.record(record(4))
        log.shutdown()
        XCTAssertEqual(lines(path + ".1").count, 3)
        XCTAssertEqual(lines(path).count, 1)
        XCTAssertTrue(lines(path)[0].contains(#""request_id":"r4""#))
        XCTAssertEqual(log.counters, .init(written: 4, failedOver: 0, dropped: 0))
    }

    func testAFailingSinkFailsOverToStderrAndCountsIt() throws {
        let log = DecisionLog(config: DecisionLogConfig(path: "/dev/full"))  // every write fails with ENOSPC
        try log.start()
        for index in 0..<3 { log.record(record(index)) }
        log.shutdown()
        XCTAssertEqual(log.counters.written, 0)
        XCTAssertEqual(log.counters.failedOver, 3)
    }

    func testAFullQueueDropsAndCountsNeverLosesSilently() throws {
        let path = NSTemporaryDirectory() + "decisions-\(UUID().uuidString).jsonl"
        defer { try? FileManager.default.removeItem(atPath: path) }
        var config = DecisionLogConfig(path: path)
        config.queueCapacity = 4
        let log = DecisionLog(config: config)
        try log.start()
        let total = 20_000
        for index in 0..<total { log.record(record(index)) }
        log.shutdown()
        let counters = log.counters
        XCTAssertGreaterThan(counters.dropped, 0, "a 4-record queue cannot absorb a 20,000-record burst")
        XCTAssertEqual(counters.written + counters.dropped, total)
        XCTAssertEqual(lines(path).count, counters.written)
    }

    func testAnUnwritablePathFailsAtStart() {
        let log = DecisionLog(config: DecisionLogConfig(path: "/nonexistent-dir/decisions.jsonl"))
        XCTAssertThrowsError(try log.start()) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent-dir/decisions.jsonl"))
        }
    }
}
