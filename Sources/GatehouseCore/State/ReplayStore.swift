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
}

/// The embedded store: bounded, and when full it refuses new keys rather than evicting live
/// ones (evicting would reopen replay). Expired keys are purged when room is needed.
public final class InMemoryReplayStore: ReplayStore {
    public let capacity: Int
    private let state: Mutex<State>

    private struct State {
        var entries: [String: Date] = [:]
        /// A full purge is O(entries); at most one per second, so a store full of live keys
        /// cannot be made to scan itself on every request.
        var lastPurge = Date.distantPast
    }

    public init(capacity: Int = 100_000) {
        self.capacity = capacity
        self.state = Mutex(State())
    }

    public func insertIfAbsent(_ key: String, expiresAt: Date, now: Date) -> ReplayInsertion {
        state.withLock { state in
            if let expiry = state.entries[key], expiry > now { return .duplicate }
            if state.entries.count >= capacity {
                guard now.timeIntervalSince(state.lastPurge) >= 1 else { return .unavailable }
                state.lastPurge = now
                state.entries = state.entries.filter { $0.value > now }
                if state.entries.count >= capacity { return .unavailable }
            }
            state.entries[key] = expiresAt
            return .inserted
        }
    }

    public var count: Int { state.withLock { $0.entries.count } }
}
