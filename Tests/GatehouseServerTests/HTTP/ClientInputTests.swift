import NIOCore
import XCTest

@testable import GatehouseServer

/// `ClientInput` must never keep a reference to a read's buffer past the read: NIOSSL
/// decrypts into the same 32 KiB buffer only while nothing else holds it, and allocated a new
/// one per request when the gateway kept an emptied slice of it (5 % of the CPU per request).
final class ClientInputTests: XCTestCase {
    private let allocator = ByteBufferAllocator()

    private func read(_ text: String) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 32 * 1024)
        buffer.writeString(text)
        return buffer
    }

    private func baseAddress(_ buffer: ByteBuffer) -> UnsafeRawPointer? {
        buffer.withUnsafeReadableBytes { $0.baseAddress }
    }

    func testAReadIsParsedInPlace() {
        let bytes = read("GET / HTTP/1.1\r\n\r\n")
        var input = ClientInput()
        input.append(bytes)
        XCTAssertEqual(baseAddress(input.bytes), baseAddress(bytes))
    }

    func testAnEmptiedReadIsLetGo() {
        var input = ClientInput()
        input.append(read("GET / HTTP/1.1\r\n\r\n"))
        input.bytes.moveReaderIndex(forwardBy: input.count)  // the parser consumed it all
        input.endOfRead(allocator: allocator)
        XCTAssertEqual(input.count, 0)
        XCTAssertEqual(input.bytes.capacity, 0, "still holds the read's storage")
    }

    func testLeftoversAreCopiedOutOfTheRead() {
        let request = "GET /a HTTP/1.1\r\n\r\n"
        let next = "GET /b HT"
        let bytes = read(request + next)
        var input = ClientInput()
        input.append(bytes)
        input.bytes.moveReaderIndex(forwardBy: request.utf8.count)
        input.endOfRead(allocator: allocator)
        XCTAssertEqual(input.bytes.getString(at: input.bytes.readerIndex, length: input.count), next)
        let readStart = baseAddress(bytes)!
        let readRange = readStart..<readStart.advanced(by: bytes.capacity)
        XCTAssertFalse(readRange.contains(baseAddress(input.bytes)!), "leftovers still point into the read's buffer")
    }

    func testAReadAfterLeftoversIsAppendedToOurOwnCopy() {
        var input = ClientInput()
        input.append(read("GET /b HT"))
        input.endOfRead(allocator: allocator)
        let second = read("TP/1.1\r\n\r\n")
        input.append(second)
        XCTAssertEqual(input.bytes.getString(at: input.bytes.readerIndex, length: input.count), "GET /b HTTP/1.1\r\n\r\n")
        XCTAssertNotEqual(baseAddress(input.bytes), baseAddress(second))
        let joined = baseAddress(input.bytes)
        input.endOfRead(allocator: allocator)  // ours already: kept as it is, not copied again
        XCTAssertEqual(baseAddress(input.bytes), joined)
    }

    func testDiscardLetsGoOfEverything() {
        var input = ClientInput()
        input.append(read("GET / HTTP/1.1\r\n\r\n"))
        input.discard()
        XCTAssertEqual(input.count, 0)
        XCTAssertEqual(input.bytes.capacity, 0)
    }
}
