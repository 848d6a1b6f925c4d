import NIOCore

/// Response bytes on their way to the client, joined until the next flush.
///
/// A response head, a short body and a chunk terminator written one by one would each
/// become a TLS record of their own (and an iovec each without TLS); held here, they leave
/// as one buffer. A write at least `maxJoinedBytes` big passes straight through, after what
/// is held. Nothing is held past a flush. (This was a handler of its own between NIOSSL and
/// the gateway handler; as a field of the gateway handler it saves every write, flush and
/// read a trip through the pipeline.)
struct ClientOutput {
    /// Writes at least this big are not copied: one record each is fine for them.
    static let maxJoinedBytes = 16 * 1024

    private var held: ByteBuffer?

    /// Bytes written but not yet passed on (for tests).
    var heldBytes: Int { held?.readableBytes ?? 0 }

    /// Queues `buffer` behind what is held.
    mutating func write(_ buffer: ByteBuffer, context: ChannelHandlerContext) {
        guard buffer.readableBytes > 0 else { return }
        if var joined = held, joined.readableBytes + buffer.readableBytes <= Self.maxJoinedBytes {
            held = nil  // `joined` is then the only reference: it grows in place, no copy-on-write
            var buffer = buffer
            joined.writeBuffer(&buffer)
            held = joined
            return
        }
        passHeld(context: context)
        if buffer.readableBytes >= Self.maxJoinedBytes {
            context.write(NIOAny(buffer), promise: nil)
        } else {
            held = buffer  // kept as it is: copied only if another write joins it before the flush
        }
    }

    /// Sends what is held and flushes. `promise` completes once everything written so far
    /// has been written to the socket (or failed to be).
    mutating func flush(context: ChannelHandlerContext, promise: EventLoopPromise<Void>? = nil) {
        if let buffer = held ?? (promise == nil ? nil : context.channel.allocator.buffer(capacity: 0)) {
            held = nil
            context.write(NIOAny(buffer), promise: promise)  // an empty write completes in order
        }
        context.flush()
    }

    /// Drops what is held (the connection is going away).
    mutating func discard() {
        held = nil
    }

    private mutating func passHeld(context: ChannelHandlerContext) {
        guard let buffer = held else { return }
        held = nil
        context.write(NIOAny(buffer), promise: nil)
    }
}
