import GatehouseCore
import NIOCore
import NIOSSL
import NIOTLS

/// Gives a client a deadline to finish the TLS handshake (so unauthenticated clients cannot
/// hold connections) and records every refused handshake. Sits right after NIOSSL.
final class TLSHandshakeGuardHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let timeout: TimeAmount
    /// Writes the decision record for a refused handshake: the TLS error, or nil for a timeout.
    private let onRefused: (Error?) -> Void
    private var timer: Scheduled<Void>?
    private var finished = false

    private let onCompleted: () -> Void

    init(timeout: TimeAmount, onCompleted: @escaping () -> Void = {}, onRefused: @escaping (Error?) -> Void) {
        self.onCompleted = onCompleted
        self.timeout = timeout
        self.onRefused = onRefused
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context: context)
        context.fireChannelActive()
    }

    private func arm(context: ChannelHandlerContext) {
        guard timer == nil, !finished else { return }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: timeout) {
            let (handler, context) = loopBound.value
            handler.timedOut(context: context)
        }
    }

    private func timedOut(context: ChannelHandlerContext) {
        timer = nil
        guard !finished else { return }
        finished = true
        onRefused(nil)
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            finished = true
            timer?.cancel()
            timer = nil
            onCompleted()
            context.fireUserInboundEventTriggered(event)
            // Its job is done: leave the pipeline, so that no request pays for one more hop.
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if !finished {
            finished = true
            timer?.cancel()
            timer = nil
            onRefused(error)
        }
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }
}

@available(*, unavailable)
extension TLSHandshakeGuardHandler: Sendable {}
