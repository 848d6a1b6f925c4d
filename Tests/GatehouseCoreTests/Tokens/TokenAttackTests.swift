import Crypto
import Foundation
import XCTest
@testable import GatehouseCore

/// The attack classes of issue 4, each with hand-built tokens.
final class TokenAttackTests: XCTestCase {
    private func verifier(algorithms: Set<TokenAlgorithm> = Set(TokenAlgorithm.allCases)) async throws -> TokenVerifier {
        TokenVerifier(issuers: [try standardIssuer(keys: try await standardKeySet(), algorithms: algorithms)])
    }

    private func verify(_ token: String, _ verifier: TokenVerifier) -> ReasonCode {
        verifier.verify(token: token, requirement: anyRoute, clientCertificateDER: nil, now: testNow).reason
    }

    func testAlgNoneInAnySpellingIsRefused() async throws {
        let verifier = try await verifier()
        for alg in ["none", "None", "NONE", "nOnE"] {
            let unsigned = b64(header(alg: alg, kid: nil)) + "." + b64(payload()) + "."
            XCTAssertEqual(verify(unsigned, verifier), .tokenAlgorithmNotAllowed, alg)
            let withKid = b64(header(alg: alg, kid: "rsa")) + "." + b64(payload()) + "."
            XCTAssertEqual(verify(withKid, verifier), .tokenAlgorithmNotAllowed, alg)
        }
        XCTAssertNil(TokenAlgorithm(rawValue: "none"), "an allow-list cannot even hold none")
    }

    /// The classic: sign HS256 with the issuer's RSA public key (PEM) as the HMAC secret.
    func testRS256PublicKeyIsNeverAnHMACSecret() async throws {
        let pem = Array(TestKeys.rsa.publicKey.pemRepresentation.utf8)
        let confused = { (kid: String?) in
            makeToken(header: header(alg: "HS256", kid: kid), payload: payload(), signer: .hs256(pem))
        }
        // An issuer that allows only RS256 refuses the algorithm outright.
        let rsaOnly = try await verifier(algorithms: [.rs256])
        XCTAssertEqual(verify(confused("rsa"), rsaOnly), .tokenAlgorithmNotAllowed)
        XCTAssertEqual(verify(confused(nil), rsaOnly), .tokenAlgorithmNotAllowed)

        // An issuer that allows HS256 (it has an explicit secret) still never uses the RSA key for it.
        let both = try await verifier()
        XCTAssertEqual(verify(confused("rsa"), both), .tokenAlgorithmNotAllowed)
        XCTAssertEqual(verify(confused("hs"), both), .tokenInvalidSignature)
        XCTAssertEqual(verify(confused(nil), both), .tokenInvalidSignature)

        // HS256 cannot be allowed for an issuer whose only keys come from a JWKS...
        let jwksOnly = try await TokenKeySet.load(jwksJSON: TestJWK.set(TestJWK.rsa(TestKeys.rsa, kid: "rsa")))
        XCTAssertThrowsError(try standardIssuer(keys: jwksOnly, algorithms: [.rs256, .hs256])) { error in
            XCTAssertEqual(error as? TokenIssuer.ConfigurationError, .hmacWithoutSecret)
        }
        // ...and a JWKS never yields an HMAC key, whatever its alg or kty says.
        let sneaky = try await TokenKeySet.load(
            jwksJSON: TestJWK.set(
                TestJWK.rsa(TestKeys.rsa, kid: "rsa"), TestJWK.rsa(TestKeys.rsa, kid: "as-hmac", alg: "HS256"),
                #"{"kty":"oct","kid":"oct","k":"\#(b64(pem))","alg":"HS256"}"#
            ))
        XCTAssertFalse(sneaky.keys.contains { $0.algorithm.isHMAC })
        XCTAssertEqual(sneaky.skipped.count, 2, "\(sneaky.skipped)")
    }

    func testUnknownAndInjectedKIDsNeverFallBackToAKey() async throws {
        let verifier = try await verifier()
        for kid in ["../../../../dev/null", "' OR '1'='1", "", "rsa\\u0000", "rsa ", "http://evil.example/key"] {
            let token = makeToken(header: header(alg: "RS256", kid: kid), payload: payload(), signer: .rs256(TestKeys.rsa))
            XCTAssertEqual(verify(token, verifier), .tokenUnknownKID, kid)
        }
        // A kid of another issuer's key set: key sets are per issuer.
        let otherKeys = try await TokenKeySet.load(jwksJSON: TestJWK.set(TestJWK.rsa(TestKeys.rsaOther, kid: "other-rsa")))
        let other = try TokenIssuer(name: "other", issuer: "https://other.example", audiences: ["payments"], algorithms: [.rs256], keys: otherKeys)
        let two = TokenVerifier(issuers: [try standardIssuer(keys: try await standardKeySet()), other])
        let crossed = makeToken(header: header(alg: "RS256", kid: "other-rsa"), payload: payload(), signer: .rs256(TestKeys.rsaOther))
        XCTAssertEqual(
            two.verify(token: crossed, requirement: TokenRequirement(issuers: ["idp", "other"]), clientCertificateDER: nil, now: testNow).reason,
            .tokenUnknownKID)
    }

    func testSingleKeyIssuerAcceptsATokenWithoutKid() async throws {
        let keys = try await TokenKeySet.load(jwksJSON: TestJWK.set(TestJWK.rsa(TestKeys.rsa, kid: "only", alg: nil)))
        let verifier = TokenVerifier(issuers: [try standardIssuer(keys: keys, algorithms: TokenIssuer.defaultAlgorithms(for: keys))])
        let token = makeToken(header: header(alg: "PS256", kid: nil), payload: payload(), signer: .ps256(TestKeys.rsa))
        XCTAssertEqual(verify(token, verifier), .allowed)
        let forged = makeToken(header: header(alg: "RS256", kid: nil), payload: payload(), signer: .rs256(TestKeys.rsaOther))
        XCTAssertEqual(verify(forged, verifier), .tokenInvalidSignature)
    }

    /// `jku`, `x5u`, `jwk`, `x5c` are ignored: the configured key decides, whatever the token points at.
    func testKeyURLAndEmbeddedKeyHeadersAreIgnored() async throws {
        let verifier = try await verifier()
        let attackerJWK = TestJWK.rsa(TestKeys.rsaOther, kid: "rsa")
        let pointers = [
            #""jku":"https://evil.example/jwks.json""#, #""x5u":"https://evil.example/cert.pem""#,
            #""jwk":\#(attackerJWK)"#, #""x5c":["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]"#,
        ]
        for pointer in pointers {
            let legit = makeToken(header: header(alg: "RS256", kid: "rsa", extra: pointer), payload: payload(), signer: .rs256(TestKeys.rsa))
            XCTAssertEqual(verify(legit, verifier), .allowed, pointer)
            let attacker = makeToken(header: header(alg: "RS256", kid: "rsa", extra: pointer), payload: payload(), signer: .rs256(TestKeys.rsaOther))
            XCTAssertEqual(verify(attacker, verifier), .tokenInvalidSignature, pointer)
            let attackerKid = makeToken(header: header(alg: "RS256", kid: "evil", extra: pointer), payload: payload(), signer: .rs256(TestKeys.rsaOther))
            XCTAssertEqual(verify(attackerKid, verifier), .tokenUnknownKID, pointer)
        }
    }

    func testAnyCritHeaderIsMalformed() async throws {
        let verifier = try await verifier()
        for crit in [#""crit":["exp"],"exp":1"#, #""crit":[]"#, #""crit":["b64"],"b64":false"#, #""crit":"x""#] {
            let token = makeToken(header: header(alg: "RS256", kid: "rsa", extra: crit), payload: payload(), signer: .rs256(TestKeys.rsa))
            XCTAssertEqual(verify(token, verifier), .tokenMalformed, crit)
        }
    }

    /// Foundation would keep one of the two; the gateway refuses the token (validly signed or not).
    func testDuplicateKeysInHeaderOrPayloadAreMalformed() async throws {
        let verifier = try await verifier()
        let good = payload()
        let duplicates = [
            (header(alg: "RS256", kid: "rsa", extra: #""alg":"none""#), good),
            (header(alg: "RS256", kid: "rsa", extra: #""kid":"other""#), good),
            (header(alg: "RS256", kid: "rsa"), String(good.dropLast()) + #","sub":"admin"}"#),
            (header(alg: "RS256", kid: "rsa"), String(good.dropLast()) + #","s\u0075b":"admin"}"#),
            (header(alg: "RS256", kid: "rsa"), String(good.dropLast()) + #","iss":"https://idp.example"}"#),
            (header(alg: "RS256", kid: "rsa"), String(good.dropLast()) + #","cnf":{"x5t#S256":"a","x5t#S256":"b"}}"#),
        ]
        for (head, body) in duplicates {
            let token = makeToken(header: head, payload: body, signer: .rs256(TestKeys.rsa))
            XCTAssertEqual(verify(token, verifier), .tokenMalformed, head + body)
        }
    }

    func testECDSASignatureWithRAndSZeroFails() async throws {
        let verifier = try await verifier()
        let cases: [(String, String, Int)] = [("ES256", "ec", 64), ("ES384", "ec384", 96), ("EdDSA", "ed", 64)]
        for (alg, kid, length) in cases {
            let zero = makeToken(header: header(alg: alg, kid: kid), payload: payload(), signer: .raw(Array(repeating: 0, count: length)))
            XCTAssertEqual(verify(zero, verifier), .tokenInvalidSignature, alg)
        }
        // Wrong lengths (a DER signature, a truncated one) fail too, without a crash.
        let der = makeToken(header: header(alg: "ES256", kid: "ec"), payload: payload(), signer: .raw(Array(try TestKeys.p256.signature(for: Data("x".utf8)).derRepresentation)))
        XCTAssertEqual(verify(der, verifier), .tokenInvalidSignature)
        let short = makeToken(header: header(alg: "ES256", kid: "ec"), payload: payload(), signer: .raw([1, 2, 3]))
        XCTAssertEqual(verify(short, verifier), .tokenInvalidSignature)
        // r = s = n (the P-256 group order) is out of range as well.
        let n: [UInt8] = [
            0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
            0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
        ]
        let order = makeToken(header: header(alg: "ES256", kid: "ec"), payload: payload(), signer: .raw(n + n))
        XCTAssertEqual(verify(order, verifier), .tokenInvalidSignature)
    }

    func testOverLongTokensAreRefusedBeforeParsing() async throws {
        let verifier = try await verifier()
        let fits = makeToken(header: header(alg: "RS256", kid: "rsa"), payload: payload(["pad": "\"" + String(repeating: "p", count: 5600) + "\""]), signer: .rs256(TestKeys.rsa))
        XCTAssertLessThanOrEqual(fits.utf8.count, TokenVerifier.maxTokenLength)
        XCTAssertEqual(verify(fits, verifier), .allowed)
        let long = makeToken(header: header(alg: "RS256", kid: "rsa"), payload: payload(["pad": "\"" + String(repeating: "p", count: 6500) + "\""]), signer: .rs256(TestKeys.rsa))
        XCTAssertGreaterThan(long.utf8.count, TokenVerifier.maxTokenLength)
        XCTAssertEqual(verify(long, verifier), .tokenMalformed, "validly signed, still too long")
        XCTAssertEqual(verify(String(repeating: "A", count: 1_000_000), verifier), .tokenMalformed)
        let deep = String(repeating: "[", count: 2000) + String(repeating: "]", count: 2000)
        let nested = makeToken(header: header(alg: "RS256", kid: "rsa"), payload: String(payload().dropLast()) + #","x":\#(deep)}"#, signer: .rs256(TestKeys.rsa))
        XCTAssertEqual(verify(nested, verifier), .tokenMalformed, "nesting is bounded too")
    }
}
