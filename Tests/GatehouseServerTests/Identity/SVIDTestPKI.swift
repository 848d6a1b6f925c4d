import Crypto
import Foundation
import SwiftASN1
import X509

/// Test-only certificate builder for X509-SVID cases: CAs, intermediates and leaves whose
/// every SVID-relevant field can be bent. DevPKI's builders are private and make only good
/// certificates; these make the bad ones too.
struct SVIDTestPKI {
    struct Issuer {
        var certificate: Certificate
        var key: Certificate.PrivateKey
    }

    /// Every certificate's validity is measured from this instant.
    let now: Date

    static let day: TimeInterval = 24 * 3600

    /// A CA. Self-signed unless `issuer` is given (then it is an intermediate).
    func ca(
        _ commonName: String,
        issuer: Issuer? = nil,
        keyUsage: KeyUsage = KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true),
        notValidBefore: Date? = nil,
        notValidAfter: Date? = nil,
        uris: [String] = []
    ) throws -> Issuer {
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let name = try DistinguishedName {
            OrganizationName("Gatehouse tests")
            CommonName(commonName)
        }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: key.publicKey,
            notValidBefore: notValidBefore ?? self.now - 30 * Self.day,
            notValidAfter: notValidAfter ?? self.now + 365 * Self.day,
            issuer: issuer?.certificate.subject ?? name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(keyUsage)
                SubjectKeyIdentifier(hash: key.publicKey)
                if !uris.isEmpty {
                    SubjectAlternativeNames(uris.map { .uniformResourceIdentifier($0) })
                }
            },
            issuerPrivateKey: issuer?.key ?? key
        )
        return Issuer(certificate: certificate, key: key)
    }

    /// A leaf: by default a well-formed SVID (one URI SAN, not a CA, digitalSignature only,
    /// clientAuth). `basicConstraints` or `keyUsage` nil leaves the extension out.
    func leaf(
        issuer: Issuer,
        uris: [String],
        otherNames: [GeneralName] = [],
        basicConstraints: BasicConstraints? = .notCertificateAuthority,
        keyUsage: KeyUsage? = KeyUsage(digitalSignature: true),
        notValidBefore: Date? = nil,
        notValidAfter: Date? = nil,
        criticalNamesAndUsage: Bool = false,
        subject: DistinguishedName? = nil
    ) throws -> Certificate {
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let names = uris.map { GeneralName.uniformResourceIdentifier($0) } + otherNames
        var extensions = Certificate.Extensions()
        if let basicConstraints {
            try extensions.append(Certificate.Extension(basicConstraints, critical: true))
        }
        if let keyUsage {
            try extensions.append(Certificate.Extension(keyUsage, critical: true))
        }
        try extensions.append(Certificate.Extension(ExtendedKeyUsage([.clientAuth]), critical: criticalNamesAndUsage))
        if !names.isEmpty {
            try extensions.append(Certificate.Extension(SubjectAlternativeNames(names), critical: criticalNamesAndUsage))
        }
        if let issuerKeyID = try issuer.certificate.extensions.subjectKeyIdentifier?.keyIdentifier {
            try extensions.append(Certificate.Extension(AuthorityKeyIdentifier(keyIdentifier: issuerKeyID), critical: false))
        }
        return try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: key.publicKey,
            notValidBefore: notValidBefore ?? self.now - Self.day,
            notValidAfter: notValidAfter ?? self.now + 30 * Self.day,
            issuer: issuer.certificate.subject,
            subject: try subject ?? DistinguishedName { CommonName("workload") },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions,
            issuerPrivateKey: issuer.key
        )
    }

    static func der(_ certificate: Certificate) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return serializer.serializedBytes
    }

    static func sha256Hex(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }
}
