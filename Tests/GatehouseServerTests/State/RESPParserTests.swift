import NIOCore
import NIOEmbedded
import XCTest

@testable import GatehouseServer

final class RESPParserTests: XCTestCase {
    private func buffer(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    private func bulk(_ text: String) -> RESPValue { .bulkString(ByteBuffer(string: text)) }

    /// Every reply type, with what it must parse to.
    private let cases: [(String, RESPValue)] = [
        ("+OK\r\n", .simpleString("OK")),
        ("+\r\n", .simpleString("")),
        ("-NOSCRIPT No matching script. Please use EVAL.\r\n", .error("NOSCRIPT No matching script. Please use EVAL.")),
        (":0\r\n", .integer(0)),
        (":-42\r\n", .integer(-42)),
        (":9223372036854775807\r\n", .integer(.max)),
        ("$5\r\nhello\r\n", .bulkString(ByteBuffer(string: "hello"))),
        ("$0\r\n\r\n", .bulkString(ByteBuffer())),
        ("$4\r\na\r\nb\r\n", .bulkString(ByteBuffer(string: "a\r\nb"))),  // binary safe
        ("$-1\r\n", .bulkString(nil)),
        ("*0\r\n", .array([])),
        ("*-1\r\n", .array(nil)),
        ("*4\r\n:1\r\n:3\r\n:0\r\n:1500\r\n", .array([.integer(1), .integer(3), .integer(0), .integer(1500)])),
        (
            "*3\r\n$3\r\nfoo\r\n*2\r\n+a\r\n$-1\r\n-ERR x\r\n",
            .array([.bulkString(ByteBuffer(string: "foo")), .array([.simpleString("a"), .bulkString(nil)]), .error("ERR x")])
        ),
    ]

    func testEveryReplyTypeParsesWhole() throws {
        let parser = RESPParser()
        for (wire, expected) in cases {
            var input = buffer(wire)
            XCTAssertEqual(try parser.parse(&input), expected, wire.debugDescription)
            XCTAssertEqual(input.readableBytes, 0, "consumed all of \(wire.debugDescription)")
        }
    }

    /// A reply split at any byte boundary parses the same, and nothing is consumed until it
    /// is complete.
    func testEveryReplySplitAtEveryByteBoundary() throws {
        let parser = RESPParser()
        for (wire, expected) in cases {
            let bytes = Array(wire.utf8)
            for split in 1..<bytes.count {
                var input = ByteBuffer(bytes: bytes[..<split])
                XCTAssertNil(try parser.parse(&input), "\(wire.debugDescription) cut at \(split)")
                XCTAssertEqual(input.readableBytes, split, "nothing consumed before the reply is complete")
                input.writeBytes(bytes[split...])
                XCTAssertEqual(try parser.parse(&input), expected, "\(wire.debugDescription) cut at \(split)")
                XCTAssertEqual(input.readableBytes, 0)
            }
        }
    }

    /// The decoder in a pipeline, fed one byte per read: several pipelined replies come out
    /// whole and in order.
    func testDecoderFedOneByteAtATime() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(RESPReplyDecoder()))
        let wire = cases.map(\.0).joined()
        for byte in wire.utf8 {
            try channel.writeInbound(ByteBuffer(bytes: [byte]))
        }
        var received: [RESPValue] = []
        while let value = try channel.readInbound(as: RESPValue.self) { received.append(value) }
        XCTAssertEqual(received, cases.map(\.1))
        XCTAssertTrue(try channel.finish().isClean)
    }

    func testOversizedBulkStringIsRejectedBeforeItsBytesArrive() {
        let parser = RESPParser(limits: RESPParser.Limits(maxBulkLength: 1024))
        var input = buffer("$1025\r\n")
        XCTAssertThrowsError(try parser.parse(&input)) { error in
            XCTAssertTrue("\(error)".contains("exceeds the limit"), "\(error)")
        }
        var fits = buffer("$1024\r\n" + String(repeating: "x", count: 1024) + "\r\n")
        XCTAssertEqual(try parser.parse(&fits), bulk(String(repeating: "x", count: 1024)))
    }

    func testDefaultBulkLimitIsOneMebibyte() {
        var input = buffer("$\(1 << 20 + 1)\r\n")
        XCTAssertThrowsError(try RESPParser().parse(&input))
    }

    func testTooDeepAndTooLargeArraysAreRejected() {
        let parser = RESPParser(limits: RESPParser.Limits(maxArrayCount: 4, maxDepth: 3))
        var deep = buffer(String(repeating: "*1\r\n", count: 4) + ":1\r\n")
        XCTAssertThrowsError(try parser.parse(&deep)) { XCTAssertTrue("\($0)".contains("nested deeper"), "\($0)") }
        var deepest = buffer(String(repeating: "*1\r\n", count: 3) + ":1\r\n")
        XCTAssertEqual(try parser.parse(&deepest), .array([.array([.array([.integer(1)])])]))
        var wide = buffer("*5\r\n")
        XCTAssertThrowsError(try parser.parse(&wide)) { XCTAssertTrue("\($0)".contains("array of 5"), "\($0)") }
        // A hostile server announcing a huge array costs an error, not an allocation.
        var huge = buffer("*2147483647\r\n")
        XCTAssertThrowsError(try RESPParser().parse(&huge))
    }

    func testMalformedRepliesAreRejected() {
        let parser = RESPParser(limits: RESPParser.Limits(maxLineLength: 16))
        let malformed = [
            ":12a\r\n", ":\r\n", ":-\r\n", ":99999999999999999999\r\n", "$-2\r\n", "$3\r\nabcd\r\n",
            "+OK\rX", "+O\nK\r\n", "?what\r\n",
            "%1\r\n+a\r\n+b\r\n",  // RESP3 map: this client speaks RESP2 only
            "_\r\n",  // RESP3 null
            "+" + String(repeating: "a", count: 17),  // a line with no end, over the limit
        ]
        for wire in malformed {
            var input = buffer(wire)
            XCTAssertThrowsError(try parser.parse(&input), wire.debugDescription)
        }
    }

    /// An incomplete reply may not hold more than `maxReplyBytes`: a server that never
    /// finishes an array of small elements is cut off.
    func testDecoderBoundsTheBytesOfOneIncompleteReply() throws {
        let limits = RESPParser.Limits(maxReplyBytes: 100)
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(RESPReplyDecoder(limits: limits)))
        try channel.writeInbound(ByteBuffer(string: "*1000\r\n"))
        XCTAssertThrowsError(try channel.writeInbound(ByteBuffer(string: String(repeating: ":1\r\n", count: 30)))) { error in
            XCTAssertTrue("\(error)".contains("incomplete reply over 100 bytes"), "\(error)")
        }
        _ = try? channel.finish()
    }

    func testCommandsAreArraysOfBulkStrings() {
        var buffer = ByteBuffer()
        RedisCommand("SET", "k", .bytes([0, 13, 10]), "NX").encode(into: &buffer)
        XCTAssertEqual(String(buffer: buffer), "*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n\0\r\n\r\n$2\r\nNX\r\n")
        var unicode = ByteBuffer()
        RedisCommand("ECHO", "é").encode(into: &unicode)
        XCTAssertEqual(String(buffer: unicode), "*2\r\n$4\r\nECHO\r\n$2\r\né\r\n")
    }
}
