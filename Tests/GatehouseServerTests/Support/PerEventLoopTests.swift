import NIOConcurrencyHelpers
import NIOEmbedded
import XCTest
@testable import GatehouseServer

final class PerEventLoopTests: XCTestCase {
    private final class Box: Sendable {
        let number: Int
        init(_ number: Int) { self.number = number }
    }

    /// One value per loop, kept; at most `limit` loops get one, the rest get nil (the caller
    /// shares something), and nothing more is made for them.
    func testOneValuePerLoopUpToTheLimit() {
        let made = NIOLockedValueBox(0)
        let table = PerEventLoop<Box>(limit: 2) {
            Box(made.withLockedValue { count in
                defer { count += 1 }
                return count
            })
        }
        let loops = (0..<3).map { _ in EmbeddedEventLoop() }
        let first = table.value(for: loops[0])
        XCTAssertTrue(table.value(for: loops[0]) === first, "the same loop, the same value")
        let second = table.value(for: loops[1])
        XCTAssertNotNil(second)
        XCTAssertFalse(first === second)
        XCTAssertNil(table.value(for: loops[2]), "past the limit")
        XCTAssertNil(table.value(for: loops[2]))
        XCTAssertEqual(table.all.map(\.number), [0, 1], "in the order made, none for the third loop")
        XCTAssertTrue(table.value(for: loops[1]) === second, "loops within the limit keep theirs")
    }

    /// Past its limit, a loop's observations share the first loop's buffer: none are lost.
    func testLoopObservationsPastTheLimitShareTheFirstBuffer() {
        let set = LoopObservationSet<Int>(capacity: 1000)
        let loops = (0...LoopObservationSet<Int>.maxLoops).map { _ in EmbeddedEventLoop() }
        let buffers = loops.map { set.observations(for: $0) }
        XCTAssertTrue(buffers.last === buffers.first)
        for (index, buffer) in buffers.enumerated() { XCTAssertNil(buffer.add(index)) }
        XCTAssertEqual(set.takeAll().sorted(), Array(0...LoopObservationSet<Int>.maxLoops))
    }
}
