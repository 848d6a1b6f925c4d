import Yams

/// Collects every problem of one load, so that an operator fixes the whole file in one pass
/// instead of one error per restart. A class because every reader of the tree appends to it.
final class IssueLog {
    let file: String
    private(set) var issues: [ConfigIssue] = []
    /// Keys that the loader renamed to get past a duplicate (see `YAMLDocument`); the reader
    /// reports them with their key path when it meets them. Renamed key -> original key.
    var duplicateKeys: [String: DuplicateKey] = [:]

    struct DuplicateKey {
        var key: String
        var firstLine: Int
    }

    init(file: String) {
        self.file = file
    }

    /// Yams marks are 1-based (line and column), like editors; a missing mark becomes 0:0.
    func location(_ mark: Mark?) -> SourceLocation {
        SourceLocation(file: file, line: mark?.line ?? 0, column: mark?.column ?? 0)
    }

    func report(at mark: Mark?, _ keyPath: String, _ message: String, expected: String? = nil) {
        issues.append(ConfigIssue(location: location(mark), keyPath: keyPath, message: message, expected: expected))
    }

    func report(line: Int, column: Int, _ keyPath: String, _ message: String, expected: String? = nil) {
        let location = SourceLocation(file: file, line: line, column: column)
        issues.append(ConfigIssue(location: location, keyPath: keyPath, message: message, expected: expected))
    }

    func report(_ issue: ConfigIssue) {
        issues.append(issue)
    }

    /// Issues in file order, like a compiler prints them (this file's first, then a file it
    /// includes, such as a rollout candidate).
    var sortedIssues: [ConfigIssue] {
        issues.enumerated().sorted { a, b in
            let (l, r) = (a.element.location, b.element.location)
            let (lOther, rOther) = (l.file == file ? 0 : 1, r.file == file ? 0 : 1)
            return (lOther, l.line, l.column, a.offset) < (rOther, r.line, r.column, b.offset)
        }.map(\.element)
    }
}

/// One node of the YAML tree together with its key path (`listeners[0].tls`) and the shared
/// issue log. Every typed accessor either returns a value or records why not and returns nil;
/// callers carry on with a default so that later problems are found too.
struct ConfigNode {
    let node: Node
    let path: String
    let log: IssueLog

    var mark: Mark? { node.mark }
    var location: SourceLocation { log.location(node.mark) }

    func child(_ key: String, _ node: Node) -> ConfigNode {
        ConfigNode(node: node, path: path.isEmpty ? key : "\(path).\(key)", log: log)
    }

    func element(_ index: Int, _ node: Node) -> ConfigNode {
        ConfigNode(node: node, path: "\(path)[\(index)]", log: log)
    }

    /// Records a problem with this node's value.
    func report(_ message: String, expected: String? = nil) {
        log.report(at: mark, path, message, expected: expected)
    }

    func report(_ error: ConfigValueError) {
        report(error.message, expected: error.expected)
    }

    /// What the node is, in words, for "wrong type" messages.
    var kind: String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar:
            switch node.tagName {
            case .null: return "null"
            case .bool: return "a boolean"
            case .int: return "an integer"
            case .float: return "a number"
            case .str: return "a string"
            default: return "a \(node.tagName.rawValue) value"
            }
        }
    }

    func wrongType(_ expected: String) {
        report("wrong type: found \(kind)", expected: expected)
    }

    // MARK: Scalars

    /// The text of a scalar that can stand for a string: strings, and integers, numbers and
    /// dates as written (`environment: 2024`). Null and booleans are refused, because
    /// `name: yes` or an empty value is far more likely a mistake than a name.
    var scalarText: String? {
        guard case .scalar(let scalar) = node else { return nil }
        switch node.tagName {
        case .str, .int, .float, .timestamp: return scalar.string
        default: return nil
        }
    }

    func string() -> String? {
        guard let text = scalarText else {
            wrongType("a string")
            return nil
        }
        return text
    }

    func nonEmptyString() -> String? {
        guard let text = string() else { return nil }
        guard !text.isEmpty else {
            report("must not be empty", expected: "a non-empty string")
            return nil
        }
        return text
    }

    /// A name that other parts of the file (and metrics, and decision records) refer to.
    func identifier(allowingDots: Bool = false) -> String? {
        guard let text = string() else { return nil }
        let pattern = allowingDots ? "[a-z0-9_.-]+" : "[a-z0-9_-]+"
        let valid = !text.isEmpty && text.allSatisfy {
            $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_" || $0 == "-" || (allowingDots && $0 == "."))
        }
        guard valid else {
            report(text.isEmpty ? "must not be empty" : "`\(text)` is not a valid name",
                   expected: "lowercase letters, digits, \(allowingDots ? "`_`, `-` and `.`" : "`_` and `-`") (\(pattern))")
            return nil
        }
        return text
    }

    /// A decimal integer within `range`. `_` may group digits (`1_000_000`).
    func int(in range: ClosedRange<Int>) -> Int? {
        guard case .scalar(let scalar) = node, node.tagName == .int else {
            wrongType("an integer")
            return nil
        }
        guard let value = Self.decimal(scalar.string) else {
            report("`\(scalar.string)` is not a decimal integer", expected: "an integer")
            return nil
        }
        guard range.contains(value) else {
            report("\(value) is out of range", expected: "\(range.lowerBound)-\(range.upperBound)")
            return nil
        }
        return value
    }

    static func decimal(_ text: String) -> Int? {
        var digits = Substring(text)
        let negative = digits.first == "-"
        if digits.first == "-" || digits.first == "+" { digits = digits.dropFirst() }
        guard let first = digits.first, first.isNumber, digits.allSatisfy({ ($0.isASCII && $0.isNumber) || $0 == "_" }),
              let magnitude = Int(digits.filter { $0 != "_" })
        else { return nil }
        return negative ? -magnitude : magnitude
    }

    func bool() -> Bool? {
        guard case .scalar(let scalar) = node, node.tagName == .bool, let value = Bool.construct(from: scalar) else {
            wrongType("`true` or `false`")
            return nil
        }
        return value
    }

    /// Reads the scalar as a string and runs one of the `ConfigValueParser` functions on it,
    /// recording the failure at this node.
    func parse<T>(_ expected: String, _ parser: (String) throws(ConfigValueError) -> T) -> T? {
        guard let text = scalarText else {
            wrongType(expected)
            return nil
        }
        do {
            return try parser(text)
        } catch {
            report(error)
            return nil
        }
    }

    func duration() -> Duration? {
        parse("a duration such as `10s`", ConfigValueParser.duration)
    }

    /// A size: a plain integer is a byte count, a string carries a binary unit.
    func size() -> Int? {
        if case .scalar(let scalar) = node, node.tagName == .int {
            guard let value = Self.decimal(scalar.string), value > 0 else {
                report("size must be greater than zero", expected: ConfigValueParser.sizeExpectation)
                return nil
            }
            return value
        }
        return parse("a size such as `32KiB`", ConfigValueParser.size)
    }

    func hostPort(ports: ClosedRange<Int> = 1...65535) -> HostPort? {
        parse("`host:port`") { (text) throws(ConfigValueError) in try ConfigValueParser.hostPort(text, ports: ports) }
    }

    func cidr() -> CIDR? {
        parse("a CIDR block such as `10.0.0.0/8`", ConfigValueParser.cidr)
    }

    /// Never echoes the value in an error: it may be the secret itself.
    func secretReference() -> SecretReference? {
        guard case .scalar = node, node.tagName == .str else {
            wrongType("`env:NAME` or `file:/path`")
            return nil
        }
        return parse("`env:NAME` or `file:/path`", ConfigValueParser.secretReference)
    }

    // MARK: Collections

    /// The elements of a list, each with its `[index]` key path.
    func list() -> [ConfigNode]? {
        guard case .sequence(let sequence) = node else {
            wrongType("a list")
            return nil
        }
        return sequence.enumerated().map { element($0.offset, $0.element) }
    }

    func nonEmptyList() -> [ConfigNode]? {
        guard let items = list() else { return nil }
        guard !items.isEmpty else {
            report("must not be empty", expected: "at least one entry")
            return nil
        }
        return items
    }

    /// `items` read one by one, all or nothing: an entry that does not read, or repeats an
    /// earlier one (reported with `duplicate`), makes the whole list nil, so a policy list
    /// never loads shorter than written.
    static func distinctEntries<T: Equatable>(
        _ items: [ConfigNode], duplicate: (T) -> String, _ read: (ConfigNode) -> T?
    ) -> [T]? {
        var entries: [T] = []
        var valid = true
        for item in items {
            guard let entry = read(item) else {
                valid = false
                continue
            }
            if entries.contains(entry) {
                item.report(duplicate(entry))
                valid = false
            }
            entries.append(entry)
        }
        return valid ? entries : nil
    }

    /// A mapping with a fixed schema. Unknown keys are reported here, once, at the key.
    func mapping(keys: [String], planned: [String] = []) -> MappingReader? {
        guard case .mapping(let mapping) = node else {
            wrongType("a mapping")
            return nil
        }
        return MappingReader(self, mapping, known: keys, planned: planned)
    }

    /// A mapping whose keys are names chosen by the operator (`upstreams`), in file order.
    /// Returns the key's node (for its location) along with the value.
    func namedEntries() -> [(name: ConfigNode, value: ConfigNode)]? {
        guard case .mapping(let mapping) = node else {
            wrongType("a mapping")
            return nil
        }
        var entries: [(name: ConfigNode, value: ConfigNode)] = []
        for (key, value) in mapping {
            guard let keyText = MappingReader.keyText(key, in: self) else { continue }
            let keyNode = child(keyText, key)
            entries.append((keyNode, child(keyText, value)))
        }
        return entries
    }
}

/// Reads a mapping against the list of keys this version understands.
///
/// Every key is checked when the reader is made: a typo gets a "did you mean" hint, a key
/// planned for a later version says so, everything else is "unknown key". Never ignore a
/// key: in a security policy, a misspelt requirement silently ignored means "allow".
struct MappingReader {
    let node: ConfigNode
    private var values: [String: ConfigNode] = [:]

    /// Keys that later versions of gatehouse will understand; a config written for a newer
    /// version must fail loudly here rather than run without its requirements.
    static let unsupportedMessage = "not supported by this version of gatehouse"

    init(_ node: ConfigNode, _ mapping: Node.Mapping, known: [String], planned: [String]) {
        self.node = node
        for (key, value) in mapping {
            guard let text = Self.keyText(key, in: node) else { continue }
            let keyNode = node.child(text, key)
            if known.contains(text) {
                values[text] = node.child(text, value)
            } else if planned.contains(text) {
                keyNode.report(Self.unsupportedMessage, expected: "one of \(Self.list(known))")
            } else if let suggestion = Self.suggestion(for: text, among: known + planned) {
                keyNode.report("unknown key (did you mean `\(suggestion)`?)")
            } else {
                keyNode.report("unknown key", expected: "one of \(Self.list(known))")
            }
        }
    }

    /// The key as text, or nil after reporting why it cannot be one.
    static func keyText(_ key: Node, in parent: ConfigNode) -> String? {
        guard case .scalar(let scalar) = key else {
            parent.log.report(at: key.mark, parent.path, "keys must be plain strings, found \(ConfigNode(node: key, path: "", log: parent.log).kind)")
            return nil
        }
        if let duplicate = parent.log.duplicateKeys[scalar.string] {
            let path = parent.path.isEmpty ? duplicate.key : "\(parent.path).\(duplicate.key)"
            parent.log.report(at: key.mark, path, "duplicate key (first defined on line \(duplicate.firstLine))")
            return nil
        }
        if key.tagName == .merge {
            parent.log.report(at: key.mark, parent.path, "merge keys (`<<`) are not supported", expected: "keys written out")
            return nil
        }
        return scalar.string
    }

    func optional(_ key: String) -> ConfigNode? {
        values[key]
    }

    /// Reports a missing key at the mapping itself: the key has no location of its own.
    func required(_ key: String, expected: String? = nil) -> ConfigNode? {
        if let value = values[key] { return value }
        let path = node.path.isEmpty ? key : "\(node.path).\(key)"
        node.log.report(at: node.mark, path, "required key is missing", expected: expected)
        return nil
    }

    func has(_ key: String) -> Bool {
        values[key] != nil
    }

    static func list(_ keys: [String]) -> String {
        keys.map { "`\($0)`" }.joined(separator: ", ")
    }

    /// The closest known key within edit distance 2, if there is one.
    static func suggestion(for key: String, among candidates: [String]) -> String? {
        var best: (key: String, distance: Int)?
        for candidate in candidates {
            let distance = editDistance(key, candidate)
            if distance <= 2, distance < (best?.distance ?? .max) {
                best = (candidate, distance)
            }
        }
        return best?.key
    }

    /// Levenshtein distance over characters.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}

extension Node {
    /// The resolved tag's name (`tag:yaml.org,2002:int`, ...). Yams keeps `Tag.name` internal,
    /// but its raw value is public.
    var tagName: Tag.Name { Tag.Name(rawValue: tag.rawValue) }
}
