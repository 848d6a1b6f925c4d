import Foundation
import XCTest
@testable import GatehouseCore

final class VerifiedTokenCacheTests: XCTestCase {
    private func token(jti: String = "j-1", _ claims: [String: String] = [:]) -> String { rs256Token(jti: jti, claims) }

    private func verify(_ verifier: TokenVerifier, _ token: String, route: TokenRequirement = anyRoute, cert: [UInt8]? = nil, at now: Date = testNow) -> ReasonCode {
        verifier.verify(token: token, requirement: route, clientCertificateDER: cert, now: now).reason
    }

    func testAHitSkipsTheSignature() async throws {
        let cache = VerifiedTokenCache(capacity: 10)
        let real = TokenVerifier(issuers: [try standardIssuer(keys: try await standardKeySet())], cache: cache)
        XCTAssertEqual(verify(real, token()), .allowed)
        XCTAssertEqual(cache.count, 1)

        let replaced = try await replacedKeyIssuer()
        XCTAssertEqual(verify(TokenVerifier(issuers: [replaced]), token()), .tokenInvalidSignature, "without the cache")
        XCTAssertEqual(verify(TokenVerifier(issuers: [replaced], cache: cache), token()), .allowed, "a hit")
        XCTAssertEqual(verify(TokenVerifier(issuers: [replaced], cache: cache), token(jti: "j-2")), .tokenInvalidSignature, "a miss")
    }

    func testRouteChecksAndTimeStillRunOnEveryHit() async throws {
        let cache = VerifiedTokenCache(capacity: 10)
        let verifier = TokenVerifier(issuers: [try standardIssuer(keys: try await standardKeySet())], cache: cache)
        let bound = token(["cnf": #"{"x5t#S256":"AAAA"}"#])
        XCTAssertEqual(verify(verifier, bound), .allowed)
        XCTAssertEqual(cache.count, 1)

        XCTAssertEqual(verify(verifier, bound, route: TokenRequirement(issuers: ["idp"], scopes: ["admin"])), .tokenScopeMissing)
        XCTAssertEqual(verify(verifier, bound, route: TokenRequirement(issuers: ["idp"], claims: ["tenant": .string("a")])), .tokenClaimMismatch)
        XCTAssertEqual(verify(verifier, bound, route: TokenRequirement(issuers: ["idp"], bind: .mtls), cert: [1, 2, 3]), .tokenBindingMismatch)
        XCTAssertEqual(verify(verifier, bound, route: TokenRequirement(issuers: ["idp"], bind: .mtls)), .tokenBindingMismatch)
        XCTAssertEqual(verify(verifier, bound, route: TokenRequirement(issuers: ["other"])), .tokenUnknownIssuer, "cached for another route's issuer")
        XCTAssertEqual(verify(verifier, bound), .allowed)
        XCTAssertEqual(cache.count, 1)
    }

    /// Two issuers with the same `iss` and different keys: a hit for one never vouches for the other.
    func testAHitCountsOnlyForTheIssuerItWasVerifiedFor() async throws {
        let cache = VerifiedTokenCache(capacity: 10)
        let other = try await TokenKeySet.load(jwksJSON: TestJWK.set(TestJWK.rsa(TestKeys.rsaOther, kid: "rsa")))
        let verifier = TokenVerifier(
            issuers: [try standardIssuer(keys: try await standardKeySet()), try standardIssuer(keys: other, algorithms: [.rs256], name: "idp-b")],
            cache: cache)
        XCTAssertEqual(verify(verifier, token()), .allowed)
        XCTAssertEqual(verify(verifier, token(), route: TokenRequirement(issuers: ["idp-b"])), .tokenInvalidSignature)
        XCTAssertEqual(verify(verifier, token(), route: TokenRequirement(issuers: ["idp-b", "idp"])), .allowed)
    }

    func testEntriesEndAtExpiry() async throws {
        let cache = VerifiedTokenCache(capacity: 10)
        let verifier = TokenVerifier(issuers: [try standardIssuer(keys: try await standardKeySet())], cache: cache)
        XCTAssertEqual(verify(verifier, token()), .allowed)
        // exp is now + 300 s, skew 30 s.
        XCTAssertEqual(verify(verifier, token(), at: testNow.addingTimeInterval(329)), .allowed)
        XCTAssertEqual(cache.count, 1)
        XCTAssertEqual(verify(verifier, token(), at: testNow.addingTimeInterval(330)), .tokenExpired)
        XCTAssertEqual(cache.count, 0, "dropped at exp")
    }

    func testOnlyAuthenticatedTokensAreKept() async throws {
        let cache = VerifiedTokenCache(capacity: 10)
        let verifier = TokenVerifier(issuers: [try standardIssuer(keys: try await standardKeySet())], cache: cache)
        let forged = makeToken(header: header(alg: "RS256", kid: "rsa"), payload: payload(), signer: .rs256(TestKeys.rsaOther))
        XCTAssertEqual(verify(verifier, forged), .tokenInvalidSignature)
        XCTAssertEqual(verify(verifier, token(["exp": "\(nowSeconds - 100)"])), .tokenExpired)
        XCTAssertEqual(verify(verifier, token(["aud": "\"crm\""])), .tokenAudienceMismatch)
        XCTAssertEqual(verify(verifier, token(["env": "\"staging\""])), .tokenClaimMismatch)
        XCTAssertEqual(cache.count, 0)
        // Authenticated for its issuer but refused by this route: kept, the route check reruns anyway.
        XCTAssertEqual(verify(verifier, token(), route: TokenRequirement(issuers: ["idp"], scopes: ["admin"])), .tokenScopeMissing)
        XCTAssertEqual(cache.count, 1)
    }

    func testBoundedOldestFirst() async throws {
        let cache = VerifiedTokenCache(capacity: 3)
        let verifier = TokenVerifier(issuers: [try standardIssuer(keys: try await standardKeySet())], cache: cache)
        for i in 1...5 {
            XCTAssertEqual(verify(verifier, token(jti: "j-\(i)")), .allowed)
            XCTAssertLessThanOrEqual(cache.count, 3)
        }
        XCTAssertEqual(cache.count, 3)
        let replaced = TokenVerifier(issuers: [try await replacedKeyIssuer()], cache: cache)
        XCTAssertEqual(verify(replaced, token(jti: "j-1")), .tokenInvalidSignature, "evicted")
        XCTAssertEqual(verify(replaced, token(jti: "j-2")), .tokenInvalidSignature, "evicted")
        for i in 3...5 {
            XCTAssertEqual(verify(replaced, token(jti: "j-\(i)")), .allowed, "still cached: j-\(i)")
        }
        // Many more inserts keep it at the bound.
        for i in 6...40 { _ = verify(verifier, token(jti: "j-\(i)")) }
        XCTAssertEqual(cache.count, 3)
    }

    func testConcurrentUse() async throws {
        let cache = VerifiedTokenCache(capacity: 8)
        let verifier = TokenVerifier(issuers: [try standardIssuer(keys: try await standardKeySet())], cache: cache)
        let tokens = (0..<16).map { token(jti: "c-\($0)") }
        DispatchQueue.concurrentPerform(iterations: 64) { i in
            XCTAssertEqual(verifier.verify(token: tokens[i % 16], requirement: anyRoute, clientCertificateDER: nil, now: testNow).reason, .allowed)
        }
        XCTAssertLessThanOrEqual(cache.count, 8)
    }
}
