import Crypto
import Foundation

/// The in-memory replay store's table: 128-bit digests of replay keys, each with an expiry,
/// in one flat, open-addressed (linear-probing) array allocated once.
///
/// Why not a `[String: Date]`: at a million entries a dictionary of strings costs well over
/// 100 bytes per entry (string storage, hashing metadata, a power-of-two table), and purging
/// it is one O(n) pass that stalls the event loop calling it. Here an entry is 24 bytes; the
/// table has `capacity / 0.75` slots (32 bytes per entry at capacity), and expired entries are
/// removed a few slots at a time by a sweep that every insert advances, so no call does more
/// than a bounded amount of work.
///
/// Keys are hashed with SHA-256 under a per-process random salt: callers (a token's `jti`, a
/// webhook's delivery id) cannot aim entries at one probe chain. Two keys sharing a 128-bit
/// digest would be taken for one (a false "replay"); at 2^-128 per pair that never happens.
struct ReplayKeyTable: ~Copyable {
    private struct Slot {
        var high: UInt64
        var low: UInt64
        /// Seconds since `epoch`, rounded up; 0 marks an empty slot.
        var expiry: UInt32
    }

    /// Live or not-yet-swept entries at most; beyond it inserts are refused.
    let capacity: Int
    private let slots: UnsafeMutableBufferPointer<Slot>
    private let salt: [UInt8]
    private let epoch: Date
    /// Occupied slots (live, or expired and not yet swept).
    private(set) var occupied = 0
    private var sweepCursor = 0

    /// Slots examined by the sweep on every insert, and at most when the table is full.
    static let sweepStep = 4
    static let sweepWhenFull = 4096

    init(capacity: Int, now: Date = Date()) {
        precondition(capacity > 0)
        self.capacity = capacity
        let slotCount = max(8, Int((Double(capacity) / 0.75).rounded(.up)))
        // calloc: zeroed (all empty) without touching the pages; they become resident as used.
        let raw = calloc(slotCount, MemoryLayout<Slot>.stride)!
        self.slots = UnsafeMutableBufferPointer(start: raw.bindMemory(to: Slot.self, capacity: slotCount), count: slotCount)
        var salt = [UInt8](repeating: 0, count: 16)
        var generator = SystemRandomNumberGenerator()
        for index in salt.indices { salt[index] = generator.next() }
        self.salt = salt
        // On a whole second (so whole-second expiries, e.g. a token's `exp`, are exact), with a
        // margin before `now` so that expiries slightly in the past still fit.
        self.epoch = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down) - 60)
    }

    deinit {
        free(slots.baseAddress)
    }

    /// Bytes of the table itself, for figures: slots times their stride.
    var allocatedBytes: Int { slots.count * MemoryLayout<Slot>.stride }

    mutating func insertIfAbsent(_ key: String, expiresAt: Date, now: Date) -> ReplayInsertion {
        let (high, low) = digest(key)
        let nowSeconds = seconds(now, roundingUp: false)
        let expiry = max(seconds(expiresAt, roundingUp: true), nowSeconds + 1)
        sweep(Self.sweepStep, now: nowSeconds)

        var index = home(high)
        var reusable: Int?
        while slots[index].expiry != 0 {
            if slots[index].high == high && slots[index].low == low {
                if slots[index].expiry > nowSeconds { return .duplicate }
                slots[index].expiry = expiry  // the same key, expired: a new delivery
                return .inserted
            }
            if reusable == nil && slots[index].expiry <= nowSeconds { reusable = index }
            index = next(index)
        }
        if let reusable {
            // Replaces an expired entry: the count does not change.
            slots[reusable] = Slot(high: high, low: low, expiry: expiry)
            return .inserted
        }
        if occupied >= capacity {
            sweep(Self.sweepWhenFull, now: nowSeconds)
            // Full of live keys: refuse rather than evict one (evicting would reopen replay).
            guard occupied < capacity else { return .unavailable }
            // The sweep may have shifted entries into this chain: find the free slot again.
            index = home(high)
            while slots[index].expiry != 0 { index = next(index) }
        }
        slots[index] = Slot(high: high, low: low, expiry: expiry)
        occupied += 1
        return .inserted
    }

    /// Forgets `key` (a delivery the upstream never processed may be retried by its sender).
    mutating func remove(_ key: String) {
        let (high, low) = digest(key)
        var index = home(high)
        while slots[index].expiry != 0 {
            if slots[index].high == high && slots[index].low == low {
                remove(at: index)
                return
            }
            index = next(index)
        }
    }

    /// Removes expired entries from the next `count` slots.
    private mutating func sweep(_ count: Int, now: UInt32) {
        for _ in 0..<min(count, slots.count) {
            let index = sweepCursor
            if slots[index].expiry != 0 && slots[index].expiry <= now {
                remove(at: index)
                // Backward shift may have moved a later entry here: look at it next time round.
            } else {
                sweepCursor = next(index)
            }
        }
    }

    /// Linear-probing deletion without tombstones (Knuth 6.4, algorithm R): entries after the
    /// hole that would no longer be reachable from their home slot move back into it.
    private mutating func remove(at start: Int) {
        var hole = start
        var index = next(hole)
        while slots[index].expiry != 0 {
            let home = self.home(slots[index].high)
            // Movable when its home is not cyclically within (hole, index].
            let reachable = hole <= index ? (home > hole && home <= index) : (home > hole || home <= index)
            if !reachable {
                slots[hole] = slots[index]
                hole = index
            }
            index = next(index)
        }
        slots[hole] = Slot(high: 0, low: 0, expiry: 0)
        occupied -= 1
    }

    private func home(_ high: UInt64) -> Int {
        // Lemire's multiply-shift: a uniform index into a table of any size, without modulo.
        Int(high.multipliedFullWidth(by: UInt64(slots.count)).high)
    }

    private func next(_ index: Int) -> Int {
        index + 1 == slots.count ? 0 : index + 1
    }

    private func digest(_ key: String) -> (UInt64, UInt64) {
        var hasher = SHA256()
        hasher.update(data: salt)
        var key = key
        key.withUTF8 { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        return hasher.finalize().withUnsafeBytes { bytes in
            (bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self), bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        }
    }

    private func seconds(_ date: Date, roundingUp: Bool) -> UInt32 {
        let offset = date.timeIntervalSince(epoch)
        let rounded = roundingUp ? offset.rounded(.up) : offset.rounded(.down)
        return UInt32(clamping: Int64(max(1, min(rounded, Double(UInt32.max)))))
    }
}
