/// The request headers a webhook verifier reads. The server adapts NIO's `HTTPHeaders`, the
/// CLI a captured file; the verifier never sees the transport.
public protocol WebhookHeaders {
    /// Every value of the header named `lowercasedName`, one per header line, in order;
    /// empty when absent. Values are not split at commas (`Stripe-Signature` contains them).
    func values(_ lowercasedName: String) -> [String]
}

/// Headers as a plain list of fields, for the CLI and tests.
public struct WebhookHeaderFields: WebhookHeaders, Sendable, Equatable {
    public private(set) var fields: [(name: String, value: String)]

    public init(_ fields: [(name: String, value: String)] = []) {
        self.fields = fields
    }

    public init(_ pairs: KeyValuePairs<String, String>) {
        self.fields = pairs.map { (name: $0.key, value: $0.value) }
    }

    public mutating func add(_ name: String, _ value: String) {
        fields.append((name, value))
    }

    /// Removes every line of `name` and adds one with `value`.
    public mutating func replace(_ name: String, _ value: String) {
        remove(name)
        add(name, value)
    }

    public mutating func remove(_ name: String) {
        fields.removeAll { $0.name.lowercased() == name.lowercased() }
    }

    public func values(_ lowercasedName: String) -> [String] {
        fields.filter { $0.name.lowercased() == lowercasedName }.map(\.value)
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.fields.elementsEqual(rhs.fields) { $0.name == $1.name && $0.value == $1.value }
    }
}

extension WebhookHeaders {
    /// The one value of a header that must appear at most once. Twice is malformed: two
    /// values could be read two ways (by us and by the upstream), so neither is trusted.
    func singleValue(_ name: String, maxBytes: Int) throws(WebhookRefusal) -> String? {
        let all = values(name)
        guard all.count <= 1 else {
            throw WebhookRefusal(.webhookMalformedSignature, "header `\(name)` appears \(all.count) times")
        }
        guard let value = all.first else { return nil }
        guard value.utf8.count <= maxBytes else {
            throw WebhookRefusal(.webhookMalformedSignature, "header `\(name)` is longer than \(maxBytes) bytes")
        }
        return value
    }
}
