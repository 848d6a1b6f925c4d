import NIOCore

/// Gathers one message head (start line through the blank line) from reads that may split
/// it anywhere; at most `limit` bytes are held. A head that arrives whole in one read is
/// sliced from it, not copied; the start of a split one is copied aside.
struct HTTP1HeadReader {
    let limit: Int
    private var partial: ByteBuffer?

    init(limit: Int) {
        self.limit = limit
    }

    /// Bytes of a head split across reads are held here.
    var hasPartialHead: Bool { partial != nil }

    /// The whole head once its blank line arrived (consumed from `buffer`), or nil for more.
    mutating func read(from buffer: inout ByteBuffer) throws(HTTP1Syntax.HeadError) -> ByteBuffer? {
        if var held = partial {
            partial = nil
            held.writeBuffer(&buffer)
            buffer = held
        }
        guard buffer.readableBytes > 0 else { return nil }
        guard let end = try HTTP1Syntax.headLength(buffer, limit: limit) else {
            // Bounded: `headLength` throws once more than `limit` bytes came without an end.
            // Copied, so the read buffer it came in (TLS's, say) is not held and can be reused.
            var held = ByteBufferAllocator().buffer(capacity: max(buffer.readableBytes, 1024))
            held.writeBuffer(&buffer)
            partial = held
            return nil
        }
        return buffer.readSlice(length: end)!
    }

    mutating func reset() {
        partial = nil
    }
}
