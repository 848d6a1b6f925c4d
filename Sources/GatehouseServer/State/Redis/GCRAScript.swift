import Crypto
import GatehouseCore

/// `GCRA.evaluate` as one Lua script, so a rate check is one atomic round trip and every
/// gateway instance uses the Redis server's clock.
///
/// Lua numbers are doubles: the arithmetic is on integer microseconds (now ≈ 1.8e15 µs, far
/// below 2^53, so exact), and numbers are written with `%.0f` because Lua's `tostring`
/// keeps only 14 significant digits. Keep in step with `GCRA.evaluate`.
enum GCRAScript {
    /// KEYS[1]: the cell. ARGV[1]: emission interval T (µs). ARGV[2]: tolerance τ (µs).
    /// Returns {allowed (0/1), remaining, retry_after (µs), reset_after (µs)}.
    static let source = """
        local interval = tonumber(ARGV[1])
        local tolerance = tonumber(ARGV[2])
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
        local current = now
        local stored = tonumber(redis.call('GET', KEYS[1]) or '')
        if stored and stored > now then current = stored end
        local nxt = current + interval
        local allow_at = nxt - tolerance - interval
        if now < allow_at then
          return {0, 0, allow_at - now, current - now}
        end
        local remaining = math.floor((tolerance - (nxt - now) + interval) / interval)
        if remaining < 0 then remaining = 0 end
        local ttl = math.max(1, math.ceil((nxt - now) / 1000))
        redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', string.format('%.0f', ttl))
        return {1, remaining, 0, nxt - now}
        """

    /// What `EVALSHA` names the script by: its SHA-1, lower-case hex.
    static let sha1: String = Insecure.SHA1.hash(data: Array(source.utf8)).map { byte in
        let hex = String(byte, radix: 16)
        return byte < 16 ? "0" + hex : hex
    }.joined()

    /// The script's arguments for `policy`: T and τ in whole microseconds (T at least 1 µs).
    static func arguments(for policy: RatePolicy) -> (intervalMicros: Int64, toleranceMicros: Int64) {
        let interval = max(1, policy.emissionIntervalNanos / 1000)
        return (interval, interval * Int64(policy.burst - 1))
    }

    /// The script's reply as a decision (µs back to ns).
    static func decision(from reply: RESPValue) -> RateDecision? {
        guard case .array(let values?) = reply, values.count == 4 else { return nil }
        var numbers: [Int64] = []
        for value in values {
            guard case .integer(let number) = value else { return nil }
            numbers.append(number)
        }
        guard numbers[0] == 0 || numbers[0] == 1 else { return nil }
        return RateDecision(
            allowed: numbers[0] == 1,
            remaining: Int(numbers[1]),
            retryAfterNanos: numbers[2] * 1000,
            resetAfterNanos: numbers[3] * 1000
        )
    }
}
