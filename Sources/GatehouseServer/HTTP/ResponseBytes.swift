import NIOCore
import NIOHTTP1

/// Response bytes toward the client. The client pipeline has no response encoder: the
/// gateway writes heads and body framing itself, so a proxied response's head is built from
/// the upstream's bytes (`HeaderRewriter.writeClientResponseHead`) without a `String` per field.
enum ResponseBytes {
    /// A head the gateway makes itself (errors, `100 Continue`).
    static func head(
        versionMinor: Int, status: HTTPResponseStatus, headers: [(String, String)], allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 160)
        writeStatusLine(versionMinor: versionMinor, status: Int(status.code), into: &buffer) { buffer in
            buffer.writeString(status.reasonPhrase)
        }
        for (name, value) in headers { writeField(name, value, into: &buffer) }
        buffer.writeStaticString("\r\n")
        return buffer
    }

    static func writeStatusLine(
        versionMinor: Int, status: Int, into buffer: inout ByteBuffer, reason: (inout ByteBuffer) -> Void
    ) {
        buffer.writeStaticString(versionMinor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        buffer.writeInteger(UInt8(truncatingIfNeeded: 48 + status / 100 % 10))
        buffer.writeInteger(UInt8(truncatingIfNeeded: 48 + status / 10 % 10))
        buffer.writeInteger(UInt8(truncatingIfNeeded: 48 + status % 10))
        buffer.writeInteger(UInt8(ascii: " "))
        reason(&buffer)
        buffer.writeStaticString("\r\n")
    }

    static func writeField(_ name: String, _ value: String, into buffer: inout ByteBuffer) {
        buffer.writeString(name)
        buffer.writeStaticString(": ")
        buffer.writeString(value)
        buffer.writeStaticString("\r\n")
    }

    /// Chunks at least this big are framed around, not copied.
    static let maxCopiedChunkBytes = 16 * 1024

    /// `body` as one chunk of a chunked body: `size CRLF data CRLF`. Small bodies are copied
    /// into one buffer (one pipeline write); large ones go out as three writes.
    static func writeChunk(_ body: ByteBuffer, allocator: ByteBufferAllocator, _ write: (ByteBuffer) -> Void) {
        guard body.readableBytes > 0 else { return }  // an empty chunk would end the body
        var prefix = allocator.buffer(capacity: body.readableBytes < maxCopiedChunkBytes ? body.readableBytes + 24 : 24)
        prefix.writeString(String(body.readableBytes, radix: 16))
        prefix.writeStaticString("\r\n")
        guard body.readableBytes < maxCopiedChunkBytes else {
            write(prefix)
            write(body)
            write(allocator.buffer(staticString: "\r\n"))
            return
        }
        var body = body
        prefix.writeBuffer(&body)
        prefix.writeStaticString("\r\n")
        write(prefix)
    }

    /// The last chunk and the end of an empty trailer section.
    static func lastChunk(allocator: ByteBufferAllocator) -> ByteBuffer {
        allocator.buffer(staticString: "0\r\n\r\n")
    }
}
