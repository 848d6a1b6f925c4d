@testable import GatehouseServer
import GatehouseCore
import NIOCore
import NIOHTTP1
import XCTest

final class HTTP1RequestParserTests: XCTestCase {
    /// The bit tables behind field-name and method checks are exactly RFC 9110's tchar.
    func testTokenCharactersAreExactlyTheRFCsTchar() {
        let tchar = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
        for byte in UInt8.min...UInt8.max {
            XCTAssertEqual(HTTPToken.isTokenCharacter(byte), tchar.contains(byte), "byte \(byte)")
        }
    }

    /// The word-at-a-time checks behind long field values (parser and validator): every byte
    /// value in every lane.
    func testAllVisibleIsExactlyNoControlSpaceOrDEL() {
        for byte in UInt8.min...UInt8.max {
            let visible = byte > 0x20 && byte != 0x7F
            for lane in 0..<8 {
                var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: 8)
                bytes[lane] = byte
                let word = bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                XCTAssertEqual(HTTP1Syntax.allVisible(word), visible, "byte \(byte) in lane \(lane)")
                // The request validator's bound: field content (space allowed, no control, no DEL).
                XCTAssertEqual(HTTP1Syntax.hasByte(below: 0x20, orDELIn: word), byte < 0x20 || byte == 0x7F, "byte \(byte) in lane \(lane)")
            }
        }
        // Neighbours that borrow in the subtraction do not hide or invent a hit.
        for (low, high) in [(UInt8(0x21), UInt8(0x20)), (0x00, 0x21), (0xFF, 0x7F), (0x80, 0x00), (0x7E, 0x80)] {
            let word = [low, high, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41].withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
            XCTAssertEqual(HTTP1Syntax.allVisible(word), [low, high].allSatisfy { $0 > 0x20 && $0 != 0x7F }, "\(low), \(high)")
        }
    }

    /// A long value (read a word at a time) keeps every byte it should and refuses a control
    /// byte wherever it sits; trailing whitespace is trimmed wherever the words end.
    func testLongFieldValuesAreCheckedAtEveryPosition() throws {
        let token = String(repeating: "abcdefgh", count: 5) + "xyz"  // 43 bytes
        for length in [7, 8, 9, 16, 17, 43] {
            let value = String(token.prefix(length))
            XCTAssertEqual(try head("GET / HTTP/1.1\r\nAuthorization: Bearer \(value)\r\n\r\n").headers["authorization"], ["Bearer \(value)"])
            for trailing in [" ", "\t", "  \t "] {
                XCTAssertEqual(try head("GET / HTTP/1.1\r\nX-A: \(value)\(trailing)\r\n\r\n").headers["x-a"], [value], "trimmed")
            }
        }
        /// The token with `byte` at `position`, as the value of `X-A`, parsed.
        func parse(_ byte: UInt8, at position: Int) throws -> (value: [UInt8], event: Parser.Event?) {
            var value = Array(token.utf8)
            value[position] = byte
            var parser = Parser(limits: Self.roomy)
            var buffer = ByteBuffer(bytes: Array("GET / HTTP/1.1\r\nX-A: ".utf8) + value + Array("\r\n\r\n".utf8))
            return (value, try parser.next(from: &buffer))
        }
        for position in 0..<43 {
            for bad: UInt8 in [0x00, 0x01, 0x0A, 0x0D, 0x1F, 0x7F] {
                XCTAssertThrowsError(try parse(bad, at: position), "byte \(bad) at \(position)")
            }
            // Spaces, tabs and obs-text inside are kept.
            for fine: UInt8 in [0x20, 0x09, 0x80, 0xFF] where position > 0 && position < 42 {
                let (value, event) = try parse(fine, at: position)
                guard case .head(let parsed) = event else { return XCTFail("no head") }
                XCTAssertEqual(parsed.headers["x-a"], [String(decoding: value, as: UTF8.self)])
            }
        }
    }

    typealias Parser = HTTP1RequestParser
    typealias Failure = HTTP1RequestParser.Failure

    /// Roomy limits for the tests that are not about sizes.
    private static let roomy = Parser.Limits(maxRequestLineBytes: 1024, maxHeadBytes: 4096, maxFields: 32)
    /// Small limits for the size tests, so that every split of an oversized head stays cheap.
    private static let small = Parser.Limits(maxRequestLineBytes: 64, maxHeadBytes: 256, maxFields: 8)

    /// The decision reasons (`ReasonCode.rawValue`) the failures map to.
    private enum Reason {
        static let malformed = "request.malformed"
        static let uriTooLong = "request.uri_too_long"
        static let headersTooLarge = "request.headers_too_large"
        static let ambiguousFraming = "request.ambiguous_framing"
    }

    // MARK: Helpers

    /// What one request parsed to, independent of how its bytes were split into reads.
    struct Request: Equatable {
        var method: HTTPMethod
        var uri: String
        var version: HTTPVersion
        /// "Name: value", in order.
        var fields: [String]
        var keepAlive: Bool
        var body: [UInt8] = []
        /// The events in order, consecutive `.body` events merged: "head body end".
        var shape: String

        var ended: Bool { shape.hasSuffix("end") }

        /// The expected outcome of one request.
        static func request(
            _ method: HTTPMethod, _ uri: String, version: HTTPVersion = .http1_1, fields: [String], keepAlive: Bool = true,
            body: String = "", ended: Bool = true
        ) -> Request {
            var shape = ["head"]
            if !body.isEmpty { shape.append("body") }
            if ended { shape.append("end") }
            return Request(
                method: method, uri: uri, version: version, fields: fields, keepAlive: keepAlive, body: Array(body.utf8),
                shape: shape.joined(separator: " "))
        }

        /// Stands for events that came before any head, so that they cannot match an expectation.
        private static let headless = Request(
            method: .RAW(value: "<no head>"), uri: "", version: .http1_1, fields: [], keepAlive: false, shape: "")

        /// The requests a sequence of events describes, one per `.head`.
        static func requests(from events: [Parser.Event]) -> [Request] {
            var requests: [Request] = []
            var shapes: [[String]] = []
            for event in events {
                switch event {
                case .head(let head):
                    requests.append(
                        Request(
                            method: head.method, uri: head.uri, version: head.version,
                            fields: head.headers.map { "\($0.name): \($0.value)" }, keepAlive: head.isKeepAlive, shape: ""))
                    shapes.append(["head"])
                case .body(let slice):
                    if requests.isEmpty {
                        requests.append(headless)
                        shapes.append([])
                    }
                    requests[requests.count - 1].body += slice.readableBytesView
                    // An empty body event is noise the data path would have to skip: flag it.
                    if slice.readableBytes == 0 {
                        shapes[shapes.count - 1].append("empty-body")
                    } else if shapes[shapes.count - 1].last != "body" {
                        shapes[shapes.count - 1].append("body")
                    }
                case .end:
                    if requests.isEmpty {
                        requests.append(headless)
                        shapes.append([])
                    }
                    shapes[shapes.count - 1].append("end")
                }
            }
            for index in requests.indices { requests[index].shape = shapes[index].joined(separator: " ") }
            return requests
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
        /// How many input bytes had been consumed when each `.end` was handed out.
        var consumedAtEnd: [Int] = []
    }

    /// Feeds `reads` to one parser the way the gateway does: each read is appended to the
    /// bytes the parser left, and events are taken until it needs more.
    /// Also checks the parser's contract: `nil` leaves nothing usable unread (only a lone CR
    /// that may begin an empty line), and a failure sticks.
    private func feed(
        _ reads: [[UInt8]], limits: Parser.Limits = roomy, file: StaticString = #filePath, line: UInt = #line
    ) -> Run {
        var parser = Parser(limits: limits)
        var buffer = ByteBuffer()
        var fed = 0
        var run = Run()
        do throws(Failure) {
            for read in reads {
                buffer.writeBytes(read)
                fed += read.count
                while let event = try parser.next(from: &buffer) {
                    run.events.append(event)
                    if case .end = event { run.consumedAtEnd.append(fed - buffer.readableBytes) }
                }
                let left = Array(buffer.readableBytesView)
                XCTAssert(left.isEmpty || left == [.cr], "nil while \(left) is left unread", file: file, line: line)
            }
            XCTAssertFalse(parser.hasFailed, file: file, line: line)
        } catch {
            run.failure = error
            assertStaysFailed(&parser, with: error, file: file, line: line)
        }
        return run
    }

    /// A failed parser reports it, and refuses even a valid request, or no bytes at all, the same way.
    private func assertStaysFailed(
        _ parser: inout Parser, with failure: Failure, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertTrue(parser.hasFailed, "hasFailed after \(failure)", file: file, line: line)
        XCTAssertFalse(parser.isBetweenRequests, file: file, line: line)
        var valid = ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertThrowsError(try parser.next(from: &valid), file: file, line: line) {
            XCTAssertEqual($0 as? Failure, failure, "failure is sticky", file: file, line: line)
        }
        var empty = ByteBuffer()
        XCTAssertThrowsError(try parser.next(from: &empty), file: file, line: line) {
            XCTAssertEqual($0 as? Failure, failure, "failure is sticky", file: file, line: line)
        }
    }

    /// Parses `bytes` split at every byte boundary (and one byte at a time) and checks each
    /// way gives `expected`, with each `.end` handed out after exactly `ends` bytes were
    /// consumed (by default: one request, ending at the last byte). Reports the first split that differs.
    private func assertEverySplit(
        _ bytes: [UInt8], limits: Parser.Limits = roomy, expect expected: [Request], ends: [Int]? = nil,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        let ends = ends ?? (expected.count == 1 && expected[0].ended ? [bytes.count] : nil)
        for plan in readPlans(bytes) {
            let run = feed(plan.reads, limits: limits, file: file, line: line)
            if let failure = run.failure {
                return XCTFail("\(plan.name): failed with \(failure)", file: file, line: line)
            }
            let requests = Request.requests(from: run.events)
            if requests != expected {
                return XCTFail("\(plan.name): got \(requests), expected \(expected)", file: file, line: line)
            }
            if let ends, run.consumedAtEnd != ends {
                return XCTFail("\(plan.name): ends after \(run.consumedAtEnd) bytes, expected \(ends)", file: file, line: line)
            }
        }
    }

    private func assertEverySplit(
        _ raw: String, limits: Parser.Limits = roomy, expect expected: Request, file: StaticString = #filePath, line: UInt = #line
    ) {
        assertEverySplit(Array(raw.utf8), limits: limits, expect: [expected], file: file, line: line)
    }

    /// Checks that `bytes`, however split into reads, fail with exactly `expected`, which
    /// the decision record gives as `reason`.
    private func assertRejected(
        _ bytes: [UInt8], _ expected: Failure, reason: String, limits: Parser.Limits = roomy,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual(expected.reason.rawValue, reason, "reason of \(expected)", file: file, line: line)
        for plan in readPlans(bytes) {
            let run = feed(plan.reads, limits: limits, file: file, line: line)
            if run.failure != expected {
                let got = run.failure.map { "\($0)" } ?? "success (\(Request.requests(from: run.events).map(\.shape)))"
                return XCTFail("\(plan.name): got \(got), expected \(expected)", file: file, line: line)
            }
        }
    }

    private func assertRejected(
        _ raw: String, _ expected: Failure, reason: String, limits: Parser.Limits = roomy,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        assertRejected(Array(raw.utf8), expected, reason: reason, limits: limits, file: file, line: line)
    }

    /// The head of `raw` parsed in one read (for tests about the head alone).
    private func head(_ raw: String, limits: Parser.Limits = roomy, file: StaticString = #filePath, line: UInt = #line) throws
        -> HTTPRequestHead
    {
        var parser = Parser(limits: limits)
        var buffer = ByteBuffer(string: raw)
        guard case .head(let head) = try parser.next(from: &buffer) else {
            XCTFail("no head", file: file, line: line)
            throw Failure.malformedRequestLine
        }
        return head
    }

    private static let chunkedHead = "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"

    // MARK: Heads

    func testSimpleGETAtEverySplit() {
        assertEverySplit(
            "GET /index.html?q=1&r=%20 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: test/1.0\r\nAccept: */*\r\n\r\n",
            expect: .request(.GET, "/index.html?q=1&r=%20", fields: ["Host: example.com", "User-Agent: test/1.0", "Accept: */*"]))
    }

    func testFieldNamesKeepTheirCaseAndValuesAreTrimmed() {
        let raw =
            "GET / HTTP/1.1\r\n"
            + "x-LOWER-Mixed:   spaced  value \t\r\n"
            + "X-Tab:\tinner\tthen  space\t\r\n"
            + "X-Empty:\r\n"
            + "X-Blank: \t \r\n"
            + "x-lower-mixed: second\r\n"
            + "HOST:h\r\n\r\n"
        assertEverySplit(
            raw,
            expect: .request(
                .GET, "/",
                fields: [
                    "x-LOWER-Mixed: spaced  value", "X-Tab: inner\tthen  space", "X-Empty: ", "X-Blank: ", "x-lower-mixed: second",
                    "HOST: h",
                ]))
    }

    func testHeadersLookUpCaseInsensitivelyInOrder() throws {
        let head = try self.head("GET / HTTP/1.1\r\nX-A: one\r\nHost: h\r\nx-a: two\r\n\r\n")
        XCTAssertEqual(head.headers["x-a"], ["one", "two"])
        XCTAssertEqual(head.headers.map(\.name), ["X-A", "Host", "x-a"])
    }

    func testObsTextInAValueIsAccepted() {
        let raw = Array("GET / HTTP/1.1\r\nX-Obs: caf".utf8) + [0xE9, 0x80, 0xFF] + Array("\r\nHost: h\r\n\r\n".utf8)
        let value = String(decoding: Array("caf".utf8) + [0xE9, 0x80, 0xFF], as: UTF8.self)
        assertEverySplit(raw, expect: [.request(.GET, "/", fields: ["X-Obs: " + value, "Host: h"])])
    }

    func testHTTP11IsKeepAliveUnlessConnectionClose() throws {
        let plain = try self.head("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        XCTAssertEqual(plain.version, .http1_1)
        XCTAssertTrue(plain.isKeepAlive)
        XCTAssertFalse(try self.head("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").isKeepAlive)
        XCTAssertFalse(try self.head("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n").isKeepAlive)
    }

    func testHTTP10IsNotKeepAliveUnlessAsked() throws {
        let plain = try self.head("GET / HTTP/1.0\r\n\r\n")
        XCTAssertEqual(plain.version, .http1_0)
        XCTAssertFalse(plain.isKeepAlive)
        XCTAssertTrue(try self.head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").isKeepAlive)
    }

    func testHTTP10RequestAtEverySplit() {
        assertEverySplit(
            "POST /form HTTP/1.0\r\nContent-Length: 3\r\n\r\na=b",
            expect: .request(.POST, "/form", version: .http1_0, fields: ["Content-Length: 3"], keepAlive: false, body: "a=b"))
    }

    func testGETAndPOSTMapToTheirCases() throws {
        XCTAssertEqual(try self.head("GET / HTTP/1.1\r\n\r\n").method, .GET)
        XCTAssertEqual(try self.head("POST / HTTP/1.1\r\n\r\n").method, .POST)
        XCTAssertEqual(try self.head("PUT / HTTP/1.1\r\n\r\n").method, .PUT)
        XCTAssertEqual(try self.head("DELETE / HTTP/1.1\r\n\r\n").method, .DELETE)
    }

    func testAnyTokenIsAMethod() throws {
        for method in ["PURGE", "get", "Post", "M-SEARCH", "X!#$%&'*+-.^_`|~9", "GETS", "POSTX", "PO"] {
            XCTAssertEqual(try self.head("\(method) / HTTP/1.1\r\n\r\n").method, HTTPMethod(rawValue: method), method)
        }
        XCTAssertEqual(try self.head("get / HTTP/1.1\r\n\r\n").method, .RAW(value: "get"), "methods are case-sensitive")
    }

    func testEveryRequestTargetFormIsTakenAsIs() throws {
        let targets = ["*", "http://example.com:8080/a?b#c", "example.com:443", "/a/../b/%2e%2E/c?x=[1]&y={2}", "/~user/!$&'()*+,;=:@"]
        for target in targets {
            XCTAssertEqual(try self.head("OPTIONS \(target) HTTP/1.1\r\n\r\n").uri, target)
        }
    }

    // MARK: Bodies, at every split

    func testContentLengthBodyAtEverySplit() {
        assertEverySplit(
            "POST /submit HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world",
            expect: .request(
                .POST, "/submit", fields: ["Host: a", "Content-Type: text/plain", "Content-Length: 11"], body: "hello world"))
    }

    func testChunkedBodyWithExtensionsAndTrailersAtEverySplit() {
        let raw =
            Self.chunkedHead
            + "5;name=value\r\nhello\r\n"
            + "A;a=1;b=\"x y\"\r\n, world!!!\r\n"  // uppercase hex, several extensions, a quoted value
            + "1a\r\nabcdefghijklmnopqrstuvwxyz\r\n"  // lowercase hex
            + "3 \t;ext\r\nxyz\r\n"  // whitespace before the extension
            + "0;last\r\nX-Trailer: dropped\r\nX-Other: also\r\n\r\n"
        assertEverySplit(
            raw,
            expect: .request(
                .POST, "/upload", fields: ["Host: a", "Transfer-Encoding: chunked"],
                body: "hello, world!!!abcdefghijklmnopqrstuvwxyzxyz"))
    }

    func testTransferCodingNameIsCaseInsensitive() {
        assertEverySplit(
            "POST / HTTP/1.1\r\ntransfer-encoding: Chunked \r\n\r\n2\r\nok\r\n0\r\n\r\n",
            expect: .request(.POST, "/", fields: ["transfer-encoding: Chunked"], body: "ok"))
    }

    func testChunkedWithOnlyTheLastChunkHasNoBodyEvent() {
        assertEverySplit(
            Self.chunkedHead + "0\r\n\r\n", expect: .request(.POST, "/upload", fields: ["Host: a", "Transfer-Encoding: chunked"]))
    }

    func testContentLengthZeroEndsRightAfterTheHead() {
        assertEverySplit(
            "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", expect: .request(.POST, "/", fields: ["Content-Length: 0"]))
    }

    func testRequestWithoutLengthOrCodingHasNoBody() {
        // What follows the head is the next request, even after a POST.
        let first = "POST /a HTTP/1.1\r\nHost: h\r\n\r\n"
        let second = "GET /b HTTP/1.1\r\n\r\n"
        assertEverySplit(
            Array((first + second).utf8),
            expect: [.request(.POST, "/a", fields: ["Host: h"]), .request(.GET, "/b", fields: [])],
            ends: [first.utf8.count, first.utf8.count + second.utf8.count])
    }

    func testEighteenDigitContentLengthIsAccepted() throws {
        var parser = Parser(limits: Self.roomy)
        var buffer = ByteBuffer(string: "POST / HTTP/1.1\r\nContent-Length: 000000000000000003\r\n\r\nabcdef")
        guard case .head = try parser.next(from: &buffer) else { return XCTFail("no head") }
        guard case .body(let body) = try parser.next(from: &buffer) else { return XCTFail("no body") }
        XCTAssertEqual(String(buffer: body), "abc")
        guard case .end = try parser.next(from: &buffer) else { return XCTFail("no end") }
        XCTAssertEqual(String(buffer: buffer), "def", "the rest is left for the next request")
    }

    // MARK: Pipelining

    private static let pipelined = [
        "GET /first HTTP/1.1\r\nHost: a\r\n\r\n",
        "POST /second HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
        "GET /third HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    ]

    func testThreePipelinedRequestsAtEverySplit() {
        let sizes = Self.pipelined.map(\.utf8.count)
        assertEverySplit(
            Array(Self.pipelined.joined().utf8),
            expect: [
                .request(.GET, "/first", fields: ["Host: a"]),
                .request(.POST, "/second", fields: ["Host: a", "Content-Length: 5"], body: "hello"),
                .request(.GET, "/third", fields: ["Host: a", "Connection: close"], keepAlive: false),
            ],
            ends: [sizes[0], sizes[0] + sizes[1], sizes[0] + sizes[1] + sizes[2]])
    }

    func testPipelinedChunkedRequestAndEmptyLinesBetweenRequestsAtEverySplit() {
        let requests = [
            Self.chunkedHead + "3\r\nabc\r\n0\r\nX-T: v\r\n\r\n",
            "\r\n\r\nGET /next HTTP/1.1\r\n\r\n",  // two empty lines again: the count is per request
            "\r\nDELETE /last HTTP/1.1\r\nContent-Length: 2\r\n\r\nok",
        ]
        let sizes = requests.map(\.utf8.count)
        assertEverySplit(
            Array(requests.joined().utf8),
            expect: [
                .request(.POST, "/upload", fields: ["Host: a", "Transfer-Encoding: chunked"], body: "abc"),
                .request(.GET, "/next", fields: []),
                .request(.DELETE, "/last", fields: ["Content-Length: 2"], body: "ok"),
            ],
            ends: [sizes[0], sizes[0] + sizes[1], sizes[0] + sizes[1] + sizes[2]])
    }

    func testPipelinedBytesStayInTheBufferUntilAskedFor() throws {
        var parser = Parser(limits: Self.roomy)
        var buffer = ByteBuffer(string: Self.pipelined.joined())
        let sizes = Self.pipelined.map(\.utf8.count)

        guard case .head(let first) = try parser.next(from: &buffer) else { return XCTFail("no first head") }
        XCTAssertEqual(first.uri, "/first")
        guard case .end = try parser.next(from: &buffer) else { return XCTFail("no first end") }
        XCTAssertEqual(buffer.readableBytes, sizes[1] + sizes[2], "the later requests are not consumed")
        XCTAssertTrue(parser.isBetweenRequests)
        XCTAssertEqual(String(buffer: buffer), Self.pipelined[1] + Self.pipelined[2])

        guard case .head(let second) = try parser.next(from: &buffer) else { return XCTFail("no second head") }
        XCTAssertEqual(second.uri, "/second")
        XCTAssertEqual(String(buffer: buffer), "hello" + Self.pipelined[2], "the body is not read before it is asked for")
        guard case .body(let body) = try parser.next(from: &buffer) else { return XCTFail("no body") }
        XCTAssertEqual(String(buffer: body), "hello")
        guard case .end = try parser.next(from: &buffer) else { return XCTFail("no second end") }
        XCTAssertEqual(buffer.readableBytes, sizes[2])

        guard case .head(let third) = try parser.next(from: &buffer) else { return XCTFail("no third head") }
        XCTAssertEqual(third.uri, "/third")
        guard case .end = try parser.next(from: &buffer) else { return XCTFail("no third end") }
        XCTAssertEqual(buffer.readableBytes, 0)
        XCTAssertNil(try parser.next(from: &buffer))
    }

    func testChunkedEndLeavesTheNextRequestInTheBuffer() throws {
        var parser = Parser(limits: Self.roomy)
        let next = "GET /next HTTP/1.1\r\n\r\n"
        var buffer = ByteBuffer(string: Self.chunkedHead + "2\r\nhi\r\n0\r\nX-T: v\r\n\r\n" + next)
        var events = 0
        while true {
            guard let event = try parser.next(from: &buffer) else { return XCTFail("no end") }
            events += 1
            if case .end = event { break }
        }
        XCTAssertEqual(events, 3)
        XCTAssertEqual(String(buffer: buffer), next)
    }

    // MARK: Empty lines before a request

    func testUpToTwoEmptyLinesBeforeTheRequestLineAreSkipped() {
        assertEverySplit("\r\nGET /one HTTP/1.1\r\n\r\n", expect: .request(.GET, "/one", fields: []))
        assertEverySplit("\r\n\r\nGET /two HTTP/1.1\r\nHost: h\r\n\r\n", expect: .request(.GET, "/two", fields: ["Host: h"]))
    }

    func testThreeEmptyLinesAreAMalformedRequestLine() {
        assertRejected("\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n", .malformedRequestLine, reason: Reason.malformed)
        assertRejected("\r\n\r\n\r\n", .malformedRequestLine, reason: Reason.malformed)
        // Two after a request, then a third.
        assertRejected("GET / HTTP/1.1\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n", .malformedRequestLine, reason: Reason.malformed)
    }

    func testLoneCRAtTheEndOfTheBufferWaitsForMore() throws {
        var parser = Parser(limits: Self.roomy)
        var buffer = ByteBuffer(string: "\r")
        XCTAssertNil(try parser.next(from: &buffer))
        XCTAssertEqual(buffer.readableBytes, 1, "the CR is left for when the rest arrives")
        XCTAssertFalse(parser.hasFailed)
        buffer.writeString("\nGET /after-cr HTTP/1.1\r\n\r\n")
        guard case .head(let head) = try parser.next(from: &buffer) else { return XCTFail("no head") }
        XCTAssertEqual(head.uri, "/after-cr")
        guard case .end = try parser.next(from: &buffer) else { return XCTFail("no end") }
    }

    func testLoneCRAfterAnEmptyLineAndAfterARequestWaitsForMore() throws {
        var parser = Parser(limits: Self.roomy)
        var buffer = ByteBuffer(string: "\r\n\r")
        XCTAssertNil(try parser.next(from: &buffer))
        XCTAssertEqual(buffer.readableBytes, 1)
        buffer.writeString("\nGET /a HTTP/1.1\r\n\r\n\r")
        guard case .head = try parser.next(from: &buffer) else { return XCTFail("no head") }
        guard case .end = try parser.next(from: &buffer) else { return XCTFail("no end") }
        XCTAssertNil(try parser.next(from: &buffer))
        XCTAssertEqual(buffer.readableBytes, 1)
        buffer.writeString("\nGET /b HTTP/1.1\r\n\r\n")
        guard case .head(let head) = try parser.next(from: &buffer) else { return XCTFail("no second head") }
        XCTAssertEqual(head.uri, "/b")
    }

    func testCRNotStartingAnEmptyLineIsMalformed() {
        assertRejected("\rGET / HTTP/1.1\r\n\r\n", .malformedRequestLine, reason: Reason.malformed)
    }

    // MARK: Rejections: request line

    func testMissingMethodTargetOrVersionIsMalformed() {
        for raw in [
            "/ HTTP/1.1\r\n\r\n", " / HTTP/1.1\r\n\r\n",  // method
            "GET HTTP/1.1\r\n\r\n", "GET  HTTP/1.1\r\n\r\n",  // target
            "GET /\r\n\r\n", "GET / \r\n\r\n",  // version
            "GET\r\n\r\n",
        ] {
            assertRejected(raw, .malformedRequestLine, reason: Reason.malformed)
        }
    }

    func testExtraSpacesInTheRequestLineAreMalformed() {
        for raw in [
            "GET  / HTTP/1.1\r\n\r\n", "GET /  HTTP/1.1\r\n\r\n", "GET / HTTP/1.1 \r\n\r\n", " GET / HTTP/1.1\r\n\r\n",
            "GET\t/ HTTP/1.1\r\n\r\n", "GET /\tHTTP/1.1\r\n\r\n",
        ] {
            assertRejected(raw, .malformedRequestLine, reason: Reason.malformed)
        }
    }

    func testSpaceInsideTheTargetIsMalformed() {
        assertRejected("GET /a b HTTP/1.1\r\n\r\n", .malformedRequestLine, reason: Reason.malformed)
    }

    func testControlDELAndNonASCIIBytesInTheTargetAreMalformed() {
        for byte: UInt8 in [0x00, 0x01, 0x09, 0x0D, 0x1F, 0x7F, 0x80, 0xC3, 0xFF] {
            let raw = Array("GET /a".utf8) + [byte] + Array("b HTTP/1.1\r\nHost: h\r\n\r\n".utf8)
            assertRejected(raw, .malformedRequestLine, reason: Reason.malformed)
        }
    }

    func testNonTokenBytesInTheMethodAreMalformed() {
        for method in ["GE(T", "G@T", "GE/T", "GÉT", "GET:"] {
            assertRejected("\(method) / HTTP/1.1\r\n\r\n", .malformedRequestLine, reason: Reason.malformed)
        }
    }

    func testOtherHTTPVersionsAreUnsupported() {
        for version in ["HTTP/2.0", "HTTP/1.2", "HTTP/1.9", "HTTP/0.9", "HTTP/3.0"] {
            assertRejected("GET / \(version)\r\nHost: h\r\n\r\n", .unsupportedVersion, reason: Reason.malformed)
        }
    }

    func testMalformedVersionsAreMalformed() {
        for version in ["http/1.1", "HTTP/1.10", "HTTP/1", "HTTP/11", "HTTP/1.", "HTTP/a.1", "HTTPS/1.1", "HTTP/1,1", "HTTP/1.1x"] {
            assertRejected("GET / \(version)\r\nHost: h\r\n\r\n", .malformedRequestLine, reason: Reason.malformed)
        }
    }

    func testGarbageIsAMalformedRequestLine() {
        assertRejected("HELLO\r\n\r\n", .malformedRequestLine, reason: Reason.malformed)
        assertRejected("HELLO WORLD\r\n\r\n", .malformedRequestLine, reason: Reason.malformed)
        assertRejected("{\"json\": true}\r\n\r\n", .malformedRequestLine, reason: Reason.malformed)
    }

    func testHTTP2ConnectionPrefaceIsUnsupported() {
        assertRejected("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", .unsupportedVersion, reason: Reason.malformed)
    }

    // MARK: Rejections: fields

    func testBareLFAnywhereInTheHeadIsAMalformedField() {
        for raw in [
            "GET / HTTP/1.1\nHost: h\r\n\r\n",  // ending the request line
            "GET / HTTP/1.1\r\nHost: h\n\r\n",  // ending a field line
            "GET / HTTP/1.1\r\nHost: h\r\n\n",  // as the blank line
            "GET / HTTP/1.1\n\n",
            "GET / HTTP/1.1\r\nX-A: a\nb\r\n\r\n",  // inside a value
            "GET /a\nb HTTP/1.1\r\n\r\n",  // inside the target
            "\nGET / HTTP/1.1\r\n\r\n",  // as an empty line before the request
            "\r\n\nGET / HTTP/1.1\r\n\r\n",
        ] {
            assertRejected(raw, .malformedField, reason: Reason.malformed)
        }
    }

    func testBareCRInAFieldValueIsMalformed() {
        assertRejected("GET / HTTP/1.1\r\nX-A: a\rb\r\nHost: h\r\n\r\n", .malformedField, reason: Reason.malformed)
        assertRejected("GET / HTTP/1.1\r\nX-A: a\r\r\n\r\n", .malformedField, reason: Reason.malformed)
        assertRejected("GET / HTTP/1.1\r\nX-A: a\r\n\rX: b\r\n\r\n", .malformedField, reason: Reason.malformed)
    }

    func testObsFoldIsMalformed() {
        assertRejected("GET / HTTP/1.1\r\nX-A: a\r\n b\r\nHost: h\r\n\r\n", .malformedField, reason: Reason.malformed)
        assertRejected("GET / HTTP/1.1\r\nX-A: a\r\n\tb\r\nHost: h\r\n\r\n", .malformedField, reason: Reason.malformed)
        // Whitespace between the request line and the first field (RFC 9112 §2.2).
        assertRejected("GET / HTTP/1.1\r\n Host: h\r\n\r\n", .malformedField, reason: Reason.malformed)
    }

    func testWhitespaceBeforeTheColonIsMalformed() {
        assertRejected("GET / HTTP/1.1\r\nHost : h\r\n\r\n", .malformedField, reason: Reason.malformed)
        assertRejected("GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", .malformedField, reason: Reason.malformed)
        assertRejected("POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\nhello", .malformedField, reason: Reason.malformed)
    }

    func testEmptyFieldNameIsMalformed() {
        assertRejected("GET / HTTP/1.1\r\n: v\r\nHost: h\r\n\r\n", .malformedField, reason: Reason.malformed)
    }

    func testLineWithoutColonIsMalformed() {
        assertRejected("GET / HTTP/1.1\r\nNoColonHere\r\nHost: h\r\n\r\n", .malformedField, reason: Reason.malformed)
    }

    func testNonTokenBytesInANameAreMalformed() {
        for name in ["X(A)", "X\"A", "X@A", "X/A", "X[A]", "X,A", "X;A", "X=A", "X{A}", "X?A", "X\\A", "Ä"] {
            assertRejected("GET / HTTP/1.1\r\n\(name): v\r\nHost: h\r\n\r\n", .malformedField, reason: Reason.malformed)
        }
        for byte: UInt8 in [0x00, 0x01, 0x7F, 0x80] {
            let raw = Array("GET / HTTP/1.1\r\nX".utf8) + [byte] + Array(": v\r\n\r\n".utf8)
            assertRejected(raw, .malformedField, reason: Reason.malformed)
        }
    }

    func testEveryOtherTokenCharacterIsAcceptedInAName() throws {
        XCTAssertEqual(try self.head("GET / HTTP/1.1\r\nX!#$%&'*+-.^_`|~9: v\r\n\r\n").headers.first?.name, "X!#$%&'*+-.^_`|~9")
    }

    func testControlBytesAndDELInAValueAreMalformed() {
        for byte: UInt8 in [0x00, 0x01, 0x0B, 0x1F, 0x7F] {
            let raw = Array("GET / HTTP/1.1\r\nX-A: a".utf8) + [byte] + Array("b\r\nHost: h\r\n\r\n".utf8)
            assertRejected(raw, .malformedField, reason: Reason.malformed)
        }
    }

    func testFieldsUpToMaxFieldsAreAccepted() {
        let fields = (1...8).map { "X-\($0): \($0)" }
        assertEverySplit(
            "GET / HTTP/1.1\r\n" + fields.map { $0 + "\r\n" }.joined() + "\r\n", limits: Self.small,
            expect: .request(.GET, "/", fields: fields))
    }

    func testMoreThanMaxFieldsAreTooMany() {
        let fields = (1...9).map { "X-\($0): \($0)\r\n" }.joined()
        assertRejected("GET / HTTP/1.1\r\n" + fields + "\r\n", .tooManyFields, reason: Reason.headersTooLarge, limits: Self.small)
    }

    // MARK: Rejections: sizes

    /// A request line of exactly `length` bytes, its CRLF included.
    private func requestLine(length: Int) -> String {
        "GET /" + String(repeating: "a", count: length - 16) + " HTTP/1.1\r\n"
    }

    func testRequestLineOfMaxRequestLineBytesIsAccepted() {
        // The limit counts the line with its CRLF: 64 bytes in all here.
        let line = requestLine(length: 64)
        XCTAssertEqual(line.utf8.count, 64)
        assertEverySplit(
            line + "Host: h\r\n\r\n", limits: Self.small,
            expect: .request(.GET, "/" + String(repeating: "a", count: 48), fields: ["Host: h"]))
    }

    func testLongerRequestLineInACompleteHeadIsURITooLong() {
        // 65 bytes before the CRLF: longer than the limit however it is counted.
        assertRejected(requestLine(length: 67) + "Host: h\r\n\r\n", .uriTooLong, reason: Reason.uriTooLong, limits: Self.small)
        assertRejected(requestLine(length: 200) + "Host: h\r\n\r\n", .uriTooLong, reason: Reason.uriTooLong, limits: Self.small)
    }

    func testRequestLineThatDoesNotEndWithinTheHeadLimitIsURITooLong() {
        let raw = "GET /" + String(repeating: "a", count: 300)
        assertRejected(raw, .uriTooLong, reason: Reason.uriTooLong, limits: Self.small)
        // Within the head limit it just waits for more.
        let run = feed([Array(raw.utf8.prefix(256))], limits: Self.small)
        XCTAssertNil(run.failure)
        XCTAssertTrue(run.events.isEmpty)
    }

    func testOverlongRequestLineInAnOversizedHeadIsURITooLong() {
        // The line ends, but past the request line limit, and the head grows past its own.
        let raw = requestLine(length: 100) + "X-Pad: " + String(repeating: "p", count: 300) + "\r\n\r\n"
        assertRejected(raw, .uriTooLong, reason: Reason.uriTooLong, limits: Self.small)
    }

    /// A head of exactly `size` bytes (padding one field).
    private func head(ofSize size: Int) -> String {
        let fixed = "GET / HTTP/1.1\r\nX-Pad: \r\n\r\n"
        return "GET / HTTP/1.1\r\nX-Pad: " + String(repeating: "p", count: size - fixed.utf8.count) + "\r\n\r\n"
    }

    /// The field `head(ofSize: 256)` carries.
    private static let pad229 = "X-Pad: " + String(repeating: "p", count: 229)

    func testHeadOfExactlyMaxHeadBytesIsAccepted() {
        let raw = head(ofSize: 256)
        XCTAssertEqual(raw.utf8.count, 256)
        assertEverySplit(raw, limits: Self.small, expect: .request(.GET, "/", fields: [Self.pad229]))
    }

    func testLargerHeadWithAnEndedRequestLineIsHeadTooLarge() {
        assertRejected(head(ofSize: 257), .headTooLarge, reason: Reason.headersTooLarge, limits: Self.small)
        assertRejected(head(ofSize: 600), .headTooLarge, reason: Reason.headersTooLarge, limits: Self.small)
    }

    func testHeadWhoseEndNeverComesIsHeadTooLarge() {
        let raw = "GET / HTTP/1.1\r\nX-Pad: " + String(repeating: "p", count: 300)
        assertRejected(raw, .headTooLarge, reason: Reason.headersTooLarge, limits: Self.small)
        let run = feed([Array(raw.utf8.prefix(256))], limits: Self.small)
        XCTAssertNil(run.failure, "within the limit it waits for more")
        XCTAssertTrue(run.events.isEmpty)
    }

    func testEmptyLinesDoNotCountTowardsTheHeadLimit() {
        let raw = "\r\n\r\n" + head(ofSize: 256)
        assertEverySplit(raw, limits: Self.small, expect: .request(.GET, "/", fields: [Self.pad229]))
    }

    // MARK: Listener limits

    private static let listenerLimits = Parser.Limits(RequestLimits())

    /// Feeds `raw` as one read and as a few reads of `size` bytes (every split of kilobytes would be slow).
    private func feedWholeAndInPieces(_ raw: String, pieceSize: Int = 1000) -> [Run] {
        let bytes = Array(raw.utf8)
        let pieces = stride(from: 0, to: bytes.count, by: pieceSize).map { Array(bytes[$0..<min($0 + pieceSize, bytes.count)]) }
        return [feed([bytes], limits: Self.listenerLimits), feed(pieces, limits: Self.listenerLimits)]
    }

    func testListenerDefaultsAreTheConfigDefaults() {
        let config = RequestLimits()
        XCTAssertEqual(config.maxURIBytes, 8192)
        XCTAssertEqual(config.maxHeaderBytes, 32768)
        XCTAssertEqual(config.maxHeaderCount, 100)
        XCTAssertEqual(Self.listenerLimits.maxFields, 100)
        XCTAssertGreaterThanOrEqual(Self.listenerLimits.maxRequestLineBytes, 8192 + "DELETE  HTTP/1.1\r\n".utf8.count)
        XCTAssertGreaterThanOrEqual(Self.listenerLimits.maxHeadBytes, 8192 + 32768)
    }

    func testListenerLimitsLetAn8192ByteTargetThrough() {
        let target = "/" + String(repeating: "t", count: 8191)
        for run in feedWholeAndInPieces("GET \(target) HTTP/1.1\r\nHost: h\r\n\r\n") {
            XCTAssertNil(run.failure)
            XCTAssertEqual(Request.requests(from: run.events), [.request(.GET, target, fields: ["Host: h"])])
        }
    }

    func testListenerLimitsRefuseAFarLongerTargetAsURITooLong() {
        let complete = "GET /" + String(repeating: "t", count: 20_000) + " HTTP/1.1\r\nHost: h\r\n\r\n"
        let endless = "GET /" + String(repeating: "t", count: 60_000)
        for run in feedWholeAndInPieces(complete) + feedWholeAndInPieces(endless) {
            XCTAssertEqual(run.failure, .uriTooLong)
            XCTAssertTrue(run.events.isEmpty)
        }
    }

    func testListenerLimitsAcceptMaxHeaderCountFieldsAndNoMore() {
        let fields = (1...100).map { "X-\($0): v" }
        let head = "GET / HTTP/1.1\r\n" + fields.map { $0 + "\r\n" }.joined()
        let accepted = feed([Array((head + "\r\n").utf8)], limits: Self.listenerLimits)
        XCTAssertNil(accepted.failure)
        XCTAssertEqual(Request.requests(from: accepted.events).first?.fields, fields)
        let refused = feed([Array((head + "X-101: v\r\n\r\n").utf8)], limits: Self.listenerLimits)
        XCTAssertEqual(refused.failure, .tooManyFields)
    }

    // MARK: Rejections: framing

    func testContentLengthWithTransferEncodingIsAmbiguous() {
        assertRejected(
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", .ambiguousFraming,
            reason: Reason.ambiguousFraming)
        assertRejected(
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\ncontent-length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n", .ambiguousFraming,
            reason: Reason.ambiguousFraming)
    }

    func testTwoContentLengthsAreAmbiguousEqualOrNot() {
        assertRejected(
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", .ambiguousFraming,
            reason: Reason.ambiguousFraming)
        assertRejected(
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nCONTENT-LENGTH: 6\r\n\r\nhello!", .ambiguousFraming,
            reason: Reason.ambiguousFraming)
    }

    func testInvalidContentLengthsAreAmbiguous() {
        for value in ["abc", "-5", "+5", "5, 5", "5,5", "5 5", "0x5", "5.0", "", "1234567890123456789", "0000000000000000005"] {
            assertRejected(
                "POST / HTTP/1.1\r\nContent-Length: \(value)\r\n\r\nhello", .ambiguousFraming, reason: Reason.ambiguousFraming)
        }
    }

    func testTransferCodingsOtherThanOneChunkedAreAmbiguous() {
        let tail = "\r\n\r\n0\r\n\r\n"
        for coding in ["gzip, chunked", "chunked, gzip", "identity", "chunked, chunked", "", "gzip", "chunked;q=1"] {
            assertRejected(
                "POST / HTTP/1.1\r\nTransfer-Encoding: \(coding)" + tail, .ambiguousFraming, reason: Reason.ambiguousFraming)
        }
        assertRejected(
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked" + tail, .ambiguousFraming,
            reason: Reason.ambiguousFraming)
        assertRejected(
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked" + tail, .ambiguousFraming,
            reason: Reason.ambiguousFraming)
    }

    func testTransferEncodingOnHTTP10IsAmbiguous() {
        assertRejected(
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", .ambiguousFraming, reason: Reason.ambiguousFraming)
    }

    // MARK: Rejections: chunked body

    func testMalformedChunkSizeLinesAreRejected() {
        for line in ["5 6", "5\t6", "5 g", "5 ", "5\t", "g", "5g", "", "-5", "0x5", ";ext", " 5", "0000000000000005", "5;a\u{01}b", "5;a\u{7F}"] {
            assertRejected(Self.chunkedHead + line + "\r\nhello\r\n0\r\n\r\n", .malformedChunk, reason: Reason.ambiguousFraming)
        }
    }

    func testMissingCRLFAfterChunkDataIsRejected() {
        for rest in ["5\r\nhelloX\r\n0\r\n\r\n", "5\r\nhello\rX0\r\n\r\n", "5\r\nhello\n0\r\n\r\n", "5\r\nhello0\r\n\r\n"] {
            assertRejected(Self.chunkedHead + rest, .malformedChunk, reason: Reason.ambiguousFraming)
        }
    }

    func testBareLFOrCRInAChunkSizeLineIsRejected() {
        for rest in ["5\nhello\r\n0\r\n\r\n", "5;ext\nhello\r\n0\r\n\r\n", "5\rhello\r\n0\r\n\r\n", "5\r\nhello\r\n0\n\r\n"] {
            assertRejected(Self.chunkedHead + rest, .malformedChunk, reason: Reason.ambiguousFraming)
        }
    }

    func testHeadAndEarlierChunksAreDeliveredBeforeABadChunkFails() {
        let run = feed([Array((Self.chunkedHead + "2\r\nok\r\nzz\r\n").utf8)])
        XCTAssertEqual(run.failure, .malformedChunk)
        XCTAssertEqual(Request.requests(from: run.events).map(\.shape), ["head body"])
    }

    private var trailerLimits: Parser.Limits {
        var limits = Self.roomy
        limits.body.maxTrailerBytes = 32
        return limits
    }

    func testTrailersLargerThanTheLimitAreRejected() {
        let big = "X-Big: " + String(repeating: "t", count: 40) + "\r\n"
        assertRejected(
            Self.chunkedHead + "0\r\n" + big + "\r\n", .trailersTooLarge, reason: Reason.headersTooLarge, limits: trailerLimits)
        // Many small lines add up.
        assertRejected(
            Self.chunkedHead + "0\r\n" + String(repeating: "A: b\r\n", count: 10) + "\r\n", .trailersTooLarge,
            reason: Reason.headersTooLarge, limits: trailerLimits)
        // And the limit holds if the blank line never comes.
        assertRejected(Self.chunkedHead + "0\r\n" + big, .trailersTooLarge, reason: Reason.headersTooLarge, limits: trailerLimits)
    }

    func testATrailerLineThatIsNotAFieldLineIsRejected() {
        // Where a chunked body ends must not depend on how a parser reads a malformed trailer:
        // one that skips trailers would take the first one here for a second request.
        let lines = ["GET /hidden HTTP/1.1", "NoColon", " X: leading space", "\tX: leading tab", "X : space before colon",
            ": empty name", "X\u{7F}: y", "X\"y: z", "X: a\u{01}b"]
        for trailer in lines {
            assertRejected(
                Self.chunkedHead + "0\r\n" + trailer + "\r\nHost: a\r\n\r\n", .malformedChunk, reason: Reason.ambiguousFraming)
        }
    }

    func testATabAfterAFramingValueIsAmbiguousButASpaceIsNot() {
        // llhttp refuses the tab; a front proxy that ignored the field would end the body elsewhere.
        assertRejected("POST / HTTP/1.1\r\nContent-Length: 5\t\r\n\r\nhello", .ambiguousFraming, reason: Reason.ambiguousFraming)
        assertRejected(
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\t\r\n\r\n0\r\n\r\n", .ambiguousFraming, reason: Reason.ambiguousFraming)
        assertEverySplit(
            "POST / HTTP/1.1\r\nContent-Length: 5 \r\n\r\nhello",
            expect: .request(.POST, "/", fields: ["Content-Length: 5"], body: "hello"))
    }

    func testTrailersWithinTheLimitAreDropped() {
        assertEverySplit(
            Self.chunkedHead + "1\r\nx\r\n0\r\nX-Small: t\r\n\r\n", limits: trailerLimits,
            expect: .request(.POST, "/upload", fields: ["Host: a", "Transfer-Encoding: chunked"], body: "x"))
    }

    // MARK: Failures

    func testEveryFailureMapsToItsReason() {
        let expected: [(Failure, String)] = [
            (.malformedRequestLine, Reason.malformed), (.unsupportedVersion, Reason.malformed), (.malformedField, Reason.malformed),
            (.uriTooLong, Reason.uriTooLong), (.headTooLarge, Reason.headersTooLarge), (.tooManyFields, Reason.headersTooLarge),
            (.trailersTooLarge, Reason.headersTooLarge), (.ambiguousFraming, Reason.ambiguousFraming),
            (.malformedChunk, Reason.ambiguousFraming),
        ]
        for (failure, reason) in expected {
            XCTAssertEqual(failure.reason.rawValue, reason, "\(failure)")
        }
    }

    func testAFailedParserStaysFailed() throws {
        var parser = Parser(limits: Self.roomy)
        var good = ByteBuffer(string: "GET /ok HTTP/1.1\r\n\r\n")
        guard case .head = try parser.next(from: &good) else { return XCTFail("no head") }
        guard case .end = try parser.next(from: &good) else { return XCTFail("no end") }
        XCTAssertFalse(parser.hasFailed)
        var bad = ByteBuffer(string: "GET / HTTP/1.1\r\nBad Name: v\r\n\r\n")
        XCTAssertThrowsError(try parser.next(from: &bad)) { XCTAssertEqual($0 as? Failure, .malformedField) }
        assertStaysFailed(&parser, with: .malformedField)
    }

    func testAFailureInTheBodyIsStickyToo() throws {
        var parser = Parser(limits: Self.roomy)
        var buffer = ByteBuffer(string: Self.chunkedHead + "q\r\n")
        guard case .head = try parser.next(from: &buffer) else { return XCTFail("no head") }
        XCTAssertFalse(parser.hasFailed)
        XCTAssertThrowsError(try parser.next(from: &buffer)) { XCTAssertEqual($0 as? Failure, .malformedChunk) }
        assertStaysFailed(&parser, with: .malformedChunk)
    }

    // MARK: Body slices

    private func baseAddress(_ buffer: ByteBuffer) -> UInt {
        buffer.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
    }

    func testContentLengthBodyInOneReadIsASliceOfTheRead() throws {
        let headText = "POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n"
        var buffer = ByteBuffer(string: headText + "hello world")
        let base = baseAddress(buffer)
        var parser = Parser(limits: Self.roomy)
        guard case .head = try parser.next(from: &buffer) else { return XCTFail("no head") }
        guard case .body(let body) = try parser.next(from: &buffer) else { return XCTFail("no body") }
        XCTAssertEqual(String(buffer: body), "hello world")
        XCTAssertEqual(baseAddress(body), base + UInt(headText.utf8.count), "the body is a slice of the read, not a copy")
        guard case .end = try parser.next(from: &buffer) else { return XCTFail("no end") }
        XCTAssertNil(try parser.next(from: &buffer))
    }

    func testChunkDataInOneReadIsASliceOfTheRead() throws {
        let before = Self.chunkedHead + "5;ext=1\r\n"
        var buffer = ByteBuffer(string: before + "hello\r\n3\r\nabc\r\n0\r\n\r\n")
        let base = baseAddress(buffer)
        var parser = Parser(limits: Self.roomy)
        guard case .head = try parser.next(from: &buffer) else { return XCTFail("no head") }
        guard case .body(let first) = try parser.next(from: &buffer) else { return XCTFail("no first chunk") }
        XCTAssertEqual(String(buffer: first), "hello")
        XCTAssertEqual(baseAddress(first), base + UInt(before.utf8.count))
        guard case .body(let second) = try parser.next(from: &buffer) else { return XCTFail("no second chunk") }
        XCTAssertEqual(String(buffer: second), "abc")
        XCTAssertEqual(baseAddress(second), base + UInt((before + "hello\r\n3\r\n").utf8.count))
        guard case .end = try parser.next(from: &buffer) else { return XCTFail("no end") }
    }

    func testBodyInALaterReadIsASliceOfThatRead() throws {
        var parser = Parser(limits: Self.roomy)
        var headRead = ByteBuffer(string: "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n")
        guard case .head = try parser.next(from: &headRead) else { return XCTFail("no head") }
        XCTAssertNil(try parser.next(from: &headRead))
        var bodyRead = ByteBuffer(string: "hello")
        let base = baseAddress(bodyRead)
        guard case .body(let body) = try parser.next(from: &bodyRead) else { return XCTFail("no body") }
        XCTAssertEqual(baseAddress(body), base)
        guard case .end = try parser.next(from: &bodyRead) else { return XCTFail("no end") }
    }

    func testBodyLargerThanOneReadArrivesAsOneEventPerRead() throws {
        let body = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let bytes = Array("PUT /big HTTP/1.1\r\nContent-Length: 10000\r\n\r\n".utf8) + body
        var parser = Parser(limits: Self.roomy)
        var bodyEvents: [ByteBuffer] = []
        var ends = 0
        for offset in stride(from: 0, to: bytes.count, by: 4096) {
            var read = ByteBuffer(bytes: bytes[offset..<min(offset + 4096, bytes.count)])
            while let event = try parser.next(from: &read) {
                switch event {
                case .head(let head): XCTAssertEqual(head.method, .PUT)
                case .body(let slice): bodyEvents.append(slice)
                case .end: ends += 1
                }
            }
        }
        XCTAssertEqual(bodyEvents.count, 3, "one event per read carrying body bytes")
        XCTAssertEqual(bodyEvents.flatMap { Array($0.readableBytesView) }, body)
        XCTAssertEqual(ends, 1)
    }
}
