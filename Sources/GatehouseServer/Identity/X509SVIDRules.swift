import Foundation
import GatehouseCore
import X509

/// The X509-SVID rules for a leaf certificate (SPIFFE X509-SVID standard §4, §5), as plain
/// functions over an already parsed certificate, so the pre-checks of ``SVIDVerifier`` and the
/// chain policy ``SVIDPolicy`` apply exactly the same rules.
enum X509SVIDRules {
    /// The longest claimed ID copied into a refusal. The text comes from an unverified
    /// certificate; anything longer is not a valid SPIFFE ID anyway.
    static let maxClaimedIDBytes = SPIFFEID.maxLength

    /// The leaf's SPIFFE ID, if it is a well-formed X509-SVID leaf, in this order:
    /// exactly one URI SAN, a valid SPIFFE ID, not a CA, key usage present with
    /// digitalSignature and without keyCertSign or cRLSign. Time is not checked here.
    static func identity(of leaf: Certificate) -> Result<SPIFFEID, SVIDRefusal> {
        let extensions = leaf.extensions
        var firstURI: String?
        var uriCount = 0
        do {
            for name in try extensions.subjectAlternativeNames ?? SubjectAlternativeNames() {
                if case .uniformResourceIdentifier(let uri) = name {
                    if uriCount == 0 { firstURI = uri }
                    uriCount += 1
                }
            }
        } catch {
            return .failure(.invalid(nil, "unparseable subject alternative names"))
        }
        guard let firstURI else { return .failure(.invalid(nil, "no URI SAN")) }
        let claimed = Self.bounded(firstURI)
        guard uriCount == 1 else { return .failure(.invalid(claimed, "\(uriCount) URI SANs, exactly one allowed")) }

        let id: SPIFFEID
        do {
            id = try SPIFFEID(parsing: firstURI)
        } catch {
            return .failure(.invalid(claimed, "URI SAN is not a valid SPIFFE ID: \(error)"))
        }

        do {
            if case .isCertificateAuthority = try extensions.basicConstraints {
                return .failure(.invalid(claimed, "leaf is a CA certificate"))
            }
        } catch {
            return .failure(.invalid(claimed, "unparseable basic constraints"))
        }

        let keyUsage: KeyUsage?
        do {
            keyUsage = try extensions.keyUsage
        } catch {
            return .failure(.invalid(claimed, "unparseable key usage"))
        }
        guard let keyUsage else { return .failure(.invalid(claimed, "no key usage")) }
        guard keyUsage.digitalSignature else { return .failure(.invalid(claimed, "key usage lacks digitalSignature")) }
        guard !keyUsage.keyCertSign else { return .failure(.invalid(claimed, "leaf key usage has keyCertSign")) }
        guard !keyUsage.cRLSign else { return .failure(.invalid(claimed, "leaf key usage has cRLSign")) }
        return .success(id)
    }

    /// A refusal when `now` is outside the certificate's validity window (both ends
    /// inclusive, as in swift-certificates' RFC 5280 expiry policy).
    static func validity(of certificate: Certificate, now: Date, claimedID: String) -> SVIDRefusal? {
        if now < certificate.notValidBefore {
            return SVIDRefusal(reason: .tlsCertificateExpired, claimedID: claimedID, detail: "certificate not yet valid")
        }
        if now > certificate.notValidAfter {
            return SVIDRefusal(reason: .tlsCertificateExpired, claimedID: claimedID, detail: "certificate expired")
        }
        return nil
    }

    private static func bounded(_ text: String) -> String {
        text.utf8.count <= Self.maxClaimedIDBytes ? text : String(decoding: text.utf8.prefix(Self.maxClaimedIDBytes), as: UTF8.self)
    }
}

extension SVIDRefusal {
    fileprivate static func invalid(_ claimedID: String?, _ detail: String) -> SVIDRefusal {
        SVIDRefusal(reason: .tlsInvalidSVID, claimedID: claimedID, detail: detail)
    }
}
