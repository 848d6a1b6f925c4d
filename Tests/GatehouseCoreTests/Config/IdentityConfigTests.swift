import XCTest

@testable import GatehouseCore

/// `trust_domains`, `listeners[].tls.client_certificates`, `routes[].peers`,
/// `routes[].forward_client_cert` and `upstreams.NAME.tls`.
final class IdentityConfigTests: XCTestCase {
    private func errors(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        configErrors(yaml, file: file, line: line)
    }

    /// A file with every identity key; `extra` lines replace the marked ones.
    private func yaml(
        clientCertificates: String = "required",
        peers: String = #"["spiffe://prod.example/ns/pay/sa/checkout", "spiffe://prod.example/ns/ops/*"]"#,
        forward: String = "append",
        upstreamTLS: String = """
              trust_domain: prod.example
              server_name: billing.internal
              certificate: gw.pem
              private_key: file:gw.key
              spiffe_id: spiffe://prod.example/ns/pay/sa/billing
        """
    ) -> String {
        """
        environment: prod
        trust_domains:
          prod.example:
            bundle: prod-ca.pem
          staging.example:
            bundle: staging-ca.pem
        listeners:
          - name: public
            address: 127.0.0.1:0
            tls:
              certificate: server.pem
              private_key: file:server.key
              client_certificates: \(clientCertificates)
        upstreams:
          billing:
            endpoints: ["127.0.0.1:9000"]
            tls:
        \(upstreamTLS)
        routes:
          - name: charge
            match: { path: /charge, methods: [POST] }
            upstream: billing
            peers: \(peers)
            forward_client_cert: \(forward)

        """
    }

    func testEveryIdentityKeyLoads() throws {
        let config = try ConfigLoader.parse(yaml: yaml(), file: "t.yaml")
        XCTAssertEqual(config.trustDomains.map(\.name), ["prod.example", "staging.example"])
        XCTAssertEqual(config.trustDomains[0].bundlePath, "prod-ca.pem")
        XCTAssertEqual(config.trustDomains[0].location.line, 3)
        XCTAssertEqual(config.listeners[0].tls?.clientCertificates, .required)
        let route = config.routes[0]
        XCTAssertEqual(route.forwardClientCert, .append)
        XCTAssertEqual(route.peers?.patterns, [
            .exact(try SPIFFEID(parsing: "spiffe://prod.example/ns/pay/sa/checkout")),
            .below(try SPIFFEID(parsing: "spiffe://prod.example/ns/ops")),
        ])
        let tls = try XCTUnwrap(config.upstreams[0].tls)
        XCTAssertEqual(tls.roots, .trustDomain("prod.example"))
        XCTAssertEqual(tls.serverName, "billing.internal")
        XCTAssertEqual(tls.certificatePath, "gw.pem")
        XCTAssertEqual(tls.privateKey, .file("gw.key"))
        XCTAssertEqual(tls.spiffeIDs, [try SPIFFEID(parsing: "spiffe://prod.example/ns/pay/sa/billing")])
    }

    func testDefaults() throws {
        let config = try ConfigLoader.parse(yaml: """
            environment: prod
            listeners:
              - name: public
                address: 127.0.0.1:0
                tls: { certificate: s.pem, private_key: file:s.key }
            upstreams:
              app: { endpoints: ["127.0.0.1:9000"] }
            routes:
              - name: all
                match: { path_prefix: / }
                upstream: app

            """, file: "t.yaml")
        XCTAssertEqual(config.listeners[0].tls?.clientCertificates, ClientCertificateMode.none)
        XCTAssertNil(config.routes[0].peers, "no `peers` key: the route does not look at peers")
        XCTAssertEqual(config.routes[0].forwardClientCert, .set)
        XCTAssertNil(config.upstreams[0].tls)
        XCTAssertTrue(config.trustDomains.isEmpty)
    }

    func testAnEmptyPeerListLoadsAndAllowsNobody() throws {
        let config = try ConfigLoader.parse(yaml: yaml(peers: "[]"), file: "t.yaml")
        let policy = try XCTUnwrap(config.routes[0].peers)
        XCTAssertTrue(policy.patterns.isEmpty)
        XCTAssertFalse(policy.allows(try SPIFFEID(parsing: "spiffe://prod.example/ns/pay/sa/checkout")))
    }

    func testPeerPatternErrors() {
        XCTAssertEqual(errors(yaml(peers: #"["spiffe://prod.example/ns/pay/sa/checkout", "spiffe://other.example/x"]"#)), [
            "t.yaml:27:57: routes[0].peers[1]: trust domain `other.example` is not configured (expected one of `prod.example`, `staging.example`)",
        ])
        let wildcard = errors(yaml(peers: #"["spiffe://prod.example/ns/pay*"]"#))
        XCTAssertEqual(wildcard.count, 1)
        XCTAssertTrue(wildcard[0].hasPrefix("t.yaml:27:13: routes[0].peers[0]: `spiffe://prod.example/ns/pay*` is not a valid SPIFFE ID pattern"), wildcard[0])
        XCTAssertEqual(errors(yaml(peers: #"["spiffe://prod.example/a", "spiffe://prod.example/a"]"#)), [
            "t.yaml:27:40: routes[0].peers[1]: duplicate peer pattern `spiffe://prod.example/a`",
        ])
        XCTAssertEqual(errors(yaml(peers: "spiffe://prod.example/a")), [
            "t.yaml:27:12: routes[0].peers: wrong type: found a string (expected a list)",
        ])
    }

    func testModeErrors() {
        XCTAssertEqual(errors(yaml(clientCertificates: "yes-please")), [
            "t.yaml:13:28: listeners[0].tls.client_certificates: unknown value `yes-please` (expected one of `none`, `optional`, `required`)",
        ])
        XCTAssertEqual(errors(yaml(forward: "forward")), [
            "t.yaml:28:26: routes[0].forward_client_cert: unknown value `forward` (expected one of `sanitize`, `set`, `append`)",
        ])
    }

    func testClientCertificatesNeedATrustDomain() {
        let text = yaml().replacingOccurrences(of: """
            trust_domains:
              prod.example:
                bundle: prod-ca.pem
              staging.example:
                bundle: staging-ca.pem

            """, with: "")
            .replacingOccurrences(of: "    peers: [\"spiffe://prod.example/ns/pay/sa/checkout\", \"spiffe://prod.example/ns/ops/*\"]\n", with: "")
            .replacingOccurrences(of: "      trust_domain: prod.example\n", with: "      ca: ca.pem\n")
        XCTAssertEqual(errors(text), [
            "t.yaml:8:28: listeners[0].tls.client_certificates: `required` needs a trust domain to verify against (expected at least one entry under `trust_domains`)",
        ])
    }

    func testTrustDomainNameAndBundleErrors() {
        let text = yaml().replacingOccurrences(of: "  staging.example:\n    bundle: staging-ca.pem\n", with: "  Staging.Example:\n    bundel: x.pem\n")
        let problems = errors(text)
        XCTAssertEqual(problems.count, 3, "\(problems)")
        XCTAssertTrue(problems[0].hasPrefix("t.yaml:5:3: trust_domains.Staging.Example: `Staging.Example` is not a valid trust domain"), problems[0])
        XCTAssertEqual(problems[1], "t.yaml:6:5: trust_domains.Staging.Example.bundel: unknown key (did you mean `bundle`?)")
        XCTAssertEqual(problems[2], "t.yaml:6:5: trust_domains.Staging.Example.bundle: required key is missing (expected the path of a PEM file of CA certificates)")
    }

    func testUpstreamTLSErrors() {
        XCTAssertEqual(errors(yaml(upstreamTLS: """
                  ca: ca.pem
                  trust_domain: prod.example
            """)), ["t.yaml:19:21: upstreams.billing.tls.trust_domain: `ca` and `trust_domain` cannot both be set (expected exactly one of them)"])
        XCTAssertEqual(errors(yaml(upstreamTLS: """
                  server_name: billing.internal
            """)), ["t.yaml:18:7: upstreams.billing.tls: no roots to verify the upstream with (expected `ca: FILE` or `trust_domain: NAME`)"])
        XCTAssertEqual(errors(yaml(upstreamTLS: """
                  ca: ca.pem
                  certificate: gw.pem
            """)), ["t.yaml:18:7: upstreams.billing.tls: `certificate` and `private_key` go together (expected both, or neither)"])
        XCTAssertEqual(errors(yaml(upstreamTLS: """
                  trust_domain: staging.example
                  spiffe_id: [spiffe://prod.example/ns/pay/sa/billing]
            """)), ["t.yaml:19:19: upstreams.billing.tls.spiffe_id[0]: `spiffe://prod.example/ns/pay/sa/billing` is not in trust domain `staging.example`, whose bundle verifies this upstream (expected a SPIFFE ID in `spiffe://staging.example/...`)"])
        XCTAssertEqual(errors(yaml(upstreamTLS: """
                  trust_domain: nowhere.example
            """)), ["t.yaml:18:21: upstreams.billing.tls.trust_domain: trust domain `nowhere.example` is not configured (expected one of `prod.example`, `staging.example`)"])
        let badID = errors(yaml(upstreamTLS: """
                  ca: ca.pem
                  spiffe_id: spiffe://prod.example/a/../b
            """))
        XCTAssertEqual(badID.count, 1)
        XCTAssertTrue(badID[0].hasPrefix("t.yaml:19:18: upstreams.billing.tls.spiffe_id: `spiffe://prod.example/a/../b` is not a valid SPIFFE ID"), badID[0])
    }
}
