import Foundation
import Yams

/// Where each key of a config file is written, by key path (`issuers.corp.max_lifetime`,
/// `routes[2].webhook.tolerance`), so that a finding can point at the exact key even where
/// the config model keeps only its section's location.
struct KeyLocations: Sendable {
    let file: String
    private var locations: [String: SourceLocation] = [:]

    init(file: String, yaml: String) {
        self.file = file
        // The file already loaded (or its errors are reported by the loader): a tree that does
        // not compose leaves the map empty and findings fall back to the section's location.
        guard let root = try? Yams.compose(yaml: yaml) else { return }
        walk(root, path: "")
    }

    init(file: String) {
        self.init(file: file, yaml: (try? String(contentsOfFile: file, encoding: .utf8)) ?? "")
    }

    /// The location of the first of `paths` written in the file, else of the closest key
    /// enclosing the first path, else `fallback`.
    func location(_ paths: [String], fallback: SourceLocation) -> SourceLocation {
        if let found = paths.lazy.compactMap({ locations[$0] }).first { return found }
        var candidate = paths.first ?? ""
        while !candidate.isEmpty {
            if let location = locations[candidate] { return location }
            guard let cut = candidate.lastIndex(where: { $0 == "." || $0 == "[" }) else { break }
            candidate = String(candidate[..<cut])
        }
        return fallback
    }

    private mutating func walk(_ node: Node, path: String) {
        switch node {
        case .mapping(let mapping):
            for (key, value) in mapping {
                guard case .scalar(let scalar) = key else { continue }
                let child = path.isEmpty ? scalar.string : "\(path).\(scalar.string)"
                if let mark = key.mark { locations[child] = SourceLocation(file: file, line: mark.line, column: mark.column) }
                walk(value, path: child)
            }
        case .sequence(let sequence):
            for (index, element) in sequence.enumerated() {
                let child = "\(path)[\(index)]"
                if let mark = element.mark { locations[child] = SourceLocation(file: file, line: mark.line, column: mark.column) }
                walk(element, path: child)
            }
        case .scalar, .alias:
            break
        }
    }
}
