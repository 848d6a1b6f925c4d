import XCTest

@testable import GatehouseCore

/// The captured-headers file of `gatehouse webhook verify`.
final class WebhookHeaderCaptureTests: XCTestCase {
    private func parse(_ text: String) throws -> WebhookHeaderFields {
        try WebhookHeaderFields(capture: Array(text.utf8))
    }

    func testRequestLineIsSkippedAndABlankLineEndsTheHeaders() throws {
        let headers = try parse("POST /hooks/github HTTP/1.1\r\nHost: example\r\nX-Hub-Signature-256:  sha256=abc \r\n\r\nbody: not a header\r\n")
        XCTAssertEqual(headers.values("x-hub-signature-256"), ["sha256=abc"])
        XCTAssertEqual(headers.values("host"), ["example"])
        XCTAssertEqual(headers.values("body"), [])
    }

    func testPlainLinesAndRepeatedHeadersAreKept() throws {
        let headers = try parse("\nwebhook-id: msg_1\nwebhook-signature: v1,a\nwebhook-signature: v1,b\n")
        XCTAssertEqual(headers.values("webhook-signature"), ["v1,a", "v1,b"])
        XCTAssertEqual(headers.values("webhook-id"), ["msg_1"])
    }

    func testMalformedLinesAreRefusedWithTheirLineNumber() {
        XCTAssertThrowsError(try parse("A: 1\nB : 2\n")) { XCTAssertEqual("\($0)", "line 2: not `Name: value`") }
        XCTAssertThrowsError(try parse("A: 1\n folded\n")) { XCTAssertEqual("\($0)", "line 2: folded header lines are not accepted") }
        XCTAssertThrowsError(try parse(String(repeating: "A: 1\n", count: 201))) { XCTAssertEqual("\($0)", "line 201: more than 200 headers") }
        XCTAssertThrowsError(try WebhookHeaderFields(capture: Array(repeating: 0x41, count: 70_000))) {
            XCTAssertEqual("\($0)", "more than 65536 bytes")
        }
    }
}
