import Crypto

/// Why a resolved secret or public key cannot be used. Names the list and index
/// (`secrets[1]`), never the value.
public struct WebhookKeyError: Error, Sendable, Equatable, CustomStringConvertible {
    public var key: String
    public var reason: String
    public var description: String { "\(key): \(reason)" }
}

/// Turns the bytes a `SecretReference` resolved to into verification keys.
///
/// - github, stripe, slack, shopify, generic: the secret's bytes are the HMAC key as they
///   are. Stripe's `whsec_...` signing secret is used whole, prefix included (as Stripe's own
///   libraries do), unlike Standard Webhooks.
/// - standard: `whsec_<base64>` (the prefix may be left off); the key is the decoded bytes,
///   as in the Standard Webhooks reference libraries.
/// - standard `public_keys`: `whpk_<base64>` of a 32-byte Ed25519 public key.
///
/// Trailing line breaks are dropped first: a secret kept in a file almost always ends in one,
/// and no sender's secret does.
enum WebhookSecret {
    static let standardSecretPrefix = "whsec_"
    static let standardPublicKeyPrefix = "whpk_"

    static func hmacKey(_ bytes: [UInt8], scheme: WebhookScheme, name: String) throws(WebhookKeyError) -> SymmetricKey {
        let raw = trimmingLineBreaks(bytes)
        guard !raw.isEmpty else { throw WebhookKeyError(key: name, reason: "is empty") }
        guard scheme == .standard else { return SymmetricKey(data: raw) }
        let text = dropPrefix(raw, standardSecretPrefix)
        guard let key = WebhookEncoding.base64(Substring(decoding: text, as: UTF8.self)), !key.isEmpty else {
            throw WebhookKeyError(key: name, reason: "is not a Standard Webhooks secret (expected `whsec_` followed by base64)")
        }
        return SymmetricKey(data: key)
    }

    static func publicKey(_ bytes: [UInt8], name: String) throws(WebhookKeyError) -> Curve25519.Signing.PublicKey {
        let text = dropPrefix(trimmingLineBreaks(bytes), standardPublicKeyPrefix)
        guard let raw = WebhookEncoding.base64(Substring(decoding: text, as: UTF8.self)), raw.count == 32,
              let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw)
        else {
            throw WebhookKeyError(key: name, reason: "is not an Ed25519 public key (expected `whpk_` followed by base64 of 32 bytes)")
        }
        return key
    }

    private static func trimmingLineBreaks(_ bytes: [UInt8]) -> ArraySlice<UInt8> {
        var slice = bytes[...]
        while let last = slice.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") { slice = slice.dropLast() }
        return slice
    }

    private static func dropPrefix(_ bytes: ArraySlice<UInt8>, _ prefix: String) -> ArraySlice<UInt8> {
        bytes.starts(with: prefix.utf8) ? bytes.dropFirst(prefix.utf8.count) : bytes
    }
}
