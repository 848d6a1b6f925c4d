import Foundation
import GatehouseCore
import XCTest
@testable import GatehouseServer

/// `Gateway.reloadConfig()` over real loopback sockets: what a reload changes, what a bad
/// file leaves alone, and what needs a restart.
final class ConfigReloadTests: XCTestCase {
    func testReloadAddsAndRemovesRoutesAndRecordsTheNewVersion() async throws {
        let fixture = try ReloadFixture()
        try fixture.write(fixture.config(version: "v1", routes: ReloadFixture.route("a", prefix: "/a")))
        try await fixture.start()
        defer { Task { await fixture.shutdown() } }
        XCTAssertEqual(try fixture.get("/a/1").status, 200)
        XCTAssertEqual(try fixture.get("/b/1").status, 404)

        try fixture.write(fixture.config(version: "v2", routes: ReloadFixture.route("b", prefix: "/b")))
        let result = await fixture.gateway.reloadConfig()
        XCTAssertEqual(result, .applied(version: "v2", sha256: ConfigDocument.fileSHA256(fixture.configPath)!))
        XCTAssertEqual(try fixture.get("/a/2").status, 404)
        XCTAssertEqual(try fixture.get("/b/2").status, 200)

        let records = fixture.records()
        XCTAssertEqual(records.map { $0["path"] as? String }, ["/a/1", "/b/1", "/a/2", "/b/2"])
        XCTAssertEqual(records.map(\.policyVersion), ["v1", "v1", "v2", "v2"])
        XCTAssertEqual(fixture.gateway.configReloadCounts.successes, 1)
        XCTAssertEqual(fixture.gateway.configReloadCounts.failures, 0)
        let metrics = String(decoding: fixture.gateway.metrics.exposition(), as: UTF8.self)
        XCTAssertTrue(metrics.contains(#"gatehouse_config_reloads_total{result="success"} 1"#), metrics)
        XCTAssertTrue(metrics.contains(#"gatehouse_config_reloads_total{result="failure"} 0"#), metrics)
        XCTAssertTrue(metrics.contains(#"gatehouse_config_info{version="v2""#), metrics)
        XCTAssertFalse(metrics.contains(#"gatehouse_config_info{version="v1""#), "only the running policy is named")
    }

    func testInvalidFileKeepsTheRunningPolicyAndCountsOneFailure() async throws {
        let fixture = try ReloadFixture()
        try fixture.write(fixture.config(version: "v1", routes: ReloadFixture.route("a", prefix: "/a")))
        try await fixture.start()
        defer { Task { await fixture.shutdown() } }

        // A typo in a requirement and a route to an upstream that does not exist: both reported.
        try fixture.write(fixture.config(version: "v2", routes: """
              - name: b
                match: { path_prefix: /b }
                upstream: nowhere
              - name: c
                match: { path_prefix: /c }
                upstream: app
                peer: ["spiffe://x/y"]
            """))
        guard case .failed(let issues) = await fixture.gateway.reloadConfig() else { return XCTFail("an invalid file was applied") }
        XCTAssertEqual(issues.count, 2, issues.description)
        for issue in issues {
            XCTAssertEqual(issue.location.file, fixture.configPath)
            XCTAssertGreaterThan(issue.location.line, 0)
        }
        XCTAssertTrue(issues.contains { $0.keyPath == "routes[0].upstream" }, issues.description)
        XCTAssertTrue(issues.contains { $0.keyPath == "routes[1].peer" }, issues.description)

        XCTAssertEqual(try fixture.get("/a/x").status, 200)
        XCTAssertEqual(try fixture.get("/c/x").status, 404)
        XCTAssertEqual(fixture.records().compactMap(\.policyVersion), ["v1", "v1"])
        XCTAssertEqual(fixture.gateway.configReloadCounts.failures, 1)
        XCTAssertEqual(fixture.gateway.configReloadCounts.successes, 0)
        let metrics = String(decoding: fixture.gateway.metrics.exposition(), as: UTF8.self)
        XCTAssertTrue(metrics.contains(#"gatehouse_config_reloads_total{result="failure"} 1"#), metrics)
        XCTAssertTrue(metrics.contains(#"gatehouse_config_info{version="v1""#), metrics)

        // A secret that does not resolve fails at compile time, the same way.
        try fixture.write(fixture.config(version: "v3", routes: ReloadFixture.route("a", prefix: "/a") + """

              - name: hook
                match: { path: /hook }
                upstream: app
                webhook: { scheme: github, secrets: [env:RELOAD_TEST_UNSET_SECRET] }
            """))
        guard case .failed(let compileIssues) = await fixture.gateway.reloadConfig() else { return XCTFail("applied") }
        XCTAssertEqual(compileIssues.map(\.keyPath), ["routes[1].webhook.secrets[0]"])
        XCTAssertEqual(fixture.gateway.configReloadCounts.failures, 2)
        XCTAssertEqual(try fixture.get("/a/y").records(fixture).last?.policyVersion, "v1")
    }

    func testChangingARestartOnlySectionFailsNamingItAndItsLine() async throws {
        let fixture = try ReloadFixture()
        try fixture.write(fixture.config(version: "v1", routes: ReloadFixture.route("a", prefix: "/a")))
        try await fixture.start()
        defer { Task { await fixture.shutdown() } }

        try fixture.write(fixture.config(version: "v2", routes: ReloadFixture.route("b", prefix: "/b"), maxConnections: 5))
        guard case .failed(let issues) = await fixture.gateway.reloadConfig() else { return XCTFail("applied") }
        XCTAssertEqual(issues.count, 1)
        let issue = try XCTUnwrap(issues.first)
        XCTAssertEqual(issue.keyPath, "listeners")
        XCTAssertTrue(issue.message.contains("restart to apply"), issue.message)
        let text = try String(contentsOfFile: fixture.configPath, encoding: .utf8)
        let line = text.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.hasPrefix("listeners:") }! + 1
        XCTAssertEqual(issue.location, SourceLocation(file: fixture.configPath, line: line, column: 1))
        XCTAssertTrue(issue.description.hasPrefix("\(fixture.configPath):\(line):1: listeners: changed: restart to apply"), issue.description)
        // Nothing of that file applied, not even its routes.
        XCTAssertEqual(try fixture.get("/a").status, 200)
        XCTAssertEqual(try fixture.get("/b").status, 404)

        // The same listeners written elsewhere in the file (lines moved, comments added) are no change.
        try fixture.write("# moved down by this comment\n\n" + fixture.config(version: "v3", routes: ReloadFixture.route("b", prefix: "/b")))
        let reload1 = await fixture.gateway.reloadConfig()
        XCTAssertEqual(reload1.succeeded, true)
        XCTAssertEqual(try fixture.get("/b").status, 200)
        XCTAssertEqual(fixture.gateway.configReloadCounts.failures, 1)
        XCTAssertEqual(fixture.gateway.configReloadCounts.successes, 1)
    }

    func testAChangedUpstreamStopsUsingItsOldEndpointAndAnUnchangedOneKeepsItsConnections() async throws {
        let fixture = try ReloadFixture(eventLoops: 1)
        let second = try TestUpstream(group: fixture.group)
        defer { second.stop() }
        try fixture.write(fixture.config(version: "v1", routes: ReloadFixture.route("a", prefix: "/")))
        try await fixture.start()
        defer { Task { await fixture.shutdown() } }

        XCTAssertEqual(try fixture.get("/1").status, 200)
        XCTAssertEqual(try fixture.get("/2").status, 200)
        // A route-only change keeps the upstream (and its pooled keep-alive connection).
        try fixture.write(fixture.config(version: "v2", routes: ReloadFixture.route("b", prefix: "/")))
        let reload2 = await fixture.gateway.reloadConfig()
        XCTAssertEqual(reload2.succeeded, true)
        XCTAssertEqual(try fixture.get("/3").status, 200)
        XCTAssertEqual(fixture.upstream.requests.count, 3)
        XCTAssertEqual(fixture.upstream.connectionsAccepted.withLockedValue { $0 }, 1, "the pooled connection was kept")

        // Same name, new endpoint: nothing more goes to the old one, not even over its idle connection.
        try fixture.write(fixture.config(version: "v3", routes: ReloadFixture.route("b", prefix: "/"), upstreamPort: second.port))
        let reload3 = await fixture.gateway.reloadConfig()
        XCTAssertEqual(reload3.succeeded, true)
        XCTAssertEqual(try fixture.get("/4").status, 200)
        XCTAssertEqual(try fixture.get("/5").status, 200)
        XCTAssertEqual(fixture.upstream.requests.count, 3)
        XCTAssertEqual(second.requests.map(\.head.uri), ["/4", "/5"])
        // The old pool retired: its idle connection is closed rather than left open.
        XCTAssertTrue(fixture.waitUntil { fixture.upstream.connectionsOpen.withLockedValue { $0 } == 0 })
    }

    /// A client's keep-alive connection outlives the reload: its next request goes to the new
    /// endpoint, not through the pool the connection used before.
    func testAKeptAliveClientConnectionFollowsAChangedUpstreamAcrossAReload() async throws {
        let fixture = try ReloadFixture(eventLoops: 1)
        let second = try TestUpstream(group: fixture.group)
        defer { second.stop() }
        try fixture.write(fixture.config(version: "v1", routes: ReloadFixture.route("a", prefix: "/")))
        try await fixture.start()
        defer { Task { await fixture.shutdown() } }

        let client = try RawHTTPClient(port: fixture.port)
        client.send("GET /before HTTP/1.1\r\nHost: test\r\n\r\n")
        XCTAssertEqual(client.readResponses(1).first?.status, 200)
        try fixture.write(fixture.config(version: "v2", routes: ReloadFixture.route("a", prefix: "/"), upstreamPort: second.port))
        let reload = await fixture.gateway.reloadConfig()
        XCTAssertEqual(reload.succeeded, true)
        client.send("GET /after HTTP/1.1\r\nHost: test\r\n\r\n")
        XCTAssertEqual(client.readResponses(1).first?.status, 200)

        XCTAssertEqual(fixture.upstream.requests.map(\.head.uri), ["/before"])
        XCTAssertEqual(second.requests.map(\.head.uri), ["/after"])
        XCTAssertEqual(fixture.records().last?.policyVersion, "v2")
    }

    func testARequestInFlightFinishesOnTheSnapshotItStartedWith() async throws {
        let fixture = try ReloadFixture()
        try fixture.write(fixture.config(version: "v1", routes: ReloadFixture.route("slow", prefix: "/slow")))
        try await fixture.start()
        defer { Task { await fixture.shutdown() } }

        // `/slow` is answered by the test upstream after 2 s.
        let port = fixture.port
        let inFlight = Task.detached { () -> RawResponse? in
            let client = try RawHTTPClient(port: port)
            client.send("GET /slow HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            return client.readResponses(1).first
        }
        _ = fixture.upstream.waitForRequests(1)
        try fixture.write(fixture.config(version: "v2", routes: ReloadFixture.route("other", prefix: "/other")))
        let reload4 = await fixture.gateway.reloadConfig()
        XCTAssertEqual(reload4.succeeded, true)
        XCTAssertEqual(try fixture.get("/slow").status, 404, "new requests see the new policy at once")

        let answered = try await inFlight.value
        let response = try XCTUnwrap(answered)
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.body, "late")
        let records = fixture.records()
        let slow = try XCTUnwrap(records.first { $0["status"] as? Int == 200 })
        XCTAssertEqual(slow.policyVersion, "v1")
        XCTAssertEqual(slow["route"] as? String, "slow")
        XCTAssertEqual(records.first { $0["status"] as? Int == 404 }?.policyVersion, "v2")
    }

    func testConcurrentReloadsAreSerialisedAndEachSeesTheFile() async throws {
        let fixture = try ReloadFixture()
        try fixture.write(fixture.config(version: "v1", routes: ReloadFixture.route("a", prefix: "/a")))
        try await fixture.start()
        defer { Task { await fixture.shutdown() } }
        try fixture.write(fixture.config(version: "v2", routes: ReloadFixture.route("a", prefix: "/a")))
        let gateway = fixture.gateway!
        let results = await withTaskGroup(of: ConfigReloadResult.self) { group in
            for _ in 0..<8 { group.addTask { await gateway.reloadConfig() } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        XCTAssertEqual(results.count, 8)
        XCTAssertTrue(results.allSatisfy { $0.succeeded })
        // Callers that asked while a run was waiting to start shared it: at most 8 runs, at least 1.
        let runs = gateway.configReloadCounts.successes
        XCTAssertTrue((1...8).contains(runs), "\(runs)")
        XCTAssertEqual(try fixture.get("/a").records(fixture).last?.policyVersion, "v2")
    }

    /// A figure for the closing note: a file with 100 routes (a quarter of them webhook
    /// routes with secrets to resolve) over 10 upstreams, reloaded 20 times.
    func testReloadTimeWith100Routes() async throws {
        let fixture = try ReloadFixture()
        func file(_ version: Int) -> String {
            let routes = (0..<100).map { index in
                var route = ReloadFixture.route("r\(index)", prefix: "/r\(index)", upstream: "u\(index % 10)")
                if index % 4 == 0 { route += "\n    webhook: { scheme: github, secrets: [env:RELOAD_HOOK_SECRET] }" }
                return route
            }.joined(separator: "\n")
            let upstreams = (0..<10).map { "  u\($0):\n    endpoints: [\"127.0.0.1:\(fixture.upstream.port)\"]" }.joined(separator: "\n")
            return fixture.config(version: "v\(version)", routes: routes, upstreamExtra: upstreams)
        }
        try fixture.write(file(0))
        try await fixture.start(environment: ["RELOAD_HOOK_SECRET": "s"])
        defer { Task { await fixture.shutdown() } }

        var durations: [Duration] = []
        for version in 1...20 {
            try fixture.write(file(version))
            let started = ContinuousClock.now
            let result = await fixture.gateway.reloadConfig()
            durations.append(ContinuousClock.now - started)
            XCTAssertEqual(result.succeeded, true, "\(result)")
        }
        XCTAssertEqual(try fixture.get("/r99/x").status, 200)
        durations.sort()
        print("reload of a 100-route file: median \(durations[10]), max \(durations.last!) over 20 reloads")
        XCTAssertLessThan(durations[10], .seconds(1))
    }
}

extension RawResponse {
    /// The fixture's records once this response's record is written (they are written when the exchange completes).
    func records(_ fixture: ReloadFixture) -> [[String: Any]] {
        let id = header("x-request-id")
        var records: [[String: Any]] = []
        _ = fixture.waitUntil(timeout: 5) {
            records = fixture.records()
            return records.contains { $0["request_id"] as? String == id }
        }
        return records
    }
}
