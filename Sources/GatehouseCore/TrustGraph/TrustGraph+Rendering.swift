extension TrustGraph {
    /// Mermaid `flowchart LR`, as GitHub renders it.
    public func mermaid() -> String {
        func node(_ id: String, _ label: String) -> String {
            "    \(id)[\"\(label.replacingOccurrences(of: "\"", with: "#quot;"))\"]"
        }
        var lines = ["flowchart LR"]
        lines.append("  subgraph callers")
        lines += callers.map { node($0.id, $0.label) }
        lines.append("  end")
        lines.append("  subgraph routes")
        lines += routes.map { node($0.id, "\($0.name)<br/>\($0.methods) \($0.host ?? "")\($0.path)") }
        lines.append("  end")
        lines.append("  subgraph upstreams")
        lines += upstreams.map { node($0.id, "\($0.name)<br/>\($0.hop.rawValue)") }
        lines.append("  end")
        for edge in edges {
            let label = edge.label.replacingOccurrences(of: "\"", with: "#quot;")
            lines.append(label.isEmpty ? "  \(edge.from) --> \(edge.to)" : "  \(edge.from) -- \"\(label)\" --> \(edge.to)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Graphviz DOT.
    public func dot() -> String {
        func quoted(_ text: String) -> String {
            // Escapes first, then `\n` (DOT's centred line break) for the line breaks of the label.
            "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                .replacingOccurrences(of: "\n", with: "\\n") + "\""
        }
        var lines = ["digraph trust {", "  rankdir=LR;", "  node [shape=box];"]
        func cluster(_ name: String, _ nodes: [(String, String)]) {
            lines.append("  subgraph cluster_\(name) {")
            lines.append("    label=\(quoted(name));")
            lines += nodes.map { "    \($0.0) [label=\(quoted($0.1))];" }
            lines.append("  }")
        }
        cluster("callers", callers.map { ($0.id, $0.label) })
        cluster("routes", routes.map { ($0.id, "\($0.name)\n\($0.methods) \($0.host ?? "")\($0.path)") })
        cluster("upstreams", upstreams.map { ($0.id, "\($0.name)\n\($0.hop.rawValue)") })
        for edge in edges {
            lines.append("  \(edge.from) -> \(edge.to)" + (edge.label.isEmpty ? ";" : " [label=\(quoted(edge.label))];"))
        }
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }
}

extension TrustGraph {
    /// `--format json`, keys sorted.
    public func json() -> String { JSONText.encode(self) }
}
