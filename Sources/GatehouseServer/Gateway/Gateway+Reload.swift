import Atomics
import GatehouseCore
import Logging
import NIOConcurrencyHelpers

/// The outcome of one configuration reload.
public enum ConfigReloadResult: Sendable, Equatable {
    /// The new configuration runs: its policy version and the file's SHA-256.
    case applied(version: String, sha256: String)
    /// The running configuration stays; every problem found, each naming file, line and key.
    case failed([ConfigIssue])

    public var succeeded: Bool {
        if case .applied = self { return true }
        return false
    }
}

/// The configuration that runs, as `GET /config` shows it.
struct RunningConfig: Sendable {
    var config: GatewayConfig
    /// nil when the gateway was started from a config whose file no longer holds it (or
    /// built in code): `/config` then shows the versions and no tree.
    var document: ConfigDocument?
    /// The redacted `GET /config` body, rendered once per swap.
    var json: [UInt8]

    init(config: GatewayConfig, document: ConfigDocument?) {
        self.config = config
        self.document = document
        self.json = ConfigRedaction.json(config: config, text: document?.text, candidateText: document?.candidateText)
    }
}

extension Gateway {
    /// Reads, validates and compiles the configuration file again (with its candidate and
    /// secrets), then swaps it in atomically: requests in flight finish on the snapshot they
    /// started with, new ones get the new one. Anything wrong (including a change to a
    /// section that only a restart applies, see `ConfigCompiler.restartSections`) leaves the
    /// running configuration in place, logs every problem as `FILE:LINE:COL: key: message`
    /// and counts `gatehouse_config_reloads_total{result="failure"}`.
    ///
    /// The work runs on a dedicated thread, one reload at a time; concurrent calls share one.
    public func reloadConfig() async -> ConfigReloadResult {
        await reloadQueue.run { self.reloadConfigNow() }
    }

    /// Reloads done and failed so far (the metric's values).
    public var configReloadCounts: (successes: Int, failures: Int) {
        (reloadMetrics.successes.load(ordering: .relaxed), reloadMetrics.failures.load(ordering: .relaxed))
    }

    private func reloadConfigNow() -> ConfigReloadResult {
        let clock = ContinuousClock()
        let started = clock.now
        let current = snapshots.snapshot
        let path = current.config.sourceFile
        guard !stopping.load(ordering: .sequentiallyConsistent) else {
            return .failed([ConfigIssue(location: .wholeFile(path), keyPath: "", message: "the gateway is shutting down")])
        }
        // Taken before reading, so that a change made while the reload runs is reloaded again.
        let before = configWatcher.map { _ in
            ConfigFileWatcher.fingerprint(Self.watchedFiles(snapshots: snapshots, attemptedFiles: attemptedFiles))
        }
        defer { if let before { configWatcher?.noteAttempted(before) } }
        var loaded: ConfigDocument?
        do throws(ConfigErrors) {
            let document = try ConfigCompiler.load(path: path)
            loaded = document
            let restart = ConfigCompiler.restartRequired(running: current.config, new: document)
            guard restart.isEmpty else { throw ConfigErrors(restart) }
            let snapshot = try ConfigCompiler.compile(
                document.config, trust: trust, tokens: current.tokens, environment: environment, reusing: current,
                rolloutHooks: rolloutHooks)
            apply(snapshot, document: document)
            attemptedFiles.withLockedValue { $0 = [] }
            let config = document.config
            reloadMetrics.recordSuccess()
            logger.info("configuration reloaded", metadata: [
                "file": .string(path), "version": .string(config.policyVersion), "sha256": .string(config.version),
                "previous_version": .string(current.version), "routes": .stringConvertible(config.routes.count),
                "duration_ms": .stringConvertible((clock.now - started).milliseconds),
            ])
            return .applied(version: config.policyVersion, sha256: config.version)
        } catch {
            // A file that parsed but did not compile may name a secret file that does not exist
            // yet: watch its files too, so that creating it reloads.
            if let loaded { attemptedFiles.withLockedValue { $0 = loaded.config.referencedFiles } }
            reloadMetrics.recordFailure()
            logger.error("configuration reload failed; the running configuration stays", metadata: [
                "file": .string(path), "version": .string(current.version), "problems": .stringConvertible(error.issues.count),
            ])
            // One line per problem, in the same form as `gatehouse check`.
            for issue in error.issues { logger.error("\(issue.description)") }
            return .failed(error.issues)
        }
    }

    /// The swap. The snapshot first (new requests use it from now on), then what follows
    /// from it: pools of replaced upstreams retire, the rotation watcher follows the new
    /// upstreams' and minter's files, `/config` and the metric name the new version.
    private func apply(_ snapshot: GatewaySnapshot, document: ConfigDocument) {
        snapshots.replace(with: snapshot)
        pools.adopt(snapshot.clusters)
        tlsWatcher.replaceTargets(Self.materialTargets(listeners: listeners, trust: trust, snapshot: snapshot))
        // Rendered before taking the lock: the admin listener reads it from an event loop.
        let shown = RunningConfig(config: document.config, document: document)
        running.withLockedValue { $0 = shown }
        reloadMetrics.setRunning(version: document.config.policyVersion, sha256: document.config.version)
    }

    /// The watcher over the configuration's own files. Its starting point is what runs: the
    /// loaded file's hash (so a change made between loading and starting is still seen),
    /// unless the file is absent (a config built in code: nothing to reload from).
    static func makeConfigWatcher(
        config: GatewayConfig, interval: Duration, snapshots: SnapshotStore, attemptedFiles: NIOLockedValueBox<[String]>
    ) -> ConfigFileWatcher {
        var baseline = ConfigFileWatcher.fingerprint(config.referencedFiles)
        if baseline[config.sourceFile] != .some(nil) { baseline[config.sourceFile] = config.version }
        if let rollout = config.rollout, baseline[rollout.candidateFile] != .some(nil) {
            baseline[rollout.candidateFile] = rollout.candidate.sha256
        }
        return ConfigFileWatcher(baseline: baseline, interval: interval) {
            watchedFiles(snapshots: snapshots, attemptedFiles: attemptedFiles)
        }
    }

    /// The running configuration's files, and those of the last one that failed to apply.
    static func watchedFiles(snapshots: SnapshotStore, attemptedFiles: NIOLockedValueBox<[String]>) -> [String] {
        let running = snapshots.snapshot.config.referencedFiles
        return running + attemptedFiles.withLockedValue { $0 }.filter { !running.contains($0) }
    }
}

extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
