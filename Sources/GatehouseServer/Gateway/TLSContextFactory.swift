import GatehouseCore
import NIOSSL

/// Builds a listener's `NIOSSLContext` once, at load, off the event loop.
enum TLSContextFactory {
    static func serverContext(for tls: ListenerTLSConfig, environment: [String: String]) throws -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(tls.certificatePath)
        } catch {
            throw GatewayStartError.tls("certificate", "cannot load a PEM certificate chain from \(tls.certificatePath) (\(error))")
        }
        guard !chain.isEmpty else {
            throw GatewayStartError.tls("certificate", "\(tls.certificatePath) holds no certificate")
        }
        let keyBytes: [UInt8]
        do {
            keyBytes = try SecretResolver.resolve(tls.privateKey, environment: environment)
        } catch {
            throw GatewayStartError.tls("private_key", "\(error)")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: keyBytes, format: .pem)
        } catch {
            // Never print the key material, only where it came from.
            throw GatewayStartError.tls("private_key", "\(tls.privateKey) is not a PEM private key")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key)
        )
        configuration.minimumTLSVersion = tls.minimumVersion == .v1_3 ? .tlsv13 : .tlsv12
        configuration.applicationProtocols = ["http/1.1"]
        configuration.certificateVerification = .none  // client certificates come with the identity issue
        return try NIOSSLContext(configuration: configuration)
    }
}

public enum GatewayStartError: Error, CustomStringConvertible {
    /// A listener's TLS material failed to load: the `tls` key that is wrong and why.
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
