import Foundation
import XCTest

@testable import GatehouseCore

final class SecretResolverTests: XCTestCase {
    private func failure(_ ref: SecretReference, environment: [String: String] = [:]) -> String? {
        do {
            _ = try SecretResolver.resolve(ref, environment: environment)
            return nil
        } catch {
            return "\(error)"
        }
    }

    func testEnvironmentVariable() throws {
        XCTAssertEqual(try SecretResolver.resolve(.environment("KEY"), environment: ["KEY": "s3cret"]), Array("s3cret".utf8))
        XCTAssertEqual(failure(.environment("KEY")), "secret env:KEY: environment variable `KEY` is not set")
        XCTAssertEqual(failure(.environment("KEY"), environment: ["KEY": ""]), "secret env:KEY: environment variable `KEY` is empty")
    }

    func testFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-secret-\(UUID().uuidString)").path
        try Data("top secret".utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertEqual(try SecretResolver.resolve(.file(path)), Array("top secret".utf8))

        try Data().write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(failure(.file(path)), "secret file:\(path): file is empty")
        XCTAssertEqual(failure(.file("/nonexistent/key.pem")), "secret file:/nonexistent/key.pem: cannot read file (no such file)")
        let directory = FileManager.default.temporaryDirectory.path
        XCTAssertEqual(failure(.file(directory)), "secret file:\(directory): cannot read file (is a directory)")
    }

    func testErrorsNeverContainTheSecret() {
        let message = failure(.environment("OTHER"), environment: ["KEY": "s3cret"]) ?? ""
        XCTAssertFalse(message.contains("s3cret"))
    }
}
