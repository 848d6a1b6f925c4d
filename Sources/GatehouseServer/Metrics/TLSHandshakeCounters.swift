import GatehouseCore
import Prometheus

/// `gatehouse_tls_handshakes_total{listener, result}`: `ok`, or the refusal's reason code
/// (`tls.untrusted_chain`, ...). Made up front per listener from the closed set of `tls.*`
/// reasons, so a handshake costs one atomic add.
final class TLSHandshakeCounters: Sendable {
    private let completed: Prometheus.Counter
    private let refused: [ReasonCode: Prometheus.Counter]

    init(registry: PrometheusCollectorRegistry, listener: String) {
        let descriptor = MetricNameDescriptor(
            metricName: "gatehouse_tls_handshakes", unitName: "total",
            helpText: "TLS handshakes on client listeners, by listener and result (ok, or the refusal's reason).")
        completed = registry.makeCounter(descriptor: descriptor, labels: [("listener", listener), ("result", "ok")])
        var refused: [ReasonCode: Prometheus.Counter] = [:]
        for reason in ReasonCode.allCases where reason.rawValue.hasPrefix("tls.") {
            refused[reason] = registry.makeCounter(descriptor: descriptor, labels: [("listener", listener), ("result", reason.rawValue)])
        }
        self.refused = refused
    }

    func recordCompleted() { completed.increment() }

    func recordRefused(_ reason: ReasonCode) { refused[reason]?.increment() }
}
