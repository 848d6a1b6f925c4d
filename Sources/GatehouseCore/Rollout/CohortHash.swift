import Crypto

/// Puts a caller in or out of a canary: a stable hash of the cohort key, salted with the
/// candidate's version, so one caller always lands on the same side of one rollout (on every
/// instance, across restarts), and each new candidate draws a fresh slice of callers.
public enum CohortHash {
    /// A point in [0, 100) for `key`; the caller is in the canary when it is below `percent`.
    public static func percentile(of key: String, salt: String) -> Double {
        var hasher = SHA256()
        hasher.update(data: Array(salt.utf8))
        hasher.update(data: [0])
        hasher.update(data: Array(key.utf8))
        let digest = hasher.finalize()
        let value = digest.withUnsafeBytes { bytes in
            bytes.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        }
        // 53 bits keep the conversion to Double exact.
        return Double(value >> 11) / Double(UInt64(1) << 53) * 100
    }

    public static func inCanary(_ key: String, salt: String, percent: Double) -> Bool {
        percent > 0 && percentile(of: key, salt: salt) < percent
    }
}
