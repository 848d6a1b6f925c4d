import NIOCore
import NIOSSL
import NIOTLS
import X509

/// Completes `verified` once the TLS handshake is done and the server's certificate carries
/// the expected name (NIOSSL's own check also accepts an IP SAN equal to the socket's
/// address, whatever name was asked for, so the name is checked here, as for upstreams).
/// Nothing (no `AUTH`) is sent before that.
final class RedisTLSHandshakeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let expectedName: String
    private let verified: EventLoopPromise<Void>

    init(expectedName: String, verified: EventLoopPromise<Void>) {
        self.expectedName = expectedName
        self.verified = verified
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            guard let peer = try? context.pipeline.syncOperations.nioSSL_peerCertificate(),
                let leaf = try? Certificate(derEncoded: peer.toDERBytes()),
                UpstreamTLS.certificate(leaf, carries: expectedName)
            else {
                verified.fail(RedisClientError(kind: .unavailable, message: "the server's certificate is not valid for \(expectedName)"))
                context.close(promise: nil)
                return
            }
            verified.succeed(())
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        verified.fail(RedisClientError(kind: .unavailable, message: "TLS handshake failed (\(error))"))
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        verified.fail(RedisClientError(kind: .unavailable, message: "closed during the TLS handshake"))
        context.fireChannelInactive()
    }
}

@available(*, unavailable)
extension RedisTLSHandshakeHandler: Sendable {}
