import Logging
import NIOConcurrencyHelpers
import NIOCore

/// A log line for a problem that can recur on every request (an upstream presenting the
/// wrong identity): at most one line per `interval`, saying how many were left out.
final class RateLimitedLog: Sendable {
    private let interval: TimeAmount
    private let state = NIOLockedValueBox<(last: NIODeadline?, suppressed: Int)>((nil, 0))

    init(interval: TimeAmount = .seconds(10)) {
        self.interval = interval
    }

    func warning(_ logger: Logger, _ message: @autoclosure () -> Logger.Message, metadata: Logger.Metadata) {
        let now = NIODeadline.now()
        let suppressed: Int? = state.withLockedValue { state in
            if let last = state.last, now - last < interval {
                state.suppressed += 1
                return nil
            }
            defer { state = (now, 0) }
            return state.suppressed
        }
        guard let suppressed else { return }
        var metadata = metadata
        if suppressed > 0 { metadata["suppressed_since_last"] = .stringConvertible(suppressed) }
        logger.warning(message(), metadata: metadata)
    }
}
