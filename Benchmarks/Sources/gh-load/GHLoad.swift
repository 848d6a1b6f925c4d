import ArgumentParser
import NIOCore
import NIOPosix
import NIOSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

@main
struct GHLoad: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gh-load",
        abstract: "Closed-loop HTTP/1.1 keep-alive load generator for the Gatehouse benchmarks.",
        discussion: """
        Opens --connections connections, each with one request in flight at a time, \
        until --duration seconds have passed or --max-requests requests have completed, \
        whichever comes first. Prints one JSON line with the results on stdout.

        With --hold S it instead opens --connections connections at --connect-rate per \
        second, each completing the handshake and one request, holds them open and idle \
        for S seconds, and prints two JSON lines: "phase":"ready" when all are open (or \
        failed), "phase":"done" after the hold (see idle-memory.sh).
        """
    )

    @Option(help: "Target URL, http:// or https://HOST:PORT/PATH; the host must be loopback (127.0.0.0/8, ::1, localhost).")
    var url: String

    @Option(help: "Concurrent connections (each one request at a time).")
    var connections: Int = 32

    @Option(help: "Measured seconds (after warm-up); at most 3600.")
    var duration: Double = 10

    @Option(name: .customLong("max-requests"), help: "Stop after this many measured requests; at most 1,000,000,000.")
    var maxRequests: Int = 10_000_000

    @Option(help: "Event-loop threads.")
    var threads: Int = 1

    @Option(help: "Seconds of unmeasured load before measuring; at most 600.")
    var warmup: Double = 0

    @Option(help: "PEM file of the CA to trust for the server certificate.")
    var ca: String?

    @Flag(help: "Do not verify the server certificate.")
    var insecure = false

    @Option(help: "PEM client certificate chain to present (mTLS).")
    var cert: String?

    @Option(help: "PEM private key of --cert.")
    var key: String?

    @Flag(name: .customLong("new-connection"), help: "Open a fresh connection (and full TLS handshake, never resumed) for every request; latency then includes connect and handshake.")
    var newConnection = false

    @Option(name: .customLong("header"), help: "Extra request header 'Name: value' (repeatable).")
    var headers: [String] = []

    @Option(name: .customLong("tokens-file"), help: "File of bearer tokens, one per line: every request carries the next one (cycled) as 'Authorization: Bearer <token>'.")
    var tokensFile: String?

    @Option(name: .customLong("tokens-offset"), help: "With --tokens-file: start at this token (0-based, modulo the file's count), e.g. where the previous run against the same server stopped.")
    var tokensOffset: Int = 0

    @Option(name: .customLong("webhook-github-secret"), help: "POST GitHub-signed webhook deliveries (X-Hub-Signature-256, X-GitHub-Delivery), each one distinct, signed with this secret ('file:/path' reads the file's bytes exactly).")
    var webhookGithubSecret: String?

    @Option(name: .customLong("body-size"), help: "With --webhook-github-secret: bytes of each delivery's JSON body (64...67108864).")
    var bodySize: Int = 1024

    @Option(name: .customLong("grace"), help: "Seconds past the deadline after which outstanding requests are cut and counted as errors.")
    var grace: Double = 5

    @Option(help: "Hold mode: open --connections connections (one request each), keep them idle this many seconds, then close; at most 3600.")
    var hold: Double?

    @Option(name: .customLong("connect-rate"), help: "Hold mode: new connections per second, at most.")
    var connectRate: Double = 500

    @Option(name: .customLong("open-timeout"), help: "Hold mode: seconds each connection has, from its start, to connect, handshake and finish its request.")
    var openTimeout: Double = 15

    mutating func validate() throws {
        if let hold {
            // Every connection to one server port needs its own loopback source port (~28k).
            guard (1...25_000).contains(connections) else { throw ValidationError("--connections must be 1...25000 with --hold") }
            guard hold > 0, hold <= 3600 else { throw ValidationError("--hold must be in (0, 3600]") }
            guard connectRate > 0, connectRate <= 100_000 else { throw ValidationError("--connect-rate must be in (0, 100000]") }
            guard openTimeout > 0, openTimeout <= 120 else { throw ValidationError("--open-timeout must be in (0, 120]") }
            guard !newConnection else { throw ValidationError("--hold and --new-connection exclude each other") }
        } else {
            guard (1...10_000).contains(connections) else { throw ValidationError("--connections must be 1...10000") }
        }
        guard duration > 0, duration <= 3600 else { throw ValidationError("--duration must be in (0, 3600]") }
        guard (1...1_000_000_000).contains(maxRequests) else { throw ValidationError("--max-requests must be 1...1000000000") }
        guard (1...64).contains(threads) else { throw ValidationError("--threads must be 1...64") }
        guard warmup >= 0, warmup <= 600 else { throw ValidationError("--warmup must be in [0, 600]") }
        guard grace > 0, grace <= 60 else { throw ValidationError("--grace must be in (0, 60]") }
        guard (cert == nil) == (key == nil) else { throw ValidationError("--cert and --key go together") }
        if insecure && ca != nil { throw ValidationError("--insecure and --ca exclude each other") }
        for h in headers where !h.contains(":") { throw ValidationError("--header must be 'Name: value'") }
        guard tokensOffset >= 0 else { throw ValidationError("--tokens-offset must be >= 0") }
        if tokensFile != nil, headers.contains(where: { $0.lowercased().hasPrefix("authorization:") }) {
            throw ValidationError("--tokens-file and an Authorization --header exclude each other")
        }
        if webhookGithubSecret != nil {
            guard (WebhookDeliveries.minimumBodySize...WebhookDeliveries.maximumBodySize).contains(bodySize) else {
                throw ValidationError("--body-size must be \(WebhookDeliveries.minimumBodySize)...\(WebhookDeliveries.maximumBodySize)")
            }
            guard tokensFile == nil else { throw ValidationError("--webhook-github-secret and --tokens-file exclude each other") }
            guard hold == nil else { throw ValidationError("--webhook-github-secret and --hold exclude each other") }
        }
        let target = try Target(parsing: url)
        guard target.isLoopback else {
            throw ValidationError("--url must name a loopback host (127.0.0.0/8, ::1 or localhost): gh-load only loads servers on this machine")
        }
    }

    func makeSSLContext(for target: Target) throws -> NIOSSLContext? {
        guard target.tls else {
            if cert != nil || ca != nil { throw ValidationError("--ca/--cert need an https:// URL") }
            return nil
        }
        // No session resumption, by construction: swift-nio-ssl keeps no client-side session
        // cache and never calls SSL_set_session, so every connection is a full handshake
        // (tools/check-resumption.sh checks this against nginx's $ssl_session_reused).
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        if insecure {
            tls.certificateVerification = .none
        } else if let ca {
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca))
        }
        if let cert, let key {
            tls.certificateChain = try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
        }
        return try NIOSSLContext(configuration: tls)
    }

    func run() throws {
        let target = try Target(parsing: url)
        let extra: [(String, String)] = headers.map { h in
            let i = h.firstIndex(of: ":")!
            return (String(h[..<i]).trimmingSpaces, String(h[h.index(after: i)...]).trimmingSpaces)
        }
        let config = LoadConfig(
            target: target,
            sslContext: try makeSSLContext(for: target),
            newConnectionPerRequest: newConnection,
            extraHeaders: extra,
            tokens: try tokensFile.map { try TokenPool(file: $0, offset: tokensOffset) },
            webhook: try webhookGithubSecret.map { WebhookDeliveries(secret: try readWebhookSecret($0), bodySize: bodySize) }
        )
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        defer { try? group.syncShutdownGracefully() }

        if let hold {
            try runHold(HoldConfig(
                load: config, connections: connections, connectRate: connectRate,
                holdSeconds: hold, openTimeout: .nanoseconds(Int64(openTimeout * 1e9))
            ), group: group)
            return
        }

        let start = nowNs()
        let clock = RunClock(
            startNs: start,
            warmupNs: UInt64(warmup * 1e9),
            durationNs: UInt64(duration * 1e9),
            maxRequests: maxRequests,
            graceNs: UInt64(grace * 1e9)
        )
        // Our own CPU over the measured phase: sampled when measuring starts and at the end.
        let cpuAtMeasureStart = NIOLockedValueBoxCPU()
        let measureLoop = group.next()
        if warmup > 0 {
            measureLoop.scheduleTask(deadline: .uptimeNanoseconds(clock.measureStartNs)) {
                cpuAtMeasureStart.set(processCPUMicros())
            }
        } else {
            cpuAtMeasureStart.set(processCPUMicros())
        }

        var futures: [EventLoopFuture<ConnectionStats>] = []
        for _ in 0..<connections {
            let loop = group.next()
            let f = loop.submit {
                let w = ConnectionWorker(loop: loop, config: config, clock: clock)
                w.start()
                return w.done.futureResult
            }.flatMap { $0 }
            futures.append(f)
        }
        var total = ConnectionStats()
        for f in futures { total.merge(try f.wait()) }
        let cpuEnd = processCPUMicros()
        let endNs = max(total.lastCompletionNs, clock.measureStartNs + 1)
        // The run ends at the deadline unless the request budget ended it first.
        let measuredEnd = min(clock.deadlineNs, max(endNs, total.requests >= UInt64(maxRequests) ? endNs : clock.deadlineNs))
        let seconds = Double(measuredEnd - clock.measureStartNs) / 1e9
        let rps = seconds > 0 ? Double(total.requests) / seconds : 0
        let cpuUs = Double(cpuEnd - (cpuAtMeasureStart.get() ?? 0))
        let h = total.histogram

        if let e = total.firstError {
            var err = StandardError()
            print("gh-load: \(total.errors) error(s); first: \(e)", to: &err)
        }
        let fields: [(String, String)] = [
            ("requests", "\(total.requests)"),
            ("errors", "\(total.errors)"),
            ("non2xx", "\(total.non2xx)"),
            ("seconds", fmt(seconds, 3)),
            ("rps", fmt(rps, 1)),
            ("p50_us", "\(h.value(atQuantile: 0.50))"),
            ("p90_us", "\(h.value(atQuantile: 0.90))"),
            ("p99_us", "\(h.value(atQuantile: 0.99))"),
            ("max_us", "\(h.maxValue)"),
            ("connects", "\(total.connects)"),
            ("loadgen_cpu_us_per_req", total.requests > 0 ? fmt(cpuUs / Double(total.requests), 2) : "null"),
        ]
        print("{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}")
    }
}

/// Formats with a fixed number of decimals, without Foundation.
func fmt(_ v: Double, _ decimals: Int) -> String {
    guard v.isFinite else { return "null" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let r = (v * scale).rounded()
    let neg = r < 0
    let whole = UInt64(abs(r)) / UInt64(scale)
    let frac = UInt64(abs(r)) % UInt64(scale)
    if decimals == 0 { return "\(neg ? "-" : "")\(whole)" }
    var f = String(frac)
    while f.count < decimals { f = "0" + f }
    return "\(neg ? "-" : "")\(whole).\(f)"
}

/// User + system CPU of this process, in microseconds.
func processCPUMicros() -> UInt64 {
    var usage = rusage()
    #if os(Linux)
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    #else
    getrusage(RUSAGE_SELF, &usage)
    #endif
    func us(_ t: timeval) -> UInt64 { UInt64(t.tv_sec) * 1_000_000 + UInt64(t.tv_usec) }
    return us(usage.ru_utime) + us(usage.ru_stime)
}

import NIOConcurrencyHelpers
final class NIOLockedValueBoxCPU: Sendable {
    private let box = NIOLockedValueBox<UInt64?>(nil)
    func set(_ v: UInt64) { box.withLockedValue { $0 = v } }
    func get() -> UInt64? { box.withLockedValue { $0 } }
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        var s = string
        s.withUTF8 { buf in _ = systemWrite(2, buf.baseAddress, buf.count) }
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return String(s)
    }
}

@inline(__always) func systemWrite(_ fd: Int32, _ p: UnsafePointer<UInt8>?, _ n: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, p, n)
    #elseif canImport(Darwin)
    return Darwin.write(fd, p, n)
    #else
    return Musl.write(fd, p, n)
    #endif
}
