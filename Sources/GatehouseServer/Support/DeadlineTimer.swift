import NIOCore

/// A timer whose deadline can move on every request without scheduling a task each time.
///
/// Scheduling and cancelling NIO tasks per request showed up as a tenth of the gateway's CPU.
/// This keeps at most one task in flight: moving the deadline later only records it, and
/// when the task fires early it re-arms itself for what is left. Loop-bound.
final class DeadlineTimer {
    private let eventLoop: EventLoop
    private let action: () -> Void
    private var deadline: NIODeadline?
    private var task: Scheduled<Void>?
    private var taskDeadline = NIODeadline.distantFuture

    init(eventLoop: EventLoop, action: @escaping () -> Void) {
        self.eventLoop = eventLoop
        self.action = action
    }

    var isArmed: Bool { deadline != nil }

    /// Fires `action` once, `timeout` from now, unless re-armed or disarmed first.
    func arm(in timeout: TimeAmount) {
        let deadline = eventLoop.now + timeout
        self.deadline = deadline
        if task == nil || deadline < taskDeadline { schedule(at: deadline) }
    }

    /// The pending task stays scheduled but finds nothing to do.
    func disarm() {
        deadline = nil
    }

    /// Removes the task too (the connection is going away).
    func cancel() {
        deadline = nil
        task?.cancel()
        task = nil
    }

    private func schedule(at deadline: NIODeadline) {
        task?.cancel()
        taskDeadline = deadline
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        task = eventLoop.scheduleTask(deadline: deadline) { loopBound.value.fired() }
    }

    private func fired() {
        task = nil
        taskDeadline = .distantFuture
        guard let deadline else { return }
        if deadline <= eventLoop.now {
            self.deadline = nil
            action()
        } else {
            schedule(at: deadline)
        }
    }
}

@available(*, unavailable)
extension DeadlineTimer: Sendable {}
