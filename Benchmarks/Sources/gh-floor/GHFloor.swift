import ArgumentParser
import NIOCore
import NIOPosix
import NIOSSL

/// The floor of a SwiftNIO + NIOSSL reverse proxy on this machine: what any gateway built on
/// this stack pays before it checks anything. It terminates TLS (verifying a client
/// certificate against a CA when given one, as nginx's `ssl_verify_client on` does), and relays
/// GET requests byte for byte to one plain-HTTP upstream over a kept-alive connection per
/// client connection, on the client's event loop, with one flush per response. No parsing
/// beyond finding a head's end and a response's Content-Length; no header rewriting, routing,
/// identity policy, decision record or metric. Benchmark only: it trusts the upstream to send
/// Content-Length responses and refuses (closes) anything else.
@main
struct GHFloor: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gh-floor",
        abstract: "A minimal SwiftNIO + NIOSSL TLS reverse proxy: the stack's floor, for the benchmarks.")

    @Option(help: "Listen port on 127.0.0.1.")
    var port: Int

    @Option(help: "Upstream port on 127.0.0.1 (plain HTTP/1.1, Content-Length responses).")
    var upstreamPort: Int

    @Option(help: "PEM server certificate chain.")
    var cert: String

    @Option(help: "PEM private key of --cert.")
    var key: String

    @Option(help: "PEM CA certificates: when given, a client certificate is required and verified against them.")
    var clientCA: String?

    @Option(help: "Event-loop threads (default: cores).")
    var threads: Int = System.coreCount

    func run() throws {
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
        if let clientCA {
            tls.certificateVerification = .noHostnameVerification
            tls.trustRoots = .file(clientCA)
        }
        let context = try NIOSSLContext(configuration: tls)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let upstream = try SocketAddress(ipAddress: "127.0.0.1", port: upstreamPort)
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    try channel.pipeline.syncOperations.addHandler(RelayHandler(upstream: upstream))
                }
            }
            .bind(host: "127.0.0.1", port: port).wait()
        print("gh-floor listening on 127.0.0.1:\(port)")
        try channel.closeFuture.wait()
    }
}

/// The client side: forwards each request head to the upstream once the previous response is
/// done, and writes the upstream's response bytes back.
final class RelayHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let upstreamAddress: SocketAddress
    private var upstream: Channel?
    private var connecting = false
    private var pending = ByteBuffer()
    private var inFlight = false
    private var context: ChannelHandlerContext?

    init(upstream: SocketAddress) { self.upstreamAddress = upstream }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        pending.writeBuffer(&bytes)
        sendNextRequest()
    }

    func channelInactive(context: ChannelHandlerContext) {
        upstream?.close(promise: nil)
        upstream = nil
        context.fireChannelInactive()
    }

    private func sendNextRequest() {
        guard !inFlight, let context else { return }
        guard let length = headLength(pending) else {
            if pending.readableBytes > 16 * 1024 { context.close(promise: nil) }
            return
        }
        guard let upstream else {
            connect(context: context)
            return
        }
        let head = pending.readSlice(length: length)!
        pending.discardReadBytes()
        inFlight = true
        upstream.writeAndFlush(head, promise: nil)
    }

    private func connect(context: ChannelHandlerContext) {
        guard !connecting else { return }
        connecting = true
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        ClientBootstrap(group: context.eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ResponseRelay(client: loopBound.value))
                }
            }
            .connect(to: upstreamAddress)
            .whenComplete { result in
                let relay = loopBound.value
                relay.connecting = false
                switch result {
                case .success(let channel):
                    relay.upstream = channel
                    relay.sendNextRequest()
                case .failure:
                    relay.context?.close(promise: nil)
                }
            }
    }

    /// Response bytes from the upstream, written to the client; flushed once per read.
    func relay(_ bytes: ByteBuffer) { context?.write(wrapOutboundOut(bytes), promise: nil) }
    func flush() { context?.flush() }

    func responseEnded() {
        inFlight = false
        sendNextRequest()
    }

    func upstreamFailed() {
        upstream = nil
        context?.close(promise: nil)
    }
}

/// The upstream side: finds each response's end from its Content-Length.
final class ResponseRelay: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let client: RelayHandler
    private var head = ByteBuffer()
    private var bodyLeft: Int?

    init(client: RelayHandler) { self.client = client }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        while bytes.readableBytes > 0 {
            if let left = bodyLeft {
                let part = bytes.readSlice(length: min(left, bytes.readableBytes))!
                client.relay(part)
                bodyLeft = left - part.readableBytes
                if bodyLeft == 0 {
                    bodyLeft = nil
                    client.responseEnded()
                }
                continue
            }
            let headBytes: ByteBuffer
            if head.readableBytes == 0, let length = headLength(bytes) {
                headBytes = bytes.readSlice(length: length)!  // the usual case: no copy
            } else {
                head.writeBuffer(&bytes)
                guard let length = headLength(head) else { return }
                headBytes = head.readSlice(length: length)!
                bytes = head
                head = ByteBuffer()
            }
            guard let length = Self.contentLength(headBytes) else {
                context.close(promise: nil)
                return
            }
            client.relay(headBytes)
            bodyLeft = length
            if length == 0 {
                bodyLeft = nil
                client.responseEnded()
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) { client.flush() }

    func channelInactive(context: ChannelHandlerContext) {
        client.upstreamFailed()
        context.fireChannelInactive()
    }

    /// The value of the first `Content-Length` field (ASCII case-insensitive name).
    static func contentLength(_ head: ByteBuffer) -> Int? {
        let name = Array("\r\ncontent-length:".utf8)
        return head.withUnsafeReadableBytes { bytes -> Int? in
            guard bytes.count > name.count else { return nil }
            for start in 0...(bytes.count - name.count) {
                var matches = true
                for (offset, expected) in name.enumerated() where bytes[start + offset] | 0x20 != expected | 0x20 {
                    matches = false
                    break
                }
                guard matches else { continue }
                var index = start + name.count
                while index < bytes.count, bytes[index] == 32 { index += 1 }
                var value = 0
                var digits = 0
                while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57, digits < 15 {
                    value = value * 10 + Int(bytes[index] - 48)
                    index += 1
                    digits += 1
                }
                return digits > 0 ? value : nil
            }
            return nil
        }
    }
}

/// The length of the head at the start of `buffer`, up to and including its CRLFCRLF.
func headLength(_ buffer: ByteBuffer) -> Int? {
    buffer.withUnsafeReadableBytes { bytes -> Int? in
        guard bytes.count >= 4 else { return nil }
        var index = 3
        while index < bytes.count {
            if bytes[index] == 10, bytes[index - 1] == 13, bytes[index - 2] == 10, bytes[index - 3] == 13 { return index + 1 }
            index += 1
        }
        return nil
    }
}
