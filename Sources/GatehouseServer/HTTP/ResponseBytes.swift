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
        let reason = status.reasonPhrase
        var count = statusLineCount(reasonCount: reason.utf8.count) + 2
        for (name, value) in headers { count += HeadWriter.fieldCount(name, value) }
        var buffer = allocator.buffer(capacity: count)
        HeadWriter.write(into: &buffer, count: count) { out in
            writeStatusLine(versionMinor: versionMinor, status: Int(status.code), into: &out) { $0.append(reason) }
            for (name, value) in headers { out.appendField(name, value) }
            out.append("\r\n")
        }
        return buffer
    }

    /// `HTTP/1.x NNN reason CRLF`
    static func statusLineCount(reasonCount: Int) -> Int { 9 + 3 + 1 + reasonCount + 2 }

    static func writeStatusLine(
        versionMinor: Int, status: Int, into out: inout HeadWriter, reason: (inout HeadWriter) -> Void
    ) {
        out.append(versionMinor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        out.append(UInt8(truncatingIfNeeded: 48 + status / 100 % 10))
        out.append(UInt8(truncatingIfNeeded: 48 + status / 10 % 10))
        out.append(UInt8(truncatingIfNeeded: 48 + status % 10))
        out.append(UInt8(ascii: " "))
        reason(&out)
        out.append("\r\n")
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
