import Crypto
import Foundation
import XCTest
@testable import GatehouseCore

/// One test per reason code the verifier returns, and the accepted path for every algorithm.
final class TokenVerifierTests: XCTestCase {
    private func verifier(maxLifetime: TimeInterval? = nil, algorithms: Set<TokenAlgorithm> = Set(TokenAlgorithm.allCases)) async throws -> TokenVerifier {
        TokenVerifier(issuers: [try standardIssuer(keys: try await standardKeySet(), algorithms: algorithms, maxLifetime: maxLifetime)])
    }

    private func verify(
        _ token: String, _ verifier: TokenVerifier, route: TokenRequirement = anyRoute, cert: [UInt8]? = nil, at now: Date = testNow
    ) -> Result<VerifiedToken, TokenRefusal> {
        verifier.verify(token: token, requirement: route, clientCertificateDER: cert, now: now)
    }

    private func rs256(_ claims: [String: String] = [:], kid: String? = "rsa") -> String {
        makeToken(header: header(alg: "RS256", kid: kid), payload: payload(claims), signer: .rs256(TestKeys.rsa))
    }

    func testEveryAlgorithmVerifiesWithItsKey() async throws {
        let verifier = try await verifier()
        let cases: [(String, String, TestSigner)] = [
            ("RS256", "rsa", .rs256(TestKeys.rsa)), ("RS384", "rsa", .rs384(TestKeys.rsa)),
            ("RS512", "rsa", .rs512(TestKeys.rsa)), ("PS256", "rsa", .ps256(TestKeys.rsa)),
            ("ES256", "ec", .es256(TestKeys.p256)), ("ES384", "ec384", .es384(TestKeys.p384)),
            ("EdDSA", "ed", .edDSA(TestKeys.ed25519)), ("HS256", "hs", .hs256(TestKeys.hmacSecret)),
        ]
        for (alg, kid, signer) in cases {
            let token = makeToken(header: header(alg: alg, kid: kid), payload: payload(), signer: signer)
            let result = verify(token, verifier)
            XCTAssertEqual(result.reason, .allowed, "\(alg): \(result)")
        }
    }

    func testVerifiedTokenCarriesTheClaimsLaterStagesNeed() async throws {
        let verifier = try await verifier()
        let result = verify(rs256(["scp": "[\"admin\"]"]), verifier)
        let token = try result.get()
        XCTAssertEqual(token.issuerName, "idp")
        XCTAssertEqual(token.iss, "https://idp.example")
        XCTAssertEqual(token.sub, "alice")
        XCTAssertEqual(token.jti, "j-1")
        XCTAssertEqual(token.exp, testNow.addingTimeInterval(300))
        XCTAssertEqual(token.scopes, ["read", "write", "admin"])
        XCTAssertEqual(token.claims["env"], .string("prod"))
    }

    func testMissing() async throws {
        let verifier = try await verifier()
        XCTAssertEqual(verify("", verifier).reason, .tokenMissing)
    }

    func testMalformed() async throws {
        let verifier = try await verifier()
        let good = rs256()
        let parts = good.split(separator: ".").map(String.init)
        let signature = parts[2]
        for bad in [
            "abc", parts[0] + "." + parts[1], good + ".x", good + "=", parts[0] + "=." + parts[1] + "." + signature,
            "." + parts[1] + "." + signature, b64("[1]") + "." + parts[1] + "." + signature,
            parts[0] + "." + b64("\"str\"") + "." + signature, parts[0] + "." + b64("{\"iss\":1}") + "." + signature,
            b64("{\"alg\":1}") + "." + parts[1] + "." + signature, b64("{\"typ\":\"JWT\"}") + "." + parts[1] + "." + signature,
            b64("{\"alg\":\"RS256\",\"kid\":7}") + "." + parts[1] + "." + signature,
            parts[0] + "." + b64("{\"iss\":\"https://idp.example\"") + "." + signature,
            "a b.c.d", "é.x.y",
        ] {
            XCTAssertEqual(verify(bad, verifier).reason, .tokenMalformed, bad)
        }
    }

    func testClaimOfTheWrongTypeIsMalformed() async throws {
        let verifier = try await verifier()
        for claims in [["exp": "\"soon\""], ["aud": "[\"payments\",1]"], ["sub": "true"], ["scp": "{}"], ["cnf": "\"x\""], ["nbf": "null"]] {
            XCTAssertEqual(verify(rs256(claims), verifier).reason, .tokenMalformed, "\(claims)")
        }
    }

    func testUnknownIssuer() async throws {
        let verifier = try await verifier()
        XCTAssertEqual(verify(rs256(["iss": "\"https://evil.example\""]), verifier).reason, .tokenUnknownIssuer)
        XCTAssertEqual(verify(rs256(["iss": ""]), verifier).reason, .tokenUnknownIssuer)
        XCTAssertEqual(verify(rs256(["iss": "\"https://idp.example/\""]), verifier).reason, .tokenUnknownIssuer)
        // Configured, but not an issuer of this route.
        XCTAssertEqual(verify(rs256(), verifier, route: TokenRequirement(issuers: ["other"])).reason, .tokenUnknownIssuer)
        XCTAssertEqual(verify(rs256(), verifier, route: TokenRequirement(issuers: [])).reason, .tokenUnknownIssuer)
    }

    func testUnknownKID() async throws {
        let verifier = try await verifier()
        XCTAssertEqual(verify(rs256(kid: "rsa-2"), verifier).reason, .tokenUnknownKID)
        XCTAssertEqual(verify(rs256(kid: "RSA"), verifier).reason, .tokenUnknownKID)
        // Several asymmetric keys: a token without kid names none of them.
        XCTAssertEqual(verify(rs256(kid: nil), verifier).reason, .tokenUnknownKID)
    }

    func testAlgorithmNotAllowed() async throws {
        let rsaOnly = try await verifier(algorithms: [.rs256])
        let es = makeToken(header: header(alg: "ES256", kid: "ec"), payload: payload(), signer: .es256(TestKeys.p256))
        XCTAssertEqual(verify(es, rsaOnly).reason, .tokenAlgorithmNotAllowed)
        XCTAssertEqual(verify(rs256(), rsaOnly).reason, .allowed)
        // Unsupported algorithms, whatever the key.
        let all = try await verifier()
        for alg in ["HS512", "ES512", "PS512", "RSA-OAEP", "rs256", ""] {
            let token = makeToken(header: header(alg: alg, kid: "rsa"), payload: payload(), signer: .rs256(TestKeys.rsa))
            XCTAssertEqual(verify(token, all).reason, .tokenAlgorithmNotAllowed, alg)
        }
        // The named key is for another algorithm: an ES256 key never verifies ES384 or RS256.
        let mixed = makeToken(header: header(alg: "RS256", kid: "ec"), payload: payload(), signer: .rs256(TestKeys.rsa))
        XCTAssertEqual(verify(mixed, all).reason, .tokenAlgorithmNotAllowed)
    }

    func testInvalidSignature() async throws {
        let verifier = try await verifier()
        let good = rs256()
        let parts = good.split(separator: ".").map(String.init)
        let tampered = parts[0] + "." + b64(payload(["sub": "\"admin\""])) + "." + parts[2]
        XCTAssertEqual(verify(tampered, verifier).reason, .tokenInvalidSignature)
        let otherKey = makeToken(header: header(alg: "RS256", kid: "rsa"), payload: payload(), signer: .rs256(TestKeys.rsaOther))
        XCTAssertEqual(verify(otherKey, verifier).reason, .tokenInvalidSignature)
        let empty = parts[0] + "." + parts[1] + "."
        XCTAssertEqual(verify(empty, verifier).reason, .tokenInvalidSignature)
        let es = makeToken(header: header(alg: "ES256", kid: "ec"), payload: payload(), signer: .es256(TestKeys.p256Other))
        XCTAssertEqual(verify(es, verifier).reason, .tokenInvalidSignature)
        let hs = makeToken(header: header(alg: "HS256", kid: "hs"), payload: payload(), signer: .hs256(Array(repeating: 1, count: 32)))
        XCTAssertEqual(verify(hs, verifier).reason, .tokenInvalidSignature)
    }

    func testExpired() async throws {
        let verifier = try await verifier()
        XCTAssertEqual(verify(rs256(["exp": "\(nowSeconds - 31)"]), verifier).reason, .tokenExpired)
        XCTAssertEqual(verify(rs256(["exp": "\(nowSeconds - 30)"]), verifier).reason, .tokenExpired)
        XCTAssertEqual(verify(rs256(["exp": "\(nowSeconds - 29)"]), verifier).reason, .allowed, "within the 30 s skew")
        XCTAssertEqual(verify(rs256(["exp": ""]), verifier).reason, .tokenExpired, "no exp")
        XCTAssertEqual(verify(rs256(), verifier, at: testNow.addingTimeInterval(331)).reason, .tokenExpired)
    }

    func testNotYetValid() async throws {
        let verifier = try await verifier()
        XCTAssertEqual(verify(rs256(["nbf": "\(nowSeconds + 31)"]), verifier).reason, .tokenNotYetValid)
        XCTAssertEqual(verify(rs256(["nbf": "\(nowSeconds + 30)"]), verifier).reason, .allowed, "within the skew")
        XCTAssertEqual(verify(rs256(["iat": "\(nowSeconds + 120)"]), verifier).reason, .tokenNotYetValid)
        XCTAssertEqual(verify(rs256(["nbf": "\(nowSeconds + 3600)", "exp": "\(nowSeconds + 7200)"]), verifier).reason, .tokenNotYetValid)
    }

    func testLifetimeTooLong() async throws {
        let verifier = try await verifier(maxLifetime: 600)
        XCTAssertEqual(verify(rs256(["iat": "\(nowSeconds - 400)", "exp": "\(nowSeconds + 300)"]), verifier).reason, .tokenLifetimeTooLong)
        // No iat: the remaining life alone is over the bound.
        XCTAssertEqual(verify(rs256(["iat": "", "exp": "\(nowSeconds + 3600)"]), verifier).reason, .tokenLifetimeTooLong)
        XCTAssertEqual(verify(rs256(["iat": "\(nowSeconds - 200)", "exp": "\(nowSeconds + 300)"]), verifier).reason, .allowed)
        XCTAssertEqual(verify(rs256(["iat": "", "exp": "\(nowSeconds + 600)"]), verifier).reason, .allowed)
    }

    func testAudienceMismatch() async throws {
        let verifier = try await verifier()
        XCTAssertEqual(verify(rs256(["aud": "\"billing\""]), verifier).reason, .tokenAudienceMismatch)
        XCTAssertEqual(verify(rs256(["aud": "[\"billing\",\"crm\"]"]), verifier).reason, .tokenAudienceMismatch)
        XCTAssertEqual(verify(rs256(["aud": "[]"]), verifier).reason, .tokenAudienceMismatch)
        XCTAssertEqual(verify(rs256(["aud": ""]), verifier).reason, .tokenAudienceMismatch, "no aud")
        XCTAssertEqual(verify(rs256(["aud": "\"Payments\""]), verifier).reason, .tokenAudienceMismatch, "exact, case-sensitive")
        XCTAssertEqual(verify(rs256(["aud": "[\"billing\",\"ledger\"]"]), verifier).reason, .allowed, "one of the array suffices")
    }

    func testClaimMismatch() async throws {
        let verifier = try await verifier()
        // The issuer's required claims: a staging token cannot cross into prod.
        XCTAssertEqual(verify(rs256(["env": "\"staging\""]), verifier).reason, .tokenClaimMismatch)
        XCTAssertEqual(verify(rs256(["env": ""]), verifier).reason, .tokenClaimMismatch)
        XCTAssertEqual(verify(rs256(["env": "[\"prod\"]"]), verifier).reason, .tokenClaimMismatch)
        // The route's claims, with exact string, number and bool values.
        let route = TokenRequirement(issuers: ["idp"], claims: ["tenant": .string("acme"), "level": .integer(3), "mfa": .bool(true)])
        XCTAssertEqual(verify(rs256(["tenant": "\"acme\"", "level": "3", "mfa": "true"]), verifier, route: route).reason, .allowed)
        XCTAssertEqual(verify(rs256(["tenant": "\"acme\"", "level": "3.0", "mfa": "true"]), verifier, route: route).reason, .allowed)
        XCTAssertEqual(verify(rs256(["tenant": "\"acme\"", "level": "\"3\"", "mfa": "true"]), verifier, route: route).reason, .tokenClaimMismatch)
        XCTAssertEqual(verify(rs256(["tenant": "\"acme\"", "level": "3", "mfa": "\"true\""]), verifier, route: route).reason, .tokenClaimMismatch)
        XCTAssertEqual(verify(rs256(["tenant": "\"evil\"", "level": "3", "mfa": "true"]), verifier, route: route).reason, .tokenClaimMismatch)
        XCTAssertEqual(verify(rs256(["level": "3", "mfa": "true"]), verifier, route: route).reason, .tokenClaimMismatch)
        XCTAssertEqual(ReasonCode.tokenClaimMismatch.httpStatus, 403)
    }

    func testScopeMissing() async throws {
        let verifier = try await verifier()
        let route = TokenRequirement(issuers: ["idp"], scopes: ["read", "write"])
        XCTAssertEqual(verify(rs256(), verifier, route: route).reason, .allowed)
        XCTAssertEqual(verify(rs256(["scope": "\"read\""]), verifier, route: route).reason, .tokenScopeMissing)
        XCTAssertEqual(verify(rs256(["scope": "\"read writer\""]), verifier, route: route).reason, .tokenScopeMissing)
        XCTAssertEqual(verify(rs256(["scope": ""]), verifier, route: route).reason, .tokenScopeMissing)
        XCTAssertEqual(verify(rs256(["scope": "", "scp": "[\"write\",\"read\"]"]), verifier, route: route).reason, .allowed)
        XCTAssertEqual(verify(rs256(["scope": "\"read\"", "scp": "\"write\""]), verifier, route: route).reason, .allowed)
        XCTAssertEqual(ReasonCode.tokenScopeMissing.httpStatus, 403)
    }

    func testBindingMismatch() async throws {
        let verifier = try await verifier()
        let certificate: [UInt8] = Array("a client certificate's DER bytes".utf8)
        let other: [UInt8] = Array("another workload's certificate".utf8)
        let thumbprint = b64(SHA256.hash(data: certificate))
        let bound = rs256(["cnf": "{\"x5t#S256\":\"\(thumbprint)\"}"])
        let route = TokenRequirement(issuers: ["idp"], bind: .mtls)
        XCTAssertEqual(verify(bound, verifier, route: route, cert: certificate).reason, .allowed)
        XCTAssertEqual(verify(bound, verifier, route: route, cert: other).reason, .tokenBindingMismatch, "stolen token")
        XCTAssertEqual(verify(bound, verifier, route: route, cert: nil).reason, .tokenBindingMismatch, "no client certificate")
        XCTAssertEqual(verify(rs256(), verifier, route: route, cert: certificate).reason, .tokenBindingMismatch, "no cnf")
        let hex = rs256(["cnf": "{\"x5t#S256\":\"\(SHA256.hash(data: certificate).map { String(format: "%02x", $0) }.joined())\"}"])
        XCTAssertEqual(verify(hex, verifier, route: route, cert: certificate).reason, .tokenBindingMismatch, "hex is not base64url")
        XCTAssertEqual(verify(bound, verifier, route: anyRoute, cert: nil).reason, .allowed, "bind: none ignores cnf")
    }

    func testStatusesOfTheTokenReasons() {
        let expected: [ReasonCode: Int] = [
            .tokenMissing: 401, .tokenMalformed: 401, .tokenUnknownIssuer: 401, .tokenUnknownKID: 401,
            .tokenAlgorithmNotAllowed: 401, .tokenInvalidSignature: 401, .tokenExpired: 401, .tokenNotYetValid: 401,
            .tokenLifetimeTooLong: 401, .tokenAudienceMismatch: 401, .tokenBindingMismatch: 401, .tokenRevoked: 401,
            .tokenClaimMismatch: 403, .tokenScopeMissing: 403, .tokenKeysUnavailable: 503, .replayDetected: 409,
        ]
        for (reason, status) in expected {
            XCTAssertEqual(reason.httpStatus, status, reason.rawValue)
        }
        XCTAssertEqual(ReasonCode.replayDetected.publicMessage, "conflict")
        XCTAssertEqual(ReasonCode.tokenRevoked.rawValue, "token.revoked")
        XCTAssertEqual(ReasonCode.tokenKeysUnavailable.rawValue, "token.keys_unavailable")
    }

    func testRefusalDetailsNeverHoldTheTokenOrSignature() async throws {
        let verifier = try await verifier()
        let parts = rs256().split(separator: ".").map(String.init)
        let hostileKid = makeToken(header: header(alg: "RS256", kid: String(repeating: "k", count: 500) + "\u{1}"), payload: payload(), signer: .rs256(TestKeys.rsa))
        for token in [parts[0] + "." + parts[1] + "." + parts[2] + "x", hostileKid, rs256(["aud": "\"x\""])] {
            guard case .failure(let refusal) = verify(token, verifier) else { return XCTFail("accepted") }
            XCTAssertFalse(refusal.detail.contains(parts[2]))
            XCTAssertFalse(refusal.detail.contains(parts[1]))
            XCTAssertLessThan(refusal.detail.count, 120, refusal.detail)
            XCTAssertFalse(refusal.detail.unicodeScalars.contains { $0.value < 0x20 })
        }
    }
}
