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

    /// Whether the request has a Connection field, in any case, however many: the data path
    /// searches the fields for its tokens (and keep-alive) only then.
    func testItSaysWhetherTheRequestHasAConnectionField() {
        func has(_ pairs: [(String, String)]) -> Bool? {
            guard case .success(let validated) = validator.validate(head([("Host", "a")] + pairs)) else { return nil }
            return validated.hasConnectionField
        }
        XCTAssertEqual(has([]), false)
        XCTAssertEqual(has([("Connectionx", "close"), ("Keep-Alive", "timeout=5")]), false)
        XCTAssertEqual(has([("Connection", "close")]), true)
        XCTAssertEqual(has([("X-A", "1"), ("CONNECTION", "x-a")]), true)
        XCTAssertEqual(has([("connection", "keep-alive"), ("connection", "x-b")]), true)
    }

    /// The same pass finds the Authorization field a route's bearer token is read from.
    func testItFindsTheAuthorizationFieldInAnyCaseAndSaysWhenItIsRepeated() {
        func authorization(_ pairs: [(String, String)]) -> FieldOccurrence? {
            guard case .success(let validated) = validator.validate(head([("Host", "a")] + pairs)) else { return nil }
            return validated.authorization
        }
        XCTAssertEqual(authorization([("Authorizatio", "Bearer x")]), .absent)
        XCTAssertEqual(authorization([("AUTHORIZATION", "Bearer x"), ("X-A", "1")]), .once("Bearer x"))
        XCTAssertEqual(authorization([("authorization", "Bearer x"), ("Authorization", "Bearer x")]), .repeated)
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

    /// The scanner reads eight bytes at a time: a bad byte is found at every offset, in every
    /// lane, in values of every length around the word size, and good bytes are never refused.
    func testFieldValuesAreCleanAtEveryOffset() {
        let good: [UInt8] = [0x09, 0x20, 0x21, 0x41, 0x7E, 0x80, 0xC3, 0xFF]
        let bad: [UInt8] = [0x00, 0x01, 0x08, 0x0A, 0x0D, 0x1F, 0x7F]
        for length in 1...40 {
            for offset in 0..<length {
                for byte in bad {
                    var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                    bytes[offset] = byte
                    XCTAssertFalse(RequestValidator.isCleanValue(String(decoding: bytes, as: UTF8.self)), "0x\(String(byte, radix: 16)) at \(offset) of \(length)")
                }
            }
            let value = (0..<length).map { good[$0 % good.count] }
            // Arbitrary bytes >= 0x80 are repaired by String(decoding:); build the value from valid UTF-8.
            let text = String(decoding: value.filter { $0 < 0x80 }, as: UTF8.self) + String(repeating: "é", count: length % 3)
            XCTAssertTrue(RequestValidator.isCleanValue(text), "\(length)")
        }
        XCTAssertTrue(RequestValidator.isCleanValue(""))
        XCTAssertTrue(RequestValidator.isCleanValue("Bearer " + String(repeating: "eyJhbGciOiJSUzI1NiJ9.", count: 40)))
    }
}
