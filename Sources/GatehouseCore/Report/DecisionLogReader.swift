import Foundation

/// Reads a decision log line by line in fixed-size chunks: memory stays at one chunk plus
/// one line, whatever the file's size. A line longer than `maxLineBytes` is skipped (and
/// counted): no record the gateway writes comes near it.
public struct DecisionLogReader {
    public static let chunkBytes = 256 * 1024
    public static let maxLineBytes = 64 * 1024

    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private var start = 0
    private var atEnd = false
    /// Lines dropped because they exceeded `maxLineBytes`.
    public private(set) var oversizeLines = 0

    public init(path: String) throws {
        handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
    }

    /// The next line without its newline, nil at the end of the file.
    public mutating func nextLine() throws -> ArraySlice<UInt8>? {
        while true {
            if let newline = buffer[start...].firstIndex(of: UInt8(ascii: "\n")) {
                let line = buffer[start..<newline]
                start = newline + 1
                if line.count > Self.maxLineBytes {
                    oversizeLines += 1
                    continue
                }
                return line
            }
            if atEnd {
                guard start < buffer.count else { return nil }
                let line = buffer[start...]
                start = buffer.count
                guard line.count <= Self.maxLineBytes else {
                    oversizeLines += 1
                    return nil
                }
                return line
            }
            // Keep the unfinished tail, drop what was consumed, read the next chunk.
            buffer.removeSubrange(0..<start)
            start = 0
            if buffer.count > Self.maxLineBytes {
                // A line already too long: skip to its end without holding it.
                buffer.removeAll(keepingCapacity: true)
                oversizeLines += 1
                try skipPastNewline()
                continue
            }
            let chunk = try handle.read(upToCount: Self.chunkBytes) ?? Data()
            if chunk.isEmpty { atEnd = true } else { buffer.append(contentsOf: chunk) }
        }
    }

    private mutating func skipPastNewline() throws {
        while let chunk = try handle.read(upToCount: Self.chunkBytes), !chunk.isEmpty {
            if let newline = chunk.firstIndex(of: UInt8(ascii: "\n")) {
                buffer.append(contentsOf: chunk[(newline + 1)...])
                return
            }
        }
        atEnd = true
    }
}
