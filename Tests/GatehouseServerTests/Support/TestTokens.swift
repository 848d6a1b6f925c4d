import Crypto
import Foundation
import XCTest

/// ES256 tokens and their JWKS, made in the tests.
enum TestTokens {
    static let key = P256.Signing.PrivateKey()
    static let rotatedKey = P256.Signing.PrivateKey()

    static func b64(_ bytes: some Sequence<UInt8>) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func jwks(_ key: P256.Signing.PrivateKey, kid: String, plus other: (P256.Signing.PrivateKey, String)? = nil) -> String {
        let keys = [(key, kid)] + (other.map { [$0] } ?? [])
        return #"{"keys":["# + keys.map { jwk($0.0, kid: $0.1) }.joined(separator: ",") + "]}"
    }

    static func jwk(_ key: P256.Signing.PrivateKey, kid: String) -> String {
        let raw = Array(key.publicKey.rawRepresentation)
        return #"{"kty":"EC","crv":"P-256","kid":"\#(kid)","alg":"ES256","use":"sig","x":"\#(b64(raw[0..<32]))","y":"\#(b64(raw[32..<64]))"}"#
    }

    /// The test issuer's JWKS in a file that `test` removes when it tears down.
    static func jwksFile(for test: XCTestCase) throws -> String {
        let path = test.temporaryPath("gatehouse-jwks-", suffix: ".json")
        try jwks(key, kid: "k1").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A token from the test issuer; `claims` are added to (or replace) the defaults.
    static func token(
        _ claims: [String: String] = [:], key: P256.Signing.PrivateKey = key, kid: String = "k1"
    ) throws -> String {
        let now = Int(Date().timeIntervalSince1970)
        var all: [String: String] = [
            "iss": #""https://idp.test""#, "aud": #""billing""#, "sub": #""alice""#, "jti": #""t-1""#,
            "iat": "\(now)", "exp": "\(now + 300)", "scope": #""invoices.read invoices.write""#,
        ]
        for (name, value) in claims { all[name] = value }
        let payload = "{" + all.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",") + "}"
        let signingInput = b64(Array(#"{"alg":"ES256","kid":"\#(kid)","typ":"JWT"}"#.utf8)) + "." + b64(Array(payload.utf8))
        let signature = try key.signature(for: Array(signingInput.utf8))
        return signingInput + "." + b64(signature.rawRepresentation)
    }

}
