import NIOCore
import NIOEmbedded
import XCTest
@testable import GatehouseServer

final class DeadlineTimerTests: XCTestCase {
    func testFiresOnceAtTheLatestDeadline() {
        let loop = EmbeddedEventLoop()
        var fired = 0
        let timer = DeadlineTimer(eventLoop: loop) { fired += 1 }
        timer.arm(in: .seconds(10))
        loop.advanceTime(by: .seconds(6))
        timer.arm(in: .seconds(10))  // moved: now due at t=16
        loop.advanceTime(by: .seconds(5))  // t=11: the first task fires early and re-arms
        XCTAssertEqual(fired, 0)
        loop.advanceTime(by: .seconds(5))  // t=16
        XCTAssertEqual(fired, 1)
        loop.advanceTime(by: .seconds(60))
        XCTAssertEqual(fired, 1)
        XCTAssertFalse(timer.isArmed)
    }

    func testDisarmedTimerDoesNothingAndAnEarlierDeadlineIsHonoured() {
        let loop = EmbeddedEventLoop()
        var fired = 0
        let timer = DeadlineTimer(eventLoop: loop) { fired += 1 }
        timer.arm(in: .seconds(10))
        timer.disarm()
        loop.advanceTime(by: .seconds(20))
        XCTAssertEqual(fired, 0)
        timer.arm(in: .seconds(30))
        timer.arm(in: .seconds(1))  // earlier than the scheduled task: rescheduled
        loop.advanceTime(by: .seconds(1))
        XCTAssertEqual(fired, 1)
    }
}
