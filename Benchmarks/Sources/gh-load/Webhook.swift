import Crypto
import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// GitHub-signed webhook deliveries (`--webhook-github-secret`), every one distinct, because
/// the gateway refuses a replayed delivery id or signature.
///
/// Body (exactly `bodySize` bytes, valid JSON):
///
///     {"run":"<16 hex>","zen":"aaaa…aaaa","n":"<16 digits>"}
///     '---------- constant prefix ----------''-- suffix --'
///
/// `run` is random per process, so two gh-load runs against the same gateway (within its
/// replay window) never send the same body or delivery id; `n` is a counter shared by all
/// connections. The prefix is one `ByteBuffer`, written (not copied) by every request, and
/// its HMAC state is computed once: each delivery copies that state, adds the 25-byte suffix
/// and finalizes, so the load generator's cost does not grow with the body.
final class WebhookDeliveries: Sendable {
    /// `","n":"` + 16 digits + `"}`
    static let suffixBytes = 7 + 16 + 2
    static let minimumBodySize = 64
    static let maximumBodySize = 64 << 20

    let bodySize: Int
    let runID: String
    /// The constant part of every body; shared, never copied.
    let prefix: ByteBuffer
    private let base: HMAC<SHA256>
    private let counter: NIOLockedValueBox<UInt64>

    init(secret: [UInt8], bodySize: Int, runID: UInt64? = nil) {
        precondition(bodySize >= Self.minimumBodySize && bodySize <= Self.maximumBodySize)
        self.bodySize = bodySize
        self.runID = hex16(runID ?? UInt64.random(in: .min ... .max))
        let head = Array("{\"run\":\"\(self.runID)\",\"zen\":\"".utf8)
        var bytes = head
        bytes.append(contentsOf: repeatElement(UInt8(ascii: "a"), count: bodySize - Self.suffixBytes - head.count))
        var buffer = ByteBufferAllocator().buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        self.prefix = buffer
        var hmac = HMAC<SHA256>(key: SymmetricKey(data: secret))
        hmac.update(data: bytes)
        self.base = hmac
        self.counter = NIOLockedValueBox(0)
    }

    struct Delivery {
        /// The 25 bytes that follow `prefix`.
        var suffix: [UInt8]
        /// `sha256=<64 hex>`
        var signature: String
        /// `X-GitHub-Delivery`: `<run>-<n>`
        var id: String
    }

    func next() -> Delivery {
        let n = counter.withLockedValue { c -> UInt64 in c += 1; return c }
        return delivery(n)
    }

    func delivery(_ n: UInt64) -> Delivery {
        var digits = Array(String(n).utf8)
        digits.insert(contentsOf: repeatElement(UInt8(ascii: "0"), count: max(0, 16 - digits.count)), at: 0)
        var suffix = Array("\",\"n\":\"".utf8)
        suffix.append(contentsOf: digits.suffix(16))
        suffix.append(contentsOf: "\"}".utf8)
        var hmac = base   // a copy of the state after the prefix
        hmac.update(data: suffix)
        let mac = hmac.finalize()
        return Delivery(
            suffix: suffix,
            signature: "sha256=" + hexString(mac),
            id: runID + "-" + String(decoding: digits.suffix(16), as: UTF8.self))
    }
}

private let hexDigits = Array("0123456789abcdef".utf8)

func hexString(_ bytes: some Sequence<UInt8>) -> String {
    var out: [UInt8] = []
    out.reserveCapacity(64)
    for b in bytes {
        out.append(hexDigits[Int(b >> 4)])
        out.append(hexDigits[Int(b & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
}

private func hex16(_ v: UInt64) -> String {
    var s = String(v, radix: 16)
    while s.count < 16 { s = "0" + s }
    return s
}

/// The secret of `--webhook-github-secret`: `file:/path` (the file's bytes, exactly), or the
/// text itself.
func readWebhookSecret(_ spec: String) throws -> [UInt8] {
    if spec.hasPrefix("file:") {
        return Array(try readWholeFile(String(spec.dropFirst(5))).utf8)
    }
    return Array(spec.utf8)
}
