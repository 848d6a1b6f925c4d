import XCTest

@testable import GatehouseCore

final class WebhookSignedTemplateTests: XCTestCase {
    func testTemplatesSplitAroundTheBody() throws {
        let template = try WebhookSignedTemplate(parsing: "v0:{timestamp}:{body}|{id}")
        XCTAssertEqual(template.parts, [.literal("v0:"), .timestamp, .literal(":"), .body, .literal("|"), .id])
        let (prefix, suffix) = template.surroundings(timestamp: "1700000000", id: "evt-1")
        XCTAssertEqual(String(decoding: prefix, as: UTF8.self), "v0:1700000000:")
        XCTAssertEqual(String(decoding: suffix, as: UTF8.self), "|evt-1")
        XCTAssertEqual(template.description, "v0:{timestamp}:{body}|{id}")
        XCTAssertEqual(try WebhookSignedTemplate(parsing: "body"), .body)
        XCTAssertEqual(try WebhookSignedTemplate(parsing: "{body}"), .body)
    }

    func testBodyExactlyOnceAndNoStrayBraces() {
        for (text, message) in [
            ("{timestamp}", "`{body}` is missing"), ("{body}{body}", "`{body}` appears 2 times"),
            ("{Body}", "unknown placeholder `{Body}`"), ("{body", "`{` without a closing `}`"), ("x}{body}", "`}` without an opening `{`"),
        ] {
            XCTAssertThrowsError(try WebhookSignedTemplate(parsing: text), text) { error in
                XCTAssertEqual((error as? WebhookSignedTemplate.ParseError)?.message, message, text)
            }
        }
    }

    func testTheFourWebhookRefusalsAre401() {
        for reason in [ReasonCode.webhookMissingSignature, .webhookMalformedSignature, .webhookBadSignature, .webhookStaleTimestamp] {
            XCTAssertEqual(reason.httpStatus, 401, reason.rawValue)
            XCTAssertTrue(reason.rawValue.hasPrefix("webhook."))
        }
    }
}
