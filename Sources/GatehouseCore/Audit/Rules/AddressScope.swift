/// Whether an address stays on this machine or inside private networks.
enum AddressScope {
    /// `127.0.0.0/8`, `::1` and `localhost`. `0.0.0.0`/`::` (every interface) is not loopback.
    static func isLoopback(_ host: String) -> Bool {
        let lower = host.lowercased()
        if lower == "localhost" || lower == "::1" || lower == "0:0:0:0:0:0:0:1" { return true }
        guard let bytes = ipv4(lower) else { return false }
        return bytes[0] == 127
    }

    /// True when `cidr` lies entirely inside loopback, link-local or private ranges
    /// (RFC 1918, RFC 6598 shared space, IPv6 ULA); false for 0.0.0.0/0 and any public range.
    static func isPrivate(_ cidr: CIDR) -> Bool {
        privateRanges.contains { range in
            range.address.count == cidr.address.count && range.prefixLength <= cidr.prefixLength && range.contains(cidr.address)
        }
    }

    private static let privateRanges: [CIDR] = [
        CIDR(address: [10, 0, 0, 0], prefixLength: 8),
        CIDR(address: [172, 16, 0, 0], prefixLength: 12),
        CIDR(address: [192, 168, 0, 0], prefixLength: 16),
        CIDR(address: [100, 64, 0, 0], prefixLength: 10),
        CIDR(address: [127, 0, 0, 0], prefixLength: 8),
        CIDR(address: [169, 254, 0, 0], prefixLength: 16),
        CIDR(address: [0xFC] + Array(repeating: 0, count: 15), prefixLength: 7),
        CIDR(address: [0xFE, 0x80] + Array(repeating: 0, count: 14), prefixLength: 10),
        CIDR(address: Array(repeating: 0, count: 15) + [1], prefixLength: 128),
    ]

    private static func ipv4(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        let bytes = parts.compactMap { UInt8($0) }
        return bytes.count == 4 ? bytes : nil
    }
}
