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
        var headerCount = 0
        var headerBytes = 0
        for (name, value) in head.headers {
            headerCount += 1
            headerBytes += name.utf8.count + value.utf8.count + 4
            if !Self.isCleanValue(value) {
                return .failure(.init(reason: .requestMalformed, closeConnection: true))
            }
        }
        if headerCount > limits.maxHeaderCount || headerBytes > limits.maxHeaderBytes {
            return .failure(.init(reason: .requestHeadersTooLarge, closeConnection: true))
        }

        let framing: BodyFraming
        switch Self.framing(of: head) {
        case .success(let found): framing = found
        case .failure(let rejection): return .failure(rejection)
        }

        let hosts = head.headers["host"]
        if hosts.count > 1 || (hosts.isEmpty && head.version.minor == 1) {
            return .failure(.init(reason: .requestMalformed, closeConnection: framing != .none))
        }
        if let host = hosts.first, !Self.isValidHost(host) {
            return .failure(.init(reason: .requestMalformed, closeConnection: framing != .none))
        }

        var expectsContinue = false
        let expectations = head.headers["expect"]
        if !expectations.isEmpty {
            guard expectations.count == 1, expectations[0].lowercased() == "100-continue", head.version.minor == 1 else {
                return .failure(.init(reason: .requestExpectationFailed, closeConnection: framing != .none))
            }
            expectsContinue = true
        }

        return .success(Validated(framing: framing, host: hosts.first, expectsContinue: expectsContinue))
    }

    /// RFC 9112 §6: exactly one way to find the end of the body, or the request is refused.
    static func framing(of head: HTTPRequestHead) -> Result<BodyFraming, Rejection> {
        let ambiguous = Rejection(reason: .requestAmbiguousFraming, closeConnection: true)
        let lengths = head.headers["content-length"]
        let codings = head.headers["transfer-encoding"]
        if !lengths.isEmpty && !codings.isEmpty { return .failure(ambiguous) }
        if !codings.isEmpty {
            guard head.version.minor == 1, codings.count == 1,
                codings[0].trimmingASCIIWhitespace().lowercased() == "chunked"
            else { return .failure(ambiguous) }
            return .success(.chunked)
        }
        if lengths.count > 1 { return .failure(ambiguous) }
        if let text = lengths.first {
            let digits = text.utf8
            guard !digits.isEmpty, digits.count <= 18, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                let length = Int(text)
            else { return .failure(ambiguous) }
            return .success(length == 0 ? .none : .contentLength(length))
        }
        return .success(.none)
    }

    /// Field values may carry visible ASCII, obs-text, space and tab, nothing else.
    static func isCleanValue(_ value: String) -> Bool {
        value.utf8.allSatisfy { byte in byte == 0x09 || (byte >= 0x20 && byte != 0x7F) }
    }

    /// `uri-host [ ":" port ]` with a reg-name or bracketed IPv6 literal; no userinfo, no spaces.
    static func isValidHost(_ host: String) -> Bool {
        let bytes = Array(host.utf8)
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
