import Foundation
import XCTest
@testable import GatehouseCore

/// The fixture configs of Tests/Fixtures/audit: one per finding id (`ID.yaml`, or
/// `ID.ENV.yaml` for findings across environments), the offending line marked `# finding`.
enum AuditFixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/audit")

    /// Every fixture file name (`.yaml`; `.yml` files are helpers such as a rollout candidate).
    static func names() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".yaml") }.sorted()
    }

    /// Copies the named fixtures (and helper files) into a fresh directory, with `FIXTURES/`
    /// in them pointing at it, and returns the copies' paths. The directory is removed when
    /// `test` tears down.
    static func materialise(_ names: [String], for test: XCTestCase) throws -> [String] {
        let target = NSTemporaryDirectory() + "gatehouse-audit-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(atPath: target) }
        let helpers = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".yml") }
        for name in names + helpers {
            let text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
            try text.replacingOccurrences(of: "FIXTURES/", with: target + "/").write(toFile: target + "/" + name, atomically: true, encoding: .utf8)
        }
        return names.map { target + "/" + $0 }
    }

    /// The 1-based lines marked `# finding`.
    static func markedLines(_ path: String) throws -> [Int] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
            .enumerated().filter { $0.element.contains("# finding") }.map { $0.offset + 1 }
    }

    /// A resolver that reads no environment: each reference resolves to a value derived from it.
    static let resolver: @Sendable (SecretReference) -> [UInt8]? = { Array("value of \($0)".utf8) }
}
