import NIOCore
import NIOHTTP1
import NIOSSL

/// What an upstream connection reports to the exchange currently using it.
/// All calls happen on the connection's (and the exchange's) event loop.
protocol UpstreamResponseReceiver: AnyObject {
    func upstreamResponseHead(_ head: HTTPResponseHead)
    func upstreamResponseBody(_ body: ByteBuffer)
    func upstreamResponseEnd()
    func upstreamReadComplete()
    func upstreamFailed(_ failure: UpstreamFailure)
    func upstreamWritabilityChanged(isWritable: Bool)
}

enum UpstreamFailure: Error, Equatable {
    case connectFailed
    case poolExhausted
    case closedEarly
    case protocolError
    case responseTimeout
    /// A TLS alert or error after the handshake, e.g. the upstream refusing the gateway's
    /// client certificate, which under TLS 1.3 arrives after the client's side completed.
    case tlsFailed
}

/// One keep-alive connection to one endpoint. Loop-bound: used only on `channel.eventLoop`
/// (it travels inside futures completed on that loop, hence the unchecked conformance).
final class UpstreamConnection: @unchecked Sendable {
    let channel: Channel
    let endpointIndex: Int
    /// `host:port` as configured, for decision records.
    let endpointLabel: String
    let handler: UpstreamClientHandler
    /// When it was last put back in the pool; the pool's sweeper closes it after the idle timeout.
    var idleSince = NIODeadline.distantPast
    var requestsServed = 0

    init(channel: Channel, endpointIndex: Int, endpointLabel: String, handler: UpstreamClientHandler) {
        self.channel = channel
        self.endpointIndex = endpointIndex
        self.endpointLabel = endpointLabel
        self.handler = handler
    }

    var isUsable: Bool { channel.isActive && !handler.sawProtocolError }
}

/// Sits at the end of an upstream channel's pipeline: hands response parts to the current
/// receiver and lets the receiver pause reads (backpressure toward the upstream).
final class UpstreamClientHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    weak var receiver: UpstreamResponseReceiver?
    /// Called once when the channel closes, so the pool forgets it.
    var onClose: (() -> Void)?
    private(set) var sawProtocolError = false
    private var readsPaused = false
    private var readPending = false
    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func pauseReads() {
        readsPaused = true
    }

    func resumeReads() {
        guard readsPaused else { return }
        readsPaused = false
        if readPending, let context {
            readPending = false
            context.read()
        }
    }

    func read(context: ChannelHandlerContext) {
        if readsPaused {
            readPending = true
        } else {
            context.read()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let receiver else {
            // Bytes on an idle connection: the upstream broke framing. Never reuse it.
            sawProtocolError = true
            context.close(promise: nil)
            return
        }
        switch unwrapInboundIn(data) {
        case .head(let head): receiver.upstreamResponseHead(head)
        case .body(let body): receiver.upstreamResponseBody(body)
        case .end: receiver.upstreamResponseEnd()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        receiver?.upstreamReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        receiver?.upstreamWritabilityChanged(isWritable: context.channel.isWritable)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        sawProtocolError = true
        let receiver = self.receiver
        self.receiver = nil
        let failure: UpstreamFailure
        switch error {
        case is HTTPParserError: failure = .protocolError
        case is BoringSSLError, NIOSSLError.handshakeFailed: failure = .tlsFailed
        default: failure = .closedEarly
        }
        receiver?.upstreamFailed(failure)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let receiver = self.receiver
        self.receiver = nil
        receiver?.upstreamFailed(.closedEarly)
        onClose?()
        onClose = nil
        context.fireChannelInactive()
    }
}

@available(*, unavailable)
extension UpstreamClientHandler: Sendable {}
