import NIOCore

/// Joins the small buffers written between two flushes (a response head, a short body, the
/// chunk terminator) into one, so TLS seals them as one record instead of one record each.
/// Large writes pass straight through; nothing is held past a flush.
final class WriteCoalescingHandler: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Writes at least this big are not copied: one record each is fine for them.
    static let maxCoalescedBytes = 16 * 1024

    private var pending: ByteBuffer?
    private var pendingPromise: EventLoopPromise<Void>?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let buffer = unwrapOutboundIn(data)
        if buffer.readableBytes == 0 {
            // Nothing to send (e.g. the end of a Content-Length body); complete with the batch.
            if let promise { chain(promise) }
            return
        }
        if var joined = pending, joined.readableBytes + buffer.readableBytes <= Self.maxCoalescedBytes {
            pending = nil  // `joined` is then the only reference: it grows in place, no copy-on-write
            var buffer = buffer
            joined.writeBuffer(&buffer)
            pending = joined
            if let promise { chain(promise) }
            return
        }
        writePending(context: context)
        if buffer.readableBytes >= Self.maxCoalescedBytes {
            context.write(data, promise: promise)
        } else {
            // Kept as it is: copied only if another write joins it before the flush.
            pending = buffer
            if let promise { chain(promise) }
        }
    }

    func flush(context: ChannelHandlerContext) {
        writePending(context: context)
        context.flush()
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        // As NIO does with unflushed writes: they fail on close, and their promises say so.
        failPending()
        context.close(mode: mode, promise: promise)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        failPending()
    }

    private func failPending() {
        pending = nil
        let promise = pendingPromise
        pendingPromise = nil
        promise?.fail(ChannelError.ioOnClosedChannel)
    }

    private func chain(_ promise: EventLoopPromise<Void>) {
        if let pendingPromise {
            pendingPromise.futureResult.cascade(to: promise)
        } else {
            pendingPromise = promise
        }
    }

    private func writePending(context: ChannelHandlerContext) {
        guard let buffer = pending else {
            if let promise = pendingPromise {
                pendingPromise = nil
                context.write(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: promise)
            }
            return
        }
        pending = nil
        let promise = pendingPromise
        pendingPromise = nil
        context.write(wrapOutboundOut(buffer), promise: promise)
    }
}

@available(*, unavailable)
extension WriteCoalescingHandler: Sendable {}
