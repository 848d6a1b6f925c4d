import Crypto
import Foundation
import GatehouseCore
import XCTest

@testable import GatehouseServer

/// Bearer tokens over real TLS with curl: an ES256 issuer whose JWKS is a file, tokens
/// signed in the test.
final class BearerTokenEndToEndTests: XCTestCase {
    private func fixture(strip: Bool = false, jwks: String? = nil, revoked: String? = nil) async throws -> GatewayFixture {
        let jwks = try jwks ?? TestTokens.jwksFile(for: self)
        return try await GatewayFixture { config in
            let pki = try! TestPKI.files()
            let here = MutualTLS.here
            var issuer = IssuerConfig(name: "idp", issuer: "https://idp.test", jwksFile: jwks, audiences: ["billing"], location: here)
            issuer.maxLifetime = .seconds(3600)
            issuer.revokedFile = revoked
            config.issuers = [issuer]
            var read = MutualTLS.route("read", .prefix("/invoices"), peers: nil)
            read.token = RouteTokenConfig(issuers: ["idp"], location: here)
            read.token?.scopes = ["invoices.read"]
            read.token?.stripUpstream = strip
            var admin = MutualTLS.route("admin", .prefix("/admin"), peers: nil)
            admin.token = RouteTokenConfig(issuers: ["idp"], location: here)
            admin.token?.scopes = ["invoices.admin"]
            var bound = MutualTLS.route("bound", .prefix("/bound"), peers: nil)
            bound.token = RouteTokenConfig(issuers: ["idp"], location: here)
            bound.token?.bindToClientCertificate = true
            MutualTLS.configure(&config, pki: pki, mode: .optional, routes: [read, admin, bound])
        }
    }

    func testAValidTokenIsForwardedAndRecorded() async throws {
        let fixture = try await fixture()
        defer { Task { await fixture.shutdown() } }
        let token = try TestTokens.token()
        let result = try MutualTLS.curl(fixture, "/invoices/1", client: nil, ["-H", "Authorization: Bearer \(token)"])
        XCTAssertEqual(result.response?.status, 200, result.stderr)
        let seen = try XCTUnwrap(fixture.upstream.waitForRequests(1).first).head.headers
        XCTAssertEqual(seen["authorization"], ["Bearer \(token)"], "upstream: forward (the default) passes the token on")
        let record = try XCTUnwrap(fixture.records(atLeast: 1).first)
        XCTAssertEqual(record.decision, "allow")
        let recorded = try XCTUnwrap(record["token"] as? [String: Any])
        XCTAssertEqual(recorded["iss"] as? String, "https://idp.test")
        XCTAssertEqual(recorded["sub"] as? String, "alice")
        XCTAssertEqual(recorded["jti"] as? String, "t-1")
        let log = try String(contentsOfFile: fixture.logPath, encoding: .utf8)
        XCTAssertFalse(log.contains(token.split(separator: ".")[2]), "the record never holds the token or its signature")
    }

    func testRefusedTokensGetTheirReasonAndStatus() async throws {
        let fixture = try await fixture()
        defer { Task { await fixture.shutdown() } }
        let cases: [(String, [String], Int, String)] = [
            ("/invoices/1", [], 401, "token.missing"),
            ("/invoices/1", ["-H", "Authorization: Basic YWxpY2U6cHc="], 401, "token.malformed"),
            ("/invoices/1", ["-H", "Authorization: Bearer \(try TestTokens.token(["aud": #""payroll""#]))"], 401, "token.audience_mismatch"),
            ("/invoices/1", ["-H", "Authorization: Bearer \(try TestTokens.token(["exp": "\(Int(Date().timeIntervalSince1970) - 120)"]))"], 401, "token.expired"),
            ("/invoices/1", ["-H", "Authorization: Bearer \(try TestTokens.token(["iss": #""https://evil.test""#]))"], 401, "token.unknown_issuer"),
            ("/admin/x", ["-H", "Authorization: Bearer \(try TestTokens.token())"], 403, "token.scope_missing"),
        ]
        for (path, headers, status, _) in cases {
            XCTAssertEqual(try MutualTLS.curl(fixture, path, client: nil, headers).response?.status, status, path)
        }
        let records = fixture.records(atLeast: cases.count)
        XCTAssertEqual(records.map(\.reason), cases.map(\.3))
        XCTAssertEqual(Set(records.map(\.decision)), ["deny"])
        XCTAssertTrue(fixture.upstream.requests.isEmpty)
    }

    func testACertificateBoundTokenOnlyWorksOverItsCertificate() async throws {
        let fixture = try await fixture()
        defer { Task { await fixture.shutdown() } }
        let checkout = fixture.pki.client(.prodCheckout)
        let fingerprint = try MutualTLS.fingerprint(checkout.certificate)
        let digest = stride(from: 0, to: 64, by: 2).map { UInt8(fingerprint[fingerprint.index(fingerprint.startIndex, offsetBy: $0)...].prefix(2), radix: 16)! }
        let token = try TestTokens.token(["cnf": #"{"x5t#S256":"\#(TestTokens.b64(digest))"}"#])
        let right = try MutualTLS.curl(fixture, "/bound", client: checkout, ["-H", "Authorization: Bearer \(token)"])
        XCTAssertEqual(right.response?.status, 200, right.stderr)
        // The same token stolen by another workload.
        let stolen = try MutualTLS.curl(fixture, "/bound", client: fixture.pki.client(.prodSidecar), ["-H", "Authorization: Bearer \(token)"])
        XCTAssertEqual(stolen.response?.status, 401)
        let anonymous = try MutualTLS.curl(fixture, "/bound", client: nil, ["-H", "Authorization: Bearer \(token)"])
        XCTAssertEqual(anonymous.response?.status, 401)
        XCTAssertEqual(fixture.records(atLeast: 3).map(\.reason), ["allowed", "token.binding_mismatch", "token.binding_mismatch"])
    }

    func testStripKeepsTheTokenFromTheUpstream() async throws {
        let fixture = try await fixture(strip: true)
        defer { Task { await fixture.shutdown() } }
        let result = try MutualTLS.curl(fixture, "/invoices/1", client: nil, ["-H", "Authorization: Bearer \(try TestTokens.token())"])
        XCTAssertEqual(result.response?.status, 200, result.stderr)
        let seen = try XCTUnwrap(fixture.upstream.waitForRequests(1).first).head.headers
        XCTAssertFalse(seen.contains(name: "authorization"))
    }

    /// The issuer rotates its signing key: the new `kid` works without a restart, the old
    /// one stops working, and a broken JWKS file keeps the last good keys.
    func testAnIssuerKeyRotationIsPickedUpWithoutARestart() async throws {
        let path = try TestTokens.jwksFile(for: self)
        let fixture = try await fixture(jwks: path)
        defer { Task { await fixture.shutdown() } }
        let old = try TestTokens.token()
        let new = try TestTokens.token(key: TestTokens.rotatedKey, kid: "k2")
        func status(_ token: String) throws -> Int? {
            try MutualTLS.curl(fixture, "/invoices/1", client: nil, ["-H", "Authorization: Bearer \(token)"]).response?.status
        }
        XCTAssertEqual(try status(old), 200)
        XCTAssertEqual(try status(new), 401)

        try TestTokens.jwks(TestTokens.rotatedKey, kid: "k2").write(toFile: path, atomically: true, encoding: .utf8)
        await fixture.gateway.reloadTLSMaterial()
        XCTAssertEqual(try status(new), 200)
        XCTAssertEqual(try status(old), 401, "the cached verdict for the old key is gone with it")

        let failuresBefore = fixture.gateway.tlsWatcher.failures.load(ordering: .relaxed)
        try "{not json".write(toFile: path, atomically: true, encoding: .utf8)
        await fixture.gateway.reloadTLSMaterial()
        XCTAssertEqual(fixture.gateway.tlsWatcher.failures.load(ordering: .relaxed), failuresBefore + 1)
        XCTAssertEqual(try status(new), 200, "the last good keys stay in use")
        XCTAssertEqual(
            fixture.records(atLeast: 5).map(\.reason),
            ["allowed", "token.unknown_kid", "allowed", "token.unknown_kid", "allowed"])
    }

    func testRevokedTokensAndSubjectsAreRefusedEvenWhenCached() async throws {
        let revoked = temporaryPath("gatehouse-revoked-", suffix: ".txt")
        try "jti:t-stolen\n".write(toFile: revoked, atomically: true, encoding: .utf8)
        let fixture = try await fixture(revoked: revoked)
        defer { Task { await fixture.shutdown() } }
        func status(_ token: String) throws -> Int? {
            try MutualTLS.curl(fixture, "/invoices/1", client: nil, ["-H", "Authorization: Bearer \(token)"]).response?.status
        }
        let stolen = try TestTokens.token(["jti": #""t-stolen""#])
        let runner = try TestTokens.token(["sub": #""ci-runner""#, "jti": #""t-2""#])
        XCTAssertEqual(try status(stolen), 401)
        XCTAssertEqual(try status(runner), 200, "and now cached")
        try "jti:t-stolen\nsub:ci-runner\n".write(toFile: revoked, atomically: true, encoding: .utf8)
        await fixture.gateway.reloadTLSMaterial()
        XCTAssertEqual(try status(runner), 401, "revocation is checked on every request, cached or not")
        XCTAssertEqual(fixture.records(atLeast: 3).map(\.reason), ["token.revoked", "allowed", "token.revoked"])
    }

    func testReplayedTokenIdsAreRefusedAndAFullStoreFailsClosed() async throws {
        let jwks = try TestTokens.jwksFile(for: self)
        let fixture = try await GatewayFixture(replayCapacity: 2) { config in
            let here = MutualTLS.here
            config.issuers = [IssuerConfig(name: "idp", issuer: "https://idp.test", jwksFile: jwks, audiences: ["billing"], location: here)]
            var once = MutualTLS.route("once", .prefix("/once"), peers: nil)
            once.token = RouteTokenConfig(issuers: ["idp"], location: here)
            once.token?.rejectReplay = true
            MutualTLS.configure(&config, pki: try! TestPKI.files(), mode: .optional, routes: [once])
        }
        defer { Task { await fixture.shutdown() } }
        func status(_ token: String) throws -> Int? {
            try MutualTLS.curl(fixture, "/once", client: nil, ["-H", "Authorization: Bearer \(token)"]).response?.status
        }
        let first = try TestTokens.token(["jti": #""j-1""#])
        XCTAssertEqual(try status(first), 200)
        XCTAssertEqual(try status(first), 409, "the same jti again")
        XCTAssertEqual(try status(TestTokens.token(["jti": #""j-2""#])), 200)
        XCTAssertEqual(try status(TestTokens.token(["jti": #""j-3""#])), 503, "store full of live ids: refused, never allowed")
        XCTAssertEqual(try status(TestTokens.token(["jti": #""""#])), 401, "a replay-checked route needs a jti")
        XCTAssertEqual(
            fixture.records(atLeast: 5).map(\.reason),
            ["allowed", "replay.detected", "allowed", "state.unavailable", "token.malformed"])
    }

    func testVerifiedClaimsBecomeHeadersAndClientCopiesAreStripped() async throws {
        let jwks = try TestTokens.jwksFile(for: self)
        let fixture = try await GatewayFixture { config in
            let here = MutualTLS.here
            config.issuers = [IssuerConfig(name: "idp", issuer: "https://idp.test", jwksFile: jwks, audiences: ["billing"], location: here)]
            var route = MutualTLS.route("claims", .prefix("/"), peers: nil)
            route.token = RouteTokenConfig(issuers: ["idp"], location: here)
            route.token?.claimsToHeaders = ["sub": "x-gatehouse-user", "tenant": "x-tenant"]
            MutualTLS.configure(&config, pki: try! TestPKI.files(), mode: .optional, routes: [route])
        }
        defer { Task { await fixture.shutdown() } }
        let forged = ["-H", "X-Tenant: evil", "-H", "X-Gatehouse-User: root"]
        let withTenant = try TestTokens.token(["tenant": #""acme""#])
        XCTAssertEqual(try MutualTLS.curl(fixture, "/a", client: nil, forged + ["-H", "Authorization: Bearer \(withTenant)"]).response?.status, 200)
        XCTAssertEqual(try MutualTLS.curl(fixture, "/b", client: nil, forged + ["-H", "Authorization: Bearer \(try TestTokens.token())"]).response?.status, 200)
        let seen = fixture.upstream.waitForRequests(2).map(\.head.headers)
        XCTAssertEqual(seen.count, 2)
        XCTAssertEqual(seen[0]["x-tenant"], ["acme"])
        XCTAssertEqual(seen[0]["x-gatehouse-user"], ["alice"])
        XCTAssertEqual(seen[1]["x-tenant"], [], "no tenant claim: the client's copy is still dropped")
        XCTAssertEqual(seen[1]["x-gatehouse-user"], ["alice"])
    }

    /// `upstream: mint`: the upstream gets a token scoped to its hop, verifiable with the
    /// admin listener's JWKS, and never the inbound one.
    func testMintedTokensReplaceTheInboundOneAndVerifyAgainstTheAdminJWKS() async throws {
        let jwks = try TestTokens.jwksFile(for: self)
        let keyPath = temporaryPath("gatehouse-mint-", suffix: ".pem")
        try P256.Signing.PrivateKey().pemRepresentation.write(toFile: keyPath, atomically: true, encoding: .utf8)
        let fixture = try await GatewayFixture { config in
            let here = MutualTLS.here
            config.issuers = [IssuerConfig(name: "idp", issuer: "https://idp.test", jwksFile: jwks, audiences: ["billing"], location: here)]
            config.tokenMinting = TokenMintingConfig(issuer: "https://gatehouse.test", privateKey: .file(keyPath), location: here)
            var route = MutualTLS.route("mint", .prefix("/"), peers: nil)
            route.token = RouteTokenConfig(issuers: ["idp"], location: here)
            route.token?.scopes = ["invoices.read"]
            route.token?.mintUpstream = true
            MutualTLS.configure(&config, pki: try! TestPKI.files(), mode: .optional, routes: [route])
        }
        defer { Task { await fixture.shutdown() } }
        let inbound = try TestTokens.token()
        let client = fixture.pki.client(.prodCheckout)
        for _ in 0..<2 {
            let result = try MutualTLS.curl(fixture, "/x", client: client, ["-H", "Authorization: Bearer \(inbound)"])
            XCTAssertEqual(result.response?.status, 200, result.stderr)
        }
        let seen = fixture.upstream.waitForRequests(2).map(\.head.headers)
        XCTAssertEqual(seen.count, 2)
        let minted = try seen.map { headers -> String in
            let values = headers["authorization"]
            XCTAssertEqual(values.count, 1)
            return String(try XCTUnwrap(values.first?.dropFirst("Bearer ".count)))
        }
        XCTAssertFalse(minted.contains(inbound), "the inbound token never goes further")

        // The admin JWKS verifies the minted signature.
        let keys = try Shell.run("/usr/bin/curl", ["-sS", "http://127.0.0.1:\(fixture.adminPort)/.well-known/jwks.json"]).stdout
        let key = try XCTUnwrap(((try JSONSerialization.jsonObject(with: Data(keys.utf8)) as? [String: Any])?["keys"] as? [[String: Any]])?.first)
        func decode(_ text: String) throws -> Data {
            var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            while base64.count % 4 != 0 { base64 += "=" }
            return try XCTUnwrap(Data(base64Encoded: base64))
        }
        let publicKey = try P256.Signing.PublicKey(
            rawRepresentation: try decode(key["x"] as! String) + decode(key["y"] as! String))
        let parts = minted[0].split(separator: ".").map(String.init)
        XCTAssertEqual(parts.count, 3)
        let signature = try P256.Signing.ECDSASignature(rawRepresentation: try decode(parts[2]))
        XCTAssertTrue(publicKey.isValidSignature(signature, for: Data((parts[0] + "." + parts[1]).utf8)))

        let claims = try XCTUnwrap(try JSONSerialization.jsonObject(with: try decode(parts[1])) as? [String: Any])
        XCTAssertEqual(claims["iss"] as? String, "https://gatehouse.test")
        XCTAssertEqual(claims["aud"] as? String, "app", "the upstream's name (it presents no single SPIFFE ID)")
        XCTAssertEqual(claims["sub"] as? String, "alice")
        XCTAssertEqual((claims["act"] as? [String: Any])?["sub"] as? String, TestPKI.checkoutID)
        XCTAssertEqual(claims["scope"] as? String, "invoices.read", "only the scopes the route declared")
        XCTAssertEqual((claims["exp"] as? Int ?? 0) - (claims["iat"] as? Int ?? 0), 60)
        let secondClaims = try JSONSerialization.jsonObject(with: try decode(String(minted[1].split(separator: ".")[1]))) as? [String: Any]
        XCTAssertNotEqual(claims["jti"] as? String, secondClaims?["jti"] as? String, "a fresh jti per token")
    }

    /// An Ed25519 minting key mints EdDSA tokens; a new key file is picked up without a
    /// restart, and the JWKS keeps the previous key so tokens minted just before still verify.
    func testAnEdDSAMintingKeyRotatesWithoutARestart() async throws {
        let jwks = try TestTokens.jwksFile(for: self)
        let keyPath = temporaryPath("gatehouse-mint-", suffix: ".pem")
        let first = Curve25519.Signing.PrivateKey()
        try first.pemRepresentation.write(toFile: keyPath, atomically: true, encoding: .utf8)
        let fixture = try await GatewayFixture { config in
            let here = MutualTLS.here
            config.issuers = [IssuerConfig(name: "idp", issuer: "https://idp.test", jwksFile: jwks, audiences: ["billing"], location: here)]
            config.tokenMinting = TokenMintingConfig(issuer: "https://gatehouse.test", privateKey: .file(keyPath), location: here)
            var route = MutualTLS.route("mint", .prefix("/"), peers: nil)
            route.token = RouteTokenConfig(issuers: ["idp"], location: here)
            route.token?.mintUpstream = true
            MutualTLS.configure(&config, pki: try! TestPKI.files(), mode: .optional, routes: [route])
        }
        defer { Task { await fixture.shutdown() } }
        func mintedToken(_ count: Int) throws -> [String] {
            let result = try MutualTLS.curl(fixture, "/x", client: nil, ["-H", "Authorization: Bearer \(try TestTokens.token())"])
            XCTAssertEqual(result.response?.status, 200, result.stderr)
            let headers = try XCTUnwrap(fixture.upstream.waitForRequests(count).last).head.headers
            return try XCTUnwrap(headers["authorization"].first?.dropFirst("Bearer ".count)).split(separator: ".").map(String.init)
        }
        func decode(_ text: String) throws -> Data {
            var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            while base64.count % 4 != 0 { base64 += "=" }
            return try XCTUnwrap(Data(base64Encoded: base64))
        }
        func publishedKeys() throws -> [[String: Any]] {
            let text = try Shell.run("/usr/bin/curl", ["-sS", "http://127.0.0.1:\(fixture.adminPort)/.well-known/jwks.json"]).stdout
            return try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])?["keys"] as? [[String: Any]])
        }
        func verifies(_ parts: [String], with jwk: [String: Any]) throws -> Bool {
            XCTAssertEqual(jwk["kty"] as? String, "OKP")
            XCTAssertEqual(jwk["crv"] as? String, "Ed25519")
            let key = try Curve25519.Signing.PublicKey(rawRepresentation: try decode(jwk["x"] as! String))
            return key.isValidSignature(try decode(parts[2]), for: Data((parts[0] + "." + parts[1]).utf8))
        }

        let before = try mintedToken(1)
        let header = try XCTUnwrap(try JSONSerialization.jsonObject(with: try decode(before[0])) as? [String: Any])
        XCTAssertEqual(header["alg"] as? String, "EdDSA")
        let firstKeys = try publishedKeys()
        XCTAssertEqual(firstKeys.count, 1)
        XCTAssertEqual(firstKeys[0]["kid"] as? String, header["kid"] as? String)
        XCTAssertTrue(try verifies(before, with: firstKeys[0]))

        try Curve25519.Signing.PrivateKey().pemRepresentation.write(toFile: keyPath, atomically: true, encoding: .utf8)
        await fixture.gateway.reloadTLSMaterial()
        let after = try mintedToken(2)
        let newHeader = try XCTUnwrap(try JSONSerialization.jsonObject(with: try decode(after[0])) as? [String: Any])
        XCTAssertNotEqual(newHeader["kid"] as? String, header["kid"] as? String, "signed with the new key")
        let keys = try publishedKeys()
        XCTAssertEqual(keys.map { $0["kid"] as? String }, [newHeader["kid"] as? String, header["kid"] as? String], "new key first, previous kept")
        XCTAssertTrue(try verifies(after, with: keys[0]))
        XCTAssertTrue(try verifies(before, with: keys[1]), "a token minted before the rotation still verifies")
        XCTAssertFalse(try verifies(after, with: keys[1]))
    }
}
