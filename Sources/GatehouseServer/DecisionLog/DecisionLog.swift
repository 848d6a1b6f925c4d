import Atomics
import Foundation
import GatehouseCore
import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes one JSON line per decision record, off the event loop.
///
/// The caller's thread encodes the record straight into a bounded in-memory queue of bytes
/// (a lock held for the encoding); a dedicated thread writes the queued lines in batches.
/// Each event loop has a queue of its own (``Queue``, from ``queue(for:)``), so a request's
/// record takes a lock no other loop takes: with one shared queue its lock's cache line
/// bounced between the loops on every request. Each line is stamped with the monotonic time it
/// was queued, and the writer merges the queues by it: the log keeps the order records were
/// made in, across loops too. Encoding where the record was made keeps the
/// record's strings on one core too (queued as structs, every record was released on the
/// writer thread). The log as a whole measured ~5-6 % of a proxied request's CPU. At a
/// queue's bound new records are counted as dropped and the count is reported on stderr, so
/// nothing is lost silently. When the sink fails (disk full, file removed) records go to
/// stderr instead and are counted as failed over.
public final class DecisionLog: Sendable {
    public struct Counters: Sendable, Equatable {
        public var written: Int
        public var failedOver: Int
        public var dropped: Int
    }

    /// Records waiting for the writer, from one event loop (or from everything else).
    public final class Queue: @unchecked Sendable {  // `lines` is only touched with `lock` held
        fileprivate struct Lines {
            /// Whole JSON lines, each ending in a newline.
            var pending: [UInt8] = []
            /// Per line: when it was queued (monotonic nanoseconds) and where it ends in
            /// `pending`. The writer merges the queues' lines by the time, so the log keeps the
            /// order in which records were made across event loops too.
            var lines: [(queued: UInt64, end: Int)] = []
            /// Records taken by the writer but not yet written; `flush` waits for zero.
            var inFlight = 0
        }

        /// Taken by hand, not through a closure: a closure capturing the record being encoded
        /// would copy it (a retain and a release of each of its strings).
        private let lock = NIOLock()
        private var _lines = Lines()
        fileprivate let capacity: Int

        fileprivate init(capacity: Int) {
            self.capacity = capacity
        }

        fileprivate func withLines<T>(_ body: (inout Lines) throws -> T) rethrows -> T {
            lock.lock()
            defer { lock.unlock() }
            return try body(&_lines)
        }

        /// Appends `line` unless the queue is full or the log is stopping. Generic rather than
        /// a closure: a closure capturing a record would copy it.
        fileprivate func append<Line: DecisionLogLine>(_ line: borrowing Line, stopping: ManagedAtomic<Bool>) -> (accepted: Bool, wakeWriter: Bool) {
            lock.lock()
            defer { lock.unlock() }
            guard _lines.lines.count + _lines.inFlight < capacity, !stopping.load(ordering: .relaxed) else { return (false, false) }
            // Encoded in place: no line of its own to allocate and copy.
            line.appendJSON(to: &_lines.pending)
            _lines.pending.append(UInt8(ascii: "\n"))
            _lines.lines.append((NIODeadline.now().uptimeNanoseconds, _lines.pending.count))
            return (true, _lines.lines.count == max(1, capacity / 4))
        }
    }

    private let path: String
    private let wakeUp: ConditionLock<Int>
    /// Records from outside the event loops (refused handshakes, rollout events, tests).
    private let general: Queue
    private let loopQueues: PerEventLoop<Queue>
    private let stopping = ManagedAtomic(false)
    private let reopenRequested = ManagedAtomic(false)
    private let written = ManagedAtomic<Int>(0)
    private let failedOver = ManagedAtomic<Int>(0)
    private let dropped = ManagedAtomic<Int>(0)
    private let writerFinished = ManagedAtomic(false)
    private let started = ManagedAtomic(false)

    private static let hasWork = 1
    private static let idle = 0
    /// Longest a record waits in the queue before the writer picks it up on its own.
    private static let pollInterval = 0.005
    /// The writer keeps a batch buffer up to this size for the next batch.
    private static let maxKeptBatchBytes = 4 << 20
    /// Event loops with a queue of their own; records from any more share the general one.
    static let maxLoopQueues = 64

    public init(config: DecisionLogConfig) {
        self.path = config.path
        // `decision_log.queue_capacity`, split evenly between one queue per core's event
        // loop and the general one.
        let queueCapacity = max(1, config.queueCapacity / (System.coreCount + 1))
        self.wakeUp = ConditionLock(value: Self.idle)
        self.general = Queue(capacity: queueCapacity)
        self.loopQueues = PerEventLoop(limit: Self.maxLoopQueues) { Queue(capacity: queueCapacity) }
    }

    public var counters: Counters {
        Counters(
            written: written.load(ordering: .relaxed),
            failedOver: failedOver.load(ordering: .relaxed),
            dropped: dropped.load(ordering: .relaxed)
        )
    }

    /// Opens the sink (so a bad path fails at start-up, not on the first request) and starts the writer.
    public func start() throws {
        let descriptor = try Self.open(path)
        let thread = Thread { [self] in
            self.run(descriptor: descriptor)
            self.writerFinished.store(true, ordering: .sequentiallyConsistent)
        }
        thread.name = "gatehouse-decision-log"
        started.store(true, ordering: .sequentiallyConsistent)
        thread.start()
    }

    /// The queue for records made on `eventLoop` (look it up once per connection).
    public func queue(for eventLoop: any EventLoop) -> Queue {
        loopQueues.value(for: eventLoop) ?? general
    }

    /// The general queue first, then the loops' in the order they were made (the writer's
    /// buffers follow this order).
    private var allQueues: [Queue] { [general] + loopQueues.all }

    /// Never blocks beyond a short append; safe to call on an event loop. `queue`: the caller's
    /// event loop's (``queue(for:)``); without one, the general queue.
    public func record(_ record: borrowing DecisionRecord, in queue: Queue? = nil) {
        append(record, to: queue ?? general)
    }

    /// A gateway event as one JSON object (no newline); queued like a decision.
    public func recordEvent(_ json: [UInt8]) {
        append(EncodedEvent(json: json), to: general)
    }

    private func append<Line: DecisionLogLine>(_ line: borrowing Line, to queue: Queue) {
        let outcome = queue.append(line, stopping: stopping)
        guard outcome.accepted else {
            dropped.wrappingIncrement(ordering: .relaxed)
            return
        }
        // The writer wakes by itself every few milliseconds and drains every queue, so a
        // request never pays for a futex wake-up; only a queue filling up fast wakes it early.
        if outcome.wakeWriter { signal() }
    }

    /// Reopens the file (after log rotation). Called from the SIGHUP handler.
    public func reopen() {
        reopenRequested.store(true, ordering: .sequentiallyConsistent)
        signal()
    }

    /// Blocks until every record queued so far is written. Not for event loops.
    public func flush() {
        guard started.load(ordering: .sequentiallyConsistent) else { return }
        let all = allQueues
        while all.contains(where: { queue in queue.withLines { !$0.lines.isEmpty || $0.inFlight > 0 } }) {
            signal()
            usleep(1000)
        }
    }

    /// Writes what is queued, then stops the writer. Not for event loops.
    public func shutdown() {
        flush()
        stopping.store(true, ordering: .sequentiallyConsistent)
        signal()
        guard started.load(ordering: .sequentiallyConsistent) else { return }
        while !writerFinished.load(ordering: .sequentiallyConsistent) { usleep(1000) }
    }

    private func signal() {
        wakeUp.lock()
        wakeUp.unlock(withValue: Self.hasWork)
    }

    private func run(descriptor initial: Int32) {
        var descriptor = initial
        var reportedDrops = 0
        // Swapped with the queues' buffers (position i: the i-th queue), so both are reused.
        var drained: [Queue.Lines] = []
        var merged: [UInt8] = []
        while true {
            if wakeUp.lock(whenValue: Self.hasWork, timeoutSeconds: Self.pollInterval) {
                wakeUp.unlock(withValue: Self.idle)
            }
            // Read before draining: a stop comes after the last records were queued.
            let stopping = stopping.load(ordering: .sequentiallyConsistent)
            if reopenRequested.exchange(false, ordering: .sequentiallyConsistent), descriptor != STDOUT_FILENO {
                if let fresh = try? Self.open(path) {
                    close(descriptor)
                    descriptor = fresh
                }
            }
            let all = allQueues
            while drained.count < all.count { drained.append(Queue.Lines()) }
            var count = 0
            for (index, queue) in all.enumerated() {
                queue.withLines { lines in
                    drained[index].pending.removeAll(keepingCapacity: true)
                    drained[index].lines.removeAll(keepingCapacity: true)
                    swap(&drained[index].pending, &lines.pending)
                    swap(&drained[index].lines, &lines.lines)
                    lines.inFlight = drained[index].lines.count
                }
                count += drained[index].lines.count
            }
            if count > 0 {
                let batch = Self.inQueuedOrder(drained, count: count, into: &merged)
                if Self.writeAll(batch, to: descriptor) {
                    written.wrappingIncrement(by: count, ordering: .relaxed)
                } else {
                    _ = Self.writeAll(batch, to: STDERR_FILENO)
                    failedOver.wrappingIncrement(by: count, ordering: .relaxed)
                }
                for queue in all { queue.withLines { $0.inFlight = 0 } }
                // A burst's buffers are not kept for the process's life.
                if merged.capacity > Self.maxKeptBatchBytes { merged = [] }
                for index in drained.indices where drained[index].pending.capacity > Self.maxKeptBatchBytes {
                    drained[index] = Queue.Lines()
                }
            }
            let drops = dropped.load(ordering: .relaxed)
            if drops != reportedDrops {
                _ = Self.writeAll(
                    Array("{\"gatehouse\":\"decision_log.dropped\",\"total\":\(drops),\"reason\":\"queue full\"}\n".utf8),
                    to: STDERR_FILENO
                )
                reportedDrops = drops
            }
            if stopping {
                if descriptor != STDOUT_FILENO { close(descriptor) }
                return
            }
        }
    }

    /// The drained queues' lines in the order they were queued. A record queued before
    /// another was drained in the same poll or an earlier one, so merging each poll's queues
    /// by time keeps the whole log in order. One queue with lines: its buffer as it is.
    private static func inQueuedOrder(_ drained: [Queue.Lines], count: Int, into merged: inout [UInt8]) -> [UInt8] {
        let busy = drained.indices.filter { !drained[$0].lines.isEmpty }
        if busy.count == 1 { return drained[busy[0]].pending }
        merged.removeAll(keepingCapacity: true)
        var next = [Int](repeating: 0, count: drained.count)
        for _ in 0..<count {
            var pick = -1
            for index in busy where next[index] < drained[index].lines.count {
                if pick < 0 || drained[index].lines[next[index]].queued < drained[pick].lines[next[pick]].queued { pick = index }
            }
            let lines = drained[pick].lines
            let start = next[pick] == 0 ? 0 : lines[next[pick] - 1].end
            merged.append(contentsOf: drained[pick].pending[start..<lines[next[pick]].end])
            next[pick] += 1
        }
        return merged
    }

    private static func open(_ path: String) throws -> Int32 {
        if path == "-" { return STDOUT_FILENO }
        let descriptor = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else {
            throw DecisionLogError.cannotOpen(path: path, errno: errno)
        }
        return descriptor
    }

    private static func writeAll(_ bytes: [UInt8], to descriptor: Int32) -> Bool {
        bytes.withUnsafeBufferPointer { buffer -> Bool in
            var offset = 0
            while offset < buffer.count {
                let result = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if result < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += result
            }
            return true
        }
    }
}

/// What a queue takes: a decision record, or an event the gateway encoded itself.
protocol DecisionLogLine {
    func appendJSON(to bytes: inout [UInt8])
}

extension DecisionRecord: DecisionLogLine {}

private struct EncodedEvent: DecisionLogLine {
    let json: [UInt8]
    func appendJSON(to bytes: inout [UInt8]) { bytes.append(contentsOf: json) }
}

public enum DecisionLogError: Error, CustomStringConvertible {
    case cannotOpen(path: String, errno: Int32)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let code):
            return "decision_log.path: cannot open \(path) for appending: \(String(cString: strerror(code)))"
        }
    }
}
