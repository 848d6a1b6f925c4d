/// Counts events per key in bounded memory: at most `capacity * 2` keys are held; when that
/// is reached, only the `capacity` largest counts are kept. A key evicted and seen again
/// starts from zero, so counts are exact when fewer than `capacity * 2` distinct keys occur
/// and lower bounds otherwise (`evicted` says how many keys were dropped).
public struct BoundedCounter<Key: Hashable & Comparable>: Sendable where Key: Sendable {
    public let capacity: Int
    public private(set) var counts: [Key: Int] = [:]
    public private(set) var evicted = 0

    public init(capacity: Int) {
        self.capacity = capacity
    }

    public mutating func add(_ key: Key, _ amount: Int = 1) {
        counts[key, default: 0] += amount
        if counts.count >= capacity * 2 {
            let kept = top(capacity)
            evicted += counts.count - kept.count
            counts = Dictionary(uniqueKeysWithValues: kept.map { ($0.key, $0.count) })
        }
    }

    /// The `limit` largest counts, ties by key, so the output is deterministic.
    public func top(_ limit: Int) -> [(key: Key, count: Int)] {
        counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(limit).map { ($0.key, $0.value) }
    }
}
