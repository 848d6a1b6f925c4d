import Crypto
import Foundation
import SwiftASN1
import X509

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A throwaway PKI for development and tests, made in-process (no openssl CLI): a root CA,
/// a localhost server certificate, SPIFFE client certificates for two trust domains, and a
/// client signed by a second CA that nothing trusts.
///
/// Every key is a fresh ECDSA P-256 key and every serial is random, so two runs never share
/// anything. Keys are written 0600, certificates 0644; existing files are overwritten.
/// Never use these files outside development.
public struct DevPKI {
    /// SPIFFE IDs baked into the client certificates.
    public static let prodClientSPIFFEID = "spiffe://prod.example/ns/default/sa/billing-client"
    public static let stagingClientSPIFFEID = "spiffe://staging.example/ns/default/sa/billing-client"
    public static let untrustedClientSPIFFEID = "spiffe://prod.example/ns/default/sa/intruder"
    /// The gateway's own SVID (URI SAN of server.pem): `By=` in X-Forwarded-Client-Cert, and
    /// its client certificate toward upstreams that require mTLS.
    public static let gatewaySPIFFEID = "spiffe://prod.example/ns/gatehouse/sa/gateway"
    /// An upstream's SVID (upstream.pem), for demos and tests of verified upstream hops.
    public static let upstreamSPIFFEID = "spiffe://prod.example/ns/default/sa/billing"

    /// CA certificates are valid for a year, leaves for 90 days; both start an hour before
    /// `now` so a peer whose clock lags a little still accepts them.
    public static let caValidity: TimeInterval = 365 * 24 * 3600
    public static let leafValidity: TimeInterval = 90 * 24 * 3600
    public static let backdating: TimeInterval = 3600

    /// Writes the whole set into `directory` (created if missing) and returns where each
    /// file went.
    @discardableResult
    public static func generate(into directory: String, now: Date = Date()) throws -> DevPKIManifest {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let manifest = DevPKIManifest(directory: directory)

        // One CA per trust domain: a staging certificate must never verify against prod's bundle.
        let ca = try Self.makeCA(commonName: "Gatehouse Dev Root CA (prod.example)", now: now)
        let stagingCA = try Self.makeCA(commonName: "Gatehouse Dev Root CA (staging.example)", now: now)
        let untrustedCA = try Self.makeCA(commonName: "Gatehouse Dev UNTRUSTED CA", now: now)

        let server = try Self.makeLeaf(
            issuer: ca,
            subject: try DistinguishedName {
                OrganizationName("Gatehouse (development only)")
                CommonName("localhost")
            },
            names: [
                .dnsName("localhost"),
                .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
                .ipAddress(ASN1OctetString(contentBytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])),
                .uniformResourceIdentifier(Self.gatewaySPIFFEID),
            ],
            usages: [.serverAuth, .clientAuth],
            now: now
        )
        let upstream = try Self.makeLeaf(
            issuer: ca,
            subject: try DistinguishedName {
                OrganizationName("prod.example")
                CommonName("billing")
            },
            names: [
                .dnsName("localhost"),
                .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
                .uniformResourceIdentifier(Self.upstreamSPIFFEID),
            ],
            usages: [.serverAuth, .clientAuth],
            now: now
        )
        let prodClient = try Self.makeSVID(issuer: ca, spiffeID: Self.prodClientSPIFFEID, now: now)
        let stagingClient = try Self.makeSVID(issuer: stagingCA, spiffeID: Self.stagingClientSPIFFEID, now: now)
        let untrustedClient = try Self.makeSVID(issuer: untrustedCA, spiffeID: Self.untrustedClientSPIFFEID, now: now)

        let writes: [(DevPKIManifest.Role, String)] = [
            (.caCertificate, try ca.certificate.serializeAsPEM().pemString),
            (.caKey, try ca.key.serializeAsPEM().pemString),
            (.serverCertificate, try server.certificate.serializeAsPEM().pemString),
            (.serverKey, try server.key.serializeAsPEM().pemString),
            (.stagingCACertificate, try stagingCA.certificate.serializeAsPEM().pemString),
            (.stagingCAKey, try stagingCA.key.serializeAsPEM().pemString),
            (.upstreamCertificate, try upstream.certificate.serializeAsPEM().pemString),
            (.upstreamKey, try upstream.key.serializeAsPEM().pemString),
            (.prodClientCertificate, try prodClient.certificate.serializeAsPEM().pemString),
            (.prodClientKey, try prodClient.key.serializeAsPEM().pemString),
            (.stagingClientCertificate, try stagingClient.certificate.serializeAsPEM().pemString),
            (.stagingClientKey, try stagingClient.key.serializeAsPEM().pemString),
            (.untrustedCACertificate, try untrustedCA.certificate.serializeAsPEM().pemString),
            (.untrustedClientCertificate, try untrustedClient.certificate.serializeAsPEM().pemString),
            (.untrustedClientKey, try untrustedClient.key.serializeAsPEM().pemString),
            (.readme, Self.readme(now: now)),
        ]
        for (role, contents) in writes {
            try Self.writeFile(contents + (contents.hasSuffix("\n") ? "" : "\n"), to: manifest[role], mode: role.fileMode)
        }
        return manifest
    }

    // MARK: - Building certificates

    private struct Issued {
        var certificate: Certificate
        var key: Certificate.PrivateKey
    }

    private static func makeCA(commonName: String, now: Date) throws -> Issued {
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let name = try DistinguishedName {
            OrganizationName("Gatehouse (development only)")
            CommonName(commonName)
        }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: key.publicKey,
            notValidBefore: now - Self.backdating,
            notValidAfter: now + Self.caValidity,
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                // Path length 0: this CA signs leaves only, never another CA.
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: key.publicKey)
            },
            issuerPrivateKey: key
        )
        return Issued(certificate: certificate, key: key)
    }

    /// A SPIFFE X509-SVID: exactly one URI SAN, not a CA, digitalSignature only, clientAuth.
    private static func makeSVID(issuer: Issued, spiffeID: String, now: Date) throws -> Issued {
        // The subject carries no identity (the URI SAN does); the trust domain and the last
        // path component make the files readable in `openssl x509 -text`.
        let trustDomain = spiffeID.dropFirst("spiffe://".count).prefix { $0 != "/" }
        let workload = spiffeID.split(separator: "/").last.map(String.init) ?? spiffeID
        return try Self.makeLeaf(
            issuer: issuer,
            subject: try DistinguishedName {
                OrganizationName(String(trustDomain))
                CommonName(workload)
            },
            names: [.uniformResourceIdentifier(spiffeID)],
            usages: [.clientAuth],
            now: now
        )
    }

    private static func makeLeaf(
        issuer: Issued,
        subject: DistinguishedName,
        names: [GeneralName],
        usages: [ExtendedKeyUsage.Usage],
        now: Date
    ) throws -> Issued {
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let issuerKeyID = try issuer.certificate.extensions.subjectKeyIdentifier?.keyIdentifier
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: key.publicKey,
            notValidBefore: now - Self.backdating,
            notValidAfter: now + Self.leafValidity,
            issuer: issuer.certificate.subject,
            subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage(usages)
                SubjectAlternativeNames(names)
                SubjectKeyIdentifier(hash: key.publicKey)
                AuthorityKeyIdentifier(keyIdentifier: issuerKeyID)
            },
            issuerPrivateKey: issuer.key
        )
        return Issued(certificate: certificate, key: key)
    }

    // MARK: - Files

    /// Opens with the final mode (and fixes the mode of a file that already existed) before
    /// any byte is written, so a key is never readable by others, not even briefly.
    private static func writeFile(_ contents: String, to path: String, mode: mode_t) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw DevPKIError.cannotWrite(path: path, errno: errno) }
        defer { close(fd) }
        guard fchmod(fd, mode) == 0 else { throw DevPKIError.cannotWrite(path: path, errno: errno) }
        var bytes = Array(contents.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw DevPKIError.cannotWrite(path: path, errno: errno)
            }
            bytes = bytes.dropFirst(written)
        }
    }

    static func readme(now: Date) -> String {
        let formatter = ISO8601DateFormatter()
        let leavesExpire = formatter.string(from: now + Self.leafValidity)
        let casExpire = formatter.string(from: now + Self.caValidity)
        return """
        Gatehouse development PKI -- for development and tests only. Never use in production.
        Generated in-process by Gatehouse (DevPKI.generate) at \(formatter.string(from: now)).
        Keys are ECDSA P-256 (PKCS#8 PEM), files 0600; certificates are PEM, 0644.
        Leaf certificates expire \(leavesExpire), CAs \(casExpire): regenerate rather than renew.

        ca.pem                 Root CA of trust domain prod.example ("Gatehouse Dev Root CA
                               (prod.example)"): its trust bundle, and the CA clients use to
                               verify the gateway.
        ca.key                 Private key of that CA (lets you issue more certificates).
        staging-ca.pem/.key    Root CA of trust domain staging.example: its trust bundle.
        server.pem, server.key Gateway certificate: DNS localhost, IP 127.0.0.1 and ::1, and the
                               SPIFFE ID spiffe://prod.example/ns/gatehouse/sa/gateway; serverAuth
                               and clientAuth (it is also the gateway's client certificate toward
                               upstreams that require mTLS). Signed by ca.pem.
        upstream.pem/.key      Upstream X509-SVID for spiffe://prod.example/ns/default/sa/billing
                               (DNS localhost, IP 127.0.0.1; serverAuth, clientAuth; ca.pem).
        client-prod.pem/.key   Client X509-SVID for
                               spiffe://prod.example/ns/default/sa/billing-client
                               (clientAuth, signed by ca.pem).
        client-staging.pem/.key
                               Client X509-SVID for
                               spiffe://staging.example/ns/default/sa/billing-client
                               (clientAuth, signed by staging-ca.pem).
        untrusted-ca.pem       A second CA ("Gatehouse Dev UNTRUSTED CA") that nothing should trust.
        client-untrusted.pem/.key
                               Client X509-SVID for spiffe://prod.example/ns/default/sa/intruder,
                               signed by untrusted-ca.pem: the gateway must reject it
                               (tls.untrusted_chain).
        """
    }
}

/// A failure to write the development PKI.
public enum DevPKIError: Error, Sendable, Equatable {
    case cannotWrite(path: String, errno: Int32)
}

/// Where ``DevPKI/generate(into:now:)`` wrote each file.
public struct DevPKIManifest: Sendable, Equatable {
    /// What a file is for; the raw value is its file name.
    public enum Role: String, Sendable, CaseIterable {
        case caCertificate = "ca.pem"
        case caKey = "ca.key"
        case serverCertificate = "server.pem"
        case serverKey = "server.key"
        case stagingCACertificate = "staging-ca.pem"
        case stagingCAKey = "staging-ca.key"
        case upstreamCertificate = "upstream.pem"
        case upstreamKey = "upstream.key"
        case prodClientCertificate = "client-prod.pem"
        case prodClientKey = "client-prod.key"
        case stagingClientCertificate = "client-staging.pem"
        case stagingClientKey = "client-staging.key"
        case untrustedCACertificate = "untrusted-ca.pem"
        case untrustedClientCertificate = "client-untrusted.pem"
        case untrustedClientKey = "client-untrusted.key"
        case readme = "README.txt"

        public var fileName: String { self.rawValue }

        public var isPrivateKey: Bool { self.rawValue.hasSuffix(".key") }

        /// 0600 for private keys, 0644 for everything else.
        public var fileMode: mode_t { self.isPrivateKey ? 0o600 : 0o644 }
    }

    /// The directory the files were written into, as given.
    public var directory: String

    public init(directory: String) {
        self.directory = directory
    }

    /// Path of the file for `role`.
    public subscript(role: Role) -> String {
        self.directory.hasSuffix("/") ? self.directory + role.fileName : self.directory + "/" + role.fileName
    }

    /// Every written path by role.
    public var paths: [Role: String] {
        Dictionary(uniqueKeysWithValues: Role.allCases.map { ($0, self[$0]) })
    }
}
