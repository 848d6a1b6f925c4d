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
