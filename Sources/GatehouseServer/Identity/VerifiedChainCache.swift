import Crypto
import Foundation
import GatehouseCore

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

    let capacity: Int
    private let entries: ExpiringCache<Key, VerifiedPeer>

    init(capacity: Int = 10_000) {
        self.capacity = capacity
        self.entries = ExpiringCache(capacity: capacity)
    }

    func lookup(_ key: Key, now: Date) -> VerifiedPeer? {
        entries.lookup(key, now: now)
    }

    func insert(_ key: Key, _ peer: VerifiedPeer) {
        entries.insert(key, peer, validUntil: peer.validUntil)
    }

    var count: Int { entries.count }
}
