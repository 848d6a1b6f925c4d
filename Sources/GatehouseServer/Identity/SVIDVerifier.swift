import Crypto
import Foundation
import GatehouseCore
import NIOSSL
@_spi(FixedExpiryValidationTime) import X509

/// A peer whose X509-SVID verified: its SPIFFE ID and which certificate it presented.
public struct VerifiedPeer: Sendable, Hashable {
    public let spiffeID: SPIFFEID
    /// Lowercase hex SHA-256 of the leaf certificate's DER bytes.
    public let certificateSHA256: String
    /// When the verdict stops holding: the earliest `notAfter` of the verified chain (the
    /// leaf's alone for ``SVIDVerifier/identify(leafDER:now:)``).
    public let validUntil: Date

    public init(spiffeID: SPIFFEID, certificateSHA256: String, validUntil: Date) {
        self.spiffeID = spiffeID
        self.certificateSHA256 = certificateSHA256
        self.validUntil = validUntil
    }
}

/// Why a presented certificate chain was refused. A value, not a thrown error: a bad client
/// certificate is an expected outcome, not a broken gateway.
public struct SVIDRefusal: Error, Sendable, Hashable {
    /// `.tlsInvalidSVID`, `.tlsCertificateExpired` or `.tlsUntrustedChain`.
    public let reason: ReasonCode
    /// The leaf's URI SAN text when one could be read, valid or not (for the decision
    /// record), at most ``SPIFFEID/maxLength`` bytes. Unverified: never authorize on it.
    public let claimedID: String?
    /// Short, for logs. Never holds key material or whole certificates.
    public let detail: String

    public init(reason: ReasonCode, claimedID: String?, detail: String) {
        self.reason = reason
        self.claimedID = claimedID
        self.detail = detail
    }
}

/// Verifies a peer's X509-SVID chain per the SPIFFE X509-SVID standard.
///
/// Order, so that each refusal names the precise reason:
/// 1. no certificate, or an unparseable leaf → `tls.invalid_svid`;
/// 2. the leaf rules (one URI SAN, a valid SPIFFE ID, not a CA, digitalSignature without
///    keyCertSign/cRLSign) → `tls.invalid_svid`;
/// 3. the leaf's validity window against `now` → `tls.cert_expired`;
/// 4. the chain (the presented certificates after the leaf as intermediates) must verify with
///    `RFC5280Policy` and ``SVIDPolicy`` against the bundle of the trust domain in the leaf's
///    own SPIFFE ID, never any other bundle → `tls.untrusted_chain` (also for an unknown
///    trust domain, a chain longer than ``maxChainLength`` or an unparseable intermediate).
///
/// A cheap value: it holds a reference to the immutable ``TrustBundles`` and nothing else.
/// Each certificate is parsed once; intermediates only after the leaf passed its rules.
/// Measured in release on the 2-core dev machine: about 60 µs for leaf → root, two thirds of
/// it the ECDSA P-256 signature check and a sixth parsing the leaf; each presented
/// intermediate adds about 50 µs (another parse and signature check).
public struct SVIDVerifier: Sendable {
    /// Most certificates accepted in a presented chain, leaf included. Chain building is a
    /// search over the presented certificates, so an unbounded list is unbounded work; SVID
    /// chains are a leaf and at most a few intermediates.
    public static let maxChainLength = 8

    public let bundles: TrustBundles

    public init(bundles: TrustBundles) {
        self.bundles = bundles
    }

    /// Verifies `chainDER` (leaf first, DER bytes) at `now`.
    public func verify(chainDER: [[UInt8]], now: Date = Date()) async -> Result<VerifiedPeer, SVIDRefusal> {
        guard let leafDER = chainDER.first else { return .failure(Self.noCertificate) }
        let leaf: Certificate
        let id: SPIFFEID
        switch Self.checkLeaf(leafDER, now: now) {
        case .failure(let refusal): return .failure(refusal)
        case .success(let checked): (leaf, id) = checked
        }

        guard chainDER.count <= Self.maxChainLength else {
            return .failure(
                Self.untrusted(id, "chain of \(chainDER.count) certificates, at most \(Self.maxChainLength) allowed")
            )
        }
        guard let roots = self.bundles.roots(for: id.trustDomain) else {
            return .failure(Self.untrusted(id, "no trust bundle for trust domain \(id.trustDomain)"))
        }
        var intermediates: [Certificate] = []
        intermediates.reserveCapacity(chainDER.count - 1)
        for der in chainDER.dropFirst() {
            guard let certificate = try? Certificate(derEncoded: der) else {
                return .failure(Self.untrusted(id, "unparseable intermediate certificate"))
            }
            intermediates.append(certificate)
        }

        // Only this trust domain's roots: a CA trusted for prod.example must not vouch for
        // an ID in staging.example, even when both bundles are loaded.
        var verifier = Verifier(rootCertificates: roots) {
            RFC5280Policy(fixedExpiryValidationTime: now)
            SVIDPolicy(trustDomain: id.trustDomain)
        }
        let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore(intermediates))
        guard case .validCertificate(let chain) = result else {
            return .failure(Self.untrusted(id, "chain does not verify against the \(id.trustDomain) trust bundle"))
        }
        let validUntil = chain.map(\.notValidAfter).min() ?? leaf.notValidAfter
        return .success(VerifiedPeer(spiffeID: id, certificateSHA256: Self.sha256Hex(leafDER), validUntil: validUntil))
    }

    /// ``verify(chainDER:now:)`` for the chain NIOSSL hands to a verification callback.
    public func verify(chain: [NIOSSLCertificate], now: Date = Date()) async -> Result<VerifiedPeer, SVIDRefusal> {
        var chainDER: [[UInt8]] = []
        chainDER.reserveCapacity(chain.count)
        for certificate in chain {
            guard let der = try? certificate.toDERBytes() else { return .failure(Self.unreadable) }
            chainDER.append(der)
        }
        return await self.verify(chainDER: chainDER, now: now)
    }

    /// The same leaf rules and validity check as ``verify(chainDER:now:)``, without any trust
    /// check: for callers that only need the ID out of a certificate whose chain was already
    /// verified (by this verifier, in the TLS handshake). Never use it to decide trust.
    public func identify(leafDER: [UInt8], now: Date = Date()) -> Result<VerifiedPeer, SVIDRefusal> {
        Self.checkLeaf(leafDER, now: now).map { leaf, id in
            VerifiedPeer(spiffeID: id, certificateSHA256: Self.sha256Hex(leafDER), validUntil: leaf.notValidAfter)
        }
    }

    /// ``identify(leafDER:now:)`` for a certificate from NIOSSL.
    public func identify(leaf: NIOSSLCertificate, now: Date = Date()) -> Result<VerifiedPeer, SVIDRefusal> {
        guard let der = try? leaf.toDERBytes() else { return .failure(Self.unreadable) }
        return self.identify(leafDER: der, now: now)
    }

    // MARK: - Steps

    private static func checkLeaf(_ der: [UInt8], now: Date) -> Result<(Certificate, SPIFFEID), SVIDRefusal> {
        guard let leaf = try? Certificate(derEncoded: der) else {
            return .failure(SVIDRefusal(reason: .tlsInvalidSVID, claimedID: nil, detail: "unparseable certificate"))
        }
        switch X509SVIDRules.identity(of: leaf) {
        case .failure(let refusal):
            return .failure(refusal)
        case .success(let id):
            if let refusal = X509SVIDRules.validity(of: leaf, now: now, claimedID: id.description) {
                return .failure(refusal)
            }
            return .success((leaf, id))
        }
    }

    private static let noCertificate = SVIDRefusal(reason: .tlsInvalidSVID, claimedID: nil, detail: "no certificate")
    private static let unreadable = SVIDRefusal(reason: .tlsInvalidSVID, claimedID: nil, detail: "unreadable certificate")

    private static func untrusted(_ id: SPIFFEID, _ detail: String) -> SVIDRefusal {
        SVIDRefusal(reason: .tlsUntrustedChain, claimedID: id.description, detail: detail)
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    static func sha256Hex(_ bytes: [UInt8]) -> String {
        let digest = SHA256.hash(data: bytes)
        return String(unsafeUninitializedCapacity: SHA256.byteCount * 2) { buffer in
            var index = 0
            for byte in digest {
                buffer[index] = Self.hexDigits[Int(byte >> 4)]
                buffer[index + 1] = Self.hexDigits[Int(byte & 0x0F)]
                index += 2
            }
            return index
        }
    }
}
