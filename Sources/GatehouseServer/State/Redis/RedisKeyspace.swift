import Crypto
import Foundation

/// Redis key names: `<key_prefix><environment>:{<kind>:<digest>}`.
///
/// The braces are a Redis Cluster hash tag, so all work on one key lands on one slot. The
/// caller's key (a delivery id, a `jti`, an identity) is replaced by a digest: Redis keys stay
/// short and never carry the raw value (which could be sensitive or binary).
struct RedisKeyspace: Sendable {
    enum Kind: String, Sendable {
        /// A replay key (insert-if-absent with a TTL).
        case replay = "r"
        /// A GCRA rate cell (the stored TAT).
        case rateCell = "g"
    }

    private let prefix: String

    init(keyPrefix: String, environment: String) {
        self.prefix = keyPrefix + environment + ":"
    }

    func key(_ kind: Kind, _ raw: String) -> String {
        prefix + "{" + kind.rawValue + ":" + Self.digest(raw) + "}"
    }

    /// SHA-256, base64url, first 22 characters (132 bits: collisions are not a concern).
    static func digest(_ raw: String) -> String {
        let encoded = Data(SHA256.hash(data: Data(raw.utf8))).base64EncodedString()
        var result = ""
        result.reserveCapacity(22)
        for character in encoded.prefix(22) {
            switch character {
            case "+": result.append("-")
            case "/": result.append("_")
            default: result.append(character)
            }
        }
        return result
    }
}
