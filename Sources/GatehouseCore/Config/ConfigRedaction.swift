import Yams

/// The running configuration as JSON for `GET /config`, with every secret reference replaced
/// by `<redacted>`.
///
/// It works on the YAML tree of the text that was loaded, so it shows exactly what runs, in
/// file order. Two rules, so that neither a new secret key nor an anchor reused elsewhere
/// leaks: the value of any key that holds secrets (`private_key`, `token`, `password`,
/// `hmac_secret`, `secrets`, `public_keys`) is redacted, and so is any string that is a secret
/// reference (`env:...`, `file:...`) wherever it appears.
public enum ConfigRedaction {
    public static let placeholder = "<redacted>"
    static let secretKeys: Set<String> = ["private_key", "token", "password", "hmac_secret", "secrets", "public_keys", "secret"]

    /// The whole `GET /config` body.
    public static func json(_ document: ConfigDocument) -> [UInt8] {
        json(config: document.config, text: document.text, candidateText: document.candidateText)
    }

    /// The `GET /config` body for `config` loaded from `text` (and its candidate from
    /// `candidateText`); without the text, `config` is null and only the versions show.
    public static func json(config: GatewayConfig, text: String?, candidateText: String?) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity((text?.utf8.count ?? 0) * 2 + 256)
        out.append(contentsOf: Array(#"{"version":"#.utf8))
        JSONObjectWriter.appendQuoted(config.policyVersion, to: &out)
        out.append(contentsOf: Array(#","sha256":"#.utf8))
        JSONObjectWriter.appendQuoted(config.version, to: &out)
        out.append(contentsOf: Array(#","source":"#.utf8))
        JSONObjectWriter.appendQuoted(config.sourceFile, to: &out)
        out.append(contentsOf: Array(#","environment":"#.utf8))
        JSONObjectWriter.appendQuoted(config.environment, to: &out)
        out.append(contentsOf: Array(#","config":"#.utf8))
        appendTree(yaml: text, to: &out)
        out.append(contentsOf: Array(#","candidate":"#.utf8))
        if let rollout = config.rollout {
            out.append(contentsOf: Array(#"{"version":"#.utf8))
            JSONObjectWriter.appendQuoted(rollout.candidate.version, to: &out)
            out.append(contentsOf: Array(#","sha256":"#.utf8))
            JSONObjectWriter.appendQuoted(rollout.candidate.sha256, to: &out)
            out.append(contentsOf: Array(#","source":"#.utf8))
            JSONObjectWriter.appendQuoted(rollout.candidateFile, to: &out)
            out.append(contentsOf: Array(#","config":"#.utf8))
            appendTree(yaml: candidateText, to: &out)
            out.append(UInt8(ascii: "}"))
        } else {
            out.append(contentsOf: Array("null".utf8))
        }
        out.append(contentsOf: Array("}\n".utf8))
        return out
    }

    /// The YAML text as a JSON value, redacted; `null` if it does not parse (a loaded
    /// document always does).
    static func appendTree(yaml: String?, to out: inout [UInt8]) {
        guard let yaml, let root = try? Yams.compose(yaml: yaml) else {
            out.append(contentsOf: Array("null".utf8))
            return
        }
        append(root, redact: false, to: &out)
    }

    private static func append(_ node: Node, redact: Bool, to out: inout [UInt8]) {
        switch node {
        case .mapping(let mapping):
            out.append(UInt8(ascii: "{"))
            var first = true
            for (key, value) in mapping {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                let keyText = key.scalar?.string ?? "?"
                JSONObjectWriter.appendQuoted(keyText, to: &out)
                out.append(UInt8(ascii: ":"))
                // A mapping under a secret key (a route's `token:` requirements) is read by the same
                // rules inside; a scalar or list there is the secret's reference.
                append(value, redact: secretKeys.contains(keyText), to: &out)
            }
            out.append(UInt8(ascii: "}"))
        case .sequence(let sequence):
            out.append(UInt8(ascii: "["))
            for (index, element) in sequence.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                append(element, redact: redact, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .scalar(let scalar):
            appendScalar(scalar, tag: node.tagName, redact: redact, to: &out)
        case .alias:
            // Compose resolves aliases; should one remain, it is shown by kind only.
            JSONObjectWriter.appendQuoted("<alias>", to: &out)
        }
    }

    private static func appendScalar(_ scalar: Node.Scalar, tag: Tag.Name, redact: Bool, to out: inout [UInt8]) {
        let text = scalar.string
        if redact || text.hasPrefix("env:") || text.hasPrefix("file:") {
            JSONObjectWriter.appendQuoted(placeholder, to: &out)
            return
        }
        switch tag {
        case .null:
            out.append(contentsOf: Array("null".utf8))
        case .bool:
            if let value = Bool.construct(from: scalar) {
                out.append(contentsOf: Array((value ? "true" : "false").utf8))
            } else {
                JSONObjectWriter.appendQuoted(text, to: &out)
            }
        case .int:
            if let value = ConfigNode.decimal(text), value != .min {  // `appendInteger` negates
                JSONObjectWriter.appendInteger(value, to: &out)
            } else {
                JSONObjectWriter.appendQuoted(text, to: &out)
            }
        default:
            // Numbers (`percent: 10.5`) stay strings: exactly as written, and always valid JSON.
            JSONObjectWriter.appendQuoted(text, to: &out)
        }
    }
}
