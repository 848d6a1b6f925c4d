import Foundation
import GatehouseCore
import GatehouseServer
import NIOSSL
import X509
import XCTest

final class SVIDVerifierTests: XCTestCase {
    /// A fixed instant: every certificate's validity is relative to it.
    private let now = Date(timeIntervalSince1970: 1_800_000_000)

    private static let prodID = "spiffe://prod.example/ns/default/sa/billing"
    private static let stagingID = "spiffe://staging.example/ns/default/sa/billing"

    private var pki: SVIDTestPKI!
    private var prodCA: SVIDTestPKI.Issuer!
    private var stagingCA: SVIDTestPKI.Issuer!
    private var untrustedCA: SVIDTestPKI.Issuer!
    private var verifier: SVIDVerifier!

    override func setUpWithError() throws {
        self.pki = SVIDTestPKI(now: self.now)
        self.prodCA = try self.pki.ca("prod CA")
        self.stagingCA = try self.pki.ca("staging CA")
        self.untrustedCA = try self.pki.ca("untrusted CA")
        self.verifier = SVIDVerifier(
            bundles: TrustBundles([
                "prod.example": [self.prodCA.certificate],
                "staging.example": [self.stagingCA.certificate],
            ])
        )
    }

    // MARK: - Helpers

    private func verify(_ chain: [Certificate], at time: Date? = nil) async throws -> Result<VerifiedPeer, SVIDRefusal> {
        await self.verifier.verify(chainDER: try chain.map(SVIDTestPKI.der), now: time ?? self.now)
    }

    private func assertVerified(
        _ result: Result<VerifiedPeer, SVIDRefusal>,
        id: String,
        leaf: Certificate,
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws {
        switch result {
        case .success(let peer):
            XCTAssertEqual(peer.spiffeID, try SPIFFEID(parsing: id), file: file, line: line)
            XCTAssertEqual(
                peer.certificateSHA256,
                SVIDTestPKI.sha256Hex(try SVIDTestPKI.der(leaf)),
                file: file,
                line: line
            )
        case .failure(let refusal):
            XCTFail("expected \(id) to verify, got \(refusal)", file: file, line: line)
        }
    }

    private func assertRefused(
        _ result: Result<VerifiedPeer, SVIDRefusal>,
        _ reason: ReasonCode,
        claimedID: String?,
        detail: String? = nil,
        file: StaticString = #filePath,
        line: UInt = #line
    ) {
        switch result {
        case .success(let peer):
            XCTFail("expected \(reason.rawValue), verified \(peer.spiffeID)", file: file, line: line)
        case .failure(let refusal):
            XCTAssertEqual(refusal.reason, reason, refusal.detail, file: file, line: line)
            XCTAssertEqual(refusal.claimedID, claimedID, file: file, line: line)
            if let detail {
                XCTAssertEqual(refusal.detail, detail, file: file, line: line)
            }
            XCTAssertFalse(refusal.detail.isEmpty, file: file, line: line)
            XCTAssertLessThan(refusal.detail.utf8.count, 200, "short, for logs: \(refusal.detail)", file: file, line: line)
        }
    }

    // MARK: - Valid

    func testValidSVIDVerifies() async throws {
        let leaf = try self.pki.leaf(issuer: self.prodCA, uris: [Self.prodID])
        try assertVerified(try await self.verify([leaf]), id: Self.prodID, leaf: leaf)
    }

    func testEachTrustDomainVerifiesAgainstItsOwnBundle() async throws {
        let leaf = try self.pki.leaf(issuer: self.stagingCA, uris: [Self.stagingID])
        try assertVerified(try await self.verify([leaf]), id: Self.stagingID, leaf: leaf)
    }

    func testHashIsLowercaseHexOfTheLeafDER() async throws {
        let leaf = try self.pki.leaf(issuer: self.prodCA, uris: [Self.prodID])
        guard case .success(let peer) = try await self.verify([leaf]) else { return XCTFail("expected success") }
        XCTAssertEqual(peer.certificateSHA256.count, 64)
        XCTAssertTrue(peer.certificateSHA256.allSatisfy { "0123456789abcdef".contains($0) }, peer.certificateSHA256)
    }

    func testIntermediateInThePresentedChainVerifies() async throws {
        let intermediate = try self.pki.ca("prod intermediate", issuer: self.prodCA, uris: ["spiffe://prod.example"])
        let leaf = try self.pki.leaf(issuer: intermediate, uris: [Self.prodID])
        try assertVerified(
            try await self.verify([leaf, intermediate.certificate]),
            id: Self.prodID,
            leaf: leaf
        )
    }

    func testLeafWithoutBasicConstraintsIsNotACA() async throws {
        let leaf = try self.pki.leaf(issuer: self.prodCA, uris: [Self.prodID], basicConstraints: nil)
        try assertVerified(try await self.verify([leaf]), id: Self.prodID, leaf: leaf)
    }

    /// The standard lets an SVID with an empty subject mark its SAN critical, and any SVID
    /// mark its extended key usage critical: both must still verify.
    func testCriticalSANAndExtendedKeyUsageVerify() async throws {
        let leaf = try self.pki.leaf(
            issuer: self.prodCA,
            uris: [Self.prodID],
            criticalNamesAndUsage: true,
            subject: DistinguishedName()
        )
        try assertVerified(try await self.verify([leaf]), id: Self.prodID, leaf: leaf)
    }

    func testOtherSANKindsBesideTheOneURIAreAllowed() async throws {
        let leaf = try self.pki.leaf(issuer: self.prodCA, uris: [Self.prodID], otherNames: [.dnsName("billing.internal")])
        try assertVerified(try await self.verify([leaf]), id: Self.prodID, leaf: leaf)
    }

    func testValidityBoundsAreInclusive() async throws {
        let start = self.now - 3600
        let end = self.now + 3600
        let leaf = try self.pki.leaf(issuer: self.prodCA, uris: [Self.prodID], notValidBefore: start, notValidAfter: end)
        try assertVerified(try await self.verify([leaf], at: start), id: Self.prodID, leaf: leaf)
        try assertVerified(try await self.verify([leaf], at: end), id: Self.prodID, leaf: leaf)
    }

    // MARK: - Invalid SVID

    func testEmptyChain() async {
        let result = await self.verifier.verify(chainDER: [], now: self.now)
        assertRefused(result, .tlsInvalidSVID, claimedID: nil, detail: "no certificate")
    }

    func testUnparseableLeaf() async {
        let result = await self.verifier.verify(chainDER: [[0x30, 0x03, 0x02, 0x01, 0x00]], now: self.now)
        assertRefused(result, .tlsInvalidSVID, claimedID: nil, detail: "unparseable certificate")
    }

    func testTwoURISANs() async throws {
        let other = "spiffe://prod.example/ns/default/sa/other"
        let leaf = try self.pki.leaf(issuer: self.prodCA, uris: [Self.prodID, other])
        assertRefused(try await self.verify([leaf]), .tlsInvalidSVID, claimedID: Self.prodID)
    }

    func testNoURISAN() async throws {
        let dnsOnly = try self.pki.leaf(issuer: self.prodCA, uris: [], otherNames: [.dnsName("billing.internal")])
        assertRefused(try await self.verify([dnsOnly]), .tlsInvalidSVID, claimedID: nil, detail: "no URI SAN")
        let noSAN = try self.pki.leaf(issuer: self.prodCA, uris: [])
        assertRefused(try await self.verify([noSAN]), .tlsInvalidSVID, claimedID: nil, detail: "no URI SAN")
    }

    func testURISANThatIsNotAValidSPIFFEID() async throws {
        for uri in [
            "spiffe://Prod.example/ns/default", "https://prod.example/ns/default", "spiffe://prod.example/ns/default/",
            "spiffe://prod.example:443/x", "spiffe://prod.example/a/../b",
        ] {
            let leaf = try self.pki.leaf(issuer: self.prodCA, uris: [uri])
            assertRefused(try await self.verify([leaf]), .tlsInvalidSVID, claimedID: uri)
        }
    }

    func testCACertificateUsedAsLeaf() async throws {
        // A leaf-shaped certificate that says it is a CA...
        let caLeaf = try self.pki.leaf(
            issuer: self.prodCA,
            uris: [Self.prodID],
            basicConstraints: .isCertificateAuthority(maxPathLength: 0)
        )
        assertRefused(try await self.verify([caLeaf]), .tlsInvalidSVID, claimedID: Self.prodID, detail: "leaf is a CA certificate")
        // ...and a real intermediate CA presented as the leaf.
        let intermediate = try self.pki.ca("prod intermediate", issuer: self.prodCA, uris: ["spiffe://prod.example"])
        assertRefused(
            try await self.verify([intermediate.certificate]),
            .tlsInvalidSVID,
            claimedID: "spiffe://prod.example",
            detail: "leaf is a CA certificate"
        )
    }

    func testKeyUsageWithoutDigitalSignature() async throws {
        let leaf = try self.pki.leaf(issuer: self.prodCA, uris: [Self.prodID], keyUsage: KeyUsage(keyEncipherment: true))
        assertRefused(try await self.verify([leaf]), .tlsInvalidSVID, claimedID: Self.prodID, detail: "key usage lacks digitalSignature")
    }

    func testMissingKeyUsage() async throws {
        let leaf = try self.pki.leaf(issuer: self.prodCA, uris: [Self.prodID], keyUsage: nil)
        assertRefused(try await self.verify([leaf]), .tlsInvalidSVID, claimedID: Self.prodID, detail: "no key usage")
    }

    func testKeyCertSignOnLeaf() async throws {
        let leaf = try self.pki.leaf(
            issuer: self.prodCA,
            uris: [Self.prodID],
            keyUsage: KeyUsage(digitalSignature: true, keyCertSign: true)
        )
        assertRefused(try await self.verify([leaf]), .tlsInvalidSVID, claimedID: Self.prodID, detail: "leaf key usage has keyCertSign")
    }

    func testCRLSignOnLeaf() async throws {
        let leaf = try self.pki.leaf(issuer: self.prodCA, uris: [Self.prodID], keyUsage: KeyUsage(digitalSignature: true, cRLSign: true))
        assertRefused(try await self.verify([leaf]), .tlsInvalidSVID, claimedID: Self.prodID, detail: "leaf key usage has cRLSign")
    }

    func testLeafRulesComeBeforeTimeAndTrust() async throws {
        let leaf = try self.pki.leaf(
            issuer: self.untrustedCA,
            uris: [Self.prodID],
            keyUsage: KeyUsage(digitalSignature: true, keyCertSign: true),
            notValidAfter: self.now - 1
        )
        assertRefused(try await self.verify([leaf]), .tlsInvalidSVID, claimedID: Self.prodID)
    }

    // MARK: - Expired

    func testExpiredLeaf() async throws {
        let leaf = try self.pki.leaf(
            issuer: self.prodCA,
            uris: [Self.prodID],
            notValidBefore: self.now - 10 * SVIDTestPKI.day,
            notValidAfter: self.now - 1
        )
        assertRefused(try await self.verify([leaf]), .tlsCertificateExpired, claimedID: Self.prodID, detail: "certificate expired")
    }

    func testNotYetValidLeaf() async throws {
        let leaf = try self.pki.leaf(issuer: self.prodCA, uris: [Self.prodID], notValidBefore: self.now + 60)
        assertRefused(
            try await self.verify([leaf]),
            .tlsCertificateExpired,
            claimedID: Self.prodID,
            detail: "certificate not yet valid"
        )
    }

    /// The time check runs before chain building, so an expired leaf from an untrusted CA
    /// still says "expired": the more precise of the two reasons.
    func testTimeComesBeforeTrust() async throws {
        let leaf = try self.pki.leaf(issuer: self.untrustedCA, uris: [Self.prodID], notValidAfter: self.now - 1)
        assertRefused(try await self.verify([leaf]), .tlsCertificateExpired, claimedID: Self.prodID)
    }

    // MARK: - Untrusted chain

    func testChainToAnUntrustedCA() async throws {
        let leaf = try self.pki.leaf(issuer: self.untrustedCA, uris: [Self.prodID])
        assertRefused(try await self.verify([leaf]), .tlsUntrustedChain, claimedID: Self.prodID)
        // Presenting the untrusted CA as an intermediate changes nothing.
        assertRefused(
            try await self.verify([leaf, self.untrustedCA.certificate]),
            .tlsUntrustedChain,
            claimedID: Self.prodID
        )
    }

    func testImpostorCAWithTheTrustedCAsNameIsNotTrusted() async throws {
        let impostor = try self.pki.ca("prod CA")
        XCTAssertEqual(impostor.certificate.subject, self.prodCA.certificate.subject)
        let leaf = try self.pki.leaf(issuer: impostor, uris: [Self.prodID])
        assertRefused(try await self.verify([leaf]), .tlsUntrustedChain, claimedID: Self.prodID)
    }

    /// The bundle is chosen by the trust domain in the certificate's own ID: prod's CA cannot
    /// vouch for a staging ID, although both bundles are loaded.
    func testProdCAClaimingAStagingIDIsUntrusted() async throws {
        let leaf = try self.pki.leaf(issuer: self.prodCA, uris: [Self.stagingID])
        assertRefused(
            try await self.verify([leaf]),
            .tlsUntrustedChain,
            claimedID: Self.stagingID,
            detail: "chain does not verify against the staging.example trust bundle"
        )
        // Not through an intermediate either.
        let intermediate = try self.pki.ca("prod intermediate", issuer: self.prodCA)
        let viaIntermediate = try self.pki.leaf(issuer: intermediate, uris: [Self.stagingID])
        assertRefused(
            try await self.verify([viaIntermediate, intermediate.certificate]),
            .tlsUntrustedChain,
            claimedID: Self.stagingID
        )
    }

    func testUnknownTrustDomain() async throws {
        let id = "spiffe://other.example/ns/default/sa/billing"
        let leaf = try self.pki.leaf(issuer: self.prodCA, uris: [id])
        assertRefused(
            try await self.verify([leaf]),
            .tlsUntrustedChain,
            claimedID: id,
            detail: "no trust bundle for trust domain other.example"
        )
    }

    func testMissingIntermediateIsUntrusted() async throws {
        let intermediate = try self.pki.ca("prod intermediate", issuer: self.prodCA)
        let leaf = try self.pki.leaf(issuer: intermediate, uris: [Self.prodID])
        assertRefused(try await self.verify([leaf]), .tlsUntrustedChain, claimedID: Self.prodID)
    }

    func testExpiredIntermediateIsUntrusted() async throws {
        let intermediate = try self.pki.ca(
            "prod intermediate",
            issuer: self.prodCA,
            notValidBefore: self.now - 10 * SVIDTestPKI.day,
            notValidAfter: self.now - 1
        )
        let leaf = try self.pki.leaf(issuer: intermediate, uris: [Self.prodID])
        assertRefused(try await self.verify([leaf, intermediate.certificate]), .tlsUntrustedChain, claimedID: Self.prodID)
    }

    func testIntermediateWithoutKeyCertSignIsUntrusted() async throws {
        let intermediate = try self.pki.ca("prod intermediate", issuer: self.prodCA, keyUsage: KeyUsage(digitalSignature: true))
        let leaf = try self.pki.leaf(issuer: intermediate, uris: [Self.prodID])
        assertRefused(try await self.verify([leaf, intermediate.certificate]), .tlsUntrustedChain, claimedID: Self.prodID)
    }

    func testUnparseableIntermediateIsUntrusted() async throws {
        let leaf = try self.pki.leaf(issuer: self.prodCA, uris: [Self.prodID])
        let result = await self.verifier.verify(chainDER: [try SVIDTestPKI.der(leaf), [0x01, 0x02]], now: self.now)
        assertRefused(result, .tlsUntrustedChain, claimedID: Self.prodID, detail: "unparseable intermediate certificate")
    }

    func testOverlongChainIsRefusedBeforeChainBuilding() async throws {
        let leaf = try self.pki.leaf(issuer: self.prodCA, uris: [Self.prodID])
        let chain = [leaf] + Array(repeating: self.prodCA.certificate, count: SVIDVerifier.maxChainLength)
        assertRefused(try await self.verify(chain), .tlsUntrustedChain, claimedID: Self.prodID)
        // One fewer is fine: presenting the root itself is harmless.
        try assertVerified(try await self.verify(Array(chain.dropLast())), id: Self.prodID, leaf: leaf)
    }

    func testEmptyBundlesTrustNothing() async throws {
        let verifier = SVIDVerifier(bundles: TrustBundles([:]))
        let leaf = try self.pki.leaf(issuer: self.prodCA, uris: [Self.prodID])
        let result = await verifier.verify(chainDER: [try SVIDTestPKI.der(leaf)], now: self.now)
        assertRefused(result, .tlsUntrustedChain, claimedID: Self.prodID)
    }

    // MARK: - NIOSSL and identify

    func testNIOSSLOverloadAgreesWithDER() async throws {
        let good = try self.pki.leaf(issuer: self.prodCA, uris: [Self.prodID])
        let bad = try self.pki.leaf(issuer: self.prodCA, uris: [Self.stagingID])
        for leaf in [good, bad] {
            let der = try SVIDTestPKI.der(leaf)
            let viaNIO = await self.verifier.verify(chain: [try NIOSSLCertificate(bytes: der, format: .der)], now: self.now)
            let viaDER = await self.verifier.verify(chainDER: [der], now: self.now)
            XCTAssertEqual(viaNIO, viaDER)
        }
        let empty = await self.verifier.verify(chain: [NIOSSLCertificate](), now: self.now)
        assertRefused(empty, .tlsInvalidSVID, claimedID: nil, detail: "no certificate")
    }

    func testIdentifyAppliesTheLeafRulesButNoTrust() throws {
        let untrusted = try self.pki.leaf(issuer: self.untrustedCA, uris: [Self.prodID])
        let result = self.verifier.identify(leafDER: try SVIDTestPKI.der(untrusted), now: self.now)
        try assertVerified(result, id: Self.prodID, leaf: untrusted)

        let nio = try NIOSSLCertificate(bytes: try SVIDTestPKI.der(untrusted), format: .der)
        try assertVerified(self.verifier.identify(leaf: nio, now: self.now), id: Self.prodID, leaf: untrusted)

        let twoURIs = try self.pki.leaf(issuer: self.prodCA, uris: [Self.prodID, Self.stagingID])
        assertRefused(
            self.verifier.identify(leafDER: try SVIDTestPKI.der(twoURIs), now: self.now),
            .tlsInvalidSVID,
            claimedID: Self.prodID
        )
        let expired = try self.pki.leaf(issuer: self.prodCA, uris: [Self.prodID], notValidAfter: self.now - 1)
        assertRefused(
            self.verifier.identify(leafDER: try SVIDTestPKI.der(expired), now: self.now),
            .tlsCertificateExpired,
            claimedID: Self.prodID
        )
    }
}
