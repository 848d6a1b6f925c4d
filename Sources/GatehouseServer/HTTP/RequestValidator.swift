import GatehouseCore
import NIOHTTP1

/// Strictness beyond NIO's parser, applied to every request head before routing: framing
/// that two parsers could read differently, Host rules, head size limits and expectations.
/// (The body limit depends on the route, so the handler checks it after routing.)
/// Each failure is a value naming the reason; `closeConnection` says whether the framing
/// is in doubt (then the connection cannot safely carry another request).
struct RequestValidator: Sendable {
    struct Rejection: Error, Equatable {
        var reason: ReasonCode
        var closeConnection: Bool
    }

    enum BodyFraming: Equatable {
        case none
        case contentLength(Int)
        case chunked
    }

    struct Validated {
        var framing: BodyFraming
        var host: String?
        var expectsContinue: Bool
        /// The request has a `Connection` field. Without one, HTTP/1.1 keeps the connection,
        /// HTTP/1.0 does not, and no other field is hop-by-hop by being listed: nothing to
        /// look up in the fields again.
        var hasConnectionField = false
        /// The `Authorization` field, for a route's bearer token: found in this one pass.
        var authorization = FieldOccurrence.absent
    }

    let limits: RequestLimits

    func validate(_ head: HTTPRequestHead) -> Result<Validated, Rejection> {
        guard head.version.major == 1, head.version.minor <= 1 else {
            return .failure(.init(reason: .requestMalformed, closeConnection: true))
        }
        if head.method == .CONNECT {
            return .failure(.init(reason: .requestUnsupportedMethod, closeConnection: true))
        }
        if head.uri.utf8.count > limits.maxURIBytes {
            return .failure(.init(reason: .requestURITooLong, closeConnection: true))
        }
        // One pass over the fields: limits, clean values, and the few fields decided here.
        var fields = FramingFields()
        var host = FieldOccurrence.absent
        var expect = FieldOccurrence.absent
        var headerCount = 0
        var headerBytes = 0
        var hasConnectionField = false
        var authorization = FieldOccurrence.absent
        for (name, value) in head.headers {
            headerCount += 1
            headerBytes += name.utf8.count + value.utf8.count + 4
            if !Self.isCleanValue(value) {
                return .failure(.init(reason: .requestMalformed, closeConnection: true))
            }
            switch name.utf8.count {
            case 4: if name.equalsLowercase("host") { host.add(value) }
            case 6: if name.equalsLowercase("expect") { expect.add(value) }
            case 10: if name.equalsLowercase("connection") { hasConnectionField = true }
            case 13: if name.equalsLowercase("authorization") { authorization.add(value) }
            case 14: if name.equalsLowercase("content-length") { fields.contentLength.add(value) }
            case 17: if name.equalsLowercase("transfer-encoding") { fields.transferEncoding.add(value) }
            default: break
            }
        }
        if headerCount > limits.maxHeaderCount || headerBytes > limits.maxHeaderBytes {
            return .failure(.init(reason: .requestHeadersTooLarge, closeConnection: true))
        }

        let framing: BodyFraming
        switch Self.framing(fields, versionMinor: head.version.minor) {
        case .success(let found): framing = found
        case .failure(let rejection): return .failure(rejection)
        }

        if host == .repeated || (host == .absent && head.version.minor == 1) {
            return .failure(.init(reason: .requestMalformed, closeConnection: framing != .none))
        }
        if let value = host.value, !Self.isValidHost(value) {
            return .failure(.init(reason: .requestMalformed, closeConnection: framing != .none))
        }

        var expectsContinue = false
        if expect != .absent {
            guard let value = expect.value, value.equalsLowercase("100-continue"), head.version.minor == 1 else {
                return .failure(.init(reason: .requestExpectationFailed, closeConnection: framing != .none))
            }
            expectsContinue = true
        }

        return .success(
            Validated(
                framing: framing, host: host.value, expectsContinue: expectsContinue, hasConnectionField: hasConnectionField,
                authorization: authorization))
    }

    struct FramingFields {
        var contentLength = FieldOccurrence.absent
        var transferEncoding = FieldOccurrence.absent
    }

    /// RFC 9112 §6: exactly one way to find the end of the body, or the request is refused.
    static func framing(_ fields: FramingFields, versionMinor: Int) -> Result<BodyFraming, Rejection> {
        let ambiguous = Rejection(reason: .requestAmbiguousFraming, closeConnection: true)
        if fields.contentLength != .absent && fields.transferEncoding != .absent { return .failure(ambiguous) }
        switch fields.transferEncoding {
        case .absent: break
        case .repeated: return .failure(ambiguous)
        case .once(let coding):
            guard versionMinor == 1, coding.trimmingASCIIWhitespace().equalsLowercase("chunked") else {
                return .failure(ambiguous)
            }
            return .success(.chunked)
        }
        switch fields.contentLength {
        case .absent: return .success(.none)
        case .repeated: return .failure(ambiguous)
        case .once(var text):
            // The same rule as for upstream responses: 1 to 18 digits, nothing else.
            guard let length = text.withUTF8({ HTTP1Syntax.contentLength(UnsafeRawBufferPointer($0)) }) else {
                return .failure(ambiguous)
            }
            return .success(length == 0 ? .none : .contentLength(length))
        }
    }

    /// Field values may carry visible ASCII, obs-text, space and tab, nothing else.
    static func isCleanValue(_ value: String) -> Bool {
        value.utf8.withContiguousStorageIfAvailable(isClean) ?? value.utf8.allSatisfy(isCleanByte)
    }

    /// Eight bytes at a time (a bearer token is scanned on every request): a word with no byte
    /// below 0x20 and none equal to 0x7F is clean; a word with one (a tab, say) is decided
    /// byte by byte.
    private static func isClean(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let raw = UnsafeRawBufferPointer(bytes)
        var offset = 0
        while offset + 8 <= raw.count {
            if HTTP1Syntax.hasByte(below: 0x20, orDELIn: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) {
                for index in offset..<(offset + 8) where !isCleanByte(raw[index]) { return false }
            }
            offset += 8
        }
        while offset < raw.count {
            if !isCleanByte(raw[offset]) { return false }
            offset += 1
        }
        return true
    }

    private static func isCleanByte(_ byte: UInt8) -> Bool {
        byte == 0x09 || (byte >= 0x20 && byte != 0x7F)
    }

    /// `uri-host [ ":" port ]` with a reg-name or bracketed IPv6 literal; no userinfo, no spaces.
    static func isValidHost(_ host: String) -> Bool {
        host.utf8.withContiguousStorageIfAvailable(isValidHost) ?? isValidHost(Array(host.utf8))
    }

    private static func isValidHost<Bytes: RandomAccessCollection>(_ bytes: Bytes) -> Bool
    where Bytes.Element == UInt8, Bytes.Index == Int {
        guard !bytes.isEmpty, bytes.count <= 255 else { return false }
        var index = 0
        if bytes[0] == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")), close > 1 else { return false }
            guard bytes[1..<close].allSatisfy({ isHexDigit($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") })
            else { return false }
            index = close + 1
        } else {
            while index < bytes.count, bytes[index] != UInt8(ascii: ":") {
                let byte = bytes[index]
                guard isAlphaNumeric(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
                    || byte == UInt8(ascii: "_")
                else { return false }
                index += 1
            }
            guard index > 0 else { return false }
        }
        if index == bytes.count { return true }
        guard bytes[index] == UInt8(ascii: ":"), index + 1 < bytes.count, bytes.count - index - 1 <= 5 else {
            return false
        }
        return bytes[(index + 1)...].allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66)
    }

    private static func isAlphaNumeric(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
    }
}

extension String {
    func trimmingASCIIWhitespace() -> Substring {
        var slice = self[...]
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
        return slice
    }
}
