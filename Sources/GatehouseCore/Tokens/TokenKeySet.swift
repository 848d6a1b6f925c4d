import Foundation
import JWTKit

/// One verification key: the `kid` it is published under, the one algorithm it verifies,
/// and jwt-kit's verifier for it.
public struct TokenKey: Sendable {
    /// nil for a JWKS key published without a `kid` (usable only when it is the only key).
    public let kid: String?
    public let algorithm: TokenAlgorithm
    /// Which physical key this is (a JWK without `alg` yields one ``TokenKey`` per algorithm
    /// of its family, all with the same source): the JWK's index, or -1 for the HMAC secret.
    let source: Int
    let verifier: any JWTAlgorithm

    /// jwt-kit's signature check; a throw (malformed signature bytes) is a failed check.
    func verifies(signature: [UInt8], signingInput: ArraySlice<UInt8>) -> Bool {
        (try? verifier.verify(signature, signs: signingInput)) ?? false
    }
}

/// Why a key set could not be built. Config and JWKS-refresh errors, not request outcomes.
public enum TokenKeySetError: Error, Sendable, Equatable {
    /// Not a JWKS document (`{"keys": [...]}`).
    case invalidJWKS(String)
    /// The document held keys, but none this gateway can verify with.
    case noUsableKeys(skipped: [String])
    /// Two keys share a `kid` and an algorithm: which one a token means would be a guess.
    case duplicateKeyID(String)
    /// An HMAC secret shorter than the hash output (32 bytes for HS256).
    case hmacSecretTooShort(Int)
}

/// The keys of one issuer, built once (at config compile or JWKS refresh) so that verifying
/// a token is a synchronous lookup plus one signature check.
///
/// Building is async only because jwt-kit's `JWTKeyCollection` is an actor: its JWK → key
/// conversion is reachable only through it. The keys it hands back verify synchronously.
public struct TokenKeySet: Sendable {
    public let keys: [TokenKey]
    /// JWKS entries that were left out, with why (unsupported `kty`, `use: enc`, bad params).
    public let skipped: [String]
    /// false while part of the issuer's keys is unavailable (its `jwks_uri` not fetched yet, or
    /// stale beyond `stale_for`): a token naming no key here is then refused with
    /// `token.keys_unavailable` (503), not `token.unknown_kid`, since the key may well exist.
    public let isComplete: Bool

    /// An empty set: an issuer without one refuses every token (`token.unknown_kid`).
    public static let empty = TokenKeySet(keys: [], skipped: [])
    /// No keys, and that is an outage: every token is refused with `token.keys_unavailable`.
    public static let unavailable = TokenKeySet(keys: [], skipped: [], isComplete: false)

    init(keys: [TokenKey], skipped: [String], isComplete: Bool = true) {
        self.keys = keys
        self.skipped = skipped
        self.isComplete = isComplete
    }

    /// Both sets (a pinned `jwks_file` and a fetched `jwks_uri`). A key of `other` with the
    /// `kid` and algorithm of a key here is left out: the first set wins, never a guess.
    public func merged(with other: TokenKeySet) -> TokenKeySet {
        let taken = Set(keys.map { "\($0.kid ?? "") \($0.algorithm.rawValue)" })
        var added: [TokenKey] = []
        var skipped = self.skipped + other.skipped
        // Sources index JWKS entries; keep the two documents' indices apart.
        let offset = (keys.map(\.source).max() ?? -1) + 1
        for key in other.keys {
            if taken.contains("\(key.kid ?? "") \(key.algorithm.rawValue)") {
                skipped.append("kid \(key.kid ?? "(none)") \(key.algorithm.rawValue): already in the first set")
            } else {
                added.append(TokenKey(kid: key.kid, algorithm: key.algorithm, source: key.source < 0 ? key.source : key.source + offset, verifier: key.verifier))
            }
        }
        return TokenKeySet(keys: keys + added, skipped: skipped, isComplete: isComplete && other.isComplete)
    }

    /// Builds the set from a JWKS document and/or an HMAC secret given explicitly.
    ///
    /// A JWK with `alg` verifies that algorithm only; one without gets each algorithm of its
    /// family (RSA: RS256/384/512, PS256; EC: by curve; OKP: EdDSA). The issuer's allow-list
    /// narrows that further. A JWKS never yields an HMAC key: `oct` keys are skipped.
    public static func load(
        jwksJSON: [UInt8]?,
        hmacSecret: [UInt8]? = nil,
        hmacKeyID: String? = nil
    ) async throws(TokenKeySetError) -> TokenKeySet {
        var keys: [TokenKey] = []
        var skipped: [String] = []
        if let jwksJSON {
            let entries: [JWKSEntry]
            do {
                entries = try JSONDecoder().decode(JWKSDocument.self, from: Data(jwksJSON)).keys
            } catch {
                throw .invalidJWKS("not a JWKS document: \(type(of: error))")
            }
            for (index, entry) in entries.enumerated() {
                let name = "key \(index)" + (entry.kid.map { " (kid \($0))" } ?? "")
                switch await Self.keys(for: entry, source: index) {
                case .success(let made): keys += made
                case .failure(let why): skipped.append("\(name): \(why.message)")
                }
            }
            if keys.isEmpty { throw .noUsableKeys(skipped: skipped) }
        }
        if let hmacSecret {
            // jwt-kit asserts on a short key; RFC 7518 §3.2 requires at least the hash size.
            guard hmacSecret.count >= 32 else { throw .hmacSecretTooShort(hmacSecret.count) }
            let collection = JWTKeyCollection()
            let kid = JWKIdentifier(string: "hmac")
            await collection.add(hmac: HMACKey(from: hmacSecret), digestAlgorithm: .sha256, kid: kid)
            guard let verifier = try? await collection.getKey(for: kid) else {
                throw .hmacSecretTooShort(hmacSecret.count)
            }
            keys.append(TokenKey(kid: hmacKeyID, algorithm: .hs256, source: -1, verifier: verifier))
        }
        var seen = Set<String>()
        for key in keys {
            let id = "\(key.kid ?? "") \(key.algorithm.rawValue)"
            guard seen.insert(id).inserted else { throw .duplicateKeyID(key.kid ?? "(none)") }
        }
        return TokenKeySet(keys: keys, skipped: skipped)
    }

    private struct Skip: Error { let message: String }

    /// NIST SP 800-131A: RSA keys below 2048 bits are not acceptable for signatures.
    static let minimumRSABits = 2048

    private static func bitLength(_ bigEndian: [UInt8]) -> Int {
        guard let first = bigEndian.firstIndex(where: { $0 != 0 }) else { return 0 }
        return (bigEndian.count - first) * 8 - bigEndian[first].leadingZeroBitCount
    }

    private static func keys(for entry: JWKSEntry, source: Int) async -> Result<[TokenKey], Skip> {
        if let use = entry.use, use != "sig" { return .failure(Skip(message: "use \(use)")) }
        let jwk: JWK
        switch entry.jwk {
        case .failure: return .failure(Skip(message: "unsupported or invalid JWK (kty \(entry.kty ?? "missing"))"))
        case .success(let decoded): jwk = decoded
        }
        let algorithms: [TokenAlgorithm]
        if let alg = entry.alg {
            guard let algorithm = TokenAlgorithm(rawValue: alg), !algorithm.isHMAC else {
                return .failure(Skip(message: "unsupported alg \(alg)"))
            }
            algorithms = [algorithm]
        } else {
            switch (jwk.keyType, jwk.curve?.rawValue) {
            case (.rsa, _): algorithms = [.rs256, .rs384, .rs512, .ps256]
            case (.ecdsa, "P-256"): algorithms = [.es256]
            case (.ecdsa, "P-384"): algorithms = [.es384]
            case (.octetKeyPair, "Ed25519"): algorithms = [.edDSA]
            default: return .failure(Skip(message: "unsupported key type or curve"))
            }
        }
        if jwk.keyType == .rsa {
            // jwt-kit's RSA key type is `Insecure.RSA`: it takes any size, so the floor is ours.
            let bits = jwk.modulus.flatMap { Base64URL.decode(Array($0.utf8)) }.map { Self.bitLength($0) } ?? 0
            guard bits >= Self.minimumRSABits else {
                return .failure(Skip(message: "RSA key of \(bits) bits, at least \(Self.minimumRSABits) required"))
            }
        }
        var made: [TokenKey] = []
        for algorithm in algorithms {
            // One collection per key: jwt-kit falls back to its default key for an unknown
            // kid, so a shared collection could hand back another key than the one asked for.
            var single = jwk
            single.keyIdentifier = JWKIdentifier(string: "k")
            single.algorithm = JWK.Algorithm(rawValue: algorithm.rawValue)
            let collection = JWTKeyCollection()
            do {
                try await collection.add(jwk: single)
                let verifier = try await collection.getKey(for: JWKIdentifier(string: "k"), alg: algorithm.rawValue)
                guard verifier.name == algorithm.rawValue else {
                    return .failure(Skip(message: "jwt-kit made \(verifier.name) for \(algorithm.rawValue)"))
                }
                made.append(TokenKey(kid: entry.kid, algorithm: algorithm, source: source, verifier: verifier))
            } catch {
                return .failure(Skip(message: "invalid \(algorithm.rawValue) key parameters"))
            }
        }
        return .success(made)
    }
}

/// `{"keys": [...]}`, each entry decoded on its own so one unsupported key (an `oct` or
/// encryption key next to the signing keys) does not void the whole set.
private struct JWKSDocument: Decodable {
    let keys: [JWKSEntry]
}

private struct JWKSEntry: Decodable {
    let jwk: Result<JWK, any Error>
    let kid: String?
    let alg: String?
    let use: String?
    let kty: String?

    private enum Keys: String, CodingKey { case kid, alg, use, kty }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        self.kid = try container.decodeIfPresent(String.self, forKey: .kid)
        self.alg = try container.decodeIfPresent(String.self, forKey: .alg)
        self.use = try container.decodeIfPresent(String.self, forKey: .use)
        self.kty = try container.decodeIfPresent(String.self, forKey: .kty)
        self.jwk = Result { try JWK(from: decoder) }
    }
}
