/// A JSON value as a JWT header or payload carries it.
public enum JSONValue: Sendable, Hashable {
    case string(String)
    /// An integer literal that fits `Int64` (claims like `exp` and ids stay exact).
    case integer(Int64)
    /// Any other number.
    case number(Double)
    case bool(Bool)
    case null
    case array([JSONValue])
    case object([String: JSONValue])

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// Integers and finite numbers, as seconds for time claims.
    public var doubleValue: Double? {
        switch self {
        case .integer(let i): return Double(i)
        case .number(let d): return d
        default: return nil
        }
    }

    /// Exact comparison for required claims: `1` and `1.0` are the same number.
    public func matches(_ other: JSONValue) -> Bool {
        switch (self, other) {
        case (.integer(let a), .number(let b)), (.number(let b), .integer(let a)): return Double(a) == b
        default: return self == other
        }
    }
}

/// A strict RFC 8259 parser for token headers and payloads.
///
/// Why not Foundation: `JSONSerialization`/`JSONDecoder` silently keep one of two
/// repeated keys, so `{"sub":"alice","sub":"admin"}` could mean one thing here and another
/// to the upstream. Here a repeated key is an error, as are trailing bytes, nesting deeper
/// than ``maxDepth``, lone surrogates and control characters in strings.
enum StrictJSON {
    static let maxDepth = 16

    enum Failure: Error, Equatable {
        case invalid(String)
        case duplicateKey(String)
    }

    static func parse(_ bytes: [UInt8]) -> Result<JSONValue, Failure> {
        var parser = Parser(bytes: bytes)
        do {
            parser.skipWhitespace()
            let value = try parser.value(depth: 0)
            parser.skipWhitespace()
            guard parser.index == bytes.count else { throw Failure.invalid("trailing bytes") }
            return .success(value)
        } catch let failure as Failure {
            return .failure(failure)
        } catch {
            return .failure(.invalid("unexpected error"))
        }
    }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        mutating func skipWhitespace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        func peek() throws(Failure) -> UInt8 {
            guard index < bytes.count else { throw .invalid("unexpected end") }
            return bytes[index]
        }

        mutating func expect(_ literal: String) throws(Failure) {
            for byte in literal.utf8 {
                guard index < bytes.count, bytes[index] == byte else { throw .invalid("bad literal") }
                index += 1
            }
        }

        mutating func value(depth: Int) throws(Failure) -> JSONValue {
            guard depth <= StrictJSON.maxDepth else { throw .invalid("nested too deep") }
            switch try peek() {
            case UInt8(ascii: "{"): return try object(depth: depth)
            case UInt8(ascii: "["): return try array(depth: depth)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try expect("true"); return .bool(true)
            case UInt8(ascii: "f"): try expect("false"); return .bool(false)
            case UInt8(ascii: "n"): try expect("null"); return .null
            default: return try number()
            }
        }

        mutating func object(depth: Int) throws(Failure) -> JSONValue {
            index += 1
            var members: [String: JSONValue] = [:]
            skipWhitespace()
            if try peek() == UInt8(ascii: "}") {
                index += 1
                return .object(members)
            }
            while true {
                skipWhitespace()
                guard try peek() == UInt8(ascii: "\"") else { throw .invalid("object key is not a string") }
                let key = try string()
                skipWhitespace()
                guard try peek() == UInt8(ascii: ":") else { throw .invalid("missing colon") }
                index += 1
                skipWhitespace()
                let member = try value(depth: depth + 1)
                guard members.updateValue(member, forKey: key) == nil else { throw .duplicateKey(key) }
                skipWhitespace()
                switch try peek() {
                case UInt8(ascii: ","): index += 1
                case UInt8(ascii: "}"): index += 1; return .object(members)
                default: throw .invalid("expected , or }")
                }
            }
        }

        mutating func array(depth: Int) throws(Failure) -> JSONValue {
            index += 1
            var elements: [JSONValue] = []
            skipWhitespace()
            if try peek() == UInt8(ascii: "]") {
                index += 1
                return .array(elements)
            }
            while true {
                skipWhitespace()
                elements.append(try value(depth: depth + 1))
                skipWhitespace()
                switch try peek() {
                case UInt8(ascii: ","): index += 1
                case UInt8(ascii: "]"): index += 1; return .array(elements)
                default: throw .invalid("expected , or ]")
                }
            }
        }

        mutating func hex4() throws(Failure) -> UInt32 {
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = try peek()
                index += 1
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: throw .invalid("bad \\u escape")
                }
                value = value << 4 | UInt32(digit)
            }
            return value
        }

        mutating func string() throws(Failure) -> String {
            index += 1  // opening quote
            var out: [UInt8] = []
            while true {
                let byte = try peek()
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    // Rejects invalid UTF-8 instead of repairing it.
                    guard let s = String(validating: out, as: UTF8.self) else { throw .invalid("invalid UTF-8") }
                    return s
                case 0x00..<0x20:
                    throw .invalid("control character in string")
                case UInt8(ascii: "\\"):
                    let escape = try peek()
                    index += 1
                    switch escape {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = try hex4()
                        if (0xD800..<0xDC00).contains(scalar) {
                            try expect("\\u")
                            let low = try hex4()
                            guard (0xDC00..<0xE000).contains(low) else { throw .invalid("lone surrogate") }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let unicode = Unicode.Scalar(scalar) else { throw .invalid("lone surrogate") }
                        out.append(contentsOf: Array(String(Character(unicode)).utf8))
                    default:
                        throw .invalid("bad escape")
                    }
                default:
                    out.append(byte)
                }
            }
        }

        mutating func number() throws(Failure) -> JSONValue {
            let start = index
            var isInteger = true
            if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) else {
                throw .invalid("unexpected character")
            }
            if bytes[index] == UInt8(ascii: "0") {
                index += 1
            } else {
                digits()
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                isInteger = false
                index += 1
                guard digits() > 0 else { throw .invalid("bad number") }
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
                isInteger = false
                index += 1
                if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                    index += 1
                }
                guard digits() > 0 else { throw .invalid("bad number") }
            }
            let text = String(decoding: bytes[start..<index], as: UTF8.self)
            if isInteger, let integer = Int64(text) { return .integer(integer) }
            guard let double = Double(text), double.isFinite else { throw .invalid("bad number") }
            return .number(double)
        }

        @discardableResult
        mutating func digits() -> Int {
            let start = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            return index - start
        }
    }
}
