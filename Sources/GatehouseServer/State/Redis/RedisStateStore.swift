import Foundation
import GatehouseCore
import Logging
import Metrics
import NIOCore

/// The state store on Redis: every gateway instance pointing at the same Redis (and the same
/// `environment` and `key_prefix`) shares replay keys and rate cells.
///
/// - Replay: `SET key 1 NX PX ttl`, one round trip; no answer is a failed future (the replay
///   check fails closed), never "inserted".
/// - Rate limits: `GCRAScript` by `EVALSHA`, one round trip; after `NOSCRIPT` (the server
///   restarted or flushed its scripts) `EVAL` once and load it again.
///
/// Close it (`close()`) before the event loop group shuts down.
final class RedisStateStore: StateStore {
    let client: RedisClient
    private let keyspace: RedisKeyspace
    private let metrics: RedisStoreMetrics

    /// Builds the TLS context (if any) and starts connecting; commands fail fast until a
    /// connection is up. Throws for settings with `problems` or unusable TLS material.
    init(settings: RedisStoreSettings, group: any EventLoopGroup, logger: Logger, metricsFactory: any MetricsFactory = MetricsSystem.factory) throws {
        self.metrics = RedisStoreMetrics(factory: metricsFactory)
        self.keyspace = RedisKeyspace(keyPrefix: settings.keyPrefix, environment: settings.environment)
        self.client = try RedisClient(
            settings: settings,
            group: group,
            setupCommands: [RedisCommand("SCRIPT", "LOAD", .string(GCRAScript.source))],
            logger: logger
        )
    }

    func insertIfAbsent(_ key: String, expiresAt: Date, on eventLoop: any EventLoop) -> StateAnswer<ReplayInsertion> {
        let ttl = max(1, Int64((expiresAt.timeIntervalSinceNow * 1000).rounded(.up).clamped(to: 1...1e15)))
        let command = RedisCommand("SET", .string(keyspace.key(.replay, key)), "1", "NX", "PX", .string(String(ttl)))
        let started = NIODeadline.now()
        let answer = client.send(command, on: eventLoop).flatMapThrowing { reply -> ReplayInsertion in
            switch reply {
            case .simpleString("OK"): return .inserted
            case .bulkString(nil): return .duplicate
            default: throw RedisStoreReplyError(command: "SET", reply: reply)
            }
        }
        return .later(observe(answer, op: .replay, started: started))
    }

    func remove(_ key: String, on eventLoop: any EventLoop) {
        // Best effort: a key left behind only expires later.
        let answer = client.send(RedisCommand("DEL", .string(keyspace.key(.replay, key))), on: eventLoop).map { _ in }
        _ = observe(answer, op: .remove, started: .now())
    }

    func rateLimit(_ key: String, policy: RatePolicy, on eventLoop: any EventLoop) -> StateAnswer<RateDecision?> {
        let (interval, tolerance) = GCRAScript.arguments(for: policy)
        let arguments: [RedisCommand.Argument] = ["1", .string(keyspace.key(.rateCell, key)), .string(String(interval)), .string(String(tolerance))]
        let started = NIODeadline.now()
        let client = self.client
        let metrics = self.metrics
        let answer = client.send(RedisCommand(["EVALSHA", .string(GCRAScript.sha1)] + arguments), on: eventLoop)
            .flatMap { reply -> EventLoopFuture<RESPValue> in
                guard reply.errorCode == "NOSCRIPT" else { return eventLoop.makeSucceededFuture(reply) }
                // Redis lost the script (restart, SCRIPT FLUSH, failover): run it whole, and
                // load it again so the next call is one short round trip again.
                metrics.scriptReloads.increment()
                _ = client.send(RedisCommand("SCRIPT", "LOAD", .string(GCRAScript.source)), on: eventLoop)
                return client.send(RedisCommand(["EVAL", .string(GCRAScript.source)] + arguments), on: eventLoop)
            }
            .flatMapThrowing { reply -> RateDecision? in
                guard let decision = GCRAScript.decision(from: reply) else {
                    throw RedisStoreReplyError(command: "EVALSHA", reply: reply)
                }
                return decision
            }
        return .later(observe(answer, op: .rateLimit, started: started))
    }

    /// True when at least one connection to Redis is up (for readiness and the admin page).
    var isConnected: Bool { client.isConnected }

    /// Stops reconnecting and closes the connections; commands in flight fail. Call it (and
    /// wait for it) before the event loop group shuts down.
    func close() -> EventLoopFuture<Void> {
        client.close()
    }

    /// `close()` for async callers.
    func shutdown() async {
        try? await client.close().get()
    }

    /// Counts the round trip, and turns any failure into a `StateStoreError` (counted by kind).
    private func observe<Value>(_ answer: EventLoopFuture<Value>, op: RedisStoreMetrics.Operation, started: NIODeadline) -> EventLoopFuture<Value> {
        let metrics = self.metrics
        return answer.map { value in
            metrics.recordRoundTrip(op, nanoseconds: (NIODeadline.now() - started).nanoseconds)
            return value
        }
        .flatMapErrorThrowing { error in
            let (kind, message): (String, String)
            switch error {
            case let error as RedisClientError: (kind, message) = (error.kind.rawValue, error.description)
            case let error as RedisStoreReplyError: (kind, message) = (error.kind, error.description)
            default: (kind, message) = ("other", "redis: \(error)")
            }
            metrics.recordError(kind: kind)
            throw StateStoreError(message: message)
        }
    }
}

/// The server answered, but not what the command promises (an error reply included).
struct RedisStoreReplyError: Error, CustomStringConvertible {
    let command: String
    let reply: RESPValue

    var kind: String {
        if case .error = reply { return "server_error" }
        return "unexpected_reply"
    }

    var description: String {
        if case .error(let message) = reply { return "redis error on \(command): \(message)" }
        return "redis: unexpected reply to \(command): \(reply)"
    }
}

/// The store's metrics, made once: labels come from closed sets. Round trips are timed per
/// operation (successful ones); failures are counted by kind.
struct RedisStoreMetrics: Sendable {
    enum Operation: String, CaseIterable, Sendable {
        case replay, remove
        case rateLimit = "rate_limit"
    }

    static let errorKinds = [
        "timeout", "unavailable", "connection_closed", "protocol", "backlog_full", "shutdown",
        "server_error", "unexpected_reply", "other",
    ]

    private let roundTrips: [Operation: Metrics.Timer]
    private let errors: [String: Counter]
    /// `NOSCRIPT` answers (the script was run by `EVAL` and loaded again).
    let scriptReloads: Counter

    init(factory: any MetricsFactory) {
        var roundTrips: [Operation: Metrics.Timer] = [:]
        for op in Operation.allCases {
            roundTrips[op] = Metrics.Timer(
                label: "gatehouse_state_store_round_trip_seconds", dimensions: [("backend", "redis"), ("op", op.rawValue)], factory: factory)
        }
        self.roundTrips = roundTrips
        var errors: [String: Counter] = [:]
        for kind in Self.errorKinds {
            errors[kind] = Counter(label: "gatehouse_state_store_errors_total", dimensions: [("backend", "redis"), ("kind", kind)], factory: factory)
        }
        self.scriptReloads = Counter(label: "gatehouse_state_store_script_reloads_total", dimensions: [("backend", "redis")], factory: factory)
        self.errors = errors
    }

    func recordRoundTrip(_ op: Operation, nanoseconds: Int64) {
        roundTrips[op]?.recordNanoseconds(nanoseconds)
    }

    func recordError(kind: String) {
        (errors[kind] ?? errors["other"])?.increment()
    }
}

extension Comparable {
    fileprivate func clamped(to range: ClosedRange<Self>) -> Self {
        min(max(self, range.lowerBound), range.upperBound)
    }
}
