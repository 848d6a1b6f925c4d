import Foundation

/// What verifying one webhook delivery decided. A refusal is a value, not a thrown error.
public enum WebhookVerdict: Sendable, Equatable {
    case valid(WebhookDelivery)
    /// `detail` is safe to log: it never contains a secret, a signature or the body.
    case invalid(ReasonCode, detail: String)
}

/// A delivery whose signature verified.
public struct WebhookDelivery: Sendable, Equatable {
    /// Which configured key verified it: an index into the route's `secrets`, or into its
    /// `public_keys` when `verifiedByPublicKey` (Standard Webhooks `v1a`). Never the key.
    public var secretIndex: Int
    public var verifiedByPublicKey: Bool
    /// The delivery id as sent (`webhook-id`, `X-GitHub-Delivery`, the configured
    /// `id_header`), for the decision record; nil when the scheme has none.
    public var deliveryID: String?
    /// The signed timestamp, for schemes that carry one.
    public var timestamp: Date?
    /// Insert each with `ReplayStore.insertIfAbsent(key.value, expiresAt: replayExpiresAt, ...)`;
    /// any `.duplicate` is `replay.detected`, any `.unavailable` is `state.unavailable`.
    /// Empty when the route has `replay: false`.
    public var replayKeys: [WebhookReplayKey]
    /// How long the keys must be remembered: past the last instant at which the same
    /// delivery would still pass the timestamp check.
    public var replayExpiresAt: Date

    public init(
        secretIndex: Int, verifiedByPublicKey: Bool = false, deliveryID: String?, timestamp: Date?,
        replayKeys: [WebhookReplayKey], replayExpiresAt: Date
    ) {
        self.secretIndex = secretIndex
        self.verifiedByPublicKey = verifiedByPublicKey
        self.deliveryID = deliveryID
        self.timestamp = timestamp
        self.replayKeys = replayKeys
        self.replayExpiresAt = replayExpiresAt
    }
}

/// Why a delivery is refused, inside the verifier; becomes `WebhookVerdict.invalid`.
struct WebhookRefusal: Error, Equatable {
    var reason: ReasonCode
    var detail: String

    init(_ reason: ReasonCode, _ detail: String) {
        self.reason = reason
        self.detail = detail
    }
}
