import GatehouseCore
import NIOHTTP1
import XCTest
@testable import GatehouseServer

final class RequestValidatorTests: XCTestCase {
    private let validator = RequestValidator(limits: RequestLimits())

    private func head(_ method: HTTPMethod, uri: String = "/", version: HTTPVersion = .http1_1, _ pairs: [(String, String)])
        -> HTTPRequestHead
    {
        HTTPRequestHead(version: version, method: method, uri: uri, headers: HTTPHeaders(pairs))
    }

    private func head(version: HTTPVersion = .http1_1, _ pairs: [(String, String)]) -> HTTPRequestHead {
        head(.GET, version: version, pairs)
    }

    private func reason(_ request: HTTPRequestHead) -> ReasonCode? {
        if case .failure(let rejection) = validator.validate(request) { return rejection.reason }
        return nil
    }

    func testFramingIsUnambiguousOrRefused() {
        XCTAssertEqual(reason(head(.POST, [("Host", "a"), ("Content-Length", "1"), ("Transfer-Encoding", "chunked")])), .requestAmbiguousFraming)
        XCTAssertEqual(reason(head(.POST, [("Host", "a"), ("Content-Length", "1"), ("Content-Length", "1")])), .requestAmbiguousFraming)
        XCTAssertEqual(reason(head(.POST, [("Host", "a"), ("Content-Length", "+1")])), .requestAmbiguousFraming)
        XCTAssertEqual(reason(head(.POST, [("Host", "a"), ("Content-Length", "")])), .requestAmbiguousFraming)
        XCTAssertEqual(reason(head(.POST, [("Host", "a"), ("Transfer-Encoding", "chunked, gzip")])), .requestAmbiguousFraming)
        XCTAssertEqual(reason(head(.POST, [("Host", "a"), ("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")])), .requestAmbiguousFraming)
        XCTAssertEqual(reason(head(.POST, version: .http1_0, [("Transfer-Encoding", "chunked")])), .requestAmbiguousFraming)
        guard case .success(let ok) = validator.validate(head(.POST, [("Host", "a"), ("Transfer-Encoding", " Chunked ")])) else {
            return XCTFail("chunked must be accepted")
        }
        XCTAssertEqual(ok.framing, .chunked)
        guard case .success(let empty) = validator.validate(head(.POST, [("Host", "a"), ("Content-Length", "0")])) else {
            return XCTFail("zero length must be accepted")
        }
        XCTAssertEqual(empty.framing, .none)
    }

    func testHostRules() {
        XCTAssertEqual(reason(head([])), .requestMalformed)
        XCTAssertNil(reason(head(version: .http1_0, [])))
        XCTAssertEqual(reason(head([("Host", "a"), ("Host", "b")])), .requestMalformed)
        XCTAssertEqual(reason(head([("Host", "user@a")])), .requestMalformed)
        XCTAssertEqual(reason(head([("Host", "a b")])), .requestMalformed)
        XCTAssertEqual(reason(head([("Host", "a:99999999")])), .requestMalformed)
        XCTAssertNil(reason(head([("Host", "[::1]:8443")])))
        XCTAssertNil(reason(head([("Host", "api.example.com:443")])))
    }

    func testLimitsAndExpectations() {
        var limits = RequestLimits()
        limits.maxHeaderCount = 3
        limits.maxURIBytes = 10
        limits.maxBodyBytes = 100
        let strict = RequestValidator(limits: limits)
        func reason(_ request: HTTPRequestHead) -> ReasonCode? {
            if case .failure(let rejection) = strict.validate(request) { return rejection.reason }
            return nil
        }
        XCTAssertEqual(reason(head(.GET, uri: "/0123456789", [("Host", "a")])), .requestURITooLong)
        XCTAssertEqual(reason(head([("Host", "a"), ("A", "1"), ("B", "2"), ("C", "3")])), .requestHeadersTooLarge)
        XCTAssertNil(reason(head(.POST, [("Host", "a"), ("Content-Length", "101")])), "the body limit is the route's, checked after routing")
        XCTAssertEqual(reason(head([("Host", "a"), ("Expect", "200-ok")])), .requestExpectationFailed)
        XCTAssertNil(reason(head([("Host", "a"), ("Expect", "100-Continue")])))
        XCTAssertEqual(reason(head(.CONNECT, uri: "a:443", [("Host", "a:443")])), .requestUnsupportedMethod)
        XCTAssertEqual(reason(head([("Host", "a"), ("X", "a\u{7F}b")])), .requestMalformed)
    }
}
