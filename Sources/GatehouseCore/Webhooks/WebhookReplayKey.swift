import Crypto

/// A key for the replay store. Fixed size (a 128-bit digest, 22 base64url characters plus a
/// 4-character tag) whatever the route name or the sender's id, because a store holds a
/// million of them; namespaced by route and kind inside the digest, so two routes (or an id
/// and a signature) never share a key.
public struct WebhookReplayKey: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        /// The sender's delivery id (`webhook-id`, `X-GitHub-Delivery`, `id_header`).
        case deliveryID = "id"
        /// The signed content, for ids the signature does not cover and for schemes without one.
        case signedContent = "sig"
    }

    public let kind: Kind
    /// What to store: `wh1.` and 22 base64url characters.
    public let value: String

    public var description: String { value }

    init(route: String, kind: Kind, material: some Sequence<UInt8>) {
        var hash = SHA256()
        hash.update(data: Array("gatehouse.webhook.replay.v1\u{0}\(route)\u{0}\(kind.rawValue)\u{0}".utf8))
        hash.update(data: Array(material))
        self.kind = kind
        self.value = "wh1." + Base64URL.encode(hash.finalize().prefix(16))
    }
}
