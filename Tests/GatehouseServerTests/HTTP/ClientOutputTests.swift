import NIOCore
import NIOEmbedded
import XCTest
@testable import GatehouseServer

/// What leaves the gateway handler for the client, and when.
final class ClientOutputTests: XCTestCase {
    /// Stands where GatewayHandler stands: at the end of the pipeline, writing through its context.
    private final class Writer: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
    }

    private func channel() throws -> (EmbeddedChannel, ChannelHandlerContext) {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(Writer())
        return (channel, try channel.pipeline.syncOperations.context(handlerType: Writer.self))
    }

    func testSmallWritesLeaveAsOneBufferAtTheFlush() throws {
        let (channel, context) = try channel()
        var output = ClientOutput()
        for text in ["HTTP/1.1 200 OK\r\n\r\n", "", "hello"] { output.write(ByteBuffer(string: text), context: context) }
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self), "nothing leaves before the flush")
        XCTAssertEqual(output.heldBytes, 24)
        output.flush(context: context)
        XCTAssertEqual(try channel.readOutbound(as: ByteBuffer.self), ByteBuffer(string: "HTTP/1.1 200 OK\r\n\r\nhello"))
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self))
        XCTAssertEqual(output.heldBytes, 0, "nothing is held past a flush")
    }

    func testJoiningASliceNeverChangesTheBufferItCameFrom() throws {
        let (channel, context) = try channel()
        var output = ClientOutput()
        let shared = ByteBuffer(string: "abcdef")
        output.write(shared.getSlice(at: 0, length: 3)!, context: context)
        output.write(ByteBuffer(string: "XYZ"), context: context)
        output.flush(context: context)
        XCTAssertEqual(try channel.readOutbound(as: ByteBuffer.self), ByteBuffer(string: "abcXYZ"))
        XCTAssertEqual(shared, ByteBuffer(string: "abcdef"), "the first write is kept as is, and copied only when joined")
    }

    func testLargeWritesPassThroughInOrder() throws {
        let (channel, context) = try channel()
        var output = ClientOutput()
        let large = ByteBuffer(repeating: 0x78, count: ClientOutput.maxJoinedBytes)
        output.write(ByteBuffer(string: "head"), context: context)
        output.write(large, context: context)
        output.write(ByteBuffer(string: "tail"), context: context)
        output.flush(context: context)
        XCTAssertEqual(try channel.readOutbound(as: ByteBuffer.self), ByteBuffer(string: "head"))
        XCTAssertEqual(try channel.readOutbound(as: ByteBuffer.self), large)
        XCTAssertEqual(try channel.readOutbound(as: ByteBuffer.self), ByteBuffer(string: "tail"))
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self))
    }

    func testJoinedWritesStopAtTheBoundAndKeepTheirOrder() throws {
        let (channel, context) = try channel()
        var output = ClientOutput()
        let piece = ByteBuffer(repeating: 0x61, count: ClientOutput.maxJoinedBytes / 2 + 1)
        output.write(piece, context: context)
        output.write(piece, context: context)  // would pass the bound: the first goes on alone
        XCTAssertEqual(output.heldBytes, piece.readableBytes, "only the second is held")
        output.flush(context: context)
        XCTAssertEqual(try channel.readOutbound(as: ByteBuffer.self), piece)
        XCTAssertEqual(try channel.readOutbound(as: ByteBuffer.self), piece)
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self))
    }

    /// The close after a last response waits for this promise: it must complete after the
    /// held bytes are written, also when nothing is held.
    func testTheFlushPromiseCompletesAfterWhatWasHeld() throws {
        let (channel, context) = try channel()
        var output = ClientOutput()
        output.write(ByteBuffer(string: "last response"), context: context)
        let written = channel.eventLoop.makePromise(of: Void.self)
        var completed = false
        written.futureResult.whenSuccess { completed = true }
        output.flush(context: context, promise: written)
        XCTAssertTrue(completed)
        XCTAssertEqual(try channel.readOutbound(as: ByteBuffer.self), ByteBuffer(string: "last response"))

        let nothingHeld = channel.eventLoop.makePromise(of: Void.self)
        var completedEmpty = false
        nothingHeld.futureResult.whenSuccess { completedEmpty = true }
        output.flush(context: context, promise: nothingHeld)
        XCTAssertTrue(completedEmpty, "an empty write carries the promise")
    }

    func testDiscardedBytesNeverLeave() throws {
        let (channel, context) = try channel()
        var output = ClientOutput()
        output.write(ByteBuffer(string: "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\npart"), context: context)
        output.discard()
        output.flush(context: context)
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self))
    }
}
