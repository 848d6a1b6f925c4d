import GatehouseCore
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// A strict, incremental HTTP/1.1 response parser for upstream connections (RFC 9112).
///
/// One request is in flight per upstream connection, so the parser is told before each
/// request whether its response may carry a body (`expectResponse(noBody:)`); bytes that
/// arrive when no response is expected are an error. Whatever could desync the connection
/// fails the response and the connection is never reused: Content-Length together with
/// Transfer-Encoding, differing or non-numeric lengths, a transfer coding other than
/// `chunked`, obs-fold, a bare CR or LF, control bytes in a field, a malformed chunk.
/// Interim 1xx responses are consumed (the gateway answers `100 Continue` itself); 101 is an
/// error, since the gateway never asks to switch protocols.
///
/// `next(from:)` hands out one event at a time, so a receiver may start the connection's
/// next exchange (`expectResponse`) from inside its handling of `.end`.
struct HTTP1ResponseParser {
    struct Limits {
        var maxHeadBytes = 64 * 1024
        var maxFields = 256
        var maxChunkLineBytes = 4 * 1024
        var maxTrailerBytes = 16 * 1024
        var maxInformational = 16
        /// Field names one response's `Connection` headers may list (hop-by-hop for it).
        var maxConnectionOptions = 16
    }

    enum Failure: Error, Equatable {
        /// Bytes while no response is expected.
        case unsolicited
        case malformedStatusLine
        case malformedField
        case headTooLarge
        case tooManyFields
        case invalidContentLength
        case conflictingFraming
        case unsupportedTransferEncoding
        case switchingProtocols
        case tooManyInformational
        case malformedChunk
        case trailersTooLarge
        /// The connection ended in the middle of a response.
        case truncated
    }

    enum Event {
        case head(UpstreamResponseHead)
        case body(ByteBuffer)
        case end
    }

    private enum State {
        case idle
        case head(noBody: Bool)
        case fixed(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataCR
        case chunkDataLF
        case trailers
        case untilClose
        case endPending
        case failed(Failure)
    }

    let limits: Limits
    private var state = State.idle
    private var informational = 0
    /// A head split across reads, gathered here (bounded by `maxHeadBytes`).
    private var partialHead: ByteBuffer?
    // Progress through a chunk-size line or the trailer section.
    private var lineLength = 0
    private var sawCR = false
    private var chunkSize = 0
    private var chunkDigits = 0
    private var inChunkExtension = false
    /// Whitespace followed the chunk size: only more of it, a `;` or the CRLF may come.
    private var afterChunkSizeSpace = false
    private var trailerBytes = 0

    init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// No response is expected or under way: the connection is between exchanges.
    var isIdle: Bool {
        if case .idle = state { return true }
        return false
    }

    /// A request is about to be sent; `noBody` for a request whose response has no body (HEAD).
    mutating func expectResponse(noBody: Bool) {
        if case .failed = state { return }  // a failed connection stays failed
        state = .head(noBody: noBody)
        informational = 0
        partialHead = nil
    }

    /// The next event from `buffer` (consuming what it used), or nil when more bytes are needed.
    mutating func next(from buffer: inout ByteBuffer) throws -> Event? {
        while true {
            switch state {
            case .failed(let failure):
                throw failure
            case .idle:
                guard buffer.readableBytes == 0 else { throw fail(.unsolicited) }
                return nil
            case .endPending:
                state = .idle
                return .end
            case .head(let noBody):
                guard let head = try readHead(from: &buffer, noBody: noBody) else { return nil }
                if head.status < 200 {
                    informational += 1
                    guard informational <= limits.maxInformational else { throw fail(.tooManyInformational) }
                    continue  // the final response follows
                }
                switch head.framing {
                case .none, .contentLength(0): state = .endPending
                case .contentLength(let length): state = .fixed(remaining: length)
                case .chunked: startChunkLine(); state = .chunkSize
                case .untilClose: state = .untilClose
                }
                return .head(head)
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
                    startChunkLine()
                    trailerBytes = 0
                    state = .trailers
                } else {
                    state = .chunkData(remaining: chunkSize)
                }
            case .chunkDataCR, .chunkDataLF:
                guard let byte = buffer.readInteger(as: UInt8.self) else { return nil }
                if case .chunkDataCR = state {
                    guard byte == .cr else { throw fail(.malformedChunk) }
                    state = .chunkDataLF
                } else {
                    guard byte == .lf else { throw fail(.malformedChunk) }
                    startChunkLine()
                    state = .chunkSize
                }
            case .trailers:
                guard try readTrailers(from: &buffer) else { return nil }
                state = .idle
                return .end
            case .untilClose:
                guard buffer.readableBytes > 0 else { return nil }
                return .body(buffer.readSlice(length: buffer.readableBytes)!)
            }
        }
    }

    /// Up to `remaining` body bytes, sliced (not copied) from `buffer`, and what is left after them.
    private static func bodySlice(of buffer: inout ByteBuffer, remaining: Int) -> (ByteBuffer, Int)? {
        guard buffer.readableBytes > 0 else { return nil }
        let count = min(remaining, buffer.readableBytes)
        return (buffer.readSlice(length: count)!, remaining - count)
    }

    /// The upstream closed its side: ends a body delimited by the close, or says what was cut.
    mutating func endOfInput() throws -> Event? {
        switch state {
        case .idle, .failed: return nil
        case .endPending:
            state = .idle
            return .end
        case .untilClose:
            state = .idle
            return .end
        default:
            throw fail(.truncated)
        }
    }

    private mutating func fail(_ failure: Failure) -> Failure {
        state = .failed(failure)
        partialHead = nil
        return failure
    }

    // MARK: Head

    private mutating func readHead(from buffer: inout ByteBuffer, noBody: Bool) throws -> UpstreamResponseHead? {
        if var partial = partialHead {
            partialHead = nil
            partial.writeBuffer(&buffer)
            buffer = partial
        }
        guard buffer.readableBytes > 0 else { return nil }
        let end: Int?
        do {
            end = try Self.headLength(buffer, limit: limits.maxHeadBytes)
        } catch let failure as Failure {
            throw fail(failure)
        }
        guard let end else {
            // Bounded: `headLength` throws once more than `maxHeadBytes` came without an end.
            partialHead = buffer.readSlice(length: buffer.readableBytes)
            return nil
        }
        let bytes = buffer.readSlice(length: end)!
        do {
            return try Self.parseHead(bytes, noBody: noBody, limits: limits)
        } catch let failure as Failure {
            throw fail(failure)
        }
    }

    /// Bytes up to and including the blank line ending the head; nil if it has not arrived.
    /// Every LF must follow a CR (a bare LF could make another parser see other lines).
    static func headLength(_ buffer: ByteBuffer, limit: Int) throws -> Int? {
        try buffer.withUnsafeReadableBytes { raw -> Int? in
            let count = min(raw.count, limit)
            guard let base = raw.baseAddress else { return nil }
            var index = 0
            while index < count, let found = memchr(base + index, Int32(UInt8.lf), count - index) {
                index = base.distance(to: UnsafeRawPointer(found))
                guard index > 0, raw[index - 1] == .cr else { throw Failure.malformedField }
                if index >= 3, raw[index - 2] == .lf, raw[index - 3] == .cr { return index + 1 }
                index += 1
            }
            if raw.count > limit { throw Failure.headTooLarge }
            return nil
        }
    }

    /// Each element of a comma-separated field value, without the spaces and tabs around it
    /// (empty elements included), in place: `Connection: keep-alive` is on every response.
    static func forEachListElement(
        _ value: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> Void
    ) rethrows {
        var start = 0
        while start <= value.count {
            var end = start
            while end < value.count, value[end] != UInt8(ascii: ",") { end += 1 }
            var first = start
            var last = end
            while first < last, value[first] == .space || value[first] == .tab { first += 1 }
            while last > first, value[last - 1] == .space || value[last - 1] == .tab { last -= 1 }
            try body(UnsafeRawBufferPointer(rebasing: value[first..<last]))
            start = end + 1
        }
    }

    static func parseHead(_ bytes: ByteBuffer, noBody: Bool, limits: Limits) throws -> UpstreamResponseHead {
        try bytes.withUnsafeReadableBytes { raw -> UpstreamResponseHead in
            // status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF
            guard raw.count >= 14, raw[0] == UInt8(ascii: "H"), raw[1] == UInt8(ascii: "T"), raw[2] == UInt8(ascii: "T"),
                raw[3] == UInt8(ascii: "P"), raw[4] == UInt8(ascii: "/"), raw[5] == UInt8(ascii: "1"), raw[6] == UInt8(ascii: "."),
                raw[7] == UInt8(ascii: "0") || raw[7] == UInt8(ascii: "1"),
                raw[8] == .space, raw[9].isDigit, raw[10].isDigit, raw[11].isDigit
            else { throw Failure.malformedStatusLine }
            let versionMinor = Int(raw[7] - UInt8(ascii: "0"))
            let status = Int(raw[9] - 48) * 100 + Int(raw[10] - 48) * 10 + Int(raw[11] - 48)
            guard status >= 100 else { throw Failure.malformedStatusLine }
            var index = 12
            var reasonStart = 12
            if raw[index] == .space {
                index += 1
                reasonStart = index
                while raw[index] != .cr {
                    guard raw[index].isFieldContent else { throw Failure.malformedStatusLine }
                    index += 1
                }
            }
            guard raw[index] == .cr, raw[index + 1] == .lf else { throw Failure.malformedStatusLine }
            let reason = reasonStart..<index
            index += 2

            var fields: [UpstreamResponseHead.Field] = []
            fields.reserveCapacity(12)
            var contentLength: Int?
            var chunked = false
            var transferEncodings = 0
            var close = false
            var keepAliveToken = false
            var listed: [String] = []
            while raw[index] != .cr {
                // A line starting with whitespace is obs-fold: refused (RFC 9112 §5.2).
                let nameStart = index
                while raw[index] != UInt8(ascii: ":") {
                    guard raw[index].isTokenCharacter else { throw Failure.malformedField }
                    index += 1
                }
                guard index > nameStart else { throw Failure.malformedField }
                let name = nameStart..<index
                index += 1
                while raw[index] == .space || raw[index] == .tab { index += 1 }
                let valueStart = index
                var valueEnd = index
                while raw[index] != .cr {
                    let byte = raw[index]
                    guard byte.isFieldContent else { throw Failure.malformedField }
                    index += 1
                    if byte != .space && byte != .tab { valueEnd = index }
                }
                guard raw[index + 1] == .lf else { throw Failure.malformedField }
                index += 2
                fields.append(.init(name: name, value: valueStart..<valueEnd))
                guard fields.count <= limits.maxFields else { throw Failure.tooManyFields }

                let nameBytes = UnsafeRawBufferPointer(rebasing: raw[name])
                let value = UnsafeRawBufferPointer(rebasing: raw[valueStart..<valueEnd])
                switch nameBytes.count {
                case 10 where nameBytes.equalsLowercase("connection"):
                    try Self.forEachListElement(value) { token in
                        if token.equalsLowercase("close") {
                            close = true
                        } else if token.equalsLowercase("keep-alive") {
                            keepAliveToken = true
                        } else if !token.isEmpty {
                            // Bounded, and refused past the bound rather than truncated: a
                            // listed field left out of the list would reach the client.
                            guard listed.count < limits.maxConnectionOptions else { throw Failure.tooManyFields }
                            listed.append(String(decoding: token, as: UTF8.self).lowercased())
                        }
                    }
                case 14 where nameBytes.equalsLowercase("content-length"):
                    guard let length = Self.contentLength(value), contentLength == nil || contentLength == length else {
                        throw Failure.invalidContentLength
                    }
                    contentLength = length
                case 17 where nameBytes.equalsLowercase("transfer-encoding"):
                    transferEncodings += 1
                    chunked = value.equalsLowercase("chunked")
                default:
                    break
                }
            }
            guard raw[index + 1] == .lf, index + 2 == raw.count else { throw Failure.malformedField }

            if status == 101 { throw Failure.switchingProtocols }
            let framing: UpstreamResponseHead.Framing
            if status < 200 || noBody || status == 204 || status == 304 {
                framing = .none
            } else if transferEncodings > 0 {
                guard transferEncodings == 1, chunked, versionMinor == 1 else { throw Failure.unsupportedTransferEncoding }
                guard contentLength == nil else { throw Failure.conflictingFraming }
                framing = .chunked
            } else if let contentLength {
                framing = .contentLength(contentLength)
            } else {
                framing = .untilClose
            }
            let keepAlive = framing != .untilClose && !close && (versionMinor == 1 || keepAliveToken)
            return UpstreamResponseHead(
                bytes: bytes, status: status, versionMinor: versionMinor, reason: reason, fields: fields,
                framing: framing, keepAlive: keepAlive, connectionListed: listed)
        }
    }

    /// `1*DIGIT`, at most 18 digits (no sign, no list, no whitespace).
    private static func contentLength(_ value: UnsafeRawBufferPointer) -> Int? {
        guard !value.isEmpty, value.count <= 18 else { return nil }
        var length = 0
        for byte in value {
            guard byte.isDigit else { return nil }
            length = length * 10 + Int(byte - 48)
        }
        return length
    }

    // MARK: Chunked body

    private mutating func startChunkLine() {
        lineLength = 0
        sawCR = false
        chunkSize = 0
        chunkDigits = 0
        inChunkExtension = false
        afterChunkSizeSpace = false
    }

    /// chunk-size [ chunk-ext ] CRLF; true once the line is complete (`chunkSize` holds it).
    private mutating func readChunkSizeLine(from buffer: inout ByteBuffer) throws -> Bool {
        while let byte = buffer.readInteger(as: UInt8.self) {
            lineLength += 1
            guard lineLength <= limits.maxChunkLineBytes else { throw fail(.malformedChunk) }
            if sawCR {
                guard byte == .lf, chunkDigits > 0 else { throw fail(.malformedChunk) }
                return true
            }
            if byte == .cr {
                sawCR = true
            } else if inChunkExtension {
                guard byte.isFieldContent else { throw fail(.malformedChunk) }
            } else if let digit = byte.hexDigitValue, !afterChunkSizeSpace {
                // 15 hex digits stay below 2^60: no overflow.
                guard chunkDigits < 15 else { throw fail(.malformedChunk) }
                chunkSize = chunkSize << 4 | digit
                chunkDigits += 1
            } else if chunkDigits > 0 && byte == UInt8(ascii: ";") {
                inChunkExtension = true
            } else if chunkDigits > 0 && (byte == .space || byte == .tab) {
                // BWS before `;` (RFC 9112 §7.1.1); "5 6" must not pass as a size of 5.
                afterChunkSizeSpace = true
            } else {
                throw fail(.malformedChunk)
            }
        }
        return false
    }

    /// Trailer fields up to the blank line, dropped (never relayed); true once it arrived.
    private mutating func readTrailers(from buffer: inout ByteBuffer) throws -> Bool {
        while let byte = buffer.readInteger(as: UInt8.self) {
            trailerBytes += 1
            guard trailerBytes <= limits.maxTrailerBytes else { throw fail(.trailersTooLarge) }
            if sawCR {
                guard byte == .lf else { throw fail(.malformedChunk) }
                if lineLength == 0 { return true }
                lineLength = 0
                sawCR = false
            } else if byte == .cr {
                sawCR = true
            } else {
                guard byte.isFieldContent else { throw fail(.malformedChunk) }
                lineLength += 1
            }
        }
        return false
    }
}

extension UInt8 {
    fileprivate static let cr = UInt8(ascii: "\r")
    fileprivate static let lf = UInt8(ascii: "\n")
    fileprivate static let space = UInt8(ascii: " ")
    fileprivate static let tab = UInt8(ascii: "\t")

    fileprivate var isDigit: Bool { self >= 0x30 && self <= 0x39 }

    /// field-vchar, SP or HTAB (obs-text allowed): no control byte, no DEL.
    fileprivate var isFieldContent: Bool { self == .tab || (self >= 0x20 && self != 0x7F) }

    /// tchar (RFC 9110 §5.6.2).
    fileprivate var isTokenCharacter: Bool { HTTPToken.isTokenCharacter(self) }

    fileprivate var hexDigitValue: Int? {
        switch self {
        case 0x30...0x39: return Int(self - 0x30)
        case 0x41...0x46: return Int(self - 0x41 + 10)
        case 0x61...0x66: return Int(self - 0x61 + 10)
        default: return nil
        }
    }
}

/// tchar (RFC 9110 §5.6.2): ALPHA, DIGIT and !#$%&'*+-.^_`|~.
enum HTTPToken {
    static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }
}
