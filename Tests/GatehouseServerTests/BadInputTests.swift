import Foundation
import GatehouseCore
import XCTest
@testable import GatehouseServer

/// Raw-socket tests for every hostile or malformed request in ARCHITECTURE.md's "Bad input":
/// each gets the right 4xx, a decision record with a `request.*` reason, and the gateway
/// keeps serving everyone else. Plaintext listener, so the exact bytes reach the parser.
final class BadInputTests: XCTestCase {
    private struct Case {
        var name: String
        var request: String
        var status: Int
        var reason: String
    }

    private static let cases: [Case] = [
        Case(name: "content-length and transfer-encoding",
             request: "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
             status: 400, reason: "request.ambiguous_framing"),
        Case(name: "two different content-lengths",
             request: "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
             status: 400, reason: "request.ambiguous_framing"),
        Case(name: "repeated equal content-length",
             request: "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd",
             status: 400, reason: "request.ambiguous_framing"),
        Case(name: "non-numeric content-length",
             request: "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4x\r\n\r\nabcd",
             status: 400, reason: "request.ambiguous_framing"),
        Case(name: "transfer-encoding other than chunked",
             request: "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
             status: 400, reason: "request.ambiguous_framing"),
        Case(name: "transfer-encoding identity",
             request: "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
             status: 400, reason: "request.ambiguous_framing"),
        Case(name: "tab after the content-length value",
             request: "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\t\r\n\r\nhello",
             status: 400, reason: "request.ambiguous_framing"),
        Case(name: "a request hidden in the trailer section",
             request: "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nGET /hidden HTTP/1.1\r\nHost: a\r\n\r\n",
             status: 400, reason: "request.ambiguous_framing"),
        Case(name: "whitespace after a chunk size without an extension",
             request: "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n",
             status: 400, reason: "request.ambiguous_framing"),
        Case(name: "obs-fold",
             request: "GET /x HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n two\r\n\r\n",
             status: 400, reason: "request.malformed"),
        Case(name: "whitespace before colon",
             request: "GET /x HTTP/1.1\r\nHost: a\r\nX-Bad : 1\r\n\r\n",
             status: 400, reason: "request.malformed"),
        Case(name: "bare LF line ends",
             request: "GET /x HTTP/1.1\nHost: a\n\n",
             status: 400, reason: "request.malformed"),
        Case(name: "NUL in a header value",
             request: "GET /x HTTP/1.1\r\nHost: a\r\nX-Nul: a\u{0}b\r\n\r\n",
             status: 400, reason: "request.malformed"),
        Case(name: "control byte in a header value",
             request: "GET /x HTTP/1.1\r\nHost: a\r\nX-Ctl: a\u{1}b\r\n\r\n",
             status: 400, reason: "request.malformed"),
        Case(name: "encoded slash",
             request: "GET /a%2Fb HTTP/1.1\r\nHost: a\r\n\r\n",
             status: 400, reason: "request.invalid_path"),
        Case(name: "encoded backslash",
             request: "GET /a%5cb HTTP/1.1\r\nHost: a\r\n\r\n",
             status: 400, reason: "request.invalid_path"),
        Case(name: "encoded NUL",
             request: "GET /a%00b HTTP/1.1\r\nHost: a\r\n\r\n",
             status: 400, reason: "request.invalid_path"),
        Case(name: "raw backslash",
             request: "GET /a\\b HTTP/1.1\r\nHost: a\r\n\r\n",
             status: 400, reason: "request.invalid_path"),
        Case(name: "dot-segments above the root",
             request: "GET /a/../../etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n",
             status: 400, reason: "request.invalid_path"),
        Case(name: "encoded dot-segments above the root",
             request: "GET /%2e%2e/etc HTTP/1.1\r\nHost: a\r\n\r\n",
             status: 400, reason: "request.invalid_path"),
        Case(name: "absolute-form target",
             request: "GET http://evil.example/x HTTP/1.1\r\nHost: a\r\n\r\n",
             status: 400, reason: "request.invalid_path"),
        Case(name: "missing Host on HTTP/1.1",
             request: "GET /x HTTP/1.1\r\n\r\n",
             status: 400, reason: "request.malformed"),
        Case(name: "two Host headers",
             request: "GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
             status: 400, reason: "request.malformed"),
        Case(name: "unsupported expectation",
             request: "GET /x HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\n\r\n",
             status: 417, reason: "request.expectation_failed"),
        Case(name: "CONNECT",
             request: "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
             status: 405, reason: "request.unsupported_method"),
        Case(name: "URI too long",
             request: "GET /" + String(repeating: "a", count: 9000) + " HTTP/1.1\r\nHost: a\r\n\r\n",
             status: 414, reason: "request.uri_too_long"),
        Case(name: "header section too large",
             request: "GET /x HTTP/1.1\r\nHost: a\r\nX-Big: " + String(repeating: "b", count: 40_000) + "\r\n\r\n",
             status: 431, reason: "request.headers_too_large"),
        Case(name: "too many headers",
             request: "GET /x HTTP/1.1\r\nHost: a\r\n" + (0..<120).map { "X-H\($0): v\r\n" }.joined() + "\r\n",
             status: 431, reason: "request.headers_too_large"),
        Case(name: "declared body too large",
             request: "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 20000000\r\n\r\n",
             status: 413, reason: "request.too_large"),
        Case(name: "HTTP/2 preface on an HTTP/1.1 port",
             request: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
             status: 400, reason: "request.malformed"),
        Case(name: "garbage request line",
             request: "HELLO\r\n\r\n",
             status: 400, reason: "request.malformed"),
    ]

    func testEveryBadInputCaseIsRefusedRecordedAndTheGatewayKeepsServing() async throws {
        let fixture = try await GatewayFixture(tls: false)
        defer { Task { await fixture.shutdown() } }
        var failures: [String] = []
        for (index, testCase) in Self.cases.enumerated() {
            let client = try RawHTTPClient(port: fixture.port, receiveTimeout: 3)
            client.send(testCase.request)
            let responses = client.readResponses(1)
            let records = fixture.records(atLeast: index + 1)
            let record = records.count > index ? records[index] : [:]
            let status = responses.first?.status ?? -1
            let reason = record["reason"] as? String ?? "<no record>"
            if status != testCase.status || reason != testCase.reason || record["decision"] as? String != "deny"
                || record["status"] as? Int != testCase.status
            {
                failures.append("\(testCase.name): got \(status) \(reason), expected \(testCase.status) \(testCase.reason)")
            }
            if records.count <= index { break }
        }
        XCTAssertEqual(failures, [])
        XCTAssertEqual(fixture.upstream.requests.count, 0, "nothing malformed reaches the upstream")
        XCTAssertEqual(try fixture.curl("/after").status, 200)
    }

    func testAmbiguousFramingClosesTheConnection() async throws {
        let fixture = try await GatewayFixture(tls: false)
        defer { Task { await fixture.shutdown() } }
        let client = try RawHTTPClient(port: fixture.port)
        // A smuggling attempt: the second request must never be parsed.
        client.send("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
        let text = client.readAll()
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 400"), text)
        XCTAssertEqual(text.components(separatedBy: "HTTP/1.1 ").count - 1, 1, "exactly one response, then close")
        XCTAssertTrue(fixture.upstream.requests.isEmpty)
    }

    func testDeniedRequestWithSmallBodyKeepsTheConnectionAlive() async throws {
        let fixture = try await GatewayFixture(tls: false) { $0.routes[0].match.methods = ["GET"] }
        defer { Task { await fixture.shutdown() } }
        let client = try RawHTTPClient(port: fixture.port)
        client.send("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /y HTTP/1.1\r\nHost: a\r\n\r\n")
        let responses = client.readResponses(2)
        XCTAssertEqual(responses.map(\.status), [404, 200])
        XCTAssertEqual(fixture.upstream.waitForRequests(1).map(\.head.uri), ["/y"])
    }

    func testADeniedRequestWithALargeBodyIsAnsweredAndTheConnectionClosedGracefully() async throws {
        // Past the discard bound, reading a denied body to keep the connection is not worth it,
        // but the close must not be a reset that could destroy the answer (lingering close).
        let fixture = try await GatewayFixture(tls: false) { $0.routes[0].match.methods = ["GET"] }
        defer { Task { await fixture.shutdown() } }
        let client = try RawHTTPClient(port: fixture.port)
        client.send("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: \(2 << 20)\r\n\r\n" + String(repeating: "z", count: 4096))
        let responses = client.readResponses(1)
        XCTAssertEqual(responses.first?.status, 404)
        XCTAssertEqual(responses.first?.header("connection"), "close")
        // The client keeps sending its body after the answer; the gateway half-closed and drains it.
        XCTAssertGreaterThan(client.sendUntilBlocked([UInt8](repeating: 0x7A, count: 256 * 1024), timeout: 1), 0)
        XCTAssertTrue(client.receivesEndOfStream(), "an orderly FIN, not a reset")
    }

    func testPipelinedRequestsAreAnsweredInOrder() async throws {
        let fixture = try await GatewayFixture(tls: false)
        defer { Task { await fixture.shutdown() } }
        let client = try RawHTTPClient(port: fixture.port)
        client.send((1...5).map { "GET /p\($0) HTTP/1.1\r\nHost: a\r\n\r\n" }.joined())
        let responses = client.readResponses(5)
        XCTAssertEqual(responses.map(\.status), [200, 200, 200, 200, 200])
        XCTAssertEqual(responses.map(\.body), (1...5).map { #"{"path":"/p\#($0)","body_bytes":0}"# })
        XCTAssertEqual(Set(responses.compactMap { $0.header("x-request-id") }).count, 5)
    }

    func testPipelinedRequestsBeyondTheHeldBytesBoundAreAllAnsweredInOrder() async throws {
        let fixture = try await GatewayFixture(tls: false)
        defer { Task { await fixture.shutdown() } }
        let client = try RawHTTPClient(port: fixture.port, receiveTimeout: 10)
        // Each request over 1 KiB: three times the bytes the gateway holds before it stops reading.
        let padding = String(repeating: "p", count: 1024)
        let count = 3 * GatewayHandler.maxHeldInputBytes / 1024
        client.send((0..<count).map { "GET /q\($0) HTTP/1.1\r\nHost: a\r\nX-Pad: \(padding)\r\n\r\n" }.joined())
        let responses = client.readResponses(count)
        XCTAssertEqual(responses.count, count)
        XCTAssertEqual(responses.map(\.body), (0..<count).map { #"{"path":"/q\#($0)","body_bytes":0}"# })
    }

    func testAFullBufferOfPipelinedRequestsRefusedAtOnceIsAnsweredInOrder() async throws {
        // Each is refused without going upstream, so each exchange ends inside the parse of
        // the one read: the next one must follow in the same loop, not a nested one each.
        let fixture = try await GatewayFixture(tls: false) { $0.routes[0].match.methods = ["GET"] }
        defer { Task { await fixture.shutdown() } }
        let client = try RawHTTPClient(port: fixture.port, receiveTimeout: 20)
        let request = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
        let count = GatewayHandler.maxHeldInputBytes / request.utf8.count
        client.send(String(repeating: request, count: count) + "GET /last HTTP/1.1\r\nHost: a\r\n\r\n")
        let responses = client.readResponses(count + 1)
        XCTAssertEqual(responses.count, count + 1)
        XCTAssertEqual(Set(responses.dropLast().map(\.status)), [404])
        XCTAssertEqual(responses.last?.status, 200)
        XCTAssertEqual(fixture.upstream.waitForRequests(1).map(\.head.uri), ["/last"])
        let records = fixture.records(atLeast: count + 1)
        XCTAssertEqual(records.filter { $0["reason"] as? String == "route.not_found" }.count, count)
    }

    func testAMalformedRequestPipelinedBehindAGoodOneIsAnsweredAfterIt() async throws {
        let fixture = try await GatewayFixture(tls: false)
        defer { Task { await fixture.shutdown() } }
        let client = try RawHTTPClient(port: fixture.port)
        client.send("GET /slow-ish HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\nBad Header: 1\r\n\r\n")
        let responses = client.readResponses(2)
        XCTAssertEqual(responses.map(\.status), [200, 400])
        XCTAssertEqual(responses.last?.header("connection"), "close")
        let records = fixture.records(atLeast: 2)
        XCTAssertEqual(records.map { $0["reason"] as? String }, ["allowed", "request.malformed"])
    }

    func testSlowHeadIsCutOffWith408() async throws {
        let fixture = try await GatewayFixture(tls: false)  // header_read: 1s
        defer { Task { await fixture.shutdown() } }
        let client = try RawHTTPClient(port: fixture.port, receiveTimeout: 4)
        client.send("GET /x HTTP/1.1\r\nHost: a\r\n")
        let start = Date()
        let text = client.readAll()
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 408"), text)
        XCTAssertLessThan(Date().timeIntervalSince(start), 3.5)
        let record = try XCTUnwrap(fixture.records(atLeast: 1).first)
        XCTAssertEqual(record["reason"] as? String, "request.timeout")
        XCTAssertEqual(record["status"] as? Int, 408)
    }

    func testIdleKeepAliveConnectionIsClosed() async throws {
        let fixture = try await GatewayFixture(tls: false)  // idle: 3s
        defer { Task { await fixture.shutdown() } }
        let client = try RawHTTPClient(port: fixture.port, receiveTimeout: 6)
        client.send("GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertEqual(client.readResponses(1).first?.status, 200)
        let start = Date()
        XCTAssertTrue(client.isClosedByPeer())
        XCTAssertGreaterThan(Date().timeIntervalSince(start), 2)
    }

    func testConnectionLimitHoldsNewClientsUntilASlotFrees() async throws {
        let fixture = try await GatewayFixture(tls: false) { $0.listeners[0].maxConnections = 2 }
        defer { Task { await fixture.shutdown() } }
        var first: RawHTTPClient? = try RawHTTPClient(port: fixture.port)
        let second = try RawHTTPClient(port: fixture.port)
        first?.send("GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
        second.send("GET /b HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertEqual(first?.readResponses(1).first?.status, 200)
        XCTAssertEqual(second.readResponses(1).first?.status, 200)
        let third = try RawHTTPClient(port: fixture.port, receiveTimeout: 1)
        third.send("GET /c HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertTrue(third.readResponses(1).isEmpty, "held in the accept queue while two connections are open")
        first = nil  // closes a slot
        let thirdAgain = third
        let late = thirdAgain.readResponses(1)
        XCTAssertEqual(late.first?.status, 200)
    }
}
