import GatehouseCore
import NIOCore
import NIOHTTP1
import XCTest
@testable import GatehouseServer

/// The rewritten fields as a list, for assertions on names, values and order.
private struct FieldList: HeaderRewriter.FieldSink {
    var fields: [(String, String)] = []
    mutating func add(_ name: String, _ value: String) { fields.append((name, value)) }
}

extension HeaderRewriter {
    fileprivate static func upstreamRequestHeaders<G: RandomNumberGenerator>(
        from incoming: HTTPHeaders, context: Context, requestID generatedID: String, random: inout G
    ) -> (headers: [(String, String)], requestID: String) {
        var list = FieldList()
        let requestID = upstreamRequestHeaders(from: incoming, context: context, requestID: generatedID, random: &random, into: &list)
        return (list.fields, requestID)
    }
}

final class HeaderRewriterTests: XCTestCase {
    /// The rewrite's result, its fields as `HTTPHeaders` for case-insensitive lookups.
    private struct Rewritten {
        var headers: HTTPHeaders
        var requestID: String
    }

    private func rewrite(_ pairs: [(String, String)], trusted: Bool = false, framing: RequestValidator.BodyFraming = .none)
        -> Rewritten
    {
        var random = FastRandom()
        let forwarded = HeaderRewriter.upstreamRequestHeaders(
            from: HTTPHeaders(pairs),
            context: .init(clientIP: "192.0.2.7", clientIsTrustedProxy: trusted, scheme: "https", host: "api.example", framing: framing),
            requestID: RequestIdentifiers.newRequestID(using: &random), random: &random
        )
        return Rewritten(headers: HTTPHeaders(forwarded.headers), requestID: forwarded.requestID)
    }

    /// The data path's sink writes exactly the fields the list gets, in order, as a request head.
    func testTheUpstreamHeadBytesAreTheRewrittenFieldsInOrder() {
        let incoming = HTTPHeaders([
            ("Host", "api.example"), ("Accept", "*/*"), ("X-Forwarded-For", "1.1.1.1"), ("Authorization", "Bearer abc.def.ghi"),
            ("Connection", "x-drop"), ("X-Drop", "1"), ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        ])
        let context = HeaderRewriter.Context(
            clientIP: "192.0.2.7", clientIsTrustedProxy: false, scheme: "https", host: "api.example", framing: .chunked)
        var random = FastRandom()
        let listed = HeaderRewriter.upstreamRequestHeaders(from: incoming, context: context, requestID: "rid-1", random: &random)
        var head = UpstreamRequestHead(method: .POST, uri: "/a/b?c=d", allocator: ByteBufferAllocator())
        let requestID = HeaderRewriter.upstreamRequestHeaders(from: incoming, context: context, requestID: "rid-1", random: &random, into: &head)
        head.finish()
        XCTAssertEqual(requestID, listed.requestID)
        let expected = "POST /a/b?c=d HTTP/1.1\r\n" + listed.headers.map { "\($0.0): \($0.1)\r\n" }.joined() + "\r\n"
        XCTAssertEqual(String(buffer: head.bytes), expected)
        XCTAssertEqual(head.method, .POST)
        XCTAssertTrue(expected.contains("authorization: Bearer abc.def.ghi\r\n") || expected.contains("Authorization: Bearer abc.def.ghi\r\n"))
        XCTAssertFalse(expected.lowercased().contains("x-drop"), "named by Connection: not forwarded")
        XCTAssertTrue(expected.contains("transfer-encoding: chunked\r\n"))
        XCTAssertTrue(expected.contains("x-forwarded-for: 192.0.2.7\r\n"))
    }

    func testUntrustedClientCannotSetAnyGatewayOwnedHeader() {
        let result = rewrite([
            ("X-Forwarded-For", "1.1.1.1"), ("x-forwarded-proto", "http"), ("X-Forwarded-Host", "evil"),
            ("X-Forwarded-Port", "1"), ("Forwarded", "for=1.1.1.1"), ("X-Real-IP", "1.1.1.1"), ("X-Request-Id", "abc"),
            ("X-Gatehouse-Peer-Id", "spiffe://x/y"), ("x-gatehouse-anything", "1"), ("X-Forwarded-Client-Cert", "Hash=1"),
            ("Accept", "*/*"),
        ])
        let headers = result.headers
        XCTAssertEqual(headers["x-forwarded-for"], ["192.0.2.7"])
        XCTAssertEqual(headers["x-forwarded-proto"], ["https"])
        XCTAssertEqual(headers["x-forwarded-host"], ["api.example"])
        XCTAssertEqual(headers["x-request-id"], [result.requestID])
        XCTAssertNotEqual(result.requestID, "abc")
        for name in ["x-forwarded-port", "forwarded", "x-real-ip", "x-gatehouse-peer-id", "x-gatehouse-anything", "x-forwarded-client-cert"] {
            XCTAssertEqual(headers[name], [String](), name)
        }
        XCTAssertEqual(headers["accept"], ["*/*"])
    }

    func testTrustedProxyChainIsAppendedAndItsRequestIDKept() {
        let result = rewrite([("X-Forwarded-For", "203.0.113.1"), ("X-Forwarded-For", "10.0.0.1"), ("X-Request-Id", "lb-1"),
                              ("X-Forwarded-Proto", "http"), ("X-Forwarded-Host", "public.example")], trusted: true)
        XCTAssertEqual(result.headers["x-forwarded-for"], ["203.0.113.1, 10.0.0.1, 192.0.2.7"])
        XCTAssertEqual(result.requestID, "lb-1")
        XCTAssertEqual(result.headers["x-forwarded-proto"], ["http"])
        XCTAssertEqual(result.headers["x-forwarded-host"], ["public.example"])
    }

    func testTrustedProxyRequestIDMustBePlain() {
        XCTAssertNotEqual(rewrite([("X-Request-Id", "bad id\twith spaces")], trusted: true).requestID, "bad id\twith spaces")
        XCTAssertNotEqual(rewrite([("X-Request-Id", String(repeating: "a", count: 200))], trusted: true).requestID.count, 200)
    }

    func testHopByHopAndConnectionListedHeadersAreRemovedButFramingIsProtected() {
        let result = rewrite([
            ("Connection", "close, X-Private, content-length, Host"), ("X-Private", "1"), ("Keep-Alive", "5"), ("TE", "trailers"),
            ("Trailer", "x"), ("Upgrade", "h2c"), ("Proxy-Authorization", "secret"), ("Proxy-Foo", "1"),
            ("Host", "api.example"), ("Content-Length", "3"),
        ], framing: .contentLength(3))
        let names = Set(result.headers.map { $0.name.lowercased() })
        for removed in ["connection", "x-private", "keep-alive", "te", "trailer", "upgrade", "proxy-authorization", "proxy-foo"] {
            XCTAssertFalse(names.contains(removed), removed)
        }
        XCTAssertEqual(result.headers["content-length"], ["3"])
        XCTAssertEqual(result.headers["host"], ["api.example"])
    }

    func testChunkedFramingIsRestatedAfterTheHopByHopStrip() {
        let result = rewrite([("Transfer-Encoding", "chunked")], framing: .chunked)
        XCTAssertEqual(result.headers["transfer-encoding"], ["chunked"])
    }

    func testTraceparentPassesThroughWhenValidAndIsStartedOtherwise() {
        let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        XCTAssertEqual(rewrite([("traceparent", valid), ("tracestate", "a=b")]).headers["traceparent"], [valid])
        XCTAssertEqual(rewrite([("traceparent", valid), ("tracestate", "a=b")]).headers["tracestate"], ["a=b"])
        let started = rewrite([("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"), ("tracestate", "a=b")])
        XCTAssertNotEqual(started.headers["traceparent"].first, "00-00000000000000000000000000000000-00f067aa0ba902b7-01")
        XCTAssertTrue(RequestIdentifiers.isValidTraceparent(started.headers["traceparent"][0]))
        XCTAssertEqual(started.headers["tracestate"], [String](), "tracestate belongs to the trace it came with")
    }

    /// Parses `raw` as an upstream response head (answering a request of `method`).
    private func upstreamHead(_ raw: String, method: HTTPMethod = .GET) throws -> UpstreamResponseHead {
        var parser = HTTP1ResponseParser()
        parser.expectResponse(noBody: method == .HEAD)
        var buffer = ByteBuffer(string: raw)
        guard case .head(let head) = try parser.next(from: &buffer) else {
            XCTFail("no head in \(raw)")
            throw HTTP1ResponseParser.Failure.truncated
        }
        return head
    }

    /// The client's head for `upstream`, as the gateway writes it, parsed back.
    private func clientHead(
        _ upstream: UpstreamResponseHead, versionMinor: Int = 1, connection: StaticString? = nil, extra: [(String, String)] = []
    ) throws -> (text: String, head: UpstreamResponseHead) {
        var out = ByteBuffer()
        let framing = HeaderRewriter.clientResponseFraming(upstream, clientVersionMinor: versionMinor)
        HeaderRewriter.writeClientResponseHead(
            upstream, framing: framing, clientVersionMinor: versionMinor, requestID: "rid", connection: connection, extra: extra,
            into: &out)
        return (String(buffer: out), try upstreamHead(String(buffer: out), method: upstream.framing == .none ? .HEAD : .GET))
    }

    func testResponseHeadersLoseHopByHopAndGainTheRequestID() throws {
        let upstream = try upstreamHead(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Internal\r\nX-Internal: 1\r\nTransfer-Encoding: chunked\r\n"
                + "X-Request-Id: upstream-chosen\r\nContent-Type: text/plain\r\nKeep-Alive: timeout=5\r\n\r\n")
        XCTAssertEqual(HeaderRewriter.clientResponseFraming(upstream, clientVersionMinor: 1), .chunked)
        let (text, client) = try clientHead(upstream)
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 200 OK\r\n"), text)
        XCTAssertEqual(client.values("transfer-encoding"), ["chunked"])
        XCTAssertEqual(client.values("x-request-id"), ["rid"])
        XCTAssertEqual(client.values("x-internal"), [])
        XCTAssertEqual(client.values("connection"), [])
        XCTAssertEqual(client.values("keep-alive"), [])
        XCTAssertEqual(client.values("content-type"), ["text/plain"])
    }

    func testResponseHeadKeepsOtherFieldsVerbatimAndAddsTheGatewaysOwn() throws {
        let upstream = try upstreamHead(
            "HTTP/1.1 404 Not Here\r\nContent-Length: 3\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nRateLimit: upstream\r\n\r\n")
        let (text, client) = try clientHead(upstream, connection: "close", extra: [("ratelimit", "\"r\";r=1;t=1")])
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 404 Not Here\r\n"), text)
        XCTAssertEqual(client.values("set-cookie"), ["a=1", "b=2"])
        XCTAssertEqual(client.values("content-length"), ["3"])
        XCTAssertEqual(client.values("ratelimit"), ["\"r\";r=1;t=1"], "the gateway's field replaces the upstream's")
        XCTAssertEqual(client.values("connection"), ["close"])
        XCTAssertFalse(client.keepAlive)
    }

    /// Kept fields are copied a run of lines at a time, as they arrived: a dropped field at the
    /// start, in the middle, at the end or everywhere leaves exactly the others, spacing and all.
    func testKeptFieldLinesAreCopiedVerbatimAroundDroppedOnes() throws {
        let cases: [(upstream: String, kept: String)] = [
            ("Connection: keep-alive\r\nA: 1\r\nB:2\r\n", "A: 1\r\nB:2\r\n"),
            ("A: 1\r\nKeep-Alive: timeout=5\r\nB:  2 \r\n", "A: 1\r\nB:  2 \r\n"),
            ("A: 1\r\nB: 2\r\nConnection: keep-alive\r\n", "A: 1\r\nB: 2\r\n"),
            ("Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n", ""),
            ("A: 1\r\nB: 2\r\n", "A: 1\r\nB: 2\r\n"),
        ]
        for (fields, kept) in cases {
            let upstream = try upstreamHead("HTTP/1.1 204 No Content\r\n" + fields + "\r\n")
            let (text, _) = try clientHead(upstream)
            XCTAssertEqual(text, "HTTP/1.1 204 No Content\r\n" + kept + "x-request-id: rid\r\n\r\n", fields)
        }
    }

    func testAnEmptyReasonPhraseGetsTheStandardOneAndAnHTTP10ClientAnHTTP10StatusLine() throws {
        let upstream = try upstreamHead("HTTP/1.1 503 \r\nContent-Length: 0\r\n\r\n")
        XCTAssertTrue(try clientHead(upstream, versionMinor: 0).text.hasPrefix("HTTP/1.0 503 Service Unavailable\r\n"))
    }

    func testResponseFramingCases() throws {
        func framing(_ raw: String, method: HTTPMethod = .GET, versionMinor: Int = 1) throws -> HeaderRewriter.ResponseFraming {
            HeaderRewriter.clientResponseFraming(try upstreamHead(raw, method: method), clientVersionMinor: versionMinor)
        }
        XCTAssertEqual(try framing("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), .contentLength)
        XCTAssertEqual(try framing("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", method: .HEAD), .noBody)
        XCTAssertEqual(try framing("HTTP/1.1 204 No Content\r\n\r\n"), .noBody)
        XCTAssertEqual(try framing("HTTP/1.1 304 Not Modified\r\n\r\n"), .noBody)
        XCTAssertEqual(try framing("HTTP/1.1 200 OK\r\n\r\n"), .chunked)
        XCTAssertEqual(try framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), .chunked)
        XCTAssertEqual(try framing("HTTP/1.1 200 OK\r\n\r\n", versionMinor: 0), .closeDelimited)
    }
}

final class HeaderNameTests: XCTestCase {
    func testClassificationIsCaseInsensitiveAndExact() {
        XCTAssertEqual(HeaderName.classify("X-Forwarded-For"), .forwardedFor)
        XCTAssertEqual(HeaderName.classify("x-forwarded-for"), .forwardedFor)
        XCTAssertEqual(HeaderName.classify("X-FORWARDED-PROTO"), .forwardedProto)
        XCTAssertEqual(HeaderName.classify("X-Forwarded-Fo"), .ordinary)
        XCTAssertEqual(HeaderName.classify("X-Forwarded-Forx"), .ordinary)
        XCTAssertEqual(HeaderName.classify("TE"), .hopByHop)
        XCTAssertEqual(HeaderName.classify("Transfer-Encoding"), .hopByHop)
        XCTAssertEqual(HeaderName.classify("Proxy-Anything"), .hopByHop)
        XCTAssertEqual(HeaderName.classify("proxy"), .ordinary)
        XCTAssertEqual(HeaderName.classify("X-Gatehouse-Peer-Id"), .gatehousePrivate)
        XCTAssertEqual(HeaderName.classify("X-Forwarded-Client-Cert"), .clientCertificate)
        XCTAssertEqual(HeaderName.classify("Connection"), .connection)
        XCTAssertEqual(HeaderName.classify("Traceparent"), .traceparent)
        XCTAssertEqual(HeaderName.classify("Content-Length"), .ordinary)
        XCTAssertEqual(HeaderName.classify(""), .ordinary)
        // Non-letters must not be folded: '[' is 'Z' + 1, '{' is 'z' + 1.
        XCTAssertEqual(HeaderName.classify("x-real-i{"), .ordinary)
    }
}
