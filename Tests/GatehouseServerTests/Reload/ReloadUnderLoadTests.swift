import Foundation
import GatehouseCore
import NIOConcurrencyHelpers
import XCTest
@testable import GatehouseServer

/// The issue's test: a loop of requests while the file changes 20 times, some to invalid
/// content, loses no request and never serves an invalid policy.
///
/// Two valid policies alternate: A routes `/a` (and `/b` is 404), B routes `/b` (and `/a` is
/// 404); each valid file has its own version (`a-3`, `b-4`, ...), each invalid one a version
/// `bad-N` that must never appear. Clients on keep-alive and on fresh connections request
/// `/a` and `/b` throughout. Every response must be a 200 or a 404 that matches the
/// version in its own decision record, and no connection may fail.
final class ReloadUnderLoadTests: XCTestCase {
    func testReloadUnderLoadWithDirectReloads() async throws {
        try await runUnderLoad(trigger: .direct)
    }

    func testReloadUnderLoadWithTheFileWatcher() async throws {
        try await runUnderLoad(trigger: .watcher)
    }

    enum Trigger { case direct, watcher }

    /// What the 20 rewrites are: nil for a valid file, else how it is invalid.
    static let invalid: [Int: String] = [
        3: "yaml", 6: "unknown-key", 9: "unknown-upstream", 12: "secret", 15: "restart", 18: "yaml",
    ]

    func runUnderLoad(trigger: Trigger) async throws {
        let fixture = try ReloadFixture()
        try fixture.write(Self.file(0, fixture))
        try await fixture.start(pollInterval: trigger == .watcher ? .milliseconds(20) : nil)
        defer { Task { await fixture.shutdown() } }

        let load = LoadClients(port: fixture.port)
        load.start(keepAliveClients: 2, freshClients: 1)
        defer { load.stop() }
        XCTAssertTrue(fixture.waitUntil { load.completed >= 30 }, "load is running")

        let gateway = fixture.gateway!
        var applied: [String] = []
        for change in 1...20 {
            let expected = Self.invalid[change] == nil
            let before = gateway.configReloadCounts
            try fixture.write(Self.file(change, fixture))
            switch trigger {
            case .direct:
                let result = await gateway.reloadConfig()
                XCTAssertEqual(result.succeeded, expected, "change \(change): \(result)")
            case .watcher:
                // Wait for the watcher to pick the change up before the next one.
                XCTAssertTrue(fixture.waitUntil {
                    let now = gateway.configReloadCounts
                    return now.successes + now.failures > before.successes + before.failures
                }, "change \(change) was reloaded")
            }
            if expected { applied.append(Self.version(change)) }
            // Requests run on this policy for a moment before the next change.
            let mark = load.completed
            XCTAssertTrue(fixture.waitUntil { load.completed >= mark + 10 })
        }
        load.stop()

        let counts = gateway.configReloadCounts
        XCTAssertEqual(counts.failures, Self.invalid.count, "every invalid file counted once")
        XCTAssertEqual(counts.successes, 20 - Self.invalid.count)
        let metrics = String(decoding: gateway.metrics.exposition(), as: UTF8.self)
        XCTAssertTrue(metrics.contains(#"gatehouse_config_reloads_total{result="failure"} \#(Self.invalid.count)"#))

        let responses = load.responses
        print("reload under load (\(trigger)): \(responses.count) requests over 20 changes, \(load.errors.count) errors, versions \(applied.count + 1) valid")
        XCTAssertEqual(load.errors, [], "no request lost")
        XCTAssertGreaterThan(responses.count, 200)
        let records = fixture.records()
        var byID: [String: [String: Any]] = [:]
        for record in records { if let id = record["request_id"] as? String { byID[id] = record } }
        XCTAssertEqual(records.count, responses.count, "one record per request")
        var versionsServed = Set<String>()
        for response in responses {
            guard let record = byID[response.requestID ?? ""], let version = record.policyVersion else {
                XCTFail("no record for \(response)")
                continue
            }
            versionsServed.insert(version)
            XCTAssertFalse(version.hasPrefix("bad"), "an invalid policy served \(response)")
            // The status is the one the record's own policy gives for that path.
            let routed = (version.hasPrefix("a") && response.path == "/a") || (version.hasPrefix("b") && response.path == "/b")
            XCTAssertEqual(response.status, routed ? 200 : 404, "\(response) under \(version)")
        }
        XCTAssertTrue(versionsServed.isSubset(of: Set(["a-0"] + applied)), "\(versionsServed)")
        XCTAssertTrue(versionsServed.contains(applied.last!))
    }

    static func version(_ change: Int) -> String {
        invalid[change] != nil ? "bad-\(change)" : (change % 2 == 0 ? "a-\(change)" : "b-\(change)")
    }

    static func file(_ change: Int, _ fixture: ReloadFixture) -> String {
        let version = version(change)
        let route = change % 2 == 0 ? ReloadFixture.route("a", prefix: "/a") : ReloadFixture.route("b", prefix: "/b")
        switch invalid[change] {
        case nil:
            return fixture.config(version: version, routes: route)
        case "yaml":
            // Cut off mid-mapping, as a half-written file would be.
            let text = fixture.config(version: version, routes: route)
            return String(text.prefix(text.count / 2)) + "\n  - name: [unclosed"
        case "unknown-key":
            return fixture.config(version: version, routes: route + "\n    rate_limitt: x")
        case "unknown-upstream":
            return fixture.config(version: version, routes: route.replacingOccurrences(of: "upstream: app", with: "upstream: gone"))
        case "secret":
            return fixture.config(version: version, routes: route + """

                  - name: hook
                    match: { path: /hook }
                    upstream: app
                    webhook: { scheme: github, secrets: [file:\(fixture.directory)/missing-secret] }
                """)
        default:
            return fixture.config(version: version, routes: route, maxConnections: 7)
        }
    }
}

/// Threads sending `/a` and `/b` alternately until stopped (bounded by a count and a time),
/// recording each response's status and request id, and any connection error.
final class LoadClients: @unchecked Sendable {
    struct Response: CustomStringConvertible {
        var path: String
        var status: Int
        var requestID: String?
        var description: String { "\(path) -> \(status) [\(requestID ?? "-")]" }
    }

    static let maximumRequestsPerClient = 20_000
    static let maximumDuration: TimeInterval = 60

    private let port: Int
    private let stopped = NIOLockedValueBox(false)
    private let results = NIOLockedValueBox<(responses: [Response], errors: [String])>(([], []))
    private var threads: [Thread] = []
    private let finished = DispatchGroup()

    init(port: Int) { self.port = port }

    var completed: Int { results.withLockedValue { $0.responses.count } }
    var responses: [Response] { results.withLockedValue { $0.responses } }
    var errors: [String] { results.withLockedValue { $0.errors } }

    func start(keepAliveClients: Int, freshClients: Int) {
        for index in 0..<(keepAliveClients + freshClients) {
            let keepAlive = index < keepAliveClients
            finished.enter()
            let thread = Thread { [self] in
                defer { finished.leave() }
                run(keepAlive: keepAlive, offset: index)
            }
            threads.append(thread)
            thread.start()
        }
    }

    /// Stops the clients and waits for them (each finishes the request it is on).
    func stop() {
        stopped.withLockedValue { $0 = true }
        _ = finished.wait(timeout: .now() + 15)
    }

    private func run(keepAlive: Bool, offset: Int) {
        let deadline = Date().addingTimeInterval(Self.maximumDuration)
        var client: RawHTTPClient?
        for count in 0..<Self.maximumRequestsPerClient {
            if stopped.withLockedValue({ $0 }) || Date() > deadline { return }
            let path = (count + offset) % 2 == 0 ? "/a" : "/b"
            do {
                if client == nil || !keepAlive { client = try RawHTTPClient(port: port) }
                client!.send("GET \(path) HTTP/1.1\r\nHost: test\r\n\(keepAlive ? "" : "Connection: close\r\n")\r\n")
                guard let response = client!.readResponses(1).first else {
                    results.withLockedValue { $0.errors.append("\(path): no response (keep-alive: \(keepAlive))") }
                    client = nil
                    continue
                }
                let item = Response(path: path, status: response.status, requestID: response.header("x-request-id"))
                results.withLockedValue { $0.responses.append(item) }
            } catch {
                results.withLockedValue { $0.errors.append("\(path): \(error)") }
                client = nil
            }
        }
    }
}
