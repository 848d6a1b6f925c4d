import Atomics
import Logging
import NIOCore

/// A small Redis client: a fixed pool of pipelined connections shared by every event loop.
///
/// Why a few shared connections rather than one per event loop: Redis executes commands on
/// one thread, so two pipelined connections already keep it busy, and many gateway instances
/// times many cores would otherwise multiply its connection count. A command prefers a
/// connection on the caller's event loop (no thread hop) and otherwise takes the next
/// connected one; its reply always completes on the caller's loop.
///
/// Close it (`close()`) before the event loop group shuts down.
final class RedisClient: Sendable {
    private let slots: [RedisConnectionSlot]
    private let nextSlot = ManagedAtomic<Int>(0)
    private let isClosed = ManagedAtomic<Bool>(false)

    /// Builds the TLS context (if any) and starts dialling every connection. Throws for
    /// settings with `problems` or unusable TLS material.
    /// - Parameter setupCommands: sent on every new connection after `AUTH` (e.g. `SCRIPT LOAD`).
    init(settings: RedisStoreSettings, group: any EventLoopGroup, setupCommands: [RedisCommand] = [], logger: Logger) throws {
        if let problem = settings.problems.first { throw RedisClientError(kind: .unavailable, message: "invalid settings: \(problem)") }
        let connector = try RedisConnector(settings: settings, setupCommands: setupCommands)
        self.slots = (0..<settings.connections).map { index in
            RedisConnectionSlot(index: index, eventLoop: group.next(), connector: connector, settings: settings, logger: logger)
        }
        for slot in slots { slot.start() }
    }

    /// True when at least one connection is up.
    var isConnected: Bool { slots.contains { $0.isConnected } }

    /// Sends one command; the reply (an error reply included) or a `RedisClientError`
    /// completes on `eventLoop`.
    func send(_ command: RedisCommand, on eventLoop: any EventLoop) -> EventLoopFuture<RESPValue> {
        guard !isClosed.load(ordering: .relaxed) else {
            return eventLoop.makeFailedFuture(RedisClientError(kind: .shutdown, message: "the Redis client is closed"))
        }
        return pick(for: eventLoop).send(command, on: eventLoop)
    }

    /// A connected slot on the caller's loop, else the next connected one round robin, else
    /// any (it fails at once with why it is down).
    private func pick(for eventLoop: any EventLoop) -> RedisConnectionSlot {
        if let local = slots.first(where: { $0.eventLoop === eventLoop && $0.isConnected }) { return local }
        let start = nextSlot.loadThenWrappingIncrement(ordering: .relaxed)
        for offset in 0..<slots.count {
            let slot = slots[index(start &+ offset)]
            if slot.isConnected { return slot }
        }
        return slots[index(start)]
    }

    private func index(_ counter: Int) -> Int {
        Int(UInt(bitPattern: counter) % UInt(slots.count))
    }

    /// Stops reconnecting and closes every connection; commands in flight fail.
    func close() -> EventLoopFuture<Void> {
        isClosed.store(true, ordering: .relaxed)
        let closes = slots.map { $0.close() }
        return EventLoopFuture.andAllComplete(closes, on: slots[0].eventLoop)
    }
}
