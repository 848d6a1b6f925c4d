import Crypto
import Foundation
import NIOConcurrencyHelpers

/// Chains that verified recently, so a workload that reconnects with the same SVID does not
/// pay for parsing and an ECDSA check (about 60 µs) on every handshake.
///
/// Only successes are kept (a flood of bad certificates cannot fill it with entries that
/// matter), each until the earliest `notAfter` of its verified chain. One cache belongs to
/// one set of trust bundles: when a bundle changes, the store starts a new cache, so a
/// verdict never outlives the roots it was reached with. Bounded: at `capacity` the oldest
/// entry goes first.
final class VerifiedChainCache: Sendable {
    /// SHA-256 over the presented chain (each certificate's length, then its DER).
    struct Key: Hashable, Sendable {
        let digest: SHA256.Digest

        init(chainDER: [[UInt8]]) {
            var hasher = SHA256()
            for der in chainDER {
                withUnsafeBytes(of: UInt32(der.count).bigEndian) { hasher.update(bufferPointer: $0) }
                hasher.update(data: der)
            }
            self.digest = hasher.finalize()
        }
    }

    private struct State {
        var entries: [Key: VerifiedPeer] = [:]
        /// Insertion order, for eviction.
        var order: [Key] = []
        var orderStart = 0
    }

    let capacity: Int
    private let state = NIOLockedValueBox(State())

    init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    func lookup(_ key: Key, now: Date) -> VerifiedPeer? {
        state.withLockedValue { state in
            guard let peer = state.entries[key] else { return nil }
            guard now < peer.validUntil else {
                state.entries[key] = nil  // its slot in `order` is skipped at eviction
                return nil
            }
            return peer
        }
    }

    func insert(_ key: Key, _ peer: VerifiedPeer) {
        state.withLockedValue { state in
            if state.entries.updateValue(peer, forKey: key) != nil { return }
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

    var count: Int { state.withLockedValue { $0.entries.count } }
}
