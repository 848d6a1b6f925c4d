/// A minimal reader of the Prometheus text format, enough to assert on the gateway's
/// `/metrics`: one sample per line, `name{label="value",...} number`.
struct PrometheusText {
    struct Sample: Equatable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    let samples: [Sample]
    /// Lines that are neither comments nor samples this reader understands.
    let unparsed: [String]

    init(_ text: String) {
        var samples: [Sample] = []
        var unparsed: [String] = []
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            if let sample = Self.parse(Substring(line)) { samples.append(sample) } else { unparsed.append(String(line)) }
        }
        self.samples = samples
        self.unparsed = unparsed
    }

    /// The value of the one sample named `name` whose labels include `labels`; nil when
    /// there is none or more than one.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        let matching = samples.filter { sample in
            sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value }
        }
        return matching.count == 1 ? matching[0].value : nil
    }

    private static func parse(_ line: Substring) -> Sample? {
        guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { return nil }
        let series = line[..<space]
        guard let brace = series.firstIndex(of: "{") else {
            return Sample(name: String(series), labels: [:], value: value)
        }
        guard series.last == "}" else { return nil }
        var labels: [String: String] = [:]
        // Label values here never contain `"` or `,` (route names, reason codes, versions).
        for pair in series[series.index(after: brace)..<series.index(before: series.endIndex)].split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, parts[1].hasPrefix("\""), parts[1].hasSuffix("\""), parts[1].count >= 2 else { return nil }
            labels[String(parts[0])] = String(parts[1].dropFirst().dropLast())
        }
        return Sample(name: String(series[..<brace]), labels: labels, value: value)
    }
}
