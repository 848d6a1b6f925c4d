import Foundation
import GatehouseCore
import XCTest

@testable import GatehouseServer

/// Two gateway instances sharing one real redis-server: replay keys and rate cells are the
/// pair's, not each instance's; a Redis that is down or slow fails replay checks closed,
/// rate limits per their policy, and service comes back by itself.
final class SharedStateEndToEndTests: XCTestCase {
    private static let secret = "shared-webhook-secret"

    private func secretFile() throws -> SecretReference {
        let path = temporaryPath("gatehouse-shared-secret-")
        try Self.secret.write(toFile: path, atomically: true, encoding: .utf8)
        return .file(path)
    }

    /// A gateway (plain HTTP, for speed) with a webhook route, a jti-replay route, and two
    /// rate-limited routes (fail open, fail closed), all state in the Redis at `port`.
    private func instance(redisPort: Int, rate: RatePolicy = RatePolicy(count: 100, period: .seconds(1), burst: 5)) async throws -> GatewayFixture {
        let secret = try secretFile()
        let jwks = try TestTokens.jwksFile(for: self)
        return try await GatewayFixture(tls: false) { config in
            let here = MutualTLS.here
            var redis = RedisConfig(address: HostPort(host: "127.0.0.1", port: redisPort), location: here)
            redis.keyPrefix = "gh-e2e-\(redisPort):"
            redis.timeout = .milliseconds(50)
            config.state.redis = redis
            config.issuers = [IssuerConfig(name: "idp", issuer: "https://idp.test", jwksFile: jwks, audiences: ["billing"], location: here)]
            var hook = MutualTLS.route("hook", .exact("/hook"), methods: ["POST"], peers: nil)
            hook.webhook = RouteWebhookConfig(scheme: .github, secrets: [secret], location: here)
            var once = MutualTLS.route("once", .prefix("/once"), peers: nil)
            once.token = RouteTokenConfig(issuers: ["idp"], location: here)
            once.token?.rejectReplay = true
            var open = MutualTLS.route("open", .prefix("/open"), peers: nil)
            open.rateLimit = RateLimitConfig(name: "shared", key: [.route], policy: rate, location: here)
            var closed = MutualTLS.route("closed", .prefix("/closed"), peers: nil)
            closed.rateLimit = RateLimitConfig(name: "strict", key: [.route], policy: rate, location: here)
            closed.rateLimit?.onStoreError = .deny
            let plain = MutualTLS.route("plain", .prefix("/plain"), peers: nil)
            config.routes = [hook, once, open, closed, plain]
        }
    }

    private func deliver(_ fixture: GatewayFixture, body: String, id: String) throws -> Int {
        let path = temporaryPath("gatehouse-shared-body-")
        try body.write(toFile: path, atomically: true, encoding: .utf8)
        var arguments = ["-X", "POST", "--data-binary", "@" + path]
        for header in WebhookSender.headers(.github, secret: Self.secret, body: Array(body.utf8), id: id) { arguments += ["-H", header] }
        return try fixture.curl("/hook", arguments).status
    }

    func testADeliveryOrTokenAcceptedByOneInstanceIsRefusedByTheOther() async throws {
        let redis = try RedisServer.start()
        defer { redis.stop() }
        let a = try await instance(redisPort: redis.port)
        let b = try await instance(redisPort: redis.port)
        defer { Task { await a.shutdown(); await b.shutdown() } }

        XCTAssertEqual(try deliver(a, body: #"{"n":1}"#, id: "d-1"), 200)
        XCTAssertEqual(try deliver(b, body: #"{"n":1}"#, id: "d-1"), 409, "the other instance saw it")
        XCTAssertEqual(try deliver(b, body: #"{"n":1}"#, id: "d-forged"), 409, "an unsigned id changes nothing")
        XCTAssertEqual(b.records(atLeast: 2).map(\.reason), ["replay.detected", "replay.detected"])

        let token = try TestTokens.token(["jti": #""shared-jti""#])
        XCTAssertEqual(try b.curl("/once", ["-H", "Authorization: Bearer \(token)"]).status, 200)
        XCTAssertEqual(try a.curl("/once", ["-H", "Authorization: Bearer \(token)"]).status, 409)
    }

    /// A limit of N/s driven through both instances for 10 s admits N×10 in total (+ burst), ± 5%.
    func testARateLimitIsThePairsNotEachInstances() async throws {
        let redis = try RedisServer.start()
        defer { redis.stop() }
        let rate = RatePolicy(count: 50, period: .seconds(1), burst: 5)
        let a = try await instance(redisPort: redis.port, rate: rate)
        let b = try await instance(redisPort: redis.port, rate: rate)
        defer { Task { await a.shutdown(); await b.shutdown() } }
        // Two clients, one per instance, at the same time, each 100 keep-alive requests a
        // second for 10 s (twice the limit each, four times together).
        let count = 1000
        func drive(_ fixture: GatewayFixture) throws -> Process {
            let list = temporaryPath("gatehouse-urls-")
            try String(repeating: "url = \"\(fixture.baseURL)/open/x\"\noutput = \"/dev/null\"\n", count: count).write(toFile: list, atomically: true, encoding: .utf8)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            process.arguments = ["-s", "--max-time", "30", "--rate", "100/s", "-K", list]
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            return process
        }
        let started = Date()
        let clients = [try drive(a), try drive(b)]
        for client in clients { client.waitUntilExit() }
        let elapsed = Date().timeIntervalSince(started)
        let records = a.records(atLeast: count, timeout: 10) + b.records(atLeast: count, timeout: 10)
        XCTAssertEqual(records.count, 2 * count)
        let admitted = records.filter { $0.reason == "allowed" }
        XCTAssertEqual(Set(records.compactMap(\.reason)), ["allowed", "rate.limited"])
        // The admitted requests' own time span, from their records.
        let times = admitted.compactMap { $0["ts"] as? String }.compactMap(Self.date).sorted()
        let span = (times.last ?? started).timeIntervalSince(times.first ?? started)
        let expected = 50 * span + 5
        XCTAssertGreaterThan(span, 9, "the run lasted about 10 s (\(elapsed) s)")
        XCTAssertEqual(Double(admitted.count), expected, accuracy: max(expected * 0.05, 3), "admitted \(admitted.count) in \(span) s")
        XCTAssertGreaterThan(a.records(atLeast: 0).filter { $0.reason == "allowed" }.count, 0)
        XCTAssertGreaterThan(b.records(atLeast: 0).filter { $0.reason == "allowed" }.count, 0)
    }

    func testRedisDownFailsReplayClosedRateLimitsPerPolicyAndRecovers() async throws {
        let redis = try RedisServer.start()
        let a = try await instance(redisPort: redis.port)
        defer { Task { await a.shutdown() } }
        defer { redis.stop() }
        XCTAssertEqual(try deliver(a, body: #"{"up":true}"#, id: "u-1"), 200)

        redis.stop()
        XCTAssertEqual(try deliver(a, body: #"{"down":1}"#, id: "x-1"), 503, "replay check without a store: fail closed")
        XCTAssertEqual(try a.curl("/open/x").status, 200, "on_store_error: allow (the default)")
        XCTAssertEqual(try a.curl("/closed/x").status, 503, "on_store_error: deny")
        XCTAssertEqual(try a.curl("/plain/x").status, 200, "routes without state are untouched")
        let records = a.records(atLeast: 5)
        XCTAssertEqual(records.suffix(4).map(\.reason), ["state.unavailable", "allowed", "state.unavailable", "allowed"])
        XCTAssertEqual((records[2]["rate_limit"] as? [String: Any])?["store"] as? String, "error", "the fail-open decision is recorded")

        try redis.restart()
        let back = Date()
        var status = 0
        var attempt = 0
        repeat {
            attempt += 1
            status = try deliver(a, body: #"{"back":\#(attempt)}"#, id: "b-\(attempt)")
            if status != 200 { usleep(100_000) }
        } while status != 200 && Date().timeIntervalSince(back) < 5
        XCTAssertEqual(status, 200)
        XCTAssertLessThan(Date().timeIntervalSince(back), 2.5, "service came back within about a second of Redis")
    }

    func testASlowRedisTripsTheTimeoutNotTheEventLoop() async throws {
        let redis = try RedisServer.start()
        defer { redis.stop() }
        let a = try await instance(redisPort: redis.port)
        defer { Task { await a.shutdown() } }
        XCTAssertEqual(try deliver(a, body: #"{"warm":true}"#, id: "w-1"), 200)
        // Redis stops answering every client for 1 s; redis-cli returns once the pause is in
        // effect (a DEBUG SLEEP plus a guessed wait could let the delivery through first).
        let pause = Process()
        pause.executableURL = URL(fileURLWithPath: "/usr/bin/redis-cli")
        pause.arguments = ["-p", String(redis.port), "CLIENT", "PAUSE", "1000", "ALL"]
        pause.standardOutput = FileHandle.nullDevice
        try pause.run()
        pause.waitUntilExit()
        XCTAssertEqual(pause.terminationStatus, 0)
        let started = Date()
        XCTAssertEqual(try deliver(a, body: #"{"slow":true}"#, id: "s-1"), 503)
        XCTAssertLessThan(Date().timeIntervalSince(started), 0.5, "the 50 ms timeout answered, not Redis")
        XCTAssertEqual(try a.curl("/plain/x").status, 200, "the event loop kept serving")
    }

    private static func date(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }
}
