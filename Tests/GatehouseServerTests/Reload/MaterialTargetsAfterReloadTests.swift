import Foundation
import Logging
import NIOConcurrencyHelpers
import XCTest
@testable import GatehouseServer

/// After a reload the rotation watcher follows the new snapshot's files (a new upstream's
/// certificate, a new minting key) and stops re-reading the old ones.
final class MaterialTargetsAfterReloadTests: XCTestCase {
    func testReplacedTargetsAreWatchedAndDroppedOnesAreNot() async throws {
        let directory = NSTemporaryDirectory() + "gatehouse-targets-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let old = directory + "/old.pem", new = directory + "/new.pem", later = directory + "/later.pem"
        try "a".write(toFile: old, atomically: true, encoding: .utf8)
        try "a".write(toFile: new, atomically: true, encoding: .utf8)
        let reloaded = NIOLockedValueBox<[String]>([])
        func target(_ name: String, _ file: String) -> TLSMaterialWatcher.Target {
            .init(name: name, files: [file]) { reloaded.withLockedValue { $0.append(name) } }
        }
        let watcher = TLSMaterialWatcher(targets: [target("old", old)], logger: Logger(label: "test"))
        watcher.replaceTargets([target("new", new), target("later", later)])

        try "changed".write(toFile: old, atomically: true, encoding: .utf8)
        try "changed".write(toFile: new, atomically: true, encoding: .utf8)
        await watcher.check(force: false)
        XCTAssertEqual(reloaded.withLockedValue { $0 }, ["new"])
        // A file that did not exist when it was first watched is picked up when it appears.
        try "appeared".write(toFile: later, atomically: true, encoding: .utf8)
        await watcher.check(force: false)
        XCTAssertEqual(reloaded.withLockedValue { $0 }, ["new", "later"])
        await watcher.check(force: true)
        XCTAssertEqual(reloaded.withLockedValue { $0 }.sorted(), ["later", "later", "new", "new"])
    }
}
