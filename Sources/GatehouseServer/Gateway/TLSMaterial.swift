import GatehouseCore
import NIOSSL
import SwiftASN1
import X509

/// Loading certificate chains and private keys, with errors that say which key of the
/// config is wrong and never print key material.
enum TLSMaterial {
    static func certificateChain(_ path: String, key: String = "certificate") throws -> [NIOSSLCertificate] {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(path)
        } catch {
            throw GatewayStartError.tls(key, "cannot load a PEM certificate chain from \(path) (\(error))")
        }
        guard !chain.isEmpty else { throw GatewayStartError.tls(key, "\(path) holds no certificate") }
        return chain
    }

    static func privateKey(
        _ reference: SecretReference, environment: [String: String], key: String = "private_key"
    ) throws -> NIOSSLPrivateKey {
        let bytes: [UInt8]
        do {
            bytes = try SecretResolver.resolve(reference, environment: environment)
        } catch {
            throw GatewayStartError.tls(key, "\(error)")
        }
        do {
            return try NIOSSLPrivateKey(bytes: bytes, format: .pem)
        } catch {
            throw GatewayStartError.tls(key, "\(reference) is not a PEM private key")
        }
    }

    static func caCertificates(_ path: String, key: String) throws -> [Certificate] {
        do {
            return try TrustBundles.loadPEM(path: path)
        } catch {
            throw GatewayStartError.tls(key, "cannot load CA certificates from \(path) (\(error))")
        }
    }

    /// CA certificates from `path` as NIOSSL trust roots.
    static func trustRoots(_ path: String, key: String) throws -> NIOSSLTrustRoots {
        .certificates(try caCertificates(path, key: key).map(nioCertificate))
    }

    static func nioCertificate(_ certificate: Certificate) throws -> NIOSSLCertificate {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return try NIOSSLCertificate(bytes: serializer.serializedBytes, format: .der)
    }

    /// The SPIFFE ID in a certificate's URI SAN, if it carries exactly one valid one.
    static func spiffeID(of certificate: NIOSSLCertificate) -> String? {
        guard let parsed = try? Certificate(derEncoded: try certificate.toDERBytes()),
            let names = try? parsed.extensions.subjectAlternativeNames
        else { return nil }
        let uris = names.compactMap { name -> String? in
            if case .uniformResourceIdentifier(let uri) = name { return uri }
            return nil
        }
        guard uris.count == 1, let id = try? SPIFFEID(parsing: uris[0]) else { return nil }
        return id.description
    }

    /// The file paths of a secret reference worth watching for rotation.
    static func watchedPath(_ reference: SecretReference?) -> String? {
        if case .file(let path)? = reference { return path }
        return nil
    }
}

public enum GatewayStartError: Error, CustomStringConvertible {
    /// TLS material failed to load: the `tls` key that is wrong and why.
    case tls(String, String)
    case bind(listener: String, address: String, underlying: String)

    public var description: String {
        switch self {
        case .tls(let key, let message): return "tls.\(key): \(message)"
        case .bind(let listener, let address, let underlying):
            return "listener \(listener): cannot bind \(address): \(underlying)"
        }
    }
}
