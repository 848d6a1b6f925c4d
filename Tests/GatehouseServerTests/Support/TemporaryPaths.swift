import Foundation
import XCTest

extension XCTestCase {
    /// A fresh path in the temporary directory (nothing is created there), removed, file or
    /// directory, when this test tears down: a test run leaves nothing behind in /tmp.
    func temporaryPath(_ prefix: String, suffix: String = "") -> String {
        let path = NSTemporaryDirectory() + prefix + UUID().uuidString + suffix
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }
}

/// One directory per test process, for files that outlive a single test: the test PKI every
/// test shares, and the decision logs of fixtures whose shutdown (a detached task) may still
/// be running when the process ends. Removed when the test bundle finishes, so a run leaves
/// none of them behind either.
enum TestScratch {
    static let directory: String = {
        let path = NSTemporaryDirectory() + "gatehouse-tests-\(getpid())"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        XCTestObservationCenter.shared.addTestObserver(Remover(path: path))
        return path
    }()

    /// A path in the directory (nothing is created there).
    static func path(_ name: String) -> String { directory + "/" + name }

    private final class Remover: NSObject, XCTestObservation {
        let path: String
        init(path: String) { self.path = path }
        func testBundleDidFinish(_ testBundle: Bundle) {
            try? FileManager.default.removeItem(atPath: path)
        }
    }
}
