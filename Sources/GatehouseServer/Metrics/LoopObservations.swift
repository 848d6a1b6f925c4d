import NIOConcurrencyHelpers
import NIOCore

/// Observations made on one event loop, held until they are applied to the shared metrics
/// in a burst: when `capacity` have piled up, and before every scrape.
///
/// A shared metric (a counter's atomic, a histogram's lock) is a cache line every event loop
/// writes; written on every request, it bounced between the loops' cores. Here a request
/// takes a lock that no other loop takes (only a scrape does), and the shared lines are
/// written once per burst, while they stay on one core.
final class LoopObservations<Observation: Sendable>: Sendable {
    private let pending: NIOLockedValueBox<[Observation]>
    private let capacity: Int

    init(capacity: Int) {
        precondition(capacity > 0, "room for one observation")
        self.capacity = capacity
        var pending: [Observation] = []
        pending.reserveCapacity(capacity)
        self.pending = NIOLockedValueBox(pending)
    }

    /// Holds `observation`; returns the burst to apply once `capacity` are held.
    func add(_ observation: Observation) -> [Observation]? {
        pending.withLockedValue { pending in
            pending.append(observation)
            guard pending.count >= capacity else { return nil }
            return Self.take(&pending, reserving: capacity)
        }
    }

    func takeAll() -> [Observation] {
        pending.withLockedValue { Self.take(&$0, reserving: capacity) }
    }

    private static func take(_ pending: inout [Observation], reserving capacity: Int) -> [Observation] {
        var burst: [Observation] = []
        burst.reserveCapacity(capacity)
        swap(&burst, &pending)
        return burst
    }
}

/// The ``LoopObservations`` of every event loop (one each, looked up once per connection).
final class LoopObservationSet<Observation: Sendable>: Sendable {
    /// Event loops with buffers of their own; any more share the first one.
    static var maxLoops: Int { 64 }

    private let buffers: PerEventLoop<LoopObservations<Observation>>

    init(capacity: Int) {
        buffers = PerEventLoop(limit: Self.maxLoops) { LoopObservations(capacity: capacity) }
    }

    func observations(for eventLoop: any EventLoop) -> LoopObservations<Observation> {
        // Past the limit there is a first buffer: the limit's loops made one each.
        buffers.value(for: eventLoop) ?? buffers.all[0]
    }

    /// Everything every loop holds, taken.
    func takeAll() -> [Observation] {
        buffers.all.flatMap { $0.takeAll() }
    }
}
