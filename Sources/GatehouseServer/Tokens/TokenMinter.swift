import Crypto
import Foundation
import GatehouseCore

/// Mints the short-lived token an upstream gets for `token.upstream: mint` (ES256): the
/// caller's subject, the peer as the RFC 8693 actor, the route's scopes only, this hop's
/// audience, a fresh `jti`. The inbound token never goes further.
final class TokenMinter: Sendable {
    let issuer: String
    let lifetime: TimeInterval
    private let key: P256.Signing.PrivateKey
    let keyID: String
    /// The public key as a JWKS document, served at the admin listener's `/.well-known/jwks.json`.
    let jwks: String

    init(config: TokenMintingConfig, environment: [String: String]) throws {
        func failure(_ message: String) -> ConfigErrors {
            ConfigErrors([ConfigIssue(location: config.location, keyPath: "token_minting.private_key", message: message)])
        }
        let bytes: [UInt8]
        do {
            bytes = try SecretResolver.resolve(config.privateKey, environment: environment)
        } catch {
            throw failure("\(error)")
        }
        do {
            key = try P256.Signing.PrivateKey(pemRepresentation: String(decoding: bytes, as: UTF8.self))
        } catch {
            // Never print the key, only where it came from.
            throw failure("\(config.privateKey) is not a PEM EC P-256 private key")
        }
        issuer = config.issuer
        lifetime = TimeInterval(config.lifetime.components.seconds)
        let raw = Array(key.publicKey.rawRepresentation)
        keyID = String(Base64URL.encode(Array(SHA256.hash(data: raw))).prefix(16))
        jwks = #"{"keys":[{"kty":"EC","crv":"P-256","use":"sig","alg":"ES256","kid":"\#(keyID)","x":"\#(Base64URL.encode(raw[0..<32]))","y":"\#(Base64URL.encode(raw[32..<64]))"}]}"#
    }

    func mint(audience: String, subject: String?, actor: String?, scopes: [String], now: Date) -> String? {
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
        header.field("alg", "ES256")
        header.field("typ", "JWT")
        header.field("kid", keyID)
        let input = Base64URL.encode(header.finish()) + "." + Base64URL.encode(payload.finish())
        guard let signature = try? key.signature(for: Array(input.utf8)) else { return nil }
        return input + "." + Base64URL.encode(signature.rawRepresentation)
    }
}
