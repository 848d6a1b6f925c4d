import Atomics
import NIOCore
import NIOHTTP1

/// The admin listener: liveness, readiness, the minted tokens' JWKS, Prometheus metrics and
/// the rollout API and the running configuration. Answers only from a fixed set of routes
/// and never shows a secret: `/config` has every secret reference redacted.
final class AdminHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let isReady: @Sendable () -> Bool
    /// The public keys of minted tokens, when the gateway mints any.
    private let jwks: @Sendable () -> String?
    /// The Prometheus text exposition, rendered per scrape.
    private let metrics: @Sendable () -> [UInt8]
    private let rollout: AdminRolloutAPI?
    /// `GET /config`: the running configuration, redacted, with its version and hash.
    private let config: @Sendable () -> [UInt8]
    private var pending: HTTPRequestHead?

    init(
        isReady: @escaping @Sendable () -> Bool, jwks: @escaping @Sendable () -> String? = { nil },
        metrics: @escaping @Sendable () -> [UInt8] = { [] }, config: @escaping @Sendable () -> [UInt8] = { [] },
        rollout: AdminRolloutAPI? = nil
    ) {
        self.isReady = isReady
        self.jwks = jwks
        self.metrics = metrics
        self.rollout = rollout
        self.config = config
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): pending = head
        case .body: break
        case .end:
            guard let head = pending else { return }
            pending = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        let (status, body): (HTTPResponseStatus, String)
        switch (head.method, path) {
        case (.GET, "/healthz"), (.HEAD, "/healthz"):
            (status, body) = (.ok, #"{"status":"ok"}"#)
        case (.GET, "/readyz"), (.HEAD, "/readyz"):
            (status, body) = isReady() ? (.ok, #"{"status":"ready"}"#) : (.serviceUnavailable, #"{"status":"not ready"}"#)
        case (.GET, "/metrics"):
            respond(to: head, status: .ok, contentType: GatewayMetrics.contentType, body: metrics(), context: context)
            return
        case (.GET, "/rollout"), (.POST, "/rollout/promote"), (.POST, "/rollout/rollback"):
            guard let rollout else {
                (status, body) = (.notFound, #"{"error":"not found"}"#)
                break
            }
            let answer = rollout.handle(method: head.method, path: path, headers: head.headers)
            respond(to: head, status: answer.status, contentType: "application/json", body: answer.body, context: context,
                extraHeaders: answer.status == .unauthorized ? [("www-authenticate", "Bearer")] : [])
            return
        case (.GET, "/config"):
            respond(to: head, status: .ok, contentType: "application/json", body: config(), context: context)
            return
        case (.GET, "/.well-known/jwks.json"):
            if let jwks = jwks() { (status, body) = (.ok, jwks) } else { (status, body) = (.notFound, #"{"error":"not found"}"#) }
        default:
            (status, body) = (.notFound, #"{"error":"not found"}"#)
        }
        respond(to: head, status: status, contentType: "application/json", body: Array(body.utf8), context: context)
    }

    private func respond(
        to head: HTTPRequestHead, status: HTTPResponseStatus, contentType: String, body: [UInt8], context: ChannelHandlerContext,
        extraHeaders: [(String, String)] = []
    ) {
        var headers = HTTPHeaders(extraHeaders)
        headers.add(name: "content-type", value: contentType)
        headers.add(name: "content-length", value: String(body.count))
        headers.add(name: "cache-control", value: "no-store")
        if !head.isKeepAlive { headers.add(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        let keepAlive = head.isKeepAlive
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { loopBound.value.close(promise: nil) }
        }
    }
}

@available(*, unavailable)
extension AdminHandler: Sendable {}
