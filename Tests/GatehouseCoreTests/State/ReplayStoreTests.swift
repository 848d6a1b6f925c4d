import Foundation
import XCTest

@testable import GatehouseCore

final class ReplayStoreTests: XCTestCase {
    private let now = Date(timeIntervalSince1970: 1_800_000_000)

    func testOnceUntilExpiry() {
        let store = InMemoryReplayStore(capacity: 10, now: now)
        XCTAssertEqual(store.insertIfAbsent("a", expiresAt: now + 60, now: now), .inserted)
        XCTAssertEqual(store.insertIfAbsent("a", expiresAt: now + 60, now: now + 30), .duplicate)
        XCTAssertEqual(store.insertIfAbsent("a", expiresAt: now + 60, now: now + 59.5), .duplicate, "expiry is never rounded down")
        XCTAssertEqual(store.insertIfAbsent("a", expiresAt: now + 120, now: now + 60), .inserted, "expired: a new delivery")
        XCTAssertEqual(store.insertIfAbsent("b", expiresAt: now - 5, now: now), .inserted, "an expiry in the past still holds a second")
        XCTAssertEqual(store.insertIfAbsent("b", expiresAt: now - 5, now: now + 0.5), .duplicate)
    }

    func testFullRefusesRatherThanEvictingLiveKeys() {
        let store = InMemoryReplayStore(capacity: 2, now: now)
        XCTAssertEqual(store.insertIfAbsent("a", expiresAt: now + 60, now: now), .inserted)
        XCTAssertEqual(store.insertIfAbsent("b", expiresAt: now + 5, now: now), .inserted)
        XCTAssertEqual(store.insertIfAbsent("c", expiresAt: now + 60, now: now), .unavailable, "fail closed")
        XCTAssertEqual(store.insertIfAbsent("a", expiresAt: now + 60, now: now), .duplicate, "live keys were kept")
        // Once `b` expired, its slot is reclaimed.
        XCTAssertEqual(store.insertIfAbsent("c", expiresAt: now + 60, now: now + 10), .inserted)
        XCTAssertEqual(store.count, 2)
        XCTAssertEqual(store.insertIfAbsent("d", expiresAt: now + 60, now: now + 10.5), .unavailable, "a and c are live")
        XCTAssertEqual(store.insertIfAbsent("c", expiresAt: now + 60, now: now + 11), .duplicate)
    }

    func testARemovedKeyCanBeInsertedAgain() {
        let store = InMemoryReplayStore(capacity: 2, now: now)
        XCTAssertEqual(store.insertIfAbsent("a", expiresAt: now + 60, now: now), .inserted)
        XCTAssertEqual(store.insertIfAbsent("b", expiresAt: now + 60, now: now), .inserted)
        store.remove("a")
        store.remove("never-inserted")
        XCTAssertEqual(store.count, 1)
        XCTAssertEqual(store.insertIfAbsent("a", expiresAt: now + 60, now: now), .inserted)
        XCTAssertEqual(store.insertIfAbsent("b", expiresAt: now + 60, now: now), .duplicate, "others are untouched")
    }

    /// Many keys with mixed lifetimes against a reference model, through sweeps, backward
    /// shifts and wrap-around: a key whose expiry has not passed is always a duplicate; a key
    /// never seen, or expired for more than the store's one-second granularity (twice), never is.
    func testAgreesWithAReferenceModelUnderChurn() {
        let capacity = 200
        let store = InMemoryReplayStore(capacity: capacity, now: now)
        var model: [String: Date] = [:]
        var generator = SplitMix64(seed: 42)
        var clock = now
        var refused = 0
        for step in 0..<50_000 {
            clock += Double(Int.random(in: 0...3, using: &generator)) / 10
            let key = "k\(Int.random(in: 0..<2_000, using: &generator))"
            let expiry = clock + Double(Int.random(in: 1...120, using: &generator)) + 0.25
            let answer = store.insertIfAbsent(key, expiresAt: expiry, now: clock)
            if let held = model[key], held > clock {
                XCTAssertEqual(answer, .duplicate, "step \(step): live key \(key) not recognised")
            } else if model[key].map({ clock.timeIntervalSince($0) > 2 }) ?? true {
                XCTAssertNotEqual(answer, .duplicate, "step \(step): new key \(key) called a duplicate")
            }
            if answer == .inserted { model[key] = expiry }
            if answer == .unavailable {
                refused += 1
                let live = model.values.filter { $0 > clock }.count
                XCTAssertGreaterThanOrEqual(live + 2 * 120, capacity, "step \(step): refused while far from full")
            }
            XCTAssertLessThanOrEqual(store.count, capacity)
        }
        XCTAssertGreaterThan(refused, 0, "the churn reached capacity")
    }

    func testAMillionEntriesFitInAboutThirtyTwoBytesEach() {
        let store = InMemoryReplayStore(capacity: 1_000_000)
        XCTAssertLessThanOrEqual(store.allocatedBytes, 1_000_000 * 33)
    }
}
