import Atomics
import Foundation
import GatehouseCore
import NIOCore

/// An answer of the state store: at once (the in-memory store), or later on the asking
/// event loop (Redis). The data path takes the first without allocating a future.
enum StateAnswer<Value: Sendable> {
    case now(Value)
    case later(EventLoopFuture<Value>)
}

/// Why a shared store could not answer: slow, down, or it answered nonsense. Safe to log.
struct StateStoreError: Error, Sendable, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// The state-store protocol of ARCHITECTURE.md: what several gateway instances must share.
/// Replay keys (token `jti`, webhook deliveries) and rate cells. Two implementations: in
/// memory (one instance; the default) and Redis (many instances acting as one).
///
/// A failed `.later` future (`StateStoreError`) means "no answer": replay checks then fail
/// closed; rate limits follow their `on_store_error`.
protocol StateStore: Sendable {
    /// Remembers `key` until `expiresAt` unless it is already remembered.
    func insertIfAbsent(_ key: String, expiresAt: Date, on eventLoop: any EventLoop) -> StateAnswer<ReplayInsertion>
    /// Forgets a key this caller inserted (a delivery the upstream never took). Best effort.
    func remove(_ key: String, on eventLoop: any EventLoop)
    /// One GCRA step for `key` under `policy`; nil when the store is full (`on_full` decides).
    func rateLimit(_ key: String, policy: RatePolicy, on eventLoop: any EventLoop) -> StateAnswer<RateDecision?>
}

/// The embedded store: bounded, in this process, answers at once.
final class InMemoryStateStore: StateStore {
    let replay: InMemoryReplayStore
    let rates: InMemoryRateLimitStore
    /// Operations and refusals for `/metrics` (read at scrape time).
    let counts = Counts()

    final class Counts: Sendable {
        let inserts = ManagedAtomic(0)
        let removes = ManagedAtomic(0)
        let rateLimits = ManagedAtomic(0)
        /// Answers "full": a replay key or a new rate cell that found no room.
        let full = ManagedAtomic(0)
    }

    init(replayCapacity: Int, rateCapacity: Int) {
        self.replay = InMemoryReplayStore(capacity: replayCapacity)
        self.rates = InMemoryRateLimitStore(capacity: rateCapacity)
    }

    func insertIfAbsent(_ key: String, expiresAt: Date, on eventLoop: any EventLoop) -> StateAnswer<ReplayInsertion> {
        counts.inserts.wrappingIncrement(ordering: .relaxed)
        let answer = replay.insertIfAbsent(key, expiresAt: expiresAt, now: Date())
        if answer == .unavailable { counts.full.wrappingIncrement(ordering: .relaxed) }
        return .now(answer)
    }

    func remove(_ key: String, on eventLoop: any EventLoop) {
        counts.removes.wrappingIncrement(ordering: .relaxed)
        replay.remove(key)
    }

    func rateLimit(_ key: String, policy: RatePolicy, on eventLoop: any EventLoop) -> StateAnswer<RateDecision?> {
        counts.rateLimits.wrappingIncrement(ordering: .relaxed)
        let decision = rates.evaluate(key, policy: policy, now: Date())
        if decision == nil { counts.full.wrappingIncrement(ordering: .relaxed) }
        return .now(decision)
    }
}
