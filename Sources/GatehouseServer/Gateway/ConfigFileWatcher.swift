import GatehouseCore
import NIOConcurrencyHelpers

/// Reloads the configuration when a file it is made of changes content: the file itself,
/// its rollout candidate, and the secrets it reads that no certificate watcher covers
/// (`GatewayConfig.referencedFiles`).
///
/// It polls: every `interval` it hashes those files (a few KiB; SHA-256, so a rewrite with
/// the same bytes is no change and a same-size edit within one mtime tick is one). A
/// change is acted on once the files have held still for one more poll, so an editor or a
/// deploy tool writing in several steps causes one reload, not a failure per step; files
/// that never hold still are reloaded after `maximumUnsettledPolls` anyway. Content that
/// failed to load is not retried until it changes again: an invalid file counts as one
/// failure, not one per poll.
final class ConfigFileWatcher: Sendable {
    /// Hex SHA-256 by path; nil for a file that cannot be read (missing, mid-rename).
    typealias Fingerprint = [String: String?]

    private struct State {
        /// What the running configuration was loaded from, or the last content a reload was tried on.
        var baseline: Fingerprint
        /// A change seen on the previous poll and not acted on yet.
        var pending: Fingerprint?
        var unsettledPolls = 0
    }

    static let maximumUnsettledPolls = 5

    let interval: Duration
    private let files: @Sendable () -> [String]
    private let state: NIOLockedValueBox<State>

    /// - Parameters:
    ///   - baseline: the hashes of what runs (a file that is not in it is taken as it is at its first poll).
    ///   - files: the files to watch, asked on every poll (a reload can add a candidate or a secret file).
    init(baseline: Fingerprint, interval: Duration, files: @escaping @Sendable () -> [String]) {
        self.interval = interval
        self.files = files
        self.state = NIOLockedValueBox(State(baseline: baseline))
    }

    /// Polls until the task is cancelled, calling `reload` for each settled change.
    func run(reload: @Sendable () async -> Void) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            if Task.isCancelled { return }
            await poll(reload: reload)
        }
    }

    /// One look at the files; reloads when they changed and have settled. Returns whether it reloaded.
    @discardableResult
    func poll(reload: @Sendable () async -> Void) async -> Bool {
        let paths = files()
        let now = Self.fingerprint(paths)
        let shouldReload = state.withLockedValue { state -> Bool in
            // Watch exactly today's files; one not watched before starts from its current content.
            var baseline: Fingerprint = [:]
            for path in paths { baseline.updateValue(state.baseline[path] ?? now[path]!, forKey: path) }
            state.baseline = baseline
            guard now != baseline else {
                state.pending = nil
                state.unsettledPolls = 0
                return false
            }
            guard now == state.pending || state.unsettledPolls >= Self.maximumUnsettledPolls else {
                state.pending = now
                state.unsettledPolls += 1
                return false
            }
            state.baseline = now
            state.pending = nil
            state.unsettledPolls = 0
            return true
        }
        if shouldReload { await reload() }
        return shouldReload
    }

    /// A reload (from SIGHUP, or from this watcher) read the files as they were in
    /// `fingerprint`: that content has been tried, so it is not reloaded again. A change made
    /// after that fingerprint was taken still differs from it, and is.
    func noteAttempted(_ fingerprint: Fingerprint) {
        state.withLockedValue { state in
            for (path, hash) in fingerprint { state.baseline.updateValue(hash, forKey: path) }
            state.pending = nil
            state.unsettledPolls = 0
        }
    }

    /// The fingerprint of `paths` as they are now.
    static func fingerprint(_ paths: [String]) -> Fingerprint {
        var result: Fingerprint = [:]
        for path in paths { result.updateValue(ConfigDocument.fileSHA256(path), forKey: path) }
        return result
    }
}
