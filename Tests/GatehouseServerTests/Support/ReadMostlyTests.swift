import XCTest
@testable import GatehouseServer

final class ReadMostlyTests: XCTestCase {
    final class Box: Sendable {
        let name: String
        init(_ name: String) { self.name = name }
    }

    func testAReadingServesUntilAReplace() {
        let store = ReadMostly(Box("a"))
        var reading: ReadMostly<Box>.Reading?
        let first = store.read(reusing: &reading)
        XCTAssertEqual(first.name, "a")
        XCTAssertTrue(store.read(reusing: &reading) === first)

        store.replace(with: Box("b"))
        XCTAssertEqual(store.read(reusing: &reading).name, "b", "the next read after a replace sees it")
        XCTAssertEqual(store.value.name, "b")
    }

    func testAReadingOfAnotherStoreIsNeverTakenForCurrent() {
        let one = ReadMostly(Box("one"))
        let two = ReadMostly(Box("two"))
        var reading: ReadMostly<Box>.Reading?
        XCTAssertEqual(one.read(reusing: &reading).name, "one")
        XCTAssertEqual(two.read(reusing: &reading).name, "two")
        XCTAssertEqual(one.read(reusing: &reading).name, "one")
    }

    func testAConditionalReplaceLosesToAnEarlierOne() {
        let first = Box("first")
        let store = ReadMostly(first)
        var reading: ReadMostly<Box>.Reading?
        _ = store.read(reusing: &reading)
        XCTAssertTrue(store.replace(with: Box("second"), ifCurrent: { $0 === first }))
        XCTAssertFalse(store.replace(with: Box("third"), ifCurrent: { $0 === first }), "first is not current any more")
        XCTAssertEqual(store.read(reusing: &reading).name, "second")
    }

    func testConcurrentReadersSeeOnlyPublishedValues() {
        let store = ReadMostly(Box("0"))
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            if worker == 0 {
                for i in 1...2_000 { store.replace(with: Box("\(i)")) }
            } else {
                var reading: ReadMostly<Box>.Reading?
                var last = 0
                for _ in 0..<20_000 {
                    let seen = Int(store.read(reusing: &reading).name)!
                    XCTAssertGreaterThanOrEqual(seen, last, "never goes back")
                    last = seen
                }
            }
        }
        var reading: ReadMostly<Box>.Reading?
        XCTAssertEqual(store.read(reusing: &reading).name, "2000")
    }
}
