import Foundation
import GatehouseCore
import XCTest

@testable import GatehouseServer

/// Real TLS over loopback with curl as the client and certificates made by the `openssl`
/// command line (TestPKI): which workload is calling, and may it call this route?
final class PeerIdentityEndToEndTests: XCTestCase {
    private func fixture(
        _ mode: ClientCertificateMode, routes: [RouteConfig]? = nil
    ) async throws -> GatewayFixture {
        try await GatewayFixture { config in
            let pki = try! TestPKI.files()
            MutualTLS.configure(&config, pki: pki, mode: mode, routes: routes ?? [
                MutualTLS.route("charge", .exact("/charge"), methods: ["POST"], peers: [TestPKI.checkoutID]),
                MutualTLS.route("status", .exact("/status"), methods: ["GET"], peers: ["spiffe://prod.example/ns/pay/*"]),
                MutualTLS.route("open", .prefix("/open"), peers: nil),
                MutualTLS.route("nobody", .prefix("/nobody"), peers: []),
                MutualTLS.route("staging", .prefix("/staging"), peers: ["spiffe://staging.example/*"]),
            ])
        }
    }

    func testAllowedPeerIsForwardedWithItsVerifiedIdentity() async throws {
        let fixture = try await fixture(.required)
        defer { Task { await fixture.shutdown() } }
        let client = fixture.pki.client(.prodCheckout)
        let result = try MutualTLS.curl(fixture, "/charge", client: client, ["-X", "POST", "-d", "x=1"])
        XCTAssertEqual(result.response?.status, 200, result.stderr)

        let hash = try MutualTLS.fingerprint(client.certificate)
        let seen = try XCTUnwrap(fixture.upstream.waitForRequests(1).first).head.headers
        XCTAssertEqual(seen["x-gatehouse-peer-id"], [TestPKI.checkoutID])
        // TestPKI's server certificate has no URI SAN, so there is no `By=`.
        XCTAssertEqual(seen["x-forwarded-client-cert"], ["Hash=\(hash);URI=\(TestPKI.checkoutID)"])

        let record = try XCTUnwrap(fixture.records(atLeast: 1).first)
        XCTAssertEqual(record.decision, "allow")
        XCTAssertEqual(record.reason, "allowed")
        XCTAssertEqual(record.peerID, TestPKI.checkoutID)
        XCTAssertEqual(record.peerHash, hash)
    }

    func testOtherWorkloadsAndTrustDomainsAreNotAllowed() async throws {
        let fixture = try await fixture(.required)
        defer { Task { await fixture.shutdown() } }
        // Same trust domain, another workload.
        let sidecar = try MutualTLS.curl(fixture, "/charge", client: fixture.pki.client(.prodSidecar), ["-X", "POST"])
        XCTAssertEqual(sidecar.response?.status, 403, sidecar.stderr)
        // A valid staging workload: its chain verifies against staging's bundle, but the route wants prod.
        let staging = try MutualTLS.curl(fixture, "/charge", client: fixture.pki.client(.stagingCheckout), ["-X", "POST"])
        XCTAssertEqual(staging.response?.status, 403, staging.stderr)
        // ...and it may call the route that names its trust domain.
        let stagingRoute = try MutualTLS.curl(fixture, "/staging/x", client: fixture.pki.client(.stagingCheckout))
        XCTAssertEqual(stagingRoute.response?.status, 200, stagingRoute.stderr)
        // An empty peer list allows nobody.
        let nobody = try MutualTLS.curl(fixture, "/nobody", client: fixture.pki.client(.prodCheckout))
        XCTAssertEqual(nobody.response?.status, 403, nobody.stderr)

        let records = fixture.records(atLeast: 4)
        XCTAssertEqual(records.map(\.reason), ["peer.not_allowed", "peer.not_allowed", "allowed", "peer.not_allowed"])
        XCTAssertEqual(records.map(\.decision), ["deny", "deny", "allow", "deny"])
        XCTAssertEqual(records.map(\.peerID), [TestPKI.sidecarID, TestPKI.stagingCheckoutID, TestPKI.stagingCheckoutID, TestPKI.checkoutID])
        XCTAssertEqual(fixture.upstream.requests.count, 1, "only the allowed request reached the upstream")
    }

    func testMethodsAndPathsArePartOfThePolicy() async throws {
        // "The sidecar may call GET /status but not POST /charge."
        let fixture = try await fixture(.required)
        defer { Task { await fixture.shutdown() } }
        let sidecar = fixture.pki.client(.prodSidecar)
        XCTAssertEqual(try MutualTLS.curl(fixture, "/status", client: sidecar).response?.status, 200)
        XCTAssertEqual(try MutualTLS.curl(fixture, "/charge", client: sidecar, ["-X", "POST"]).response?.status, 403)
        XCTAssertEqual(try MutualTLS.curl(fixture, "/status", client: sidecar, ["-X", "POST"]).response?.status, 404)
        XCTAssertEqual(fixture.records(atLeast: 3).map(\.reason), ["allowed", "peer.not_allowed", "route.not_found"])
    }

    func testRefusedHandshakesAreRecordedWithTheClaimedID() async throws {
        let fixture = try await fixture(.required)
        defer { Task { await fixture.shutdown() } }
        let cases: [(TestPKI.Client?, String, String?)] = [
            (.stagingIDSignedByProd, "tls.untrusted_chain", TestPKI.stagingCheckoutID),
            (.untrusted, "tls.untrusted_chain", TestPKI.checkoutID),
            (.twoURIs, "tls.invalid_svid", TestPKI.checkoutID),
            (.caAsClient, "tls.invalid_svid", TestPKI.checkoutID),
            (.expired, "tls.cert_expired", TestPKI.checkoutID),
            (.noURI, "tls.invalid_svid", nil),
            (nil, "tls.no_client_cert", nil),
        ]
        for (client, _, _) in cases {
            let result = try MutualTLS.curl(fixture, "/open", client: client.map { fixture.pki.client($0) })
            XCTAssertNotEqual(result.exit, 0, "\(String(describing: client)) must not get through: \(String(describing: result.response))")
        }
        let records = fixture.records(atLeast: cases.count)
        XCTAssertEqual(records.count, cases.count)
        for (record, (client, reason, claimed)) in zip(records, cases) {
            XCTAssertEqual(record.reason, reason, "\(String(describing: client))")
            XCTAssertEqual(record.decision, "deny")
            XCTAssertEqual(record["status"] as? Int, 0)
            XCTAssertEqual(record.peerID, claimed, "\(String(describing: client))")
            XCTAssertNil(record.peerHash, "a refused certificate is not a verified peer")
            XCTAssertEqual(record["client_ip"] as? String, "127.0.0.1")
        }
        XCTAssertTrue(fixture.upstream.requests.isEmpty)
        // The gateway keeps serving everyone else.
        XCTAssertEqual(try MutualTLS.curl(fixture, "/open", client: fixture.pki.client(.prodCheckout)).response?.status, 200)
    }

    func testOptionalListenerWithoutACertificate() async throws {
        let fixture = try await fixture(.optional)
        defer { Task { await fixture.shutdown() } }
        let anonymous = try MutualTLS.curl(fixture, "/charge", client: nil, ["-X", "POST"])
        XCTAssertEqual(anonymous.response?.status, 401, anonymous.stderr)
        let open = try MutualTLS.curl(fixture, "/open", client: nil, ["-H", "X-Forwarded-Client-Cert: URI=spiffe://prod.example/ns/pay/sa/checkout"])
        XCTAssertEqual(open.response?.status, 200, open.stderr)
        // A presented certificate must still verify on an optional listener.
        let untrusted = try MutualTLS.curl(fixture, "/open", client: fixture.pki.client(.untrusted))
        XCTAssertNotEqual(untrusted.exit, 0)
        let withCertificate = try MutualTLS.curl(fixture, "/charge", client: fixture.pki.client(.prodCheckout), ["-X", "POST"])
        XCTAssertEqual(withCertificate.response?.status, 200, withCertificate.stderr)

        let records = fixture.records(atLeast: 4)
        XCTAssertEqual(records.map(\.reason), ["peer.missing", "allowed", "tls.untrusted_chain", "allowed"])
        XCTAssertEqual(records.map(\.peerID), [nil, nil, TestPKI.checkoutID, TestPKI.checkoutID])
        let anonymousSeen = try XCTUnwrap(fixture.upstream.waitForRequests(1).first).head.headers
        XCTAssertFalse(anonymousSeen.contains(name: "x-forwarded-client-cert"), "a forged XFCC without a peer is dropped")
        XCTAssertFalse(anonymousSeen.contains(name: "x-gatehouse-peer-id"))
    }

    func testForgedIdentityHeadersAreReplacedInEveryMode() async throws {
        let fixture = try await fixture(.required, routes: [
            MutualTLS.route("set", .prefix("/set"), peers: nil, forward: .set),
            MutualTLS.route("append", .prefix("/append"), peers: nil, forward: .append),
            MutualTLS.route("sanitize", .prefix("/sanitize"), peers: nil, forward: .sanitize),
        ])
        defer { Task { await fixture.shutdown() } }
        let forged = [
            "-H", "X-Forwarded-Client-Cert: Hash=00;URI=spiffe://prod.example/ns/admin/sa/root",
            "-H", "X-Gatehouse-Peer-Id: spiffe://prod.example/ns/admin/sa/root",
        ]
        let client = fixture.pki.client(.prodCheckout)
        let hash = try MutualTLS.fingerprint(client.certificate)
        for path in ["/set", "/append", "/sanitize"] {
            XCTAssertEqual(try MutualTLS.curl(fixture, path, client: client, forged).response?.status, 200)
        }
        let seen = fixture.upstream.waitForRequests(3).map(\.head.headers)
        XCTAssertEqual(seen.count, 3)
        // set and append (the client is not a trusted proxy, so nothing is appended to):
        for headers in seen.prefix(2) {
            XCTAssertEqual(headers["x-forwarded-client-cert"], ["Hash=\(hash);URI=\(TestPKI.checkoutID)"])
            XCTAssertEqual(headers["x-gatehouse-peer-id"], [TestPKI.checkoutID])
        }
        XCTAssertEqual(seen[2]["x-forwarded-client-cert"], [])
        XCTAssertEqual(seen[2]["x-gatehouse-peer-id"], [])
    }

    func testAppendKeepsATrustedProxysElement() async throws {
        let fixture = try await GatewayFixture { config in
            MutualTLS.configure(&config, pki: try! TestPKI.files(), mode: .required, routes: [
                MutualTLS.route("append", .prefix("/"), peers: nil, forward: .append)
            ])
            config.listeners[0].trustedProxies = [CIDR(address: [127, 0, 0, 0], prefixLength: 8)]
        }
        defer { Task { await fixture.shutdown() } }
        let client = fixture.pki.client(.prodSidecar)
        let hash = try MutualTLS.fingerprint(client.certificate)
        let result = try MutualTLS.curl(fixture, "/x", client: client, ["-H", "X-Forwarded-Client-Cert: Hash=aa;URI=spiffe://prod.example/edge"])
        XCTAssertEqual(result.response?.status, 200)
        let seen = try XCTUnwrap(fixture.upstream.waitForRequests(1).first).head.headers
        XCTAssertEqual(seen["x-forwarded-client-cert"], ["Hash=aa;URI=spiffe://prod.example/edge,Hash=\(hash);URI=\(TestPKI.sidecarID)"])
    }
}
