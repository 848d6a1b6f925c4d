import Foundation
import GatehouseCore
import NIOCore
import NIOPosix
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

    /// The number in each written record's `request_id` (`r<number>`), in file order.
    private func requestNumbers(_ path: String) -> [Int] {
        lines(path).compactMap { line in
            line.range(of: #""request_id":"r"#).flatMap { Int(line[$0.upperBound...].prefix { $0.isNumber }) }
        }
    }

    /// A started log in a temporary file and a group of two event loops, both gone after the test.
    private func startedLogWithTwoLoops() throws -> (log: DecisionLog, path: String, loops: [any EventLoop]) {
        let path = NSTemporaryDirectory() + "decisions-\(UUID().uuidString).jsonl"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        addTeardownBlock { try? await group.shutdownGracefully() }
        let log = DecisionLog(config: DecisionLogConfig(path: path))
        try log.start()
        return (log, path, Array(group.makeIterator()))
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

    /// Each event loop queues into its own queue; every record of every loop is written once,
    /// each loop's in the order it made them, and `flush` waits for all of them.
    func testEachEventLoopHasItsOwnQueueAndNothingIsLost() throws {
        let (log, path, loops) = try startedLogWithTwoLoops()
        let queues = loops.map { log.queue(for: $0) }
        XCTAssertTrue(queues[0] !== queues[1], "one queue per loop")
        XCTAssertTrue(log.queue(for: loops[0]) === queues[0], "the same loop, the same queue")

        let perLoop = 2_000
        let done = try EventLoopFuture.whenAllSucceed(
            loops.indices.map { loop in
                loops[loop].submit {
                    for index in 0..<perLoop { log.record(self.record(loop * 100_000 + index), in: queues[loop]) }
                }
            }, on: loops[0]
        ).wait()
        XCTAssertEqual(done.count, 2)
        log.record(record(999_999))  // the general queue
        log.flush()
        let written = lines(path)
        XCTAssertEqual(written.count, 2 * perLoop + 1)
        for loop in loops.indices {
            let ids = requestNumbers(path).filter { $0 / 100_000 == loop && $0 != 999_999 }
            XCTAssertEqual(ids, (0..<perLoop).map { loop * 100_000 + $0 }, "loop \(loop): all, in order")
        }
        XCTAssertEqual(log.counters, .init(written: 2 * perLoop + 1, failedOver: 0, dropped: 0))
        log.shutdown()
    }

    /// Records made alternately into two queues come out in the order they were made: the
    /// writer merges the queues by when each line was queued.
    func testRecordsOfDifferentQueuesAreWrittenInTheOrderMade() throws {
        let (log, path, loops) = try startedLogWithTwoLoops()
        let queues = loops.map { log.queue(for: $0) } + [nil]
        for index in 0..<300 { log.record(record(index), in: queues[index % 3]) }
        log.flush()
        XCTAssertEqual(requestNumbers(path), Array(0..<300))
        log.shutdown()
    }

    func testAnUnwritablePathFailsAtStart() {
        let log = DecisionLog(config: DecisionLogConfig(path: "/nonexistent-dir/decisions.jsonl"))
        XCTAssertThrowsError(try log.start()) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent-dir/decisions.jsonl"))
        }
    }
}
