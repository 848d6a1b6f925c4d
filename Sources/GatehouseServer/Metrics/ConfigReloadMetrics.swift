import Atomics
import NIOConcurrencyHelpers
import Prometheus

/// `gatehouse_config_reloads_total{result="success"|"failure"}` and
/// `gatehouse_config_info{version, sha256} 1`, which names the running policy (one series:
/// the previous one is removed when a reload swaps the policy).
final class ConfigReloadMetrics: Sendable {
    private let registry: PrometheusCollectorRegistry
    private let successCounter: Counter
    private let failureCounter: Counter
    private let info = NIOLockedValueBox<Gauge?>(nil)
    /// The counters' values, readable in-process (tests, logs).
    let successes = ManagedAtomic(0)
    let failures = ManagedAtomic(0)

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        let name = "gatehouse_config_reloads_total"
        let help = "Configuration reloads by result; a failure leaves the running configuration in place."
        successCounter = registry.makeCounter(name: name, labels: [("result", "success")], help: help)
        failureCounter = registry.makeCounter(name: name, labels: [("result", "failure")], help: help)
    }

    func recordSuccess() {
        successes.wrappingIncrement(ordering: .relaxed)
        successCounter.increment()
    }

    func recordFailure() {
        failures.wrappingIncrement(ordering: .relaxed)
        failureCounter.increment()
    }

    /// Names the running policy: its version and the first 12 hex digits of its file's SHA-256.
    func setRunning(version: String, sha256: String) {
        info.withLockedValue { gauge in
            if let gauge { registry.unregisterGauge(gauge) }
            let next = registry.makeGauge(
                name: "gatehouse_config_info", labels: [("version", version), ("sha256", String(sha256.prefix(12)))],
                help: "The running configuration: its policy version and file hash.")
            next.set(to: 1.0)
            gauge = next
        }
    }
}
