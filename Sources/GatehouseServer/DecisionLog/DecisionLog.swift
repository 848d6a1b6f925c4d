import Atomics
import Foundation
import GatehouseCore
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes one JSON line per decision record, off the event loop.
///
/// The caller's thread encodes the record and appends its line to a bounded in-memory queue
/// of bytes (a lock held for a copy); a dedicated thread writes the queued lines in batches.
/// Encoding where the record was made keeps the record's strings on one core: queued as a
/// struct, every record was released on the writer thread, and each of its strings shared
/// with the event loops (route, listener, upstream, policy version, peer) bounced between
/// cores (the log as a whole measured ~5-6 % of a proxied request's CPU; encoding here took
/// ~1-2 % of that back). At the bound new records are counted as dropped and the count is reported on
/// stderr, so nothing is lost silently. When the sink fails (disk full, file removed) records
/// go to stderr instead and are counted as failed over.
public final class DecisionLog: Sendable {
    public struct Counters: Sendable, Equatable {
        public var written: Int
        public var failedOver: Int
        public var dropped: Int
    }

    private struct Queue {
        /// Whole JSON lines, each ending in a newline.
        var pending: [UInt8] = []
        var pendingCount = 0
        var stopping = false
        var reopenRequested = false
        /// Records taken by the writer but not yet written; `flush` waits for zero.
        var inFlight = 0
    }

    private let path: String
    private let capacity: Int
    private let queue: ConditionLock<Int>
    private let state: NIOLockedValueBox<Queue>
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

    public init(config: DecisionLogConfig) {
        self.path = config.path
        self.capacity = config.queueCapacity
        self.queue = ConditionLock(value: Self.idle)
        self.state = NIOLockedValueBox(Queue())
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

    /// Never blocks beyond a short append; safe to call on an event loop.
    public func record(_ record: DecisionRecord) {
        var line: [UInt8] = []
        line.reserveCapacity(512)
        record.appendJSON(to: &line)
        append(line: &line)
    }

    /// A gateway event as one JSON object (no newline); queued like a decision.
    public func recordEvent(_ json: [UInt8]) {
        var line = json
        append(line: &line)
    }

    private func append(line: inout [UInt8]) {
        line.append(UInt8(ascii: "\n"))
        let earlyWake = max(1, capacity / 4)
        let outcome = state.withLockedValue { queue -> (accepted: Bool, wakeWriter: Bool) in
            guard !queue.stopping, queue.pendingCount + queue.inFlight < capacity else { return (false, false) }
            queue.pending.append(contentsOf: line)
            queue.pendingCount += 1
            return (true, queue.pendingCount == earlyWake)
        }
        guard outcome.accepted else {
            dropped.wrappingIncrement(ordering: .relaxed)
            return
        }
        // The writer wakes by itself every few milliseconds and drains the whole queue, so a
        // request never pays for a futex wake-up; only a queue filling up fast wakes it early.
        if outcome.wakeWriter { signal() }
    }

    /// Reopens the file (after log rotation). Called from the SIGHUP handler.
    public func reopen() {
        state.withLockedValue { $0.reopenRequested = true }
        signal()
    }

    /// Blocks until every record queued so far is written. Not for event loops.
    public func flush() {
        guard started.load(ordering: .sequentiallyConsistent) else { return }
        while state.withLockedValue({ $0.pendingCount > 0 || $0.inFlight > 0 }) {
            signal()
            usleep(1000)
        }
    }

    /// Writes what is queued, then stops the writer. Not for event loops.
    public func shutdown() {
        flush()
        state.withLockedValue { $0.stopping = true }
        signal()
        guard started.load(ordering: .sequentiallyConsistent) else { return }
        while !writerFinished.load(ordering: .sequentiallyConsistent) { usleep(1000) }
    }

    private func signal() {
        queue.lock()
        queue.unlock(withValue: Self.hasWork)
    }

    private func run(descriptor initial: Int32) {
        var descriptor = initial
        var reportedDrops = 0
        var batch: [UInt8] = []  // swapped with the queue's bytes: two buffers, reused
        while true {
            if queue.lock(whenValue: Self.hasWork, timeoutSeconds: Self.pollInterval) {
                queue.unlock(withValue: Self.idle)
            }
            let (count, stopping, reopen) = state.withLockedValue { queue -> (Int, Bool, Bool) in
                batch.removeAll(keepingCapacity: true)
                swap(&batch, &queue.pending)
                let count = queue.pendingCount
                queue.pendingCount = 0
                queue.inFlight = count
                let reopen = queue.reopenRequested
                queue.reopenRequested = false
                return (count, queue.stopping, reopen)
            }
            if reopen, descriptor != STDOUT_FILENO {
                if let fresh = try? Self.open(path) {
                    close(descriptor)
                    descriptor = fresh
                }
            }
            if count > 0 {
                if Self.writeAll(batch, to: descriptor) {
                    written.wrappingIncrement(by: count, ordering: .relaxed)
                } else {
                    _ = Self.writeAll(batch, to: STDERR_FILENO)
                    failedOver.wrappingIncrement(by: count, ordering: .relaxed)
                }
                state.withLockedValue { $0.inFlight = 0 }
                // A burst's buffer is not kept for the process's life.
                if batch.capacity > Self.maxKeptBatchBytes { batch = [] }
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

public enum DecisionLogError: Error, CustomStringConvertible {
    case cannotOpen(path: String, errno: Int32)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let code):
            return "decision_log.path: cannot open \(path) for appending: \(String(cString: strerror(code)))"
        }
    }
}
