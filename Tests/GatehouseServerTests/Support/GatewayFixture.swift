import Foundation
import GatehouseCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
@testable import GatehouseServer

/// A real gateway on loopback (port 0), in front of a `TestUpstream`, writing decision
/// records to a temp file.
final class GatewayFixture: @unchecked Sendable {
    let group: MultiThreadedEventLoopGroup
    let upstream: TestUpstream
    let gateway: Gateway
    let logPath: String
    let tls: Bool
    let pki: TestPKI.Files

    /// - Parameter upstreamTLS: the upstream serves HTTPS with this context (the gateway's
    ///   upstream `tls` is then up to `configure`).
    init(
        tls: Bool = true, eventLoops: Int = 2, upstreamTLS: NIOSSLContext? = nil, replayCapacity: Int? = nil,
        metrics: GatewayMetrics? = nil, rolloutClock: ManualClock? = nil, environment: [String: String]? = nil,
        configure: (inout GatewayConfig) -> Void = { _ in }
    ) async throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: eventLoops)
        upstream = try TestUpstream(group: group, tls: upstreamTLS)
        pki = try TestPKI.files()
        self.tls = tls
        logPath = TestScratch.path("decisions-\(UUID().uuidString).jsonl")
        let here = SourceLocation(file: "test.yaml", line: 1, column: 1)
        var listener = ListenerConfig(
            name: "public", address: HostPort(host: "127.0.0.1", port: 0),
            tls: tls ? ListenerTLSConfig(certificatePath: pki.serverCertificate, privateKey: .file(pki.serverKey)) : nil,
            insecurePlaintext: !tls, location: here
        )
        listener.timeouts.headerRead = .seconds(1)
        listener.timeouts.idle = .seconds(3)
        var upstreamConfig = UpstreamConfig(
            name: "app", endpoints: [HostPort(host: "127.0.0.1", port: upstream.port)], location: here
        )
        upstreamConfig.responseTimeout = .milliseconds(800)
        upstreamConfig.connectTimeout = .milliseconds(500)
        var config = GatewayConfig(
            environment: "test", listeners: [listener], admin: AdminConfig(address: HostPort(host: "127.0.0.1", port: 0)),
            upstreams: [upstreamConfig],
            routes: [RouteConfig(name: "app", match: RouteMatch(path: .prefix("/")), upstream: "app", location: here)],
            decisionLog: DecisionLogConfig(path: logPath), sourceFile: "test.yaml", version: String(repeating: "ab", count: 32)
        )
        configure(&config)
        gateway = try await Gateway(
            config: config, logger: Logger(label: "test"), eventLoopGroup: group,
            environment: environment ?? ProcessInfo.processInfo.environment, replayCapacity: replayCapacity,
            metrics: metrics, rolloutClock: rolloutClock?.read)
        try await gateway.start()
    }

    var port: Int { gateway.listenerAddresses["public"]!.port! }
    var adminPort: Int { gateway.adminAddress!.port! }
    var baseURL: String { "\(tls ? "https://localhost" : "http://127.0.0.1"):\(port)" }

    func curl(_ path: String, _ extra: [String] = []) throws -> CurlResponse {
        try CurlResponse.run(extra + [baseURL + path], caFile: tls ? pki.caCertificate : nil)
    }

    /// Every decision record written so far, parsed.
    func records(atLeast count: Int = 0, timeout: TimeInterval = 5) -> [[String: Any]] {
        let deadline = Date().addingTimeInterval(timeout)
        var parsed: [[String: Any]] = []
        repeat {
            gateway.decisionLog.flush()
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            parsed = text.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            if parsed.count >= count { return parsed }
            usleep(10_000)
        } while Date() < deadline
        return parsed
    }

    func adminCurl(_ path: String, _ extra: [String] = []) throws -> CurlResponse {
        try CurlResponse.run(extra + ["http://127.0.0.1:\(adminPort)\(path)"], caFile: nil)
    }

    func shutdown() async {
        await gateway.shutdown(drain: .seconds(2))
        upstream.stop()
        try? await group.shutdownGracefully()
        try? FileManager.default.removeItem(atPath: logPath)
    }
}

/// A monotonic clock the test moves by hand (rollout windows).
final class ManualClock: Sendable {
    private let now = NIOLockedValueBox(Duration.seconds(1000))
    var read: RolloutWindow.Clock { { [now] in now.withLockedValue { $0 } } }
    func advance(by duration: Duration) { now.withLockedValue { $0 += duration } }
}
