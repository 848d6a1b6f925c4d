/// The JWS algorithms the gateway verifies. `none` has no case, so no allow-list can hold it.
public enum TokenAlgorithm: String, Sendable, Hashable, CaseIterable, Codable {
    case rs256 = "RS256"
    case rs384 = "RS384"
    case rs512 = "RS512"
    case ps256 = "PS256"
    case es256 = "ES256"
    case es384 = "ES384"
    case edDSA = "EdDSA"
    case hs256 = "HS256"

    /// HMAC algorithms verify with a shared secret, never with a key from a JWKS.
    public var isHMAC: Bool { self == .hs256 }
}
