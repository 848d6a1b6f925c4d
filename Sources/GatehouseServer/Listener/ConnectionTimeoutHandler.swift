import GatehouseCore
import NIOCore

/// Enforces the keep-alive idle timeout and the request-head read timeout.
///
/// It sits below the HTTP codec, so it sees raw bytes: while the connection waits for a
/// request, the first byte starts the head timer, and a client that dribbles a head
/// (slowloris) is cut off when it runs out instead of each byte renewing the idle timer.
/// On a head timeout it answers 408 itself, in bytes, because the HTTP layer has no
/// request in flight to answer.
final class ConnectionTimeoutHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let idleTimeout: TimeAmount
    private let headTimeout: TimeAmount
    /// Writes the decision record for a head timeout.
    private let onHeadTimeout: () -> Void
    private var waitingForHead = true
    private var idleTimer: Scheduled<Void>?
    private var headTimer: Scheduled<Void>?
    private var context: ChannelHandlerContext?

    init(timeouts: ListenerTimeouts, onHeadTimeout: @escaping () -> Void) {
        self.idleTimeout = .init(timeouts.idle)
        self.headTimeout = .init(timeouts.headerRead)
        self.onHeadTimeout = onHeadTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { armIdle() }
    }

    func channelActive(context: ChannelHandlerContext) {
        armIdle()
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimers()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelTimers()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if waitingForHead && headTimer == nil {
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            headTimer = context.eventLoop.scheduleTask(in: headTimeout) { loopBound.value.headTimedOut() }
        }
        context.fireChannelRead(data)
    }

    /// The HTTP layer received a complete request head.
    func requestStarted() {
        waitingForHead = false
        cancelTimers()
    }

    /// The exchange finished and the connection stays open for the next request.
    func requestFinished() {
        waitingForHead = true
        armIdle()
    }

    private func armIdle() {
        guard let context, idleTimer == nil, waitingForHead else { return }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        idleTimer = context.eventLoop.scheduleTask(in: idleTimeout) { loopBound.value.idleTimedOut() }
    }

    private func cancelTimers() {
        idleTimer?.cancel()
        idleTimer = nil
        headTimer?.cancel()
        headTimer = nil
    }

    private func idleTimedOut() {
        idleTimer = nil
        guard waitingForHead, headTimer == nil, let context else { return }
        context.close(promise: nil)
    }

    private func headTimedOut() {
        headTimer = nil
        guard waitingForHead, let context else { return }
        idleTimer?.cancel()
        idleTimer = nil
        onHeadTimeout()
        let body = #"{"error":"request timeout"}"#
        var buffer = context.channel.allocator.buffer(capacity: 128)
        buffer.writeString(
            "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: \(body.utf8.count)\r\nconnection: close\r\n\r\n\(body)"
        )
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in loopBound.value.close(promise: nil) }
    }
}

@available(*, unavailable)
extension ConnectionTimeoutHandler: Sendable {}
