import GatehouseCore
import NIOCore

/// Enforces the keep-alive idle timeout and the request-head read timeout.
///
/// It sits below the HTTP codec, so it sees raw bytes: while the connection waits for a
/// request, the first byte starts the head timer, and a client that dribbles a head
/// (slowloris) is cut off when it runs out instead of each byte renewing the idle timer.
/// On a head timeout it answers 408 itself, in bytes, because the HTTP layer has no
/// request in flight to answer. Inbound-only, so NIO skips it for every outbound write.
final class ConnectionTimeoutHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let idleTimeout: TimeAmount
    private let headTimeout: TimeAmount
    /// Writes the decision record for a head timeout.
    private let onHeadTimeout: () -> Void
    private var waitingForHead = true
    private var idleTimer: DeadlineTimer?
    private var headTimer: DeadlineTimer?
    private var context: ChannelHandlerContext?

    init(timeouts: ListenerTimeouts, onHeadTimeout: @escaping () -> Void) {
        self.idleTimeout = .init(timeouts.idle)
        self.headTimeout = .init(timeouts.headerRead)
        self.onHeadTimeout = onHeadTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        idleTimer = DeadlineTimer(eventLoop: context.eventLoop) { [unowned self] in self.idleTimedOut() }
        headTimer = DeadlineTimer(eventLoop: context.eventLoop) { [unowned self] in self.headTimedOut() }
        if context.channel.isActive { idleTimer?.arm(in: idleTimeout) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if waitingForHead { idleTimer?.arm(in: idleTimeout) }
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
        if waitingForHead, headTimer?.isArmed == false { headTimer?.arm(in: headTimeout) }
        context.fireChannelRead(data)
    }

    /// The HTTP layer received a complete request head.
    func requestStarted() {
        waitingForHead = false
        idleTimer?.disarm()
        headTimer?.disarm()
    }

    /// The exchange finished and the connection stays open for the next request.
    func requestFinished() {
        waitingForHead = true
        idleTimer?.arm(in: idleTimeout)
    }

    private func cancelTimers() {
        idleTimer?.cancel()
        headTimer?.cancel()
    }

    private func idleTimedOut() {
        guard waitingForHead, headTimer?.isArmed == false, let context else { return }
        context.close(promise: nil)
    }

    private func headTimedOut() {
        guard waitingForHead, let context else { return }
        idleTimer?.disarm()
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
