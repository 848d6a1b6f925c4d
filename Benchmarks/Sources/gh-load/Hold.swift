import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// `--hold`: the idle-connection mode used by `idle-memory.sh`.
///
/// Opens `connections` connections at no more than `connectRate` per second; each one
/// connects, completes the TLS handshake (presenting the client certificate, if any) and
/// one keep-alive request, and then stays open and idle. When every connection is open or
/// has failed (each has `openTimeout` from its scheduled start), one JSON line with
/// `"phase":"ready"` is printed and flushed; the connections are then held for
/// `holdSeconds`, closed, and a second line with `"phase":"done"` reports how many the
/// server closed while they were held. Bounded: the whole run takes at most
/// connections / connectRate + openTimeout + holdSeconds (+ the close).
struct HoldConfig: Sendable {
    var load: LoadConfig
    var connections: Int
    var connectRate: Double
    var holdSeconds: Double
    var openTimeout: TimeAmount
}

/// Results shared by every connection, whatever event loop it lives on.
final class HoldTally: Sendable {
    struct State {
        var histogram = LatencyHistogram()
        var open = 0
        var errors = 0
        var non2xx = 0
        var firstError: String? = nil
        var closedByPeer = 0
        var lastOpenNs: UInt64 = 0
    }

    private let state = NIOLockedValueBox(State())
    /// Set when we close the connections ourselves, so those closes are not counted as the server's.
    private let closing = NIOLockedValueBox(false)

    func opened(latencyUs: UInt64, status: HTTPResponseStatus, at now: UInt64) {
        state.withLockedValue { s in
            s.open += 1
            s.histogram.record(latencyUs)
            if !(200..<300).contains(Int(status.code)) { s.non2xx += 1 }
            s.lastOpenNs = max(s.lastOpenNs, now)
        }
    }

    func failed(_ what: String) {
        state.withLockedValue { s in
            s.errors += 1
            if s.firstError == nil { s.firstError = what }
        }
    }

    /// An open connection went away. Counted only while we are holding, not closing.
    func closedWhileOpen() {
        guard !closing.withLockedValue({ $0 }) else { return }
        state.withLockedValue { $0.closedByPeer += 1 }
    }

    func startClosing() { closing.withLockedValue { $0 = true } }
    func snapshot() -> State { state.withLockedValue { $0 } }
}

/// One held connection; lives on its event loop.
final class HoldConnection {
    enum Phase { case connecting, open, failed }

    let loop: EventLoop
    let config: LoadConfig
    let tally: HoldTally
    /// Succeeds with the channel once the first response has ended; fails otherwise.
    let ready: EventLoopPromise<Channel?>
    private var phase = Phase.connecting
    private var channel: Channel? = nil
    private var startNs: UInt64 = 0
    private let requestHead: HTTPRequestHead

    init(loop: EventLoop, config: LoadConfig, tally: HoldTally) {
        self.loop = loop
        self.config = config
        self.tally = tally
        self.ready = loop.makePromise(of: Channel?.self)
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: config.target.hostHeader)
        headers.add(name: "User-Agent", value: "gh-load")
        headers.add(name: "Accept", value: "*/*")
        for (n, v) in config.extraHeaders { headers.add(name: n, value: v) }
        if let tokens = config.tokens { headers.replaceOrAdd(name: "Authorization", value: tokens.next()) }
        self.requestHead = HTTPRequestHead(version: .http1_1, method: .GET, uri: config.target.path, headers: headers)
    }

    func start(timeout: TimeAmount) {
        loop.preconditionInEventLoop()
        startNs = nowNs()
        let bound = NIOLoopBound(self, eventLoop: loop)
        loop.scheduleTask(in: timeout) { bound.value.fail("not open within \(timeout.nanoseconds / 1_000_000) ms") }
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
                    try sync.addHandler(HoldResponseHandler(connection: bound))
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
            .connect(host: config.target.host, port: config.target.port)
            .hop(to: loop)
            .whenComplete { result in
                let c = bound.value
                switch result {
                case .success(let ch):
                    c.channel = ch
                    guard c.phase == .connecting else { ch.close(promise: nil); return }
                    guard ch.isActive else { c.fail("closed during connect"); return }
                    ch.write(HTTPClientRequestPart.head(c.requestHead), promise: nil)
                    ch.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
                case .failure(let error):
                    c.fail("connect: \(error)")
                }
            }
    }

    fileprivate func responseEnded(status: HTTPResponseStatus, lengthOK: Bool, keepAlive: Bool) {
        guard phase == .connecting else { return }
        guard lengthOK else { fail("body length differs from Content-Length"); return }
        guard keepAlive else { fail("HTTP \(status.code) with Connection: close: the server will not keep the connection"); return }
        phase = .open
        let now = nowNs()
        tally.opened(latencyUs: (now - startNs) / 1_000, status: status, at: now)
        ready.succeed(channel)
    }

    fileprivate func fail(_ what: String) {
        guard phase == .connecting else { return }
        phase = .failed
        tally.failed(what)
        channel?.close(promise: nil)
        ready.succeed(nil)
    }

    fileprivate func closed() {
        switch phase {
        case .connecting: fail("connection closed before the response ended")
        case .open: tally.closedWhileOpen()
        case .failed: break
        }
    }
}

final class HoldResponseHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let connection: NIOLoopBound<HoldConnection>
    private var status: HTTPResponseStatus = .ok
    private var expectedLength: Int? = nil
    private var bodyBytes = 0
    private var keepAlive = true

    init(connection: NIOLoopBound<HoldConnection>) { self.connection = connection }

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
            connection.value.responseEnded(status: status, lengthOK: expectedLength.map { $0 == bodyBytes } ?? true, keepAlive: keepAlive)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        connection.value.fail("\(error)")
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.value.closed()
        context.fireChannelInactive()
    }
}

/// Runs the whole `--hold` mode and prints its two JSON lines.
func runHold(_ config: HoldConfig, group: EventLoopGroup) throws {
    let tally = HoldTally()
    let startNs = nowNs()
    let spacingNs = config.connectRate > 0 ? UInt64(1e9 / config.connectRate) : 0
    var futures: [EventLoopFuture<Channel?>] = []
    futures.reserveCapacity(config.connections)
    for i in 0..<config.connections {
        let loop = group.next()
        let at = NIODeadline.uptimeNanoseconds(startNs + UInt64(i) * spacingNs)
        let load = config.load
        let timeout = config.openTimeout
        let f = loop.scheduleTask(deadline: at) { () -> EventLoopFuture<Channel?> in
            let c = HoldConnection(loop: loop, config: load, tally: tally)
            c.start(timeout: timeout)
            return c.ready.futureResult
        }.futureResult.flatMap { $0 }
        futures.append(f)
    }
    var channels: [Channel] = []
    for f in futures {
        if let ch = try f.wait() { channels.append(ch) }
    }
    let opened = tally.snapshot()
    let openSeconds = Double(max(opened.lastOpenNs, startNs) - startNs) / 1e9
    if let e = opened.firstError {
        var err = StandardError()
        print("gh-load: \(opened.errors) connection(s) failed to open; first: \(e)", to: &err)
    }
    let h = opened.histogram
    printFlushed([
        ("phase", "\"ready\""),
        ("connections", "\(config.connections)"),
        ("open", "\(opened.open)"),
        ("errors", "\(opened.errors)"),
        ("non2xx", "\(opened.non2xx)"),
        ("open_seconds", fmt(openSeconds, 3)),
        ("connect_rate", fmt(config.connectRate, 0)),
        ("open_p50_us", "\(h.value(atQuantile: 0.50))"),
        ("open_p99_us", "\(h.value(atQuantile: 0.99))"),
        ("open_max_us", "\(h.maxValue)"),
    ])

    // Hold: sleep in short steps so a very long hold still reacts to nothing but time.
    let holdEnd = nowNs() + UInt64(config.holdSeconds * 1e9)
    while nowNs() < holdEnd {
        let left = holdEnd - nowNs()
        let step = min(left, 100_000_000)
        var ts = timespec(tv_sec: Int(step / 1_000_000_000), tv_nsec: Int(step % 1_000_000_000))
        nanosleep(&ts, nil)
    }
    let held = tally.snapshot()
    tally.startClosing()
    let closes = channels.map { ch in ch.close().recover { _ in } }
    for c in closes { try? c.wait() }
    printFlushed([
        ("phase", "\"done\""),
        ("open", "\(held.open)"),
        ("closed_by_peer", "\(held.closedByPeer)"),
        ("still_open_at_end", "\(held.open - held.closedByPeer)"),
        ("held_seconds", fmt(config.holdSeconds, 1)),
    ])
}

/// One JSON object on one line of stdout, flushed at once (a script is waiting for it).
func printFlushed(_ fields: [(String, String)]) {
    print("{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}")
    fflush(nil)
}
