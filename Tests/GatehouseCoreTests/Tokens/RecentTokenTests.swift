import Foundation
import XCTest
@testable import GatehouseCore

/// A connection's last token stands for a cache hit of that cache, nothing more.
final class RecentTokenTests: XCTestCase {
    private func token(jti: String = "j-1", _ claims: [String: String] = [:]) -> String { rs256Token(jti: jti, claims) }

    private func verify(
        _ verifier: TokenVerifier, _ token: String, _ recent: inout RecentToken, route: TokenRequirement = anyRoute,
        at now: Date = testNow
    ) -> ReasonCode {
        verifier.verify(token: token[...], requirement: route, clientCertificateSHA256: nil, now: now, recent: &recent).reason
    }

    func testTheSameBytesSkipTheCache() async throws {
        let cache = VerifiedTokenCache(capacity: 1)
        let verifier = TokenVerifier(issuers: [try standardIssuer(keys: try await standardKeySet())], cache: cache)
        var recent = RecentToken()
        XCTAssertEqual(verify(verifier, token(), &recent), .allowed)
        // Another token takes the cache's only slot: the first one is no longer in the cache.
        var elsewhere = RecentToken()
        XCTAssertEqual(verify(verifier, token(jti: "j-2"), &elsewhere), .allowed)
        let replaced = TokenVerifier(issuers: [try await replacedKeyIssuer()], cache: cache)
        var fresh = RecentToken()
        XCTAssertEqual(verify(replaced, token(), &fresh), .tokenInvalidSignature, "not in the cache any more")
        XCTAssertEqual(verify(replaced, token(), &recent), .allowed, "the connection's last token, verified with this cache")
    }

    func testOtherBytesOfTheSameLengthAreVerified() async throws {
        let cache = VerifiedTokenCache(capacity: 10)
        let verifier = TokenVerifier(issuers: [try standardIssuer(keys: try await standardKeySet())], cache: cache)
        var recent = RecentToken()
        XCTAssertEqual(verify(verifier, token(jti: "j-1"), &recent), .allowed)
        let other = token(jti: "j-2")
        XCTAssertEqual(other.utf8.count, token(jti: "j-1").utf8.count)
        let replaced = TokenVerifier(issuers: [try await replacedKeyIssuer()], cache: cache)
        XCTAssertEqual(verify(replaced, other, &recent), .tokenInvalidSignature)
        // A forged token with the remembered one's header and payload but another signature.
        var bytes = Array(token(jti: "j-1").utf8)
        bytes[bytes.count - 10] = bytes[bytes.count - 10] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        let forged = String(decoding: bytes, as: UTF8.self)
        XCTAssertEqual(verify(verifier, forged, &recent), .tokenInvalidSignature)
    }

    func testAVerdictOfAnotherCacheIsNotUsed() async throws {
        let verifier = TokenVerifier(issuers: [try standardIssuer(keys: try await standardKeySet())], cache: VerifiedTokenCache())
        var recent = RecentToken()
        XCTAssertEqual(verify(verifier, token(), &recent), .allowed)
        // New keys come with a new cache: the remembered verdict does not outlive its keys.
        let rotated = TokenVerifier(issuers: [try await replacedKeyIssuer()], cache: VerifiedTokenCache())
        XCTAssertEqual(verify(rotated, token(), &recent), .tokenInvalidSignature)
        // Without a cache, nothing is remembered either.
        let uncached = TokenVerifier(issuers: [try await replacedKeyIssuer()])
        XCTAssertEqual(verify(uncached, token(), &recent), .tokenInvalidSignature)
    }

    func testTimeAndRouteChecksRunOnEveryRepeat() async throws {
        let cache = VerifiedTokenCache(capacity: 10)
        let verifier = TokenVerifier(issuers: [try standardIssuer(keys: try await standardKeySet())], cache: cache)
        var recent = RecentToken()
        let bound = token(["cnf": #"{"x5t#S256":"AAAA"}"#, "scope": "\"read\""])
        XCTAssertEqual(verify(verifier, bound, &recent), .allowed)
        XCTAssertEqual(verify(verifier, bound, &recent, route: TokenRequirement(issuers: ["idp"], scopes: ["admin"])), .tokenScopeMissing)
        XCTAssertEqual(verify(verifier, bound, &recent, route: TokenRequirement(issuers: ["idp"], claims: ["tenant": .string("a")])), .tokenClaimMismatch)
        XCTAssertEqual(
            verifier.verify(token: bound[...], requirement: TokenRequirement(issuers: ["idp"], bind: .mtls), clientCertificateSHA256: [1, 2, 3], now: testNow, recent: &recent).reason,
            .tokenBindingMismatch)
        XCTAssertEqual(verify(verifier, bound, &recent, route: TokenRequirement(issuers: ["other"])), .tokenUnknownIssuer, "remembered for another issuer")
        // exp is now + 300 s, skew 30 s.
        XCTAssertEqual(verify(verifier, bound, &recent, at: testNow.addingTimeInterval(329)), .allowed)
        XCTAssertEqual(verify(verifier, bound, &recent, at: testNow.addingTimeInterval(330)), .tokenExpired)
    }

    func testRefusedTokensAreNotRemembered() async throws {
        let cache = VerifiedTokenCache(capacity: 10)
        let verifier = TokenVerifier(issuers: [try standardIssuer(keys: try await standardKeySet())], cache: cache)
        var recent = RecentToken()
        let forged = makeToken(header: header(alg: "RS256", kid: "rsa"), payload: payload(), signer: .rs256(TestKeys.rsaOther))
        XCTAssertEqual(verify(verifier, forged, &recent), .tokenInvalidSignature)
        XCTAssertEqual(verify(verifier, forged, &recent), .tokenInvalidSignature, "refused again, not remembered")
        let expired = token(["exp": "\(nowSeconds - 100)"])
        XCTAssertEqual(verify(verifier, expired, &recent), .tokenExpired)
        XCTAssertEqual(verify(verifier, expired, &recent), .tokenExpired)
    }
}
