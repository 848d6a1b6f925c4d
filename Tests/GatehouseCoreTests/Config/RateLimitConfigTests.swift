import XCTest

@testable import GatehouseCore

/// `rate_limits` and `routes[].rate_limit`.
final class RateLimitConfigTests: XCTestCase {
    private func yaml(limits: String = "", route: String) -> String {
        """
        environment: prod
        trust_domains:
          prod.example: { bundle: ca.pem }
        issuers:
          corp: { issuer: "https://idp.example", jwks_file: keys.json, audiences: [billing] }
        listeners:
          - { name: public, address: "127.0.0.1:0", insecure_plaintext: true }
        upstreams:
          app: { endpoints: ["127.0.0.1:9000"] }
        \(limits)
        routes:
          - name: r
            match: { path_prefix: / }
            upstream: app
        \(route)

        """
    }

    func testNamedAndInlineLimits() throws {
        let config = try ConfigLoader.parse(yaml: yaml(limits: """
            rate_limits:
              per-caller: { key: [peer, route], rate: 100/s, burst: 20, on_full: deny, on_store_error: deny }
            """, route: """
                peers: ["spiffe://prod.example/*"]
                rate_limit: per-caller
            """), file: "t.yaml")
        let limit = try XCTUnwrap(config.routes[0].rateLimit)
        XCTAssertEqual(limit.name, "per-caller")
        XCTAssertEqual(limit.key, [.peer, .route])
        XCTAssertEqual(limit.policy, RatePolicy(count: 100, period: .seconds(1), burst: 20))
        XCTAssertEqual(limit.onFull, .deny)
        XCTAssertEqual(limit.onStoreError, .deny)

        let inline = try ConfigLoader.parse(yaml: yaml(route: """
                token: { issuer: corp }
                rate_limit: { key: [subject, client_id, ip, "header:X-Tenant"], rate: 6000/m, burst: 1 }
            """), file: "t.yaml")
        let own = try XCTUnwrap(inline.routes[0].rateLimit)
        XCTAssertEqual(own.name, "r", "an inline limit is named after its route")
        XCTAssertEqual(own.key, [.subject, .clientID, .ip, .header("x-tenant")])
        XCTAssertEqual(own.policy.emissionIntervalNanos, 10_000_000)
        XCTAssertEqual(own.onFull, .allow, "rate limits fail open by default")
        XCTAssertEqual(own.onStoreError, .allow)
    }

    func testKeysMustComeFromWhatTheRouteVerifies() {
        XCTAssertEqual(configErrors(yaml(route: """
                rate_limit: { key: peer, rate: 10/s, burst: 1 }
            """)), [
            "t.yaml:15:17: routes[0].rate_limit: rate limit `r` is keyed on `peer`, but route `r` verifies no peer (expected `peers` on the route, or another key)"
        ])
        XCTAssertEqual(configErrors(yaml(route: """
                rate_limit: { key: [ip, subject], rate: 10/s, burst: 1 }
            """)), [
            "t.yaml:15:17: routes[0].rate_limit: rate limit `r` is keyed on `subject`, but route `r` verifies no token (expected `token` on the route, or another key)"
        ])
    }

    func testMistakes() {
        XCTAssertEqual(configErrors(yaml(route: """
                rate_limit: { key: [ip, ip, "header:"], rate: 10/x, burst: 0, on_full: maybe }
            """)), [
            "t.yaml:15:29: routes[0].rate_limit.key[1]: `ip` appears twice in the key",
            "t.yaml:15:33: routes[0].rate_limit.key[2]: `header:` is not a rate-limit key (expected `peer`, `subject`, `client_id`, `ip`, `header:NAME` or `route`)",
            "t.yaml:15:51: routes[0].rate_limit.rate: `10/x` has an unknown unit `x` (expected a count per `s`, `m` or `h`, e.g. `100/s` or `6000/m`)",
            "t.yaml:15:64: routes[0].rate_limit.burst: 0 is out of range (expected 1-1000000)",
            "t.yaml:15:76: routes[0].rate_limit.on_full: unknown value `maybe` (expected one of `allow`, `deny`)",
        ])
        XCTAssertEqual(configErrors(yaml(route: """
                rate_limit: { key: ip, rate: 10/s }
            """)), ["t.yaml:15:17: routes[0].rate_limit.burst: required key is missing (expected the requests a caller may send at once, e.g. `20`)"])
        XCTAssertEqual(configErrors(yaml(limits: """
            rate_limits:
              per-ip: { key: ip, rate: 0/s, burst: 1 }
            """, route: """
                rate_limit: per-ipp
            """)), [
            "t.yaml:11:28: rate_limits.per-ip.rate: a rate of 0 admits nothing (expected a count per `s`, `m` or `h`, e.g. `100/s` or `6000/m`)",
            "t.yaml:16:17: routes[0].rate_limit: unknown rate limit `per-ipp` (did you mean `per-ip`?) (expected one of `per-ip`)",
        ])
    }
}
