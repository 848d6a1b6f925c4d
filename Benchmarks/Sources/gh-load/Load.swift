#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// What every connection needs to know; immutable and shared.
struct LoadConfig: Sendable {
    var target: Target
    var sslContext: NIOSSLContext?
    var newConnectionPerRequest: Bool
    var extraHeaders: [(String, String)]
    /// With --tokens-file: every request takes the next token as its Authorization header.
    var tokens: TokenPool? = nil
    /// With --webhook-github-secret: every request is a POST of the next signed delivery.
    var webhook: WebhookDeliveries? = nil
    var connectTimeout: TimeAmount = .seconds(3)
    /// Pause before reconnecting after a failed connection, so a dead peer
    /// produces a bounded trickle of errors rather than a busy loop.
    var reconnectBackoff: TimeAmount = .milliseconds(10)
}

/// Bearer tokens read from a file (one per line, blank lines skipped), handed out in turn
/// across all connections and threads, wrapping around at the end.
final class TokenPool: Sendable {
    private let values: [String]   // "Bearer <token>"
    private let cursor: NIOLockedValueBox<Int>

    init(file: String, offset: Int = 0) throws {
        var values: [String] = []
        let text = try readWholeFile(file)
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let t = line.trimmingCharacters()
            if !t.isEmpty { values.append("Bearer " + t) }
        }
        guard !values.isEmpty else { throw TokenPoolError.empty(file) }
        self.values = values
        self.cursor = NIOLockedValueBox(offset % values.count)
    }

    var count: Int { values.count }

    func next() -> String {
        let i = cursor.withLockedValue { c -> Int in
            let i = c
            c = c + 1 == values.count ? 0 : c + 1
            return i
        }
        return values[i]
    }
}

enum TokenPoolError: Error, CustomStringConvertible {
    case empty(String), unreadable(String)
    var description: String {
        switch self {
        case .empty(let f): return "--tokens-file \(f) holds no token"
        case .unreadable(let f): return "cannot read --tokens-file \(f)"
        }
    }
}

private extension Substring {
    func trimmingCharacters() -> String {
        var s = self
        while let c = s.first, c == " " || c == "\t" || c == "\r" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" || c == "\r" { s = s.dropLast() }
        return String(s)
    }
}

/// The whole file as UTF-8, without Foundation.
func readWholeFile(_ path: String) throws -> String {
    guard let f = fopen(path, "rb") else { throw TokenPoolError.unreadable(path) }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = fread(&buf, 1, buf.count, f)
        if n > 0 { bytes.append(contentsOf: buf[0..<n]) }
        if n < buf.count { break }
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Time boundaries and the shared request budget of one run.
final class RunClock: Sendable {
    let measureStartNs: UInt64
    let deadlineNs: UInt64
    /// After this, connections still waiting on a response are cut and their
    /// request counted as an error: the run ends even if a peer hangs.
    let hardDeadlineNs: UInt64
    private let remaining: NIOLockedValueBox<Int>

    init(startNs: UInt64, warmupNs: UInt64, durationNs: UInt64, maxRequests: Int, graceNs: UInt64) {
        measureStartNs = startNs + warmupNs
        deadlineNs = measureStartNs + durationNs
        hardDeadlineNs = deadlineNs + graceNs
        remaining = NIOLockedValueBox(maxRequests)
    }

    /// May a new request start now? In the measured phase this takes one
    /// request from the budget; warm-up requests are free.
    func claim(now: UInt64) -> Bool {
        if now >= deadlineNs { return false }
        if now < measureStartNs { return true }
        return remaining.withLockedValue { r in
            guard r > 0 else { return false }
            r -= 1
            return true
        }
    }

    func budgetExhausted() -> Bool { remaining.withLockedValue { $0 <= 0 } }
}

/// One connection's results; merged across connections at the end.
struct ConnectionStats: Sendable {
    var histogram = LatencyHistogram()
    var requests: UInt64 = 0
    var errors: UInt64 = 0
    var non2xx: UInt64 = 0
    var connects: UInt64 = 0
    var lastCompletionNs: UInt64 = 0
    var firstError: String? = nil

    mutating func merge(_ o: ConnectionStats) {
        histogram.merge(o.histogram)
        requests += o.requests; errors += o.errors; non2xx += o.non2xx; connects += o.connects
        lastCompletionNs = max(lastCompletionNs, o.lastCompletionNs)
        if firstError == nil { firstError = o.firstError }
    }
}

@inline(__always) func nowNs() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

/// A closed-loop client: one request in flight at a time, the next sent when
/// the previous response has ended. Lives on a single event loop; it reconnects
/// when the server closes the connection and ends itself at the deadline.
final class ConnectionWorker {
    let loop: EventLoop
    let config: LoadConfig
    let clock: RunClock
    let done: EventLoopPromise<ConnectionStats>
    private var stats = ConnectionStats()
    private var channel: Channel? = nil
    private var finished = false
    private var inFlight = false
    private var connectionFailed = false
    private var requestStartNs: UInt64 = 0
    private let requestHead: HTTPRequestHead

    init(loop: EventLoop, config: LoadConfig, clock: RunClock) {
        self.loop = loop
        self.config = config
        self.clock = clock
        self.done = loop.makePromise(of: ConnectionStats.self)
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: config.target.hostHeader)
        headers.add(name: "User-Agent", value: "gh-load")
        headers.add(name: "Accept", value: "*/*")
        if config.newConnectionPerRequest { headers.add(name: "Connection", value: "close") }
        if let webhook = config.webhook {
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Content-Length", value: String(webhook.bodySize))
            headers.add(name: "X-GitHub-Event", value: "push")
        }
        for (n, v) in config.extraHeaders { headers.add(name: n, value: v) }
        self.requestHead = HTTPRequestHead(
            version: .http1_1, method: config.webhook == nil ? .GET : .POST, uri: config.target.path, headers: headers)
    }

    func start() {
        loop.preconditionInEventLoop()
        let bound = NIOLoopBound(self, eventLoop: loop)
        loop.scheduleTask(deadline: NIODeadline.uptimeNanoseconds(clock.hardDeadlineNs)) {
            bound.value.hardStop()
        }
        connect()
    }

    // MARK: connection management

    private func connect() {
        if finished { return }
        let now = nowNs()
        if config.newConnectionPerRequest {
            // Each request's latency includes TCP connect and the TLS handshake.
            guard clock.claim(now: now) else { finish(); return }
            requestStartNs = now
            inFlight = true
        } else if now >= clock.deadlineNs || clock.budgetExhausted() {
            finish(); return
        }
        stats.connects += 1
        let bound = NIOLoopBound(self, eventLoop: loop)
        let sslContext = config.sslContext
        let sni: String? = (config.target.tls && !config.target.hostIsIPLiteral) ? config.target.host : nil
        ClientBootstrap(group: loop)
            .connectTimeout(config.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                do {
                    let sync = channel.pipeline.syncOperations
                    if let sslContext {
                        try sync.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: sni))
                    }
                    try sync.addHTTPClientHandlers()
                    try sync.addHandler(ResponseHandler(worker: bound))
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
            .connect(host: config.target.host, port: config.target.port)
            .hop(to: loop)
            .whenComplete { result in
                let worker = bound.value
                switch result {
                case .success(let ch):
                    if worker.finished { ch.close(promise: nil); return }
                    worker.channel = ch
                    worker.connectionFailed = false
                    if !ch.isActive {
                        // Closed before we saw it (channelInactive already ran).
                        worker.channelClosed(ch)
                        return
                    }
                    if worker.config.newConnectionPerRequest {
                        worker.writeRequest()
                    } else {
                        worker.sendNextOrStop()
                    }
                case .failure(let error):
                    worker.inFlight = false
                    worker.noteError("connect: \(error)")
                    worker.reconnectLater()
                }
            }
    }

    private func reconnectLater() {
        if finished { return }
        let bound = NIOLoopBound(self, eventLoop: loop)
        loop.scheduleTask(in: config.reconnectBackoff) { bound.value.connect() }
    }

    private func noteError(_ what: String) {
        stats.errors += 1
        if stats.firstError == nil { stats.firstError = what }
    }

    // MARK: request loop

    private func sendNextOrStop() {
        guard clock.claim(now: nowNs()) else {
            channel?.close(promise: nil)
            finish()
            return
        }
        requestStartNs = nowNs()
        inFlight = true
        writeRequest()
    }

    private func writeRequest() {
        guard let channel else { return }
        var head = requestHead
        if let tokens = config.tokens {
            head.headers.replaceOrAdd(name: "Authorization", value: tokens.next())
        }
        if let webhook = config.webhook {
            let delivery = webhook.next()
            head.headers.add(name: "X-GitHub-Delivery", value: delivery.id)
            head.headers.add(name: "X-Hub-Signature-256", value: delivery.signature)
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            // The shared prefix (the same storage every time) and this delivery's suffix.
            channel.write(HTTPClientRequestPart.body(.byteBuffer(webhook.prefix)), promise: nil)
            channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: delivery.suffix))), promise: nil)
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
            return
        }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    }

    fileprivate func responseEnded(status: HTTPResponseStatus, lengthOK: Bool, keepAlive: Bool) {
        guard inFlight, !finished else { return }
        inFlight = false
        let end = nowNs()
        if requestStartNs >= clock.measureStartNs {
            stats.histogram.record((end - requestStartNs) / 1_000)
            stats.requests += 1
            stats.lastCompletionNs = end
            if !(200..<300).contains(Int(status.code)) { stats.non2xx += 1 }
            if !lengthOK { noteError("body length differs from Content-Length") }
        }
        if config.newConnectionPerRequest || !keepAlive || !lengthOK {
            // The channel's close leads to channelClosed(), which reconnects.
            channel?.close(promise: nil)
        } else {
            sendNextOrStop()
        }
    }

    fileprivate func channelError(_ error: Error) {
        if finished { return }
        if inFlight { inFlight = false; noteError("\(error)") }
        connectionFailed = true
        channel?.close(promise: nil)
    }

    fileprivate func channelClosed(_ ch: Channel) {
        guard ch === channel else { return }
        channel = nil
        if finished { return }
        if inFlight {
            // Closed by the peer with a request outstanding.
            inFlight = false
            connectionFailed = true
            noteError("connection closed with a request in flight")
        }
        if connectionFailed { reconnectLater() } else { connect() }
    }

    private func hardStop() {
        if finished { return }
        if inFlight { inFlight = false; noteError("request still in flight at the hard deadline") }
        channel?.close(promise: nil)
        finish()
    }

    private func finish() {
        if finished { return }
        finished = true
        done.succeed(stats)
    }
}

/// Reads decoded response parts and tells the worker when a response ends.
final class ResponseHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let worker: NIOLoopBound<ConnectionWorker>
    private var status: HTTPResponseStatus = .ok
    private var expectedLength: Int? = nil
    private var bodyBytes = 0
    private var keepAlive = true

    init(worker: NIOLoopBound<ConnectionWorker>) { self.worker = worker }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = head.status
            keepAlive = head.isKeepAlive
            expectedLength = head.headers.first(name: "content-length").flatMap { Int($0) }
            bodyBytes = 0
        case .body(let buf):
            bodyBytes += buf.readableBytes
        case .end:
            let ok = expectedLength.map { $0 == bodyBytes } ?? true
            worker.value.responseEnded(status: status, lengthOK: ok, keepAlive: keepAlive)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        worker.value.channelError(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        worker.value.channelClosed(context.channel)
        context.fireChannelInactive()
    }
}
