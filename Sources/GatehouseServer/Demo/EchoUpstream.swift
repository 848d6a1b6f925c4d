import GatehouseCore
import NIOCore
import NIOHTTP1
import NIOPosix

/// A small plaintext HTTP server that answers every request with a JSON description of what
/// it received (method, target, headers, body size). It stands in for a legacy upstream in
/// `gatehouse demo`, so a user can see exactly which headers the gateway forwarded.
public final class EchoUpstream: Sendable {
    private let channel: Channel

    public var localAddress: SocketAddress? { channel.localAddress }

    private init(channel: Channel) {
        self.channel = channel
    }

    public static func start(host: String, port: Int, group: EventLoopGroup) async throws -> EchoUpstream {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(EchoHandler())
                }
            }
            .bind(host: host, port: port).get()
        return EchoUpstream(channel: channel)
    }

    public func stop() async {
        try? await channel.close()
    }
}

final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private var head: HTTPRequestHead?
    private var bodyBytes = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            bodyBytes = 0
        case .body(let body):
            bodyBytes += body.readableBytes
        case .end:
            guard let head else { return }
            self.head = nil
            var json = JSONObjectWriter()
            json.field("upstream", "gatehouse-demo-echo")
            json.field("method", head.method.rawValue)
            json.field("uri", head.uri)
            json.object("headers") { inner in
                for (name, value) in head.headers { inner.field(dynamic: name.lowercased(), value) }
            }
            json.field("body_bytes", bodyBytes)
            let body = json.finishString() + "\n"
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: "application/json")
            headers.add(name: "content-length", value: String(body.utf8.count))
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}

@available(*, unavailable)
extension EchoHandler: Sendable {}
