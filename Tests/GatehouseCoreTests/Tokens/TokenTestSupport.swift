import Crypto
import Foundation
import _CryptoExtras
@testable import GatehouseCore

/// Keys made once per test run (RSA generation is slow in debug builds), tokens made per test.
enum TestKeys {
    static let rsa = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
    static let rsaOther = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
    static let p256 = P256.Signing.PrivateKey()
    static let p256Other = P256.Signing.PrivateKey()
    static let p384 = P384.Signing.PrivateKey()
    static let ed25519 = Curve25519.Signing.PrivateKey()
    static let hmacSecret = Array(repeating: UInt8(0x5A), count: 32)
}

/// Fixed instant for every token test: 2027-01-15T08:00:00Z.
let testNow = Date(timeIntervalSince1970: 1_800_000_000)
let nowSeconds = Int(testNow.timeIntervalSince1970)

enum TestSigner {
    case rs256(_RSA.Signing.PrivateKey)
    case rs384(_RSA.Signing.PrivateKey)
    case rs512(_RSA.Signing.PrivateKey)
    case ps256(_RSA.Signing.PrivateKey)
    case es256(P256.Signing.PrivateKey)
    case es384(P384.Signing.PrivateKey)
    case edDSA(Curve25519.Signing.PrivateKey)
    case hs256([UInt8])
    /// These exact signature bytes, for forged tokens.
    case raw([UInt8])

    func sign(_ input: [UInt8]) -> [UInt8] {
        switch self {
        case .rs256(let key): return try! Array(key.signature(for: SHA256.hash(data: input), padding: .insecurePKCS1v1_5).rawRepresentation)
        case .rs384(let key): return try! Array(key.signature(for: SHA384.hash(data: input), padding: .insecurePKCS1v1_5).rawRepresentation)
        case .rs512(let key): return try! Array(key.signature(for: SHA512.hash(data: input), padding: .insecurePKCS1v1_5).rawRepresentation)
        case .ps256(let key): return try! Array(key.signature(for: SHA256.hash(data: input), padding: .PSS).rawRepresentation)
        case .es256(let key): return try! Array(key.signature(for: input).rawRepresentation)
        case .es384(let key): return try! Array(key.signature(for: input).rawRepresentation)
        case .edDSA(let key): return try! Array(key.signature(for: input))
        case .hs256(let secret): return Array(HMAC<SHA256>.authenticationCode(for: input, using: SymmetricKey(data: secret)))
        case .raw(let bytes): return bytes
        }
    }
}

func b64(_ bytes: some Sequence<UInt8>) -> String { Base64URL.encode(bytes) }
func b64(_ text: String) -> String { Base64URL.encode(Array(text.utf8)) }

/// A compact JWS from raw header and payload JSON text (so tests can write hostile JSON).
func makeToken(header: String, payload: String, signer: TestSigner) -> String {
    let input = b64(header) + "." + b64(payload)
    return input + "." + b64(signer.sign(Array(input.utf8)))
}

/// JSON object text from claims; values are JSON text fragments.
func json(_ members: KeyValuePairs<String, String>) -> String {
    "{" + members.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",") + "}"
}

/// A good payload for the test issuer; `extra` replaces or adds members (value "" removes).
func payload(_ extra: [String: String] = [:]) -> String {
    var claims: [String: String] = [
        "iss": "\"https://idp.example\"", "sub": "\"alice\"", "aud": "\"payments\"",
        "exp": "\(nowSeconds + 300)", "iat": "\(nowSeconds - 10)", "jti": "\"j-1\"",
        "scope": "\"read write\"", "env": "\"prod\"",
    ]
    for (name, value) in extra { claims[name] = value.isEmpty ? nil : value }
    return "{" + claims.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",") + "}"
}

enum TestJWK {
    static func rsa(_ key: _RSA.Signing.PrivateKey, kid: String?, alg: String? = "RS256") -> String {
        let primitives = try! key.publicKey.getKeyPrimitives()
        var members = ["\"kty\":\"RSA\"", "\"n\":\"\(b64(primitives.modulus))\"", "\"e\":\"\(b64(primitives.publicExponent))\""]
        if let kid { members.append("\"kid\":\"\(kid)\"") }
        if let alg { members.append("\"alg\":\"\(alg)\"") }
        return "{" + members.joined(separator: ",") + "}"
    }

    static func p256(_ key: P256.Signing.PrivateKey, kid: String?, alg: String? = "ES256") -> String {
        ec(Array(key.publicKey.rawRepresentation), crv: "P-256", kid: kid, alg: alg)
    }

    static func p384(_ key: P384.Signing.PrivateKey, kid: String?, alg: String? = "ES384") -> String {
        ec(Array(key.publicKey.rawRepresentation), crv: "P-384", kid: kid, alg: alg)
    }

    static func ec(_ raw: [UInt8], crv: String, kid: String?, alg: String?) -> String {
        let half = raw.count / 2
        var members = ["\"kty\":\"EC\"", "\"crv\":\"\(crv)\"", "\"x\":\"\(b64(raw[..<half]))\"", "\"y\":\"\(b64(raw[half...]))\""]
        if let kid { members.append("\"kid\":\"\(kid)\"") }
        if let alg { members.append("\"alg\":\"\(alg)\"") }
        return "{" + members.joined(separator: ",") + "}"
    }

    static func ed25519(_ key: Curve25519.Signing.PrivateKey, kid: String?) -> String {
        var members = ["\"kty\":\"OKP\"", "\"crv\":\"Ed25519\"", "\"x\":\"\(b64(key.publicKey.rawRepresentation))\""]
        if let kid { members.append("\"kid\":\"\(kid)\"") }
        return "{" + members.joined(separator: ",") + "}"
    }

    static func set(_ keys: String...) -> [UInt8] {
        Array(("{\"keys\":[" + keys.joined(separator: ",") + "]}").utf8)
    }
}

/// The standard test issuer: every key kind under its own kid, the HMAC secret as `hs`.
func standardKeySet() async throws -> TokenKeySet {
    try await TokenKeySet.load(
        jwksJSON: TestJWK.set(
            TestJWK.rsa(TestKeys.rsa, kid: "rsa", alg: nil),
            TestJWK.p256(TestKeys.p256, kid: "ec"),
            TestJWK.p384(TestKeys.p384, kid: "ec384"),
            TestJWK.ed25519(TestKeys.ed25519, kid: "ed")
        ),
        hmacSecret: TestKeys.hmacSecret,
        hmacKeyID: "hs"
    )
}

func standardIssuer(
    keys: TokenKeySet,
    algorithms: Set<TokenAlgorithm> = Set(TokenAlgorithm.allCases),
    maxLifetime: TimeInterval? = nil,
    name: String = "idp"
) throws -> TokenIssuer {
    try TokenIssuer(
        name: name, issuer: "https://idp.example", audiences: ["payments", "ledger"], algorithms: algorithms,
        keys: keys, maxLifetime: maxLifetime, requiredClaims: ["env": .string("prod")]
    )
}

let anyRoute = TokenRequirement(issuers: ["idp"])

func header(alg: String, kid: String?, extra: String = "") -> String {
    var members = ["\"alg\":\"\(alg)\"", "\"typ\":\"JWT\""]
    if let kid { members.append("\"kid\":\"\(kid)\"") }
    if !extra.isEmpty { members.append(extra) }
    return "{" + members.joined(separator: ",") + "}"
}

extension Result where Failure == TokenRefusal {
    /// The refusal's reason, or `.allowed` for a success: one value to assert on.
    var reason: ReasonCode {
        switch self {
        case .success: return .allowed
        case .failure(let refusal): return refusal.reason
        }
    }
}

/// An RS256 token of the standard issuer with `jti` and `claims` over the standard payload.
func rs256Token(jti: String = "j-1", _ claims: [String: String] = [:]) -> String {
    var claims = claims
    claims["jti"] = "\"\(jti)\""
    return makeToken(header: header(alg: "RS256", kid: "rsa"), payload: payload(claims), signer: .rs256(TestKeys.rsa))
}

/// The standard issuer with its `rsa` key replaced by another: only a remembered verdict (a
/// cache hit) can accept a token the original key signed, which proves the signature was skipped.
func replacedKeyIssuer() async throws -> TokenIssuer {
    let keys = try await TokenKeySet.load(jwksJSON: TestJWK.set(TestJWK.rsa(TestKeys.rsaOther, kid: "rsa")))
    return try standardIssuer(keys: keys, algorithms: [.rs256])
}
