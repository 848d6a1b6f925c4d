import Yams

/// Turns the file's text into a Yams `Node` tree (which keeps line/column marks), and turns
/// YAML-level failures into `ConfigIssue`s.
///
/// Duplicate keys need care: Yams refuses the whole document at the first duplicate it
/// meets, which would hide every other problem in the file. So when it reports one, we find
/// the second occurrence in the text, give it a unique placeholder name of the same length
/// (columns stay right), remember the placeholder in the issue log and compose again. The
/// mapping reader later reports the placeholder as "duplicate key" with its full key path.
/// If the second occurrence cannot be found (unusual layouts), the duplicate is reported at
/// the first occurrence and loading stops there.
enum YAMLDocument {
    /// Upper bound on compose attempts, i.e. on duplicate keys reported with full detail.
    static let maximumDuplicateRounds = 100

    static func compose(_ yaml: String, log: IssueLog) -> Node? {
        var text = yaml
        for round in 0..<maximumDuplicateRounds {
            do {
                guard let root = try Yams.compose(yaml: text) else {
                    log.report(line: 1, column: 1, "", "the configuration is empty",
                               expected: "a mapping with `environment`, `listeners`, `upstreams` and `routes`")
                    return nil
                }
                return root
            } catch YamlError.duplicatedKeysInMapping(let duplicates, let context) {
                let key = duplicates.first ?? ""
                guard let renamed = renameSecondOccurrence(of: key, firstAt: context.mark, in: text, round: round) else {
                    log.report(at: context.mark, key, "duplicate key in this mapping")
                    return nil
                }
                log.duplicateKeys[renamed.placeholder] = .init(key: key, firstLine: context.mark.line)
                text = renamed.text
            } catch let error as YamlError {
                report(error, log: log)
                return nil
            } catch {
                log.report(line: 0, column: 0, "", "invalid YAML: \(error)")
                return nil
            }
        }
        log.report(line: 0, column: 0, "", "too many duplicate keys")
        return nil
    }

    private static func report(_ error: YamlError, log: IssueLog) {
        switch error {
        case .scanner(let context, let problem, let mark, _),
             .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            var message = "invalid YAML: \(problem)"
            if let context {
                message += " (\(context.text) started at line \(context.mark.line), column \(context.mark.column))"
            }
            log.report(at: mark, "", message)
        case .reader(let problem, let offset, _, let yaml):
            let (line, column) = offset.map { lineAndColumn(ofCharacterOffset: $0, in: yaml) } ?? (0, 0)
            log.report(line: line, column: column, "", "invalid YAML: \(problem)")
        default:
            log.report(line: 0, column: 0, "", "invalid YAML: \(error)")
        }
    }

    static func lineAndColumn(ofCharacterOffset offset: Int, in text: String) -> (Int, Int) {
        var line = 1, column = 1
        for character in text.prefix(offset) {
            if character == "\n" || character == "\r\n" {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
        return (line, column)
    }

    /// Finds the second occurrence of `key` in the mapping whose first occurrence is at
    /// `first`, and replaces it (same number of characters) with private-use characters.
    /// Handles block mappings (same column, later line, before the mapping ends) and flow
    /// mappings on one line (`{a: 1, a: 2}`).
    static func renameSecondOccurrence(of key: String, firstAt first: Mark, in text: String, round: Int)
        -> (text: String, placeholder: String)?
    {
        guard !key.isEmpty, let scalar = Unicode.Scalar(0xE000 + UInt32(round)) else { return nil }
        let placeholder = String(repeating: Character(scalar), count: key.unicodeScalars.count)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { Array($0.unicodeScalars) }
        let keyScalars = Array(key.unicodeScalars)
        let firstLine = first.line - 1, column = first.column - 1
        guard lines.indices.contains(firstLine) else { return nil }

        /// Index of the key's first character if `line[at...]` is `key:` or a quoted `"key":`.
        func keyStart(in line: [Unicode.Scalar], at start: Int) -> Int? {
            for quote in [nil, "\"", "'"] as [Unicode.Scalar?] {
                var index = start
                if let quote {
                    guard index < line.count, line[index] == quote else { continue }
                    index += 1
                }
                guard index + keyScalars.count <= line.count,
                      Array(line[index..<index + keyScalars.count]) == keyScalars
                else { continue }
                var end = index + keyScalars.count
                if let quote {
                    guard end < line.count, line[end] == quote else { continue }
                    end += 1
                }
                while end < line.count, line[end] == " " || line[end] == "\t" { end += 1 }
                if end < line.count, line[end] == ":" { return index }
            }
            return nil
        }

        func replace(line: Int, at index: Int) -> (text: String, placeholder: String) {
            lines[line].replaceSubrange(index..<index + keyScalars.count, with: placeholder.unicodeScalars)
            let joined = lines.map { String(String.UnicodeScalarView($0)) }.joined(separator: "\n")
            return (joined, placeholder)
        }

        // Flow mapping: a second `key:` later on the same line, after `{`, `,` or a space.
        let sameLine = lines[firstLine]
        var index = column + keyScalars.count
        while index < sameLine.count {
            if let start = keyStart(in: sameLine, at: index), ["{", ",", " "].contains(sameLine[index - 1]) {
                return replace(line: firstLine, at: start)
            }
            index += 1
        }

        // Block mapping: keys of the same mapping start at the same column; a non-blank line
        // indented less ends the mapping.
        for lineIndex in lines.indices where lineIndex > firstLine {
            let line = lines[lineIndex]
            let indentation = line.prefix { $0 == " " }.count
            let rest = line.dropFirst(indentation)
            if rest.isEmpty || rest.first == "#" || rest == ["\r"] { continue }
            if indentation < column { return nil }
            if indentation == column, let start = keyStart(in: line, at: column) {
                return replace(line: lineIndex, at: start)
            }
        }
        return nil
    }
}
