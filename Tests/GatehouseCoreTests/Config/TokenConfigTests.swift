import XCTest

@testable import GatehouseCore

/// `issuers` and `routes[].token`.
final class TokenConfigTests: XCTestCase {
    private func errors(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        configErrors(yaml, file: file, line: line)
    }

    private func yaml(issuer: String = """
              issuer: https://idp.example
              jwks_file: keys.json
              audiences: [billing]
        """, token: String = """
              issuer: corp
              scopes: [invoices.read]
        """) -> String {
        """
        environment: prod
        issuers:
          corp:
        \(issuer)
        listeners:
          - name: public
            address: 127.0.0.1:0
            insecure_plaintext: true
        upstreams:
          app: { endpoints: ["127.0.0.1:9000"] }
        routes:
          - name: all
            match: { path_prefix: / }
            upstream: app
            token:
        \(token)

        """
    }

    func testEveryKeyLoads() throws {
        let config = try ConfigLoader.parse(yaml: yaml(issuer: """
                  issuer: https://idp.example
                  jwks_file: keys.json
                  audiences: [billing, "https://billing.example"]
                  algorithms: [ES256, RS256]
                  clock_skew: 10s
                  max_lifetime: 1h
                  required_claims: { env: prod, tier: 2, internal: true }
                  revoked: revoked.txt
            """, token: """
                  issuer: [corp]
                  scopes: [invoices.read, invoices.write]
                  claims: { tenant: acme }
                  from: header:X-Api-Token
                  bind: mtls
                  upstream: strip
                  claims_to_headers: { sub: X-Gatehouse-User, tenant: X-Tenant }
            """), file: "t.yaml")
        let issuer = try XCTUnwrap(config.issuers.first)
        XCTAssertEqual(issuer.name, "corp")
        XCTAssertEqual(issuer.issuer, "https://idp.example")
        XCTAssertEqual(issuer.jwksFile, "keys.json")
        XCTAssertEqual(issuer.audiences, ["billing", "https://billing.example"])
        XCTAssertEqual(issuer.algorithms, ["ES256", "RS256"])
        XCTAssertEqual(issuer.clockSkew, .seconds(10))
        XCTAssertEqual(issuer.maxLifetime, .seconds(3600))
        XCTAssertEqual(issuer.requiredClaims, ["env": .string("prod"), "tier": .int(2), "internal": .bool(true)])
        XCTAssertEqual(issuer.revokedFile, "revoked.txt")
        let token = try XCTUnwrap(config.routes[0].token)
        XCTAssertEqual(token.issuers, ["corp"])
        XCTAssertEqual(token.scopes, ["invoices.read", "invoices.write"])
        XCTAssertEqual(token.claims, ["tenant": .string("acme")])
        XCTAssertEqual(token.source, .header("x-api-token"))
        XCTAssertTrue(token.bindToClientCertificate)
        XCTAssertTrue(token.stripUpstream)
        XCTAssertEqual(token.claimsToHeaders, ["sub": "x-gatehouse-user", "tenant": "x-tenant"])
    }

    func testDefaults() throws {
        let config = try ConfigLoader.parse(yaml: yaml(), file: "t.yaml")
        XCTAssertNil(config.issuers[0].algorithms)
        XCTAssertEqual(config.issuers[0].clockSkew, .seconds(30))
        XCTAssertNil(config.issuers[0].maxLifetime)
        let token = try XCTUnwrap(config.routes[0].token)
        XCTAssertEqual(token.source, .authorizationBearer)
        XCTAssertFalse(token.bindToClientCertificate)
        XCTAssertFalse(token.stripUpstream)
    }

    func testIssuerMistakes() {
        XCTAssertEqual(errors(yaml(issuer: """
                  issuer: https://idp.example
                  jwks_file: keys.json
            """)), ["t.yaml:4:7: issuers.corp.audiences: required key is missing (expected a non-empty list of accepted `aud` values)"])
        XCTAssertEqual(errors(yaml(issuer: """
                  issuer: https://idp.example
                  jwks_file: keys.json
                  audiences: [billing]
                  algorithms: [none, HS256, XY1]
            """)), [
                "t.yaml:7:20: issuers.corp.algorithms[0]: `none` is never accepted (expected a signing algorithm)",
                "t.yaml:7:26: issuers.corp.algorithms[1]: `HS256` needs the issuer's own `hmac_secret` (expected an asymmetric algorithm, or `hmac_secret: env:NAME`)",
                "t.yaml:7:33: issuers.corp.algorithms[2]: unknown algorithm `XY1` (expected one of `RS256`, `RS384`, `RS512`, `PS256`, `ES256`, `ES384`, `EdDSA`, `HS256`)",
            ])
        XCTAssertEqual(errors(yaml(issuer: """
                  issuer: https://idp.example
                  audiences: [billing]
            """)), ["t.yaml:4:7: issuers.corp: no keys to verify tokens with (expected `jwks_uri: https://...`, `jwks_file: PATH` (or `hmac_secret` for an HS256 issuer))"])
    }

    func testAFetchedKeySet() throws {
        let config = try ConfigLoader.parse(yaml: yaml(issuer: """
                  issuer: https://idp.example
                  jwks_uri: https://idp.example:8443/.well-known/jwks.json?v=2
                  ca: idp-ca.pem
                  refresh_interval: 10m
                  stale_for: 2h
                  audiences: [billing]
            """), file: "t.yaml")
        let endpoint = try XCTUnwrap(config.issuers.first?.jwksEndpoint)
        XCTAssertEqual(endpoint.url, HTTPSURL(host: "idp.example", port: 8443, target: "/.well-known/jwks.json?v=2"))
        XCTAssertEqual(endpoint.caFile, "idp-ca.pem")
        XCTAssertEqual(endpoint.refreshInterval, .seconds(600))
        XCTAssertEqual(endpoint.staleFor, .seconds(7200))
        XCTAssertNil(config.issuers.first?.jwksFile)

        let defaults = try ConfigLoader.parse(yaml: yaml(issuer: """
                  issuer: https://idp.example
                  jwks_uri: https://[::1]
                  jwks_file: pinned.json
                  audiences: [billing]
            """), file: "t.yaml")
        let fetched = try XCTUnwrap(defaults.issuers.first?.jwksEndpoint)
        XCTAssertEqual(fetched.url, HTTPSURL(host: "::1", port: 443, target: "/"))
        XCTAssertEqual(fetched.url.description, "https://[::1]/")
        XCTAssertNil(fetched.caFile, "the system roots")
        XCTAssertEqual(fetched.refreshInterval, .seconds(300))
        XCTAssertEqual(fetched.staleFor, .seconds(3600))
        XCTAssertEqual(defaults.issuers.first?.jwksFile, "pinned.json", "both: the file's keys and the fetched ones")
    }

    func testFetchedKeySetMistakes() {
        func uriErrors(_ uri: String) -> [String] {
            errors(yaml(issuer: """
                      issuer: https://idp.example
                      jwks_uri: \(uri)
                      audiences: [billing]
                """))
        }
        XCTAssertEqual(uriErrors("http://idp.example/keys"), [
            "t.yaml:5:17: issuers.corp.jwks_uri: `http://idp.example/keys` is not an https URL (expected an `https://` URL, e.g. `https://idp.example/.well-known/jwks.json`)"
        ])
        XCTAssertEqual(uriErrors("https://user:pw@idp.example/keys"), [
            "t.yaml:5:17: issuers.corp.jwks_uri: URL has user info (expected no credentials in the URL)"
        ])
        XCTAssertEqual(uriErrors("https://idp.example/keys#x").first?.contains("URL has a fragment"), true)
        XCTAssertEqual(uriErrors("https://idp_example/keys").first?.contains("`idp_example` is not a valid host name"), true)
        XCTAssertEqual(uriErrors("https://idp.example:99999/keys").first?.contains("port 99999 is out of range"), true)

        XCTAssertEqual(errors(yaml(issuer: """
                  issuer: https://idp.example
                  jwks_file: keys.json
                  stale_for: 1h
                  audiences: [billing]
            """)), ["t.yaml:6:18: issuers.corp.stale_for: `stale_for` applies to a fetched key set (expected `jwks_uri` next to it, or no `stale_for`)"])
        XCTAssertEqual(errors(yaml(issuer: """
                  issuer: https://idp.example
                  jwks_uri: https://idp.example/keys
                  refresh_interval: 10m
                  stale_for: 5m
                  audiences: [billing]
            """)), ["t.yaml:7:18: issuers.corp.stale_for: `stale_for` is not longer than `refresh_interval` (10m) (expected a longer duration, e.g. `1h`)"])
        XCTAssertEqual(errors(yaml(issuer: """
                  issuer: https://idp.example
                  jwks_uri: https://idp.example/keys
                  refresh_interval: 2h
                  audiences: [billing]
            """)), ["t.yaml:6:25: issuers.corp.refresh_interval: `refresh_interval` is not shorter than the default `stale_for` (1h) (expected a shorter interval, or a longer `stale_for`)"])
        XCTAssertEqual(errors(yaml(issuer: """
                  issuer: https://idp.example
                  jwks_uri: https://idp.example/keys
                  refresh_interval: 500ms
                  audiences: [billing]
            """)), ["t.yaml:6:25: issuers.corp.refresh_interval: refresh more often than every second (expected at least `1s`, e.g. `5m`)"])
    }

    func testRouteTokenMistakes() {
        XCTAssertEqual(errors(yaml(token: """
                  issuer: crop
            """)), ["t.yaml:18:15: routes[0].token.issuer: unknown issuer `crop` (did you mean `corp`?) (expected one of `corp`)"])
        XCTAssertEqual(errors(yaml(token: """
                  issuer: corp
                  upstream: mint
            """)), ["t.yaml:19:17: routes[0].token.upstream: `mint` needs the gateway's own signing key (expected a `token_minting` section)"])
        XCTAssertEqual(errors(yaml(token: """
                  issuer: corp
                  bind: tls
                  from: cookie
            """)), [
                "t.yaml:19:13: routes[0].token.bind: unknown value `tls` (expected one of `none`, `mtls`)",
                "t.yaml:20:13: routes[0].token.from: `cookie` is not a token source (expected `bearer` (Authorization: Bearer) or `header:NAME`)",
            ].sorted())
        XCTAssertEqual(errors(yaml(token: """
                  issuer: corp
                  claims_to_headers: { sub: X-Forwarded-For, tenant: "bad header" }
            """)), [
                "t.yaml:19:33: routes[0].token.claims_to_headers.sub: `X-Forwarded-For` is set by the gateway itself (expected another header name, e.g. `X-Gatehouse-User`)",
                "t.yaml:19:58: routes[0].token.claims_to_headers.tenant: `bad header` is not a header name (expected e.g. `X-User`)",
            ])
        XCTAssertEqual(errors(yaml(token: """
                  issuer: corp
                  replay: nonce
            """)), ["t.yaml:19:15: routes[0].token.replay: unknown value `nonce` (expected one of `none`, `jti`)"])
    }

    func testTokenMinting() throws {
        let minting = """
            token_minting:
              issuer: https://gatehouse.prod
              private_key: file:/etc/gatehouse/mint.key
              lifetime: 30s

            """
        let config = try ConfigLoader.parse(yaml: yaml(token: """
                  issuer: corp
                  upstream: mint
            """) + minting, file: "t.yaml")
        XCTAssertEqual(config.tokenMinting?.issuer, "https://gatehouse.prod")
        XCTAssertEqual(config.tokenMinting?.privateKey, .file("/etc/gatehouse/mint.key"))
        XCTAssertEqual(config.tokenMinting?.lifetime, .seconds(30))
        XCTAssertEqual(config.routes[0].token?.mintUpstream, true)
        XCTAssertEqual(errors(yaml() + minting.replacingOccurrences(of: "30s", with: "1h")), [
            "t.yaml:23:13: token_minting.lifetime: a minted token lives 1 s to 5 m (expected e.g. `60s`)"
        ])
    }

    func testARouteCannotAcceptTwoIssuersWithTheSameIss() {
        let text = yaml(token: """
                  issuer: [corp, corp2]
            """).replacingOccurrences(of: "listeners:", with: """
              corp2:
                issuer: https://idp.example
                jwks_file: other.json
                audiences: [billing]
            listeners:
            """)
        XCTAssertEqual(errors(text), [
            "t.yaml:22:7: routes[0].token.issuer: issuers `corp` and `corp2` both have iss `https://idp.example` (expected issuers with distinct `issuer` values)"
        ])
    }
}
