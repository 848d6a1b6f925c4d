/// `trust_domains:` — the SPIFFE trust domains whose workloads may be verified, each with
/// the PEM bundle of its CA certificates. A mapping so the name is the key others refer to.
enum TrustDomainSection {
    static let keys = ["bundle"]

    static func readAll(_ node: ConfigNode) -> [TrustDomainConfig] {
        guard let entries = node.namedEntries() else { return [] }
        return entries.compactMap { read(name: $0.name, $0.value) }
    }

    static func read(name nameNode: ConfigNode, _ node: ConfigNode) -> TrustDomainConfig? {
        let name = nameNode.parse("a SPIFFE trust domain name such as `prod.example`") { (text) throws(ConfigValueError) in
            do {
                try SPIFFEID.validateTrustDomain(text)
            } catch {
                throw ConfigValueError("`\(text)` is not a valid trust domain: \(error)",
                    expected: "lowercase letters, digits, `.`, `-` and `_`, e.g. `prod.example`")
            }
            return text
        }
        guard let map = node.mapping(keys: keys) else { return nil }
        let bundleNode = map.required("bundle", expected: "the path of a PEM file of CA certificates")
        let bundle = bundleNode?.nonEmptyString()
        guard let name, let bundle, let bundleNode else { return nil }
        return TrustDomainConfig(name: name, bundlePath: bundle, location: nameNode.location, bundleLocation: bundleNode.location)
    }
}

extension ConfigNode {
    /// A SPIFFE ID pattern whose trust domain is configured: a pattern naming any other
    /// trust domain could never match, so it is almost certainly a typo.
    func spiffePattern(trustDomains: [String]) -> SPIFFEIDPattern? {
        guard let pattern = parse("a SPIFFE ID pattern", { (text) throws(ConfigValueError) in
            do {
                return try SPIFFEIDPattern(parsing: text)
            } catch {
                throw ConfigValueError("`\(text)` is not a valid SPIFFE ID pattern: \(error)",
                    expected: "`spiffe://TD/path`, `spiffe://TD/path/*` or `spiffe://TD/*`")
            }
        }) else { return nil }
        guard trustDomains.contains(pattern.trustDomain) else {
            report("trust domain `\(pattern.trustDomain)` is not configured",
                expected: trustDomains.isEmpty ? "an entry under `trust_domains`" : "one of \(MappingReader.list(trustDomains))")
            return nil
        }
        return pattern
    }

    /// An exact SPIFFE ID.
    func spiffeID() -> SPIFFEID? {
        parse("a SPIFFE ID") { (text) throws(ConfigValueError) in
            do {
                return try SPIFFEID(parsing: text)
            } catch {
                throw ConfigValueError("`\(text)` is not a valid SPIFFE ID: \(error)", expected: "`spiffe://TD/path`")
            }
        }
    }

    /// One of an enum's raw values.
    func oneOf<T: RawRepresentable & CaseIterable>(_ type: T.Type) -> T? where T.RawValue == String {
        let names = T.allCases.map(\.rawValue)
        return parse(names.joined(separator: " | ")) { (text) throws(ConfigValueError) in
            guard let value = T(rawValue: text) else {
                throw ConfigValueError("unknown value `\(text)`", expected: "one of \(MappingReader.list(names))")
            }
            return value
        }
    }
}
