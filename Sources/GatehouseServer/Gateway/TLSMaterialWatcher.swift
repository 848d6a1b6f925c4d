import Atomics
import Logging
import Metrics
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#endif

/// Re-reads certificates, keys, trust bundles and token issuers' key sets when their files
/// change, so short-lived SVIDs written by spiffe-helper or cert-manager, and an issuer's new
/// signing key, take effect without a restart.
///
/// It polls `stat` (mtime, size, inode) once per `interval`: cheap for a handful of files,
/// and it sees atomic renames and Kubernetes' symlink swaps that inotify watches on the old
/// inode would miss. A file that fails to load is logged and counted, and the last good
/// material stays in use; it is retried when the file changes again.
final class TLSMaterialWatcher: Sendable {
    struct Target: Sendable {
        /// For logs and the metric, e.g. `listener public`.
        let name: String
        let files: [String]
        let reload: @Sendable () async throws -> Void
    }

    private struct Stamp: Equatable {
        var modified: timespec
        var size: Int
        var inode: UInt
        var device: UInt

        static func == (a: Stamp, b: Stamp) -> Bool {
            a.modified.tv_sec == b.modified.tv_sec && a.modified.tv_nsec == b.modified.tv_nsec
                && a.size == b.size && a.inode == b.inode && a.device == b.device
        }
    }

    /// Replaced when a configuration reload brings new upstreams or a new minting key.
    private let targets: NIOLockedValueBox<[Target]>
    private let logger: Logger
    private let interval: Duration
    private let stamps: NIOLockedValueBox<[String: Stamp?]>
    private let failureCounter: Counter
    private let reloadCounter: Counter
    /// Reloads that failed (the metric's value, readable in-process).
    let failures = ManagedAtomic(0)
    let reloads = ManagedAtomic(0)

    init(targets: [Target], logger: Logger, interval: Duration = .seconds(1), metricsFactory: any MetricsFactory = NOOPMetricsHandler.instance) {
        self.failureCounter = Counter(label: "gatehouse_tls_reload_failures_total", factory: metricsFactory)
        self.reloadCounter = Counter(label: "gatehouse_tls_reloads_total", factory: metricsFactory)
        self.targets = NIOLockedValueBox(targets)
        self.logger = logger
        self.interval = interval
        var initial: [String: Stamp?] = [:]
        for file in targets.flatMap(\.files) { initial[file] = Self.stamp(file) }
        self.stamps = NIOLockedValueBox(initial)
    }

    var isEmpty: Bool { targets.withLockedValue { $0.isEmpty } }

    /// Watches `targets` from now on (after a configuration reload). A file watched before
    /// keeps its last stamp, so a change not yet picked up still is; a new file starts from
    /// its current state (the reload that brought it has just read it).
    func replaceTargets(_ newTargets: [Target]) {
        let files = Set(newTargets.flatMap(\.files))
        stamps.withLockedValue { stamps in
            stamps = stamps.filter { files.contains($0.key) }
            // `updateValue`: a file missing now is kept with a nil stamp, so its appearance is seen.
            for file in files where stamps[file] == nil { stamps.updateValue(Self.stamp(file), forKey: file) }
        }
        targets.withLockedValue { $0 = newTargets }
    }

    /// Polls until the task is cancelled.
    func run() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            if Task.isCancelled { return }
            await check(force: false)
        }
    }

    /// Reloads every target whose files changed since the last look (all of them when `force`, e.g. on SIGHUP).
    func check(force: Bool) async {
        let changed: [String] = stamps.withLockedValue { stamps in
            var changed: [String] = []
            for file in stamps.keys {
                let now = Self.stamp(file)
                if now != stamps[file]! {
                    stamps[file] = now
                    changed.append(file)
                }
            }
            return changed
        }
        for target in targets.withLockedValue({ $0 }) where force || target.files.contains(where: changed.contains) {
            do {
                try await target.reload()
                reloads.wrappingIncrement(ordering: .relaxed)
                reloadCounter.increment()
                logger.info("reloaded", metadata: ["target": .string(target.name)])
            } catch {
                failures.wrappingIncrement(ordering: .relaxed)
                failureCounter.increment()
                logger.error(
                    "reload failed; the last good certificates, keys, bundles or key sets stay in use",
                    metadata: ["target": .string(target.name), "error": .string("\(error)")])
            }
        }
    }

    private static func stamp(_ path: String) -> Stamp? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Stamp(modified: info.st_mtim, size: Int(info.st_size), inode: UInt(info.st_ino), device: UInt(info.st_dev))
    }
}
