/// `issuers:` and `routes[].token` — who may issue the bearer tokens a route accepts, and
/// what a route requires of them.
enum TokenSection {
    static let issuerKeys = [
        "issuer", "jwks_file", "audiences", "algorithms", "hmac_secret", "clock_skew", "max_lifetime", "required_claims",
        "revoked", "jwks_uri", "ca", "refresh_interval", "stale_for",
    ]
    /// Settings that only make sense with `jwks_uri`.
    static let fetchKeys = ["ca", "refresh_interval", "stale_for"]
    static let routeKeys = ["issuer", "scopes", "claims", "from", "bind", "upstream", "replay", "claims_to_headers", "mode"]
    static let plannedRouteKeys: [String] = []

    static let asymmetricAlgorithms = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]
    static let hmacAlgorithms = ["HS256"]

    /// Every issuer's name, valid entry or not, so that routes naming a broken issuer are
    /// not also told it does not exist.
    static func issuerNames(_ node: ConfigNode) -> [String] {
        guard case .mapping(let mapping) = node.node else { return [] }
        return mapping.keys.compactMap { key in
            if case .scalar(let scalar) = key { return scalar.string }
            return nil  // reported where the issuers are read
        }
    }

    static func readIssuers(_ node: ConfigNode) -> [IssuerConfig] {
        guard let entries = node.namedEntries() else { return [] }
        return entries.compactMap { readIssuer(name: $0.name, $0.value) }
    }

    static func readIssuer(name nameNode: ConfigNode, _ node: ConfigNode) -> IssuerConfig? {
        let name = nameNode.identifier()
        guard let map = node.mapping(keys: issuerKeys) else { return nil }
        let issuer = map.required("issuer", expected: "the exact `iss` value")?.nonEmptyString()
        let jwksFile = map.optional("jwks_file")?.nonEmptyString()
        let hmacSecret = map.optional("hmac_secret")?.secretReference()
        let endpointNode = map.optional("jwks_uri")
        let endpoint = endpointNode.flatMap { readEndpoint($0, map) }
        if !map.has("jwks_file") && !map.has("jwks_uri") && !map.has("hmac_secret") {
            node.report("no keys to verify tokens with", expected: "`jwks_uri: https://...`, `jwks_file: PATH` (or `hmac_secret` for an HS256 issuer)")
        }
        if endpointNode == nil {
            for key in fetchKeys {
                map.optional(key)?.report("`\(key)` applies to a fetched key set", expected: "`jwks_uri` next to it, or no `\(key)`")
            }
        }
        var audiences: [String] = []
        var valid = true
        if let audienceNode = map.required("audiences", expected: "a non-empty list of accepted `aud` values") {
            // Without an audience check, a token minted for any service of this issuer would pass.
            for item in audienceNode.nonEmptyList() ?? [] {
                if let audience = item.nonEmptyString() { audiences.append(audience) } else { valid = false }
            }
            if audiences.isEmpty { valid = false }
        }
        var algorithms: [String]?
        if let algorithmsNode = map.optional("algorithms") {
            var chosen: [String] = []
            for item in algorithmsNode.nonEmptyList() ?? [] {
                guard let text = item.string() else { continue }
                if text.lowercased() == "none" {
                    item.report("`none` is never accepted", expected: "a signing algorithm")
                } else if hmacAlgorithms.contains(text) && !map.has("hmac_secret") {
                    // Never verify HMAC with a key meant for signature checks (key confusion).
                    item.report("`\(text)` needs the issuer's own `hmac_secret`", expected: "an asymmetric algorithm, or `hmac_secret: env:NAME`")
                } else if asymmetricAlgorithms.contains(text) || hmacAlgorithms.contains(text) {
                    chosen.append(text)
                    continue
                } else {
                    item.report("unknown algorithm `\(text)`", expected: "one of \(MappingReader.list(asymmetricAlgorithms + hmacAlgorithms))")
                }
                valid = false
            }
            algorithms = chosen
        }
        var config: IssuerConfig?
        if let name, let issuer, valid, map.has("jwks_file") == (jwksFile != nil), endpointNode == nil || endpoint != nil,
            endpointNode != nil || fetchKeys.allSatisfy({ !map.has($0) })
        {
            config = IssuerConfig(name: name, issuer: issuer, jwksFile: jwksFile, audiences: audiences, location: nameNode.location)
            config?.jwksEndpoint = endpoint
        }
        config?.algorithms = algorithms
        config?.hmacSecret = hmacSecret
        if let value = map.optional("clock_skew")?.duration() { config?.clockSkew = value }
        if let value = map.optional("max_lifetime")?.duration() { config?.maxLifetime = value }
        if let claimsNode = map.optional("required_claims") { config?.requiredClaims = readClaims(claimsNode) }
        if let revokedNode = map.optional("revoked") { config?.revokedFile = revokedNode.nonEmptyString() }
        return config
    }

    /// `jwks_uri` with `ca`, `refresh_interval` and `stale_for`. nil when anything is wrong.
    static func readEndpoint(_ node: ConfigNode, _ map: MappingReader) -> JWKSEndpointConfig? {
        guard let url = node.parse("an `https://` URL", ConfigValueParser.httpsURL) else { return nil }
        var endpoint = JWKSEndpointConfig(url: url)
        var valid = true
        if let caNode = map.optional("ca") {
            if let path = caNode.nonEmptyString() { endpoint.caFile = path } else { valid = false }
        }
        if let intervalNode = map.optional("refresh_interval") {
            if let interval = intervalNode.duration(), interval >= .seconds(1) {
                endpoint.refreshInterval = interval
            } else {
                if intervalNode.duration() != nil { intervalNode.report("refresh more often than every second", expected: "at least `1s`, e.g. `5m`") }
                valid = false
            }
        }
        if let staleNode = map.optional("stale_for") {
            if let stale = staleNode.duration() {
                // Stale keys serve only across failed refreshes: at least one must fit in.
                if stale <= endpoint.refreshInterval {
                    staleNode.report("`stale_for` is not longer than `refresh_interval` (\(ConfigValueParser.text(endpoint.refreshInterval)))",
                        expected: "a longer duration, e.g. `1h`")
                    valid = false
                } else {
                    endpoint.staleFor = stale
                }
            } else {
                valid = false
            }
        } else if endpoint.staleFor <= endpoint.refreshInterval {
            map.optional("refresh_interval")?.report("`refresh_interval` is not shorter than the default `stale_for` (1h)",
                expected: "a shorter interval, or a longer `stale_for`")
            valid = false
        }
        return valid ? endpoint : nil
    }

    /// `routes[].token`. nil when anything is wrong (the problem is logged; the file is refused).
    static func readRoute(_ node: ConfigNode, issuers: [String], mintingConfigured: Bool = false) -> RouteTokenConfig? {
        guard let map = node.mapping(keys: routeKeys, planned: plannedRouteKeys) else { return nil }
        var valid = true
        var names: [String] = []
        if let issuerNode = map.required("issuer", expected: "the name of an entry of `issuers`, or a list of them") {
            let items: [ConfigNode]
            if case .sequence = issuerNode.node { items = issuerNode.nonEmptyList() ?? [] } else { items = [issuerNode] }
            for item in items {
                guard let name = item.identifier() else {
                    valid = false
                    continue
                }
                if !issuers.contains(name) {
                    let hint = MappingReader.suggestion(for: name, among: issuers).map { " (did you mean `\($0)`?)" } ?? ""
                    item.report("unknown issuer `\(name)`\(hint)",
                        expected: issuers.isEmpty ? "an issuer defined under `issuers`" : "one of \(MappingReader.list(issuers))")
                    valid = false
                }
                names.append(name)
            }
            if items.isEmpty { valid = false }
        } else {
            valid = false
        }
        var config = RouteTokenConfig(issuers: names, location: node.location)
        if let scopesNode = map.optional("scopes") {
            for item in scopesNode.list() ?? [] {
                if let scope = item.nonEmptyString(), !scope.contains(" ") {
                    config.scopes.append(scope)
                } else {
                    if item.scalarText?.contains(" ") == true { item.report("a scope contains no space", expected: "one scope per list entry") }
                    valid = false
                }
            }
        }
        if let claimsNode = map.optional("claims") { config.claims = readClaims(claimsNode) }
        if let fromNode = map.optional("from") {
            if let text = fromNode.string() {
                if text == "bearer" {
                    config.source = .authorizationBearer
                } else if text.hasPrefix("header:"), ConfigValueParser.isHeaderName(String(text.dropFirst("header:".count))) {
                    config.source = .header(String(text.dropFirst("header:".count)).lowercased())
                } else {
                    fromNode.report("`\(text)` is not a token source", expected: "`bearer` (Authorization: Bearer) or `header:NAME`")
                    valid = false
                }
            } else {
                valid = false
            }
        }
        if let bindNode = map.optional("bind") {
            switch bindNode.string() {
            case "none": config.bindToClientCertificate = false
            case "mtls": config.bindToClientCertificate = true
            case let other?:
                bindNode.report("unknown value `\(other)`", expected: "one of `none`, `mtls`")
                valid = false
            case nil: valid = false
            }
        }
        if let headersNode = map.optional("claims_to_headers"), let entries = headersNode.namedEntries() {
            var used: Set<String> = []
            for (claimNode, headerNode) in entries {
                guard let claim = claimNode.nonEmptyString(), let header = headerNode.string() else {
                    valid = false
                    continue
                }
                let name = header.lowercased()
                // The gateway's own forwarding headers are never taken from a token.
                let reserved = ["host", "authorization", "content-length", "transfer-encoding", "connection",
                    "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-request-id", "x-forwarded-client-cert",
                    "x-gatehouse-peer-id", "traceparent", "forwarded"]
                if !ConfigValueParser.isHeaderName(header) {
                    headerNode.report("`\(header)` is not a header name", expected: "e.g. `X-User`")
                    valid = false
                } else if reserved.contains(name) {
                    headerNode.report("`\(header)` is set by the gateway itself", expected: "another header name, e.g. `X-Gatehouse-User`")
                    valid = false
                } else if !used.insert(name).inserted {
                    headerNode.report("header `\(header)` is already used for another claim")
                    valid = false
                } else {
                    config.claimsToHeaders[claim] = name
                }
            }
        }
        if let replayNode = map.optional("replay") {
            switch replayNode.string() {
            case "none": config.rejectReplay = false
            case "jti": config.rejectReplay = true
            case let other?:
                replayNode.report("unknown value `\(other)`", expected: "one of `none`, `jti`")
                valid = false
            case nil: valid = false
            }
        }
        if let upstreamNode = map.optional("upstream") {
            switch upstreamNode.string() {
            case "forward": config.stripUpstream = false
            case "strip": config.stripUpstream = true
            case "mint":
                if mintingConfigured {
                    config.mintUpstream = true
                } else {
                    upstreamNode.report("`mint` needs the gateway's own signing key", expected: "a `token_minting` section")
                    valid = false
                }
            case let other?:
                upstreamNode.report("unknown value `\(other)`", expected: "one of `forward`, `strip`, `mint`")
                valid = false
            case nil: valid = false
            }
        }
        if let modeNode = map.optional("mode") {
            if let mode = modeNode.oneOf(CheckMode.self) { config.mode = mode } else { valid = false }
        }
        return valid ? config : nil
    }

    /// A route accepting two issuers with the same `iss` could not tell whose keys a token
    /// needs (the first listed would silently win): refuse it.
    static func checkDistinctIssuers(routes: [RouteConfig], issuers: [IssuerConfig], log: IssueLog) {
        let issByName = Dictionary(issuers.map { ($0.name, $0.issuer) }, uniquingKeysWith: { first, _ in first })
        for (index, route) in routes.enumerated() {
            guard let token = route.token else { continue }
            var seen: [String: String] = [:]
            for name in token.issuers {
                guard let iss = issByName[name] else { continue }
                if let other = seen[iss] {
                    log.report(ConfigIssue(
                        location: token.location, keyPath: "routes[\(index)].token.issuer",
                        message: "issuers `\(other)` and `\(name)` both have iss `\(iss)`",
                        expected: "issuers with distinct `issuer` values"))
                }
                seen[iss] = name
            }
        }
    }

    /// `token_minting`: the gateway's own issuer for minted next-hop tokens.
    static func readMinting(_ node: ConfigNode) -> TokenMintingConfig? {
        guard let map = node.mapping(keys: ["issuer", "private_key", "lifetime"]) else { return nil }
        let issuer = map.required("issuer", expected: "the `iss` of minted tokens")?.nonEmptyString()
        let key = map.required("private_key", expected: "`env:NAME` or `file:/path` of a PEM P-256 or Ed25519 key")?.secretReference()
        guard let issuer, let key else { return nil }
        var config = TokenMintingConfig(issuer: issuer, privateKey: key, location: node.location)
        if let lifetimeNode = map.optional("lifetime"), let lifetime = lifetimeNode.duration() {
            if lifetime > .seconds(300) || lifetime < .seconds(1) {
                lifetimeNode.report("a minted token lives 1 s to 5 m", expected: "e.g. `60s`")
                return nil
            }
            config.lifetime = lifetime
        }
        return config
    }

    /// A mapping of claim name to an exact scalar value.
    static func readClaims(_ node: ConfigNode) -> [String: ClaimValue] {
        guard let entries = node.namedEntries() else { return [:] }
        var claims: [String: ClaimValue] = [:]
        for (nameNode, valueNode) in entries {
            guard let name = nameNode.nonEmptyString() else { continue }
            guard case .scalar(let scalar) = valueNode.node else {
                valueNode.wrongType("a string, number or boolean")
                continue
            }
            switch valueNode.node.tagName {
            case .bool: claims[name] = .bool(Bool.construct(from: scalar) ?? false)
            case .int:
                if let value = ConfigNode.decimal(scalar.string) { claims[name] = .int(value) } else { valueNode.report("not an integer") }
            case .str: claims[name] = .string(scalar.string)
            default: valueNode.wrongType("a string, number or boolean")
            }
        }
        return claims
    }
}
