import GatehouseCore
import NIOCore
import Prometheus

/// `gatehouse_check_duration_seconds{check}`: how long each kind of check takes — the peer
/// and token checks on the event loop, the state store's answer for a rate limit, a webhook
/// signature's verification. A closed set of four histograms made up front: observing costs
/// one histogram update, no lookup.
final class CheckDurations: Sendable {
    /// Seconds: a peer check (well under a microsecond) to a slow state store (50 ms
    /// timeout) or a large webhook body.
    static let buckets: [Double] = [
        0.000_001, 0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 1,
    ]

    private let peers: ValueHistogram
    private let token: ValueHistogram
    private let rateLimit: ValueHistogram
    private let webhook: ValueHistogram

    init(registry: PrometheusCollectorRegistry) {
        let descriptor = MetricNameDescriptor(
            metricName: "gatehouse_check_duration", unitName: "seconds",
            helpText: "Time each check takes, by check (peers, token, rate_limit, webhook).")
        func histogram(_ check: RouteCheck) -> ValueHistogram {
            registry.makeValueHistogram(descriptor: descriptor, labels: [("check", check.rawValue)], buckets: Self.buckets)
        }
        peers = histogram(.peers)
        token = histogram(.token)
        rateLimit = histogram(.rateLimit)
        webhook = histogram(.webhook)
    }

    func observe(_ check: RouteCheck, since start: NIODeadline) {
        let seconds = Double((NIODeadline.now() - start).nanoseconds) / 1e9
        switch check {
        case .peers: peers.record(seconds)
        case .token: token.record(seconds)
        case .rateLimit: rateLimit.record(seconds)
        case .webhook: webhook.record(seconds)
        }
    }
}
