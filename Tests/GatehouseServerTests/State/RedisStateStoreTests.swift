import Foundation
import GatehouseCore
import MetricsTestKit
import NIOCore
import XCTest

@testable import GatehouseServer

/// `RedisStateStore` against a real `redis-server`.
final class RedisStateStoreTests: RedisTestCase {
    private let keyspace = RedisKeyspace(keyPrefix: "gh-test:", environment: "test")

    private func insert(_ store: RedisStateStore, _ key: String, ttl: TimeInterval = 60) throws -> ReplayInsertion {
        let loop = group.next()
        return try value(store.insertIfAbsent(key, expiresAt: Date().addingTimeInterval(ttl), on: loop), on: loop)
    }

    private func rate(_ store: RedisStateStore, _ key: String, _ policy: RatePolicy) throws -> RateDecision? {
        let loop = group.next()
        return try value(store.rateLimit(key, policy: policy, on: loop), on: loop)
    }

    private func integer(_ admin: RedisClient, _ command: RedisCommand) throws -> Int64? {
        guard case .integer(let number) = try value(admin.send(command, on: group.next())) else { return nil }
        return number
    }

    func testReplayInsertDuplicateAndExpiry() throws {
        server = try RedisServer.start()
        let store = try makeStore(settings())
        XCTAssertTrue(waitUntilConnected(store.client))
        XCTAssertEqual(try insert(store, "delivery-1", ttl: 0.3), .inserted)
        XCTAssertEqual(try insert(store, "delivery-1", ttl: 0.3), .duplicate)
        XCTAssertEqual(try insert(store, "delivery-2", ttl: 0.3), .inserted, "another key is independent")
        usleep(400_000)
        XCTAssertEqual(try insert(store, "delivery-1", ttl: 0.3), .inserted, "after its TTL the key is new again")
    }

    func testReplayKeysAreHashedWithTheirTTL() throws {
        server = try RedisServer.start()
        let admin = try makeAdminClient()
        let store = try makeStore(settings())
        XCTAssertTrue(waitUntilConnected(store.client))
        XCTAssertEqual(try insert(store, "jti-abc", ttl: 30), .inserted)
        let ttl = try integer(admin, RedisCommand("PTTL", .string(keyspace.key(.replay, "jti-abc"))))
        XCTAssertNotNil(ttl)
        XCTAssertTrue((29_000...30_000).contains(ttl ?? 0), "PX ttl from expiresAt: \(String(describing: ttl))")
        let keys = try value(admin.send(RedisCommand("KEYS", "*"), on: group.next()))
        XCTAssertEqual(keys, .array([.bulkString(ByteBuffer(string: keyspace.key(.replay, "jti-abc")))]), "one hashed key, no raw jti")
    }

    func testRemoveForgetsAKey() throws {
        server = try RedisServer.start()
        let admin = try makeAdminClient()
        let store = try makeStore(settings())
        XCTAssertTrue(waitUntilConnected(store.client))
        XCTAssertEqual(try insert(store, "delivery-9"), .inserted)
        store.remove("delivery-9", on: group.next())
        let gone = RedisServer.waitUntil(timeout: 2) {
            (try? self.integer(admin, RedisCommand("EXISTS", .string(self.keyspace.key(.replay, "delivery-9"))))) == 0
        }
        XCTAssertTrue(gone)
        XCTAssertEqual(try insert(store, "delivery-9"), .inserted, "the sender's retry is not a replay")
    }

    /// Two stores (two gateway instances) on one Redis share replay keys and rate cells.
    func testTwoInstancesShareReplayKeysAndRateCells() throws {
        server = try RedisServer.start()
        let first = try makeStore(settings())
        let second = try makeStore(settings())
        XCTAssertTrue(waitUntilConnected(first.client) && waitUntilConnected(second.client))
        XCTAssertEqual(try insert(first, "delivery-shared"), .inserted)
        XCTAssertEqual(try insert(second, "delivery-shared"), .duplicate, "seen by the other instance")
        XCTAssertEqual(try insert(second, "jti-shared"), .inserted)
        XCTAssertEqual(try insert(first, "jti-shared"), .duplicate)

        let policy = RatePolicy(count: 1, period: .seconds(60), burst: 2)
        XCTAssertEqual(try rate(first, "peer-a", policy)?.allowed, true)
        XCTAssertEqual(try rate(second, "peer-a", policy)?.allowed, true)
        XCTAssertEqual(try rate(first, "peer-a", policy)?.allowed, false, "one limit across both instances")
        XCTAssertEqual(try rate(second, "peer-a", policy)?.allowed, false)

        var otherEnvironment = settings()
        otherEnvironment.environment = "staging"
        let staging = try makeStore(otherEnvironment)
        XCTAssertTrue(waitUntilConnected(staging.client))
        XCTAssertEqual(try insert(staging, "delivery-shared"), .inserted, "environments do not share keys")
    }

    /// The script makes the same decisions as `GCRA.evaluate`: the burst at once with
    /// remaining counting down, then refusals with Retry-After up to T, then one request per T.
    func testGCRABurstThenDenyMatchesGCRAEvaluate() throws {
        server = try RedisServer.start()
        let admin = try makeAdminClient()
        let store = try makeStore(settings(timeout: .seconds(1)))
        XCTAssertTrue(waitUntilConnected(store.client))
        let policy = RatePolicy(count: 10, period: .seconds(1), burst: 5)  // T = 100 ms, τ = 400 ms

        // The reference: GCRA.evaluate with every request at the same instant.
        var tat: Int64?
        var expected: [RateDecision] = []
        for _ in 0..<7 {
            let step = GCRA.evaluate(tat: tat, now: 0, policy: policy)
            tat = step.newTAT
            expected.append(step.decision)
        }
        let started = Date()
        let decisions = try (0..<7).map { _ in try XCTUnwrap(rate(store, "subject-1", policy)) }
        let elapsedNanos = Int64(Date().timeIntervalSince(started) * 1e9)
        XCTAssertLessThan(elapsedNanos, 90_000_000, "the sequence ran well within one T (else the comparison is off)")

        XCTAssertEqual(decisions.map(\.allowed), expected.map(\.allowed))
        XCTAssertEqual(decisions.map(\.allowed), [true, true, true, true, true, false, false])
        XCTAssertEqual(decisions.map(\.remaining), expected.map(\.remaining))
        XCTAssertEqual(decisions.map(\.remaining), [4, 3, 2, 1, 0, 0, 0])
        for (got, want) in zip(decisions, expected) {
            // Redis's clock ran on by at most `elapsed` during the sequence.
            XCTAssertLessThanOrEqual(got.retryAfterNanos, want.retryAfterNanos)
            XCTAssertGreaterThanOrEqual(got.retryAfterNanos, want.retryAfterNanos - elapsedNanos)
            XCTAssertLessThanOrEqual(got.resetAfterNanos, want.resetAfterNanos)
            XCTAssertGreaterThanOrEqual(got.resetAfterNanos, want.resetAfterNanos - elapsedNanos)
        }
        XCTAssertEqual(expected[5].retryAfterNanos, 100_000_000, "refused: one T until the next fits")
        XCTAssertEqual(expected[5].resetAfterNanos, 500_000_000)

        // The cell expires when it no longer matters: PTTL ≈ TAT − now ≤ burst × T.
        let ttl = try integer(admin, RedisCommand("PTTL", .string(keyspace.key(.rateCell, "subject-1")))) ?? -1
        XCTAssertTrue((1...500).contains(ttl), "PTTL \(ttl)")

        // After Retry-After one more fits, then it is refused again.
        usleep(UInt32(decisions[6].retryAfterNanos / 1000) + 20_000)
        let next = try XCTUnwrap(rate(store, "subject-1", policy))
        XCTAssertTrue(next.allowed)
        XCTAssertEqual(next.remaining, 0)
        XCTAssertEqual(try rate(store, "subject-1", policy)?.allowed, false)

        // Idle keys vanish by themselves.
        let expired = RedisServer.waitUntil(timeout: 2) {
            (try? self.integer(admin, RedisCommand("EXISTS", .string(self.keyspace.key(.rateCell, "subject-1"))))) == 0
        }
        XCTAssertTrue(expired, "the cell expired with its TAT")
        XCTAssertEqual(try rate(store, "subject-1", policy)?.remaining, 4, "a full burst again")
    }

    /// After `SCRIPT FLUSH` (as after a Redis restart), `EVALSHA` answers NOSCRIPT: the store
    /// falls back to `EVAL` and loads the script again.
    func testNOSCRIPTFallsBackToEVALAndReloads() throws {
        server = try RedisServer.start()
        let admin = try makeAdminClient()
        let store = try makeStore(settings(timeout: .seconds(1)))
        XCTAssertTrue(waitUntilConnected(store.client))
        let policy = RatePolicy(count: 100, period: .seconds(1), burst: 3)
        let exists = RedisCommand("SCRIPT", "EXISTS", .string(GCRAScript.sha1))
        XCTAssertEqual(try value(admin.send(exists, on: group.next())), .array([.integer(1)]), "loaded on connect, under the SHA-1 we compute")

        XCTAssertEqual(try value(admin.send(RedisCommand("SCRIPT", "FLUSH"), on: group.next())), .simpleString("OK"))
        XCTAssertEqual(try value(admin.send(exists, on: group.next())), .array([.integer(0)]))
        XCTAssertEqual(try rate(store, "client-x", policy)?.remaining, 2, "answered through EVAL")
        XCTAssertEqual(try rate(store, "client-x", policy)?.remaining, 1)
        let reloaded = RedisServer.waitUntil(timeout: 2) {
            (try? self.value(admin.send(exists, on: self.group.next()))) == .array([.integer(1)])
        }
        XCTAssertTrue(reloaded, "loaded again for the next EVALSHA")
    }

    /// No answer is never "inserted": with Redis slow or down, both operations fail with a
    /// `StateStoreError` (replay checks fail closed; rate limits apply on_store_error).
    func testSlowOrStoppedRedisFailsClosedAndRecovers() throws {
        server = try RedisServer.start()
        let admin = try makeAdminClient()
        let store = try makeStore(settings(timeout: .milliseconds(50), connections: 1))
        XCTAssertTrue(waitUntilConnected(store.client))
        let policy = RatePolicy(count: 10, period: .seconds(1), burst: 1)

        try pauseServer(milliseconds: 300, using: admin)
        XCTAssertThrowsError(try insert(store, "delivery-slow")) { error in
            XCTAssertTrue((error as? StateStoreError)?.message.contains("timeout") == true, "\(error)")
        }

        server.stop()
        XCTAssertTrue(RedisServer.waitUntil(timeout: 2) { !store.client.isConnected })
        XCTAssertThrowsError(try insert(store, "delivery-down")) { XCTAssertTrue($0 is StateStoreError, "\($0)") }
        XCTAssertThrowsError(try rate(store, "peer-down", policy)) { XCTAssertTrue($0 is StateStoreError, "\($0)") }

        try server.restart()
        let back = RedisServer.waitUntil(timeout: 3) { (try? self.insert(store, "delivery-after")) == .inserted }
        XCTAssertTrue(back, "recovers by itself")
        XCTAssertEqual(try rate(store, "peer-after", policy)?.allowed, true, "the script is loaded on the new connection")
    }

    /// Operators see round trips timed and failures counted by kind (closed label sets).
    func testMetricsCountRoundTripsAndErrorsByKind() throws {
        server = try RedisServer.start()
        let admin = try makeAdminClient()
        let metrics = TestMetrics()
        let store = try makeStore(settings(timeout: .milliseconds(50), connections: 1), metrics: metrics)
        XCTAssertTrue(waitUntilConnected(store.client))
        let errors = "gatehouse_state_store_errors_total"
        XCTAssertEqual(try insert(store, "d-1"), .inserted)
        XCTAssertEqual(try rate(store, "p-1", RatePolicy(count: 5, period: .seconds(1), burst: 2))?.allowed, true)
        XCTAssertEqual(try metrics.expectTimer("gatehouse_state_store_round_trip_seconds", [("backend", "redis"), ("op", "replay")]).values.count, 1)
        XCTAssertEqual(try metrics.expectTimer("gatehouse_state_store_round_trip_seconds", [("backend", "redis"), ("op", "rate_limit")]).values.count, 1)

        _ = try value(admin.send(RedisCommand("SCRIPT", "FLUSH"), on: group.next()))
        XCTAssertNotNil(try rate(store, "p-1", RatePolicy(count: 5, period: .seconds(1), burst: 2)))
        XCTAssertEqual(metrics.counterTotal(label: "gatehouse_state_store_script_reloads_total"), 1)

        try pauseServer(milliseconds: 300, using: admin)
        XCTAssertThrowsError(try insert(store, "d-2"))
        XCTAssertEqual(metrics.counterTotal(label: errors, dimensions: [("backend", "redis"), ("kind", "timeout")]), 1)
        XCTAssertThrowsError(try insert(store, "d-3"), "fails fast while the connection is re-dialled")
        XCTAssertEqual(metrics.counterTotal(label: errors, dimensions: [("backend", "redis"), ("kind", "unavailable")]), 1)
        XCTAssertEqual(metrics.counterTotal(label: errors), 2, "nothing else counted")
    }

    /// Not an assertion on speed (the machine is shared): prints µs per round trip, measured
    /// on the event loop (as the data path calls it): one at a time, then 2,000 at once.
    func testMeasureRoundTrips() throws {
        server = try RedisServer.start()
        let store = try makeStore(settings(timeout: .seconds(1)))
        XCTAssertTrue(waitUntilConnected(store.client))
        let loop = group.next()
        let count = 2000
        let policy = RatePolicy(count: 1_000_000, period: .seconds(1), burst: 1000)
        let expiry = Date().addingTimeInterval(60)

        @Sendable func future<T>(_ answer: StateAnswer<T>) -> EventLoopFuture<T> {
            switch answer {
            case .now(let value): return loop.makeSucceededFuture(value)
            case .later(let future): return future
            }
        }
        /// `count` operations, each sent when the previous one was answered; µs per operation.
        func sequential(_ operation: @escaping @Sendable (Int) -> EventLoopFuture<Bool>) throws -> Double {
            let started = NIODeadline.now()
            @Sendable func step(_ index: Int) -> EventLoopFuture<Int> {
                guard index < count else { return loop.makeSucceededFuture(0) }
                return operation(index).flatMap { ok in step(index + 1).map { $0 + (ok ? 1 : 0) } }
            }
            XCTAssertEqual(try value(loop.flatSubmit { step(0) }, timeout: 30), count)
            return Double((NIODeadline.now() - started).nanoseconds) / 1000 / Double(count)
        }
        let setMicros = try sequential { index in
            future(store.insertIfAbsent("m-\(index)", expiresAt: expiry, on: loop)).map { $0 == .inserted }
        }
        let evalMicros = try sequential { index in
            future(store.rateLimit("r-\(index % 10)", policy: policy, on: loop)).map { $0?.allowed == true }
        }
        let started = NIODeadline.now()
        let all = loop.flatSubmit {
            EventLoopFuture.whenAllSucceed((0..<count).map { future(store.insertIfAbsent("p-\($0)", expiresAt: expiry, on: loop)) }, on: loop)
        }
        XCTAssertEqual(try value(all, timeout: 30).filter { $0 == .inserted }.count, count)
        let pipelinedMicros = Double((NIODeadline.now() - started).nanoseconds) / 1000 / Double(count)
        print(String(format: "redis round trips on loopback, from the event loop: SET NX %.0f µs, GCRA EVALSHA %.0f µs one at a time; %d SET NX at once: %.1f µs each", setMicros, evalMicros, count, pipelinedMicros))
    }
}
