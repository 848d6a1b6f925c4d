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
        keyID = String(Self.base64URL(Array(SHA256.hash(data: raw))).prefix(16))
        jwks = #"{"keys":[{"kty":"EC","crv":"P-256","use":"sig","alg":"ES256","kid":"\#(keyID)","x":"\#(Self.base64URL(raw[0..<32]))","y":"\#(Self.base64URL(raw[32..<64]))"}]}"#
    }

    func mint(audience: String, subject: String?, actor: String?, scopes: [String], now: Date) -> String? {
        var claims: [(String, String)] = [
            ("iss", Self.json(issuer)), ("aud", Self.json(audience)),
            ("iat", String(Int(now.timeIntervalSince1970))), ("exp", String(Int(now.timeIntervalSince1970 + lifetime))),
            ("jti", Self.json(UUID().uuidString.lowercased())),
        ]
        if let subject { claims.append(("sub", Self.json(subject))) }
        if let actor { claims.append(("act", #"{"sub":\#(Self.json(actor))}"#)) }
        if !scopes.isEmpty { claims.append(("scope", Self.json(scopes.joined(separator: " ")))) }
        let payload = "{" + claims.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
        let header = #"{"alg":"ES256","typ":"JWT","kid":"\#(keyID)"}"#
        let input = Self.base64URL(Array(header.utf8)) + "." + Self.base64URL(Array(payload.utf8))
        guard let signature = try? key.signature(for: Array(input.utf8)) else { return nil }
        return input + "." + Self.base64URL(signature.rawRepresentation)
    }

    /// A JSON string literal.
    static func json(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    static func base64URL(_ bytes: some Sequence<UInt8>) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}
