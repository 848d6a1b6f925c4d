/// A JWS protected header, read strictly by the gateway itself.
struct JOSEHeader: Sendable {
    let alg: String
    let kid: String?
    let typ: String?

    static func parse(_ bytes: [UInt8]) -> Result<JOSEHeader, TokenRefusal> {
        let object: [String: JSONValue]
        switch StrictJSON.parse(bytes) {
        case .failure(.duplicateKey(let key)):
            return .failure(TokenVerifier.malformed("repeated key \(TokenVerifier.printable(key)) in header"))
        case .failure(.invalid(let why)): return .failure(TokenVerifier.malformed("header: \(why)"))
        case .success(.object(let members)): object = members
        case .success: return .failure(TokenVerifier.malformed("header is not a JSON object"))
        }
        // No extension is understood, so any critical one must fail (RFC 7515 §4.1.11).
        guard object["crit"] == nil else { return .failure(TokenVerifier.malformed("crit header present")) }
        guard case .string(let alg)? = object["alg"] else {
            return .failure(TokenVerifier.malformed("alg missing or not a string"))
        }
        var kid: String?
        switch object["kid"] {
        case nil: break
        case .string(let value)?: kid = value
        default: return .failure(TokenVerifier.malformed("kid is not a string"))
        }
        var typ: String?
        switch object["typ"] {
        case nil: break
        case .string(let value)?: typ = value
        default: return .failure(TokenVerifier.malformed("typ is not a string"))
        }
        // jku, x5u, jwk, x5c: deliberately not read. Keys come from configuration only.
        return .success(JOSEHeader(alg: alg, kid: kid, typ: typ))
    }
}

/// A token's payload: the registered claims typed, and every claim as parsed.
struct TokenClaims: Sendable {
    let iss: String
    let sub: String?
    let jti: String?
    /// Seconds since the epoch.
    let exp: Double?
    let nbf: Double?
    let iat: Double?
    /// `aud` as a list (a single string is a list of one).
    let aud: [String]
    /// Union of `scope` (space-separated) and `scp` (an array, or a space-separated string).
    let scopes: Set<String>
    /// `cnf.x5t#S256` (RFC 8705), when present.
    let certificateThumbprint: String?
    let all: [String: JSONValue]

    static func parse(_ bytes: [UInt8]) -> Result<TokenClaims, TokenRefusal> {
        let claims: [String: JSONValue]
        switch StrictJSON.parse(bytes) {
        case .failure(.duplicateKey(let key)):
            return .failure(TokenVerifier.malformed("repeated key \(TokenVerifier.printable(key)) in payload"))
        case .failure(.invalid(let why)): return .failure(TokenVerifier.malformed("payload: \(why)"))
        case .success(.object(let members)): claims = members
        case .success: return .failure(TokenVerifier.malformed("payload is not a JSON object"))
        }
        do {
            guard let iss = try string(claims, "iss") else {
                return .failure(TokenRefusal(.tokenUnknownIssuer, "no iss"))
            }
            var aud: [String] = []
            switch claims["aud"] {
            case nil: break
            case .string(let one)?: aud = [one]
            case .array(let many)?:
                aud = try many.map { element in
                    guard case .string(let s) = element else { throw BadClaim(name: "aud") }
                    return s
                }
            default: throw BadClaim(name: "aud")
            }
            var scopes = Set<String>()
            if let scope = try string(claims, "scope") { scopes.formUnion(words(scope)) }
            switch claims["scp"] {
            case nil: break
            case .string(let s)?: scopes.formUnion(words(s))
            case .array(let many)?:
                for element in many {
                    guard case .string(let s) = element else { throw BadClaim(name: "scp") }
                    scopes.insert(s)
                }
            default: throw BadClaim(name: "scp")
            }
            var thumbprint: String?
            switch claims["cnf"] {
            case nil: break
            case .object(let cnf)?: thumbprint = try string(cnf, "x5t#S256")
            default: throw BadClaim(name: "cnf")
            }
            return .success(
                TokenClaims(
                    iss: iss, sub: try string(claims, "sub"), jti: try string(claims, "jti"),
                    exp: try time(claims, "exp"), nbf: try time(claims, "nbf"), iat: try time(claims, "iat"),
                    aud: aud, scopes: scopes, certificateThumbprint: thumbprint, all: claims
                ))
        } catch let bad as BadClaim {
            return .failure(TokenVerifier.malformed("claim \(bad.name) has the wrong type"))
        } catch {
            return .failure(TokenVerifier.malformed("payload unreadable"))
        }
    }

    private struct BadClaim: Error { let name: String }

    private static func string(_ claims: [String: JSONValue], _ name: String) throws(BadClaim) -> String? {
        switch claims[name] {
        case nil: return nil
        case .string(let s)?: return s
        default: throw BadClaim(name: name)
        }
    }

    private static func time(_ claims: [String: JSONValue], _ name: String) throws(BadClaim) -> Double? {
        guard let value = claims[name] else { return nil }
        guard let seconds = value.doubleValue else { throw BadClaim(name: name) }
        return seconds
    }

    private static func words(_ text: String) -> [String] {
        text.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
    }
}
