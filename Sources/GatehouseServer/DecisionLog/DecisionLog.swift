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
/// Event loops only append to a bounded in-memory queue (a lock held for an append); a
/// dedicated thread encodes and writes in batches. At the bound new records are counted as
/// dropped and the count is reported on stderr, so nothing is lost silently. When the sink
/// fails (disk full, file removed) records go to stderr instead and are counted as failed over.
public final class DecisionLog: Sendable {
    public struct Counters: Sendable, Equatable {
        public var written: Int
        public var failedOver: Int
        public var dropped: Int
    }

    /// A request's decision, or an event of the gateway's own (a rollout rolled back): one
    /// JSON line either way.
    enum Entry {
        case decision(DecisionRecord)
        case event([UInt8])

        func appendJSON(to text: inout [UInt8]) {
            switch self {
            case .decision(let record): record.appendJSON(to: &text)
            case .event(let bytes): text.append(contentsOf: bytes)
            }
        }
    }

    private struct Queue {
        var pending: [Entry] = []
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
    public func record(_ record: consuming DecisionRecord) {
        append(.decision(record))  // moved, not copied: a copy retains every string of the record once more
    }

    /// A gateway event as one JSON object (no newline); queued like a decision.
    public func recordEvent(_ json: [UInt8]) {
        append(.event(json))
    }

    private func append(_ entry: consuming Entry) {
        let earlyWake = max(1, capacity / 4)
        var entry: Entry? = consume entry  // taken inside the lock: moved into the queue, not copied
        let outcome = state.withLockedValue { queue -> (accepted: Bool, wakeWriter: Bool) in
            guard !queue.stopping, queue.pending.count + queue.inFlight < capacity else { return (false, false) }
            queue.pending.append(entry.take()!)
            return (true, queue.pending.count == earlyWake)
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
        while state.withLockedValue({ !$0.pending.isEmpty || $0.inFlight > 0 }) {
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
        while true {
            if queue.lock(whenValue: Self.hasWork, timeoutSeconds: Self.pollInterval) {
                queue.unlock(withValue: Self.idle)
            }
            let (batch, stopping, reopen) = state.withLockedValue { queue -> ([Entry], Bool, Bool) in
                let batch = queue.pending
                queue.pending.removeAll(keepingCapacity: true)
                queue.inFlight = batch.count
                let reopen = queue.reopenRequested
                queue.reopenRequested = false
                return (batch, queue.stopping, reopen)
            }
            if reopen, descriptor != STDOUT_FILENO {
                if let fresh = try? Self.open(path) {
                    close(descriptor)
                    descriptor = fresh
                }
            }
            if !batch.isEmpty {
                var text = [UInt8]()
                text.reserveCapacity(batch.count * 400)
                // By index: `for entry in batch` would copy each entry out (retaining every string).
                for index in batch.indices {
                    batch[index].appendJSON(to: &text)
                    text.append(UInt8(ascii: "\n"))
                }
                if Self.writeAll(text, to: descriptor) {
                    written.wrappingIncrement(by: batch.count, ordering: .relaxed)
                } else {
                    _ = Self.writeAll(text, to: STDERR_FILENO)
                    failedOver.wrappingIncrement(by: batch.count, ordering: .relaxed)
                }
                state.withLockedValue { $0.inFlight = 0 }
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
