import Foundation
import Synchronization

/// A bounded map whose entries stop counting at their own expiry: the shared mechanism of
/// the verified-chain and verified-token caches.
///
/// Bounded: at `capacity` the oldest inserted entry goes first. An expired entry is dropped
/// when it is looked up; its slot in the insertion order is skipped at eviction, and the
/// order list is compacted so it never grows past twice the capacity.
public final class ExpiringCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct State {
        var entries: [Key: (value: Value, validUntil: Date)] = [:]
        /// Insertion order, for eviction.
        var order: [Key] = []
        var orderStart = 0
    }

    public let capacity: Int
    private let state = Mutex(State())

    public init(capacity: Int) {
        precondition(capacity > 0, "a cache needs room for one entry")
        self.capacity = capacity
    }

    public func lookup(_ key: Key, now: Date) -> Value? {
        state.withLock { state in
            guard let entry = state.entries[key] else { return nil }
            guard now < entry.validUntil else {
                state.entries[key] = nil  // its slot in `order` is skipped at eviction
                return nil
            }
            return entry.value
        }
    }

    public func insert(_ key: Key, _ value: Value, validUntil: Date) {
        state.withLock { state in
            if state.entries.updateValue((value, validUntil), forKey: key) != nil { return }
            state.order.append(key)
            while state.entries.count > capacity, state.orderStart < state.order.count {
                let oldest = state.order[state.orderStart]
                state.orderStart += 1
                state.entries[oldest] = nil
            }
            // Compact the order list once its consumed head dominates it.
            if state.orderStart > capacity {
                state.order.removeFirst(state.orderStart)
                state.orderStart = 0
            }
            if state.order.count > 2 * capacity {
                state.order = state.order.filter { state.entries[$0] != nil }
                state.orderStart = 0
            }
        }
    }

    public var count: Int { state.withLock { $0.entries.count } }
}
