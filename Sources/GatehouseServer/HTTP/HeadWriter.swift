import NIOCore

/// Writes a message head's many small pieces through one pointer. `ByteBuffer.writeString`
/// per piece (a capacity check, a uniqueness check and an exclusivity check each time) cost
/// more than the copying itself: a request head is some forty pieces.
///
/// The caller counts the bytes first; every append checks it stays inside that count, and
/// `write` checks the count was met exactly, so a miscount is a trap, never a short or an
/// overlong head.
struct HeadWriter {
    private var cursor: UnsafeMutableRawPointer
    private let end: UnsafeMutableRawPointer

    /// Appends exactly `count` bytes, written by `body`, to `buffer`.
    static func write(into buffer: inout ByteBuffer, count: Int, _ body: (inout HeadWriter) -> Void) {
        guard count > 0 else { return }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw in
            let start = raw.baseAddress!
            var writer = HeadWriter(cursor: start, end: start + count)
            body(&writer)
            precondition(writer.cursor == writer.end, "head shorter than counted")
            return count
        }
    }

    /// The length of `name: value CRLF`.
    static func fieldCount(_ name: String, _ value: String) -> Int { name.utf8.count + 2 + value.utf8.count + 2 }

    /// `name: value CRLF` (``fieldCount(_:_:)`` bytes).
    mutating func appendField(_ name: String, _ value: String) {
        append(name)
        append(": ")
        append(value)
        append("\r\n")
    }

    mutating func append(_ text: String) {
        let copied: Void? = text.utf8.withContiguousStorageIfAvailable { bytes in
            append(UnsafeRawBufferPointer(bytes))
        }
        if copied == nil {
            for byte in text.utf8 { append(byte) }
        }
    }

    mutating func append(_ text: StaticString) {
        append(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    mutating func append(_ byte: UInt8) {
        precondition(cursor < end, "head longer than counted")
        cursor.storeBytes(of: byte, as: UInt8.self)
        cursor += 1
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        precondition(end - cursor >= bytes.count, "head longer than counted")
        cursor.copyMemory(from: base, byteCount: bytes.count)
        cursor += bytes.count
    }
}
