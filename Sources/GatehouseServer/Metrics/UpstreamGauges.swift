import Atomics
import NIOConcurrencyHelpers
import Prometheus

/// Per upstream, read at scrape time from the pools' shared counts:
/// `gatehouse_upstream_connections{upstream, state=open|idle}` and
/// `gatehouse_upstream_ejections_total{upstream}`. A reload makes new clusters (with counts
/// from zero); the ejection counter adds what each cluster gained, so it never goes down.
final class UpstreamGauges: Sendable {
    private struct Exported {
        var open: Prometheus.Gauge
        var idle: Prometheus.Gauge
        var ejections: Prometheus.Counter
    }

    private struct State {
        var byName: [String: Exported] = [:]
        /// Ejections already exported, per cluster object.
        var ejectionsSeen: [ObjectIdentifier: Int] = [:]
    }

    private let registry: PrometheusCollectorRegistry
    private let state = NIOLockedValueBox(State())

    init(_ registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    func update(_ clusters: [UpstreamCluster]) {
        state.withLockedValue { state in
            for cluster in clusters {
                let exported = state.byName[cluster.name] ?? makeExported(cluster.name)
                state.byName[cluster.name] = exported
                exported.open.set(to: Double(cluster.counts.open.load(ordering: .relaxed)))
                exported.idle.set(to: Double(cluster.counts.idle.load(ordering: .relaxed)))
                let ejections = cluster.counts.ejections.load(ordering: .relaxed)
                let seen = state.ejectionsSeen[ObjectIdentifier(cluster)] ?? 0
                if ejections > seen { exported.ejections.increment(by: Int64(ejections - seen)) }
                state.ejectionsSeen[ObjectIdentifier(cluster)] = ejections
            }
            // Forget clusters no longer running (a bounded map).
            let live = Set(clusters.map { ObjectIdentifier($0) })
            state.ejectionsSeen = state.ejectionsSeen.filter { live.contains($0.key) }
        }
    }

    private func makeExported(_ name: String) -> Exported {
        let connections = MetricNameDescriptor(
            metricName: "gatehouse_upstream_connections",
            helpText: "Connections to the upstream across all event loops, open (in use or idle) and idle.")
        let ejections = MetricNameDescriptor(
            metricName: "gatehouse_upstream_ejections", unitName: "total",
            helpText: "Endpoints taken out of rotation after consecutive connect failures.")
        return Exported(
            open: registry.makeGauge(descriptor: connections, labels: [("upstream", name), ("state", "open")]),
            idle: registry.makeGauge(descriptor: connections, labels: [("upstream", name), ("state", "idle")]),
            ejections: registry.makeCounter(descriptor: ejections, labels: [("upstream", name)]))
    }
}
