import Foundation
import GatehouseCore
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOTLS
import X509

/// What one fetch of a `jwks_uri` returned.
struct JWKSResponse: Sendable, Equatable {
    enum Content: Sendable, Equatable {
        /// 200: a new document, with its `ETag` for the next conditional request.
        case document([UInt8], etag: String?)
        /// 304 to `If-None-Match`: the set held is still current.
        case notModified
    }

    var content: Content
    /// `Cache-Control: max-age` (0 for `no-cache`/`no-store`); nil when absent.
    var maxAge: Duration?

    /// `max-age=N` of `Cache-Control`; `no-cache`/`no-store` count as 0. Bounded to a day:
    /// the refresher clamps it again to the issuer's `refresh_interval`.
    static func maxAge(_ headers: HTTPHeaders) -> Duration? {
        var result: Duration?
        for value in headers[canonicalForm: "cache-control"] {
            let directive = value.trimmingCharacters(in: .whitespaces).lowercased()
            if directive == "no-cache" || directive == "no-store" { return .zero }
            if directive.hasPrefix("max-age="), let seconds = Int(directive.dropFirst("max-age=".count).prefix(9)), seconds >= 0 {
                result = .seconds(min(seconds, 86_400))
            }
        }
        return result
    }
}

/// Why a fetch failed. Safe to log: it names the endpoint and the failure, never a body.
struct JWKSFetchError: Error, Sendable, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// One HTTPS GET of an issuer's key set, on its own short-lived connection.
///
/// Deliberately small: no redirects (a JWKS that moved is a config change, not something to
/// follow), no proxies, a bounded body, a deadline on the whole exchange. The server's
/// certificate must chain to the system roots or the issuer's `ca`, and carry the URL's host
/// (checked here, as for upstreams: NIOSSL alone would also accept any IP SAN equal to the
/// socket's address).
final class JWKSClient: Sendable {
    /// A JWKS is a few KiB; a megabyte is a generous ceiling that bounds a hostile endpoint.
    static let maxBodyBytes = 1 << 20
    static let userAgent = "gatehouse/\(GatehouseCoreVersion.string)"

    let url: HTTPSURL
    private let context: NIOSSLContext
    private let group: any EventLoopGroup
    private let timeout: TimeAmount

    init(endpoint: JWKSEndpointConfig, group: any EventLoopGroup, timeout: TimeAmount = .seconds(10)) throws {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = .noHostnameVerification
        configuration.trustRoots = try endpoint.caFile.map { try TLSMaterial.trustRoots($0, key: "ca") } ?? .default
        self.context = try NIOSSLContext(configuration: configuration)
        self.url = endpoint.url
        self.group = group
        self.timeout = timeout
    }

    /// GET the key set; `etag` makes it conditional.
    func fetch(etag: String?) async throws -> JWKSResponse {
        let url = self.url
        let context = self.context
        let eventLoop = group.next()
        let promise = eventLoop.makePromise(of: JWKSResponse.self)
        let timeout = self.timeout
        let deadline = eventLoop.scheduleTask(in: timeout) {
            promise.fail(JWKSFetchError(message: "\(url): no answer within \(timeout.nanoseconds / 1_000_000) ms"))
        }
        let connect = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let serverName = ConfigValueParser.ipAddress(url.host) == nil ? url.host : nil
                    let tls = try NIOSSLClientHandler(context: context, serverHostname: serverName)
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(tls)
                    try sync.addHandler(HTTPRequestEncoder())
                    try sync.addHandler(ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes)))
                    try sync.addHandler(JWKSExchangeHandler(url: url, etag: etag, promise: promise))
                }
            }
            .connect(host: url.host, port: url.port)
        connect.whenFailure { error in promise.fail(JWKSFetchError(message: "\(url): cannot connect (\(error))")) }
        promise.futureResult.whenComplete { _ in
            deadline.cancel()
            connect.whenSuccess { $0.close(promise: nil) }
        }
        return try await withTaskCancellationHandler {
            try await promise.futureResult.get()
        } onCancel: {
            promise.fail(CancellationError())
        }
    }
}

/// Sends the GET once TLS is up and the server's name checked, then collects the response.
private final class JWKSExchangeHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let url: HTTPSURL
    private let etag: String?
    private let promise: EventLoopPromise<JWKSResponse>
    private var head: HTTPResponseHead?
    private var body: [UInt8] = []

    init(url: HTTPSURL, etag: String?, promise: EventLoopPromise<JWKSResponse>) {
        self.url = url
        self.etag = etag
        self.promise = promise
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case TLSUserEvent.handshakeCompleted = event else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        guard let peer = try? context.pipeline.syncOperations.nioSSL_peerCertificate(),
            let leaf = try? Certificate(derEncoded: peer.toDERBytes()),
            UpstreamTLS.certificate(leaf, carries: url.host)
        else {
            fail("the server's certificate is not valid for \(url.host)", context: context)
            return
        }
        var headers = HTTPHeaders()
        headers.add(name: "host", value: url.port == 443 ? hostHeader : "\(hostHeader):\(url.port)")
        headers.add(name: "accept", value: "application/json, application/jwk-set+json")
        headers.add(name: "user-agent", value: JWKSClient.userAgent)
        headers.add(name: "connection", value: "close")
        if let etag { headers.add(name: "if-none-match", value: etag) }
        context.write(wrapOutboundOut(.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: url.target, headers: headers))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    private var hostHeader: String { url.host.contains(":") ? "[\(url.host)]" : url.host }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > JWKSClient.maxBodyBytes {
                fail("body of \(length) bytes is over \(JWKSClient.maxBodyBytes)", context: context)
            }
        case .body(var buffer):
            guard body.count + buffer.readableBytes <= JWKSClient.maxBodyBytes else {
                fail("body is over \(JWKSClient.maxBodyBytes) bytes", context: context)
                return
            }
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            guard let head else { return }
            let maxAge = JWKSResponse.maxAge(head.headers)
            switch head.status {
            case .ok:
                promise.succeed(JWKSResponse(content: .document(body, etag: head.headers.first(name: "etag")), maxAge: maxAge))
            case .notModified where etag != nil:
                promise.succeed(JWKSResponse(content: .notModified, maxAge: maxAge))
            default:
                fail("HTTP \(head.status.code)", context: context)
                return
            }
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        fail("\(error)", context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(JWKSFetchError(message: "\(url): connection closed before a complete response"))
        context.fireChannelInactive()
    }

    private func fail(_ message: String, context: ChannelHandlerContext) {
        promise.fail(JWKSFetchError(message: "\(url): \(message)"))
        context.close(promise: nil)
    }
}
