import GatehouseCore
import NIOCore
import NIOHTTP1

/// A strict, incremental HTTP/1.1 request parser for client connections (RFC 9112).
///
/// The gateway fronts services that trust whatever it forwards, so every request that two
/// parsers could read differently is refused, and the connection with it: a bare CR or LF,
/// obs-fold, whitespace before a colon, control bytes, Content-Length together with
/// Transfer-Encoding, repeated or non-numeric lengths, a transfer coding other than a
/// single `chunked`, a malformed chunk. Up to two empty lines before a request line are
/// skipped (RFC 9112 §2.2). Any token is a method; routes decide which they take.
///
/// `next(from:)` hands out one event at a time and never reads past the request it is in,
/// so a caller holding a request in flight simply stops asking: requests pipelined behind
/// it stay unparsed in the caller's buffer.
struct HTTP1RequestParser {
    struct Limits {
        /// Method, target, version and the CRLF ending them; a longer request line is answered 414.
        var maxRequestLineBytes: Int
        /// The whole head; a longer one is answered 431.
        var maxHeadBytes: Int
        var maxFields: Int
        var body = HTTP1BodyDecoder.Limits()

        init(maxRequestLineBytes: Int, maxHeadBytes: Int, maxFields: Int) {
            self.maxRequestLineBytes = maxRequestLineBytes
            self.maxHeadBytes = maxHeadBytes
            self.maxFields = maxFields
        }

        /// From a listener's limits: the target may be `maxURIBytes` long (the method and
        /// version come on top), the fields `maxHeaderBytes` in all. The exact limits are
        /// checked on the parsed head (`RequestValidator`); these bound what is buffered.
        init(_ limits: RequestLimits) {
            self.init(
                maxRequestLineBytes: limits.maxURIBytes + 64,
                maxHeadBytes: limits.maxURIBytes + 64 + limits.maxHeaderBytes + 4 * limits.maxHeaderCount + 2,
                maxFields: limits.maxHeaderCount)
        }
    }

    enum Failure: Error, Equatable {
        case malformedRequestLine
        case unsupportedVersion
        case malformedField
        case uriTooLong
        case headTooLarge
        case tooManyFields
        case ambiguousFraming
        case malformedChunk
        case trailersTooLarge

        /// The decision record's reason (and so the status) for a request refused this way.
        var reason: ReasonCode {
            switch self {
            case .malformedRequestLine, .unsupportedVersion, .malformedField: return .requestMalformed
            case .uriTooLong: return .requestURITooLong
            case .headTooLarge, .tooManyFields, .trailersTooLarge: return .requestHeadersTooLarge
            case .ambiguousFraming, .malformedChunk: return .requestAmbiguousFraming
            }
        }
    }

    enum Event {
        case head(HTTPRequestHead)
        case body(ByteBuffer)
        case end
    }

    private enum State {
        case head
        case body
        case failed(Failure)
    }

    /// Empty lines allowed before a request line.
    static let maxEmptyLines = 2

    let limits: Limits
    private var state = State.head
    private var headReader: HTTP1HeadReader
    private var body = HTTP1BodyDecoder(framing: .none, limits: .init())
    private var emptyLines = 0

    init(limits: Limits) {
        self.limits = limits
        self.headReader = HTTP1HeadReader(limit: limits.maxHeadBytes)
    }

    /// A failed parser stays failed: the connection cannot be read any further.
    var hasFailed: Bool {
        if case .failed = state { return true }
        return false
    }

    /// Between requests: no part of one has been read.
    var isBetweenRequests: Bool {
        if case .head = state { return !headReader.hasPartialHead && emptyLines == 0 }
        return false
    }

    /// The next event from `buffer` (consuming what it used), or nil when more bytes are
    /// needed. After `.end`, the next call starts on the next request.
    mutating func next(from buffer: inout ByteBuffer) throws(Failure) -> Event? {
        switch state {
        case .failed(let failure):
            throw failure
        case .head:
            guard let (head, framing) = try readHead(from: &buffer) else { return nil }
            body = HTTP1BodyDecoder(framing: framing, limits: limits.body)
            state = .body
            return .head(head)
        case .body:
            do {
                switch try body.next(from: &buffer) {
                case .none: return nil
                case .body(let bytes): return .body(bytes)
                case .end:
                    state = .head
                    emptyLines = 0
                    return .end
                }
            } catch {
                throw fail(error == .trailersTooLarge ? .trailersTooLarge : .malformedChunk)
            }
        }
    }

    private mutating func fail(_ failure: Failure) -> Failure {
        state = .failed(failure)
        headReader.reset()
        return failure
    }

    // MARK: Head

    private mutating func readHead(from buffer: inout ByteBuffer) throws(Failure) -> (HTTPRequestHead, HTTP1BodyDecoder.Framing)? {
        if !headReader.hasPartialHead {
            try skipEmptyLines(&buffer)
            // A lone CR may be the start of one more empty line: wait for what follows.
            if buffer.readableBytes == 1, buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) == .cr { return nil }
        }
        let bytes: ByteBuffer
        do {
            guard let head = try headReader.read(from: &buffer) else { return nil }
            bytes = head
        } catch {
            guard error == .tooLarge else { throw fail(.malformedField) }
            // Too large either way; a request line with no end in sight is the target's fault.
            let lineEnds = buffer.withUnsafeReadableBytes { raw in
                raw.prefix(limits.maxRequestLineBytes).contains(.lf)
            }
            throw fail(lineEnds ? .headTooLarge : .uriTooLong)
        }
        do {
            return try Self.parseHead(bytes, limits: limits)
        } catch {
            throw fail(error)
        }
    }

    private mutating func skipEmptyLines(_ buffer: inout ByteBuffer) throws(Failure) {
        while buffer.readableBytes >= 2, buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) == 0x0D0A {
            emptyLines += 1
            guard emptyLines <= Self.maxEmptyLines else { throw fail(.malformedRequestLine) }
            buffer.moveReaderIndex(forwardBy: 2)
        }
    }

    /// request-line = method SP request-target SP HTTP-version CRLF, then the field lines.
    /// `bytes` ends with the blank line, so every scan stops at a CR at the latest.
    static func parseHead(_ bytes: ByteBuffer, limits: Limits) throws(Failure) -> (HTTPRequestHead, HTTP1BodyDecoder.Framing) {
        let parsed = bytes.withUnsafeReadableBytes { raw -> Result<(HTTPRequestHead, HTTP1BodyDecoder.Framing), Failure> in
            var index = 0
            while raw[index] != .space {
                guard raw[index].isTokenCharacter else { return .failure(.malformedRequestLine) }
                index += 1
            }
            guard index > 0 else { return .failure(.malformedRequestLine) }
            let method = Self.method(UnsafeRawBufferPointer(rebasing: raw[0..<index]))
            index += 1
            // request-target: visible ASCII only (anything else must be percent-encoded).
            let targetStart = index
            while raw[index] != .space {
                guard raw[index] > 0x20 && raw[index] < 0x7F else { return .failure(.malformedRequestLine) }
                index += 1
            }
            guard index > targetStart else { return .failure(.malformedRequestLine) }
            let target = String(decoding: UnsafeRawBufferPointer(rebasing: raw[targetStart..<index]), as: UTF8.self)
            index += 1
            guard raw.count - index >= 10, raw[index] == UInt8(ascii: "H"), raw[index + 1] == UInt8(ascii: "T"),
                raw[index + 2] == UInt8(ascii: "T"), raw[index + 3] == UInt8(ascii: "P"), raw[index + 4] == UInt8(ascii: "/"),
                raw[index + 5].isDigit, raw[index + 6] == UInt8(ascii: "."), raw[index + 7].isDigit,
                raw[index + 8] == .cr, raw[index + 9] == .lf
            else { return .failure(.malformedRequestLine) }
            guard raw[index + 5] == UInt8(ascii: "1"), raw[index + 7] <= UInt8(ascii: "1") else {
                return .failure(.unsupportedVersion)
            }
            let versionMinor = Int(raw[index + 7] - UInt8(ascii: "0"))
            index += 10
            guard index <= limits.maxRequestLineBytes else { return .failure(.uriTooLong) }

            var fields: [(String, String)] = []
            fields.reserveCapacity(8)
            var framingFields = RequestValidator.FramingFields()
            // A tab after a framing value: llhttp, among others, refuses it; a front proxy that
            // ignored the field would end the body elsewhere, so it is refused here too.
            var framingWhitespace = false
            while raw[index] != .cr {
                // A line starting with whitespace is obs-fold: refused (RFC 9112 §5.2).
                let nameStart = index
                while raw[index] != UInt8(ascii: ":") {
                    guard raw[index].isTokenCharacter else { return .failure(.malformedField) }
                    index += 1
                }
                guard index > nameStart else { return .failure(.malformedField) }
                let name = UnsafeRawBufferPointer(rebasing: raw[nameStart..<index])
                index += 1
                while raw[index] == .space || raw[index] == .tab { index += 1 }
                let valueStart = index
                var valueEnd = index
                while true {
                    while index + 8 <= raw.count, HTTP1Syntax.allVisible(raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)) {
                        index += 8
                        valueEnd = index
                    }
                    let byte = raw[index]
                    if byte == .cr { break }
                    guard byte.isFieldContent else { return .failure(.malformedField) }
                    index += 1
                    if byte != .space && byte != .tab { valueEnd = index }
                }
                guard raw[index + 1] == .lf else { return .failure(.malformedField) }
                index += 2
                guard fields.count < limits.maxFields else { return .failure(.tooManyFields) }
                let value = String(decoding: UnsafeRawBufferPointer(rebasing: raw[valueStart..<valueEnd]), as: UTF8.self)
                switch name.count {
                case 14 where name.equalsLowercase("content-length"):
                    framingFields.contentLength.add(value)
                    framingWhitespace = framingWhitespace || Self.hasTab(raw, valueStart..<index - 2)
                case 17 where name.equalsLowercase("transfer-encoding"):
                    framingFields.transferEncoding.add(value)
                    framingWhitespace = framingWhitespace || Self.hasTab(raw, valueStart..<index - 2)
                default: break
                }
                fields.append((String(decoding: name, as: UTF8.self), value))
            }
            guard raw[index + 1] == .lf, index + 2 == raw.count else { return .failure(.malformedField) }

            if framingWhitespace { return .failure(.ambiguousFraming) }
            let framing: HTTP1BodyDecoder.Framing
            switch RequestValidator.framing(framingFields, versionMinor: versionMinor) {
            case .failure: return .failure(.ambiguousFraming)
            case .success(.none): framing = .none
            case .success(.chunked): framing = .chunked
            case .success(.contentLength(let length)): framing = .contentLength(length)
            }
            let version = HTTPVersion(major: 1, minor: versionMinor)
            return .success((HTTPRequestHead(version: version, method: method, uri: target, headers: HTTPHeaders(fields)), framing))
        }
        return try parsed.get()
    }

    private static func hasTab(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>) -> Bool {
        raw[range].contains(.tab)
    }

    /// The common methods without building a `String` to look them up.
    private static func method(_ bytes: UnsafeRawBufferPointer) -> HTTPMethod {
        switch bytes.count {
        case 3 where bytes[0] == UInt8(ascii: "G") && bytes[1] == UInt8(ascii: "E") && bytes[2] == UInt8(ascii: "T"):
            return .GET
        case 4 where bytes[0] == UInt8(ascii: "P") && bytes[1] == UInt8(ascii: "O") && bytes[2] == UInt8(ascii: "S")
            && bytes[3] == UInt8(ascii: "T"):
            return .POST
        default:
            return HTTPMethod(rawValue: String(decoding: bytes, as: UTF8.self))
        }
    }
}
