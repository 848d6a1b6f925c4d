import Foundation
import GatehouseCore
import Crypto
import NIOSSL
import X509
import XCTest

@testable import GatehouseServer

/// Certificates made in-process by `DevPKI.generate` (the openssl-made TestPKI covers the
/// rest of the identity tests), so both ways of making a PKI meet the real TLS stacks.
enum DevPKIFiles {
    private static let made: Result<DevPKIManifest, Error> = Result {
        try DevPKI.generate(into: TestScratch.path("devpki"))
    }

    static func files() throws -> DevPKIManifest { try made.get() }

    /// A server context for a `TestUpstream` that presents `certificate` and requires a
    /// client certificate chaining to `clientCA`.
    static func upstreamContext(certificate: String, key: String, clientCA: String) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
        configuration.certificateVerification = .noHostnameVerification
        configuration.trustRoots = .file(clientCA)
        return try NIOSSLContext(configuration: configuration)
    }

    /// The SPIFFE ID in the URI SAN of a DER certificate.
    static func spiffeID(ofDER der: [UInt8]?) -> String? {
        guard let der, let certificate = try? NIOSSLCertificate(bytes: der, format: .der) else { return nil }
        return TLSMaterial.spiffeID(of: certificate)
    }
}

/// The gateway's hop to an upstream over TLS: it proves who it is with its own SVID and
/// checks who the upstream is, by SPIFFE ID or by host name. Plus DevPKI's client SVIDs on
/// the listener.
final class UpstreamIdentityEndToEndTests: XCTestCase {
    private var dev: DevPKIManifest { try! DevPKIFiles.files() }

    /// The upstream presents `certificate` (default: DevPKI's billing SVID) and requires a
    /// client certificate from DevPKI's prod CA; the gateway talks to it with `tls`.
    private func fixture(
        upstreamCertificate: DevPKIManifest.Role = .upstreamCertificate,
        upstreamKey: DevPKIManifest.Role = .upstreamKey,
        eventLoops: Int = 2,
        tls: UpstreamTLSConfig
    ) async throws -> GatewayFixture {
        try await fixture(upstreamCertificate: dev[upstreamCertificate], upstreamKey: dev[upstreamKey], eventLoops: eventLoops, tls: tls)
    }

    private func fixture(
        upstreamCertificate: String, upstreamKey: String, eventLoops: Int = 2, tls: UpstreamTLSConfig
    ) async throws -> GatewayFixture {
        let dev = self.dev
        let context = try DevPKIFiles.upstreamContext(
            certificate: upstreamCertificate, key: upstreamKey, clientCA: dev[.caCertificate])
        return try await GatewayFixture(eventLoops: eventLoops, upstreamTLS: context) { config in
            config.trustDomains = [TrustDomainConfig(name: "prod.example", bundlePath: dev[.caCertificate], location: MutualTLS.here)]
            config.upstreams[0].tls = tls
            // The handshake must finish within the connect timeout; leave room on a busy machine.
            config.upstreams[0].connectTimeout = .seconds(3)
            config.upstreams[0].responseTimeout = .seconds(3)
        }
    }

    /// `tls: trust_domain prod.example, certificate server.pem, private_key file:server.key, spiffe_id [...]`.
    private func bySPIFFEID(_ ids: [String]) -> UpstreamTLSConfig {
        UpstreamTLSConfig(
            roots: .trustDomain("prod.example"), certificatePath: dev[.serverCertificate], privateKey: .file(dev[.serverKey]),
            spiffeIDs: ids.map { try! SPIFFEID(parsing: $0) })
    }

    /// `tls: ca ca.pem, server_name ..., certificate server.pem, private_key file:server.key`.
    private func byHostName(_ serverName: String?) -> UpstreamTLSConfig {
        UpstreamTLSConfig(
            roots: .caFile(dev[.caCertificate]), serverName: serverName, certificatePath: dev[.serverCertificate],
            privateKey: .file(dev[.serverKey]))
    }

    func testVerifiedUpstreamSeesTheGatewaysSVID() async throws {
        let fixture = try await fixture(tls: bySPIFFEID([DevPKI.upstreamSPIFFEID]))
        defer { Task { await fixture.shutdown() } }
        let response = try fixture.curl("/invoices")
        XCTAssertEqual(response.status, 200, response.body)
        XCTAssertEqual(response.header("x-upstream"), "test")

        let seen = try XCTUnwrap(fixture.upstream.waitForRequests(1).first)
        XCTAssertEqual(seen.head.uri, "/invoices")
        XCTAssertEqual(DevPKIFiles.spiffeID(ofDER: seen.peerCertificateDER), DevPKI.gatewaySPIFFEID, "the gateway's client certificate")
        let record = try XCTUnwrap(fixture.records(atLeast: 1).first)
        XCTAssertEqual(record.reason, "allowed")
        XCTAssertEqual(record.decision, "allow")
        XCTAssertEqual(record["status"] as? Int, 200)
    }

    func testWrongUpstreamIdentityIsRefusedBeforeAnyRequest() async throws {
        let fixture = try await fixture(tls: bySPIFFEID(["spiffe://prod.example/ns/default/sa/other"]))
        defer { Task { await fixture.shutdown() } }
        let response = try fixture.curl("/invoices")
        XCTAssertEqual(response.status, 502, response.body)

        let record = try XCTUnwrap(fixture.records(atLeast: 1).first)
        XCTAssertEqual(record.reason, "upstream.identity_mismatch")
        XCTAssertEqual(record.decision, "deny")
        XCTAssertEqual(record["status"] as? Int, 502)
        XCTAssertGreaterThanOrEqual(fixture.upstream.connectionsAccepted.withLockedValue { $0 }, 1, "the upstream was reached")
        XCTAssertTrue(fixture.upstream.requests.isEmpty, "no request goes to an upstream that is not who it must be")
    }

    func testUpstreamFromAnUntrustedCAIsRefused() async throws {
        // DevPKI's "untrusted" SVID: a prod.example ID signed by a CA no bundle holds. Even
        // though its ID is the one expected, its chain does not verify.
        let bySPIFFE = try await fixture(
            upstreamCertificate: .untrustedClientCertificate, upstreamKey: .untrustedClientKey,
            tls: bySPIFFEID([DevPKI.untrustedClientSPIFFEID]))
        let response = try bySPIFFE.curl("/x")
        XCTAssertEqual(response.status, 502, response.body)
        XCTAssertEqual(bySPIFFE.records(atLeast: 1).map(\.reason), ["upstream.tls_failed"])
        XCTAssertTrue(bySPIFFE.upstream.requests.isEmpty)
        await bySPIFFE.shutdown()

        // By host name: TestPKI's (openssl) localhost certificate is valid for the name but
        // signed by a CA the configured `ca` file does not hold.
        let pki = try TestPKI.files()
        let byName = try await fixture(
            upstreamCertificate: pki.serverCertificate, upstreamKey: pki.serverKey, tls: byHostName("localhost"))
        defer { Task { await byName.shutdown() } }
        let named = try byName.curl("/x")
        XCTAssertEqual(named.status, 502, named.body)
        XCTAssertEqual(byName.records(atLeast: 1).map(\.reason), ["upstream.tls_failed"])
        XCTAssertTrue(byName.upstream.requests.isEmpty)
    }

    func testUpstreamRefusingTheGatewayIsATLSFailure() async throws {
        // No client certificate: the upstream refuses the handshake. Under TLS 1.3 the gateway
        // learns it only after its own side of the handshake finished.
        let fixture = try await fixture(tls: UpstreamTLSConfig(
            roots: .trustDomain("prod.example"), spiffeIDs: [try SPIFFEID(parsing: DevPKI.upstreamSPIFFEID)]))
        defer { Task { await fixture.shutdown() } }
        let response = try fixture.curl("/x")
        XCTAssertEqual(response.status, 502, response.body)
        XCTAssertEqual(fixture.records(atLeast: 1).map(\.reason), ["upstream.tls_failed"])
        XCTAssertTrue(fixture.upstream.requests.isEmpty)
    }

    func testHostNameVerificationWithoutSPIFFEID() async throws {
        // upstream.pem carries DNS localhost and IP 127.0.0.1; the endpoint is 127.0.0.1.
        for (serverName, status, reason) in [
            ("localhost", 200, "allowed"),
            (nil, 200, "allowed"),  // the endpoint's IP, no SNI
            ("127.0.0.1", 200, "allowed"),  // an IP `server_name`: no SNI, the IP SAN must match
            // The IP SAN matches the socket's address, but the name asked for is not in the certificate.
            ("wrong.example", 502, "upstream.tls_failed"),
        ] as [(String?, Int, String)] {
            let fixture = try await fixture(tls: byHostName(serverName))
            let response = try fixture.curl("/x")
            XCTAssertEqual(response.status, status, "server_name \(serverName ?? "unset"): \(response.body)")
            XCTAssertEqual(fixture.records(atLeast: 1).map(\.reason), [reason], "server_name \(serverName ?? "unset")")
            if status == 200 {
                let seen = fixture.upstream.waitForRequests(1).first
                XCTAssertEqual(DevPKIFiles.spiffeID(ofDER: seen?.peerCertificateDER), DevPKI.gatewaySPIFFEID)
            } else {
                XCTAssertTrue(fixture.upstream.requests.isEmpty)
            }
            await fixture.shutdown()
        }
    }

    func testTLSUpstreamConnectionsAreReused() async throws {
        // One event loop: upstream pools are per loop, so two client connections share one pool.
        let fixture = try await fixture(eventLoops: 1, tls: bySPIFFEID([DevPKI.upstreamSPIFFEID]))
        defer { Task { await fixture.shutdown() } }
        XCTAssertEqual(try fixture.curl("/one").status, 200)
        XCTAssertEqual(try fixture.curl("/two").status, 200)
        let seen = fixture.upstream.waitForRequests(2)
        XCTAssertEqual(seen.map(\.head.uri), ["/one", "/two"])
        XCTAssertEqual(fixture.upstream.connectionsAccepted.withLockedValue { $0 }, 1, "the second request reused the TLS connection")
    }

    // MARK: - DevPKI client SVIDs on the listener

    func testDevPKIClientsOnTheListener() async throws {
        let dev = self.dev
        let fixture = try await GatewayFixture { config in
            config.listeners[0].tls = ListenerTLSConfig(
                certificatePath: dev[.serverCertificate], privateKey: .file(dev[.serverKey]), clientCertificates: .required)
            config.trustDomains = [
                TrustDomainConfig(name: "prod.example", bundlePath: dev[.caCertificate], location: MutualTLS.here),
                TrustDomainConfig(name: "staging.example", bundlePath: dev[.stagingCACertificate], location: MutualTLS.here),
            ]
            config.routes = [
                MutualTLS.route("billing", .prefix("/billing"), peers: [DevPKI.prodClientSPIFFEID]),
                MutualTLS.route("staging", .prefix("/staging"), peers: ["spiffe://staging.example/*"]),
            ]
        }
        defer { Task { await fixture.shutdown() } }
        let ca = dev[.caCertificate]
        let prod = (certificate: dev[.prodClientCertificate], key: dev[.prodClientKey])
        let staging = (certificate: dev[.stagingClientCertificate], key: dev[.stagingClientKey])
        let untrusted = (certificate: dev[.untrustedClientCertificate], key: dev[.untrustedClientKey])

        let allowed = try MutualTLS.curl(fixture, "/billing/charge", client: prod, ca: ca)
        XCTAssertEqual(allowed.response?.status, 200, allowed.stderr)
        let stagingAllowed = try MutualTLS.curl(fixture, "/staging/x", client: staging, ca: ca)
        XCTAssertEqual(stagingAllowed.response?.status, 200, stagingAllowed.stderr)
        let stagingOnProd = try MutualTLS.curl(fixture, "/billing/charge", client: staging, ca: ca)
        XCTAssertEqual(stagingOnProd.response?.status, 403, stagingOnProd.stderr)
        let refused = try MutualTLS.curl(fixture, "/billing/charge", client: untrusted, ca: ca)
        XCTAssertNotEqual(refused.exit, 0, "an SVID from an untrusted CA must not get through: \(String(describing: refused.response))")

        let seen = fixture.upstream.waitForRequests(2).map(\.head.headers)
        XCTAssertEqual(seen.count, 2)
        let prodHash = try MutualTLS.fingerprint(prod.certificate)
        let stagingHash = try MutualTLS.fingerprint(staging.certificate)
        // DevPKI's server certificate carries the gateway's SPIFFE ID, hence `By=`.
        XCTAssertEqual(seen.first?["x-forwarded-client-cert"], ["By=\(DevPKI.gatewaySPIFFEID);Hash=\(prodHash);URI=\(DevPKI.prodClientSPIFFEID)"])
        XCTAssertEqual(seen.first?["x-gatehouse-peer-id"], [DevPKI.prodClientSPIFFEID])
        XCTAssertEqual(seen.last?["x-forwarded-client-cert"], ["By=\(DevPKI.gatewaySPIFFEID);Hash=\(stagingHash);URI=\(DevPKI.stagingClientSPIFFEID)"])

        let records = fixture.records(atLeast: 4)
        XCTAssertEqual(records.map(\.reason), ["allowed", "allowed", "peer.not_allowed", "tls.untrusted_chain"])
        XCTAssertEqual(records.map(\.peerID), [
            DevPKI.prodClientSPIFFEID, DevPKI.stagingClientSPIFFEID, DevPKI.stagingClientSPIFFEID, DevPKI.untrustedClientSPIFFEID,
        ])
        XCTAssertEqual(records.last?.decision, "deny")
    }
}

/// The name check of an upstream's certificate when no `spiffe_id` is configured.
final class UpstreamCertificateNameTests: XCTestCase {
    func testNamesAndAddresses() throws {
        let dev = try DevPKIFiles.files()
        let pem = try String(contentsOfFile: dev[.upstreamCertificate], encoding: .utf8)
        let leaf = try Certificate(pemEncoded: pem)  // DNS localhost, IP 127.0.0.1
        XCTAssertTrue(UpstreamTLS.certificate(leaf, carries: "localhost"))
        XCTAssertTrue(UpstreamTLS.certificate(leaf, carries: "LocalHost."))
        XCTAssertTrue(UpstreamTLS.certificate(leaf, carries: "127.0.0.1"))
        XCTAssertFalse(UpstreamTLS.certificate(leaf, carries: "127.0.0.2"))
        XCTAssertFalse(UpstreamTLS.certificate(leaf, carries: "::1"))
        XCTAssertFalse(UpstreamTLS.certificate(leaf, carries: "wrong.example"))
        XCTAssertFalse(UpstreamTLS.certificate(leaf, carries: "localhost.example"))
        XCTAssertFalse(UpstreamTLS.certificate(leaf, carries: ""))
        // The gateway's own certificate also carries ::1.
        let server = try Certificate(pemEncoded: try String(contentsOfFile: dev[.serverCertificate], encoding: .utf8))
        XCTAssertTrue(UpstreamTLS.certificate(server, carries: "::1"))
    }

    func testWildcards() throws {
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let name = try DistinguishedName { CommonName("cn.internal") }
        let leaf = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: key.publicKey, notValidBefore: Date(),
            notValidAfter: Date() + 3600, issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions { SubjectAlternativeNames([.dnsName("*.billing.internal")]) },
            issuerPrivateKey: key)
        XCTAssertTrue(UpstreamTLS.certificate(leaf, carries: "eu.billing.internal"))
        XCTAssertTrue(UpstreamTLS.certificate(leaf, carries: "EU.Billing.Internal"))
        XCTAssertFalse(UpstreamTLS.certificate(leaf, carries: "billing.internal"), "a wildcard stands for exactly one label")
        XCTAssertFalse(UpstreamTLS.certificate(leaf, carries: "a.eu.billing.internal"))
        XCTAssertFalse(UpstreamTLS.certificate(leaf, carries: "eu.other.internal"))
        XCTAssertFalse(UpstreamTLS.certificate(leaf, carries: "cn.internal"), "the common name is not consulted")
    }
}
