import Foundation
import Synchronization
import XCTest

@testable import GatehouseCore

final class CohortHashTests: XCTestCase {
    func testTenPercentOfAThousandCallersLandInTheCanaryAndStayThere() {
        let callers = (0..<1000).map { "spiffe://prod.example/ns/app/sa/workload-\($0)" }
        let inCanary = callers.filter { CohortHash.inCanary($0, salt: "v2", percent: 10) }
        XCTAssertEqual(Double(inCanary.count), 100, accuracy: 30, "10% ± 3% of 1,000 callers")
        for caller in callers.prefix(200) {
            XCTAssertEqual(
                CohortHash.inCanary(caller, salt: "v2", percent: 10), CohortHash.inCanary(caller, salt: "v2", percent: 10),
                "one caller never flaps between policies")
        }
        // Growing the canary keeps everyone already in it.
        let atTwenty = Set(callers.filter { CohortHash.inCanary($0, salt: "v2", percent: 20) })
        XCTAssertTrue(Set(inCanary).isSubset(of: atTwenty))
        // Another candidate draws another slice.
        let nextRollout = Set(callers.filter { CohortHash.inCanary($0, salt: "v3", percent: 10) })
        XCTAssertNotEqual(nextRollout, Set(inCanary))
        XCTAssertFalse(callers.contains { CohortHash.inCanary($0, salt: "v2", percent: 0) })
        XCTAssertTrue(callers.allSatisfy { CohortHash.inCanary($0, salt: "v2", percent: 100) })
    }

    func testThePercentileIsFixedAcrossProcesses() {
        // A fixed value: instances and restarts must agree on who is in the canary.
        XCTAssertEqual(CohortHash.percentile(of: "spiffe://prod.example/a", salt: "v2"), CohortHash.percentile(of: "spiffe://prod.example/a", salt: "v2"))
        let value = CohortHash.percentile(of: "alice", salt: "v2")
        XCTAssertTrue((0..<100).contains(value))
    }
}

final class RolloutWindowTests: XCTestCase {
    final class Clock: Sendable {
        let now = Mutex(Duration.seconds(100))
        var read: RolloutWindow.Clock { { [self] in now.withLock { $0 } } }
        func advance(_ by: Duration) { now.withLock { $0 += by } }
    }

    private let limits = AutoRollbackConfig(window: .seconds(60), minRequests: 10, maxExtraDenyRate: 0.05, maxErrorRate: 0.1)

    private func sample(stable: Bool = false, candidate: Bool = false, decided: Bool = false, failed: Bool = false) -> RolloutSample {
        RolloutSample(stableDenied: stable, candidateDenied: candidate, candidateReason: candidate && !stable ? .peerNotAllowed : nil,
            candidateDecided: decided, candidateFailed: failed)
    }

    func testNothingIsJudgedBeforeMinRequests() {
        let clock = Clock()
        let window = RolloutWindow(window: .seconds(60), clock: clock.read)
        for _ in 0..<9 { window.add(sample(candidate: true)) }
        XCTAssertNil(RolloutWindow.judge(window.figures(), limits, minCandidateRequests: 1))
        window.add(sample(candidate: true))
        XCTAssertEqual(RolloutWindow.judge(window.figures(), limits, minCandidateRequests: 1)?.cause, .denyRate)
    }

    func testTheExtraDenyRateIsTheCandidatesMinusTheStables() {
        let clock = Clock()
        let window = RolloutWindow(window: .seconds(60), clock: clock.read)
        // Both refuse the same 50%: the candidate adds nothing.
        for index in 0..<100 { window.add(sample(stable: index < 50, candidate: index < 50)) }
        let figures = window.figures()
        XCTAssertEqual(figures.stableDenyRate, 0.5)
        XCTAssertEqual(figures.extraDenyRate, 0)
        XCTAssertNil(RolloutWindow.judge(figures, limits, minCandidateRequests: 1))
        for _ in 0..<10 { window.add(sample(candidate: true)) }
        let tripped = RolloutWindow.judge(window.figures(), limits, minCandidateRequests: 1)
        XCTAssertEqual(tripped?.cause, .denyRate)
        XCTAssertEqual(tripped?.figures.topAddedReasons(3).first?.reason, .peerNotAllowed)
        XCTAssertEqual(tripped?.figures.topAddedReasons(3).first?.count, 10)
    }

    func testOldRequestsLeaveTheWindow() {
        let clock = Clock()
        let window = RolloutWindow(window: .seconds(60), clock: clock.read)
        for _ in 0..<20 { window.add(sample(candidate: true)) }
        clock.advance(.seconds(30))
        XCTAssertEqual(window.figures().requests, 20)
        clock.advance(.seconds(31))
        XCTAssertEqual(window.figures().requests, 0, "a minute later, the burst of denials is history")
        window.add(sample())
        XCTAssertEqual(window.figures().requests, 1)
    }

    func testTheErrorRateCountsOnlyTheCandidatesOwnDecisions() {
        let clock = Clock()
        let window = RolloutWindow(window: .seconds(60), clock: clock.read)
        for index in 0..<100 { window.add(sample(decided: index < 10, failed: index < 2)) }
        let figures = window.figures()
        XCTAssertEqual(figures.candidateErrorRate, 0.2)
        XCTAssertEqual(RolloutWindow.judge(figures, limits, minCandidateRequests: 10)?.cause, .errorRate)
        XCTAssertNil(RolloutWindow.judge(figures, limits, minCandidateRequests: 11), "too few of its own decisions to judge")
    }
}
