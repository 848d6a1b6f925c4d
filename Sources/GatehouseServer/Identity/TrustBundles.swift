import Foundation
import GatehouseCore
import SwiftASN1
import X509

/// The X.509 trust bundles the gateway knows, one per SPIFFE trust domain: the CA certificates
/// that may sign SVIDs for that domain, and only that domain.
///
/// Immutable once built, and shared by reference, so handing it to every connection's
/// ``SVIDVerifier`` costs a retain. Each domain's `CertificateStore` is built here, once, so a
/// handshake never groups certificates by subject again.
public final class TrustBundles: Sendable {
    /// Trust domain name → that domain's CA certificates, as given (empty lists dropped).
    public let certificates: [String: [Certificate]]
    /// The known trust domains, sorted.
    public let trustDomains: [String]

    private let stores: [String: CertificateStore]

    /// `bundles` maps a trust domain name (`prod.example`) to its CA certificates. A domain
    /// with no certificate is treated as unknown. Names are taken as given: the config loader
    /// validates them with ``SPIFFEID/validateTrustDomain(_:)``.
    public init(_ bundles: [String: [Certificate]]) {
        let nonEmpty = bundles.filter { !$0.value.isEmpty }
        self.certificates = nonEmpty
        self.trustDomains = nonEmpty.keys.sorted()
        self.stores = nonEmpty.mapValues { CertificateStore($0) }
    }

    /// The roots for `trustDomain`, or nil when it has no bundle.
    public func roots(for trustDomain: String) -> CertificateStore? {
        self.stores[trustDomain]
    }

    /// Every `CERTIFICATE` block of a PEM file, in file order. Other blocks (keys, CRLs) are
    /// skipped. Reads the file synchronously: call at config load, never on an event loop.
    public static func loadPEM(path: String) throws -> [Certificate] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw TrustBundleError.unreadable(path: path, reason: "\(error.localizedDescription)")
        }
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: text)
        } catch {
            throw TrustBundleError.notPEM(path: path)
        }
        var certificates: [Certificate] = []
        for document in documents where document.discriminator == "CERTIFICATE" {
            do {
                certificates.append(try Certificate(derEncoded: document.derBytes))
            } catch {
                throw TrustBundleError.invalidCertificate(path: path, index: certificates.count + 1)
            }
        }
        guard !certificates.isEmpty else { throw TrustBundleError.noCertificates(path: path) }
        return certificates
    }
}

/// Why a trust bundle file could not be loaded. Every case names the file.
public enum TrustBundleError: Error, Sendable, Hashable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    /// The file is not PEM at all (no `-----BEGIN` block, or a damaged one).
    case notPEM(path: String)
    /// The file has PEM blocks but none is a `CERTIFICATE`.
    case noCertificates(path: String)
    /// The `index`-th `CERTIFICATE` block (1-based) is not a parseable X.509 certificate.
    case invalidCertificate(path: String, index: Int)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): return "\(path): cannot read trust bundle: \(reason)"
        case .notPEM(let path): return "\(path): not a PEM file (expected -----BEGIN CERTIFICATE----- blocks)"
        case .noCertificates(let path): return "\(path): no CERTIFICATE block in trust bundle"
        case .invalidCertificate(let path, let index):
            return "\(path): CERTIFICATE block \(index) is not a valid X.509 certificate"
        }
    }
}
