import GatehouseCore
import NIOHTTP1
import XCTest
@testable import GatehouseServer

/// Where the token comes from, byte by byte: one header, `Bearer` in any case, one space, a
/// token without spaces; anything else is `token.malformed` (or `token.missing`).
final class BearerTokenTests: XCTestCase {
    /// As the data path does it: the validator's pass over the fields finds `Authorization`.
    private func extract(_ pairs: [(String, String)], source: TokenSource = .authorizationBearer) -> BearerToken.Extracted {
        let host = pairs.contains { $0.0.lowercased() == "host" } ? [] : [("Host", "a")]
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: HTTPHeaders(host + pairs))
        guard case .success(let validated) = RequestValidator(limits: RequestLimits()).validate(head) else {
            XCTFail("the validator refused \(pairs)")
            return .missing
        }
        return BearerToken.extract(from: head.headers, authorization: validated.authorization, source: source)
    }

    func testAuthorizationBearer() {
        XCTAssertEqual(extract([("Authorization", "Bearer abc.def.ghi")]), .token("abc.def.ghi"))
        XCTAssertEqual(extract([("authorization", "bearer abc")]), .token("abc"))
        XCTAssertEqual(extract([("AUTHORIZATION", "BEARER abc")]), .token("abc"))
        XCTAssertEqual(extract([("Host", "a")]), .missing)
        XCTAssertEqual(extract([]), .missing)
    }

    func testAnythingButOneBearerTokenIsMalformed() {
        for value in ["Bearer", "Bearer ", "Bearer  abc", "Bearer abc def", "Basic abc", "Bearerabc", " Bearer abc", "Bearer\tabc"] {
            XCTAssertEqual(extract([("Authorization", value)]), .malformed, value)
        }
        XCTAssertEqual(extract([("Authorization", "Bearer a"), ("authorization", "Bearer a")]), .malformed, "which one would the upstream read?")
    }

    func testANamedHeaderCarriesTheWholeValue() {
        let source = TokenSource.header("x-token")
        XCTAssertEqual(extract([("X-Token", "abc.def")], source: source), .token("abc.def"))
        XCTAssertEqual(extract([("Authorization", "Bearer abc")], source: source), .missing)
        XCTAssertEqual(extract([("x-token", "")], source: source), .malformed)
        XCTAssertEqual(extract([("x-token", "a b")], source: source), .malformed)
        XCTAssertEqual(extract([("x-token", "a"), ("X-TOKEN", "a")], source: source), .malformed)
    }

    func testALongTokenIsReturnedWhole() {
        let token = String(repeating: "eyJhbGciOiJSUzI1NiJ9", count: 400)
        XCTAssertEqual(extract([("Authorization", "Bearer " + token)]), .token(token[...]))
    }
}
