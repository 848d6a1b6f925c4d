import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// An issuer's JWKS endpoint for end-to-end tests: HTTPS on 127.0.0.1 with the test PKI's
/// server certificate, serving a document the test can swap, or failing on demand.
final class TestJWKSServer: Sendable {
    struct Settings: Sendable {
        var document: String
        /// When set, every request gets this status and no document (an outage).
        var failWith: HTTPResponseStatus?
        var etag: String?
        var cacheControl: String?
    }

    struct Request: Sendable {
        var uri: String
        var ifNoneMatch: String?
    }

    private let channel: Channel
    private let settings: NIOLockedValueBox<Settings>
    private let received = NIOLockedValueBox<[Request]>([])

    var port: Int { channel.localAddress!.port! }
    var requests: [Request] { received.withLockedValue { $0 } }

    init(group: EventLoopGroup, pki: TestPKI.Files, document: String) throws {
        let settings = NIOLockedValueBox(Settings(document: document))
        let received = self.received
        self.settings = settings
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(pki.serverCertificate).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: pki.serverKey, format: .pem)))
        tls.minimumTLSVersion = .tlsv12
        let context = try NIOSSLContext(configuration: tls)
        channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(JWKSTestHandler(settings: settings, received: received))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
    }

    func update(_ change: (inout Settings) -> Void) {
        settings.withLockedValue(change)
    }

    /// Waits (bounded) until `count` requests have arrived.
    func waitForRequests(_ count: Int, timeout: TimeInterval = 10) -> [Request] {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline, requests.count < count { usleep(10_000) }
        return requests
    }

    func stop() {
        try? channel.close().wait()
    }
}

private final class JWKSTestHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let settings: NIOLockedValueBox<TestJWKSServer.Settings>
    let received: NIOLockedValueBox<[TestJWKSServer.Request]>

    init(settings: NIOLockedValueBox<TestJWKSServer.Settings>, received: NIOLockedValueBox<[TestJWKSServer.Request]>) {
        self.settings = settings
        self.received = received
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        let ifNoneMatch = head.headers.first(name: "if-none-match")
        received.withLockedValue { $0.append(.init(uri: head.uri, ifNoneMatch: ifNoneMatch)) }
        let current = settings.withLockedValue { $0 }
        var headers = HTTPHeaders()
        headers.add(name: "connection", value: "close")
        let status: HTTPResponseStatus
        var body = ""
        if let failure = current.failWith {
            status = failure
        } else if let etag = current.etag, ifNoneMatch == etag {
            status = .notModified
        } else {
            status = .ok
            body = current.document
            headers.add(name: "content-type", value: "application/json")
        }
        if status != .notModified { headers.add(name: "content-length", value: String(body.utf8.count)) }
        if let etag = current.etag { headers.add(name: "etag", value: etag) }
        if let cacheControl = current.cacheControl { headers.add(name: "cache-control", value: cacheControl) }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if !body.isEmpty { context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { [context] _ in context.close(promise: nil) }
    }
}
