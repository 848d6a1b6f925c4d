import Foundation
import XCTest

@testable import GatehouseCore

final class ReplayStoreTests: XCTestCase {
    private let now = Date(timeIntervalSince1970: 1_800_000_000)

    func testOnceUntilExpiry() {
        let store = InMemoryReplayStore(capacity: 10)
        XCTAssertEqual(store.insertIfAbsent("a", expiresAt: now + 60, now: now), .inserted)
        XCTAssertEqual(store.insertIfAbsent("a", expiresAt: now + 60, now: now + 30), .duplicate)
        XCTAssertEqual(store.insertIfAbsent("a", expiresAt: now + 120, now: now + 60), .inserted, "expired: a new delivery")
    }

    func testFullRefusesRatherThanEvictingLiveKeys() {
        let store = InMemoryReplayStore(capacity: 2)
        XCTAssertEqual(store.insertIfAbsent("a", expiresAt: now + 60, now: now), .inserted)
        XCTAssertEqual(store.insertIfAbsent("b", expiresAt: now + 5, now: now), .inserted)
        XCTAssertEqual(store.insertIfAbsent("c", expiresAt: now + 60, now: now), .unavailable, "fail closed")
        XCTAssertEqual(store.insertIfAbsent("a", expiresAt: now + 60, now: now), .duplicate, "live keys were kept")
        // Once `b` expired, a purge (at most once a second) makes room.
        XCTAssertEqual(store.insertIfAbsent("c", expiresAt: now + 60, now: now + 10), .inserted)
        XCTAssertEqual(store.count, 2)
        XCTAssertEqual(store.insertIfAbsent("d", expiresAt: now + 60, now: now + 10.5), .unavailable, "no second purge within a second")
    }
}
