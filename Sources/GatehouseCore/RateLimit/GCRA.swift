/// A rate: `count` requests per `period`, with `burst` admitted at once after idleness.
public struct RatePolicy: Sendable, Hashable {
    public var count: Int
    public var period: Duration
    /// Requests a caller that has been idle may send at once (at least 1).
    public var burst: Int

    public init(count: Int, period: Duration, burst: Int) {
        precondition(count > 0 && burst > 0 && period > .zero)
        self.count = count
        self.period = period
        self.burst = burst
    }

    /// T: the time one request "costs", in nanoseconds.
    public var emissionIntervalNanos: Int64 {
        let nanos = period.components.seconds * 1_000_000_000 + period.components.attoseconds / 1_000_000_000
        return max(1, nanos / Int64(count))
    }

    /// τ: how far ahead of now the theoretical arrival time may run: `(burst - 1) × T`.
    public var toleranceNanos: Int64 {
        emissionIntervalNanos * Int64(burst - 1)
    }
}

/// What the limiter decided for one request.
public struct RateDecision: Sendable, Equatable {
    public var allowed: Bool
    /// Requests that could still be sent right now (after this one, if allowed).
    public var remaining: Int
    /// When refused: how long until one request would be admitted (for `Retry-After`).
    public var retryAfterNanos: Int64
    /// Until the caller is back to a full burst (the `t` of the `RateLimit` header).
    public var resetAfterNanos: Int64

    public init(allowed: Bool, remaining: Int, retryAfterNanos: Int64, resetAfterNanos: Int64) {
        self.allowed = allowed
        self.remaining = remaining
        self.retryAfterNanos = retryAfterNanos
        self.resetAfterNanos = resetAfterNanos
    }
}

/// The generic cell rate algorithm: one number per key, the theoretical arrival time (TAT) of
/// the next request. A request at `now` is admitted when `TAT - now <= τ`, and then moves TAT
/// to `max(TAT, now) + T`. Exact (no window boundary lets twice the rate through) and O(1).
///
/// The same arithmetic runs as a Lua script in Redis (`RedisStateStore`); keep them in step.
public enum GCRA {
    /// - Parameters:
    ///   - tat: the key's stored TAT (nanoseconds on the store's clock); nil for a new key.
    ///   - now: the store's clock, nanoseconds.
    /// - Returns: the decision and the TAT to store (unchanged when refused).
    public static func evaluate(tat: Int64?, now: Int64, policy: RatePolicy) -> (decision: RateDecision, newTAT: Int64) {
        let interval = policy.emissionIntervalNanos
        let tolerance = policy.toleranceNanos
        let current = max(tat ?? now, now)
        let next = current + interval
        let allowAt = next - tolerance - interval  // the earliest `now` at which this request fits
        if now < allowAt {
            // TAT - now > τ: over the limit. Nothing changes; come back at `allowAt`.
            return (RateDecision(allowed: false, remaining: 0, retryAfterNanos: allowAt - now, resetAfterNanos: current - now), tat ?? now)
        }
        let remaining = Int((tolerance - (next - now) + interval) / interval)
        return (RateDecision(allowed: true, remaining: max(0, remaining), retryAfterNanos: 0, resetAfterNanos: next - now), next)
    }

    /// How long a stored TAT matters: once `now` passes it, the key is as good as new, so a
    /// cell may be dropped (and a Redis key may expire) after this.
    public static func expiry(of tat: Int64) -> Int64 { tat }
}
