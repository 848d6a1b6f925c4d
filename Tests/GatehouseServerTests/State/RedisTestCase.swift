import Dispatch
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import XCTest

@testable import GatehouseServer

/// Shared set-up of the tests against a real `redis-server`: an event loop group of two
/// loops, the server, and clients that are closed before the group shuts down.
class RedisTestCase: XCTestCase {
    var group: MultiThreadedEventLoopGroup!
    var server: RedisServer!
    private var closers: [() -> EventLoopFuture<Void>] = []

    override func setUpWithError() throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    }

    override func tearDownWithError() throws {
        for close in closers { try close().wait() }
        closers = []
        server?.stop()
        server = nil
        try group.syncShutdownGracefully()
    }

    func settings(port: Int? = nil, timeout: Duration = .milliseconds(50), connections: Int = 2) -> RedisStoreSettings {
        var settings = RedisStoreSettings(host: "127.0.0.1", port: port ?? server.port, environment: "test")
        settings.timeout = timeout
        settings.connections = connections
        settings.keyPrefix = "gh-test:"
        return settings
    }

    var logger: Logger {
        var logger = Logger(label: "redis-test")
        logger.logLevel = .critical
        return logger
    }

    func makeClient(_ settings: RedisStoreSettings, setupCommands: [RedisCommand] = []) throws -> RedisClient {
        let client = try RedisClient(settings: settings, group: group, setupCommands: setupCommands, logger: logger)
        closers.append { client.close() }
        return client
    }

    func makeStore(_ settings: RedisStoreSettings, metrics: (any MetricsFactory)? = nil) throws -> RedisStateStore {
        let store = try RedisStateStore(settings: settings, group: group, logger: logger, metricsFactory: metrics ?? NOOPMetricsHandler.instance)
        closers.append { store.close() }
        return store
    }

    /// A client for the test's own commands (SCRIPT FLUSH, CLIENT PAUSE, PTTL): one connection,
    /// generous timeout, password as configured on the server.
    func makeAdminClient() throws -> RedisClient {
        var settings = settings(timeout: .seconds(5), connections: 1)
        settings.password = server.password.map { Array($0.utf8) }
        let client = try makeClient(settings)
        XCTAssertTrue(waitUntilConnected(client), "admin client connects")
        return client
    }

    /// Stops the server answering any client for `milliseconds`, and returns only once it has:
    /// CLIENT PAUSE answers when the pause is in effect, so the test's next command is certain
    /// to go unanswered. (A DEBUG SLEEP sent without waiting for it, plus a guessed 50 ms, now
    /// and then let that command through first on a loaded machine.)
    func pauseServer(milliseconds: Int, using admin: RedisClient, file: StaticString = #filePath, line: UInt = #line) throws {
        let paused = try value(admin.send(RedisCommand("CLIENT", "PAUSE", .string(String(milliseconds)), "ALL"), on: group.next()))
        XCTAssertEqual(paused, .simpleString("OK"), file: file, line: line)
    }

    /// Waits at most `timeout` seconds until the client has a connection up.
    func waitUntilConnected(_ client: RedisClient, timeout: TimeInterval = 5) -> Bool {
        RedisServer.waitUntil(timeout: timeout) { client.isConnected }
    }

    /// The future's result, waiting at most `timeout` seconds (a hang fails the test).
    func result<T: Sendable>(_ future: EventLoopFuture<T>, timeout: TimeInterval = 5, file: StaticString = #filePath, line: UInt = #line) throws -> Result<T, Error> {
        let box = NIOLockedValueBox<Result<T, Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        future.whenComplete { result in
            box.withLockedValue { $0 = result }
            done.signal()
        }
        guard done.wait(timeout: .now() + timeout) == .success, let result = box.withLockedValue({ $0 }) else {
            XCTFail("no answer within \(timeout) s", file: file, line: line)
            throw RedisServerError("no answer within \(timeout) s")
        }
        return result
    }

    func value<T: Sendable>(_ future: EventLoopFuture<T>, timeout: TimeInterval = 5, file: StaticString = #filePath, line: UInt = #line) throws -> T {
        try result(future, timeout: timeout, file: file, line: line).get()
    }

    func value<T: Sendable>(_ answer: StateAnswer<T>, on loop: any EventLoop, file: StaticString = #filePath, line: UInt = #line) throws -> T {
        switch answer {
        case .now(let value): return value
        case .later(let future):
            XCTAssertTrue(future.eventLoop === loop, "answered on the caller's loop", file: file, line: line)
            return try value(future, file: file, line: line)
        }
    }
}
