import NIOConcurrencyHelpers
import NIOCore
import Logging
import NIOEmbedded
import NIOPosix
import XCTest

@testable import GatehouseServer

final class RedisConnectionHandlerTests: XCTestCase {
    private func makeChannel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(RedisConnectionHandler())
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 6379)).wait()
        return channel
    }

    private func send(_ channel: EmbeddedChannel, _ command: RedisCommand, timeout: TimeAmount = .milliseconds(50)) -> EventLoopFuture<RESPValue> {
        let promise = channel.eventLoop.makePromise(of: RESPValue.self)
        channel.sendRedisRequest(RedisRequest(command: command, promise: promise, timeout: timeout))
        return promise.futureResult
    }

    /// What reached the socket: the handler flushes once per event-loop pass, so run the
    /// loop's pending tasks first.
    private func outbound(_ channel: EmbeddedChannel) throws -> String? {
        channel.embeddedEventLoop.run()
        return try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) }
    }

    private func result(_ future: EventLoopFuture<RESPValue>) -> Result<RESPValue, Error>? {
        // EmbeddedEventLoop: a completed future runs the callback at once, on this thread.
        let box = NIOLockedValueBox<Result<RESPValue, Error>?>(nil)
        future.whenComplete { result in box.withLockedValue { $0 = result } }
        return box.withLockedValue { $0 }
    }

    func testPipelinedRepliesMatchCommandsInOrder() throws {
        let channel = try makeChannel()
        let first = send(channel, RedisCommand("GET", "a"))
        let second = send(channel, RedisCommand("GET", "b"))
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self), "written, not yet flushed: both leave together")
        XCTAssertEqual(try outbound(channel), "*2\r\n$3\r\nGET\r\n$1\r\na\r\n")
        XCTAssertEqual(try outbound(channel), "*2\r\n$3\r\nGET\r\n$1\r\nb\r\n")
        XCTAssertNil(result(first), "no reply yet")
        try channel.writeInbound(RESPValue.integer(1))
        try channel.writeInbound(RESPValue.error("ERR no"))
        XCTAssertEqual(try result(first)?.get(), .integer(1))
        XCTAssertEqual(try result(second)?.get(), .error("ERR no"), "an error reply is the server's answer")
        XCTAssertTrue(channel.isActive)
        _ = try channel.finish()
    }

    /// A late reply cannot be matched safely any more: the timed-out command and every one
    /// behind it fail, and the connection closes.
    func testTimeoutFailsEveryCommandInFlightAndClosesTheConnection() throws {
        let channel = try makeChannel()
        let first = send(channel, RedisCommand("GET", "a"), timeout: .milliseconds(50))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(30))
        let second = send(channel, RedisCommand("GET", "b"), timeout: .milliseconds(50))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(19))
        XCTAssertNil(result(first), "not yet timed out at 49 ms")
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        for future in [first, second] {
            XCTAssertThrowsError(try result(future)?.get()) { error in
                XCTAssertEqual((error as? RedisClientError)?.kind, .timeout)
                XCTAssertTrue("\(error)".contains("no reply to GET within 50 ms"), "\(error)")
            }
        }
        XCTAssertFalse(channel.isActive, "closed after the timeout")
        let later = send(channel, RedisCommand("PING"))
        XCTAssertThrowsError(try result(later)?.get(), "a closed connection refuses new commands at once")
    }

    /// Between a failure and the close taking effect, a new command is refused as
    /// `unavailable` and never sent: the failure was counted once, with the commands it failed.
    func testACommandWrittenAfterTheConnectionFailedIsRefusedAsUnavailable() throws {
        let channel = EmbeddedChannel()
        // Holds the handler's close back, as a close still under way on a real socket would.
        let holder = CloseHolder()
        try channel.pipeline.syncOperations.addHandler(holder)
        try channel.pipeline.syncOperations.addHandler(RedisConnectionHandler())
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 6379)).wait()
        let first = send(channel, RedisCommand("GET", "a"), timeout: .milliseconds(50))
        XCTAssertNotNil(try outbound(channel))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(50))
        XCTAssertThrowsError(try result(first)?.get()) { XCTAssertEqual(($0 as? RedisClientError)?.kind, .timeout) }
        XCTAssertTrue(channel.isActive, "the close is held back")
        let later = send(channel, RedisCommand("PING"))
        XCTAssertThrowsError(try result(later)?.get()) { error in
            XCTAssertEqual((error as? RedisClientError)?.kind, .unavailable, "\(error)")
        }
        XCTAssertNil(try outbound(channel), "never sent")
        holder.holding = false
        _ = try? channel.finish()
    }

    private final class CloseHolder: ChannelOutboundHandler {
        typealias OutboundIn = Any
        var holding = true
        func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
            if !holding { context.close(mode: mode, promise: promise) }
        }
    }

    /// The timer follows the head of the queue: an answered head moves it to the next.
    func testAnsweredCommandsDoNotTimeOut() throws {
        let channel = try makeChannel()
        let first = send(channel, RedisCommand("GET", "a"), timeout: .milliseconds(50))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(40))
        let second = send(channel, RedisCommand("GET", "b"), timeout: .milliseconds(50))
        try channel.writeInbound(RESPValue.integer(1))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(40))  // 80 ms: first's deadline long gone
        XCTAssertNil(result(second), "second still has 10 ms")
        try channel.writeInbound(RESPValue.integer(2))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(100))
        XCTAssertEqual(try result(first)?.get(), .integer(1))
        XCTAssertEqual(try result(second)?.get(), .integer(2))
        XCTAssertTrue(channel.isActive)
        _ = try channel.finish()
    }

    func testUnsolicitedReplyClosesTheConnection() throws {
        let channel = try makeChannel()
        try channel.writeInbound(RESPValue.simpleString("OK"))
        XCTAssertFalse(channel.isActive)
    }

    func testConnectionLossFailsCommandsInFlight() throws {
        let channel = try makeChannel()
        let pending = send(channel, RedisCommand("GET", "a"))
        try channel.close().wait()
        XCTAssertThrowsError(try result(pending)?.get()) { error in
            XCTAssertEqual((error as? RedisClientError)?.kind, .connectionClosed)
        }
    }

    func testBackoffDoublesUpToTheMaximumWithJitterInTheUpperHalf() {
        let initial = TimeAmount.milliseconds(50)
        let maximum = TimeAmount.seconds(1)
        for (failures, full) in [(0, 50), (1, 100), (2, 200), (4, 800), (5, 1000), (60, 1000)] {
            for _ in 0..<20 {
                let delay = RedisConnectionSlot.backoffDelay(failures: failures, initial: initial, maximum: maximum)
                XCTAssertGreaterThanOrEqual(delay, .milliseconds(Int64(full / 2)), "failures \(failures)")
                XCTAssertLessThanOrEqual(delay, .milliseconds(Int64(full)), "failures \(failures)")
            }
        }
    }

    func testKeysCarryEnvironmentAndHashTagButNotTheRawKey() {
        let keyspace = RedisKeyspace(keyPrefix: "gh:", environment: "prod")
        let key = keyspace.key(.replay, "delivery-12345/secret")
        XCTAssertTrue(key.hasPrefix("gh:prod:{r:"), key)
        XCTAssertTrue(key.hasSuffix("}"), key)
        XCTAssertEqual(key.count, "gh:prod:{r:}".count + 22)
        XCTAssertFalse(key.contains("12345"))
        XCTAssertNil(key.dropFirst(11).dropLast().first { !($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
        XCTAssertNotEqual(keyspace.key(.rateCell, "delivery-12345/secret"), key)
        XCTAssertEqual(keyspace.key(.replay, "delivery-12345/secret"), key, "stable")
        XCTAssertNotEqual(RedisKeyspace(keyPrefix: "gh:", environment: "staging").key(.replay, "delivery-12345/secret"), key)
    }

    func testAddressesParse() {
        XCTAssertTrue(RedisStoreSettings.parseAddress("redis.internal:6380")! == ("redis.internal", 6380))
        XCTAssertTrue(RedisStoreSettings.parseAddress("10.0.0.5")! == ("10.0.0.5", 6379))
        XCTAssertTrue(RedisStoreSettings.parseAddress("[::1]:7000")! == ("::1", 7000))
        for bad in ["", ":6379", "host:", "host:0", "host:70000", "[::1", "[::1]x", "host:abc"] {
            XCTAssertNil(RedisStoreSettings.parseAddress(bad), bad)
        }
    }

    func testSettingsProblemsAreNamedAndRefused() {
        var settings = RedisStoreSettings(host: "127.0.0.1", port: 6379, environment: "prod")
        XCTAssertEqual(settings.problems, [])
        settings.keyPrefix = "gh:{x}:"
        settings.connections = 0
        settings.timeout = .zero
        XCTAssertEqual(settings.problems.count, 3, "\(settings.problems)")
        XCTAssertTrue(settings.problems.contains { $0.hasPrefix("state.key_prefix") })
        XCTAssertThrowsError(try RedisClient(settings: settings, group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "test")))
    }
}
