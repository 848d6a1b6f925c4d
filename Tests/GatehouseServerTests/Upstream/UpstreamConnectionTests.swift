import NIOCore
import NIOEmbedded
import NIOHTTP1
import XCTest
@testable import GatehouseServer

/// The bytes a request puts on an upstream connection, and which of its ends need a flush.
final class UpstreamConnectionTests: XCTestCase {
    private func connection() throws -> (UpstreamConnection, EmbeddedChannel) {
        let handler = UpstreamClientHandler()
        let channel = EmbeddedChannel(handler: handler)
        return (UpstreamConnection(channel: channel, endpointIndex: 0, endpointLabel: "127.0.0.1:1", handler: handler), channel)
    }

    private func head(_ method: HTTPMethod = .GET) -> UpstreamRequestHead {
        var head = UpstreamRequestHead(method: method, uri: "/a?b=c", allocator: ByteBufferAllocator())
        head.add("host", "example")
        head.add("x-forwarded-for", "192.0.2.1")
        head.finish()
        return head
    }

    func testTheHeadIsTheRequestLineAndEachFieldOnItsOwnLine() throws {
        let (connection, channel) = try connection()
        defer { _ = try? channel.finish() }
        connection.writeHead(head(), chunked: false)
        channel.flush()
        let written = try XCTUnwrap(channel.readOutbound(as: ByteBuffer.self))
        XCTAssertEqual(String(buffer: written), "GET /a?b=c HTTP/1.1\r\nhost: example\r\nx-forwarded-for: 192.0.2.1\r\n\r\n")
    }

    /// A request without a chunked body ends with nothing to write, and says so: the gateway
    /// then does not flush the upstream pipeline for nothing (once per GET).
    func testTheEndOfAnUnchunkedRequestWritesNothingAndNeedsNoFlush() throws {
        let (connection, channel) = try connection()
        defer { _ = try? channel.finish() }
        connection.writeHead(head(), chunked: false)
        channel.flush()
        _ = try channel.readOutbound(as: ByteBuffer.self)
        XCTAssertFalse(connection.writeEnd())
        channel.flush()
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self))
    }

    func testTheEndOfAChunkedRequestIsTheLastChunkAndNeedsAFlush() throws {
        let (connection, channel) = try connection()
        defer { _ = try? channel.finish() }
        connection.writeHead(head(.POST), chunked: true)
        connection.writeBody(ByteBuffer(string: "hello"))
        XCTAssertTrue(connection.writeEnd())
        channel.flush()
        var written = ""
        while let part = try channel.readOutbound(as: ByteBuffer.self) { written += String(buffer: part) }
        XCTAssertTrue(written.hasSuffix("\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), written)
    }
}
