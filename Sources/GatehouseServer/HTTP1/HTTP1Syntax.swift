import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// The byte-level rules both HTTP/1.1 parsers share (RFC 9110, RFC 9112).
enum HTTP1Syntax {
    enum HeadError: Error, Equatable {
        /// A LF without the CR before it: another parser could see other lines.
        case bareLineFeed
        /// No blank line within the limit.
        case tooLarge
    }

    /// Bytes up to and including the blank line ending a head; nil if it has not arrived.
    /// Every LF must follow a CR.
    static func headLength(_ buffer: ByteBuffer, limit: Int) throws(HeadError) -> Int? {
        let found = buffer.withUnsafeReadableBytes { raw -> Result<Int?, HeadError> in
            let count = min(raw.count, limit)
            guard let base = raw.baseAddress else { return .success(nil) }
            var index = 0
            while index < count, let found = memchr(base + index, Int32(UInt8.lf), count - index) {
                index = base.distance(to: UnsafeRawPointer(found))
                guard index > 0, raw[index - 1] == .cr else { return .failure(.bareLineFeed) }
                if index >= 3, raw[index - 2] == .lf, raw[index - 3] == .cr { return .success(index + 1) }
                index += 1
            }
            return raw.count > limit ? .failure(.tooLarge) : .success(nil)
        }
        return try found.get()
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

    /// `1*DIGIT`, at most 18 digits (no sign, no list, no whitespace).
    static func contentLength(_ value: UnsafeRawBufferPointer) -> Int? {
        guard !value.isEmpty, value.count <= 18 else { return nil }
        var length = 0
        for byte in value {
            guard byte.isDigit else { return nil }
            length = length * 10 + Int(byte - 48)
        }
        return length
    }

    /// Whether all eight bytes of `word` are visible field bytes: none below 0x21 (controls,
    /// space) and none DEL (obs-text is allowed). Lets a long field value, a bearer token
    /// say, be scanned a word at a time; any other byte is looked at one by one.
    @inline(__always)
    static func allVisible(_ word: UInt64) -> Bool {
        !hasByte(below: 0x21, orDELIn: word)
    }

    /// Whether some byte of `word` is below `bound` (at most 0x80) or is DEL: "has a byte less
    /// than n" and "has a zero byte" of `word ^ DEL`, which never miss one.
    @inline(__always)
    static func hasByte(below bound: UInt8, orDELIn word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highBits: UInt64 = 0x8080_8080_8080_8080
        let below = (word &- ones &* UInt64(bound)) & ~word & highBits
        let delFlipped = word ^ (ones &* 0x7F)
        let del = (delFlipped &- ones) & ~delFlipped & highBits
        return below | del != 0
    }
}

extension UInt8 {
    static let cr = UInt8(ascii: "\r")
    static let lf = UInt8(ascii: "\n")
    static let space = UInt8(ascii: " ")
    static let tab = UInt8(ascii: "\t")

    var isDigit: Bool { self >= 0x30 && self <= 0x39 }

    /// field-vchar, SP or HTAB (obs-text allowed): no control byte, no DEL.
    var isFieldContent: Bool { self == .tab || (self >= 0x20 && self != 0x7F) }

    /// tchar (RFC 9110 §5.6.2).
    var isTokenCharacter: Bool { HTTPToken.isTokenCharacter(self) }

    var hexDigitValue: Int? {
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
    /// One bit per ASCII byte (0-63, 64-127): a shift and a mask per byte instead of a chain
    /// of range checks; every name byte of every head goes through here.
    private static let tokenBitsLow: UInt64 = 0x03FF_6CFA_0000_0000
    private static let tokenBitsHigh: UInt64 = 0x57FF_FFFF_C7FF_FFFE

    static func isTokenCharacter(_ byte: UInt8) -> Bool {
        let bits = byte < 64 ? tokenBitsLow : byte < 128 ? tokenBitsHigh : 0
        return (bits >> UInt64(byte & 63)) & 1 == 1
    }
}
