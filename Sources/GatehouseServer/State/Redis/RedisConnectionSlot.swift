import Atomics
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// One connection of the pool, bound to one event loop: dials, publishes the ready channel,
/// and when it is lost dials again after a jittered exponential backoff. While it has no
/// connection, commands fail at once with the last reason (nothing queues).
final class RedisConnectionSlot: Sendable {
    let index: Int
    let eventLoop: any EventLoop
    private let connector: RedisConnector
    private let timeout: TimeAmount
    private let maxPending: Int
    private let backoff: (initial: TimeAmount, maximum: TimeAmount)
    private let logger: Logger
    private let problems = RateLimitedLog(interval: .seconds(10))

    /// Read by any thread on every command; written on `eventLoop`.
    private let published: NIOLockedValueBox<Published>
    private let inFlight = ManagedAtomic<Int>(0)
    private let state: NIOLoopBoundBox<LoopState>

    private struct Published {
        var channel: (any Channel)?
        var unavailable: RedisClientError
    }

    private struct LoopState {
        var channel: (any Channel)?
        /// The dial in progress, if any (close waits for it).
        var dialing: EventLoopFuture<Void>?
        var reconnect: Scheduled<Void>?
        var failures = 0
        var hadProblem = false
        var isClosed = false
    }

    init(index: Int, eventLoop: any EventLoop, connector: RedisConnector, settings: RedisStoreSettings, logger: Logger) {
        self.index = index
        self.eventLoop = eventLoop
        self.connector = connector
        self.timeout = TimeAmount(settings.timeout)
        self.maxPending = settings.maxPendingCommandsPerConnection
        self.backoff = (TimeAmount(settings.reconnectBackoff.initial), TimeAmount(settings.reconnectBackoff.maximum))
        var logger = logger
        logger[metadataKey: "redis"] = "\(connector.address)"
        logger[metadataKey: "redis_connection"] = "\(index)"
        self.logger = logger
        self.published = NIOLockedValueBox(Published(channel: nil, unavailable: RedisClientError(kind: .unavailable, message: "not connected yet")))
        self.state = NIOLoopBoundBox.makeBoxSendingValue(LoopState(), eventLoop: eventLoop)
    }

    func start() {
        eventLoop.execute { self.dial() }
    }

    var isConnected: Bool { published.withLockedValue { $0.channel != nil } }

    /// Sends `command`; the reply (or failure) completes on `callerLoop`.
    func send(_ command: RedisCommand, on callerLoop: any EventLoop) -> EventLoopFuture<RESPValue> {
        let (channel, unavailable) = published.withLockedValue { ($0.channel, $0.unavailable) }
        guard let channel else { return callerLoop.makeFailedFuture(unavailable) }
        // The bound on the FIFO: refuse rather than queue without limit.
        guard inFlight.loadThenWrappingIncrement(ordering: .relaxed) < maxPending else {
            inFlight.wrappingDecrement(ordering: .relaxed)
            return callerLoop.makeFailedFuture(RedisClientError(kind: .backlogFull, message: "\(maxPending) commands in flight on one connection"))
        }
        let promise = channel.eventLoop.makePromise(of: RESPValue.self)
        promise.futureResult.whenComplete { [inFlight] _ in inFlight.wrappingDecrement(ordering: .relaxed) }
        channel.sendRedisRequest(RedisRequest(command: command, promise: promise, timeout: timeout))
        return promise.futureResult.hop(to: callerLoop)
    }

    /// Stops reconnecting and closes the connection; completes when nothing of this slot is
    /// left running on its event loop.
    func close() -> EventLoopFuture<Void> {
        eventLoop.flatSubmit {
            self.state.value.isClosed = true
            self.state.value.reconnect?.cancel()
            self.state.value.reconnect = nil
            self.published.withLockedValue {
                $0.channel = nil
                $0.unavailable = RedisClientError(kind: .shutdown, message: "the Redis client is closed")
            }
            let dialing = self.state.value.dialing ?? self.eventLoop.makeSucceededVoidFuture()
            return dialing.flatMap {
                guard let channel = self.state.value.channel else { return self.eventLoop.makeSucceededVoidFuture() }
                self.state.value.channel = nil
                return channel.close().recover { _ in }
            }
        }
    }

    private func dial() {
        guard !state.value.isClosed, state.value.dialing == nil else { return }
        state.value.reconnect = nil
        let attempt = connector.connect(on: eventLoop)
            .map { channel in self.connected(channel) }
            .recover { error in self.dialFailed(error) }
        state.value.dialing = attempt
        attempt.whenComplete { _ in self.state.value.dialing = nil }
    }

    private func connected(_ channel: any Channel) {
        state.value.channel = channel
        // Closed while dialling: `close()` waits for this dial, then closes the channel.
        guard !state.value.isClosed else { return }
        state.value.failures = 0
        published.withLockedValue { $0.channel = channel }
        if state.value.hadProblem {
            state.value.hadProblem = false
            logger.info("redis connection restored")
        } else {
            logger.info("redis connected")
        }
        channel.closeFuture.hop(to: eventLoop).whenComplete { _ in self.disconnected(channel) }
    }

    private func disconnected(_ channel: any Channel) {
        guard let current = state.value.channel, current === channel else { return }
        state.value.channel = nil
        published.withLockedValue {
            $0.channel = nil
            $0.unavailable = RedisClientError(kind: .unavailable, message: "connection to \(connector.address) lost; reconnecting")
        }
        guard !state.value.isClosed else { return }
        state.value.hadProblem = true
        problems.warning(logger, "redis connection lost; reconnecting", metadata: [:])
        scheduleReconnect()
    }

    private func dialFailed(_ error: any Error) {
        let failure = (error as? RedisClientError) ?? RedisClientError(kind: .unavailable, message: "\(error)")
        published.withLockedValue { $0.unavailable = RedisClientError(kind: .unavailable, message: failure.message) }
        guard !state.value.isClosed else { return }
        state.value.hadProblem = true
        state.value.failures += 1
        problems.warning(logger, "redis unavailable", metadata: ["reason": "\(failure.message)"])
        scheduleReconnect()
    }

    private func scheduleReconnect() {
        let delay = Self.backoffDelay(failures: state.value.failures, initial: backoff.initial, maximum: backoff.maximum)
        state.value.reconnect = eventLoop.scheduleTask(in: delay) { self.dial() }
    }

    /// `initial × 2^failures`, at most `maximum`, then a random point in its upper half, so
    /// gateway instances that lost Redis together do not all dial at the same instant.
    static func backoffDelay(failures: Int, initial: TimeAmount, maximum: TimeAmount) -> TimeAmount {
        let exponent = min(failures, 20)
        let full = min(maximum.nanoseconds, initial.nanoseconds << exponent)
        return .nanoseconds(Int64.random(in: (full / 2)...max(full / 2, full)))
    }
}
