/// `routes[].webhook` — the route accepts only deliveries signed by a known sender.
enum WebhookSection {
    static let keys = ["scheme", "secrets", "public_keys", "tolerance", "replay", "id_header", "max_body", "generic", "mode"]
    static let genericKeys = ["header", "prefix", "encoding", "algorithm", "signed", "timestamp_header"]

    /// The longest `max_body`: the server holds the whole body in memory before verifying.
    static let maxBodyLimit = 64 << 20
    static let minimumTolerance: Duration = .seconds(1)

    /// The keys that mean something for `scheme`; any other known key is an error, so that
    /// a setting that would be ignored (a GitHub route with `public_keys`) is never written.
    static func keys(for scheme: WebhookScheme) -> [String] {
        var keys = ["scheme", "secrets", "tolerance", "replay", "max_body", "mode"]
        // The id of a Standard Webhooks delivery is `webhook-id`, which is signed: no override.
        if scheme != .standard { keys.append("id_header") }
        if scheme == .standard { keys.append("public_keys") }
        if scheme == .generic { keys.append("generic") }
        return keys
    }

    /// nil when anything is wrong (every problem is logged; the file is refused).
    static func read(_ node: ConfigNode) -> RouteWebhookConfig? {
        guard let map = node.mapping(keys: keys) else { return nil }
        guard let schemeNode = map.required("scheme", expected: "one of \(MappingReader.list(WebhookScheme.allCases.map(\.rawValue)))"),
              let scheme = schemeNode.oneOf(WebhookScheme.self)
        else { return nil }
        var valid = true

        let applicable = keys(for: scheme)
        for key in keys where !applicable.contains(key) {
            guard let keyNode = map.optional(key) else { continue }
            keyNode.report("`\(key)` does not apply to scheme `\(scheme.rawValue)`", expected: "one of \(MappingReader.list(applicable))")
            valid = false
        }

        let publicKeysNode = scheme == .standard ? map.optional("public_keys") : nil
        let publicKeys = publicKeysNode.flatMap(readReferences)
        if publicKeysNode != nil && publicKeys == nil { valid = false }

        var secrets: [SecretReference] = []
        if let secretsNode = map.optional("secrets") {
            if let references = readReferences(secretsNode) { secrets = references } else { valid = false }
        } else if publicKeys == nil {
            // Only a Standard Webhooks route with public keys verifies without a secret.
            _ = map.required(
                "secrets",
                expected: scheme == .standard
                    ? "a non-empty list of `env:NAME` or `file:/path` (or `public_keys` for `v1a` signatures)"
                    : "a non-empty list of `env:NAME` or `file:/path`")
            valid = false
        }

        var config = RouteWebhookConfig(scheme: scheme, secrets: secrets, location: node.location)
        config.publicKeys = publicKeys ?? []
        if let toleranceNode = map.optional("tolerance") {
            if let tolerance = toleranceNode.duration() {
                if tolerance < minimumTolerance {
                    toleranceNode.report("timestamps are whole seconds", expected: "at least `1s`, e.g. `5m`")
                    valid = false
                }
                config.tolerance = tolerance
            } else {
                valid = false
            }
        }
        if let replayNode = map.optional("replay") {
            if let replay = replayNode.bool() { config.rejectReplay = replay } else { valid = false }
        }
        if applicable.contains("id_header"), let idNode = map.optional("id_header") {
            if let name = headerName(idNode) { config.idHeader = name } else { valid = false }
        }
        if let maxBodyNode = map.optional("max_body") {
            if let size = maxBodyNode.size() {
                if size > maxBodyLimit {
                    maxBodyNode.report("\(size) bytes is more than the gateway buffers for a webhook", expected: "at most `64MiB`")
                    valid = false
                }
                config.maxBodyBytes = size
            } else {
                valid = false
            }
        }
        if let modeNode = map.optional("mode") {
            if let mode = modeNode.oneOf(CheckMode.self) { config.mode = mode } else { valid = false }
        }
        if scheme == .generic {
            if let genericNode = map.required("generic", expected: "the signature format: a mapping with `header` and optionally \(MappingReader.list(Array(genericKeys.dropFirst())))"),
               let format = readGeneric(genericNode, idHeader: config.idHeader) {
                config.generic = format
            } else {
                valid = false
            }
        }
        return valid ? config : nil
    }

    /// `generic:` — where the signature is and what it covers.
    static func readGeneric(_ node: ConfigNode, idHeader: String?) -> GenericWebhookFormat? {
        guard let map = node.mapping(keys: genericKeys) else { return nil }
        var valid = true
        let header = map.required("header", expected: "the name of the header carrying the signature").flatMap(headerName)
        var format = GenericWebhookFormat(header: header ?? "")
        if let prefixNode = map.optional("prefix") {
            if let prefix = prefixNode.string() { format.prefix = prefix } else { valid = false }
        }
        if let encodingNode = map.optional("encoding") {
            if let encoding = encodingNode.oneOf(WebhookSignatureEncoding.self) { format.encoding = encoding } else { valid = false }
        }
        if let algorithmNode = map.optional("algorithm") {
            if let algorithm = algorithmNode.oneOf(WebhookHMACAlgorithm.self) { format.algorithm = algorithm } else { valid = false }
        }
        let signedNode = map.optional("signed")
        if let signedNode {
            if let template = signedNode.parse("`body` or a template such as `{timestamp}.{body}`", parseTemplate) {
                format.signed = template
            } else {
                valid = false
            }
        }
        let timestampNode = map.optional("timestamp_header")
        if let timestampNode {
            if let name = headerName(timestampNode) { format.timestampHeader = name } else { valid = false }
        }

        // A timestamp checked but not signed could be changed by anyone: refuse both halves.
        if let signedNode, format.signed.usesTimestamp, timestampNode == nil {
            signedNode.report("`{timestamp}` needs the header it comes from", expected: "`timestamp_header: NAME`")
            valid = false
        }
        if let timestampNode, !format.signed.usesTimestamp {
            timestampNode.report("the timestamp is not signed", expected: "a `signed` template with `{timestamp}`")
            valid = false
        }
        if let signedNode, format.signed.usesID, idHeader == nil {
            signedNode.report("`{id}` needs the header it comes from", expected: "`id_header: NAME` on the webhook")
            valid = false
        }
        guard header != nil, valid else { return nil }
        return format
    }

    static func parseTemplate(_ text: String) throws(ConfigValueError) -> WebhookSignedTemplate {
        do {
            return try WebhookSignedTemplate(parsing: text)
        } catch {
            throw ConfigValueError(
                "bad template: \(error.message)",
                expected: "`body`, or text with `{body}` exactly once and optionally `{timestamp}` and `{id}`")
        }
    }

    /// A header name, lowercased.
    static func headerName(_ node: ConfigNode) -> String? {
        guard let text = node.string() else { return nil }
        guard ConfigValueParser.isHeaderName(text) else {
            node.report("`\(text)` is not a header name", expected: "e.g. `X-Signature`")
            return nil
        }
        return text.lowercased()
    }

    /// A non-empty list of secret references, without repeats. nil if any entry is wrong:
    /// a list with a bad entry must not load as a shorter list.
    static func readReferences(_ node: ConfigNode) -> [SecretReference]? {
        guard let items = node.nonEmptyList() else { return nil }
        return ConfigNode.distinctEntries(items, duplicate: { "duplicate reference `\($0)`" }) { $0.secretReference() }
    }
}
