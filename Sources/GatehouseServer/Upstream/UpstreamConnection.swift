import NIOCore
import NIOHTTP1
import NIOSSL

/// What an upstream connection reports to the exchange currently using it.
/// All calls happen on the connection's (and the exchange's) event loop.
protocol UpstreamResponseReceiver: AnyObject {
    func upstreamResponseHead(_ head: UpstreamResponseHead)
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

/// The request line and fields the upstream gets (always HTTP/1.1), as bytes: written once
/// while the request is checked (``HeaderRewriter/FieldSink``), and written again as they are
/// if the request is retried on a fresh connection.
struct UpstreamRequestHead: HeaderRewriter.FieldSink {
    let method: HTTPMethod
    private(set) var bytes: ByteBuffer

    /// `METHOD uri HTTP/1.1`; then the fields (`add`), then `finish()`.
    init(method: HTTPMethod, uri: String, allocator: ByteBufferAllocator) {
        self.method = method
        // Room for a bearer token and the gateway's own fields; grows if a head needs more.
        bytes = allocator.buffer(capacity: 2048 + uri.utf8.count)
        let line: StaticString = " HTTP/1.1\r\n"
        HeadWriter.write(into: &bytes, count: method.rawValue.utf8.count + 1 + uri.utf8.count + line.utf8CodeUnitCount) { out in
            out.append(method.rawValue)
            out.append(UInt8(ascii: " "))
            out.append(uri)
            out.append(line)
        }
    }

    /// One write per field (four `writeString`s cost four capacity, uniqueness and
    /// exclusivity checks; a head has a dozen fields).
    mutating func add(_ name: String, _ value: String) {
        HeadWriter.write(into: &bytes, count: HeadWriter.fieldCount(name, value)) { out in
            out.appendField(name, value)
        }
    }

    /// The blank line that ends the head.
    mutating func finish() {
        bytes.writeStaticString("\r\n")
    }
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

    var isUsable: Bool { channel.isActive && !handler.sawProtocolError && handler.isBetweenResponses }

    /// Writes (without flushing) a request head, framed as the gateway decided: its body, if
    /// any, follows with `writeBody` and `writeEnd`. The response parser learns whether the
    /// response can have a body.
    func writeHead(_ head: UpstreamRequestHead, chunked: Bool) {
        handler.requestStarted(noResponseBody: head.method == .HEAD, chunked: chunked)
        channel.write(head.bytes, promise: nil)
    }

    func writeBody(_ body: ByteBuffer) {
        guard handler.requestIsChunked else {
            channel.write(body, promise: nil)
            return
        }
        ResponseBytes.writeChunk(body, allocator: channel.allocator) { channel.write($0, promise: nil) }
    }

    /// Ends the request body; true when that took bytes (the last chunk), which then need a flush.
    @discardableResult
    func writeEnd() -> Bool {
        guard handler.requestIsChunked else { return false }
        channel.write(ResponseBytes.lastChunk(allocator: channel.allocator), promise: nil)
        return true
    }
}

/// Sits at the end of an upstream channel's pipeline, on the bytes (after TLS, if any):
/// parses responses with `HTTP1ResponseParser`, hands their parts to the current receiver,
/// and lets the receiver pause reads (backpressure toward the upstream).
final class UpstreamClientHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The exchange this connection is attached to. A strong reference, cleared by every
    /// detach (the pool's `release`, a failure here, the client handler's removal): a `weak`
    /// one would give every client handler a refcount side table, which made each of its
    /// many retains and releases per request take the runtime's slow path (~1 % of CPU).
    var receiver: UpstreamResponseReceiver?
    /// Called once when the channel closes, so the pool forgets it.
    var onClose: (() -> Void)?
    private(set) var sawProtocolError = false
    /// The request being sent uses chunked framing.
    private(set) var requestIsChunked = false
    /// No response is expected or under way.
    var isBetweenResponses: Bool { parser.isIdle }
    private var parser = HTTP1ResponseParser()
    private var readsPaused = false
    private var readPending = false
    private var context: ChannelHandlerContext?

    func requestStarted(noResponseBody: Bool, chunked: Bool) {
        requestIsChunked = chunked
        parser.expectResponse(noBody: noResponseBody)
    }

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
        var buffer = unwrapInboundIn(data)
        do {
            // One event at a time: the receiver may start this connection's next exchange
            // (a new `requestStarted`) while handling `.end`.
            while let event = try parser.next(from: &buffer) {
                deliver(event, context: context)
            }
        } catch {
            fail(.protocolError, context: context)
        }
    }

    private func deliver(_ event: HTTP1ResponseParser.Event, context: ChannelHandlerContext) {
        guard let receiver else {
            // A response no exchange waits for any more (it gave up): never reuse the connection.
            fail(.protocolError, context: context)
            return
        }
        switch event {
        case .head(let head): receiver.upstreamResponseHead(head)
        case .body(let body): receiver.upstreamResponseBody(body)
        case .end: receiver.upstreamResponseEnd()
        }
    }

    private func fail(_ failure: UpstreamFailure, context: ChannelHandlerContext) {
        sawProtocolError = true
        let receiver = self.receiver
        self.receiver = nil
        receiver?.upstreamFailed(failure)
        context.close(promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        receiver?.upstreamReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        receiver?.upstreamWritabilityChanged(isWritable: context.channel.isWritable)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        switch error {
        case is BoringSSLError, NIOSSLError.handshakeFailed: fail(.tlsFailed, context: context)
        default: fail(.closedEarly, context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        // A body delimited by the close ends here; anything else was cut short.
        if let end = try? parser.endOfInput(), let receiver {
            if case .end = end { receiver.upstreamResponseEnd() }
        }
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
