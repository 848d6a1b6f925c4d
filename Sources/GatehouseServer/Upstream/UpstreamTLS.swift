import GatehouseCore
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import NIOTLS
import SwiftASN1
import X509

/// TLS toward one upstream: the client `NIOSSLContext` (roots, and the gateway's own
/// certificate for mTLS), swapped whole on rotation, and how the upstream's certificate is
/// verified: by SPIFFE ID when `spiffe_id` is set, else by host name.
final class UpstreamTLS: Sendable {
    let config: UpstreamTLSConfig
    private let upstreamName: String
    private let trust: TrustDomainStore?
    private let environment: [String: String]
    private let allowedIDs: Set<SPIFFEID>
    private let current: NIOLockedValueBox<Material>

    struct Material {
        let context: NIOSSLContext
        /// Verifies the upstream's SVID; nil when the upstream is verified by host name.
        let verifier: SVIDVerifier?
    }

    /// Why the handshake with an upstream failed.
    struct HandshakeFailure: Error {
        let reason: ReasonCode
        let detail: String
    }

    init(config: UpstreamTLSConfig, upstreamName: String, trust: TrustDomainStore?, environment: [String: String]) throws {
        self.config = config
        self.upstreamName = upstreamName
        self.trust = trust
        self.environment = environment
        self.allowedIDs = Set(config.spiffeIDs)
        self.current = NIOLockedValueBox(try Self.load(config, trust: trust, environment: environment))
    }

    var watchedFiles: [String] {
        var files: [String] = []
        if case .caFile(let path) = config.roots { files.append(path) }
        if let path = config.certificatePath { files.append(path) }
        if let path = TLSMaterial.watchedPath(config.privateKey) { files.append(path) }
        return files
    }

    /// The trust domain whose bundle verifies this upstream, if any (its change reloads us too).
    var trustDomain: String? {
        if case .trustDomain(let name) = config.roots { return name }
        return nil
    }

    func reload() throws {
        let material = try Self.load(config, trust: trust, environment: environment)
        current.withLockedValue { $0 = material }
    }

    private static func load(_ config: UpstreamTLSConfig, trust: TrustDomainStore?, environment: [String: String]) throws -> Material {
        let roots: [Certificate]
        switch config.roots {
        case .caFile(let path): roots = try TLSMaterial.caCertificates(path, key: "ca")
        case .trustDomain(let name): roots = trust?.roots(of: name) ?? []
        }
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.applicationProtocols = ["http/1.1"]
        configuration.minimumTLSVersion = .tlsv12
        if let path = config.certificatePath, let key = config.privateKey {
            let chain = try TLSMaterial.certificateChain(path)
            configuration.certificateChain = chain.map { .certificate($0) }
            configuration.privateKey = .privateKey(try TLSMaterial.privateKey(key, environment: environment))
        }
        var verifier: SVIDVerifier?
        if config.spiffeIDs.isEmpty {
            // BoringSSL verifies the chain; the name is checked after the handshake
            // (`UpstreamHandshakeHandler`), not by NIOSSL: NIOSSL also accepts any IP SAN equal
            // to the socket's address, whatever name was asked for.
            configuration.certificateVerification = .noHostnameVerification
            configuration.trustRoots = .certificates(try roots.map(TLSMaterial.nioCertificate))
        } else {
            // The custom callback replaces BoringSSL's check: chain to the bundle of the ID's
            // trust domain, then the ID must be one of those configured.
            configuration.certificateVerification = .noHostnameVerification
            let domains = Set(config.spiffeIDs.map(\.trustDomain))
            verifier = SVIDVerifier(bundles: TrustBundles(Dictionary(uniqueKeysWithValues: domains.map { ($0, roots) })))
        }
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw GatewayStartError.tls("certificate", "cannot build the upstream TLS context (\(error))")
        }
        return Material(context: context, verifier: verifier)
    }

    /// The TLS handler for one new upstream connection, plus the slot its identity check
    /// reports a refusal into.
    func makeClientHandler(endpointHost: String, eventLoop: EventLoop) throws -> (NIOSSLClientHandler, UpstreamIdentitySlot) {
        let material = current.withLockedValue { $0 }
        let slot = UpstreamIdentitySlot()
        let expectedName = config.serverName ?? endpointHost
        // SNI carries names only: an IP (endpoint or `server_name`) sends none.
        let serverName = ConfigValueParser.ipAddress(expectedName) == nil ? expectedName : nil
        guard let verifier = material.verifier else {
            slot.expectedName = expectedName
            return (try NIOSSLClientHandler(context: material.context, serverHostname: serverName), slot)
        }
        let allowed = allowedIDs
        let boundSlot = NIOLoopBound(slot, eventLoop: eventLoop)
        let handler = try NIOSSLClientHandler(context: material.context, serverHostname: serverName) { certificates, promise in
            guard let chain = try? certificates.map({ try $0.toDERBytes() }) else {
                boundSlot.value.failure = HandshakeFailure(reason: .upstreamTLSFailed, detail: "unreadable certificate")
                promise.succeed(.failed)
                return
            }
            Task {
                let result = await verifier.verify(chainDER: chain)
                promise.futureResult.eventLoop.execute {
                    switch result {
                    case .success(let peer) where allowed.contains(peer.spiffeID):
                        promise.succeed(.certificateVerified)
                    case .success(let peer):
                        boundSlot.value.failure = HandshakeFailure(
                            reason: .upstreamIdentityMismatch, detail: "presented \(peer.spiffeID), expected one of \(allowed.map(\.description).sorted())")
                        promise.succeed(.failed)
                    case .failure(let refusal):
                        boundSlot.value.failure = HandshakeFailure(reason: .upstreamTLSFailed, detail: refusal.detail)
                        promise.succeed(.failed)
                    }
                }
            }
        }
        return (handler, slot)
    }
}

/// Where an upstream handshake's identity check leaves its refusal. Loop-bound.
final class UpstreamIdentitySlot {
    var failure: UpstreamTLS.HandshakeFailure?
    /// Without `spiffe_id`: the host name or IP address the upstream's certificate must carry.
    var expectedName: String?
}

extension UpstreamTLS {
    /// Whether `leaf` carries `name`: for an IP address, an iPAddress SAN with its bytes; for a
    /// host name, a dNSName SAN matching it per RFC 6125 §6.4 (ASCII case-insensitive, a `*`
    /// only as the whole left-most label, standing for exactly one label). The subject's
    /// common name is not consulted (deprecated since RFC 2818).
    static func certificate(_ leaf: Certificate, carries name: String) -> Bool {
        guard let names = try? leaf.extensions.subjectAlternativeNames else { return false }
        if let address = ConfigValueParser.ipAddress(name) {
            return names.contains { san in
                if case .ipAddress(let bytes) = san { return Array(bytes.bytes) == address }
                return false
            }
        }
        let wanted = Self.labels(name)
        guard !wanted.isEmpty else { return false }
        return names.contains { san in
            guard case .dnsName(let dnsName) = san else { return false }
            let pattern = Self.labels(dnsName)
            guard pattern.count == wanted.count else { return false }
            for (index, (label, host)) in zip(pattern, wanted).enumerated() {
                // A bare `*` never matches: the wildcard needs a parent domain.
                if index == 0, label == "*", pattern.count >= 2 { continue }
                if label != host { return false }
            }
            return true
        }
    }

    /// Lowercased labels, without a trailing dot; empty for an empty name or an empty label.
    private static func labels(_ name: String) -> [Substring] {
        var text = Substring(name.lowercased())
        if text.hasSuffix(".") { text = text.dropLast() }
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        return labels.contains(where: \.isEmpty) ? [] : labels
    }
}

@available(*, unavailable)
extension UpstreamIdentitySlot: Sendable {}

/// Completes `promise` when the upstream TLS handshake is done, or fails it with the reason.
final class UpstreamHandshakeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let promise: EventLoopPromise<Void>
    var completed: EventLoopFuture<Void> { promise.futureResult }
    private let slot: UpstreamIdentitySlot
    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?

    init(promise: EventLoopPromise<Void>, slot: UpstreamIdentitySlot, timeout: TimeAmount) {
        self.promise = promise
        self.slot = slot
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let promise = self.promise
        timer = context.eventLoop.scheduleTask(in: timeout) {
            promise.fail(UpstreamTLS.HandshakeFailure(reason: .upstreamTLSFailed, detail: "handshake timed out"))
            loopBound.value.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            timer?.cancel()
            if let name = slot.expectedName, !Self.peerCarries(name, context: context) {
                let failure = UpstreamTLS.HandshakeFailure(
                    reason: .upstreamTLSFailed, detail: "the upstream's certificate is not valid for \(name)")
                slot.failure = failure
                promise.fail(failure)
                context.close(promise: nil)
                return
            }
            promise.succeed(())
        }
        context.fireUserInboundEventTriggered(event)
    }

    private static func peerCarries(_ name: String, context: ChannelHandlerContext) -> Bool {
        guard let peer = try? context.pipeline.syncOperations.nioSSL_peerCertificate(),
            let leaf = try? Certificate(derEncoded: peer.toDERBytes())
        else { return false }
        return UpstreamTLS.certificate(leaf, carries: name)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        timer?.cancel()
        promise.fail(slot.failure ?? UpstreamTLS.HandshakeFailure(reason: .upstreamTLSFailed, detail: "\(error)"))
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        promise.fail(slot.failure ?? UpstreamTLS.HandshakeFailure(reason: .upstreamTLSFailed, detail: "closed during the handshake"))
        context.fireChannelInactive()
    }
}

@available(*, unavailable)
extension UpstreamHandshakeHandler: Sendable {}
