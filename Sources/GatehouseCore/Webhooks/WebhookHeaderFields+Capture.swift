extension WebhookHeaderFields {
    /// The largest captured header file read (the listener's header limit is 32 KiB by default).
    public static let maxCaptureBytes = 64 * 1024
    public static let maxCaptureFields = 200

    /// Why a captured header file cannot be read; names the line, never a value.
    public struct CaptureError: Error, Sendable, Equatable, CustomStringConvertible {
        public var line: Int
        public var message: String
        public var description: String { line > 0 ? "line \(line): \(message)" : message }
    }

    /// Headers as captured from a delivery: `Name: value` lines. A leading HTTP request line
    /// (`POST /hook HTTP/1.1`) is skipped; a blank line ends the headers; CRLF or LF. As strict
    /// as the gateway's own parser: no folded lines, no space before the colon.
    public init(capture bytes: [UInt8]) throws(CaptureError) {
        guard bytes.count <= Self.maxCaptureBytes else {
            throw CaptureError(line: 0, message: "more than \(Self.maxCaptureBytes) bytes")
        }
        self.init()
        let lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        var started = false
        for (offset, rawLine) in lines.enumerated() {
            let number = offset + 1
            let line = rawLine.last == UInt8(ascii: "\r") ? rawLine.dropLast() : rawLine
            if line.isEmpty {
                if started { break }
                continue  // blank lines before the first header
            }
            guard let text = String(validating: line, as: UTF8.self) else {
                throw CaptureError(line: number, message: "not UTF-8")
            }
            if !started, Self.isRequestLine(text) {
                started = true
                continue
            }
            started = true
            if text.first == " " || text.first == "\t" {
                throw CaptureError(line: number, message: "folded header lines are not accepted")
            }
            guard let colon = text.firstIndex(of: ":"), ConfigValueParser.isHeaderName(String(text[..<colon])) else {
                throw CaptureError(line: number, message: "not `Name: value`")
            }
            guard fields.count < Self.maxCaptureFields else {
                throw CaptureError(line: number, message: "more than \(Self.maxCaptureFields) headers")
            }
            add(String(text[..<colon]), String(text[text.index(after: colon)...].trimmingSpaces))
        }
    }

    /// `METHOD target HTTP/1.x`.
    private static func isRequestLine(_ text: String) -> Bool {
        let parts = text.split(separator: " ", omittingEmptySubsequences: false)
        return parts.count == 3 && parts[2].hasPrefix("HTTP/") && !parts[0].isEmpty
            && parts[0].allSatisfy { $0.isASCII && $0.isUppercase }
    }
}
