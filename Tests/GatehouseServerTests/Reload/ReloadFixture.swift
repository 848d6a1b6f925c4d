import Foundation
import GatehouseCore
import Logging
import NIOPosix
@testable import GatehouseServer

/// A gateway started from a real file in a temp directory (plaintext listener on port 0,
/// admin on port 0), in front of `TestUpstream`s, so that tests can rewrite the file and
/// reload it.
final class ReloadFixture: @unchecked Sendable {
    let group: MultiThreadedEventLoopGroup
    let upstream: TestUpstream
    let directory: String
    let configPath: String
    let logPath: String
    var gateway: Gateway!

    init(eventLoops: Int = 2) throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: eventLoops)
        upstream = try TestUpstream(group: group)
        directory = NSTemporaryDirectory() + "gatehouse-reload-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        configPath = directory + "/gatehouse.yaml"
        logPath = directory + "/decisions.jsonl"
    }

    /// Writes `text` (atomically: a reader sees the old or the new file, never half).
    func write(_ text: String, to path: String? = nil) throws {
        try text.write(toFile: path ?? configPath, atomically: true, encoding: .utf8)
    }

    /// A complete file: one plaintext listener, the admin listener, upstream `app` (the
    /// test upstream unless `upstreamPort` says otherwise), then `routes` (YAML list items)
    /// and `extra` top-level sections.
    func config(
        version: String? = nil, routes: String, upstreamPort: Int? = nil, maxConnections: Int = 10_000, extra: String = "",
        upstreamExtra: String = ""
    ) -> String {
        """
        environment: test
        \(version.map { "version: \($0)" } ?? "")
        listeners:
          - name: public
            address: 127.0.0.1:0
            insecure_plaintext: true
            max_connections: \(maxConnections)
        admin:
          address: 127.0.0.1:0
        upstreams:
          app:
            endpoints: ["127.0.0.1:\(upstreamPort ?? upstream.port)"]
            response_timeout: 10s
        \(upstreamExtra)
        routes:
        \(routes)
        decision_log:
          path: \(logPath)
        \(extra)
        """
    }

    /// A route item for `config(routes:)`.
    static func route(_ name: String, prefix: String, upstream: String = "app") -> String {
        """
          - name: \(name)
            match: { path_prefix: \(prefix) }
            upstream: \(upstream)
        """
    }

    func start(environment: [String: String] = [:], pollInterval: Duration? = nil) async throws {
        let config = try ConfigLoader.load(path: configPath)
        var logger = Logger(label: "reload-test")
        logger.logLevel = .critical
        gateway = try await Gateway(
            config: config, logger: logger, eventLoopGroup: group, environment: environment, metrics: GatewayMetrics(),
            configPollInterval: pollInterval)
        try await gateway.start()
    }

    var port: Int { gateway.listenerAddresses["public"]!.port! }
    var adminPort: Int { gateway.adminAddress!.port! }

    /// One request on a fresh connection (`Connection: close`).
    func get(_ path: String, port: Int? = nil) throws -> RawResponse {
        let client = try RawHTTPClient(port: port ?? self.port)
        client.send("GET \(path) HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        guard let response = client.readResponses(1).first else { throw POSIXError(.ECONNRESET) }
        return response
    }

    func admin(_ path: String) throws -> RawResponse { try get(path, port: adminPort) }

    /// The decision records written so far, parsed.
    func records() -> [[String: Any]] {
        gateway.decisionLog.flush()
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    /// Waits (bounded) until `condition` holds.
    func waitUntil(timeout: TimeInterval = 10, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }

    func shutdown() async {
        await gateway?.shutdown(drain: .seconds(2))
        upstream.stop()
        try? await group.shutdownGracefully()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

extension [String: Any] {
    var policyVersion: String? { (self["policy"] as? [String: Any])?["version"] as? String }
}
