/// `listeners:` — the sockets gatehouse accepts client connections on.
enum ListenerSection {
    static let keys = [
        "name", "address", "tls", "insecure_plaintext", "trusted_proxies", "max_connections",
        "merge_slashes", "expose_reason", "limits", "timeouts",
    ]

    /// Reads the whole list and checks that names and addresses are unique, since both are
    /// used to tell listeners apart (in decision records, and by the kernel).
    static func readAll(_ node: ConfigNode, trustDomains: [String]) -> [ListenerConfig] {
        guard let items = node.nonEmptyList() else { return [] }
        var listeners: [ListenerConfig] = []
        var names: [String: String] = [:]
        var addresses: [HostPort: String] = [:]
        for item in items {
            guard let (listener, nameNode, addressNode) = read(item, trustDomains: trustDomains) else { continue }
            if let first = names[listener.name] {
                nameNode.report("duplicate listener name `\(listener.name)` (already used by \(first))")
            } else {
                names[listener.name] = item.path
            }
            // Port 0 asks the kernel for a free port, so several such listeners never collide.
            if listener.address.port != 0 {
                if let first = addresses[listener.address] {
                    addressNode.report("duplicate listener address `\(listener.address)` (already used by \(first))")
                } else {
                    addresses[listener.address] = item.path
                }
            }
            listeners.append(listener)
        }
        return listeners
    }

    /// One listener, plus the nodes of its name and address for the uniqueness checks.
    /// nil when a required part is missing or invalid (the problem is already logged).
    static func read(_ node: ConfigNode, trustDomains: [String]) -> (ListenerConfig, name: ConfigNode, address: ConfigNode)? {
        guard let map = node.mapping(keys: keys) else { return nil }
        let nameNode = map.required("name")
        let name = nameNode?.identifier()
        let addressNode = map.required("address")
        // Port 0 (an ephemeral port) is allowed here: tests bind that way.
        let address = addressNode?.hostPort(ports: 0...65535)

        // TLS is the default; plaintext must be asked for by name, and never both at once.
        let plaintextNode = map.optional("insecure_plaintext")
        let plaintextValue = plaintextNode?.bool()
        let insecurePlaintext = plaintextValue ?? false
        // An invalid `insecure_plaintext` is already reported; don't add "tls missing" on top.
        let plaintextUnreadable = plaintextNode != nil && plaintextValue == nil
        var tls: ListenerTLSConfig?
        var tlsValid = true
        if let tlsNode = map.optional("tls") {
            tls = readTLS(tlsNode, trustDomains: trustDomains)
            tlsValid = tls != nil
            if insecurePlaintext {
                plaintextNode?.report("cannot be combined with `tls`", expected: "either a `tls` section or `insecure_plaintext: true`")
            }
        } else if plaintextUnreadable {
            tlsValid = false
        } else if !insecurePlaintext {
            _ = map.required("tls", expected: "a `tls` section, or `insecure_plaintext: true` for a plaintext listener")
            tlsValid = false
        }

        let trustedProxies = map.optional("trusted_proxies")?.list()?.compactMap { $0.cidr() } ?? []
        let maxConnections = map.optional("max_connections")?.int(in: 1...1_000_000) ?? 10_000
        let mergeSlashes = map.optional("merge_slashes")?.bool() ?? false
        let exposeReason = map.optional("expose_reason")?.bool() ?? false
        let limits = map.optional("limits").map(readLimits) ?? RequestLimits()
        let timeouts = map.optional("timeouts").map(readTimeouts) ?? ListenerTimeouts()

        guard let name, let address, let nameNode, let addressNode, tlsValid else { return nil }
        let listener = ListenerConfig(
            name: name, address: address, tls: tls, insecurePlaintext: insecurePlaintext,
            trustedProxies: trustedProxies, limits: limits, timeouts: timeouts,
            maxConnections: maxConnections, mergeSlashes: mergeSlashes, exposeReason: exposeReason,
            location: node.location)
        return (listener, nameNode, addressNode)
    }

    static func readTLS(_ node: ConfigNode, trustDomains: [String]) -> ListenerTLSConfig? {
        guard let map = node.mapping(keys: ["certificate", "private_key", "min_version", "client_certificates"])
        else { return nil }
        let certificate = map.required("certificate")?.nonEmptyString()
        let privateKey = map.required("private_key", expected: "`env:NAME` or `file:/path`")?.secretReference()
        var minimumVersion = TLSMinimumVersion.v1_2
        if let versionNode = map.optional("min_version") {
            // `1.2` unquoted is a YAML float; its text is still "1.2", so accept both spellings.
            if let text = versionNode.scalarText, let version = TLSMinimumVersion(rawValue: text) {
                minimumVersion = version
            } else {
                versionNode.report("unsupported TLS version", expected: "\"1.2\" or \"1.3\"")
            }
        }
        var clientCertificates = ClientCertificateMode.none
        if let modeNode = map.optional("client_certificates"), let mode = modeNode.oneOf(ClientCertificateMode.self) {
            clientCertificates = mode
            // Client certificates are verified against trust-domain bundles; with none configured
            // every certificate would be refused, which is surely not what was meant.
            if mode != .none && trustDomains.isEmpty {
                modeNode.report("`\(mode.rawValue)` needs a trust domain to verify against",
                    expected: "at least one entry under `trust_domains`")
            }
        }
        guard let certificate, let privateKey else { return nil }
        return ListenerTLSConfig(
            certificatePath: certificate, privateKey: privateKey, minimumVersion: minimumVersion,
            clientCertificates: clientCertificates)
    }

    static func readLimits(_ node: ConfigNode) -> RequestLimits {
        var limits = RequestLimits()
        guard let map = node.mapping(keys: ["max_header_bytes", "max_header_count", "max_uri_bytes", "max_body_bytes"])
        else { return limits }
        if let value = map.optional("max_header_bytes")?.size() { limits.maxHeaderBytes = value }
        if let value = map.optional("max_header_count")?.int(in: 1...10_000) { limits.maxHeaderCount = value }
        if let value = map.optional("max_uri_bytes")?.size() { limits.maxURIBytes = value }
        if let value = map.optional("max_body_bytes")?.size() { limits.maxBodyBytes = value }
        return limits
    }

    static func readTimeouts(_ node: ConfigNode) -> ListenerTimeouts {
        var timeouts = ListenerTimeouts()
        guard let map = node.mapping(keys: ["handshake", "header_read", "idle", "drain"]) else { return timeouts }
        if let value = map.optional("handshake")?.duration() { timeouts.handshake = value }
        if let value = map.optional("header_read")?.duration() { timeouts.headerRead = value }
        if let value = map.optional("idle")?.duration() { timeouts.idle = value }
        if let value = map.optional("drain")?.duration() { timeouts.drain = value }
        return timeouts
    }
}
