import Foundation
import GatehouseCore
import NIOCore
import NIOHTTP1
import NIOPosix
import XCTest

@testable import GatehouseServer

/// An issuer whose keys are fetched from a `jwks_uri` served over HTTPS by a test server:
/// start-up fetch, rotation on an unknown `kid`, conditional refresh, and an issuer outage
/// within and beyond `stale_for`.
final class JWKSEndToEndTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup!
    private var server: TestJWKSServer!

    override func setUp() async throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        server = try TestJWKSServer(group: group, pki: try TestPKI.files(), document: TestTokens.jwks(TestTokens.key, kid: "k1"))
    }

    override func tearDown() async throws {
        server?.stop()
        try await group?.shutdownGracefully()
    }

    private func fixture(
        refresh: Duration = .seconds(3600), staleFor: Duration = .seconds(7200), ca: String? = nil
    ) async throws -> GatewayFixture {
        let port = server.port
        return try await GatewayFixture { config in
            let pki = try! TestPKI.files()
            let here = MutualTLS.here
            var issuer = IssuerConfig(name: "idp", issuer: "https://idp.test", jwksFile: nil, audiences: ["billing"], location: here)
            var endpoint = JWKSEndpointConfig(url: HTTPSURL(host: "127.0.0.1", port: port, target: "/jwks"), caFile: ca ?? pki.caCertificate)
            endpoint.refreshInterval = refresh
            endpoint.staleFor = staleFor
            issuer.jwksEndpoint = endpoint
            config.issuers = [issuer]
            var read = MutualTLS.route("read", .prefix("/invoices"), peers: nil)
            read.token = RouteTokenConfig(issuers: ["idp"], location: here)
            MutualTLS.configure(&config, pki: pki, mode: .optional, routes: [read])
        }
    }

    private func status(_ fixture: GatewayFixture, _ token: String) throws -> Int? {
        try MutualTLS.curl(fixture, "/invoices/1", client: nil, ["-H", "Authorization: Bearer \(token)"]).response?.status
    }

    /// Polls (bounded) until a request with `token` gets `expected`; returns the last status.
    private func waitForStatus(_ fixture: GatewayFixture, _ token: String, _ expected: Int, timeout: TimeInterval = 10) throws -> Int? {
        let deadline = Date().addingTimeInterval(timeout)
        var last: Int?
        repeat {
            last = try status(fixture, token)
            if last == expected { return last }
            usleep(100_000)
        } while Date() < deadline
        return last
    }

    func testKeysAreFetchedAtStartAndARotatedKidIsFetchedOnFirstSight() async throws {
        let fixture = try await fixture()
        defer { Task { await fixture.shutdown() } }
        XCTAssertEqual(server.requests.count, 1, "one fetch before serving")
        XCTAssertEqual(server.requests.first?.uri, "/jwks")
        XCTAssertEqual(try status(fixture, try TestTokens.token()), 200)

        // The issuer rotates: publishes k2 next to k1 and signs with k2. The refresh interval
        // is an hour, so only the unknown kid can bring the new set in.
        server.update { $0.document = TestTokens.jwks(TestTokens.rotatedKey, kid: "k2", plus: (TestTokens.key, "k1")) }
        let rotated = try TestTokens.token(key: TestTokens.rotatedKey, kid: "k2")
        XCTAssertEqual(try status(fixture, rotated), 401, "the request that names the unknown kid is refused")
        XCTAssertEqual(try waitForStatus(fixture, rotated, 200), 200, "the refetch it triggered serves the next one")
        XCTAssertEqual(try status(fixture, try TestTokens.token()), 200, "k1 is still published")
        XCTAssertEqual(server.requests.count, 2)

        // A flood of unknown kids asks the issuer at most once per floor (10 s).
        for index in 0..<5 {
            XCTAssertEqual(try status(fixture, try TestTokens.token(kid: "bogus-\(index)")), 401)
        }
        XCTAssertEqual(server.waitForRequests(3, timeout: 1).count, 2, "the floor defers the next refetch")
        let reasons = fixture.records(atLeast: 9).map(\.reason)
        XCTAssertEqual(reasons.first, "allowed")
        XCTAssertEqual(reasons[1], "token.unknown_kid")
        XCTAssertEqual(Array(reasons.suffix(5)), Array(repeating: "token.unknown_kid", count: 5))
    }

    func testAnOutageServesTheLastKeysUntilStaleForThenFailsClosedAndRecovers() async throws {
        server.update { $0.etag = "\"v1\"" }
        let fixture = try await fixture(refresh: .seconds(1), staleFor: .seconds(3))
        defer { Task { await fixture.shutdown() } }
        let token = try TestTokens.token()
        XCTAssertEqual(try status(fixture, token), 200)

        // Refreshes are conditional: the second fetch carries the ETag and gets a 304.
        let requests = server.waitForRequests(2)
        XCTAssertGreaterThanOrEqual(requests.count, 2)
        XCTAssertEqual(requests.dropFirst().first?.ifNoneMatch, "\"v1\"")

        server.update { $0.failWith = .internalServerError }
        let outage = Date()
        XCTAssertEqual(try status(fixture, token), 200, "within stale_for the last good keys serve")
        XCTAssertEqual(try waitForStatus(fixture, token, 503), 503, "beyond stale_for: fail closed")
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(outage), 1.5, "not before stale_for has run out")
        let refused = try XCTUnwrap(fixture.records(atLeast: 3).last)
        XCTAssertEqual(refused.decision, "deny")
        XCTAssertEqual(refused.reason, "token.keys_unavailable")

        server.update { $0.failWith = nil }
        XCTAssertEqual(try waitForStatus(fixture, token, 200), 200, "the issuer is back: so are its keys")
    }

    func testAnIssuerDownAtStartRefusesWith503AndIsRetried() async throws {
        server.update { $0.failWith = .serviceUnavailable }
        let fixture = try await fixture(refresh: .seconds(1), staleFor: .seconds(3))
        defer { Task { await fixture.shutdown() } }
        let token = try TestTokens.token()
        XCTAssertEqual(try status(fixture, token), 503)
        XCTAssertEqual(fixture.records(atLeast: 1).first?.reason, "token.keys_unavailable")
        server.update { $0.failWith = nil }
        XCTAssertEqual(try waitForStatus(fixture, token, 200), 200)
    }

    func testAnEndpointWhoseCertificateDoesNotChainToTheCAIsNotTrusted() async throws {
        let fixture = try await fixture(refresh: .seconds(1), staleFor: .seconds(3), ca: try TestPKI.files().otherCACertificate)
        defer { Task { await fixture.shutdown() } }
        XCTAssertGreaterThanOrEqual(server.requests.count, 0)
        XCTAssertEqual(try status(fixture, try TestTokens.token()), 503)
        XCTAssertEqual(fixture.records(atLeast: 1).first?.reason, "token.keys_unavailable")
        XCTAssertTrue(server.requests.isEmpty, "no request is sent over an unverified connection")
    }

    /// `gatehouse token verify` fetches the route's issuer keys once, with the issuer's `ca`.
    func testOfflineVerificationFetchesTheKeySet() async throws {
        let pki = try TestPKI.files()
        let here = MutualTLS.here
        var issuer = IssuerConfig(name: "idp", issuer: "https://idp.test", jwksFile: nil, audiences: ["billing"], location: here)
        issuer.jwksEndpoint = JWKSEndpointConfig(url: HTTPSURL(host: "127.0.0.1", port: server.port, target: "/jwks"), caFile: pki.caCertificate)
        var route = MutualTLS.route("read", .prefix("/"), peers: nil)
        route.token = RouteTokenConfig(issuers: ["idp"], location: here)
        let config = GatewayConfig(
            environment: "test", listeners: [], admin: AdminConfig(), upstreams: [UpstreamConfig(name: "app", endpoints: [HostPort(host: "127.0.0.1", port: 9)], location: here)],
            routes: [route], decisionLog: DecisionLogConfig(), sourceFile: "t.yaml", version: "v")
        var withIssuer = config
        withIssuer.issuers = [issuer]
        var notes: [String] = []
        let accepted = try await OfflineTokenCheck.verify(
            config: withIssuer, route: "read", token: try TestTokens.token(), at: Date(), clientCertificatePEM: nil, report: { notes.append($0) })
        XCTAssertEqual(try accepted.get().sub, "alice")
        XCTAssertEqual(notes, [])

        server.update { $0.failWith = .badGateway }
        let refused = try await OfflineTokenCheck.verify(
            config: withIssuer, route: "read", token: try TestTokens.token(), at: Date(), clientCertificatePEM: nil, report: { notes.append($0) })
        guard case .failure(let refusal) = refused else { return XCTFail("accepted without keys") }
        XCTAssertEqual(refusal.reason, .tokenKeysUnavailable)
        XCTAssertEqual(notes.count, 1)
        XCTAssertTrue(notes.first?.contains("HTTP 502") == true, "\(notes)")
    }
}
