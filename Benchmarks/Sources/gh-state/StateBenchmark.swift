import Foundation
import GatehouseCore

/// Memory and time of the in-memory replay store at a million entries, against the store it
/// replaced (a `[String: Date]`), in the same process.
///
///     swift run -c release --package-path Benchmarks gh-state [--entries 1000000]
///
/// Both get the same pre-made keys (51 bytes each, like `route\0delivery-id`). The dictionary
/// shares the key strings with the pre-made array, so its resident-memory growth is its
/// overhead beyond the key, which is what the issue's target counts; the replay store keeps a
/// 16-byte digest instead of the key, so all of its growth counts.
@main
struct StateBenchmark {
    static func main() {
        var entries = 1_000_000
        var arguments = CommandLine.arguments.dropFirst().makeIterator()
        while let argument = arguments.next() {
            if argument == "--entries", let value = arguments.next().flatMap(Int.init), value > 0 {
                entries = value
            } else {
                FileHandle.standardError.write(Data("usage: gh-state [--entries N]\n".utf8))
                exit(2)
            }
        }
        let now = Date()
        let keys = (0..<entries).map { "github-hooks\u{0}" + UUID().uuidString.lowercased() + "\($0 % 10)" }
        let expiry = now.addingTimeInterval(600)

        let storeBefore = residentBytes()
        let storeStart = ContinuousClock.now
        let store = InMemoryReplayStore(capacity: entries, now: now)
        var inserted = 0
        for key in keys where store.insertIfAbsent(key, expiresAt: expiry, now: now) == .inserted { inserted += 1 }
        let storeTime = ContinuousClock.now - storeStart
        let storeBytes = residentBytes() - storeBefore
        precondition(inserted == entries, "the store refused keys below its capacity")
        precondition(store.insertIfAbsent(keys[entries / 2], expiresAt: expiry, now: now) == .duplicate)

        let dictionaryBefore = residentBytes()
        let dictionaryStart = ContinuousClock.now
        var dictionary: [String: Date] = [:]
        for key in keys where dictionary[key] == nil { dictionary[key] = expiry }
        let dictionaryTime = ContinuousClock.now - dictionaryStart
        let dictionaryBytes = residentBytes() - dictionaryBefore
        precondition(dictionary.count == entries)

        func perEntry(_ bytes: Int) -> String { String(format: "%.1f", Double(bytes) / Double(entries)) }
        func nanos(_ duration: Duration) -> String {
            let ns = Double(duration.components.seconds) * 1e9 + Double(duration.components.attoseconds) / 1e9
            return String(format: "%.0f", ns / Double(entries))
        }
        print("entries: \(entries), key: \(keys[0].utf8.count) bytes")
        print("| store | resident bytes/entry | of which table (allocated) | ns/insert |")
        print("|---|---|---|---|")
        print("| InMemoryReplayStore (digest table) | \(perEntry(storeBytes)) | \(perEntry(store.allocatedBytes)) | \(nanos(storeTime)) |")
        print("| [String: Date] (previous store, key shared) | \(perEntry(dictionaryBytes)) | - | \(nanos(dictionaryTime)) |")
        let target = Double(storeBytes) / Double(entries) <= 64
        print("target: <= 64 B/entry of store overhead beyond the key: \(target ? "MET" : "NOT MET") (\(perEntry(storeBytes)))")
        withExtendedLifetime((store, dictionary)) {}
    }

    /// Resident set size from /proc/self/statm (pages).
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        return (fields.count > 1 ? Int(fields[1]) ?? 0 : 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
