/// Strict hex and base64 decoding for signature values. Anything unexpected is nil (the
/// caller reports `webhook.malformed_signature`); no whitespace, no other alphabet.
enum WebhookEncoding {
    /// Hex digits, either case, even length.
    static func hex(_ text: Substring) -> [UInt8]? {
        let utf8 = text.utf8
        guard !utf8.isEmpty, utf8.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count / 2)
        var high: UInt8?
        for byte in utf8 {
            guard let nibble = nibble(byte) else { return nil }
            if let h = high {
                out.append(h << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        return out
    }

    private static func nibble(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    private static let base64Table: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            table[Int(c)] = UInt8(i)
        }
        return table
    }()

    /// Standard base64 (RFC 4648 §4). Padding may be omitted; when present it must be exactly
    /// right. Non-zero leftover bits are refused so that one value has one spelling.
    static func base64(_ text: Substring) -> [UInt8]? {
        var utf8 = text.utf8[...]
        var padding = 0
        while utf8.last == UInt8(ascii: "="), padding < 2 {
            utf8 = utf8.dropLast()
            padding += 1
        }
        guard !utf8.isEmpty, utf8.count % 4 != 1 else { return nil }
        if padding > 0 {
            guard (utf8.count + padding) % 4 == 0 else { return nil }
        }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count * 3 / 4)
        var buffer: UInt32 = 0
        var bits = 0
        for byte in utf8 {
            let value = base64Table[Int(byte)]
            guard value != 0xFF else { return nil }
            buffer = (buffer << 6 | UInt32(value)) & 0xFFFFFF
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
            }
        }
        guard buffer & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
        return out
    }
}
