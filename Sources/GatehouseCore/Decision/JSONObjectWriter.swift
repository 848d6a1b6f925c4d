import Foundation

/// A minimal writer for flat JSON objects with correct string escaping, into bytes.
/// It runs once per request on the decision-log thread, so it avoids `String` building:
/// plain ASCII values are copied in one go. Nil values are written as `null` so every record
/// has the same keys.
public struct JSONObjectWriter {
    public private(set) var bytes: [UInt8]
    private var first = true

    public init(capacity: Int = 512) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(capacity)
        self.init(continuing: consume bytes)
    }

    /// An object appended to `bytes`, which the writer takes over and `finish` hands back:
    /// nested objects and a batch of records share one buffer instead of one array each.
    public init(continuing bytes: consuming [UInt8]) {
        // Appended to while the parameter holds the only reference: assigned first, the
        // parameter would still hold one and the append would copy the whole buffer.
        bytes.append(UInt8(ascii: "{"))
        self.bytes = bytes
    }

    /// The bytes so far, leaving this writer's empty (so appending to them copies nothing).
    private mutating func takeBytes() -> [UInt8] {
        var taken: [UInt8] = []
        swap(&taken, &bytes)
        return consume taken
    }

    /// `,"name":` composed on the stack and appended once (one capacity check, not five).
    private mutating func key(_ name: StaticString) {
        let comma = first ? 0 : 1
        first = false
        name.withUTF8Buffer { name in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: name.count + 4) { text in
                text[0] = UInt8(ascii: ",")
                text[comma] = UInt8(ascii: "\"")
                var end = comma + 1
                for byte in name {
                    text[end] = byte
                    end += 1
                }
                text[end] = UInt8(ascii: "\"")
                text[end + 1] = UInt8(ascii: ":")
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: text[..<(end + 2)]))
            }
        }
    }

    public mutating func field(_ name: StaticString, _ value: String?) {
        key(name)
        if let value { Self.appendQuoted(value, to: &bytes) } else { bytes.append(contentsOf: Self.null) }
    }

    public mutating func field(_ name: StaticString, _ value: Int) {
        key(name)
        Self.appendInteger(value, to: &bytes)
    }

    /// A non-negative quantity with exactly three decimals (milliseconds with microsecond precision).
    public mutating func field(_ name: StaticString, thousandths value: Int) {
        key(name)
        let magnitude = max(0, value)
        Self.appendInteger(magnitude / 1000, to: &bytes)
        bytes.append(UInt8(ascii: "."))
        let fraction = magnitude % 1000
        if fraction < 100 { bytes.append(UInt8(ascii: "0")) }
        if fraction < 10 { bytes.append(UInt8(ascii: "0")) }
        Self.appendInteger(fraction, to: &bytes)
    }

    /// A number with four decimals (rates, percentages); `null` when nil or not finite.
    public mutating func field(_ name: StaticString, number value: Double?) {
        key(name)
        guard let value, value.isFinite else { return bytes.append(contentsOf: Self.null) }
        bytes.append(contentsOf: Array(String(format: "%.4f", value).utf8))
    }

    /// An RFC 3339 timestamp (UTC, milliseconds), written in place.
    public mutating func field(_ name: StaticString, timestampMillis: Int64) {
        key(name)
        bytes.append(UInt8(ascii: "\""))
        RFC3339.append(millisecondsSinceEpoch: timestampMillis, to: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }

    public mutating func object(_ name: StaticString, _ body: (inout JSONObjectWriter) -> Void) {
        key(name)
        var inner = JSONObjectWriter(continuing: takeBytes())
        body(&inner)
        bytes = inner.finish()
    }

    /// An array of objects, one per element.
    public mutating func objects<T>(_ name: StaticString, _ elements: [T], _ body: (inout JSONObjectWriter, T) -> Void) {
        key(name)
        bytes.append(UInt8(ascii: "["))
        for (index, element) in elements.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            var inner = JSONObjectWriter(continuing: takeBytes())
            body(&inner, element)
            bytes = inner.finish()
        }
        bytes.append(UInt8(ascii: "]"))
    }

    /// Nested objects keyed by runtime strings (e.g. header names) use this.
    public mutating func field(dynamic name: String, _ value: String) {
        if !first { bytes.append(UInt8(ascii: ",")) }
        first = false
        Self.appendQuoted(name, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        Self.appendQuoted(value, to: &bytes)
    }

    /// The object's bytes, handed over (the writer is left empty): never a second reference
    /// to a buffer that is still being appended to, which would copy it.
    public mutating func finish() -> [UInt8] {
        bytes.append(UInt8(ascii: "}"))
        return takeBytes()
    }

    public mutating func finishString() -> String {
        String(decoding: finish(), as: UTF8.self)
    }

    private static let null: [UInt8] = Array("null".utf8)
    /// Bytes that take the escaping path: controls, `"`, `\\`, DEL, and 0xE2 (the lead byte of
    /// U+2028/U+2029, which break JavaScript readers of the log). One bit per byte value in four
    /// words: a shift and a mask per byte, no table to load.
    @inline(__always)
    static func needsEscape(_ byte: UInt8) -> Bool {
        let word: UInt64
        switch byte >> 6 {
        case 0: word = 0x0000_0004_FFFF_FFFF  // 0x00-0x1F, 0x22
        case 1: word = 0x8000_0000_1000_0000  // 0x5C, 0x7F
        case 2: word = 0
        default: word = 0x0000_0004_0000_0000  // 0xE2
        }
        return (word >> UInt64(byte & 63)) & 1 == 1
    }
    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    static func appendInteger(_ value: Int, to bytes: inout [UInt8]) {
        if value < 0 {
            bytes.append(UInt8(ascii: "-"))
            appendInteger(-value, to: &bytes)
            return
        }
        if value < 10 {
            bytes.append(UInt8(truncatingIfNeeded: value) + 0x30)
            return
        }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var remaining = value
        withUnsafeMutableBytes(of: &digits) { buffer in
            while remaining > 0 {
                buffer[19 - count] = UInt8(truncatingIfNeeded: remaining % 10) + 0x30
                remaining /= 10
                count += 1
            }
            bytes.append(contentsOf: buffer[(20 - count)...])
        }
    }

    static func appendQuoted(_ value: String, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        // Read in place: a `var` copy to call `withUTF8` on costs a retain and a release.
        if value.utf8.withContiguousStorageIfAvailable({ appendEscaped($0, to: &bytes) }) == nil {
            var copy = value
            copy.withUTF8 { appendEscaped($0, to: &bytes) }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private static func appendEscaped(_ utf8: UnsafeBufferPointer<UInt8>, to bytes: inout [UInt8]) {
        // Fast path: nothing to escape, copy the whole value (one bit test per byte).
        if !utf8.contains(where: needsEscape) {
            bytes.append(contentsOf: utf8)
            return
        }
        var index = 0
        while index < utf8.count {
            let byte = utf8[index]
            switch byte {
            case 0x22: bytes.append(contentsOf: [0x5C, 0x22])
            case 0x5C: bytes.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: bytes.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0xE2 where index + 2 < utf8.count && utf8[index + 1] == 0x80
                && (utf8[index + 2] == 0xA8 || utf8[index + 2] == 0xA9):
                // U+2028/U+2029 are valid JSON but break JavaScript consumers of the log.
                bytes.append(contentsOf: Array("\\u202".utf8))
                bytes.append(utf8[index + 2] == 0xA8 ? UInt8(ascii: "8") : UInt8(ascii: "9"))
                index += 3
                continue
            default:
                if byte < 0x20 || byte == 0x7F {
                    bytes.append(contentsOf: Array("\\u00".utf8))
                    bytes.append(hex[Int(byte >> 4)])
                    bytes.append(hex[Int(byte & 0x0F)])
                } else {
                    bytes.append(byte)
                }
            }
            index += 1
        }
    }
}

/// RFC 3339 timestamps in UTC with millisecond precision, without Foundation's formatters.
public enum RFC3339 {
    public static func format(millisecondsSinceEpoch ms: Int64) -> String {
        String(decoding: bytes(millisecondsSinceEpoch: ms), as: UTF8.self)
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ` as 24 ASCII bytes.
    public static func bytes(millisecondsSinceEpoch ms: Int64) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(24)
        append(millisecondsSinceEpoch: ms, to: &out)
        return out
    }

    public static func append(millisecondsSinceEpoch ms: Int64, to out: inout [UInt8]) {
        let millis = Int(((ms % 1000) + 1000) % 1000)
        var seconds = (ms - Int64(millis)) / 1000
        let secondOfDay = Int(((seconds % 86_400) + 86_400) % 86_400)
        seconds -= Int64(secondOfDay)
        let (year, month, day) = civilDate(daysSinceEpoch: Int(seconds / 86_400))
        // Composed on the stack and appended once (one capacity check instead of 24).
        var text: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &text) { text in
            func put(_ value: Int, _ width: Int, at offset: Int) {
                var remaining = value
                for index in stride(from: offset + width - 1, through: offset, by: -1) {
                    text[index] = UInt8(truncatingIfNeeded: remaining % 10) + 0x30
                    remaining /= 10
                }
            }
            put(year, 4, at: 0); text[4] = UInt8(ascii: "-"); put(month, 2, at: 5); text[7] = UInt8(ascii: "-")
            put(day, 2, at: 8); text[10] = UInt8(ascii: "T")
            put(secondOfDay / 3600, 2, at: 11); text[13] = UInt8(ascii: ":"); put(secondOfDay / 60 % 60, 2, at: 14)
            text[16] = UInt8(ascii: ":"); put(secondOfDay % 60, 2, at: 17)
            text[19] = UInt8(ascii: "."); put(millis, 3, at: 20); text[23] = UInt8(ascii: "Z")
            out.append(contentsOf: text)
        }
    }

    /// Howard Hinnant's days-from-civil inverse: exact for the proleptic Gregorian calendar.
    static func civilDate(daysSinceEpoch: Int) -> (year: Int, month: Int, day: Int) {
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }
}
