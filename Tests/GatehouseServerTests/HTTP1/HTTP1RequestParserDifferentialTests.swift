@testable import GatehouseServer
import NIOCore
import NIOEmbedded
import NIOHTTP1
import XCTest

/// Differential tests of `HTTP1RequestParser` against llhttp (NIO's `HTTPRequestDecoder`).
///
/// The gateway fronts services that trust what it forwards, so the danger is request
/// smuggling: two parsers reading the same bytes as different requests. Whenever both parsers
/// accept a request they must read it the same way (method, target, version, fields in order,
/// body) and end it at the same place (the same number of requests, with the same bodies).
/// Our parser may refuse what llhttp accepts (it is meant to be stricter); it may accept what
/// llhttp refuses only for the documented leniencies in `Repair` and `explainLeniency`.
/// (A few leniencies that do bear on where a request ends are reported but not asserted
/// until the parser is changed: see `Repair.isIntended` and `knownDifferences`.)
final class HTTP1RequestParserDifferentialTests: XCTestCase {
    typealias Parser = HTTP1RequestParser

    /// The listener defaults' shape: room for an 8 KiB target, a 64 KiB head, 100 fields.
    private static let limits = Parser.Limits(maxRequestLineBytes: 8192 + 64, maxHeadBytes: 64 * 1024, maxFields: 100)

    // MARK: Transcripts

    struct Field: Equatable {
        var name: [UInt8]
        var value: [UInt8]
    }

    /// A request head as bytes: `String ==` is Unicode canonical equivalence, not byte equality.
    struct Head: Equatable {
        var method: [UInt8]
        var uri: [UInt8]
        var version: HTTPVersion
        var fields: [Field]

        /// `trimmingValues`: drop trailing SP/HTAB from values (see `llhttpTranscript`).
        init(_ head: HTTPRequestHead, trimmingValues: Bool = false) {
            method = Array(head.method.rawValue.utf8)
            uri = Array(head.uri.utf8)
            version = head.version
            fields = head.headers.map { field in
                var value = Array(field.value.utf8)
                while trimmingValues, let last = value.last, last == .space || last == .tab { value.removeLast() }
                return Field(name: Array(field.name.utf8), value: value)
            }
        }
    }

    struct Request {
        var head: Head
        /// Not compared (llhttp works it out itself); says whether bytes after this request count.
        var keepAlive: Bool
        var body: [UInt8] = []
        /// The end of the request was seen.
        var complete = false
        /// Where our parser found the request in the input (ours only; llhttp does not say).
        var span: Span?

        /// Read as chunked (a request we accepted with Transfer-Encoding has no other framing).
        var isChunked: Bool {
            head.fields.contains { String(decoding: $0.name, as: UTF8.self).lowercased() == "transfer-encoding" }
        }
    }

    /// Byte offsets of one request in the input: where reading it began (empty lines before
    /// the request line included), where its body began, where it ended.
    struct Span {
        var start: Int
        var bodyStart: Int
        var end: Int?
    }

    /// What one parser made of one input: the requests it saw (only the last may be incomplete)
    /// and, if it refused the input, why.
    struct Transcript {
        var requests: [Request] = []
        var failure: String?

        var failed: Bool { failure != nil }
        var completed: Int { requests.prefix(while: \.complete).count }

        mutating func head(_ head: HTTPRequestHead, trimmingValues: Bool = false) {
            requests.append(Request(head: Head(head, trimmingValues: trimmingValues), keepAlive: head.isKeepAlive))
        }

        mutating func body(_ bytes: ByteBuffer) {
            requests[requests.count - 1].body += bytes.readableBytesView
        }

        mutating func end() {
            requests[requests.count - 1].complete = true
        }
    }

    /// llhttp's reading: the whole input in one read, then the channel closed.
    static func llhttpTranscript(_ bytes: [UInt8]) -> Transcript {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
        var transcript = Transcript()
        do {
            // A decoding error reaches the pipeline's end (errorCaught) and is rethrown here.
            try channel.writeInbound(channel.allocator.buffer(bytes: bytes))
        } catch {
            transcript.failure = "\(error)"
        }
        // The parts decoded before an error are still queued.
        while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) {
            switch part {
            // llhttp leaves trailing whitespace in a value; RFC 9110 §5.5 says it is not part
            // of the value, and ours drops it. Framing fields are not affected: llhttp reads
            // them itself, and any framing difference shows in the bodies compared.
            case .head(let head): transcript.head(head, trimmingValues: true)
            case .body(let bytes): transcript.body(bytes)
            case .end: transcript.end()
            }
        }
        // An incomplete request fails at EOF; that is not a refusal of the bytes that came.
        _ = try? channel.finish()
        return transcript
    }

    /// Our reading: the whole input in one buffer, events taken until nil (more needed) or a failure.
    static func ourTranscript(_ bytes: [UInt8]) -> Transcript {
        var parser = Parser(limits: limits)
        var buffer = ByteBuffer(bytes: bytes)
        var transcript = Transcript()
        var start = 0
        // Every event consumes bytes or ends a request: a bound that is never reached, in
        // case a bug made the parser spin.
        for _ in 0..<(2 * bytes.count + 16) {
            do {
                guard let event = try parser.next(from: &buffer) else { break }
                switch event {
                case .head(let head):
                    transcript.head(head)
                    let span = Span(start: start, bodyStart: buffer.readerIndex)
                    transcript.requests[transcript.requests.count - 1].span = span
                case .body(let bytes):
                    transcript.body(bytes)
                case .end:
                    transcript.end()
                    transcript.requests[transcript.requests.count - 1].span!.end = buffer.readerIndex
                    start = buffer.readerIndex
                }
            } catch {
                transcript.failure = "\(error)"
                break
            }
        }
        return transcript
    }

    // MARK: Comparison

    enum Outcome {
        /// Nothing to hold against either parser: the same requests (or none), then both
        /// refuse or wait, or only llhttp refuses something we have not accepted.
        case agree
        /// We refused where llhttp did not (we are meant to be stricter), by our failure.
        case stricter(String)
        /// We accepted a whole request llhttp refused, for documented reasons that cannot move
        /// where a request or body ends.
        case intendedLeniency(String)
        /// We accepted a whole request llhttp refused, for a known reason that does bear on
        /// where a request ends: reported (printed), not asserted, until the parser is changed.
        case reportedLeniency(String)
        /// We accepted a whole request llhttp refused, for no known reason.
        case lenient(String, detail: String)
        /// Both accepted a request and read it differently, or ended requests at different places.
        case disagreement(String, detail: String)
    }

    static func compare(_ bytes: [UInt8], ours: Transcript, llhttp: Transcript) -> Outcome {
        for index in 0..<max(ours.requests.count, llhttp.requests.count) {
            let mine = index < ours.requests.count ? ours.requests[index] : nil
            let theirs = index < llhttp.requests.count ? llhttp.requests[index] : nil
            if let mine, let theirs, mine.head != theirs.head {
                return .disagreement("request \(index): heads differ", detail: describeHeads(mine.head, theirs.head))
            }
            switch (mine?.complete ?? false, theirs?.complete ?? false) {
            case (true, true):
                if mine!.body != theirs!.body {
                    return .disagreement(
                        "request \(index): bodies differ",
                        detail: "ours \(escape(mine!.body)) / llhttp \(escape(theirs!.body))")
                }
                continue
            case (true, false):
                // We ended request `index`; llhttp refused it or still reads it.
                guard llhttp.failed else {
                    return .disagreement(
                        "request \(index): we end it, llhttp waits for more", detail: "llhttp \(summary(llhttp))")
                }
                return explainLeniency(bytes, index: index, ours: ours, llhttp: llhttp)
            case (false, true):
                guard ours.failed else {
                    return .disagreement(
                        "request \(index): llhttp ends it, we wait for more", detail: "ours \(summary(ours))")
                }
                return .stricter(ours.failure!)
            case (false, false):
                // Neither ended request `index`: this is where both stopped. Both waiting for
                // more is not compared (nothing is finished); their heads were, above.
                if ours.failed { return llhttp.failed ? .agree : .stricter(ours.failure!) }
                return .agree
            }
        }
        // Every request either parser saw was ended by both, identically.
        if ours.failed && !llhttp.failed { return .stricter(ours.failure!) }
        return .agree
    }

    // MARK: Known leniencies

    /// llhttp's request methods (`HTTP_METHOD_MAP`): any other token is `HPE_INVALID_METHOD`.
    static let llhttpMethods: Set<String> = [
        "DELETE", "GET", "HEAD", "POST", "PUT", "CONNECT", "OPTIONS", "TRACE", "COPY", "LOCK", "MKCOL", "MOVE",
        "PROPFIND", "PROPPATCH", "SEARCH", "UNLOCK", "BIND", "REBIND", "UNBIND", "ACL", "REPORT", "MKACTIVITY",
        "CHECKOUT", "MERGE", "M-SEARCH", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE", "PATCH", "PURGE", "MKCALENDAR",
        "LINK", "UNLINK", "SOURCE", "QUERY",
    ]

    /// A rewrite of one request that takes away one thing our parser accepts and llhttp does
    /// not. When llhttp reads the rewritten request exactly as we read it, that thing was why
    /// llhttp refused: an exact category instead of a guess from llhttp's error code.
    enum Repair: String, CaseIterable {
        /// Intended: any token is a method (RFC 9110 §9.1; routes decide which they take).
        /// llhttp knows a fixed list and refuses the rest in the request line, before any
        /// framing is read.
        case methodToGET = "method unknown to llhttp"
        /// Intended: the parser takes any visible-ASCII target as is; its form is checked
        /// before routing (`PathNormalizer`, else `requestInvalidPath`). It sits inside the
        /// request line, so cannot move an end.
        case targetToSlash = "request-target llhttp's URL parser refuses"
        /// Intended: chunk extensions are skipped (field-content up to the CRLF; a bare CR or
        /// LF fails), and BWS may precede the `;` (RFC 9112 §7.1.1). The size and the line's
        /// end are read the same either way.
        case bareChunkSizes = "chunk extension syntax, or whitespace after the chunk size"
        /// Not intended: a tab after a Content-Length or Transfer-Encoding value, which llhttp
        /// refuses (`Content-Length: 5\t`); these fields decide where the body ends. The parser
        /// refuses it too since this test found it; kept so that a regression is named.
        case trimFramingValues = "whitespace around a Content-Length/Transfer-Encoding value"
        /// Not intended: a trailer line that is not a `name: value` field line, which llhttp
        /// refuses. The trailer section decides where a chunked request ends
        /// (`0\r\nGET /x HTTP/1.1\r\n...\r\n\r\n` is one request to a parser that reads
        /// trailers, two to one that skips them). The parser refuses it too since this test
        /// found it; kept so that a regression is named.
        case noTrailers = "trailer section llhttp refuses"

        var isIntended: Bool {
            switch self {
            case .methodToGET, .targetToSlash, .bareChunkSizes: return true
            case .trimFramingValues, .noTrailers: return false
            }
        }

        func applies(to request: Request) -> Bool {
            switch self {
            case .methodToGET: return !llhttpMethods.contains(String(decoding: request.head.method, as: UTF8.self))
            case .targetToSlash: return request.head.uri != [UInt8(ascii: "/")]
            case .trimFramingValues: return request.head.fields.contains { isFramingField($0.name) }
            case .bareChunkSizes, .noTrailers: return request.isChunked
            }
        }
    }

    /// Why llhttp refused request `index`, which we read whole.
    static func explainLeniency(_ bytes: [UInt8], index: Int, ours: Transcript, llhttp: Transcript) -> Outcome {
        // Intended: llhttp refuses bytes after a request that does not keep the connection
        // alive (HTTP/1.0, `Connection: close`). The parser reads on, but GatewayHandler closes
        // the connection after answering such a request and never serves what follows it.
        if index > 0, !ours.requests[index - 1].keepAlive, llhttp.failure == "\(HTTPParserError.closedConnection)" {
            return .intendedLeniency("request after a non-keep-alive request")
        }
        let request = ours.requests[index]
        var needed = Repair.allCases.filter { $0.applies(to: request) }
        // Repairs explain a refusal only if the unrepaired bytes are refused.
        guard !llhttpReadsAsWeDo(bytes, through: index), llhttpReadsAsWeDo(rewrite(bytes, request, needed), through: index)
        else {
            return .lenient("llhttp: \(llhttp.failure!)", detail: "refused by llhttp: \(llhttp.failure!)")
        }
        // Keep only the repairs that are needed (a mutant may carry more than one leniency).
        for repair in needed where needed.count > 1 {
            let fewer = needed.filter { $0 != repair }
            if llhttpReadsAsWeDo(rewrite(bytes, request, fewer), through: index) { needed = fewer }
        }
        let category = needed.map(\.rawValue).joined(separator: " + ")
        return needed.allSatisfy(\.isIntended) ? .intendedLeniency(category) : .reportedLeniency(category)
    }

    /// Both parsers end requests `0...index` of `bytes`, identically.
    static func llhttpReadsAsWeDo(_ bytes: [UInt8], through index: Int) -> Bool {
        let ours = ourTranscript(bytes)
        let llhttp = llhttpTranscript(bytes)
        guard ours.completed > index, llhttp.completed > index else { return false }
        return (0...index).allSatisfy {
            ours.requests[$0].head == llhttp.requests[$0].head && ours.requests[$0].body == llhttp.requests[$0].body
        }
    }

    static func isFramingField(_ name: [UInt8]) -> Bool {
        let lowercased = String(decoding: name, as: UTF8.self).lowercased()
        return lowercased == "content-length" || lowercased == "transfer-encoding"
    }

    /// `bytes` with the request we read at `request.span` rewritten by `repairs`; everything
    /// before and after it is left alone. The request was accepted by our parser, so its
    /// request line, field lines and chunks have the shapes assumed here.
    static func rewrite(_ bytes: [UInt8], _ request: Request, _ repairs: [Repair]) -> [UInt8] {
        let span = request.span!
        var headStart = span.start
        while bytes[headStart] == .cr { headStart += 2 }  // empty lines before the request line
        let lineEnd = bytes[headStart...].firstIndex(of: .cr)!
        let methodEnd = bytes[headStart...].firstIndex(of: .space)!
        let targetEnd = bytes[(methodEnd + 1)...].firstIndex(of: .space)!

        var out = Array(bytes[..<headStart])
        out += repairs.contains(.methodToGET) ? Array("GET".utf8) : Array(bytes[headStart..<methodEnd])
        out += [.space]
        out += repairs.contains(.targetToSlash) ? [UInt8(ascii: "/")] : Array(bytes[(methodEnd + 1)..<targetEnd])
        out += bytes[targetEnd..<(lineEnd + 2)]

        // Field lines, each ending in CRLF, then the blank line.
        var lineStart = lineEnd + 2
        while bytes[lineStart] != .cr {
            let end = bytes[lineStart...].firstIndex(of: .cr)!
            let colon = bytes[lineStart..<end].firstIndex(of: UInt8(ascii: ":"))!
            let name = Array(bytes[lineStart..<colon])
            if repairs.contains(.trimFramingValues), isFramingField(name) {
                var value = bytes[(colon + 1)..<end]
                while let first = value.first, first == .space || first == .tab { value = value.dropFirst() }
                while let last = value.last, last == .space || last == .tab { value = value.dropLast() }
                out += name + Array(": ".utf8) + value + [.cr, .lf]
            } else {
                out += bytes[lineStart..<(end + 2)]
            }
            lineStart = end + 2
        }
        out += [.cr, .lf]
        assert(lineStart + 2 == span.bodyStart)

        var index = span.bodyStart
        if request.isChunked {
            while true {
                let end = bytes[index...].firstIndex(of: .cr)!
                let digits = bytes[index..<end].prefix { $0.hexDigitValue != nil }
                let size = digits.reduce(0) { $0 << 4 | $1.hexDigitValue! }
                out += repairs.contains(.bareChunkSizes) ? Array(digits) : Array(bytes[index..<end])
                out += [.cr, .lf]
                index = end + 2
                if size == 0 { break }
                out += bytes[index..<(index + size + 2)]  // data and its CRLF
                index += size + 2
            }
            // The trailer section: field lines, then the blank line.
            out += repairs.contains(.noTrailers) ? [.cr, .lf] : Array(bytes[index..<span.end!])
        } else {
            out += bytes[index..<span.end!]
        }
        return out + bytes[span.end!...]
    }

    // MARK: Reporting

    /// Bytes as a Swift-like literal: printable ASCII as is, the rest escaped.
    static func escape(_ bytes: [UInt8]) -> String {
        var text = "\""
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\r"): text += "\\r"
            case UInt8(ascii: "\n"): text += "\\n"
            case UInt8(ascii: "\t"): text += "\\t"
            case UInt8(ascii: "\\"): text += "\\\\"
            case UInt8(ascii: "\""): text += "\\\""
            case 0x20..<0x7F: text += String(UnicodeScalar(byte))
            default: text += "\\x" + (byte < 0x10 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return text + "\""
    }

    static func escape(_ text: String) -> String {
        escape(Array(text.utf8))
    }

    static func describe(_ head: Head) -> String {
        let fields = head.fields.map { escape($0.name) + ":" + escape($0.value) }.joined(separator: ", ")
        return "\(escape(head.method)) \(escape(head.uri)) \(head.version) [\(fields)]"
    }

    static func describeHeads(_ ours: Head, _ llhttp: Head) -> String {
        "ours \(describe(ours)) / llhttp \(describe(llhttp))"
    }

    static func summary(_ transcript: Transcript) -> String {
        let requests = transcript.requests.map {
            "\(describe($0.head)) body \(escape($0.body))\($0.complete ? " end" : " (open)")"
        }
        return "[\(requests.joined(separator: "; "))]" + (transcript.failure.map { " failed: \($0)" } ?? " waiting")
    }

    // MARK: Seeds

    /// Valid requests, each accepted by both parsers (checked by `testSeedsAreReadIdentically`).
    static let seeds: [[UInt8]] = [
        // GET with several fields.
        "GET /index.html?q=1&r=two HTTP/1.1\r\nHost: example.com\r\nUser-Agent: probe/1.0\r\nAccept: */*\r\n"
            + "X-Forwarded-For: 10.0.0.1\r\nCookie: a=b; c=d\r\n\r\n",
        // POST with a Content-Length body.
        "POST /submit HTTP/1.1\r\nHost: example.com\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world",
        // Chunked, with extensions and trailers.
        "POST /upload HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "5;name=value\r\nhello\r\n6;q=\"a b\";flag\r\n world\r\n0\r\nX-Trailer: done\r\nX-Other: 1\r\n\r\n",
        // HTTP/1.0.
        "GET /old HTTP/1.0\r\nHost: example.com\r\nAccept: */*\r\n\r\n",
        // Two pipelined.
        "GET /one HTTP/1.1\r\nHost: a\r\n\r\nPOST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
        // Three pipelined, the middle one chunked.
        "GET /one HTTP/1.1\r\nHost: a\r\n\r\nPOST /two HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "3\r\nabc\r\n0\r\n\r\nGET /three HTTP/1.1\r\nHost: a\r\n\r\n",
        // Expect: 100-continue, then a pipelined GET.
        "POST /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nabcdGET /next HTTP/1.1\r\nHost: a\r\n\r\n",
        // Spaces and tabs around values, an empty value.
        "GET /ws HTTP/1.1\r\nHost:example.com\r\nX-A: \t value \t\r\nX-B:\tv w\r\nX-Empty:   \r\n\r\n",
    ].map { Array($0.utf8) } + [
        // obs-text (UTF-8 and a lone 0x80/0xFF) in a value.
        Array("GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf".utf8) + [0xC3, 0xA9, 0x20, 0x80, 0xFF] + Array("\r\n\r\n".utf8)
    ]

    func testSeedsAreReadIdentically() {
        for seed in Self.seeds {
            let ours = Self.ourTranscript(seed)
            let llhttp = Self.llhttpTranscript(seed)
            let detail = "\(Self.escape(seed)): ours \(Self.summary(ours)), llhttp \(Self.summary(llhttp))"
            XCTAssertFalse(ours.failed || llhttp.failed, detail)
            XCTAssertGreaterThan(ours.completed, 0, detail)
            guard case .agree = Self.compare(seed, ours: ours, llhttp: llhttp) else {
                XCTFail(detail)
                continue
            }
            XCTAssertEqual(ours.completed, llhttp.completed, Self.escape(seed))
        }
    }

    /// The comparison itself: a request ended in different places must not pass as agreement.
    func testTheComparisonCatchesADesync() {
        let bytes = Self.seeds[4]  // GET, then POST with a 5-byte body
        let ours = Self.ourTranscript(bytes)
        var llhttp = Self.llhttpTranscript(bytes)
        guard case .agree = Self.compare(bytes, ours: ours, llhttp: llhttp) else { return XCTFail("seed differs") }

        var shorter = llhttp
        shorter.requests[1].body.removeLast()
        guard case .disagreement = Self.compare(bytes, ours: ours, llhttp: shorter) else { return XCTFail("body") }

        // llhttp still reading the POST's body: a desync, not a refusal.
        llhttp.requests[1].complete = false
        guard case .disagreement = Self.compare(bytes, ours: ours, llhttp: llhttp) else { return XCTFail("end") }
        // llhttp refusing it, for no reason a repair explains: a leniency to look at.
        llhttp.failure = "test"
        guard case .lenient = Self.compare(bytes, ours: ours, llhttp: llhttp) else { return XCTFail("refusal") }
    }

    // MARK: Mutation

    enum Mutation: String, CaseIterable {
        case insertBytes, deleteBytes, replaceBytes, duplicateFieldLine, addFramingField, changeVersion
        case changeChunkSize, breakLineEnding, spaceBeforeColon, prependEmptyLines

        /// Bytes at the edges of the grammar: line ends, whitespace, controls, separators, digits.
        static let interesting: [UInt8] = [
            0x0D, 0x0A, 0x20, 0x09, 0x00, 0x01, 0x7F, 0x80, 0xFF,
        ] + Array(":;,=\"05afx".utf8)

        static let framingFields = [
            "Transfer-Encoding: chunked", "Transfer-Encoding: chunked ,", "Transfer-Encoding:  chunked",
            "Transfer-Encoding: Chunked", "Transfer-Encoding: gzip, chunked", "Transfer-Encoding: identity",
        ]

        static let versions = [
            "HTTP/1.1", "HTTP/1.0", "HTTP/1.2", "HTTP/2.0", "HTTP/0.9", "HTTP/3.0", "HTTP/1.10", "HTTP/01.1", "http/1.1",
            "HTTP/1", "HTTP/1.1 ", "HTTP /1.1", "HTTP/1.x",
        ]

        /// Chunk sizes built from the original one (`s`), and the brief's literal variants.
        static func chunkSizes(for size: String) -> [String] {
            [
                "\(size) ", "0\(size)", "\(size);x", "\(size)\t;x", "0x\(size)", "-\(size)", "+\(size)", "\(size) ;x",
                "\(size);", "\(size) \(size)", "\(size)\t", "\(size);x=\"a\r\"", "ffffffffffffffffff", "0",
                "5 ", "05", "5;x", "5\t;x", "0x5", "-5",
            ]
        }

        /// The mutated bytes, or nil when this mutation finds nothing to work on.
        func apply(to bytes: [UInt8], using rng: inout SplitMix64) -> [UInt8]? {
            var bytes = bytes
            switch self {
            case .insertBytes:
                let at = Int.random(in: 0...bytes.count, using: &rng)
                bytes.insert(contentsOf: Self.someInteresting(using: &rng), at: at)
            case .deleteBytes:
                guard !bytes.isEmpty else { return nil }
                let at = Int.random(in: 0..<bytes.count, using: &rng)
                bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...2, using: &rng)))
            case .replaceBytes:
                guard !bytes.isEmpty else { return nil }
                let at = Int.random(in: 0..<bytes.count, using: &rng)
                let replacement = Self.someInteresting(using: &rng)
                bytes.replaceSubrange(at..<min(bytes.count, at + replacement.count), with: replacement)
            case .duplicateFieldLine:
                guard let line = Lines(bytes).fieldLines.randomElement(using: &rng) else { return nil }
                bytes.insert(contentsOf: bytes[line.lowerBound..<line.upperBound + 2], at: line.lowerBound)
            case .addFramingField:
                guard let requestLine = Lines(bytes).requestLines.randomElement(using: &rng) else { return nil }
                let field =
                    Bool.random(using: &rng)
                    ? "Content-Length: \(Int.random(in: 0...12, using: &rng))"
                    : Self.framingFields.randomElement(using: &rng)!
                bytes.insert(contentsOf: Array((field + "\r\n").utf8), at: requestLine.upperBound + 2)
            case .changeVersion:
                guard let requestLine = Lines(bytes).requestLines.randomElement(using: &rng),
                    let version = Lines.lastRange(of: Array(" HTTP/".utf8), in: bytes[requestLine])
                else { return nil }
                let replacement = " " + Self.versions.randomElement(using: &rng)!
                bytes.replaceSubrange(version.lowerBound..<requestLine.upperBound, with: Array(replacement.utf8))
            case .changeChunkSize:
                guard let line = Lines(bytes).chunkSizeLines.randomElement(using: &rng) else { return nil }
                let size = String(decoding: bytes[line].prefix(while: { $0.hexDigitValue != nil }), as: UTF8.self)
                let replacement = Self.chunkSizes(for: size).randomElement(using: &rng)!
                bytes.replaceSubrange(line, with: Array(replacement.utf8))
            case .breakLineEnding:
                guard let crlf = Lines(bytes).ends.randomElement(using: &rng) else { return nil }
                // CRLF becomes a bare LF or a bare CR.
                bytes.remove(at: Bool.random(using: &rng) ? crlf : crlf + 1)
            case .spaceBeforeColon:
                guard let line = Lines(bytes).fieldLines.randomElement(using: &rng),
                    let colon = bytes[line].firstIndex(of: UInt8(ascii: ":"))
                else { return nil }
                bytes.insert(Bool.random(using: &rng) ? .space : .tab, at: colon)
            case .prependEmptyLines:
                // Before the first request or before a later one (after any blank line).
                let starts = [0] + Lines(bytes).blankLineEnds
                let at = starts.randomElement(using: &rng)!
                let line: [UInt8] = Int.random(in: 0..<4, using: &rng) == 0 ? [.lf] : [.cr, .lf]
                let count = Int.random(in: 1...3, using: &rng)
                bytes.insert(contentsOf: Array(repeatElement(line, count: count).joined()), at: at)
            }
            return bytes
        }

        private static func someInteresting(using rng: inout SplitMix64) -> [UInt8] {
            (0..<Int.random(in: 1...2, using: &rng)).map { _ in interesting.randomElement(using: &rng)! }
        }
    }

    /// The CRLF-terminated lines of a (possibly mutated) input, classified loosely by shape:
    /// mutations only need plausible places to act on.
    struct Lines {
        /// Offsets of each CR of a CRLF.
        var ends: [Int] = []
        /// Line contents (without the CRLF).
        var lines: [Range<Int>] = []
        let bytes: [UInt8]

        init(_ bytes: [UInt8]) {
            self.bytes = bytes
            var start = 0
            var index = 0
            while index + 1 < bytes.count {
                if bytes[index] == .cr && bytes[index + 1] == .lf {
                    ends.append(index)
                    lines.append(start..<index)
                    start = index + 2
                    index += 2
                } else {
                    index += 1
                }
            }
        }

        var requestLines: [Range<Int>] {
            lines.filter { Self.lastRange(of: Array(" HTTP/".utf8), in: bytes[$0]) != nil }
        }

        /// `name: value` lines (and trailer fields).
        var fieldLines: [Range<Int>] {
            let requestLines = requestLines
            return lines.filter { line in
                guard let first = line.first, bytes[first].isTokenCharacter else { return false }
                return bytes[line].contains(UInt8(ascii: ":")) && !requestLines.contains(line)
            }
        }

        /// Lines that start with a hex digit and hold nothing but hex digits before a `;`.
        var chunkSizeLines: [Range<Int>] {
            lines.filter { line in
                guard let first = line.first, bytes[first].hexDigitValue != nil else { return false }
                return bytes[line].prefix(while: { $0 != UInt8(ascii: ";") }).allSatisfy { $0.hexDigitValue != nil }
            }
        }

        /// Offsets just after each empty line.
        var blankLineEnds: [Int] {
            lines.filter(\.isEmpty).map { $0.upperBound + 2 }
        }

        static func lastRange(of needle: [UInt8], in haystack: ArraySlice<UInt8>) -> Range<Int>? {
            guard haystack.count >= needle.count else { return nil }
            for start in stride(from: haystack.endIndex - needle.count, through: haystack.startIndex, by: -1)
            where haystack[start..<start + needle.count].elementsEqual(needle) {
                return start..<start + needle.count
            }
            return nil
        }
    }

    // MARK: The differential run

    func testMutatedRequestsAreReadAsLLHTTPReadsThemOrRefused() {
        // ~3 s in a debug build.
        let mutants = 30_000
        var rng = SplitMix64(seed: 0x6A7E_4005_E5EC_0DE5)
        var stricter: [String: Int] = [:]
        var intended: [String: Int] = [:]
        var reported: [String: Int] = [:]
        var reportedExamples: [String: String] = [:]
        var findings: [String: Int] = [:]
        var examples: [String] = []
        var agreed = 0

        for _ in 0..<mutants {
            var bytes = Self.seeds.randomElement(using: &rng)!
            var applied: [String] = []
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let mutation = Mutation.allCases.randomElement(using: &rng)!
                if let mutated = mutation.apply(to: bytes, using: &rng) {
                    bytes = mutated
                    applied.append(mutation.rawValue)
                }
            }
            let ours = Self.ourTranscript(bytes)
            let llhttp = Self.llhttpTranscript(bytes)
            switch Self.compare(bytes, ours: ours, llhttp: llhttp) {
            case .agree:
                agreed += 1
            case .stricter(let category):
                stricter[category, default: 0] += 1
            case .intendedLeniency(let category):
                intended[category, default: 0] += 1
            case .reportedLeniency(let category):
                reported[category, default: 0] += 1
                if reportedExamples[category] == nil { reportedExamples[category] = Self.escape(bytes) }
            case .lenient(let category, let detail), .disagreement(let category, let detail):
                findings[category, default: 0] += 1
                // The first of each kind, up to 20: enough to see what went wrong.
                if findings[category] == 1 && examples.count < 20 {
                    examples.append(
                        "\(category) [mutations: \(applied.joined(separator: ", "))]\n    input \(Self.escape(bytes))\n"
                            + "    \(detail)\n    ours \(Self.summary(ours))\n    llhttp \(Self.summary(llhttp))")
                }
            }
        }

        print("HTTP/1 differential against llhttp: \(mutants) mutants, \(agreed) without a difference")
        print("  llhttp accepts, we refuse (by our failure):", Self.counts(stricter))
        print("  we accept, llhttp refuses, intended:", Self.counts(intended))
        print("  we accept, llhttp refuses, reported (not asserted):", Self.counts(reported))
        for (category, example) in reportedExamples.sorted(by: { $0.key < $1.key }) {
            print("    e.g. \(category): \(example)")
        }
        if !examples.isEmpty {
            XCTFail(
                "Read differently from llhttp (\(findings.values.reduce(0, +)) mutants; \(Self.counts(findings))):\n"
                    + examples.joined(separator: "\n"))
        }
    }

    static func counts(_ counts: [String: Int]) -> String {
        guard !counts.isEmpty else { return "none" }
        // Most frequent first; ties by name, so the output is stable.
        let sorted = counts.sorted { ($0.value, $1.key) > ($1.value, $0.key) }
        return sorted.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }

    // MARK: Classic smuggling payloads

    /// Follows every payload, so that a parser ending the payload's request early or late
    /// shows as a different count of requests or a different body.
    static let probe = "GET /probe HTTP/1.1\r\nHost: a\r\n\r\n"

    static func chunked(_ fields: String, _ body: String = "5\r\nhello\r\n0\r\n\r\n") -> String {
        "POST / HTTP/1.1\r\nHost: a\r\n" + fields + "\r\n\r\n" + body + probe
    }

    static func sized(_ fields: String, _ body: String = "hello") -> String {
        "POST / HTTP/1.1\r\nHost: a\r\n" + fields + "\r\n\r\n" + body + probe
    }

    static let smugglingPayloads: [(name: String, bytes: String)] = {
        var payloads: [(String, String)] = [
            ("CL.TE", chunked("Content-Length: 6\r\nTransfer-Encoding: chunked", "0\r\n\r\nG")),
            ("TE.CL", chunked("Transfer-Encoding: chunked\r\nContent-Length: 3", "8\r\nSMUGGLED\r\n0\r\n\r\n")),
            ("HTTP/1.0 with chunked", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + probe),
            ("NUL in the target", "GET /a\u{0}b HTTP/1.1\r\nHost: a\r\n\r\n" + probe),
            ("NUL ending the target", "GET /a\u{0} HTTP/1.1\r\nHost: a\r\n\r\n" + probe),
            ("bare LF ending a field line", chunked("X: y\nTransfer-Encoding: chunked")),
            ("bare CR in a field line", chunked("X: y\rTransfer-Encoding: chunked")),
            // A parser that ignores trailers (ends the body at `0\r\n`) sees a second request.
            (
                "request in the trailer section",
                chunked("Transfer-Encoding: chunked", "0\r\nGET /hidden HTTP/1.1\r\nHost: a\r\n\r\n")
            ),
        ]
        // TE.TE: an obfuscated Transfer-Encoding, alone and next to a Content-Length.
        let obfuscated = [
            "Transfer-Encoding: xchunked", "Transfer-Encoding: chunked\t", "Transfer-Encoding:\tchunked",
            "Transfer-Encoding:  chunked", "X: y\r\n Transfer-Encoding: chunked", "Transfer-Encoding : chunked",
            "Transfer-Encoding\t: chunked", "Transfer-Encoding: chunked\r\nTransfer-Encoding: x",
            "Transfer-Encoding: x\r\nTransfer-Encoding: chunked", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
            "Transfer-Encoding: chunked, identity", "Transfer-Encoding: identity, chunked", "Transfer-Encoding: chunked, chunked",
            "Transfer-Encoding: \"chunked\"", "Transfer-Encoding: chunked;q=1", "Transfer-Encoding: ch unked",
            "Transfer_Encoding: chunked", "Transfer-Encoding: \u{0B}chunked",
        ]
        for field in obfuscated {
            payloads.append(("TE.TE \(escape(field))", chunked(field)))
            payloads.append(("TE.TE \(escape(field)) + CL", chunked("Content-Length: 4\r\n" + field)))
        }
        let lengths = [
            "Content-Length: +5", "Content-Length: -5", "Content-Length: 5, 5", "Content-Length: 5,5",
            "Content-Length: 5\r\nContent-Length: 5", "Content-Length: 5\r\nContent-Length: 6", "Content-Length: 0x5",
            "Content-Length: 5 5", "Content-Length: 05", "Content-Length:5", "Content-Length: 5 ", "Content-Length: 5\t",
            "Content-Length : 5", "Content-Length: 5.0", "Content-Length: 99999999999999999999",
        ]
        payloads += lengths.map { ("CL \(escape($0))", sized($0)) }
        let chunkBodies = [
            "0005\r\nhello\r\n0\r\n\r\n", "5 \r\nhello\r\n0\r\n\r\n", "5\t\r\nhello\r\n0\r\n\r\n", "5 ;x\r\nhello\r\n0\r\n\r\n",
            "+5\r\nhello\r\n0\r\n\r\n", "-5\r\nhello\r\n0\r\n\r\n", "0x5\r\nhello\r\n0\r\n\r\n", " 5\r\nhello\r\n0\r\n\r\n",
            "5\r\nhello\r\n0 \r\n\r\n", "5 6\r\nhello\r\n0\r\n\r\n", "ffffffffffffffff5\r\nhello\r\n0\r\n\r\n",
            "5\nhello\r\n0\r\n\r\n", "5\r\nhello\n0\r\n\r\n", "5\r\nhello\r\n0\n\r\n", "5\r\nhello\r\n0\r\n\n",
            "5\rhello\r\n0\r\n\r\n", "5;x\nhello\r\n0\r\n\r\n", "5;x\rhello\r\n0\r\n\r\n", "5\r\nhelloXX0\r\n\r\n",
            "5\r\nhello\r\n0\r\nX: y\nZ: w\r\n\r\n",
        ]
        payloads += chunkBodies.map { ("chunks \(escape($0))", chunked("Transfer-Encoding: chunked", $0)) }
        return payloads
    }()

    /// Payloads we accept and llhttp refuses, for leniencies `Repair` reports as not intended
    /// (see there). Listed so the test stays green; remove an entry once the parser refuses it.
    static let knownDifferences: Set<String> = []

    /// Every payload: our parser refuses it, or ends every request where llhttp does, with the
    /// same head and body (refusing after some requests is fine if those agree); or llhttp
    /// refuses it for one of the intended leniencies of ours (`Repair`, `explainLeniency`).
    func testClassicSmugglingPayloadsAreRefusedOrReadAsLLHTTPReadsThem() {
        for (name, text) in Self.smugglingPayloads {
            let bytes = Array(text.utf8)
            let ours = Self.ourTranscript(bytes)
            let llhttp = Self.llhttpTranscript(bytes)
            let endedAlike = (0..<ours.completed).allSatisfy { index in
                index < llhttp.completed && ours.requests[index].head == llhttp.requests[index].head
                    && ours.requests[index].body == llhttp.requests[index].body
            }
            let safe = endedAlike && (ours.failed || (!llhttp.failed && ours.completed == llhttp.completed))
            let detail = "\(name): \(Self.escape(bytes))\n    ours \(Self.summary(ours))\n    llhttp \(Self.summary(llhttp))"
            if safe {
                XCTAssertFalse(Self.knownDifferences.contains(name), "fixed? remove it from knownDifferences: \(detail)")
                continue
            }
            switch Self.compare(bytes, ours: ours, llhttp: llhttp) {
            case .intendedLeniency: break
            case .reportedLeniency(let category): XCTAssert(Self.knownDifferences.contains(name), "\(category): \(detail)")
            default: XCTFail(detail)
            }
        }
    }
}
