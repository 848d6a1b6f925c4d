import NIOCore

/// Client bytes the request parser has not consumed yet.
///
/// A read is parsed where it lies, but no reference to the read's buffer is kept past the
/// read: NIOSSL decrypts the next read into the same 32 KiB buffer only if nothing else
/// holds it, and would otherwise allocate a new one. So what is left over (a head split
/// across reads, requests pipelined behind the one in flight) is copied aside, and an
/// emptied buffer is let go.
struct ClientInput {
    /// Parsed from in place (`HTTP1RequestParser.next(from:)`).
    var bytes = ByteBuffer()
    /// `bytes` is a buffer of our own, not a read's.
    private var owned = false

    var count: Int { bytes.readableBytes }

    mutating func append(_ read: ByteBuffer) {
        if bytes.readableBytes == 0 {
            bytes = read
            owned = false
        } else {
            var read = read
            bytes.writeBuffer(&read)  // into a buffer of our own (a shared one is copied first)
            owned = true
        }
    }

    /// The read has been parsed as far as it goes.
    mutating func endOfRead(allocator: ByteBufferAllocator) {
        if bytes.readableBytes == 0 {
            discard()
        } else if !owned {
            bytes = allocator.buffer(buffer: bytes)
            owned = true
        }
    }

    mutating func discard() {
        bytes = ByteBuffer()
        owned = false
    }
}
