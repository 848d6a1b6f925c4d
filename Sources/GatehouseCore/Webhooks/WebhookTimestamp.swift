import Foundation

/// A delivery's signed Unix timestamp (Stripe `t=`, `X-Slack-Request-Timestamp`,
/// `webhook-timestamp`, a generic `timestamp_header`).
struct WebhookTimestamp: Equatable {
    /// The text exactly as received: it is what the sender signed.
    let text: Substring
    let seconds: Int64

    /// Digits only, at most 12 (year 33658): no sign, no fraction, no spaces, so that one
    /// instant has one spelling and the number cannot overflow.
    init?(_ text: Substring) {
        guard (1...12).contains(text.utf8.count), text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let seconds = Int64(text)
        else { return nil }
        self.text = text
        self.seconds = seconds
    }

    var date: Date { Date(timeIntervalSince1970: TimeInterval(seconds)) }

    /// Within `tolerance` of `now`, either way, edges included.
    func isFresh(now: Date, tolerance: TimeInterval) -> Bool {
        abs(now.timeIntervalSince1970 - TimeInterval(seconds)) <= tolerance
    }

    /// The replay key must outlive the last instant at which this timestamp is still fresh
    /// (`seconds + tolerance`, inclusive), hence the extra second.
    func replayExpiry(tolerance: TimeInterval) -> Date {
        Date(timeIntervalSince1970: TimeInterval(seconds) + tolerance + 1)
    }
}

extension Duration {
    /// Seconds as a `TimeInterval`, for comparisons with `Date`.
    var timeInterval: TimeInterval {
        TimeInterval(components.seconds) + TimeInterval(components.attoseconds) / 1e18
    }
}
