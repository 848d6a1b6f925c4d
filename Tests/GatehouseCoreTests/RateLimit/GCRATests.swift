import XCTest

@testable import GatehouseCore

/// GCRA against a fixed clock: exact admit/deny sequences, burst, Retry-After.
final class GCRATests: XCTestCase {
    private let second: Int64 = 1_000_000_000

    /// Runs `times` (nanoseconds) through one key; returns the decisions.
    private func run(_ policy: RatePolicy, at times: [Int64]) -> [RateDecision] {
        var tat: Int64?
        return times.map { now in
            let (decision, newTAT) = GCRA.evaluate(tat: tat, now: now, policy: policy)
            tat = newTAT
            return decision
        }
    }

    func testABurstThenTheSteadyRate() {
        // 10/s, burst 3: three at once, then one every 100 ms.
        let policy = RatePolicy(count: 10, period: .seconds(1), burst: 3)
        let decisions = run(policy, at: [0, 0, 0, 0, 50_000_000, 100_000_000, 100_000_000, 200_000_000])
        XCTAssertEqual(decisions.map(\.allowed), [true, true, true, false, false, true, false, true])
        XCTAssertEqual(decisions.map(\.remaining), [2, 1, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(decisions[3].retryAfterNanos, 100_000_000, "the fourth fits at 100 ms")
        XCTAssertEqual(decisions[4].retryAfterNanos, 50_000_000)
        XCTAssertEqual(decisions[6].retryAfterNanos, 100_000_000)
    }

    func testIdlenessRefillsTheBurstButNeverBeyondIt() {
        let policy = RatePolicy(count: 1, period: .seconds(1), burst: 2)
        let decisions = run(policy, at: [0, 0, 0, 10 * second, 10 * second, 10 * second])
        XCTAssertEqual(decisions.map(\.allowed), [true, true, false, true, true, false], "ten idle seconds still buy only the burst")
        XCTAssertEqual(decisions[2].retryAfterNanos, second)
        XCTAssertEqual(decisions[0].resetAfterNanos, second, "back to a full burst one interval later")
    }

    func testNoWindowBoundaryLetsTwiceTheRateThrough() {
        // 5 per second, burst 1: requests every 10 ms for 3 s admit exactly one per 200 ms.
        let policy = RatePolicy(count: 5, period: .seconds(1), burst: 1)
        let times = stride(from: Int64(0), to: 3 * second, by: 10_000_000).map { $0 }
        let admitted = run(policy, at: times).filter(\.allowed).count
        XCTAssertEqual(admitted, 15)
    }

    func testPerMinuteRates() {
        let policy = RatePolicy(count: 6000, period: .seconds(60), burst: 1)
        XCTAssertEqual(policy.emissionIntervalNanos, 10_000_000)
        XCTAssertEqual(run(policy, at: [0, 9_999_999, 10_000_000]).map(\.allowed), [true, false, true])
    }
}
