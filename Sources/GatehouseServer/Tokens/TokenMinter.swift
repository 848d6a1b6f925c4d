import Crypto
import Foundation
import GatehouseCore
import NIOConcurrencyHelpers
import _CryptoExtras

/// Mints the short-lived token an upstream gets for `token.upstream: mint` (ES256 or EdDSA,
/// by the key's type): the caller's subject, the peer as the RFC 8693 actor, the route's
/// scopes only, this hop's audience, a fresh `jti`. The inbound token never goes further.
///
/// The key is re-read when its file changes (`reload`). The JWKS then publishes the new key
/// and the previous one, so tokens signed just before the rotation still verify upstream.
final class TokenMinter: Sendable {
    let issuer: String
    let lifetime: TimeInterval
    let config: TokenMintingConfig
    private let environment: [String: String]
    private let state: NIOLockedValueBox<(current: MintingKey, previous: MintingKey?)>

    init(config: TokenMintingConfig, environment: [String: String]) throws {
        self.config = config
        self.environment = environment
        self.issuer = config.issuer
        self.lifetime = TimeInterval(config.lifetime.components.seconds)
        self.state = NIOLockedValueBox((try Self.load(config, environment: environment), nil))
    }

    /// Re-reads the private key; on failure the current key stays in use.
    func reload() throws {
        let key = try Self.load(config, environment: environment)
        state.withLockedValue { state in
            guard key.keyID != state.current.keyID else { return }
            state = (key, state.current)
        }
    }

    var keyID: String { state.withLockedValue { $0.current.keyID } }

    /// The public keys as a JWKS document, served at the admin listener's `/.well-known/jwks.json`.
    var jwks: String {
        let keys = state.withLockedValue { [$0.current] + ($0.previous.map { [$0] } ?? []) }
        return #"{"keys":["# + keys.map(\.jwk).joined(separator: ",") + "]}"
    }

    static func watchedFiles(_ config: TokenMintingConfig) -> [String] {
        [TLSMaterial.watchedPath(config.privateKey)].compactMap { $0 }
    }

    private static func load(_ config: TokenMintingConfig, environment: [String: String]) throws -> MintingKey {
        func failure(_ message: String) -> ConfigErrors {
            ConfigErrors([ConfigIssue(location: config.location, keyPath: "token_minting.private_key", message: message)])
        }
        let bytes: [UInt8]
        do {
            bytes = try SecretResolver.resolve(config.privateKey, environment: environment)
        } catch {
            throw failure("\(error)")
        }
        let pem = String(decoding: bytes, as: UTF8.self)
        if let key = try? P256.Signing.PrivateKey(pemRepresentation: pem) { return MintingKey(.es256(key)) }
        if let key = try? Curve25519.Signing.PrivateKey(pemRepresentation: pem) { return MintingKey(.edDSA(key)) }
        // Never print the key, only where it came from.
        throw failure("\(config.privateKey) is not a PEM EC P-256 or Ed25519 private key")
    }

    func mint(audience: String, subject: String?, actor: String?, scopes: [String], now: Date) -> String? {
        let key = state.withLockedValue { $0.current }
        let issuedAt = Int(now.timeIntervalSince1970)
        var payload = JSONObjectWriter(capacity: 256)
        payload.field("iss", issuer)
        payload.field("aud", audience)
        payload.field("iat", issuedAt)
        payload.field("exp", issuedAt + Int(lifetime))
        payload.field("jti", UUID().uuidString.lowercased())
        if let subject { payload.field("sub", subject) }
        if let actor { payload.object("act") { $0.field("sub", actor) } }
        if !scopes.isEmpty { payload.field("scope", scopes.joined(separator: " ")) }
        var header = JSONObjectWriter(capacity: 64)
        header.field("alg", key.algorithm)
        header.field("typ", "JWT")
        header.field("kid", key.keyID)
        let input = Base64URL.encode(header.finish()) + "." + Base64URL.encode(payload.finish())
        guard let signature = key.sign(Array(input.utf8)) else { return nil }
        return input + "." + Base64URL.encode(signature)
    }
}

/// The gateway's signing key, with what the JWKS and the token header say about it.
struct MintingKey: Sendable {
    enum Kind: Sendable {
        case es256(P256.Signing.PrivateKey)
        case edDSA(Curve25519.Signing.PrivateKey)
    }

    let kind: Kind
    /// From the public key, so the same key always has the same `kid`.
    let keyID: String
    let jwk: String

    init(_ kind: Kind) {
        self.kind = kind
        switch kind {
        case .es256(let key):
            let raw = Array(key.publicKey.rawRepresentation)
            keyID = String(Base64URL.encode(Array(SHA256.hash(data: raw))).prefix(16))
            jwk = #"{"kty":"EC","crv":"P-256","use":"sig","alg":"ES256","kid":"\#(keyID)","x":"\#(Base64URL.encode(raw[0..<32]))","y":"\#(Base64URL.encode(raw[32..<64]))"}"#
        case .edDSA(let key):
            let raw = Array(key.publicKey.rawRepresentation)
            keyID = String(Base64URL.encode(Array(SHA256.hash(data: raw))).prefix(16))
            jwk = #"{"kty":"OKP","crv":"Ed25519","use":"sig","alg":"EdDSA","kid":"\#(keyID)","x":"\#(Base64URL.encode(raw))"}"#
        }
    }

    var algorithm: String {
        switch kind {
        case .es256: return "ES256"
        case .edDSA: return "EdDSA"
        }
    }

    func sign(_ input: [UInt8]) -> [UInt8]? {
        switch kind {
        case .es256(let key): return (try? key.signature(for: input)).map { Array($0.rawRepresentation) }
        case .edDSA(let key): return (try? key.signature(for: input)).map { Array($0) }
        }
    }
}
