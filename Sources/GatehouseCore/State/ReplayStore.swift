import Foundation
import Synchronization

/// What a replay check learns from the state store.
public enum ReplayInsertion: Sendable, Equatable {
    /// First time this key is seen: remembered until it expires.
    case inserted
    /// Seen before and not yet expired: a replay.
    case duplicate
    /// The store cannot remember it (full). Never treated as "allow".
    case unavailable
}

/// Insert-if-absent with an expiry: the replay half of the state-store protocol of
/// ARCHITECTURE.md. The Redis backend (shared by several instances) comes with the
/// rate-limit issue and will need an asynchronous variant.
public protocol ReplayStore: Sendable {
    func insertIfAbsent(_ key: String, expiresAt: Date, now: Date) -> ReplayInsertion
    /// Forgets a key this caller inserted, e.g. for a delivery the upstream never processed.
    func remove(_ key: String)
}

/// The embedded store: bounded, and when full it refuses new keys rather than evicting live
/// ones (evicting would reopen replay). Expired keys are swept a few at a time as keys are
/// inserted (see `DigestTable`): about 32 bytes per entry at capacity, no O(n) pauses.
public final class InMemoryReplayStore: ReplayStore {
    public let capacity: Int
    private let table: Mutex<DigestTable<Void>>

    public init(capacity: Int = 100_000, now: Date = Date()) {
        self.capacity = capacity
        self.table = Mutex(DigestTable<Void>(capacity: capacity, now: now))
    }

    public func insertIfAbsent(_ key: String, expiresAt: Date, now: Date) -> ReplayInsertion {
        table.withLock { $0.insertIfAbsent(key, expiresAt: expiresAt, now: now) }
    }

    public func remove(_ key: String) {
        table.withLock { $0.remove($0.digest(key)) }
    }

    /// Entries held, live or expired and not yet swept.
    public var count: Int { table.withLock { $0.occupied } }

    /// The table's allocation (reserved up front; pages become resident as they are used).
    public var allocatedBytes: Int { table.withLock { $0.allocatedBytes } }
}
