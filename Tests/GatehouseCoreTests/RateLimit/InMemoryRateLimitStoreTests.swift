import Foundation
import XCTest

@testable import GatehouseCore

final class InMemoryRateLimitStoreTests: XCTestCase {
    private let now = Date(timeIntervalSince1970: 1_800_000_000)

    func testKeysAreLimitedIndependently() {
        let store = InMemoryRateLimitStore(capacity: 100, now: now)
        let policy = RatePolicy(count: 2, period: .seconds(1), burst: 2)
        XCTAssertEqual((0..<3).map { _ in store.evaluate("alice", policy: policy, now: now)?.allowed }, [true, true, false])
        XCTAssertEqual(store.evaluate("bob", policy: policy, now: now)?.allowed, true)
        XCTAssertEqual(store.evaluate("alice", policy: policy, now: now + 0.5)?.allowed, true, "one interval later")
    }

    func testAFullStoreNeverEvictsALiveCell() {
        // One shard of two cells.
        let store = InMemoryRateLimitStore(capacity: 2, shards: 1, now: now)
        let policy = RatePolicy(count: 1, period: .seconds(60), burst: 1)
        XCTAssertEqual(store.evaluate("a", policy: policy, now: now)?.allowed, true)
        XCTAssertEqual(store.evaluate("b", policy: policy, now: now)?.allowed, true)
        XCTAssertNil(store.evaluate("c", policy: policy, now: now), "full of live cells: the caller decides")
        XCTAssertEqual(store.evaluate("a", policy: policy, now: now)?.allowed, false, "a's limit was not reset")
        // A minute later both cells have expired: room again, and `a` starts afresh.
        XCTAssertEqual(store.evaluate("c", policy: policy, now: now + 61)?.allowed, true)
        XCTAssertEqual(store.evaluate("a", policy: policy, now: now + 61)?.allowed, true)
        XCTAssertLessThanOrEqual(store.count, 2)
    }

    func testARefusedNewKeyTakesNoRoom() {
        let store = InMemoryRateLimitStore(capacity: 10, shards: 1, now: now)
        // burst 1 over 1/min: the first request is admitted, so nothing is ever refused for a new key;
        // a refused request of a known key must not create or move anything either.
        let policy = RatePolicy(count: 1, period: .seconds(60), burst: 1)
        _ = store.evaluate("k", policy: policy, now: now)
        for second in 1...5 { XCTAssertEqual(store.evaluate("k", policy: policy, now: now + Double(second))?.allowed, false) }
        XCTAssertEqual(store.evaluate("k", policy: policy, now: now + 60)?.allowed, true, "refusals did not push the limit back")
        XCTAssertEqual(store.count, 1)
    }
}
