import NIOHTTP1

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// How often a header occurs in a request: absent, once (with its value), or more than once.
/// The checks that refuse a repeated header (Host, Authorization, Content-Length...) need no
/// more, and finding it this way costs one pass and no array.
enum FieldOccurrence: Equatable {
    case absent
    case once(String)
    case repeated

    var value: String? {
        if case .once(let value) = self { return value }
        return nil
    }

    mutating func add(_ value: String) {
        self = self == .absent ? .once(value) : .repeated
    }
}

extension HTTPHeaders {
    func occurrence(of lowercaseName: StaticString) -> FieldOccurrence {
        occurrence { $0.equalsLowercase(lowercaseName) }
    }

    /// For a name from configuration (any case).
    func occurrence(of name: String) -> FieldOccurrence {
        occurrence { $0.equalsIgnoringASCIICase(name) }
    }

    private func occurrence(where isNamed: (String) -> Bool) -> FieldOccurrence {
        var found = FieldOccurrence.absent
        for (name, value) in self where isNamed(name) {
            found.add(value)
            if found == .repeated { break }
        }
        return found
    }
}

extension StringProtocol {
    /// ASCII case-insensitive comparison against a lowercase literal, without allocating.
    func equalsLowercase(_ lowercase: StaticString) -> Bool {
        utf8.withContiguousStorageIfAvailable { UnsafeRawBufferPointer($0).equalsLowercase(lowercase) }
            ?? Array(utf8).withUnsafeBytes { $0.equalsLowercase(lowercase) }
    }

    func equalsIgnoringASCIICase(_ other: some StringProtocol) -> Bool {
        utf8.count == other.utf8.count && utf8.elementsEqual(other.utf8) { ASCII.lowercased($0) == ASCII.lowercased($1) }
    }
}

enum ASCII {
    @inline(__always)
    static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
    }

    /// Whether `byte` occurs in `text`, by `memchr` where the bytes are contiguous (a long
    /// token is scanned on every request).
    static func contains(_ byte: UInt8, in text: Substring) -> Bool {
        text.utf8.withContiguousStorageIfAvailable { bytes in
            guard let base = bytes.baseAddress else { return false }
            return memchr(base, Int32(byte), bytes.count) != nil
        } ?? text.utf8.contains(byte)
    }
}
