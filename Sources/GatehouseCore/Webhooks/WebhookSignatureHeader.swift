/// One signature offered by a delivery's signature header.
struct WebhookSignatureCandidate: Equatable {
    enum Kind: Equatable {
        case hmac
        /// Standard Webhooks `v1a`.
        case ed25519
    }
    var kind: Kind
    var bytes: [UInt8]
}

/// A signature header, parsed. Parsing is bounded and strict: a header longer than
/// `maxBytes` or with more than `maxEntries` entries is malformed before anything is decoded,
/// so a hostile header costs a bounded amount of work.
///
/// Versions this gateway does not know (Stripe `v0`, a future `v2`) are skipped. A header
/// with nothing but unknown versions is `webhook.missing_signature`: it carries no signature
/// this gateway can check, which is the same situation as no header at all.
struct WebhookSignatureHeader: Equatable {
    static let maxBytes = 4096
    static let maxEntries = 16

    var candidates: [WebhookSignatureCandidate]
    /// Stripe carries the timestamp inside the signature header.
    var timestamp: WebhookTimestamp?

    private static func malformed(_ detail: String) -> WebhookRefusal {
        WebhookRefusal(.webhookMalformedSignature, detail)
    }

    /// A hex HMAC of exactly `byteCount` bytes.
    private static func hexMAC(_ text: Substring, byteCount: Int, what: String) throws(WebhookRefusal) -> [UInt8] {
        guard let bytes = WebhookEncoding.hex(text), bytes.count == byteCount else {
            throw malformed("\(what) is not \(byteCount * 2) hex digits")
        }
        return bytes
    }

    private static func base64Bytes(_ text: Substring, byteCount: Int, what: String) throws(WebhookRefusal) -> [UInt8] {
        guard let bytes = WebhookEncoding.base64(text), bytes.count == byteCount else {
            throw malformed("\(what) is not base64 of \(byteCount) bytes")
        }
        return bytes
    }

    /// `X-Hub-Signature-256: sha256=<64 hex>`.
    static func github(_ value: String) throws(WebhookRefusal) -> Self {
        guard value.hasPrefix("sha256=") else { throw malformed("signature does not start with `sha256=`") }
        let mac = try hexMAC(value.dropFirst("sha256=".count), byteCount: 32, what: "`sha256` signature")
        return Self(candidates: [WebhookSignatureCandidate(kind: .hmac, bytes: mac)])
    }

    /// `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>][,v0=...]`. Several `v1` entries appear
    /// while Stripe rolls a secret; `t` must appear exactly once.
    static func stripe(_ value: String) throws(WebhookRefusal) -> Self {
        let entries = value.split(separator: ",", omittingEmptySubsequences: false)
        guard entries.count <= maxEntries else { throw malformed("more than \(maxEntries) entries") }
        var header = Self(candidates: [])
        for entry in entries {
            let entry = entry.trimmingSpaces
            guard let equals = entry.firstIndex(of: "="), equals != entry.startIndex else {
                throw malformed("an entry is not `key=value`")
            }
            let key = entry[..<equals]
            let text = entry[entry.index(after: equals)...]
            switch key {
            case "t":
                guard header.timestamp == nil else { throw malformed("`t` appears twice") }
                guard let timestamp = WebhookTimestamp(text) else { throw malformed("`t` is not a Unix time in seconds") }
                header.timestamp = timestamp
            case "v1":
                header.candidates.append(.init(kind: .hmac, bytes: try hexMAC(text, byteCount: 32, what: "a `v1` signature")))
            default:
                continue  // v0 (test mode) and future schemes
            }
        }
        guard header.timestamp != nil else { throw malformed("no `t=` timestamp") }
        guard !header.candidates.isEmpty else {
            throw WebhookRefusal(.webhookMissingSignature, "no `v1` signature in `stripe-signature`")
        }
        return header
    }

    /// `X-Slack-Signature: v0=<64 hex>`.
    static func slack(_ value: String) throws(WebhookRefusal) -> Self {
        guard let equals = value.firstIndex(of: "=") else { throw malformed("signature is not `v0=<hex>`") }
        guard value[..<equals] == "v0" else {
            throw WebhookRefusal(.webhookMissingSignature, "no `v0` signature in `x-slack-signature`")
        }
        let mac = try hexMAC(value[value.index(after: equals)...], byteCount: 32, what: "`v0` signature")
        return Self(candidates: [WebhookSignatureCandidate(kind: .hmac, bytes: mac)])
    }

    /// `X-Shopify-Hmac-Sha256: <base64 of 32 bytes>`.
    static func shopify(_ value: String) throws(WebhookRefusal) -> Self {
        let mac = try base64Bytes(value[...], byteCount: 32, what: "signature")
        return Self(candidates: [WebhookSignatureCandidate(kind: .hmac, bytes: mac)])
    }

    /// `webhook-signature: v1,<base64> v1a,<base64> ...`, space separated. Only the versions
    /// the route has keys for are decoded; the others are skipped like unknown versions.
    static func standard(_ value: String, hmac: Bool, ed25519: Bool) throws(WebhookRefusal) -> Self {
        let entries = value.split(separator: " ", omittingEmptySubsequences: true)
        guard entries.count <= maxEntries else { throw malformed("more than \(maxEntries) entries") }
        var header = Self(candidates: [])
        for entry in entries {
            guard let comma = entry.firstIndex(of: ","), comma != entry.startIndex else {
                throw malformed("an entry is not `version,signature`")
            }
            let text = entry[entry.index(after: comma)...]
            switch entry[..<comma] {
            case "v1" where hmac:
                header.candidates.append(.init(kind: .hmac, bytes: try base64Bytes(text, byteCount: 32, what: "a `v1` signature")))
            case "v1a" where ed25519:
                header.candidates.append(.init(kind: .ed25519, bytes: try base64Bytes(text, byteCount: 64, what: "a `v1a` signature")))
            default:
                continue
            }
        }
        guard !header.candidates.isEmpty else {
            let versions = [hmac ? "`v1`" : nil, ed25519 ? "`v1a`" : nil].compactMap { $0 }.joined(separator: " or ")
            throw WebhookRefusal(.webhookMissingSignature, "no \(versions) signature in `webhook-signature`")
        }
        return header
    }

    /// One signature, after the configured prefix, in the configured encoding.
    static func generic(_ value: String, format: GenericWebhookFormat) throws(WebhookRefusal) -> Self {
        guard value.hasPrefix(format.prefix) else { throw malformed("signature does not start with the configured prefix") }
        let text = value.dropFirst(format.prefix.count)
        let byteCount = format.algorithm.macByteCount
        let mac: [UInt8]
        switch format.encoding {
        case .hex: mac = try hexMAC(text, byteCount: byteCount, what: "signature")
        case .base64: mac = try base64Bytes(text, byteCount: byteCount, what: "signature")
        }
        return Self(candidates: [WebhookSignatureCandidate(kind: .hmac, bytes: mac)])
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs (HTTP optional whitespace).
    var trimmingSpaces: Substring {
        var text = self
        while let first = text.first, first == " " || first == "\t" { text = text.dropFirst() }
        while let last = text.last, last == " " || last == "\t" { text = text.dropLast() }
        return text
    }
}
