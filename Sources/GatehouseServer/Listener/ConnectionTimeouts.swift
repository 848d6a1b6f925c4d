import GatehouseCore
import NIOCore
import NIOHTTP1

/// Enforces the keep-alive idle timeout and the request-head read timeout of one client
/// connection. The HTTP handler (`GatewayHandler`) drives it from the raw bytes it reads, so
/// it needs no place in the pipeline of its own.
///
/// While the connection waits for a request, the first byte starts the head timer, and a
/// client that dribbles a head (slowloris) is cut off when it runs out instead of each byte
/// renewing the idle timer. On a head timeout it answers 408 itself, in bytes, because no
/// request is in flight to answer.
final class ConnectionTimeouts {
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

    /// The handler joined the pipeline; `context` is where the 408 is written and the close starts.
    func start(context: ChannelHandlerContext) {
        self.context = context
        idleTimer = DeadlineTimer(eventLoop: context.eventLoop) { [unowned self] in self.idleTimedOut() }
        headTimer = DeadlineTimer(eventLoop: context.eventLoop) { [unowned self] in self.headTimedOut() }
        if context.channel.isActive { idleTimer?.arm(in: idleTimeout) }
    }

    func channelActive() {
        if waitingForHead { idleTimer?.arm(in: idleTimeout) }
    }

    /// Client bytes arrived (before they are parsed).
    func bytesArrived() {
        if waitingForHead, headTimer?.isArmed == false { headTimer?.arm(in: headTimeout) }
    }

    /// A complete request head arrived.
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

    /// The connection is going away.
    func stop() {
        idleTimer?.cancel()
        headTimer?.cancel()
        context = nil
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
        var buffer = ResponseBytes.head(
            versionMinor: 1, status: .requestTimeout,
            headers: [("content-type", "application/json"), ("content-length", String(body.utf8.count)), ("connection", "close")],
            allocator: context.channel.allocator)
        buffer.writeString(body)
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(NIOAny(buffer)).whenComplete { _ in loopBound.value.close(promise: nil) }
    }
}

@available(*, unavailable)
extension ConnectionTimeouts: Sendable {}
