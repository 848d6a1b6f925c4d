import Foundation
import GatehouseCore
import NIOConcurrencyHelpers
import XCTest
@testable import GatehouseServer

/// The watcher's debounce as a plain unit (polls driven by the test), then the real thing.
final class ConfigFileWatcherTests: XCTestCase {
    private func temporaryFile() throws -> String {
        let directory = temporaryPath("gatehouse-watch-")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory + "/watched.yaml"
    }

    func testAChangeIsReloadedOnceItHoldsStillAndBadContentIsNotRetried() async throws {
        let path = try temporaryFile()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        try "one".write(toFile: path, atomically: true, encoding: .utf8)
        let watcher = ConfigFileWatcher(baseline: ConfigFileWatcher.fingerprint([path]), interval: .seconds(1)) { [path] }
        let reloads = NIOLockedValueBox(0)
        let reload: @Sendable () async -> Void = { reloads.withLockedValue { $0 += 1 } }

        let nothing = await watcher.poll(reload: reload)
        XCTAssertFalse(nothing)
        // Written in two steps, seen between them: no reload until it holds still for a poll.
        try "tw".write(toFile: path, atomically: false, encoding: .utf8)
        let partial = await watcher.poll(reload: reload)
        XCTAssertFalse(partial)
        try "two".write(toFile: path, atomically: false, encoding: .utf8)
        let changedAgain = await watcher.poll(reload: reload)
        XCTAssertFalse(changedAgain)
        let settled = await watcher.poll(reload: reload)
        XCTAssertTrue(settled)
        XCTAssertEqual(reloads.withLockedValue { $0 }, 1)
        // The same content (whatever the reload made of it) is not tried again.
        for _ in 0..<10 { _ = await watcher.poll(reload: reload) }
        XCTAssertEqual(reloads.withLockedValue { $0 }, 1)
        // Rewriting identical bytes is no change (content, not mtime).
        try "two".write(toFile: path, atomically: true, encoding: .utf8)
        for _ in 0..<3 { _ = await watcher.poll(reload: reload) }
        XCTAssertEqual(reloads.withLockedValue { $0 }, 1)

        // A file that never holds still is reloaded after a bounded number of polls anyway.
        var polls = 0
        while reloads.withLockedValue({ $0 }) == 1, polls < 20 {
            try "step \(polls)".write(toFile: path, atomically: true, encoding: .utf8)
            _ = await watcher.poll(reload: reload)
            polls += 1
        }
        XCTAssertEqual(reloads.withLockedValue { $0 }, 2)
        XCTAssertEqual(polls, ConfigFileWatcher.maximumUnsettledPolls + 1)
    }

    func testTheGatewayReloadsWhenTheFileOrAReferencedSecretChangesAndCountsAnInvalidFileOnce() async throws {
        let fixture = try ReloadFixture()
        let secretFile = fixture.directory + "/hook-secret"
        try fixture.write("first-secret", to: secretFile)
        let hook = """

              - name: hook
                match: { path: /hook }
                upstream: app
                webhook: { scheme: github, secrets: ["file:\(secretFile)"] }
            """
        try fixture.write(fixture.config(version: "v1", routes: ReloadFixture.route("a", prefix: "/a") + hook))
        try await fixture.start(pollInterval: .milliseconds(20))
        defer { Task { await fixture.shutdown() } }
        let gateway = fixture.gateway!

        try fixture.write(fixture.config(version: "v2", routes: ReloadFixture.route("b", prefix: "/b") + hook))
        XCTAssertTrue(fixture.waitUntil { gateway.configReloadCounts.successes == 1 })
        XCTAssertEqual(try fixture.get("/b").status, 200)

        try fixture.write(fixture.config(version: "v3", routes: "  - name: [broken"))
        XCTAssertTrue(fixture.waitUntil { gateway.configReloadCounts.failures == 1 })
        usleep(300_000)  // 15 polls
        XCTAssertEqual(gateway.configReloadCounts.failures, 1, "an invalid file counts once")
        XCTAssertEqual(gateway.configReloadCounts.successes, 1)
        XCTAssertEqual(try fixture.get("/b").status, 200)

        try fixture.write(fixture.config(version: "v4", routes: ReloadFixture.route("c", prefix: "/c") + hook))
        XCTAssertTrue(fixture.waitUntil { gateway.configReloadCounts.successes == 2 })
        XCTAssertEqual(try fixture.get("/c").status, 200)

        // The webhook secret file is part of the configuration: rotating it reloads, and the
        // new secret verifies deliveries.
        try fixture.write("second-secret", to: secretFile)
        XCTAssertTrue(fixture.waitUntil { gateway.configReloadCounts.successes == 3 })
        let body = #"{"zen":"reload"}"#
        let headers = WebhookSender.headers(.github, secret: "second-secret", body: Array(body.utf8))
        let client = try RawHTTPClient(port: fixture.port)
        client.send("POST /hook HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n"
            + headers.map { $0 + "\r\n" }.joined() + "\r\n" + body)
        XCTAssertEqual(client.readResponses(1).first?.status, 200)
        XCTAssertEqual(gateway.configReloadCounts.failures, 1)

        // A new file naming a secret file that does not exist yet fails once; creating the
        // secret file (which the running file does not name) reloads it.
        let newSecret = fixture.directory + "/new-secret"
        try fixture.write(fixture.config(version: "v5", routes: ReloadFixture.route("d", prefix: "/d") + hook
            .replacingOccurrences(of: "file:\(secretFile)", with: "file:\(newSecret)")))
        XCTAssertTrue(fixture.waitUntil { gateway.configReloadCounts.failures == 2 })
        usleep(200_000)
        XCTAssertEqual(gateway.configReloadCounts.failures, 2)
        try fixture.write("third-secret", to: newSecret)
        XCTAssertTrue(fixture.waitUntil { gateway.configReloadCounts.successes == 4 })
        XCTAssertEqual(try fixture.get("/d").status, 200)
    }

    func testAChangeAlreadyReloadedBySIGHUPIsNotReloadedAgainByTheWatcher() async throws {
        let fixture = try ReloadFixture()
        try fixture.write(fixture.config(version: "v1", routes: ReloadFixture.route("a", prefix: "/a")))
        try await fixture.start(pollInterval: .milliseconds(20))
        defer { Task { await fixture.shutdown() } }
        let gateway = fixture.gateway!

        // What the SIGHUP handler does, right after the write: the watcher must not count it again.
        try fixture.write(fixture.config(version: "v2", routes: "  - name: [broken"))
        let result = await gateway.reloadConfig()
        XCTAssertFalse(result.succeeded)
        usleep(300_000)  // 15 polls
        XCTAssertEqual(gateway.configReloadCounts.failures, 1)
        try fixture.write(fixture.config(version: "v3", routes: ReloadFixture.route("b", prefix: "/b")))
        let applied = await gateway.reloadConfig()
        XCTAssertTrue(applied.succeeded)
        usleep(300_000)
        XCTAssertEqual(gateway.configReloadCounts.successes, 1)
        XCTAssertEqual(gateway.configReloadCounts.failures, 1)
    }

    func testAChangeToTheRolloutCandidateFileReloads() async throws {
        let fixture = try ReloadFixture()
        let candidate = fixture.directory + "/candidate.yaml"
        func candidateText(_ version: String) -> String {
            "version: \(version)\nroutes:\n" + ReloadFixture.route("a", prefix: "/a") + "\n"
        }
        try fixture.write(candidateText("cand-1"), to: candidate)
        try fixture.write(fixture.config(version: "v1", routes: ReloadFixture.route("a", prefix: "/a"), extra: """
            rollout:
              candidate: \(candidate)
              mode: shadow
            """))
        try await fixture.start(pollInterval: .milliseconds(20))
        defer { Task { await fixture.shutdown() } }
        let gateway = fixture.gateway!

        try fixture.write(candidateText("cand-2"), to: candidate)
        XCTAssertTrue(fixture.waitUntil { gateway.configReloadCounts.successes == 1 })
        XCTAssertEqual(gateway.snapshots.snapshot.config.rollout?.candidate.version, "cand-2")
        let shown = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(fixture.admin("/config").body.utf8)) as? [String: Any])
        XCTAssertEqual((shown["candidate"] as? [String: Any])?["version"] as? String, "cand-2")
        XCTAssertEqual((shown["candidate"] as? [String: Any])?["sha256"] as? String, ConfigDocument.fileSHA256(candidate))

        // An invalid candidate fails the reload like an invalid main file, naming the candidate file.
        try fixture.write("version: cand-3\nroutes:\n  - name: a\n    upstream: nowhere\n", to: candidate)
        XCTAssertTrue(fixture.waitUntil { gateway.configReloadCounts.failures == 1 })
        XCTAssertEqual(gateway.snapshots.snapshot.config.rollout?.candidate.version, "cand-2")
    }
}
