import GatehouseCore
import NIOCore
import XCTest
@testable import GatehouseServer

final class EndpointSelectorTests: XCTestCase {
    private func selector(count: Int, failures: Int = 2) throws -> EndpointSelector {
        var ejection = EjectionConfig()
        ejection.consecutiveFailures = failures
        ejection.duration = .seconds(30)
        return EndpointSelector(
            endpoints: try (0..<count).map { .init(address: try SocketAddress(ipAddress: "127.0.0.1", port: 1000 + $0), label: "e\($0)") },
            ejection: ejection
        )
    }

    func testRoundRobin() throws {
        let rr = try selector(count: 3)
        XCTAssertEqual((0..<6).map { _ in rr.next() }, [0, 1, 2, 0, 1, 2])
    }

    func testConsecutiveFailuresEjectUntilTheDurationPasses() throws {
        let rr = try selector(count: 2)
        let now = NIODeadline.now()
        XCTAssertFalse(rr.recordConnectFailure(0, now: now))
        XCTAssertTrue(rr.recordConnectFailure(0, now: now))
        XCTAssertEqual((0..<4).map { _ in rr.next(now: now) }, [1, 1, 1, 1])
        XCTAssertTrue(rr.isEjected(0, now: now + .seconds(29)))
        XCTAssertFalse(rr.isEjected(0, now: now + .seconds(31)))
    }

    func testASuccessResetsTheFailureCount() throws {
        let rr = try selector(count: 2)
        rr.recordConnectFailure(0)
        rr.recordConnectSuccess(0)
        XCTAssertFalse(rr.recordConnectFailure(0))
    }

    func testWhenAllAreEjectedTheSoonestToRecoverIsTried() throws {
        let rr = try selector(count: 2, failures: 1)
        let now = NIODeadline.now()
        rr.recordConnectFailure(1, now: now)
        rr.recordConnectFailure(0, now: now + .seconds(1))
        XCTAssertEqual(rr.next(now: now + .seconds(2)), 1)
    }

    func testExclusionSkipsTheFailedEndpoint() throws {
        let rr = try selector(count: 2)
        XCTAssertEqual((0..<4).map { _ in rr.next(excluding: 0) }, [1, 1, 1, 1])
    }
}
