import Foundation
import Synchronization

/// The embedded store of rate cells: one GCRA timestamp per key, in `DigestTable`s sharded
/// by key so the event loops rarely meet on a lock. Bounded: a cell is dropped only once its
/// timestamp has passed (then the key is as good as new); a live cell is never evicted, since
/// that would reset its limit. When a shard is full of live cells, a new key gets `nil` and
/// the caller applies the limit's `on_full` policy.
public final class InMemoryRateLimitStore: Sendable {
    public let capacity: Int
    private let shards: [Shard]

    private final class Shard: Sendable {
        let table: Mutex<DigestTable<Int64>>
        init(capacity: Int, now: Date) { self.table = Mutex(DigestTable<Int64>(capacity: capacity, now: now)) }
    }

    public init(capacity: Int = 1_000_000, shards: Int = 16, now: Date = Date()) {
        self.capacity = capacity
        let perShard = max(1, (capacity + shards - 1) / shards)
        self.shards = (0..<shards).map { _ in Shard(capacity: perShard, now: now) }
    }

    /// One GCRA step for `key`; nil when the store cannot hold a new key.
    public func evaluate(_ key: String, policy: RatePolicy, now: Date) -> RateDecision? {
        let nowNanos = Int64((now.timeIntervalSince1970 * 1e9).rounded(.down))
        // The shard from the key's own hash; the table hashes again under its salt.
        let shard = shards[Int(UInt(bitPattern: key.hashValue) % UInt(shards.count))]
        return shard.table.withLock { table -> RateDecision? in
            let digest = table.digest(key)
            let nowSeconds = table.seconds(now, roundingUp: false)
            let stored: Int64?
            let index: Int
            switch table.lookup(digest, now: nowSeconds) {
            case .found(let found, let expired):
                index = found
                stored = expired ? nil : table.value(at: found)
            case .vacant(let free):
                index = free
                stored = nil
            case .full:
                return nil
            }
            let (decision, newTAT) = GCRA.evaluate(tat: stored, now: nowNanos, policy: policy)
            if decision.allowed || stored != nil {
                let expiresAt = Date(timeIntervalSince1970: Double(newTAT) / 1e9)
                table.store(digest, at: index, expiry: max(table.seconds(expiresAt, roundingUp: true), nowSeconds + 1), value: newTAT)
            }
            return decision
        }
    }

    /// Cells held, live or expired and not yet swept.
    public var count: Int { shards.reduce(0) { total, shard in total + shard.table.withLock { $0.occupied } } }
}
