import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// An in-process upstream for end-to-end tests. It records every request it receives
/// (head, body size and SHA-256) and behaves according to the request path:
/// - `/slow`: answers after 2 s (longer than the tests' response timeout)
/// - `/close`: closes the connection without answering
/// - `/bytes/N`: answers with N bytes of body, streamed in 64 KiB chunks
/// - `/early-413`: answers 413 at once, before reading the body
/// - `/hold`: stops reading the request body until `releaseHeld()` is called
/// - anything else: 200 with a small JSON body naming the path
final class TestUpstream: @unchecked Sendable {
    struct Received: Sendable {
        var head: HTTPRequestHead
        var bodyBytes: Int
        var bodySHA256: String
        /// DER of the client certificate the connection presented (TLS upstreams that ask for one).
        var peerCertificateDER: [UInt8]? = nil
    }

    let channel: Channel
    private let received = NIOLockedValueBox<[Received]>([])
    let connectionsAccepted = NIOLockedValueBox(0)
    /// Connections accepted and not yet closed.
    let connectionsOpen = NIOLockedValueBox(0)
    let held = NIOLockedValueBox<[NIOLoopBoundBox<UpstreamTestHandler?>]>([])

    var port: Int { channel.localAddress!.port! }

    /// - Parameter tls: serve HTTPS with this context (e.g. one that requires a client certificate).
    init(group: EventLoopGroup, tls: NIOSSLContext? = nil) throws {
        let box = received
        let accepted = connectionsAccepted
        let open = connectionsOpen
        let held = self.held
        channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.autoRead, value: true)
            .childChannelInitializer { channel in
                accepted.withLockedValue { $0 += 1 }
                open.withLockedValue { $0 += 1 }
                channel.closeFuture.whenComplete { _ in open.withLockedValue { $0 -= 1 } }
                return channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    let handler = UpstreamTestHandler(record: { item in box.withLockedValue { $0.append(item) } })
                    handler.onHold = { handler in
                        held.withLockedValue { $0.append(NIOLoopBoundBox(handler, eventLoop: channel.eventLoop)) }
                    }
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
    }

    var requests: [Received] { received.withLockedValue { $0 } }

    /// Waits (bounded) until `count` requests have been recorded.
    func waitForRequests(_ count: Int, timeout: TimeInterval = 10) -> [Received] {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let current = requests
            if current.count >= count { return current }
            usleep(5000)
        }
        return requests
    }

    func releaseHeld() {
        for box in held.withLockedValue({ $0 }) {
            box.eventLoop.execute { box.value?.release() }
        }
    }

    func stop() {
        try? channel.close().wait()
    }
}

final class UpstreamTestHandler: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let record: (TestUpstream.Received) -> Void
    var onHold: ((UpstreamTestHandler) -> Void)?
    private var head: HTTPRequestHead?
    private var bodyBytes = 0
    private var hasher = SHA256()
    private var holding = false
    private var readPending = false
    private var context: ChannelHandlerContext?

    init(record: @escaping (TestUpstream.Received) -> Void) {
        self.record = record
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func read(context: ChannelHandlerContext) {
        if holding { readPending = true } else { context.read() }
    }

    func release() {
        holding = false
        if readPending, let context {
            readPending = false
            context.read()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            bodyBytes = 0
            hasher = SHA256()
            if head.uri == "/early-413" {
                respond(context: context, status: .payloadTooLarge, body: "too large", close: true)
            } else if head.uri == "/hold" {
                holding = true
                onHold?(self)
            }
        case .body(let body):
            bodyBytes += body.readableBytes
            body.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
        case .end:
            guard let head else { return }
            self.head = nil
            let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
            let peer = try? context.pipeline.syncOperations.nioSSL_peerCertificate()?.toDERBytes()
            record(.init(head: head, bodyBytes: bodyBytes, bodySHA256: digest, peerCertificateDER: peer))
            handle(head, context: context)
        }
    }

    private func handle(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri
        if path == "/early-413" { return }
        if path == "/close" {
            context.close(promise: nil)
            return
        }
        if path == "/slow" {
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: .seconds(2)) {
                let (handler, context) = loopBound.value
                handler.respond(context: context, status: .ok, body: "late", close: false)
            }
            return
        }
        if path.hasPrefix("/bytes/"), let count = Int(path.dropFirst("/bytes/".count)) {
            var headers = HTTPHeaders()
            headers.add(name: "content-length", value: String(count))
            context.write(wrapOutboundOut(.head(.init(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            var remaining = count
            let chunk = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64 * 1024)
            while remaining > 0 {
                let size = min(remaining, chunk.readableBytes)
                context.write(wrapOutboundOut(.body(.byteBuffer(chunk.getSlice(at: 0, length: size)!))), promise: nil)
                remaining -= size
            }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            return
        }
        respond(context: context, status: .ok, body: #"{"path":"\#(path)","body_bytes":\#(bodyBytes)}"#, close: false)
    }

    func respond(context: ChannelHandlerContext, status: HTTPResponseStatus, body: String, close: Bool) {
        var headers = HTTPHeaders()
        headers.add(name: "content-length", value: String(body.utf8.count))
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "x-upstream", value: "test")
        if close { headers.add(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(.init(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if close { loopBound.value.close(promise: nil) }
        }
    }
}
