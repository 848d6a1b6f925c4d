import Atomics
import Prometheus

extension Gateway {
    /// Values kept by their owners as plain atomics or locked tables, copied into the
    /// registry when `/metrics` is scraped rather than on every change.
    static func exportAtScrape(
        _ metrics: GatewayMetrics, decisionLog: DecisionLog, stateStore: any StateStore,
        clusters: @escaping @Sendable () -> [UpstreamCluster]
    ) {
        let upstreams = UpstreamGauges(metrics.registry)
        metrics.onScrape { upstreams.update(clusters()) }
        let records = MetricNameDescriptor(
            metricName: "gatehouse_decision_log_records", unitName: "total",
            helpText: "Decision records written to the log, failed over to stderr, or dropped (queue full).")
        let written = MirroredCounter(metrics.registry, records, labels: [("result", "written")])
        let failedOver = MirroredCounter(metrics.registry, records, labels: [("result", "failed_over")])
        let dropped = MirroredCounter(metrics.registry, records, labels: [("result", "dropped")])
        metrics.onScrape {
            let counters = decisionLog.counters
            written.update(to: counters.written)
            failedOver.update(to: counters.failedOver)
            dropped.update(to: counters.dropped)
        }
        // Only the in-memory store knows its size without a round trip; counting locks every
        // shard, so it is read per scrape, never per request.
        if let memory = stateStore as? InMemoryStateStore {
            let entries = metrics.registry.makeGauge(
                descriptor: MetricNameDescriptor(
                    metricName: "gatehouse_replay_store", unitName: "entries",
                    helpText: "Replay keys (token ids, webhook deliveries) held by the in-memory state store."))
            let operations = MetricNameDescriptor(
                metricName: "gatehouse_state_store_operations", unitName: "total",
                helpText: "Operations on the state store, by backend and operation.")
            let mirrored = [
                (memory.counts.inserts, MirroredCounter(metrics.registry, operations, labels: [("backend", "memory"), ("op", "insert")])),
                (memory.counts.removes, MirroredCounter(metrics.registry, operations, labels: [("backend", "memory"), ("op", "remove")])),
                (memory.counts.rateLimits, MirroredCounter(metrics.registry, operations, labels: [("backend", "memory"), ("op", "rate_limit")])),
                (memory.counts.full, MirroredCounter(
                    metrics.registry,
                    MetricNameDescriptor(
                        metricName: "gatehouse_state_store_errors", unitName: "total",
                        helpText: "State store answers that were not a decision, by backend and kind."),
                    labels: [("backend", "memory"), ("kind", "full")])),
            ]
            metrics.onScrape {
                entries.set(to: Double(memory.replay.count))
                for (atomic, counter) in mirrored { counter.update(to: atomic.load(ordering: .relaxed)) }
            }
        }
    }
}
