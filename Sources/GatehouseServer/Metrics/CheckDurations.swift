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
        record(Observation(check, since: start))
    }

    /// One check's duration, held on its event loop (``LoopObservations``) until applied.
    struct Observation: Sendable {
        let check: RouteCheck
        let seconds: Double

        /// The check that started at `start` and ends now.
        init(_ check: RouteCheck, since start: NIODeadline) {
            self.check = check
            self.seconds = Double((NIODeadline.now() - start).nanoseconds) / 1e9
        }
    }

    /// Observations per event loop: applied 256 at a time, and before every scrape.
    private let held = LoopObservationSet<Observation>(capacity: 256)

    /// A connection's way to observe on its event loop's buffer.
    struct Recorder {
        let durations: CheckDurations
        let held: LoopObservations<Observation>

        func observe(_ check: RouteCheck, since start: NIODeadline) {
            if let burst = held.add(Observation(check, since: start)) { durations.apply(burst) }
        }
    }

    func recorder(for eventLoop: any EventLoop) -> Recorder {
        Recorder(durations: self, held: held.observations(for: eventLoop))
    }

    /// Observes what every event loop holds (before a scrape).
    func applyHeld() {
        apply(held.takeAll())
    }

    private func apply(_ burst: [Observation]) {
        for observation in burst { record(observation) }
    }

    private func record(_ observation: Observation) {
        switch observation.check {
        case .peers: peers.record(observation.seconds)
        case .token: token.record(observation.seconds)
        case .rateLimit: rateLimit.record(observation.seconds)
        case .webhook: webhook.record(observation.seconds)
        }
    }
}
