import Foundation
import GatehouseServer
import NIOSSL
import SwiftASN1
import XCTest
@_spi(FixedExpiryValidationTime) import X509

final class DevPKITests: XCTestCase {
    /// A fixed instant: everything time-dependent is checked against it.
    private let now = Date(timeIntervalSince1970: 1_800_000_000)

    private var directory: String!
    private var manifest: DevPKIManifest!

    override func setUpWithError() throws {
        self.directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("devpki-\(UUID().uuidString)").path
        self.manifest = try DevPKI.generate(into: self.directory + "/nested", now: self.now)
    }

    override func tearDownWithError() throws {
        if let directory = self.directory {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    private func certificate(_ role: DevPKIManifest.Role) throws -> Certificate {
        let pem = try String(contentsOfFile: self.manifest[role], encoding: .utf8)
        return try Certificate(pemEncoded: pem)
    }

    private func privateKey(_ role: DevPKIManifest.Role) throws -> Certificate.PrivateKey {
        let pem = try String(contentsOfFile: self.manifest[role], encoding: .utf8)
        return try Certificate.PrivateKey(pemEncoded: pem)
    }

    private func validate(
        _ leaf: Certificate,
        roots: [Certificate],
        at time: Date? = nil
    ) async -> CertificateValidationResult {
        let validationTime = time ?? self.now
        var verifier = Verifier(rootCertificates: CertificateStore(roots)) {
            RFC5280Policy(fixedExpiryValidationTime: validationTime)
        }
        return await verifier.validate(leaf: leaf, intermediates: CertificateStore())
    }

    private func assertValid(
        _ result: CertificateValidationResult,
        file: StaticString = #filePath,
        line: UInt = #line
    ) {
        guard case .validCertificate = result else {
            return XCTFail("expected a valid chain, got \(result)", file: file, line: line)
        }
    }

    private func assertInvalid(
        _ result: CertificateValidationResult,
        file: StaticString = #filePath,
        line: UInt = #line
    ) {
        if case .validCertificate = result {
            XCTFail("expected the chain to be rejected", file: file, line: line)
        }
    }

    // MARK: - Files

    func testWritesEveryFileWithTheRightMode() throws {
        XCTAssertEqual(Set(self.manifest.paths.keys), Set(DevPKIManifest.Role.allCases))
        let names = try FileManager.default.contentsOfDirectory(atPath: self.directory + "/nested")
        XCTAssertEqual(
            Set(names),
            [
                "ca.pem", "ca.key", "server.pem", "server.key", "client-prod.pem", "client-prod.key",
                "client-staging.pem", "client-staging.key", "untrusted-ca.pem", "client-untrusted.pem",
                "client-untrusted.key", "README.txt", "staging-ca.pem", "staging-ca.key", "upstream.pem",
                "upstream.key",
            ]
        )
        for role in DevPKIManifest.Role.allCases {
            let attributes = try FileManager.default.attributesOfItem(atPath: self.manifest[role])
            let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue
            XCTAssertEqual(mode, role.isPrivateKey ? 0o600 : 0o644, role.fileName)
        }
        let readme = try String(contentsOfFile: self.manifest[.readme], encoding: .utf8)
        for name in ["ca.pem", "ca.key", "server.pem", "server.key", "client-prod.pem", "client-staging.pem",
                     "untrusted-ca.pem", "client-untrusted.pem", DevPKI.prodClientSPIFFEID,
                     DevPKI.stagingClientSPIFFEID, DevPKI.untrustedClientSPIFFEID, "staging-ca.pem", "upstream.pem",
                     DevPKI.gatewaySPIFFEID, DevPKI.upstreamSPIFFEID]
        {
            XCTAssertTrue(readme.contains(name), "README mentions \(name)")
        }
        let leafExpiry = ISO8601DateFormatter().string(from: self.now + 90 * 24 * 3600)
        XCTAssertTrue(readme.contains("Leaf certificates expire \(leafExpiry)"), readme)
    }

    func testRegeneratingOverwritesAndFixesModes() throws {
        let keyPath = self.manifest[.serverKey]
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: keyPath)
        let before = try self.certificate(.caCertificate)
        try DevPKI.generate(into: self.directory + "/nested", now: self.now)
        let after = try self.certificate(.caCertificate)
        XCTAssertNotEqual(before.serialNumber, after.serialNumber)
        XCTAssertNotEqual(before.publicKey, after.publicKey)
        let attributes = try FileManager.default.attributesOfItem(atPath: keyPath)
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o600)
    }

    func testKeysMatchTheirCertificates() throws {
        let pairs: [(DevPKIManifest.Role, DevPKIManifest.Role)] = [
            (.caCertificate, .caKey), (.serverCertificate, .serverKey),
            (.prodClientCertificate, .prodClientKey), (.stagingClientCertificate, .stagingClientKey),
            (.untrustedClientCertificate, .untrustedClientKey),
        ]
        for (certificateRole, keyRole) in pairs {
            XCTAssertEqual(
                try self.certificate(certificateRole).publicKey,
                try self.privateKey(keyRole).publicKey,
                keyRole.fileName
            )
        }
    }

    // MARK: - Certificate contents

    func testCAs() throws {
        for role in [DevPKIManifest.Role.caCertificate, .stagingCACertificate, .untrustedCACertificate] {
            let ca = try self.certificate(role)
            XCTAssertEqual(ca.subject, ca.issuer, role.fileName)
            XCTAssertEqual(try ca.extensions.basicConstraints, .isCertificateAuthority(maxPathLength: 0))
            XCTAssertEqual(ca.extensions[oid: .X509ExtensionID.basicConstraints]?.critical, true)
            XCTAssertEqual(try ca.extensions.keyUsage?.keyCertSign, true)
            XCTAssertEqual(ca.notValidBefore, self.now - 3600)
            XCTAssertEqual(ca.notValidAfter, self.now + 365 * 24 * 3600)
            XCTAssertTrue(ca.publicKey.isValidSignature(ca.signature, for: ca), "self-signed")
            XCTAssertEqual(ca.signatureAlgorithm, .ecdsaWithSHA256)
        }
        let subjects = try [DevPKIManifest.Role.caCertificate, .stagingCACertificate, .untrustedCACertificate]
            .map { try self.certificate($0).subject }
        XCTAssertEqual(Set(subjects).count, 3, "one distinct CA per trust domain, plus the untrusted one")
    }

    func testServerCertificate() throws {
        let ca = try self.certificate(.caCertificate)
        let server = try self.certificate(.serverCertificate)
        XCTAssertEqual(server.issuer, ca.subject)
        XCTAssertEqual(
            try server.extensions.subjectAlternativeNames.map(Array.init),
            [
                .dnsName("localhost"),
                .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
                .ipAddress(ASN1OctetString(contentBytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])),
                .uniformResourceIdentifier(DevPKI.gatewaySPIFFEID),
            ]
        )
        XCTAssertEqual(try server.extensions.extendedKeyUsage.map(Array.init), [.serverAuth, .clientAuth])
        XCTAssertEqual(try server.extensions.basicConstraints, .notCertificateAuthority)
        XCTAssertEqual(server.notValidBefore, self.now - 3600)
        XCTAssertEqual(server.notValidAfter, self.now + 90 * 24 * 3600)
        XCTAssertEqual(
            try server.extensions.authorityKeyIdentifier?.keyIdentifier,
            try ca.extensions.subjectKeyIdentifier?.keyIdentifier
        )
    }

    func testClientSVIDs() throws {
        let expectations: [(DevPKIManifest.Role, String, DevPKIManifest.Role)] = [
            (.prodClientCertificate, "spiffe://prod.example/ns/default/sa/billing-client", .caCertificate),
            (.stagingClientCertificate, "spiffe://staging.example/ns/default/sa/billing-client", .stagingCACertificate),
            (.untrustedClientCertificate, "spiffe://prod.example/ns/default/sa/intruder", .untrustedCACertificate),
        ]
        for (role, spiffeID, issuerRole) in expectations {
            let leaf = try self.certificate(role)
            let issuer = try self.certificate(issuerRole)
            // Exactly one SAN, and it is the URI.
            XCTAssertEqual(
                try leaf.extensions.subjectAlternativeNames.map(Array.init),
                [.uniformResourceIdentifier(spiffeID)],
                role.fileName
            )
            // Not a CA, critically so.
            XCTAssertEqual(try leaf.extensions.basicConstraints, .notCertificateAuthority)
            XCTAssertEqual(leaf.extensions[oid: .X509ExtensionID.basicConstraints]?.critical, true)
            // digitalSignature only, critical; never keyCertSign or cRLSign on a leaf SVID.
            XCTAssertEqual(try leaf.extensions.keyUsage, KeyUsage(digitalSignature: true))
            XCTAssertEqual(leaf.extensions[oid: .X509ExtensionID.keyUsage]?.critical, true)
            XCTAssertEqual(try leaf.extensions.extendedKeyUsage.map(Array.init), [.clientAuth])
            // Chained to its issuer.
            XCTAssertEqual(leaf.issuer, issuer.subject)
            XCTAssertTrue(issuer.publicKey.isValidSignature(leaf.signature, for: leaf))
            XCTAssertEqual(leaf.notValidBefore, self.now - 3600)
            XCTAssertEqual(leaf.notValidAfter, self.now + 90 * 24 * 3600)
        }
    }

    func testSerialsAreDistinct() throws {
        let roles: [DevPKIManifest.Role] = [
            .caCertificate, .serverCertificate, .prodClientCertificate, .stagingClientCertificate,
            .untrustedCACertificate, .untrustedClientCertificate, .stagingCACertificate, .upstreamCertificate,
        ]
        let serials = try roles.map { try self.certificate($0).serialNumber }
        XCTAssertEqual(Set(serials).count, roles.count)
    }

    // MARK: - Chain verification

    func testTrustedLeavesVerifyAgainstTheCA() async throws {
        let ca = try self.certificate(.caCertificate)
        let stagingCA = try self.certificate(.stagingCACertificate)
        let expectations: [(DevPKIManifest.Role, Certificate)] = [
            (.serverCertificate, ca), (.upstreamCertificate, ca), (.prodClientCertificate, ca),
            (.stagingClientCertificate, stagingCA),
        ]
        for (role, ca) in expectations {
            let leaf = try self.certificate(role)
            let result = await self.validate(leaf, roots: [ca])
            self.assertValid(result)
            if case .validCertificate(let chain) = result {
                XCTAssertEqual(Array(chain), [leaf, ca], role.fileName)
            }
        }
    }

    func testUntrustedClientDoesNotVerifyAgainstTheCA() async throws {
        let ca = try self.certificate(.caCertificate)
        let untrustedCA = try self.certificate(.untrustedCACertificate)
        let intruder = try self.certificate(.untrustedClientCertificate)
        self.assertInvalid(await self.validate(intruder, roots: [ca]))
        // It does verify against its own CA, so the failure above is about trust, not a broken file.
        self.assertValid(await self.validate(intruder, roots: [untrustedCA]))
        // And the trusted client does not verify against the untrusted CA.
        let prod = try self.certificate(.prodClientCertificate)
        self.assertInvalid(await self.validate(prod, roots: [untrustedCA]))
    }

    func testTrustDomainsHaveSeparateCAs() async throws {
        // The staging client must not chain to prod's CA, nor the prod client to staging's.
        self.assertInvalid(await self.validate(try self.certificate(.stagingClientCertificate), roots: [try self.certificate(.caCertificate)]))
        self.assertInvalid(await self.validate(try self.certificate(.prodClientCertificate), roots: [try self.certificate(.stagingCACertificate)]))
    }

    func testLeavesAreValidForNinetyDaysFromAnHourAgo() async throws {
        let ca = try self.certificate(.caCertificate)
        let leaf = try self.certificate(.prodClientCertificate)
        self.assertValid(await self.validate(leaf, roots: [ca], at: self.now - 1800))
        self.assertValid(await self.validate(leaf, roots: [ca], at: self.now + 89 * 24 * 3600))
        self.assertInvalid(await self.validate(leaf, roots: [ca], at: self.now + 91 * 24 * 3600))
        self.assertInvalid(await self.validate(leaf, roots: [ca], at: self.now - 2 * 3600))
    }

    // MARK: - NIOSSL

    func testNIOSSLLoadsTheServerCertificateAndKey() throws {
        let certificates = try NIOSSLCertificate.fromPEMFile(self.manifest[.serverCertificate])
        XCTAssertEqual(certificates.count, 1)
        let key = try NIOSSLPrivateKey(file: self.manifest[.serverKey], format: .pem)
        XCTAssertEqual(try NIOSSLCertificate.fromPEMFile(self.manifest[.caCertificate]).count, 1)
        _ = try NIOSSLPrivateKey(file: self.manifest[.prodClientKey], format: .pem)

        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: certificates.map { .certificate($0) },
            privateKey: .privateKey(key)
        )
        configuration.trustRoots = .file(self.manifest[.caCertificate])
        configuration.certificateVerification = .fullVerification
        // Building the context checks that the key belongs to the certificate.
        XCTAssertNoThrow(try NIOSSLContext(configuration: configuration))
    }
}
