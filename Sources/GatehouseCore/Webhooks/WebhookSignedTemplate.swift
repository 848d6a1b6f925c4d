/// What a `generic` sender signs, as a template around the body: `{body}`,
/// `{timestamp}.{body}`, `{id}.{timestamp}.{body}`, `v0:{timestamp}:{body}`, ...
/// The body appears exactly once, so the MAC can run over the body in place.
public struct WebhookSignedTemplate: Sendable, Hashable, CustomStringConvertible {
    public enum Part: Sendable, Hashable {
        case literal(String)
        /// The timestamp header's value, as received.
        case timestamp
        /// The id header's value, as received.
        case id
        case body
    }

    public let parts: [Part]

    /// The whole body and nothing else.
    public static let body = WebhookSignedTemplate(uncheckedParts: [.body])

    private init(uncheckedParts: [Part]) {
        self.parts = uncheckedParts
    }

    /// Why a template is refused; the config loader reports it at the key.
    public struct ParseError: Error, Sendable, Equatable {
        public var message: String
    }

    /// `body` alone, or text with the placeholders `{timestamp}`, `{id}` and `{body}`
    /// (`{body}` exactly once). Any other `{` or `}` is an error: a typo such as
    /// `{timestamp` must not silently become literal text.
    public init(parsing text: String) throws(ParseError) {
        if text == "body" {
            self = .body
            return
        }
        var parts: [Part] = []
        var literal = ""
        var rest = Substring(text)
        while let character = rest.first {
            if character == "{" {
                guard let close = rest.firstIndex(of: "}") else {
                    throw ParseError(message: "`{` without a closing `}`")
                }
                let name = rest[rest.index(after: rest.startIndex)..<close]
                let part: Part
                switch name {
                case "timestamp": part = .timestamp
                case "id": part = .id
                case "body": part = .body
                default: throw ParseError(message: "unknown placeholder `{\(name)}`")
                }
                if !literal.isEmpty { parts.append(.literal(literal)) }
                literal = ""
                parts.append(part)
                rest = rest[rest.index(after: close)...]
            } else if character == "}" {
                throw ParseError(message: "`}` without an opening `{`")
            } else {
                literal.append(character)
                rest = rest.dropFirst()
            }
        }
        if !literal.isEmpty { parts.append(.literal(literal)) }
        let bodies = parts.filter { $0 == .body }.count
        guard bodies == 1 else {
            throw ParseError(message: bodies == 0 ? "`{body}` is missing" : "`{body}` appears \(bodies) times")
        }
        self.parts = parts
    }

    public var usesTimestamp: Bool { parts.contains(.timestamp) }
    public var usesID: Bool { parts.contains(.id) }

    public var description: String {
        if parts == [.body] { return "body" }
        return parts.map { part in
            switch part {
            case .literal(let text): return text
            case .timestamp: return "{timestamp}"
            case .id: return "{id}"
            case .body: return "{body}"
            }
        }.joined()
    }

    /// The bytes signed before and after the body. `timestamp` and `id` are the header
    /// values as received; the verifier checks they are present when the template uses them.
    func surroundings(timestamp: Substring?, id: String?) -> (prefix: [UInt8], suffix: [UInt8]) {
        var prefix: [UInt8] = []
        var suffix: [UInt8] = []
        var afterBody = false
        for part in parts {
            switch part {
            case .body: afterBody = true
            case .literal(let text): afterBody ? suffix.append(contentsOf: text.utf8) : prefix.append(contentsOf: text.utf8)
            case .timestamp:
                let bytes = timestamp.map { Array($0.utf8) } ?? []
                afterBody ? suffix.append(contentsOf: bytes) : prefix.append(contentsOf: bytes)
            case .id:
                let bytes = id.map { Array($0.utf8) } ?? []
                afterBody ? suffix.append(contentsOf: bytes) : prefix.append(contentsOf: bytes)
            }
        }
        return (prefix, suffix)
    }
}
