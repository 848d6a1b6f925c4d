import Crypto
import Foundation
import XCTest

@testable import GatehouseCore

/// Builds verifiers straight from secret strings (as `SecretResolver` would hand them over).
enum WebhookTestSupport {
    static let location = SourceLocation(file: "t.yaml", line: 1, column: 1)

    static func config(_ scheme: WebhookScheme, secrets: Int, publicKeys: Int = 0) -> RouteWebhookConfig {
        var config = RouteWebhookConfig(scheme: scheme, secrets: (0..<secrets).map { .environment("SECRET_\($0)") }, location: location)
        config.publicKeys = (0..<publicKeys).map { .environment("PUBLIC_KEY_\($0)") }
        return config
    }

    static func verifier(
        _ scheme: WebhookScheme, secrets: [String], publicKeys: [String] = [], route: String = "hooks",
        configure: (inout RouteWebhookConfig) -> Void = { _ in }
    ) throws -> WebhookVerifier {
        var config = config(scheme, secrets: secrets.count, publicKeys: publicKeys.count)
        configure(&config)
        return try WebhookVerifier(
            route: route, config: config, secrets: secrets.map { Array($0.utf8) }, publicKeys: publicKeys.map { Array($0.utf8) })
    }

    static func date(_ unix: Int64) -> Date { Date(timeIntervalSince1970: TimeInterval(unix)) }

    /// Signs like a sender would, for behaviour tests (the vector tests use published constants).
    static func hmacHex(_ secret: String, _ message: String) -> String {
        HMAC<SHA256>.authenticationCode(for: Array(message.utf8), using: SymmetricKey(data: Array(secret.utf8)))
            .map { String(format: "%02x", $0) }.joined()
    }

    static func hmacBase64(key: [UInt8], _ message: String) -> String {
        Data(HMAC<SHA256>.authenticationCode(for: Array(message.utf8), using: SymmetricKey(data: key))).base64EncodedString()
    }
}

extension XCTestCase {
    @discardableResult
    func assertValid(
        _ verdict: WebhookVerdict, secretIndex: Int, file: StaticString = #filePath, line: UInt = #line
    ) -> WebhookDelivery? {
        guard case .valid(let delivery) = verdict else {
            XCTFail("expected valid, got \(verdict)", file: file, line: line)
            return nil
        }
        XCTAssertEqual(delivery.secretIndex, secretIndex, "secret index", file: file, line: line)
        return delivery
    }

    func assertInvalid(
        _ verdict: WebhookVerdict, _ reason: ReasonCode, detail: String? = nil, file: StaticString = #filePath, line: UInt = #line
    ) {
        guard case .invalid(let actual, let actualDetail) = verdict else {
            XCTFail("expected \(reason.rawValue), got \(verdict)", file: file, line: line)
            return
        }
        XCTAssertEqual(actual, reason, actualDetail, file: file, line: line)
        if let detail { XCTAssertEqual(actualDetail, detail, file: file, line: line) }
    }
}
