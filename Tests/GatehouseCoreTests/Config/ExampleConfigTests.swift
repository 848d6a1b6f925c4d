import Foundation
import XCTest
@testable import GatehouseCore

/// Every example in conf/ must load: they are what new users copy.
final class ExampleConfigTests: XCTestCase {
    func testEveryExampleConfigurationLoads() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let directory = root.appendingPathComponent("conf")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertEqual(files, ["demo.yaml", "legacy-fronting.yaml", "staging-rollout.yaml", "webhooks.yaml"])
        for file in files {
            XCTAssertNoThrow(try ConfigLoader.load(path: directory.appendingPathComponent(file).path), file)
        }
    }
}
