/// `routes[].webhook`: the route accepts only deliveries signed by a known sender.
public struct RouteWebhookConfig: Sendable, Equatable {
    public var scheme: WebhookScheme
    /// HMAC secrets, each tried in turn so that a sender can rotate without downtime. Empty
    /// only for a `standard` route that verifies with `publicKeys` alone.
    public var secrets: [SecretReference]
    /// Standard Webhooks Ed25519 public keys (`whpk_<base64>`), for `v1a` signatures.
    public var publicKeys: [SecretReference] = []
    /// How far a signed timestamp may be from now, either way (schemes with a timestamp);
    /// also how long a delivery id is remembered for schemes without one.
    public var tolerance: Duration = .seconds(300)
    /// Refuse a second delivery with the same id (or signed content): `replay.detected`.
    public var rejectReplay = true
    /// Overrides the header that carries the delivery id (lowercased).
    public var idHeader: String?
    /// The largest body accepted (413 `request.too_large` beyond). The server buffers the
    /// whole body up to this size before verifying: a webhook route never streams.
    public var maxBodyBytes: Int = RouteWebhookConfig.defaultMaxBodyBytes
    /// How a `generic` sender signs; nil for every other scheme.
    public var generic: GenericWebhookFormat?
    public var mode: CheckMode = .enforce
    public var location: SourceLocation

    public static let defaultMaxBodyBytes = 1 << 20

    public init(scheme: WebhookScheme, secrets: [SecretReference], location: SourceLocation) {
        self.scheme = scheme
        self.secrets = secrets
        self.location = location
    }
}

/// `routes[].webhook.generic`: the signature format of a sender without a named scheme.
public struct GenericWebhookFormat: Sendable, Equatable {
    /// The signature header (lowercased).
    public var header: String
    /// Text before the signature in the header value, e.g. `sha256=`; may be empty.
    public var prefix: String = ""
    public var encoding: WebhookSignatureEncoding = .hex
    public var algorithm: WebhookHMACAlgorithm = .sha256
    public var signed: WebhookSignedTemplate = .body
    /// The header whose value replaces `{timestamp}` (lowercased); set exactly when
    /// `signed` uses it, and then checked against `tolerance`.
    public var timestampHeader: String?

    public init(header: String) {
        self.header = header
    }
}
