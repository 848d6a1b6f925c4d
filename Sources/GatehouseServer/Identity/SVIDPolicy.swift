import SwiftASN1
import X509

/// A swift-certificates ``VerifierPolicy`` for X509-SVID chains of one trust domain. Run it
/// after `RFC5280Policy`, which covers signatures, expiry, basic and name constraints.
///
/// It checks:
/// - the leaf follows the X509-SVID leaf rules (one URI SAN holding a valid SPIFFE ID, not a
///   CA, digitalSignature without keyCertSign or cRLSign) and its ID is in ``trustDomain``,
///   the domain whose bundle the chain is being built to;
/// - every signing certificate above the leaf that carries a key usage has keyCertSign
///   (RFC5280Policy lists key usage as handled but, by design, never looks at it).
///
/// It declares the subject alternative name and extended key usage extensions as handled,
/// so an SVID that marks them critical (the standard allows both) still verifies. Extended
/// key usage is accepted whatever purposes it lists, as go-spiffe does (`ExtKeyUsageAny`).
public struct SVIDPolicy: VerifierPolicy, Sendable {
    private static let handledExtensions: [ASN1ObjectIdentifier] = [
        .X509ExtensionID.subjectAlternativeName,
        .X509ExtensionID.extendedKeyUsage,
    ]

    /// The trust domain the leaf's SPIFFE ID must belong to.
    public let trustDomain: String

    public init(trustDomain: String) {
        self.trustDomain = trustDomain
    }

    public var verifyingCriticalExtensions: [ASN1ObjectIdentifier] { Self.handledExtensions }

    public func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) -> PolicyEvaluationResult {
        switch X509SVIDRules.identity(of: chain.leaf) {
        case .failure(let refusal):
            let detail = refusal.detail
            return .failsToMeetPolicy(reason: "SVIDPolicy: \(detail)")
        case .success(let id):
            guard id.trustDomain == self.trustDomain else {
                let expected = self.trustDomain
                return .failsToMeetPolicy(reason: "SVIDPolicy: \(id) is not in trust domain \(expected)")
            }
        }
        for issuer in chain.dropFirst() {
            let keyUsage: KeyUsage?
            do {
                keyUsage = try issuer.extensions.keyUsage
            } catch {
                return .failsToMeetPolicy(reason: "SVIDPolicy: a signing certificate has an unparseable key usage")
            }
            if let keyUsage, !keyUsage.keyCertSign {
                return .failsToMeetPolicy(reason: "SVIDPolicy: a signing certificate lacks keyCertSign")
            }
        }
        return .meetsPolicy
    }
}
