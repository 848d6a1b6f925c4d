import NIOCore

/// An upstream's response head as it arrived: the raw bytes and where each field lies in
/// them. The data path copies the fields it keeps straight into the client's response, so a
/// header is never turned into a `String` on the way through.
struct UpstreamResponseHead {
    /// How the response body is delimited on the upstream connection.
    typealias Framing = HTTP1BodyDecoder.Framing

    /// One `name: value` line; ranges index `bytes`' readable bytes, the value without OWS.
    struct Field {
        let name: Range<Int>
        let value: Range<Int>
    }

    /// From the status line through the blank line.
    let bytes: ByteBuffer
    let status: Int
    /// 0 or 1 (`HTTP/1.0`, `HTTP/1.1`).
    let versionMinor: Int
    let reason: Range<Int>
    let fields: [Field]
    let framing: Framing
    /// The connection may carry another request after this response.
    let keepAlive: Bool
    /// Lowercased header names a `Connection` header lists (besides `close`/`keep-alive`):
    /// hop-by-hop for this response. Empty for almost every response.
    let connectionListed: [String]

    /// Calls `body` with each field's name and value bytes, in order.
    func forEachField(_ body: (_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Void) rethrows {
        try bytes.withUnsafeReadableBytes { raw in
            for field in fields {
                try body(UnsafeRawBufferPointer(rebasing: raw[field.name]), UnsafeRawBufferPointer(rebasing: raw[field.value]))
            }
        }
    }

    /// Calls `body` with each run of adjacent field lines that `keep` keeps, as they arrived
    /// (through their CRLFs): field lines are adjacent, since the parser refuses obs-fold and
    /// bare CR or LF, so a response whose fields are all kept is copied in one piece.
    func forEachKeptRun(
        keep: (_ name: UnsafeRawBufferPointer) -> Bool, _ body: (_ lines: UnsafeRawBufferPointer) -> Void
    ) {
        bytes.withUnsafeReadableBytes { raw in
            var runStart: Int?
            for field in fields {
                if keep(UnsafeRawBufferPointer(rebasing: raw[field.name])) {
                    if runStart == nil { runStart = field.name.lowerBound }
                } else if let start = runStart {
                    body(UnsafeRawBufferPointer(rebasing: raw[start..<field.name.lowerBound]))
                    runStart = nil
                }
            }
            // The last line ends before the blank line's CRLF.
            if let start = runStart { body(UnsafeRawBufferPointer(rebasing: raw[start..<(raw.count - 2)])) }
        }
    }

    /// The reason phrase's bytes (possibly empty).
    func withReason<T>(_ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        try bytes.withUnsafeReadableBytes { raw in try body(UnsafeRawBufferPointer(rebasing: raw[reason])) }
    }

    /// Every field as strings, in order (tests and diagnostics; the data path uses `forEachField`).
    var headers: [(name: String, value: String)] {
        var result: [(name: String, value: String)] = []
        forEachField { name, value in result.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self))) }
        return result
    }

    /// The values of the fields named `name` (compared case-insensitively).
    func values(_ name: String) -> [String] {
        headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }
}
