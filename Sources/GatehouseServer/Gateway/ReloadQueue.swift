import Dispatch
import NIOConcurrencyHelpers

/// Runs reloads one at a time on their own thread: reading files, resolving names and
/// building TLS contexts block, so they stay off the event loops and the task pool.
///
/// Requests coalesce: every caller that asks while a run is scheduled but not yet started
/// gets that run's result (it reads the files after they asked). So at most one run is
/// executing and one is scheduled, however many SIGHUPs and file changes arrive; the
/// waiters are the callers themselves, each resumed by the next run.
final class ReloadQueue<Result: Sendable>: Sendable {
    private struct State {
        var waiters: [CheckedContinuation<Result, Never>] = []
        var scheduled = false
    }

    private let queue = DispatchQueue(label: "gatehouse.config-reload")
    private let state = NIOLockedValueBox(State())

    /// Runs `work` (or joins the run already scheduled) and returns its result.
    func run(_ work: @escaping @Sendable () -> Result) async -> Result {
        await withCheckedContinuation { continuation in
            let schedule = state.withLockedValue { state in
                state.waiters.append(continuation)
                defer { state.scheduled = true }
                return !state.scheduled
            }
            guard schedule else { return }
            queue.async {
                // Callers arriving from here on wait for the next run: this one may already
                // have read the files they changed.
                let waiters = self.state.withLockedValue { state in
                    state.scheduled = false
                    defer { state.waiters = [] }
                    return state.waiters
                }
                let result = work()
                for waiter in waiters { waiter.resume(returning: result) }
            }
        }
    }
}
