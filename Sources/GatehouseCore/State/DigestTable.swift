import Crypto
import Foundation

/// The in-memory stores' table: 128-bit digests of keys, each with an expiry and a small
/// value, in one flat, open-addressed (linear-probing) array allocated once.
///
/// Why not a `[String: Date]`: at a million entries a dictionary of strings costs well over
/// 100 bytes per entry (string storage, hashing metadata, a power-of-two table), and purging
/// it is one O(n) pass that stalls the event loop calling it. Here a replay entry is 24
/// bytes (a rate cell 32); the table has `capacity / 0.75` slots, and expired entries are
/// removed a few slots at a time by a sweep that every insert advances, so no call does more
/// than a bounded amount of work. An entry is never removed before it expires (evicting a
/// live replay key would reopen replay; a live rate cell, reset a limit): when the table is
/// full of live entries, new keys are refused and the caller decides (fail closed or open).
///
/// Keys are hashed with SHA-256 under a per-process random salt: callers (a token's `jti`, a
/// webhook's delivery id, a rate-limit key) cannot aim entries at one probe chain. Two keys
/// sharing a 128-bit digest would be taken for one; at 2^-128 per pair that never happens.
struct DigestTable<Value: BitwiseCopyable>: ~Copyable {
    struct Slot {
        var high: UInt64
        var low: UInt64
        /// Seconds since `epoch`, rounded up; 0 marks an empty slot.
        var expiry: UInt32
        var value: Value
    }

    struct Digest {
        var high: UInt64
        var low: UInt64
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
    static var sweepStep: Int { 4 }
    static var sweepWhenFull: Int { 4096 }

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

    func digest(_ key: String) -> Digest {
        var hasher = SHA256()
        hasher.update(data: salt)
        var key = key
        key.withUTF8 { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        return hasher.finalize().withUnsafeBytes { bytes in
            Digest(high: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self), low: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        }
    }

    /// The store's clock for `date`: whole seconds since the epoch, rounded down (now) or up
    /// (an expiry, so an entry is never dropped early). Never 0, which marks an empty slot.
    func seconds(_ date: Date, roundingUp: Bool) -> UInt32 {
        let offset = date.timeIntervalSince(epoch)
        let rounded = roundingUp ? offset.rounded(.up) : offset.rounded(.down)
        return UInt32(clamping: Int64(max(1, min(rounded, Double(UInt32.max)))))
    }

    enum Lookup {
        /// The key's slot, and whether its entry has expired (then it is as good as absent).
        case found(Int, expired: Bool)
        /// A free slot for the key (an empty one, or an expired entry of another key).
        case vacant(Int)
        /// The table is full of live entries.
        case full
    }

    /// Finds `digest`, or a slot to put it in. Advances the sweep first.
    mutating func lookup(_ digest: Digest, now: UInt32) -> Lookup {
        sweep(Self.sweepStep, now: now)
        var index = home(digest.high)
        var reusable: Int?
        while slots[index].expiry != 0 {
            if slots[index].high == digest.high && slots[index].low == digest.low {
                return .found(index, expired: slots[index].expiry <= now)
            }
            if reusable == nil && slots[index].expiry <= now { reusable = index }
            index = next(index)
        }
        if let reusable { return .vacant(reusable) }
        if occupied >= capacity {
            sweep(Self.sweepWhenFull, now: now)
            guard occupied < capacity else { return .full }
            // The sweep may have shifted entries into this chain: find the free slot again.
            index = home(digest.high)
            while slots[index].expiry != 0 { index = next(index) }
        }
        return .vacant(index)
    }

    /// Stores an entry at a slot `lookup` returned.
    mutating func store(_ digest: Digest, at index: Int, expiry: UInt32, value: Value) {
        if slots[index].expiry == 0 { occupied += 1 }
        slots[index] = Slot(high: digest.high, low: digest.low, expiry: expiry, value: value)
    }

    func value(at index: Int) -> Value { slots[index].value }

    /// Forgets `digest`'s entry, if any.
    mutating func remove(_ digest: Digest) {
        var index = home(digest.high)
        while slots[index].expiry != 0 {
            if slots[index].high == digest.high && slots[index].low == digest.low {
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
                // Backward shift may move a later entry here: look at this slot again.
                remove(at: index)
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
        slots[hole].expiry = 0
        slots[hole].high = 0
        slots[hole].low = 0
        occupied -= 1
    }

    private func home(_ high: UInt64) -> Int {
        // Lemire's multiply-shift: a uniform index into a table of any size, without modulo.
        Int(high.multipliedFullWidth(by: UInt64(slots.count)).high)
    }

    private func next(_ index: Int) -> Int {
        index + 1 == slots.count ? 0 : index + 1
    }
}

extension DigestTable where Value == Void {
    /// Replay: the key once, until it expires.
    mutating func insertIfAbsent(_ key: String, expiresAt: Date, now: Date) -> ReplayInsertion {
        let digest = digest(key)
        let nowSeconds = seconds(now, roundingUp: false)
        let expiry = max(seconds(expiresAt, roundingUp: true), nowSeconds + 1)
        switch lookup(digest, now: nowSeconds) {
        case .found(_, expired: false): return .duplicate
        case .found(let index, expired: true), .vacant(let index):
            store(digest, at: index, expiry: expiry, value: ())
            return .inserted
        case .full:
            // Full of live keys: refuse rather than evict one (evicting would reopen replay).
            return .unavailable
        }
    }
}
