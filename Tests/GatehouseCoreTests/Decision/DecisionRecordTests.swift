import Foundation
import XCTest
@testable import GatehouseCore

final class DecisionRecordTests: XCTestCase {
    func testRecordIsOneJSONObjectWithTheContractFields() throws {
        let record = DecisionRecord(
            timestampMillis: 1_795_000_000_123, requestID: "r1", listener: "public", route: "api", method: "GET",
            path: "/a\"b\n", clientIP: "192.0.2.1", peer: .init(spiffeID: "spiffe://prod.example/x", certificateSHA256: "ab"),
            decision: .deny, reason: .routeNotFound, status: 404,
            upstream: .init(name: "app", endpoint: "127.0.0.1:1", status: 0), durationMillis: 1.23456, policyVersion: "v1"
        )
        let line = record.jsonLine()
        XCTAssertFalse(line.contains("\n"))
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual(object["ts"] as? String, "2026-11-18T11:06:40.123Z")
        XCTAssertEqual(object["path"] as? String, "/a\"b\n")
        XCTAssertEqual(object["decision"] as? String, "deny")
        XCTAssertEqual(object["reason"] as? String, "route.not_found")
        XCTAssertEqual(object["status"] as? Int, 404)
        XCTAssertEqual(object["duration_ms"] as? Double, 1.235)
        XCTAssertEqual((object["peer"] as? [String: Any])?["spiffe_id"] as? String, "spiffe://prod.example/x")
        XCTAssertEqual((object["upstream"] as? [String: Any])?["name"] as? String, "app")
        XCTAssertEqual((object["policy"] as? [String: Any])?["version"] as? String, "v1")
        XCTAssertEqual((object["policy"] as? [String: Any])?["cohort"] as? String, "stable")
    }

    /// The log appends a batch of records to one buffer: each line is the record's own JSON,
    /// nested objects and arrays included, and nothing before it is disturbed.
    func testRecordsAppendedToOneBufferAreEachTheirOwnJSON() throws {
        let records = (0..<3).map { index in
            DecisionRecord(
                timestampMillis: 1_795_000_000_000 + Int64(index), requestID: "r\(index)", listener: "public", route: "api",
                method: "GET", path: "/\(index)", clientIP: "192.0.2.1",
                peer: .init(spiffeID: "spiffe://prod.example/x", certificateSHA256: "ab"),
                token: .init(issuer: "idp", subject: "s\(index)", id: nil),
                decision: .allow, reason: .allowed, status: 200,
                upstream: .init(name: "app", endpoint: "127.0.0.1:1", status: 200), durationMillis: 1, policyVersion: "v1",
                shadow: [.init(check: .token, decision: .deny, reason: .tokenExpired)])
        }
        var batch = Array("previous\n".utf8)
        for record in records {
            record.appendJSON(to: &batch)
            batch.append(UInt8(ascii: "\n"))
        }
        let lines = String(decoding: batch, as: UTF8.self).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 4)
        XCTAssertEqual(lines[0], "previous")
        for (line, record) in zip(lines.dropFirst(), records) {
            XCTAssertEqual(line, record.jsonLine())
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            XCTAssertEqual(object["request_id"] as? String, record.requestID)
            XCTAssertEqual(((object["shadow"] as? [[String: Any]])?.first)?["reason"] as? String, "token.expired")
            XCTAssertEqual((object["upstream"] as? [String: Any])?["status"] as? Int, 200)
        }
    }

    func testControlCharactersAreEscaped() throws {
        var writer = JSONObjectWriter()
        writer.field("k", "a\u{0}b\u{1F}c\u{7F}\u{2028}")
        let line = writer.finishString()
        XCTAssertEqual(line, #"{"k":"a\u0000b\u001fc\u007f\u2028"}"#)
        XCTAssertNotNil(try JSONSerialization.jsonObject(with: Data(line.utf8)))
    }

    /// The escape check (a table lookup per byte, then a copy of the whole value when nothing
    /// needs escaping): every byte that needs escaping is found at every offset of values of
    /// several lengths, and plain values are copied as they are.
    func testEveryEscapeIsFoundAtEveryOffset() throws {
        let escapes: [(String, String)] = [
            ("\"", #"\""#), ("\\", #"\\"#), ("\n", #"\n"#), ("\u{1}", #"\u0001"#), ("\u{7F}", #"\u007f"#), ("\u{2028}", #"\u2028"#),
        ]
        for length in 1...20 {
            for offset in 0..<length {
                for (raw, escaped) in escapes {
                    let value = String(repeating: "a", count: offset) + raw + String(repeating: "b", count: length - offset - 1)
                    var writer = JSONObjectWriter()
                    writer.field("k", value)
                    let expected = String(repeating: "a", count: offset) + escaped + String(repeating: "b", count: length - offset - 1)
                    XCTAssertEqual(writer.finishString(), #"{"k":""# + expected + #""}"#, "\(raw.debugDescription) at \(offset)")
                }
            }
            let plain = String(repeating: "é/z~", count: length)
            var writer = JSONObjectWriter()
            writer.field("k", plain)
            XCTAssertEqual(writer.finishString(), #"{"k":""# + plain + #""}"#)
        }
    }

    /// The escape check's bit words name exactly the bytes the escaping path handles.
    func testTheEscapeCheckNamesExactlyTheBytesThatNeedEscaping() {
        for byte in UInt8.min...UInt8.max {
            let expected = byte < 0x20 || byte == 0x22 || byte == 0x5C || byte == 0x7F || byte == 0xE2
            XCTAssertEqual(JSONObjectWriter.needsEscape(byte), expected, "byte \(byte)")
        }
    }

    func testRFC3339AgainstFoundation() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        for millis: Int64 in [0, 951_782_400_000, 1_709_164_799_999, 4_102_444_800_001, 1_234_567_890_123] {
            let expected = formatter.string(from: Date(timeIntervalSince1970: Double(millis) / 1000))
            XCTAssertEqual(RFC3339.format(millisecondsSinceEpoch: millis), expected)
        }
    }

    func testEveryReasonHasAStatusAndAnAreaDotDetailName() {
        for reason in ReasonCode.allCases {
            XCTAssertNotNil(reason.rawValue.range(of: #"^([a-z]+\.[a-z_]+|allowed)$"#, options: .regularExpression), reason.rawValue)
            XCTAssertTrue([0, 200, 400, 401, 403, 404, 405, 408, 409, 413, 414, 417, 429, 431, 502, 503, 504].contains(reason.httpStatus), reason.rawValue)
        }
    }

    func testRequestIdentifiers() {
        XCTAssertEqual(RequestIdentifiers.newRequestID().count, 32)
        XCTAssertNotEqual(RequestIdentifiers.newRequestID(), RequestIdentifiers.newRequestID())
        XCTAssertTrue(RequestIdentifiers.isValidTraceparent(RequestIdentifiers.newTraceparent()))
        XCTAssertFalse(RequestIdentifiers.isValidTraceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
        XCTAssertFalse(RequestIdentifiers.isValidTraceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"))
        XCTAssertFalse(RequestIdentifiers.isValidTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"))
    }

    func testCIDRContainment() {
        let v4 = CIDR(address: [10, 1, 0, 0], prefixLength: 16)
        XCTAssertTrue(v4.contains([10, 1, 200, 3]))
        XCTAssertFalse(v4.contains([10, 2, 0, 1]))
        XCTAssertFalse(v4.contains(Array(repeating: 0, count: 16)))
        let odd = CIDR(address: [192, 168, 1, 128], prefixLength: 25)
        XCTAssertTrue(odd.contains([192, 168, 1, 200]))
        XCTAssertFalse(odd.contains([192, 168, 1, 127]))
        let v6 = CIDR(address: [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 12), prefixLength: 32)
        XCTAssertTrue(v6.contains([0x20, 0x01, 0x0d, 0xb8, 1] + Array(repeating: 0, count: 11)))
        XCTAssertTrue(CIDR(address: [0, 0, 0, 0], prefixLength: 0).contains([8, 8, 8, 8]))
    }
}
