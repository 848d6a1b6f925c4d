@testable import GatehouseServer
import NIOCore
import XCTest

final class HTTP1ResponseParserTests: XCTestCase {
    typealias Parser = HTTP1ResponseParser
    typealias Failure = HTTP1ResponseParser.Failure

    // MARK: Helpers

    /// What a response parsed to, independent of how its bytes were split into reads.
    struct Outcome: Equatable {
        var status = 0
        var reason = ""
        var versionMinor = 1
        /// "Name: value", in order.
        var fields: [String] = []
        var framing = UpstreamResponseHead.Framing.none
        var keepAlive = false
        var connectionListed: [String] = []
        var body: [UInt8] = []
        /// The events in order, consecutive `.body` events merged: "head body end".
        var shape = ""

        /// The expected outcome of one final response.
        static func response(
            _ status: Int, _ reason: String, version: Int = 1, fields: [String], framing: UpstreamResponseHead.Framing,
            keepAlive: Bool, listed: [String] = [], body: String = "", ended: Bool = true
        ) -> Outcome {
            var shape = ["head"]
            if !body.isEmpty { shape.append("body") }
            if ended { shape.append("end") }
            return Outcome(
                status: status, reason: reason, versionMinor: version, fields: fields, framing: framing, keepAlive: keepAlive,
                connectionListed: listed, body: Array(body.utf8), shape: shape.joined(separator: " "))
        }

        init(
            status: Int, reason: String, versionMinor: Int, fields: [String], framing: UpstreamResponseHead.Framing,
            keepAlive: Bool, connectionListed: [String], body: [UInt8], shape: String
        ) {
            (self.status, self.reason, self.versionMinor, self.fields) = (status, reason, versionMinor, fields)
            (self.framing, self.keepAlive, self.connectionListed) = (framing, keepAlive, connectionListed)
            (self.body, self.shape) = (body, shape)
        }

        init(events: [Parser.Event]) {
            var shape: [String] = []
            for event in events {
                switch event {
                case .head(let head):
                    status = head.status
                    reason = head.withReason { String(decoding: $0, as: UTF8.self) }
                    versionMinor = head.versionMinor
                    fields = head.headers.map { "\($0.name): \($0.value)" }
                    framing = head.framing
                    keepAlive = head.keepAlive
                    connectionListed = head.connectionListed
                    shape.append("head")
                case .body(let slice):
                    body += slice.readableBytesView
                    // An empty body event is noise the data path would have to skip: flag it.
                    if slice.readableBytes == 0 {
                        shape.append("empty-body")
                    } else if shape.last != "body" {
                        shape.append("body")
                    }
                case .end:
                    shape.append("end")
                }
            }
            self.shape = shape.joined(separator: " ")
        }
    }

    /// The same bytes as one read, as two reads cut at every position, and one byte per read.
    private func readPlans(_ bytes: [UInt8]) -> [(name: String, reads: [[UInt8]])] {
        var plans: [(name: String, reads: [[UInt8]])] = [("one read", [bytes])]
        for cut in stride(from: 1, to: bytes.count, by: 1) {
            plans.append(("cut at \(cut)", [Array(bytes[..<cut]), Array(bytes[cut...])]))
        }
        plans.append(("one byte per read", bytes.map { [$0] }))
        return plans
    }

    private struct Run {
        var events: [Parser.Event] = []
        var failure: Failure?
    }

    /// Feeds `reads` to a parser expecting one response, then the end of input if asked.
    /// Also checks the parser's contract: `nil` leaves no byte unread, and a failure sticks.
    private func feed(
        _ reads: [[UInt8]], noBody: Bool = false, limits: Parser.Limits = .init(), endOfInput: Bool = false,
        file: StaticString = #filePath, line: UInt = #line
    ) -> Run {
        var parser = Parser(limits: limits)
        parser.expectResponse(noBody: noBody)
        var run = Run()
        do {
            for read in reads {
                var buffer = ByteBuffer(bytes: read)
                while let event = try parser.next(from: &buffer) { run.events.append(event) }
                XCTAssertEqual(buffer.readableBytes, 0, "nil while bytes are left unread", file: file, line: line)
            }
            if endOfInput, let event = try parser.endOfInput() { run.events.append(event) }
        } catch let failure as Failure {
            run.failure = failure
            // The connection can never be trusted again: every later call throws the same.
            var valid = ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            XCTAssertThrowsError(try parser.next(from: &valid), file: file, line: line) {
                XCTAssertEqual($0 as? Failure, failure, "failure is sticky", file: file, line: line)
            }
            var empty = ByteBuffer()
            XCTAssertThrowsError(try parser.next(from: &empty), file: file, line: line) {
                XCTAssertEqual($0 as? Failure, failure, "failure is sticky", file: file, line: line)
            }
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
        return run
    }

    /// Parses `bytes` split at every byte boundary (and one byte at a time) and checks each
    /// way gives `expected`. Reports only the first split that differs.
    private func assertEverySplit(
        _ bytes: [UInt8], noBody: Bool = false, limits: Parser.Limits = .init(), endOfInput: Bool = false,
        expect expected: Outcome, file: StaticString = #filePath, line: UInt = #line
    ) {
        for plan in readPlans(bytes) {
            let run = feed(plan.reads, noBody: noBody, limits: limits, endOfInput: endOfInput, file: file, line: line)
            if let failure = run.failure {
                return XCTFail("\(plan.name): failed with \(failure)", file: file, line: line)
            }
            let outcome = Outcome(events: run.events)
            if outcome != expected {
                return XCTFail("\(plan.name): got \(outcome), expected \(expected)", file: file, line: line)
            }
        }
    }

    private func assertEverySplit(
        _ raw: String, noBody: Bool = false, limits: Parser.Limits = .init(), endOfInput: Bool = false,
        expect expected: Outcome, file: StaticString = #filePath, line: UInt = #line
    ) {
        assertEverySplit(
            Array(raw.utf8), noBody: noBody, limits: limits, endOfInput: endOfInput, expect: expected, file: file, line: line)
    }

    /// Checks that `bytes`, however split into reads, fail with exactly `expected`.
    private func assertRejected(
        _ bytes: [UInt8], _ expected: Failure, noBody: Bool = false, limits: Parser.Limits = .init(),
        endOfInput: Bool = false, file: StaticString = #filePath, line: UInt = #line
    ) {
        for plan in readPlans(bytes) {
            let run = feed(plan.reads, noBody: noBody, limits: limits, endOfInput: endOfInput, file: file, line: line)
            if run.failure != expected {
                let got = run.failure.map { "\($0)" } ?? "success (\(Outcome(events: run.events).shape))"
                return XCTFail("\(plan.name): got \(got), expected \(expected)", file: file, line: line)
            }
        }
    }

    private func assertRejected(
        _ raw: String, _ expected: Failure, noBody: Bool = false, limits: Parser.Limits = .init(),
        endOfInput: Bool = false, file: StaticString = #filePath, line: UInt = #line
    ) {
        assertRejected(
            Array(raw.utf8), expected, noBody: noBody, limits: limits, endOfInput: endOfInput, file: file, line: line)
    }

    /// The head of `raw` parsed in one read (for tests about the head alone).
    private func head(_ raw: String, noBody: Bool = false, file: StaticString = #filePath, line: UInt = #line) throws
        -> UpstreamResponseHead
    {
        try self.head(Array(raw.utf8), noBody: noBody, file: file, line: line)
    }

    private func head(_ bytes: [UInt8], noBody: Bool = false, file: StaticString = #filePath, line: UInt = #line) throws
        -> UpstreamResponseHead
    {
        var parser = Parser()
        parser.expectResponse(noBody: noBody)
        var buffer = ByteBuffer(bytes: bytes)
        guard case .head(let head) = try parser.next(from: &buffer) else {
            XCTFail("no head", file: file, line: line)
            throw Failure.truncated
        }
        return head
    }

    private static let chunkedHead = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"

    // MARK: Framing, at every split

    func testContentLengthBody() {
        assertEverySplit(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world",
            expect: .response(
                200, "OK", fields: ["Content-Type: text/plain", "Content-Length: 11"], framing: .contentLength(11), keepAlive: true,
                body: "hello world"))
    }

    func testChunkedBodyWithExtensionsUppercaseHexAndTrailers() {
        let raw =
            Self.chunkedHead
            + "5;name=value\r\nhello\r\n"
            + "A;a=1;b=\"x y\"\r\n, world!!!\r\n"  // uppercase hex, several extensions, quoted value
            + "1A\r\nabcdefghijklmnopqrstuvwxyz\r\n"
            + "0c\r\n0123456789ab\r\n"  // leading zero, lowercase hex
            + "0\r\nX-Trailer: must-not-leak\r\nX-Other: nor-this\r\n\r\n"
        assertEverySplit(
            raw,
            expect: .response(
                200, "OK", fields: ["Transfer-Encoding: chunked"], framing: .chunked, keepAlive: true,
                body: "hello, world!!!abcdefghijklmnopqrstuvwxyz0123456789ab"))
    }

    func testChunkedBodyWithoutTrailersAndWithChunkSizeWhitespace() {
        assertEverySplit(
            Self.chunkedHead + "3 ;ext\r\nabc\r\n0\r\n\r\n",
            expect: .response(200, "OK", fields: ["Transfer-Encoding: chunked"], framing: .chunked, keepAlive: true, body: "abc"))
    }

    func testChunkedWithOnlyTheLastChunkHasNoBodyEvents() {
        assertEverySplit(
            Self.chunkedHead + "0\r\n\r\n",
            expect: .response(200, "OK", fields: ["Transfer-Encoding: chunked"], framing: .chunked, keepAlive: true))
    }

    func testTransferCodingNameIsCaseInsensitive() {
        assertEverySplit(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: CHUNKED\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            expect: .response(200, "OK", fields: ["transfer-encoding: CHUNKED"], framing: .chunked, keepAlive: true, body: "ok"))
    }

    func testCloseDelimitedBodyRunsUntilEndOfInput() {
        let raw = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of this, until the close"
        // Before the close: every byte is body, and the response has not ended.
        assertEverySplit(
            raw,
            expect: .response(
                200, "OK", fields: ["Content-Type: text/plain"], framing: .untilClose, keepAlive: false,
                body: "all of this, until the close", ended: false))
        // The close is the end.
        assertEverySplit(
            raw, endOfInput: true,
            expect: .response(
                200, "OK", fields: ["Content-Type: text/plain"], framing: .untilClose, keepAlive: false,
                body: "all of this, until the close"))
    }

    func testCloseDelimitedEmptyBody() {
        assertEverySplit(
            "HTTP/1.1 200 OK\r\n\r\n", endOfInput: true,
            expect: .response(200, "OK", fields: [], framing: .untilClose, keepAlive: false))
    }

    func testContentLengthZeroEndsRightAfterTheHead() {
        assertEverySplit(
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            expect: .response(200, "OK", fields: ["Content-Length: 0"], framing: .contentLength(0), keepAlive: true))
    }

    func testResponseToHEADHasNoBodyDespiteContentLength() {
        assertEverySplit(
            "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", noBody: true,
            expect: .response(200, "OK", fields: ["Content-Length: 1234"], framing: .none, keepAlive: true))
    }

    func testResponseToHEADWithTransferEncodingChunkedHasNoBody() {
        assertEverySplit(
            Self.chunkedHead, noBody: true,
            expect: .response(200, "OK", fields: ["Transfer-Encoding: chunked"], framing: .none, keepAlive: true))
    }

    func testNoContentHasNoBodyDespiteContentLength() {
        assertEverySplit(
            "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
            expect: .response(204, "No Content", fields: ["Content-Length: 5"], framing: .none, keepAlive: true))
    }

    func testNotModifiedHasNoBodyDespiteContentLength() {
        assertEverySplit(
            "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 5\r\n\r\n",
            expect: .response(304, "Not Modified", fields: ["ETag: \"v1\"", "Content-Length: 5"], framing: .none, keepAlive: true))
    }

    func testBodyBytesAfterAResponseWithoutBodyAreUnsolicited() {
        // A HEAD response, a 204 or a 304 that carries bytes anyway would desync the connection.
        assertRejected("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", .unsolicited, noBody: true)
        assertRejected("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello", .unsolicited)
        assertRejected("HTTP/1.1 304 Not Modified\r\n\r\nx", .unsolicited)
    }

    func testEqualDuplicateContentLengthsAreAccepted() {
        assertEverySplit(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length:  5 \r\n\r\nhello",
            expect: .response(
                200, "OK", fields: ["Content-Length: 5", "content-length: 5"], framing: .contentLength(5), keepAlive: true,
                body: "hello"))
    }

    func testEighteenDigitContentLengthIsAccepted() throws {
        let head = try self.head("HTTP/1.1 200 OK\r\nContent-Length: 000000000000000042\r\n\r\n")
        XCTAssertEqual(head.framing, .contentLength(42))
        let big = try self.head("HTTP/1.1 200 OK\r\nContent-Length: 999999999999999999\r\n\r\n")
        XCTAssertEqual(big.framing, .contentLength(999_999_999_999_999_999))
    }

    func testFifteenHexDigitChunkSizeIsAccepted() {
        assertEverySplit(
            Self.chunkedHead + "000000000000003\r\nabc\r\n0\r\n\r\n",
            expect: .response(200, "OK", fields: ["Transfer-Encoding: chunked"], framing: .chunked, keepAlive: true, body: "abc"))
    }

    // MARK: Interim responses

    func testContinueIsConsumed() {
        assertEverySplit(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
            expect: .response(200, "OK", fields: ["Content-Length: 2"], framing: .contentLength(2), keepAlive: true, body: "hi"))
    }

    func testEarlyHintsWithFieldsAreConsumed() {
        let raw =
            "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\nLink: </app.js>; rel=preload\r\n\r\n"
            + "HTTP/1.1 100 Continue\r\n\r\n"
            + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
        assertEverySplit(
            raw,
            expect: .response(200, "OK", fields: ["Content-Length: 2"], framing: .contentLength(2), keepAlive: true, body: "hi"))
    }

    func testInterimResponsesUpToTheLimitAreAccepted() {
        let limit = Parser.Limits().maxInformational
        let raw = String(repeating: "HTTP/1.1 100 Continue\r\n\r\n", count: limit) + "HTTP/1.1 204 No Content\r\n\r\n"
        assertEverySplit(raw, expect: .response(204, "No Content", fields: [], framing: .none, keepAlive: true))
    }

    func testMoreInterimResponsesThanTheLimitAreRefused() {
        let limit = Parser.Limits().maxInformational
        let raw = String(repeating: "HTTP/1.1 100 Continue\r\n\r\n", count: limit + 1) + "HTTP/1.1 204 No Content\r\n\r\n"
        assertRejected(raw, .tooManyInformational)
        // With a lower limit too.
        assertRejected(
            String(repeating: "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", count: 3), .tooManyInformational,
            limits: .init(maxInformational: 2))
    }

    func testInterimLimitCountsPerResponse() throws {
        var parser = Parser(limits: .init(maxInformational: 1))
        var buffer = ByteBuffer(
            string: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"
                + "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
        var ends = 0
        parser.expectResponse(noBody: false)
        while let event = try parser.next(from: &buffer) {
            if case .end = event {
                ends += 1
                if ends == 1 { parser.expectResponse(noBody: false) }
            }
        }
        XCTAssertEqual(ends, 2)
    }

    func testSwitchingProtocolsIsRefused() {
        assertRejected("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", .switchingProtocols)
        assertRejected("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\n\r\n", .switchingProtocols)
    }

    // MARK: Keep-alive

    func testHTTP11DefaultsToKeepAlive() throws {
        let head = try self.head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        XCTAssertTrue(head.keepAlive)
        XCTAssertEqual(head.versionMinor, 1)
        XCTAssertEqual(head.connectionListed, [])
    }

    func testConnectionCloseDisablesKeepAlive() throws {
        XCTAssertFalse(try self.head("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").keepAlive)
        XCTAssertFalse(try self.head("HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n").keepAlive, "tokens are case-insensitive")
        XCTAssertFalse(try self.head("HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n").keepAlive, "close wins")
        XCTAssertFalse(
            try self.head("HTTP/1.1 200 OK\r\nConnection: x-a\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").keepAlive,
            "in a second Connection field")
    }

    func testHTTP10IsNotKeepAliveUnlessAsked() throws {
        let plain = try self.head("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
        XCTAssertEqual(plain.versionMinor, 0)
        XCTAssertFalse(plain.keepAlive)
        XCTAssertTrue(try self.head("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n").keepAlive)
        XCTAssertTrue(try self.head("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n").keepAlive)
        XCTAssertFalse(try self.head("HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n").keepAlive)
    }

    func testCloseDelimitedBodyIsNeverKeepAlive() throws {
        XCTAssertFalse(try self.head("HTTP/1.1 200 OK\r\n\r\n").keepAlive)
        XCTAssertFalse(try self.head("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n").keepAlive)
    }

    func testConnectionListedHoldsLowercasedExtraTokens() throws {
        let head = try self.head("HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Foo\r\nContent-Length: 0\r\n\r\n")
        XCTAssertEqual(head.connectionListed, ["x-foo"])
        XCTAssertTrue(head.keepAlive)
        let several = try self.head("HTTP/1.1 200 OK\r\nConnection: X-A ,\tX-B,,close\r\nConnection: X-C\r\nContent-Length: 0\r\n\r\n")
        XCTAssertEqual(several.connectionListed, ["x-a", "x-b", "x-c"])
        XCTAssertFalse(several.keepAlive)
    }

    // MARK: Several exchanges on one connection

    func testResponsesInSequenceOnOneParser() {
        // The receiver starts each next exchange from inside its handling of `.end`.
        let exchanges: [(raw: String, noBody: Bool, expected: Outcome)] = [
            (
                Self.chunkedHead + "3\r\nabc\r\n0\r\n\r\n", false,
                .response(200, "OK", fields: ["Transfer-Encoding: chunked"], framing: .chunked, keepAlive: true, body: "abc")
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true,
                .response(200, "OK", fields: ["Content-Length: 10"], framing: .none, keepAlive: true)
            ),
            (
                "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", false,
                .response(201, "Created", fields: ["Content-Length: 2"], framing: .contentLength(2), keepAlive: true, body: "ok")
            ),
        ]
        let bytes = Array(exchanges.map { $0.raw }.joined().utf8)
        for plan in readPlans(bytes) {
            var parser = Parser()
            parser.expectResponse(noBody: exchanges[0].noBody)
            var perExchange: [[Parser.Event]] = [[]]
            do {
                for read in plan.reads {
                    var buffer = ByteBuffer(bytes: read)
                    while let event = try parser.next(from: &buffer) {
                        perExchange[perExchange.count - 1].append(event)
                        if case .end = event, perExchange.count < exchanges.count {
                            XCTAssertTrue(parser.isIdle)
                            parser.expectResponse(noBody: exchanges[perExchange.count].noBody)
                            perExchange.append([])
                        }
                    }
                }
            } catch {
                return XCTFail("\(plan.name): \(error)")
            }
            let outcomes = perExchange.map { Outcome(events: $0) }
            guard outcomes == exchanges.map({ $0.expected }) else {
                return XCTFail("\(plan.name): got \(outcomes)")
            }
            XCTAssertTrue(parser.isIdle)
        }
    }

    func testBytesAfterTheEndWithNoResponseExpectedAreUnsolicited() {
        assertRejected("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiX", .unsolicited)
        assertRejected(Self.chunkedHead + "2\r\nhi\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", .unsolicited)
        // The response itself was delivered before the stray bytes were noticed.
        let run = feed([Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi".utf8), Array("X".utf8)])
        XCTAssertEqual(run.failure, .unsolicited)
        XCTAssertEqual(Outcome(events: run.events).shape, "head body end")
    }

    func testBytesBeforeAnyExpectedResponseAreUnsolicited() {
        var parser = Parser()
        var empty = ByteBuffer()
        XCTAssertNil(try parser.next(from: &empty), "nothing arrived, nothing to say")
        var buffer = ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        XCTAssertThrowsError(try parser.next(from: &buffer)) { XCTAssertEqual($0 as? Failure, .unsolicited) }
        // And it sticks.
        XCTAssertThrowsError(try parser.next(from: &empty)) { XCTAssertEqual($0 as? Failure, .unsolicited) }
    }

    func testEndOfInputBetweenResponsesIsClean() throws {
        var parser = Parser()
        XCTAssertNil(try parser.endOfInput(), "an idle connection may close")
        parser.expectResponse(noBody: false)
        var buffer = ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx")
        while try parser.next(from: &buffer) != nil {}
        XCTAssertTrue(parser.isIdle)
        XCTAssertNil(try parser.endOfInput())
    }

    func testEndOfInputRightAfterABodylessHeadEndsTheResponse() throws {
        var parser = Parser()
        parser.expectResponse(noBody: false)
        var buffer = ByteBuffer(string: "HTTP/1.1 204 No Content\r\n\r\n")
        guard case .head = try parser.next(from: &buffer) else { return XCTFail("no head") }
        guard case .end = try parser.endOfInput() else { return XCTFail("no end") }
        XCTAssertTrue(parser.isIdle)
    }

    // MARK: Rejections: status line

    func testMalformedStatusLinesAreRejected() {
        assertRejected("HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", .malformedStatusLine)
        assertRejected("HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n", .malformedStatusLine)
        assertRejected("HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n", .malformedStatusLine)
        assertRejected("HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", .malformedStatusLine)
        assertRejected("HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n", .malformedStatusLine)
        assertRejected("HTTP/1.1 200OK\r\nContent-Length: 0\r\n\r\n", .malformedStatusLine)
        assertRejected("HTTP/1.1  200 OK\r\nContent-Length: 0\r\n\r\n", .malformedStatusLine)
        assertRejected("ICY 200 OK\r\nContent-Length: 0\r\n\r\n", .malformedStatusLine)
        assertRejected("http/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", .malformedStatusLine)
        assertRejected("\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", .malformedStatusLine)
        assertRejected("\r\n\r\n", .malformedStatusLine)
        assertRejected("HTTP/1.1 200 O\u{01}K\r\nContent-Length: 0\r\n\r\n", .malformedStatusLine)
        assertRejected("HTTP/1.1 200 O\rK\r\nContent-Length: 0\r\n\r\n", .malformedStatusLine)
    }

    func testReasonPhraseIsOptional() throws {
        XCTAssertEqual(try self.head("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").withReason { Array($0) }, Array("Not Found".utf8))
        XCTAssertEqual(try self.head("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n").withReason { $0.count }, 0)
        let bare = try self.head("HTTP/1.1 200\r\n\r\n")
        XCTAssertEqual(bare.status, 200)
        XCTAssertEqual(bare.withReason { $0.count }, 0)
    }

    // MARK: Rejections: fields

    func testBareLFLineEndingsAreRejected() {
        assertRejected("HTTP/1.1 200 OK\nContent-Length: 0\n\n", .malformedField)
        assertRejected("HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n", .malformedField)
        assertRejected("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n", .malformedField)
        assertRejected("HTTP/1.1 200 OK\r\nX-A: a\nX-B: b\r\n\r\n", .malformedField)
    }

    func testCRNotFollowedByLFInAValueIsRejected() {
        assertRejected("HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n", .malformedField)
        assertRejected("HTTP/1.1 200 OK\r\nX-A: a\r\r\n\r\n", .malformedField)
        assertRejected("HTTP/1.1 200 OK\r\nX-A: a\r\n\rX\r\n\r\n", .malformedField)
    }

    func testObsFoldIsRejected() {
        assertRejected("HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n", .malformedField)
        assertRejected("HTTP/1.1 200 OK\r\nX-A: a\r\n\tb\r\nContent-Length: 0\r\n\r\n", .malformedField)
    }

    func testSpaceBeforeTheColonIsRejected() {
        assertRejected("HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", .malformedField)
        assertRejected("HTTP/1.1 200 OK\r\nX-A\t: v\r\nContent-Length: 0\r\n\r\n", .malformedField)
    }

    func testEmptyFieldNameIsRejected() {
        assertRejected("HTTP/1.1 200 OK\r\n: v\r\nContent-Length: 0\r\n\r\n", .malformedField)
    }

    func testLineWithoutColonIsRejected() {
        assertRejected("HTTP/1.1 200 OK\r\nNoColonHere\r\nContent-Length: 0\r\n\r\n", .malformedField)
    }

    func testControlBytesInAValueAreRejected() {
        for control: UInt8 in [0x00, 0x01, 0x1F, 0x7F] {
            let raw = Array("HTTP/1.1 200 OK\r\nX-A: a".utf8) + [control] + Array("b\r\nContent-Length: 0\r\n\r\n".utf8)
            assertRejected(raw, .malformedField)
        }
    }

    func testNonTokenCharactersInANameAreRejected() {
        for name in ["X(A)", "X\"A", "X@A", "X/A", "X[A]", "X,A", "X;A", "X=A", "X{A}", "Ä"] {
            assertRejected("HTTP/1.1 200 OK\r\n\(name): v\r\nContent-Length: 0\r\n\r\n", .malformedField)
        }
        // The other tchars are fine.
        XCTAssertEqual(try self.head("HTTP/1.1 200 OK\r\nX!#$%&'*+-.^_`|~9: v\r\n\r\n").headers.first?.name, "X!#$%&'*+-.^_`|~9")
    }

    // MARK: Rejections: sizes

    /// A head of exactly `size` bytes (padding one field), without a body.
    private func head(ofSize size: Int) -> String {
        let fixed = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Pad: \r\n\r\n"
        return "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Pad: " + String(repeating: "p", count: size - fixed.utf8.count)
            + "\r\n\r\n"
    }

    func testHeadOfExactlyMaxHeadBytesIsAccepted() {
        let raw = head(ofSize: 100)
        XCTAssertEqual(raw.utf8.count, 100)
        assertEverySplit(
            raw, limits: .init(maxHeadBytes: 100),
            expect: .response(
                200, "OK", fields: ["Content-Length: 0", "X-Pad: " + String(repeating: "p", count: 53)], framing: .contentLength(0),
                keepAlive: true))
    }

    func testHeadWhoseEndComesTooLateIsTooLarge() {
        assertRejected(head(ofSize: 101), .headTooLarge, limits: .init(maxHeadBytes: 100))
        assertRejected(head(ofSize: 300), .headTooLarge, limits: .init(maxHeadBytes: 100))
    }

    func testHeadWhoseEndNeverComesIsTooLarge() {
        let raw = "HTTP/1.1 200 OK\r\nX-Pad: " + String(repeating: "p", count: 200)
        assertRejected(raw, .headTooLarge, limits: .init(maxHeadBytes: 100))
        // Within the limit it just waits for more.
        let run = feed([Array(raw.utf8.prefix(100))], limits: .init(maxHeadBytes: 100))
        XCTAssertNil(run.failure)
        XCTAssertTrue(run.events.isEmpty)
    }

    func testDefaultHeadLimitIsEnforced() {
        let limit = Parser.Limits().maxHeadBytes
        let raw = "HTTP/1.1 200 OK\r\nX-Pad: " + String(repeating: "p", count: limit) + "\r\n\r\n"
        // Two reads are enough here; every split of 64 KiB would be slow.
        XCTAssertEqual(feed([Array(raw.utf8)]).failure, .headTooLarge)
        XCTAssertEqual(feed([Array(raw.utf8.prefix(1000)), Array(raw.utf8.dropFirst(1000))]).failure, .headTooLarge)
    }

    func testFieldsUpToMaxFieldsAreAccepted() {
        assertEverySplit(
            "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nContent-Length: 0\r\n\r\n", limits: .init(maxFields: 3),
            expect: .response(200, "OK", fields: ["A: 1", "B: 2", "Content-Length: 0"], framing: .contentLength(0), keepAlive: true))
    }

    func testMoreThanMaxFieldsIsRejected() {
        assertRejected("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nContent-Length: 0\r\n\r\n", .tooManyFields, limits: .init(maxFields: 3))
    }

    // MARK: Rejections: framing

    func testInvalidContentLengthsAreRejected() {
        for value in ["abc", "-5", "+5", "5, 5", "5,5", "5 5", "0x5", "1234567890123456789", "0000000000000000005", "", "5.0"] {
            assertRejected("HTTP/1.1 200 OK\r\nContent-Length: \(value)\r\n\r\n", .invalidContentLength)
        }
    }

    func testDifferingContentLengthsAreRejected() {
        assertRejected("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", .invalidContentLength)
        assertRejected("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 05x\r\n\r\nhello", .invalidContentLength)
    }

    func testContentLengthWithChunkedIsConflicting() {
        assertRejected("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", .conflictingFraming)
        assertRejected("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", .conflictingFraming)
    }

    func testUnsupportedTransferEncodingsAreRejected() {
        let tail = "\r\n\r\n0\r\n\r\n"
        assertRejected("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked" + tail, .unsupportedTransferEncoding)
        assertRejected("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip" + tail, .unsupportedTransferEncoding)
        assertRejected("HTTP/1.1 200 OK\r\nTransfer-Encoding: identity" + tail, .unsupportedTransferEncoding)
        assertRejected("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked" + tail, .unsupportedTransferEncoding)
        assertRejected("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked" + tail, .unsupportedTransferEncoding)
        assertRejected("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked" + tail, .unsupportedTransferEncoding)
    }

    // MARK: Rejections: chunked body

    func testMalformedChunkSizesAreRejected() {
        for line in ["5g", "zz", "-5", "0x5", "", ";ext", " 5", "0000000000000005", "FFFFFFFFFFFFFFFF", "5;a\u{01}b", "5;a\u{7F}"] {
            assertRejected(Self.chunkedHead + line + "\r\nhello\r\n0\r\n\r\n", .malformedChunk)
        }
    }

    func testWhitespaceAfterTheChunkSizeMustLeadToAnExtension() {
        // chunk-size [ BWS ";" ... ]: after the size, whitespace may only precede a `;`.
        // "5 6" must not be read as size 5 (another parser may see 0x56, or refuse it).
        for line in ["5 6", "5\t6", "5 g", "5 =x", "5 \t 6;x", "5 ", "5\t", "5 \t "] {
            assertRejected(Self.chunkedHead + line + "\r\nhello\r\n0\r\n\r\n", .malformedChunk)
        }
        assertEverySplit(
            Self.chunkedHead + "5 \t ;a=b\r\nhello\r\n0\r\n\r\n",
            expect: .response(200, "OK", fields: ["Transfer-Encoding: chunked"], framing: .chunked, keepAlive: true, body: "hello"))
    }

    func testMissingCRLFAfterChunkDataIsRejected() {
        assertRejected(Self.chunkedHead + "5\r\nhelloX\r\n0\r\n\r\n", .malformedChunk)
        assertRejected(Self.chunkedHead + "5\r\nhello\rX0\r\n\r\n", .malformedChunk)
        assertRejected(Self.chunkedHead + "5\r\nhello\n0\r\n\r\n", .malformedChunk)
        assertRejected(Self.chunkedHead + "5\r\nhello0\r\n\r\n", .malformedChunk)
    }

    func testBareLFOrBareCRInTheChunkSizeLineIsRejected() {
        assertRejected(Self.chunkedHead + "5\nhello\r\n0\r\n\r\n", .malformedChunk)
        assertRejected(Self.chunkedHead + "5;ext\nhello\r\n0\r\n\r\n", .malformedChunk)
        assertRejected(Self.chunkedHead + "5\rhello\r\n0\r\n\r\n", .malformedChunk)
        assertRejected(Self.chunkedHead + "5\r\nhello\r\n0\n\r\n", .malformedChunk)
    }

    func testChunkLineLongerThanTheLimitIsRejected() {
        let limits = Parser.Limits(maxChunkLineBytes: 32)
        assertRejected(Self.chunkedHead + "5;" + String(repeating: "x", count: 40) + "\r\nhello\r\n0\r\n\r\n", .malformedChunk, limits: limits)
        // The limit holds even if the line never ends.
        assertRejected(Self.chunkedHead + "5;" + String(repeating: "x", count: 40), .malformedChunk, limits: limits)
        // A shorter extension is fine under the same limit.
        assertEverySplit(
            Self.chunkedHead + "5;" + String(repeating: "x", count: 20) + "\r\nhello\r\n0\r\n\r\n", limits: limits,
            expect: .response(200, "OK", fields: ["Transfer-Encoding: chunked"], framing: .chunked, keepAlive: true, body: "hello"))
    }

    func testATrailerLineThatIsNotAFieldLineIsRejected() {
        for trailer in ["HTTP/1.1 200 OK", "NoColon", " X: leading space", "X : space before colon", ": empty name", "X: a\u{01}b"] {
            assertRejected(Self.chunkedHead + "5\r\nhello\r\n0\r\n" + trailer + "\r\n\r\n", .malformedChunk)
        }
    }

    func testTrailersLargerThanTheLimitAreRejected() {
        let limits = Parser.Limits(maxTrailerBytes: 32)
        let big = "X-Big: " + String(repeating: "t", count: 40) + "\r\n"
        assertRejected(Self.chunkedHead + "0\r\n" + big + "\r\n", .trailersTooLarge, limits: limits)
        // Many small trailer lines add up.
        assertRejected(Self.chunkedHead + "0\r\n" + String(repeating: "A: b\r\n", count: 10) + "\r\n", .trailersTooLarge, limits: limits)
        // And the limit holds if the blank line never comes.
        assertRejected(Self.chunkedHead + "0\r\n" + big, .trailersTooLarge, limits: limits)
        assertEverySplit(
            Self.chunkedHead + "0\r\nX-Small: t\r\n\r\n", limits: limits,
            expect: .response(200, "OK", fields: ["Transfer-Encoding: chunked"], framing: .chunked, keepAlive: true))
    }

    func testMalformedTrailerLinesAreRejected() {
        assertRejected(Self.chunkedHead + "0\r\nX-T: a\nb\r\n\r\n", .malformedChunk)
        assertRejected(Self.chunkedHead + "0\r\nX-T: a\rb\r\n\r\n", .malformedChunk)
        assertRejected(Self.chunkedHead + "0\r\nX-T: a\u{01}\r\n\r\n", .malformedChunk)
    }

    // MARK: Rejections: truncation

    func testEndOfInputInTheMiddleOfAResponseIsTruncated() {
        let cuts = [
            "",  // nothing at all
            "HTTP/1.1 200 OK\r\nContent-Len",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r",
            "HTTP/1.1 100 Continue\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
            Self.chunkedHead,
            Self.chunkedHead + "5",
            Self.chunkedHead + "5;ext\r",
            Self.chunkedHead + "5\r\nhel",
            Self.chunkedHead + "5\r\nhello",
            Self.chunkedHead + "5\r\nhello\r",
            Self.chunkedHead + "5\r\nhello\r\n",
            Self.chunkedHead + "0\r\n",
            Self.chunkedHead + "0\r\nX-T: v\r\n",
            Self.chunkedHead + "0\r\n\r",
        ]
        for raw in cuts {
            if raw.isEmpty {
                XCTAssertEqual(feed([], endOfInput: true).failure, .truncated, "closed before any byte")
            } else {
                assertRejected(raw, .truncated, endOfInput: true)
            }
        }
    }

    // MARK: Body slices

    private func baseAddress(_ buffer: ByteBuffer) -> UInt {
        buffer.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
    }

    func testContentLengthBodyInOneReadIsASliceOfTheRead() throws {
        let headText = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n"
        var buffer = ByteBuffer(string: headText + "hello world")
        let base = baseAddress(buffer)
        var parser = Parser()
        parser.expectResponse(noBody: false)
        guard case .head(let head) = try parser.next(from: &buffer) else { return XCTFail("no head") }
        XCTAssertEqual(baseAddress(head.bytes), base, "the head is a slice of the read")
        guard case .body(let body) = try parser.next(from: &buffer) else { return XCTFail("no body") }
        XCTAssertEqual(String(buffer: body), "hello world")
        XCTAssertEqual(baseAddress(body), base + UInt(headText.utf8.count), "the body is a slice of the read, not a copy")
        guard case .end = try parser.next(from: &buffer) else { return XCTFail("no end") }
        XCTAssertNil(try parser.next(from: &buffer))
    }

    func testChunkDataInOneReadIsASliceOfTheRead() throws {
        let before = Self.chunkedHead + "5\r\n"
        var buffer = ByteBuffer(string: before + "hello\r\n0\r\n\r\n")
        let base = baseAddress(buffer)
        var parser = Parser()
        parser.expectResponse(noBody: false)
        guard case .head = try parser.next(from: &buffer) else { return XCTFail("no head") }
        guard case .body(let body) = try parser.next(from: &buffer) else { return XCTFail("no body") }
        XCTAssertEqual(String(buffer: body), "hello")
        XCTAssertEqual(baseAddress(body), base + UInt(before.utf8.count))
        guard case .end = try parser.next(from: &buffer) else { return XCTFail("no end") }
    }

    func testBodyLargerThanOneReadArrivesInSeveralEvents() throws {
        let body = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let bytes = Array("HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n".utf8) + body
        var parser = Parser()
        parser.expectResponse(noBody: false)
        var bodyEvents: [ByteBuffer] = []
        var ends = 0
        var offset = 0
        while offset < bytes.count {
            var read = ByteBuffer(bytes: bytes[offset..<min(offset + 4096, bytes.count)])
            offset += 4096
            while let event = try parser.next(from: &read) {
                switch event {
                case .head(let head): XCTAssertEqual(head.framing, .contentLength(10_000))
                case .body(let slice): bodyEvents.append(slice)
                case .end: ends += 1
                }
            }
        }
        XCTAssertEqual(bodyEvents.count, 3, "one event per read carrying body bytes")
        XCTAssertTrue(bodyEvents.allSatisfy { $0.readableBytes <= 4096 })
        XCTAssertEqual(bodyEvents.flatMap { Array($0.readableBytesView) }, body)
        XCTAssertEqual(ends, 1)
    }

    // MARK: Fields as they arrived

    func testForEachFieldKeepsOrderCaseAndTrimsOWS() throws {
        let raw =
            Array("HTTP/1.1 200 OK\r\n".utf8)
            + Array("X-A:   spaced value  \r\n".utf8)
            + Array("x-lower:\tinner  \t space\t\r\n".utf8)
            + Array("X-Empty:\r\n".utf8)
            + Array("X-Blank: \t \r\n".utf8)
            + Array("X-Obs: ".utf8) + [0x80, 0xE9, 0xFF] + Array("\r\n".utf8)
            + Array("X-A: second\r\n".utf8)
            + Array("Content-Length: 0\r\n\r\n".utf8)
        let head = try self.head(raw)
        var seen: [(name: [UInt8], value: [UInt8])] = []
        head.forEachField { name, value in seen.append((Array(name), Array(value))) }
        let expected: [(name: [UInt8], value: [UInt8])] = [
            (Array("X-A".utf8), Array("spaced value".utf8)),
            (Array("x-lower".utf8), Array("inner  \t space".utf8)),
            (Array("X-Empty".utf8), []),
            (Array("X-Blank".utf8), []),
            (Array("X-Obs".utf8), [0x80, 0xE9, 0xFF]),
            (Array("X-A".utf8), Array("second".utf8)),
            (Array("Content-Length".utf8), Array("0".utf8)),
        ]
        XCTAssertEqual(seen.map(\.name), expected.map(\.name))
        XCTAssertEqual(seen.map(\.value), expected.map(\.value))
        XCTAssertEqual(head.values("x-a"), ["spaced value", "second"])
    }

    func testObsTextInAValueIsAcceptedAtEverySplit() {
        let raw = Array("HTTP/1.1 200 OK\r\nX-Obs: caf".utf8) + [0xE9, 0x80, 0xFF] + Array("\r\nContent-Length: 0\r\n\r\n".utf8)
        assertEverySplit(
            raw,
            expect: .response(
                200, "OK", fields: ["X-Obs: " + String(decoding: Array("caf".utf8) + [0xE9, 0x80, 0xFF], as: UTF8.self), "Content-Length: 0"],
                framing: .contentLength(0), keepAlive: true))
    }
}

final class HTTP1ResponseParserFailureStickinessTests: XCTestCase {
    func testExpectingAnotherResponseDoesNotClearAFailure() throws {
        var parser = HTTP1ResponseParser()
        parser.expectResponse(noBody: false)
        var bad = ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n")
        XCTAssertThrowsError(try parser.next(from: &bad)) { XCTAssertEqual($0 as? HTTP1ResponseParser.Failure, .invalidContentLength) }
        parser.expectResponse(noBody: false)
        var good = ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        XCTAssertThrowsError(try parser.next(from: &good)) { XCTAssertEqual($0 as? HTTP1ResponseParser.Failure, .invalidContentLength) }
        XCTAssertFalse(parser.isIdle)
    }
}

final class HTTP1ResponseParserConnectionOptionTests: XCTestCase {
    private func head(listing count: Int) throws -> UpstreamResponseHead? {
        var parser = HTTP1ResponseParser()
        parser.expectResponse(noBody: false)
        let names = (0..<count).map { "X-Hop-\($0)" }.joined(separator: ", ")
        var buffer = ByteBuffer(string: "HTTP/1.1 200 OK\r\nConnection: \(names)\r\nContent-Length: 0\r\n\r\n")
        guard case .head(let head) = try parser.next(from: &buffer) else { return nil }
        return head
    }

    func testConnectionOptionsUpToTheBoundAreAllListed() throws {
        let listed = try XCTUnwrap(head(listing: 16)).connectionListed
        XCTAssertEqual(listed.count, 16)
        XCTAssertEqual(listed.last, "x-hop-15")
    }

    /// Past the bound the response is refused: truncating the list would let a field the
    /// upstream marked hop-by-hop through to the client.
    func testOneConnectionOptionPastTheBoundIsRefused() {
        XCTAssertThrowsError(try head(listing: 17)) { XCTAssertEqual($0 as? HTTP1ResponseParser.Failure, .tooManyFields) }
    }
}
