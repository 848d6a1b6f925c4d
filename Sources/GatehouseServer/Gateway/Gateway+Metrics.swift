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
            metrics.onScrape { entries.set(to: Double(memory.replay.count)) }
        }
    }
}
