import Foundation
import XCTest
@testable import GatehouseCore

final class TokenKeySetTests: XCTestCase {
    func testEachKeyKeepsItsKidAndAlgorithm() async throws {
        let keys = try await standardKeySet()
        let pairs = Set(keys.keys.map { "\($0.kid ?? "-") \($0.algorithm.rawValue)" })
        XCTAssertEqual(pairs, [
            "rsa RS256", "rsa RS384", "rsa RS512", "rsa PS256",  // no alg on the JWK: its family
            "ec ES256", "ec384 ES384", "ed EdDSA", "hs HS256",
        ])
        XCTAssertEqual(keys.skipped, [])
        XCTAssertEqual(TokenIssuer.defaultAlgorithms(for: keys), [.rs256, .rs384, .rs512, .ps256, .es256, .es384, .edDSA])
    }

    func testUnusableEntriesAreSkippedNotFatal() async throws {
        let keys = try await TokenKeySet.load(
            jwksJSON: TestJWK.set(
                TestJWK.rsa(TestKeys.rsa, kid: "sig"),
                #"{"kty":"RSA","kid":"enc","use":"enc","n":"AQAB","e":"AQAB"}"#,
                #"{"kty":"oct","kid":"oct","k":"c2VjcmV0"}"#,
                #"{"kty":"EC","kid":"p521","crv":"P-521","x":"AA","y":"AA"}"#,
                #"{"kty":"EC","kid":"bad","crv":"P-256","x":"AA","y":"AA","alg":"ES256"}"#,
                #"{"kty":"RSA","kid":"oaep","alg":"RSA-OAEP","n":"AQAB","e":"AQAB"}"#,
                #"{"kty":"RSA","kid":"small","alg":"RS256","n":"\#(b64([0x80] + Array(repeating: 1, count: 127)))","e":"AQAB"}"#
            ))
        XCTAssertEqual(keys.keys.map(\.kid), ["sig"])
        XCTAssertEqual(keys.skipped.count, 6, "\(keys.skipped)")
        XCTAssertTrue(keys.skipped.contains { $0.contains("1024 bits") }, "\(keys.skipped)")
    }

    func testDocumentErrors() async {
        await assertThrows(.invalidJWKS(""), jwks: Array("not json".utf8))
        await assertThrows(.invalidJWKS(""), jwks: Array(#"{"kids":[]}"#.utf8))
        await assertThrows(.noUsableKeys(skipped: []), jwks: Array(#"{"keys":[]}"#.utf8))
        await assertThrows(.noUsableKeys(skipped: []), jwks: TestJWK.set(#"{"kty":"oct","k":"AA"}"#))
        await assertThrows(.duplicateKeyID("k"), jwks: TestJWK.set(TestJWK.rsa(TestKeys.rsa, kid: "k"), TestJWK.rsa(TestKeys.rsaOther, kid: "k")))
        do {
            _ = try await TokenKeySet.load(jwksJSON: nil, hmacSecret: Array(repeating: 1, count: 31))
            XCTFail("short HMAC secret accepted")
        } catch {
            XCTAssertEqual(error, .hmacSecretTooShort(31))
        }
    }

    private func assertThrows(_ expected: TokenKeySetError, jwks: [UInt8], line: UInt = #line) async {
        do {
            _ = try await TokenKeySet.load(jwksJSON: jwks)
            XCTFail("accepted", line: line)
        } catch {
            // Compare the case, not the detail text.
            XCTAssertEqual(String(describing: error).prefix(while: { $0 != "(" }), String(describing: expected).prefix(while: { $0 != "(" }), line: line)
        }
    }

    func testIssuerConfigurationErrors() async throws {
        let keys = try await standardKeySet()
        XCTAssertThrowsError(try TokenIssuer(name: "i", issuer: "x", audiences: [], algorithms: [.rs256], keys: keys))
        XCTAssertThrowsError(try TokenIssuer(name: "i", issuer: "x", audiences: ["a"], algorithms: [], keys: keys))
        XCTAssertThrowsError(try TokenIssuer(name: "i", issuer: "x", audiences: ["a"], algorithms: [.hs256], keys: .empty))
        XCTAssertThrowsError(try TokenIssuer(name: "i", issuer: "x", audiences: ["a"], algorithms: [.rs256], keys: keys, clockSkew: -1))
        XCTAssertThrowsError(try TokenIssuer(name: "i", issuer: "x", audiences: ["a"], algorithms: [.rs256], keys: keys, maxLifetime: 0))
        let issuer = try TokenIssuer(name: "i", issuer: "x", audiences: ["a"], algorithms: [.rs256], keys: keys)
        XCTAssertEqual(issuer.clockSkew, 30)
    }

    func testAnIssuerWithoutKeysRefusesEveryToken() throws {
        let issuer = try standardIssuer(keys: .empty, algorithms: [.rs256])
        let token = makeToken(header: header(alg: "RS256", kid: nil), payload: payload(), signer: .rs256(TestKeys.rsa))
        XCTAssertEqual(TokenVerifier(issuers: [issuer]).verify(token: token, requirement: anyRoute, clientCertificateDER: nil, now: testNow).reason, .tokenUnknownKID)
    }
}

final class StrictJSONTests: XCTestCase {
    private func parse(_ text: String) -> Result<JSONValue, StrictJSON.Failure> { StrictJSON.parse(Array(text.utf8)) }

    func testValues() throws {
        XCTAssertEqual(try parse(#" {"a":[1,-2.5,true,false,null,"x\n\u00e9\ud83d\ude00"],"b":{}} "#).get(), .object([
            "a": .array([.integer(1), .number(-2.5), .bool(true), .bool(false), .null, .string("x\né😀")]), "b": .object([:]),
        ]))
        XCTAssertEqual(try parse("12345678901234").get(), .integer(12_345_678_901_234))
        XCTAssertEqual(try parse("1e3").get(), .number(1000))
        XCTAssertTrue(JSONValue.integer(3).matches(.number(3.0)))
        XCTAssertFalse(JSONValue.integer(3).matches(.string("3")))
    }

    func testRejects() {
        for bad in [
            #"{"a":1,"a":2}"#, #"{"a":{"b":1,"b":1}}"#, #"{"a":1,"\u0061":2}"#, "{}x", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "+1",
            "\"\u{1}\"", #""\ud800""#, #""\x""#, "'a'", "NaN", "1e999", "", "tru",
            String(repeating: "[", count: 40) + String(repeating: "]", count: 40),
        ] {
            if case .success = parse(bad) { XCTFail("accepted \(bad)") }
        }
        if case .failure(.duplicateKey(let key)) = parse(#"{"sub":"a","sub":"b"}"#) {
            XCTAssertEqual(key, "sub")
        } else {
            XCTFail("duplicate not named")
        }
    }

    func testBase64URLIsStrict() {
        XCTAssertEqual(Base64URL.decode(Array("aGk".utf8)), Array("hi".utf8))
        XCTAssertNil(Base64URL.decode(Array("aGk=".utf8)), "padding")
        XCTAssertNil(Base64URL.decode(Array("aGl".utf8)), "non-zero trailing bits")
        XCTAssertNil(Base64URL.decode(Array("a+k".utf8)), "base64, not base64url")
        XCTAssertNil(Base64URL.decode(Array("a".utf8)))
        XCTAssertEqual(Base64URL.encode([0xFB, 0xFF]), "-_8")
        for length in 0..<20 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 37 + 11) }
            XCTAssertEqual(Base64URL.decode(Array(Base64URL.encode(bytes).utf8)), bytes)
        }
    }
}

/// A pinned `jwks_file` next to a fetched `jwks_uri`, and a fetched set that is unavailable.
final class FetchedKeySetTests: XCTestCase {
    private let now = testNow

    private func token(kid: String, signer: TestSigner) -> String {
        makeToken(header: header(alg: "ES256", kid: kid), payload: payload(), signer: signer)
    }

    func testMergedSetsServeBothAndTheFirstWinsAClash() async throws {
        let pinned = try await TokenKeySet.load(jwksJSON: TestJWK.set(TestJWK.p256(TestKeys.p256, kid: "pinned")))
        let fetched = try await TokenKeySet.load(
            jwksJSON: TestJWK.set(TestJWK.p256(TestKeys.p256Other, kid: "pinned"), TestJWK.rsa(TestKeys.rsa, kid: "rsa")))
        let merged = pinned.merged(with: fetched)
        XCTAssertEqual(merged.keys.map { "\($0.kid!) \($0.algorithm.rawValue)" }, ["pinned ES256", "rsa RS256"])
        XCTAssertEqual(merged.skipped, ["kid pinned ES256: already in the first set"])
        XCTAssertTrue(merged.isComplete)

        let verifier = TokenVerifier(issuers: [try standardIssuer(keys: merged, algorithms: [.es256, .rs256])])
        XCTAssertEqual(verifier.verify(token: token(kid: "pinned", signer: .es256(TestKeys.p256)), requirement: anyRoute, clientCertificateDER: nil, now: now).reason, .allowed)
        XCTAssertEqual(
            verifier.verify(token: token(kid: "pinned", signer: .es256(TestKeys.p256Other)), requirement: anyRoute, clientCertificateDER: nil, now: now).reason,
            .tokenInvalidSignature, "a fetched key cannot shadow a pinned one")
    }

    func testAnUnknownKidIsAnOutageWhileTheSetIsIncomplete() async throws {
        let pinned = try await TokenKeySet.load(jwksJSON: TestJWK.set(TestJWK.p256(TestKeys.p256, kid: "pinned")))
        let verifier = TokenVerifier(issuers: [try standardIssuer(keys: pinned.merged(with: .unavailable), algorithms: [.es256, .rs256])])
        XCTAssertEqual(verifier.verify(token: token(kid: "pinned", signer: .es256(TestKeys.p256)), requirement: anyRoute, clientCertificateDER: nil, now: now).reason, .allowed, "pinned keys keep serving")
        let refused = verifier.verify(token: token(kid: "fetched", signer: .es256(TestKeys.p256Other)), requirement: anyRoute, clientCertificateDER: nil, now: now)
        guard case .failure(let refusal) = refused else { return XCTFail("accepted") }
        XCTAssertEqual(refusal.reason, .tokenKeysUnavailable)
        XCTAssertEqual(refusal.issuerName, "idp", "names the issuer whose keys to refetch")

        let complete = TokenVerifier(issuers: [try standardIssuer(keys: pinned, algorithms: [.es256, .rs256])])
        guard case .failure(let unknown) = complete.verify(token: token(kid: "fetched", signer: .es256(TestKeys.p256Other)), requirement: anyRoute, clientCertificateDER: nil, now: now)
        else { return XCTFail("accepted") }
        XCTAssertEqual(unknown.reason, .tokenUnknownKID)
        XCTAssertEqual(unknown.issuerName, "idp")

        let nothing = TokenVerifier(issuers: [try standardIssuer(keys: .unavailable, algorithms: [.es256, .rs256])])
        XCTAssertEqual(nothing.verify(token: token(kid: "pinned", signer: .es256(TestKeys.p256)), requirement: anyRoute, clientCertificateDER: nil, now: now).reason, .tokenKeysUnavailable)
    }
}
