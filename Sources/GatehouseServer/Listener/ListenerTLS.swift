import Foundation
import GatehouseCore
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL

/// A listener's TLS: the server certificate and key as one `NIOSSLContext` (built off the
/// event loop, swapped whole on rotation) and, when the listener asks for client
/// certificates, the SVID verification every handshake runs.
final class ListenerTLS: Sendable {
    let config: ListenerTLSConfig
    private let environment: [String: String]
    private let trust: TrustDomainStore?
    private let current: NIOLockedValueBox<Material>

    struct Material {
        let context: NIOSSLContext
        /// The gateway's own SPIFFE ID, from its server certificate, for `X-Forwarded-Client-Cert`'s `By=`.
        let gatewayID: String?
    }

    init(config: ListenerTLSConfig, trust: TrustDomainStore?, environment: [String: String]) throws {
        self.config = config
        self.environment = environment
        self.trust = trust
        self.current = NIOLockedValueBox(try Self.load(config, environment: environment))
    }

    /// Files whose change triggers `reload()`.
    var watchedFiles: [String] {
        [config.certificatePath] + [TLSMaterial.watchedPath(config.privateKey)].compactMap { $0 }
    }

    /// Re-reads certificate and key. New handshakes use them; established connections keep
    /// theirs. On failure the last good material stays in use.
    func reload() throws {
        let material = try Self.load(config, environment: environment)
        current.withLockedValue { $0 = material }
    }

    private static func load(_ config: ListenerTLSConfig, environment: [String: String]) throws -> Material {
        let chain = try TLSMaterial.certificateChain(config.certificatePath)
        let key = try TLSMaterial.privateKey(config.privateKey, environment: environment)
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = config.minimumVersion == .v1_3 ? .tlsv13 : .tlsv12
        configuration.applicationProtocols = ["http/1.1"]
        switch config.clientCertificates {
        case .none: configuration.certificateVerification = .none
        // Both ask for a certificate; the custom callback below replaces BoringSSL's chain
        // check, since the roots depend on the trust domain the certificate claims.
        case .optional: configuration.certificateVerification = .optionalVerification
        case .required: configuration.certificateVerification = .noHostnameVerification
        }
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw GatewayStartError.tls("certificate", "certificate and private key do not form a TLS context (\(error))")
        }
        return Material(context: context, gatewayID: TLSMaterial.spiffeID(of: chain[0]))
    }

    /// The TLS handler for one new connection. A presented client certificate is verified off
    /// the event loop (swift-certificates is async); the outcome lands in `slot` before the
    /// handshake completes.
    func makeServerHandler(slot: PeerSlot, eventLoop: EventLoop) -> NIOSSLServerHandler {
        let material = current.withLockedValue { $0 }
        guard config.clientCertificates != .none, let trust else {
            return NIOSSLServerHandler(context: material.context)
        }
        let (verifier, cache) = trust.verification
        let gatewayID = material.gatewayID
        let boundSlot = NIOLoopBound(slot, eventLoop: eventLoop)
        return NIOSSLServerHandler(context: material.context) { certificates, promise in
            guard let chain = try? certificates.map({ try $0.toDERBytes() }) else {
                boundSlot.value.refusal = SVIDRefusal(reason: .tlsInvalidSVID, claimedID: nil, detail: "unreadable certificate")
                promise.succeed(.failed)
                return
            }
            // A chain that verified recently against these same bundles is not checked again.
            let key = VerifiedChainCache.Key(chainDER: chain)
            if let cached = cache.lookup(key, now: Date()) {
                boundSlot.value.peer = ConnectionPeer(cached, gatewayID: gatewayID)
                promise.succeed(.certificateVerified)
                return
            }
            Task {
                let result = await verifier.verify(chainDER: chain)
                if case .success(let verified) = result { cache.insert(key, verified) }
                promise.futureResult.eventLoop.execute {
                    switch result {
                    case .success(let verified):
                        boundSlot.value.peer = ConnectionPeer(verified, gatewayID: gatewayID)
                        promise.succeed(.certificateVerified)
                    case .failure(let refusal):
                        boundSlot.value.refusal = refusal
                        promise.succeed(.failed)
                    }
                }
            }
        }
    }

    /// Why a handshake failed, for its decision record.
    static func refusalReason(_ error: Error, slot: PeerSlot) -> ReasonCode {
        if let refusal = slot.refusal { return refusal.reason }
        // BoringSSL refuses a missing certificate on a `required` listener itself.
        if String(describing: error).contains("PEER_DID_NOT_RETURN_A_CERTIFICATE") { return .tlsNoClientCert }
        return .tlsHandshakeFailed
    }
}
