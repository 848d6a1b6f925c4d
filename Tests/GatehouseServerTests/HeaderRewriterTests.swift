import GatehouseCore
import NIOHTTP1
import XCTest
@testable import GatehouseServer

final class HeaderRewriterTests: XCTestCase {
    private func rewrite(_ pairs: [(String, String)], trusted: Bool = false, framing: RequestValidator.BodyFraming = .none)
        -> HeaderRewriter.Forwarded
    {
        var random = FastRandom()
        return HeaderRewriter.upstreamRequestHeaders(
            from: HTTPHeaders(pairs),
            context: .init(clientIP: "192.0.2.7", clientIsTrustedProxy: trusted, scheme: "https", host: "api.example", framing: framing),
            requestID: RequestIdentifiers.newRequestID(using: &random), random: &random
        )
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

    func testResponseHeadersLoseHopByHopAndGainTheRequestID() {
        let upstream = HTTPResponseHead(version: .http1_1, status: .ok, headers: HTTPHeaders([
            ("Connection", "keep-alive, X-Internal"), ("X-Internal", "1"), ("Transfer-Encoding", "chunked"),
            ("X-Request-Id", "upstream-chosen"), ("Content-Type", "text/plain"),
        ]))
        let (headers, framing) = HeaderRewriter.clientResponseHeaders(from: upstream, requestMethod: .GET, clientVersion: .http1_1, requestID: "rid")
        XCTAssertEqual(framing, .chunked)
        XCTAssertEqual(headers["transfer-encoding"], ["chunked"])
        XCTAssertEqual(headers["x-request-id"], ["rid"])
        XCTAssertEqual(headers["x-internal"], [String]())
        XCTAssertEqual(headers["connection"], [String]())
        XCTAssertEqual(headers["content-type"], ["text/plain"])
    }

    func testResponseFramingCases() {
        func framing(_ status: HTTPResponseStatus, _ pairs: [(String, String)], method: HTTPMethod = .GET, version: HTTPVersion = .http1_1)
            -> HeaderRewriter.ResponseFraming
        {
            HeaderRewriter.clientResponseHeaders(
                from: HTTPResponseHead(version: .http1_1, status: status, headers: HTTPHeaders(pairs)),
                requestMethod: method, clientVersion: version, requestID: "r"
            ).framing
        }
        XCTAssertEqual(framing(.ok, [("Content-Length", "5")]), .contentLength)
        XCTAssertEqual(framing(.ok, [("Content-Length", "5")], method: .HEAD), .noBody)
        XCTAssertEqual(framing(.noContent, []), .noBody)
        XCTAssertEqual(framing(.notModified, []), .noBody)
        XCTAssertEqual(framing(.ok, []), .chunked)
        XCTAssertEqual(framing(.ok, [], version: .http1_0), .closeDelimited)
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
