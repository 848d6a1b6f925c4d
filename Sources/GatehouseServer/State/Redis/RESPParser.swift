import NIOCore

/// A reply the client refuses to read: malformed, a type it does not speak, or over a bound.
/// The connection is closed after one of these (the byte stream can no longer be trusted).
struct RESPProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    let message: String
    var description: String { "RESP protocol error: \(message)" }
}

/// Parses RESP2 replies from a buffer, bounded so that a broken or hostile server costs an
/// error, never unbounded memory: bulk strings, array sizes, nesting and line lengths are
/// capped, and the decoder caps the bytes held for one incomplete reply.
///
/// `parse` is all-or-nothing: it returns nil (and leaves the buffer alone) until a whole
/// reply has arrived, so a reply split anywhere across reads parses the same.
struct RESPParser: Sendable {
    struct Limits: Sendable {
        /// Longest bulk string (`$n`).
        var maxBulkLength = 1 << 20
        /// Most elements in one array (`*n`).
        var maxArrayCount = 1024
        /// Deepest nesting of arrays (an array inside an array is depth 2).
        var maxDepth = 8
        /// Longest simple string, error or integer line.
        var maxLineLength = 64 * 1024
        /// Most bytes buffered while one reply is incomplete (enforced by `RESPReplyDecoder`).
        var maxReplyBytes = 4 << 20
    }

    let limits: Limits

    init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// One whole reply from the front of `buffer` (consumed), or nil when it is incomplete.
    func parse(_ buffer: inout ByteBuffer) throws(RESPProtocolError) -> RESPValue? {
        var cursor = buffer.readerIndex
        guard let value = try parseValue(buffer, at: &cursor, depth: 0) else { return nil }
        buffer.moveReaderIndex(to: cursor)
        return value
    }

    private func parseValue(_ buffer: ByteBuffer, at cursor: inout Int, depth: Int) throws(RESPProtocolError) -> RESPValue? {
        guard let type = buffer.getInteger(at: cursor, as: UInt8.self) else { return nil }
        var position = cursor + 1
        guard let line = try readLine(buffer, at: &position) else { return nil }
        let value: RESPValue
        switch type {
        case UInt8(ascii: "+"):
            value = .simpleString(String(decoding: line, as: UTF8.self))
        case UInt8(ascii: "-"):
            value = .error(String(decoding: line, as: UTF8.self))
        case UInt8(ascii: ":"):
            value = .integer(try Self.integer(line))
        case UInt8(ascii: "$"):
            guard let length = try length(line, max: limits.maxBulkLength, what: "bulk string") else {
                value = .bulkString(nil)
                break
            }
            guard buffer.writerIndex - position >= length + 2 else { return nil }
            guard buffer.getInteger(at: position + length, as: UInt16.self) == Self.crlf else {
                throw RESPProtocolError(message: "bulk string not terminated by CRLF")
            }
            value = .bulkString(buffer.getSlice(at: position, length: length))
            position += length + 2
        case UInt8(ascii: "*"):
            guard let count = try length(line, max: limits.maxArrayCount, what: "array") else {
                value = .array(nil)
                break
            }
            guard depth + 1 <= limits.maxDepth else {
                throw RESPProtocolError(message: "arrays nested deeper than \(limits.maxDepth)")
            }
            var elements: [RESPValue] = []
            // Not `count`: the server has not proved it will send that many yet.
            elements.reserveCapacity(min(count, 16))
            for _ in 0..<count {
                guard let element = try parseValue(buffer, at: &position, depth: depth + 1) else { return nil }
                elements.append(element)
            }
            value = .array(elements)
        default:
            throw RESPProtocolError(message: "unsupported reply type byte 0x\(String(type, radix: 16)) (RESP2 only)")
        }
        cursor = position
        return value
    }

    private static let crlf: UInt16 = 0x0D0A

    /// The bytes up to CRLF (cursor moved past it), or nil when the CRLF has not arrived.
    private func readLine(_ buffer: ByteBuffer, at cursor: inout Int) throws(RESPProtocolError) -> [UInt8]? {
        let window = min(buffer.writerIndex - cursor, limits.maxLineLength + 2)
        guard window > 0, let view = buffer.viewBytes(at: cursor, length: window) else { return nil }
        // The view's indices are the buffer's: `cr` is an absolute index.
        guard let cr = view.firstIndex(of: UInt8(ascii: "\r")) else {
            if window > limits.maxLineLength { throw RESPProtocolError(message: "line longer than \(limits.maxLineLength) bytes") }
            return nil
        }
        guard cr + 1 < view.endIndex else { return nil }
        guard view[cr + 1] == UInt8(ascii: "\n") else { throw RESPProtocolError(message: "CR not followed by LF") }
        let line = Array(view[view.startIndex..<cr])
        if line.contains(UInt8(ascii: "\n")) { throw RESPProtocolError(message: "bare LF in a line") }
        cursor = cr + 2
        return line
    }

    /// A length field: nil for -1 (null), else 0...max.
    private func length(_ line: [UInt8], max: Int, what: String) throws(RESPProtocolError) -> Int? {
        if line == [UInt8(ascii: "-"), UInt8(ascii: "1")] { return nil }
        let value = try Self.integer(line)
        guard value >= 0 else { throw RESPProtocolError(message: "negative \(what) length \(value)") }
        guard value <= max else { throw RESPProtocolError(message: "\(what) of \(value) exceeds the limit of \(max)") }
        return Int(value)
    }

    /// A strict decimal integer: optional '-', then 1...19 digits, no overflow.
    private static func integer(_ line: [UInt8]) throws(RESPProtocolError) -> Int64 {
        var digits = line[...]
        let negative = digits.first == UInt8(ascii: "-")
        if negative { digits = digits.dropFirst() }
        guard !digits.isEmpty, digits.count <= 19 else { throw RESPProtocolError(message: "malformed integer") }
        var value: Int64 = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { throw RESPProtocolError(message: "malformed integer") }
            let (times, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times.addingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
            guard !o1, !o2 else { throw RESPProtocolError(message: "integer out of range") }
            value = sum
        }
        return negative ? -value : value
    }
}
