/// How a sender signs its webhook deliveries (`routes[].webhook.scheme`).
public enum WebhookScheme: String, Sendable, Hashable, CaseIterable {
    /// `X-Hub-Signature-256: sha256=<hex>`, HMAC-SHA256 over the body. No timestamp.
    case github
    /// `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>]`, HMAC-SHA256 over `<t>.<body>`.
    case stripe
    /// `X-Slack-Signature: v0=<hex>`, HMAC-SHA256 over `v0:<X-Slack-Request-Timestamp>:<body>`.
    case slack
    /// `X-Shopify-Hmac-Sha256: <base64>`, HMAC-SHA256 over the body. No timestamp.
    case shopify
    /// Standard Webhooks: `webhook-signature: v1,<base64> [v1a,<base64>]...` over
    /// `<webhook-id>.<webhook-timestamp>.<body>`; HMAC-SHA256 (`v1`) or Ed25519 (`v1a`).
    case standard
    /// A header, prefix, encoding, algorithm and signed template chosen by the operator.
    case generic

    /// The header that carries the delivery id when the operator names none. nil: the
    /// scheme has no delivery id (the verified signature content stands in for one).
    var defaultIDHeader: String? {
        switch self {
        case .github: return "x-github-delivery"
        case .standard: return "webhook-id"
        case .stripe, .slack, .shopify, .generic: return nil
        }
    }
}

/// How a `generic` signature is written in its header.
public enum WebhookSignatureEncoding: String, Sendable, Hashable, CaseIterable {
    case hex
    case base64
}

/// The HMAC hash of a `generic` signature.
public enum WebhookHMACAlgorithm: String, Sendable, Hashable, CaseIterable {
    case sha256
    case sha512

    /// Length of the MAC in bytes.
    var macByteCount: Int { self == .sha256 ? 32 : 64 }
}
