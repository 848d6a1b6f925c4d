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

        var body: HTTP1BodyDecoder.Limits { .init(maxChunkLineBytes: maxChunkLineBytes, maxTrailerBytes: maxTrailerBytes) }
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
        case body
        case failed(Failure)
    }

    let limits: Limits
    private var state = State.idle
    private var informational = 0
    private var headReader: HTTP1HeadReader
    private var body = HTTP1BodyDecoder(framing: .none, limits: .init())

    init(limits: Limits = Limits()) {
        self.limits = limits
        self.headReader = HTTP1HeadReader(limit: limits.maxHeadBytes)
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
        headReader.reset()
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
            case .head(let noBody):
                guard let head = try readHead(from: &buffer, noBody: noBody) else { return nil }
                if head.status < 200 {
                    informational += 1
                    guard informational <= limits.maxInformational else { throw fail(.tooManyInformational) }
                    continue  // the final response follows
                }
                body = HTTP1BodyDecoder(framing: head.framing, limits: limits.body)
                state = .body
                return .head(head)
            case .body:
                do {
                    switch try body.next(from: &buffer) {
                    case .none: return nil
                    case .body(let bytes): return .body(bytes)
                    case .end:
                        state = .idle
                        return .end
                    }
                } catch {
                    throw fail(Failure(error))
                }
            }
        }
    }

    /// The upstream closed its side: ends a body delimited by the close, or says what was cut.
    mutating func endOfInput() throws -> Event? {
        switch state {
        case .idle, .failed: return nil
        case .head: throw fail(.truncated)
        case .body:
            do {
                guard try body.endOfInput() != nil else { return nil }
                state = .idle
                return .end
            } catch {
                throw fail(Failure(error))
            }
        }
    }

    private mutating func fail(_ failure: Failure) -> Failure {
        state = .failed(failure)
        headReader.reset()
        return failure
    }

    // MARK: Head

    private mutating func readHead(from buffer: inout ByteBuffer, noBody: Bool) throws -> UpstreamResponseHead? {
        let bytes: ByteBuffer
        do {
            guard let head = try headReader.read(from: &buffer) else { return nil }
            bytes = head
        } catch {
            throw fail(error == .tooLarge ? .headTooLarge : .malformedField)
        }
        do {
            return try Self.parseHead(bytes, noBody: noBody, limits: limits)
        } catch let failure as Failure {
            throw fail(failure)
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
                    try HTTP1Syntax.forEachListElement(value) { token in
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
                    guard let length = HTTP1Syntax.contentLength(value), contentLength == nil || contentLength == length else {
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
}

extension HTTP1ResponseParser.Failure {
    init(_ body: HTTP1BodyDecoder.Failure) {
        switch body {
        case .malformedChunk: self = .malformedChunk
        case .trailersTooLarge: self = .trailersTooLarge
        case .truncated: self = .truncated
        }
    }
}
