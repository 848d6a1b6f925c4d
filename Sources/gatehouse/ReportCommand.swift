import ArgumentParser
import Foundation
import GatehouseCore

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Intended versus observed trust: unused grants, most-denied callers, foreign credentials, from a decision log.",
        discussion: """
            The log (JSON lines, as `decision_log` writes them) is streamed in bounded memory, whatever its size. \
            Exit status 2 when the config does not load, the log cannot be read or the arguments are wrong.
            """
    )

    @Option(name: .long, help: "The configuration whose grants to compare.")
    var config: String

    @Option(name: .long, help: "The decision log (JSON lines).")
    var log: String

    @Option(name: .long, help: "Only records newer than this, e.g. 90d, 24h, 30m (default: the whole log).")
    var since: String?

    @Option(name: .long, help: "text or json.")
    var format: String = "text"

    func run() throws {
        guard ["text", "json"].contains(format) else { try usage("--format must be text or json") }
        var sinceMillis: Int64?
        var sinceText: String?
        if let since {
            guard let seconds = Self.seconds(since) else { try usage("--since must be a number followed by d, h, m or s, e.g. 90d") }
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            sinceMillis = now - seconds * 1000
            sinceText = "\(since) (\(ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(sinceMillis!) / 1000))))"
        }
        let loaded = try loadConfigOrExit(config, exitCode: 2)
        var reader: DecisionLogReader
        do { reader = try DecisionLogReader(path: log) } catch { try usage("\(log): cannot read the decision log") }
        var report = TrustReport(config: loaded, sinceMillis: sinceMillis)
        do {
            while let line = try reader.nextLine() { report.add(line: line) }
        } catch {
            try usage("\(log): read failed")
        }
        let summary = TrustReportSummary(report, since: sinceText, oversizeLines: reader.oversizeLines)
        print(format == "json" ? summary.json() : summary.text(), terminator: "")
    }

    /// `90d`, `24h`, `30m`, `45s` in seconds.
    static func seconds(_ text: String) -> Int64? {
        guard let unit = text.last, let value = Int64(text.dropLast()), value > 0 else { return nil }
        switch unit {
        case "d": return value * 86_400
        case "h": return value * 3_600
        case "m": return value * 60
        case "s": return value
        default: return nil
        }
    }
}
