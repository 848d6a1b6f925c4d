/// A fixed-memory log-linear latency histogram with microsecond resolution.
///
/// Values below 256 µs get one bucket each (exact). Above that, every power of
/// two [2^e, 2^(e+1)) is split into 128 equal sub-buckets, so a bucket is at
/// most 1/128 (0.78 %) of its lower bound wide; quantiles report the bucket's
/// midpoint, which is within 0.4 % of every value the bucket holds. The whole
/// UInt64 range fits in 7,424 counters (58 KiB), allocated once.
///
/// This is the HdrHistogram idea with its parameters fixed, small enough to
/// keep one per connection with no locking, and merged at the end.
struct LatencyHistogram: Sendable, Equatable {
    static let linearLimit: UInt64 = 256           // values < this are exact
    static let subBucketBits = 7                   // 128 sub-buckets per octave
    static let subBuckets = 1 << subBucketBits
    static let firstLogExponent = 8                // log2(linearLimit)
    static let bucketCount = Int(linearLimit) + (64 - firstLogExponent) * subBuckets

    private(set) var counts: [UInt64]
    private(set) var totalCount: UInt64 = 0
    private(set) var minValue: UInt64 = .max
    private(set) var maxValue: UInt64 = 0

    init() {
        self.counts = Array(repeating: 0, count: Self.bucketCount)
    }

    static func index(for value: UInt64) -> Int {
        if value < linearLimit { return Int(value) }
        let exponent = 63 - value.leadingZeroBitCount          // floor(log2(value)) >= 8
        let shift = exponent - subBucketBits
        let sub = Int(value >> UInt64(shift)) - subBuckets      // 0 ..< 128
        return Int(linearLimit) + (exponent - firstLogExponent) * subBuckets + sub
    }

    /// The inclusive value range a bucket covers.
    static func range(of index: Int) -> ClosedRange<UInt64> {
        if index < Int(linearLimit) { return UInt64(index)...UInt64(index) }
        let rel = index - Int(linearLimit)
        let exponent = rel / subBuckets + firstLogExponent
        let sub = UInt64(rel % subBuckets + subBuckets)
        let shift = UInt64(exponent - subBucketBits)
        let low = sub << shift
        let width: UInt64 = 1 << shift
        return low...(low &+ (width - 1))
    }

    mutating func record(_ value: UInt64) {
        counts[Self.index(for: value)] &+= 1
        totalCount &+= 1
        if value < minValue { minValue = value }
        if value > maxValue { maxValue = value }
    }

    mutating func merge(_ other: LatencyHistogram) {
        guard other.totalCount > 0 else { return }
        for i in 0..<counts.count where other.counts[i] != 0 {
            counts[i] &+= other.counts[i]
        }
        totalCount &+= other.totalCount
        minValue = min(minValue, other.minValue)
        maxValue = max(maxValue, other.maxValue)
    }

    /// The value at quantile q (0...1): the midpoint of the bucket holding the
    /// ceil(q * n)-th smallest value, clamped to the observed min and max.
    func value(atQuantile q: Double) -> UInt64 {
        guard totalCount > 0 else { return 0 }
        let clamped = Swift.min(Swift.max(q, 0), 1)
        let rank = Swift.max(UInt64(1), UInt64((clamped * Double(totalCount)).rounded(.up)))
        var seen: UInt64 = 0
        for i in 0..<counts.count where counts[i] != 0 {
            seen &+= counts[i]
            if seen >= rank {
                let r = Self.range(of: i)
                let mid = r.lowerBound + (r.upperBound - r.lowerBound) / 2
                return Swift.min(Swift.max(mid, minValue), maxValue)
            }
        }
        return maxValue
    }
}
