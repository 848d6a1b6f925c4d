import NIOCore

/// One HTTP/1.1 message body on the wire (RFC 9112 §6–7), for both parsers: a fixed
/// length, the chunked coding, or (responses only) everything until the connection closes.
/// Body bytes are slices of the read buffer, never copies. Chunk extensions are skipped and
/// trailer fields dropped (never relayed); a malformed chunk line fails the message.
struct HTTP1BodyDecoder {
    enum Framing: Equatable {
        case none
        case contentLength(Int)
        case chunked
        /// No length: the body ends when the peer closes (never reused).
        case untilClose
    }

    struct Limits {
        var maxChunkLineBytes = 4 * 1024
        var maxTrailerBytes = 16 * 1024
    }

    enum Failure: Error, Equatable {
        case malformedChunk
        case trailersTooLarge
        /// The connection ended in the middle of the body.
        case truncated
    }

    enum Event {
        case body(ByteBuffer)
        case end
    }

    private enum State {
        case endPending
        case fixed(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataCR
        case chunkDataLF
        case trailers
        case untilClose
        case done
    }

    private let limits: Limits
    private var state: State
    // Progress through a chunk-size line or the trailer section.
    private var lineLength = 0
    private var sawCR = false
    private var chunkSize = 0
    private var chunkDigits = 0
    private var inChunkExtension = false
    /// Whitespace followed the chunk size: only more of it, a `;` or the CRLF may come.
    private var afterChunkSizeSpace = false
    private var trailerBytes = 0
    /// The trailer line being read has passed its colon.
    private var inTrailerValue = false

    init(framing: Framing, limits: Limits) {
        self.limits = limits
        switch framing {
        case .none, .contentLength(0): state = .endPending
        case .contentLength(let length): state = .fixed(remaining: length)
        case .chunked: state = .chunkSize
        case .untilClose: state = .untilClose
        }
    }

    /// The next event from `buffer` (consuming what it used), or nil when more bytes are
    /// needed. After `.end`, nil: what follows belongs to the next message.
    mutating func next(from buffer: inout ByteBuffer) throws(Failure) -> Event? {
        while true {
            switch state {
            case .done:
                return nil
            case .endPending:
                state = .done
                return .end
            case .fixed(let remaining):
                guard let (slice, left) = Self.bodySlice(of: &buffer, remaining: remaining) else { return nil }
                state = left == 0 ? .endPending : .fixed(remaining: left)
                return .body(slice)
            case .chunkData(let remaining):
                guard let (slice, left) = Self.bodySlice(of: &buffer, remaining: remaining) else { return nil }
                state = left == 0 ? .chunkDataCR : .chunkData(remaining: left)
                return .body(slice)
            case .chunkSize:
                guard try readChunkSizeLine(from: &buffer) else { return nil }
                if chunkSize == 0 {
                    startLine()
                    trailerBytes = 0
                    state = .trailers
                } else {
                    state = .chunkData(remaining: chunkSize)
                }
            case .chunkDataCR, .chunkDataLF:
                guard let byte = buffer.readInteger(as: UInt8.self) else { return nil }
                if case .chunkDataCR = state {
                    guard byte == .cr else { throw .malformedChunk }
                    state = .chunkDataLF
                } else {
                    guard byte == .lf else { throw .malformedChunk }
                    startLine()
                    state = .chunkSize
                }
            case .trailers:
                guard try readTrailers(from: &buffer) else { return nil }
                state = .done
                return .end
            case .untilClose:
                guard buffer.readableBytes > 0 else { return nil }
                return .body(buffer.readSlice(length: buffer.readableBytes)!)
            }
        }
    }

    /// The peer closed its side: ends a body delimited by the close, or says what was cut.
    mutating func endOfInput() throws(Failure) -> Event? {
        switch state {
        case .done: return nil
        case .endPending, .untilClose:
            state = .done
            return .end
        default:
            throw .truncated
        }
    }

    /// Up to `remaining` body bytes, sliced (not copied) from `buffer`, and what is left after them.
    private static func bodySlice(of buffer: inout ByteBuffer, remaining: Int) -> (ByteBuffer, Int)? {
        guard buffer.readableBytes > 0 else { return nil }
        let count = min(remaining, buffer.readableBytes)
        return (buffer.readSlice(length: count)!, remaining - count)
    }

    private mutating func startLine() {
        lineLength = 0
        sawCR = false
        chunkSize = 0
        chunkDigits = 0
        inChunkExtension = false
        afterChunkSizeSpace = false
    }

    /// chunk-size [ chunk-ext ] CRLF; true once the line is complete (`chunkSize` holds it).
    private mutating func readChunkSizeLine(from buffer: inout ByteBuffer) throws(Failure) -> Bool {
        while let byte = buffer.readInteger(as: UInt8.self) {
            lineLength += 1
            guard lineLength <= limits.maxChunkLineBytes else { throw .malformedChunk }
            if sawCR {
                // Whitespace after the size is allowed only before a `;` (BWS in chunk-ext).
                guard byte == .lf, chunkDigits > 0, !afterChunkSizeSpace || inChunkExtension else { throw .malformedChunk }
                return true
            }
            if byte == .cr {
                sawCR = true
            } else if inChunkExtension {
                guard byte.isFieldContent else { throw .malformedChunk }
            } else if let digit = byte.hexDigitValue, !afterChunkSizeSpace {
                // 15 hex digits stay below 2^60: no overflow.
                guard chunkDigits < 15 else { throw .malformedChunk }
                chunkSize = chunkSize << 4 | digit
                chunkDigits += 1
            } else if chunkDigits > 0 && byte == UInt8(ascii: ";") {
                inChunkExtension = true
            } else if chunkDigits > 0 && (byte == .space || byte == .tab) {
                // BWS before `;` (RFC 9112 §7.1.1); "5 6" must not pass as a size of 5.
                afterChunkSizeSpace = true
            } else {
                throw .malformedChunk
            }
        }
        return false
    }

    /// Trailer fields up to the blank line, dropped; true once the blank line arrived. Each
    /// line must be a well-formed `name: value` field line (a token, a colon, field content):
    /// where a chunked body ends must not depend on how a parser treats a malformed trailer
    /// (`0\r\nGET /x HTTP/1.1\r\n...` would be a second request to one that skips them).
    private mutating func readTrailers(from buffer: inout ByteBuffer) throws(Failure) -> Bool {
        while let byte = buffer.readInteger(as: UInt8.self) {
            trailerBytes += 1
            guard trailerBytes <= limits.maxTrailerBytes else { throw .trailersTooLarge }
            if sawCR {
                guard byte == .lf else { throw .malformedChunk }
                if lineLength == 0 { return true }
                lineLength = 0
                sawCR = false
                inTrailerValue = false
            } else if byte == .cr {
                // Either the blank line, or the end of a line that reached its value.
                guard lineLength == 0 || inTrailerValue else { throw .malformedChunk }
                sawCR = true
            } else if inTrailerValue {
                guard byte.isFieldContent else { throw .malformedChunk }
                lineLength += 1
            } else if byte == UInt8(ascii: ":") {
                guard lineLength > 0 else { throw .malformedChunk }
                inTrailerValue = true
                lineLength += 1
            } else {
                // The name: no leading whitespace (obs-fold), none before the colon.
                guard byte.isTokenCharacter else { throw .malformedChunk }
                lineLength += 1
            }
        }
        return false
    }
}
