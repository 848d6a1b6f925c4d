import CoreMetrics
import NIOConcurrencyHelpers
import Prometheus

/// One gateway's metrics: a Prometheus registry, the swift-metrics factory that writes into
/// it, and the values read only when `/metrics` is scraped.
///
/// A fresh instance is not bootstrapped into `MetricsSystem`, so tests can run many gateways
/// in one process and read each one's registry. The executable uses ``bootstrapProcessWide()``.
public final class GatewayMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    /// For components that speak swift-metrics (TLS reloads, JWKS fetches, the Redis store).
    public let factory: any MetricsFactory
    /// Decisions and request durations, on the request path.
    let decisions: DecisionMetrics
    /// Per-check durations, on the request path.
    let checks: CheckDurations
    /// Run before each scrape: values that are cheap to read once but not per request
    /// (the replay store's size locks every shard).
    private let scrapeHooks = NIOLockedValueBox<[@Sendable () -> Void]>([])

    /// The `Content-Type` of ``exposition()``: Prometheus text format 0.0.4.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), maxDecisionSeries: Int = DecisionMetrics.defaultMaxSeries) {
        self.registry = registry
        self.factory = PrometheusMetricsFactory(registry: registry)
        self.decisions = DecisionMetrics(registry: registry, maxSeries: maxDecisionSeries)
        self.checks = CheckDurations(registry: registry)
        // What the event loops hold is counted before anything is read.
        scrapeHooks.withLockedValue { [decisions, checks] in
            $0.append { decisions.applyHeld() }
            $0.append { checks.applyHeld() }
        }
    }

    private static let processWide: GatewayMetrics = {
        let metrics = GatewayMetrics()
        MetricsSystem.bootstrap(metrics.factory)
        return metrics
    }()

    /// The process's metrics, bootstrapped into `MetricsSystem` on first use (which may
    /// happen only once per process): libraries that use swift-metrics' globals land in the
    /// same registry the admin listener serves.
    public static func bootstrapProcessWide() -> GatewayMetrics { processWide }

    func onScrape(_ hook: @escaping @Sendable () -> Void) {
        scrapeHooks.withLockedValue { $0.append(hook) }
    }

    /// Every metric in Prometheus text format.
    public func exposition() -> [UInt8] {
        for hook in scrapeHooks.withLockedValue({ $0 }) { hook() }
        var buffer: [UInt8] = []
        buffer.reserveCapacity(16 * 1024)
        registry.emit(into: &buffer)
        return buffer
    }
}

/// A counter whose value lives elsewhere (an atomic kept by its owner) and is copied into
/// the registry at scrape time, so the owner needs no metrics dependency.
final class MirroredCounter: Sendable {
    private let counter: Prometheus.Counter
    private let exported = NIOLockedValueBox<Int>(0)

    init(_ registry: PrometheusCollectorRegistry, _ descriptor: MetricNameDescriptor, labels: [(String, String)]) {
        self.counter = registry.makeCounter(descriptor: descriptor, labels: labels)
    }

    /// Adds what `value` gained since the last call; a value that went down is ignored.
    func update(to value: Int) {
        exported.withLockedValue { exported in
            guard value > exported else { return }
            counter.increment(by: Int64(value - exported))
            exported = value
        }
    }
}
