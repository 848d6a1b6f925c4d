import Foundation
import GatehouseCore
import XCTest

@testable import GatehouseServer

/// Rate limits over real TLS with curl: 429 with Retry-After and the IETF fields, cells keyed
/// on verified identity, and the `on_full` policy of a full store.
final class RateLimitEndToEndTests: XCTestCase {
    private func limit(_ name: String, _ key: [RateLimitKeyPart], count: Int, period: Duration = .seconds(1), burst: Int) -> RateLimitConfig {
        RateLimitConfig(name: name, key: key, policy: RatePolicy(count: count, period: period, burst: burst), location: MutualTLS.here)
    }

    func testTheBurstPassesThenTheCallerIsToldWhenToComeBack() async throws {
        let fixture = try await GatewayFixture { config in
            var route = MutualTLS.route("limited", .prefix("/"), peers: nil)
            route.rateLimit = self.limit("per-ip", [.ip], count: 1, period: .seconds(10), burst: 2)
            config.routes = [route]
        }
        defer { Task { await fixture.shutdown() } }
        let responses = try (0..<3).map { _ in try fixture.curl("/x") }
        XCTAssertEqual(responses.map(\.status), [200, 200, 429])
        XCTAssertEqual(responses[0].header("RateLimit-Policy"), #""per-ip";q=1;w=10"#)
        XCTAssertEqual(responses[0].header("RateLimit"), #""per-ip";r=1;t=10"#, "one left; full again 10 s later")
        XCTAssertEqual(responses[1].header("RateLimit"), #""per-ip";r=0;t=20"#)
        let limited = responses[2]
        XCTAssertEqual(limited.header("Retry-After"), "10")
        XCTAssertEqual(limited.header("RateLimit"), #""per-ip";r=0;t=20"#)
        XCTAssertEqual(fixture.upstream.requests.count, 2, "the limited request never reached the upstream")
        // A client waiting for `100 Continue` is refused before it sends its body.
        let body = temporaryPath("gatehouse-ratelimit-body-")
        try String(repeating: "x", count: 4096).write(toFile: body, atomically: true, encoding: .utf8)
        let waiting = try Shell.run("/usr/bin/curl", [
            "-sS", "-i", "--cacert", fixture.pki.caCertificate, "-H", "Expect: 100-continue", "--data-binary", "@" + body,
            fixture.baseURL + "/x",
        ])
        XCTAssertTrue(waiting.stdout.hasPrefix("HTTP/1.1 429"), waiting.stdout)
        XCTAssertFalse(waiting.stdout.contains("100 Continue"))
        let records = fixture.records(atLeast: 4)
        XCTAssertEqual(records.map(\.reason), ["allowed", "allowed", "rate.limited", "rate.limited"])
        XCTAssertEqual(records.map(\.decision), ["allow", "allow", "deny", "deny"])
        let recorded = try XCTUnwrap(records[2]["rate_limit"] as? [String: Any])
        XCTAssertEqual(recorded["policy"] as? String, "per-ip")
        XCTAssertEqual(recorded["store"] as? String, "ok")
        XCTAssertEqual(recorded["remaining"] as? Int, 0)
    }

    func testEachVerifiedPeerHasItsOwnBudget() async throws {
        let fixture = try await GatewayFixture { config in
            var route = MutualTLS.route("limited", .prefix("/"), peers: ["spiffe://prod.example/*"])
            route.rateLimit = self.limit("per-peer", [.peer], count: 1, period: .seconds(60), burst: 1)
            MutualTLS.configure(&config, pki: try! TestPKI.files(), mode: .required, routes: [route])
        }
        defer { Task { await fixture.shutdown() } }
        let checkout = fixture.pki.client(.prodCheckout)
        let sidecar = fixture.pki.client(.prodSidecar)
        // A spoofed identity header changes nothing: the key is the verified certificate's ID.
        XCTAssertEqual(try MutualTLS.curl(fixture, "/a", client: checkout).response?.status, 200)
        XCTAssertEqual(try MutualTLS.curl(fixture, "/a", client: checkout, ["-H", "X-Gatehouse-Peer-Id: spiffe://prod.example/x"]).response?.status, 429)
        XCTAssertEqual(try MutualTLS.curl(fixture, "/a", client: sidecar).response?.status, 200, "another workload, another cell")
        XCTAssertEqual(try MutualTLS.curl(fixture, "/a", client: sidecar).response?.status, 429)
    }

    func testEachTokenSubjectHasItsOwnBudget() async throws {
        let jwks = try TestTokens.jwksFile(for: self)
        let fixture = try await GatewayFixture { config in
            config.issuers = [IssuerConfig(name: "idp", issuer: "https://idp.test", jwksFile: jwks, audiences: ["billing"], location: MutualTLS.here)]
            var route = MutualTLS.route("limited", .prefix("/"), peers: nil)
            route.token = RouteTokenConfig(issuers: ["idp"], location: MutualTLS.here)
            route.rateLimit = self.limit("per-subject", [.subject], count: 1, period: .seconds(60), burst: 1)
            config.routes = [route]
        }
        defer { Task { await fixture.shutdown() } }
        func status(_ subject: String) throws -> Int {
            try fixture.curl("/x", ["-H", "Authorization: Bearer \(try TestTokens.token(["sub": "\"\(subject)\""]))"]).status
        }
        XCTAssertEqual(try [status("alice"), status("alice"), status("bob")], [200, 429, 200])
        XCTAssertEqual(try fixture.curl("/x").status, 401, "no token: refused before any cell is touched")
        XCTAssertEqual(fixture.records(atLeast: 4).map(\.reason), ["allowed", "rate.limited", "allowed", "token.missing"])
    }

    /// A store full of live cells never resets a limit: a new key is admitted (`on_full:
    /// allow`, the default, recorded) or refused (`deny`).
    func testAFullStoreFollowsOnFull() async throws {
        for policy in [RateLimitFallback.allow, .deny] {
            let fixture = try await GatewayFixture { config in
                config.state.maxEntries = 1  // sixteen shards of one cell
                var route = MutualTLS.route("limited", .prefix("/"), peers: nil)
                var limit = self.limit("per-tenant", [.header("x-tenant")], count: 1, period: .seconds(60), burst: 1)
                limit.onFull = policy
                route.rateLimit = limit
                config.routes = [route]
            }
            let statuses = try (0..<40).map { try fixture.curl("/x", ["-H", "X-Tenant: t\($0)"]).status }
            let records = fixture.records(atLeast: 40)
            await fixture.shutdown()
            let full = records.filter { ($0["rate_limit"] as? [String: Any])?["store"] as? String == "full" }
            XCTAssertGreaterThanOrEqual(full.count, 24, "40 tenants cannot fit in 16 cells")
            XCTAssertFalse(statuses.contains(429), "no tenant had used its budget")
            switch policy {
            case .allow:
                XCTAssertEqual(Set(statuses), [200])
            case .deny:
                XCTAssertEqual(statuses.filter { $0 == 503 }.count, full.count)
                XCTAssertEqual(Set(full.map(\.reason)), ["state.unavailable"])
            }
        }
    }
}
