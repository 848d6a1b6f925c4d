/// Strict hex and base64 decoding for signature values. Anything unexpected is nil (the
/// caller reports `webhook.malformed_signature`); no whitespace, no other alphabet.
enum WebhookEncoding {
    /// Hex digits, either case, even length.
    static func hex(_ text: Substring) -> [UInt8]? {
        Hex.decode(text.utf8)
    }

    /// Standard base64 (RFC 4648 §4). Padding may be omitted; when present it must be exactly
    /// right. Non-zero leftover bits are refused so that one value has one spelling.
    static func base64(_ text: Substring) -> [UInt8]? {
        var utf8 = text.utf8[...]
        var padding = 0
        while utf8.last == UInt8(ascii: "="), padding < 2 {
            utf8 = utf8.dropLast()
            padding += 1
        }
        guard !utf8.isEmpty else { return nil }
        if padding > 0 {
            guard (utf8.count + padding) % 4 == 0 else { return nil }
        }
        return Base64URL.decode(utf8, table: Base64URL.standardTable)
    }
}
