import NIOCore
import NIOEmbedded
import XCTest
@testable import GatehouseServer

final class WriteCoalescingHandlerTests: XCTestCase {
    private func channel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(WriteCoalescingHandler())
        return channel
    }

    func testSmallWritesBecomeOneBufferAtTheFlush() throws {
        let channel = try channel()
        var completed = 0
        for text in ["HTTP/1.1 200 OK\r\n\r\n", "", "hello"] {
            let promise = channel.eventLoop.makePromise(of: Void.self)
            promise.futureResult.whenSuccess { completed += 1 }
            channel.write(ByteBuffer(string: text), promise: promise)
        }
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self), "nothing leaves before the flush")
        channel.flush()
        XCTAssertEqual(try channel.readOutbound(as: ByteBuffer.self), ByteBuffer(string: "HTTP/1.1 200 OK\r\n\r\nhello"))
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self))
        XCTAssertEqual(completed, 3)
    }

    func testJoiningASliceNeverChangesTheBufferItCameFrom() throws {
        let channel = try channel()
        let shared = ByteBuffer(string: "abcdef")
        channel.write(shared.getSlice(at: 0, length: 3)!, promise: nil)
        channel.write(ByteBuffer(string: "XYZ"), promise: nil)
        channel.flush()
        XCTAssertEqual(try channel.readOutbound(as: ByteBuffer.self), ByteBuffer(string: "abcXYZ"))
        XCTAssertEqual(shared, ByteBuffer(string: "abcdef"), "the first write is kept as is, and copied only when joined")
    }

    func testASingleSmallWriteLeavesAsItCame() throws {
        let channel = try channel()
        channel.write(ByteBuffer(string: "only"), promise: nil)
        channel.flush()
        XCTAssertEqual(try channel.readOutbound(as: ByteBuffer.self), ByteBuffer(string: "only"))
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self))
    }

    func testLargeWritesPassThroughInOrder() throws {
        let channel = try channel()
        let large = ByteBuffer(repeating: 0x78, count: WriteCoalescingHandler.maxCoalescedBytes)
        channel.write(ByteBuffer(string: "head"), promise: nil)
        channel.write(large, promise: nil)
        channel.write(ByteBuffer(string: "tail"), promise: nil)
        channel.flush()
        XCTAssertEqual(try channel.readOutbound(as: ByteBuffer.self), ByteBuffer(string: "head"))
        XCTAssertEqual(try channel.readOutbound(as: ByteBuffer.self), large)
        XCTAssertEqual(try channel.readOutbound(as: ByteBuffer.self), ByteBuffer(string: "tail"))
    }

    func testAnUnflushedWriteStillCompletesItsPromiseOnClose() throws {
        let channel = try channel()
        let promise = channel.eventLoop.makePromise(of: Void.self)
        var result: Result<Void, Error>?
        promise.futureResult.whenComplete { result = $0 }
        channel.write(ByteBuffer(string: "never flushed"), promise: promise)
        _ = channel.close()
        XCTAssertNotNil(result, "a held write must not leave its promise hanging")
    }
}
