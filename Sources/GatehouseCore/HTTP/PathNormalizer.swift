/// Turns a request-target from the request line into the one canonical path that routing,
/// every check and the upstream all see, or rejects it.
///
/// Rules, in the order a byte meets them:
/// - only origin-form (`/...`) is accepted; absolute-form, authority-form and `*` are rejected
///   (a caller that wants `OPTIONS *` handles it before calling this);
/// - every byte of the target (query included) must be printable ASCII (0x21–0x7E), and `#` is
///   rejected anywhere: a fragment never belongs in a request-target;
/// - in the path, `%XX` escapes of unreserved characters (ALPHA DIGIT `-` `.` `_` `~`) are
///   decoded, other escapes stay encoded with their hex uppercased; `%2F`, `%5C` and `%00` are
///   rejected, as are malformed escapes and a raw `\` (upstreams disagree on what they mean);
/// - dot-segments (also those spelled `%2E`) are removed per RFC 3986 §5.2.4, except that a
///   `..` which would climb above `/` is rejected instead of clamped;
/// - a trailing `/` is kept; runs of `/` are merged only when `mergeSlashes` is set;
/// - the query (everything after the first `?`) is returned byte for byte, unchanged.
///
/// Work is bounded: a path with more than ``maxSegments`` segments (counted as `/` bytes in
/// the raw path) is rejected before any rewriting. An already-normal path costs one scan and
/// no allocation beyond the result strings.
public struct PathNormalizer: Sendable {
    /// Largest number of path segments accepted (each `/` in the raw path starts one).
    public static let maxSegments = 512

    /// Merge runs of `/` into one (`/a//b` → `/a/b`). Off by default, because an upstream
    /// that does not merge would then see a different resource than the one routed.
    public var mergeSlashes: Bool

    public init(mergeSlashes: Bool = false) {
        self.mergeSlashes = mergeSlashes
    }

    public func normalize(_ requestTarget: String) -> Result<NormalizedTarget, PathRejection> {
        var target = requestTarget
        // `withUTF8` is free for native strings; it only copies a bridged, non-contiguous one.
        return target.withUTF8 { bytes in
            self.normalize(bytes: bytes, original: requestTarget)
        }
    }
}

/// A normalised request-target: the canonical path and the untouched raw query.
public struct NormalizedTarget: Sendable, Equatable {
    /// Canonical path, always starting with `/`.
    public var path: String
    /// Raw bytes after the first `?`, unchanged; nil when the target has no `?`
    /// (an empty string when it ends in `?`).
    public var query: String?

    public init(path: String, query: String? = nil) {
        self.path = path
        self.query = query
    }
}

/// Why a request-target was refused. Every case maps to `request.malformed` (400).
public enum PathRejection: Error, Sendable, Equatable {
    /// Empty, absolute-form (`http://…`), authority-form (`host:port`) or asterisk-form (`*`).
    case notOriginForm
    /// A `#` anywhere in the target.
    case fragment
    /// An ASCII byte outside 0x21–0x7E: a control character, a space or DEL.
    case controlCharacter
    /// A byte ≥ 0x80 (raw UTF-8 must be percent-encoded).
    case nonASCII
    /// `%` not followed by two hex digits.
    case invalidPercentEncoding
    /// `%2F`: an encoded `/` would be a segment separator to some upstreams and not to others.
    case encodedSlash
    /// `%5C`: an encoded `\`.
    case encodedBackslash
    /// `%00`: an encoded NUL.
    case encodedNul
    /// A raw `\`, which some servers treat as `/`.
    case rawBackslash
    /// A `..` segment with nothing left to remove.
    case climbsAboveRoot
    /// More than ``PathNormalizer/maxSegments`` segments.
    case tooManySegments
}

// MARK: - Implementation

private enum ASCII {
    static let slash = UInt8(ascii: "/")
    static let backslash = UInt8(ascii: "\\")
    static let percent = UInt8(ascii: "%")
    static let question = UInt8(ascii: "?")
    static let hash = UInt8(ascii: "#")
    static let dot = UInt8(ascii: ".")

    /// Uppercase hex digit for a nibble (0–15).
    @inline(__always)
    static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") &+ nibble : UInt8(ascii: "A") &+ (nibble &- 10)
    }

    @inline(__always)
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte &- UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte &- UInt8(ascii: "A") &+ 10
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte &- UInt8(ascii: "a") &+ 10
        default: return nil
        }
    }

    /// RFC 3986 unreserved: ALPHA DIGIT "-" "." "_" "~".
    @inline(__always)
    static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "_"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// Rejection for a byte that may never appear in a request-target, nil if it may.
    @inline(__always)
    static func rejection(for byte: UInt8) -> PathRejection? {
        if byte >= 0x80 { return .nonASCII }
        if byte <= 0x20 || byte == 0x7F { return .controlCharacter }
        if byte == hash { return .fragment }
        return nil
    }
}

extension PathNormalizer {
    private func normalize(
        bytes: UnsafeBufferPointer<UInt8>,
        original: String
    ) -> Result<NormalizedTarget, PathRejection> {
        guard let first = bytes.first, first == ASCII.slash else {
            if let first = bytes.first, let rejection = ASCII.rejection(for: first) {
                return .failure(rejection)
            }
            return .failure(.notOriginForm)
        }

        // Pass 1: validate every byte, find the query, count segments and decide whether the
        // path needs rewriting at all. The common case ends here.
        var pathEnd = bytes.count
        var segments = 0
        var needsRewrite = false
        var segmentLength = 0  // bytes in the current segment so far
        var segmentAllDots = true
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if let rejection = ASCII.rejection(for: byte) { return .failure(rejection) }
            switch byte {
            case ASCII.question:
                pathEnd = index
            case ASCII.slash:
                if segments > 0 {
                    if isDotSegment(length: segmentLength, allDots: segmentAllDots)
                        || (self.mergeSlashes && segmentLength == 0)
                    {
                        needsRewrite = true
                    }
                }
                segments += 1
                if segments > Self.maxSegments { return .failure(.tooManySegments) }
                segmentLength = 0
                segmentAllDots = true
            case ASCII.backslash:
                return .failure(.rawBackslash)
            case ASCII.percent:
                needsRewrite = true  // pass 2 validates the escape
                segmentLength += 1
                segmentAllDots = false
            default:
                segmentLength += 1
                if byte != ASCII.dot { segmentAllDots = false }
            }
            if pathEnd != bytes.count { break }
            index += 1
        }
        if isDotSegment(length: segmentLength, allDots: segmentAllDots) { needsRewrite = true }

        var query: String? = nil
        if pathEnd < bytes.count {
            let queryStart = pathEnd + 1
            for byte in bytes[queryStart...] {
                if let rejection = ASCII.rejection(for: byte) { return .failure(rejection) }
            }
            query = String(decoding: UnsafeBufferPointer(rebasing: bytes[queryStart...]), as: UTF8.self)
        }

        let pathBytes = UnsafeBufferPointer(rebasing: bytes[..<pathEnd])
        if !needsRewrite {
            let path =
                pathEnd == bytes.count ? original : String(decoding: pathBytes, as: UTF8.self)
            return .success(NormalizedTarget(path: path, query: query))
        }

        do {
            // The output is never longer than the input: decoding shrinks, uppercasing keeps the
            // length, and removing dot-segments or merging slashes only deletes bytes.
            let path = try String(unsafeUninitializedCapacity: pathBytes.count) { output in
                try self.rewrite(pathBytes, into: output)
            }
            return .success(NormalizedTarget(path: path, query: query))
        } catch let rejection as PathRejection {
            return .failure(rejection)
        } catch {
            preconditionFailure("rewrite throws only PathRejection")
        }
    }

    @inline(__always)
    private func isDotSegment(length: Int, allDots: Bool) -> Bool {
        allDots && (length == 1 || length == 2)
    }

    /// Pass 2: decode, remove dot-segments and (optionally) merge slashes, writing the result
    /// into `output`. `input` starts with `/` and holds the path only. Returns the length written.
    ///
    /// The output is kept as a sequence of `"/" + segment` pieces; popping a segment scans back
    /// to the previous `/`, so no separate segment stack is needed.
    private func rewrite(
        _ input: UnsafeBufferPointer<UInt8>,
        into output: UnsafeMutableBufferPointer<UInt8>
    ) throws(PathRejection) -> Int {
        var written = 0
        var index = 1  // skip the leading "/"
        while true {
            // Copy one segment as "/" + decoded content.
            let segmentStart = written
            output[written] = ASCII.slash
            written += 1
            while index < input.count, input[index] != ASCII.slash {
                let byte = input[index]
                if byte == ASCII.percent {
                    guard index + 2 < input.count,
                        let high = ASCII.hexValue(input[index + 1]),
                        let low = ASCII.hexValue(input[index + 2])
                    else { throw .invalidPercentEncoding }
                    let decoded = high << 4 | low
                    switch decoded {
                    case ASCII.slash: throw .encodedSlash
                    case ASCII.backslash: throw .encodedBackslash
                    case 0: throw .encodedNul
                    default: break
                    }
                    if ASCII.isUnreserved(decoded) {
                        output[written] = decoded
                        written += 1
                    } else {
                        output[written] = ASCII.percent
                        output[written + 1] = ASCII.hexDigit(high)
                        output[written + 2] = ASCII.hexDigit(low)
                        written += 3
                    }
                    index += 3
                } else {
                    output[written] = byte
                    written += 1
                    index += 1
                }
            }
            let isLast = index >= input.count
            index += 1  // step over the "/" that ended the segment

            let contentLength = written - segmentStart - 1
            let isDot = contentLength == 1 && output[segmentStart + 1] == ASCII.dot
            let isDotDot =
                contentLength == 2 && output[segmentStart + 1] == ASCII.dot
                && output[segmentStart + 2] == ASCII.dot

            if isDot || isDotDot {
                written = segmentStart
                if isDotDot {
                    // Remove the previous "/" + segment; with none left, ".." escapes the root.
                    guard written > 0 else { throw .climbsAboveRoot }
                    written -= 1
                    while output[written] != ASCII.slash { written -= 1 }
                }
                // A final dot-segment names a directory: keep the trailing "/".
                if isLast {
                    output[written] = ASCII.slash
                    written += 1
                }
            } else if contentLength == 0 && self.mergeSlashes && !isLast {
                written = segmentStart
            }
            if isLast { return written }
        }
    }
}
