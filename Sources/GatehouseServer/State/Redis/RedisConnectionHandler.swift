import NIOCore

/// Pipelining on one connection: writes each command at once and matches replies to
/// commands in order (a FIFO of promises). A command not answered within its timeout fails,
/// and so does every command behind it: after a lost reply, later replies could be matched to
/// the wrong command, so the connection is closed instead (the pool dials a new one).
///
/// The FIFO is bounded by the pool (`maxPendingCommands` per connection), not here.
final class RedisConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = RESPValue
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        let promise: EventLoopPromise<RESPValue>
        let deadline: NIODeadline
        let timeout: TimeAmount
        let name: String
    }

    private var pending = CircularBuffer<Pending>(initialCapacity: 16)
    /// Once set, the connection is finished: every command fails with it.
    private var failure: RedisClientError?
    private var timer: DeadlineTimer?
    private var context: ChannelHandlerContext?
    private var flushScheduled = false

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = DeadlineTimer(eventLoop: context.eventLoop) { loopBound.value.timedOut() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        fail(RedisClientError(kind: .connectionClosed, message: "connection closed"))
        timer?.cancel()
        timer = nil  // its action holds this handler
        self.context = nil
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        if let failure {
            // Never sent: the connection is going away (and its failure was counted once,
            // with the commands it failed). Reported as the slot reports it once it knows.
            let closing = RedisClientError(kind: .unavailable, message: "connection closing after \(failure.kind.rawValue); reconnecting")
            request.promise.fail(closing)
            promise?.fail(closing)
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: 64)
        request.command.encode(into: &buffer)
        let deadline = context.eventLoop.now + request.timeout
        pending.append(Pending(promise: request.promise, deadline: deadline, timeout: request.timeout, name: request.command.name))
        if pending.count == 1 { timer?.arm(in: request.timeout) }
        context.write(wrapOutboundOut(buffer), promise: promise)
        scheduleFlush(context: context)
    }

    /// One flush for every command written in this pass of the event loop: under load, many
    /// requests' commands leave in one `write` system call instead of one each.
    private func scheduleFlush(context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let handler = loopBound.value
            handler.flushScheduled = false
            handler.context?.flush()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let value = unwrapInboundIn(data)
        guard let head = pending.popFirst() else {
            // A reply nobody asked for: the stream is out of step.
            fail(RedisClientError(kind: .protocolViolation, message: "reply without a command"))
            context.close(promise: nil)
            return
        }
        if let next = pending.first {
            timer?.arm(in: next.deadline - context.eventLoop.now)
        } else {
            timer?.disarm()
        }
        head.promise.succeed(value)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        let failure: RedisClientError
        if let error = error as? RESPProtocolError {
            failure = RedisClientError(kind: .protocolViolation, message: error.message)
        } else {
            failure = RedisClientError(kind: .connectionClosed, message: "connection error (\(error))")
        }
        fail(failure)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(RedisClientError(kind: .connectionClosed, message: "connection closed"))
        context.fireChannelInactive()
    }

    private func timedOut() {
        guard let head = pending.first, head.deadline <= (context?.eventLoop.now ?? .distantFuture) else {
            // The head was answered since; the timer re-arms on the next head.
            if let head = pending.first { timer?.arm(in: head.deadline - (context?.eventLoop.now ?? .now())) }
            return
        }
        fail(RedisClientError(kind: .timeout, message: "no reply to \(head.name) within \(head.timeout.nanoseconds / 1_000_000) ms"))
        context?.close(promise: nil)
    }

    /// Fails every command in flight and every later one.
    private func fail(_ error: RedisClientError) {
        if failure == nil { failure = error }
        timer?.disarm()
        while let entry = pending.popFirst() {
            entry.promise.fail(error)
        }
    }
}

@available(*, unavailable)
extension RedisConnectionHandler: Sendable {}
