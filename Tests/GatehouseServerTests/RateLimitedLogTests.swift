import Logging
import NIOConcurrencyHelpers
import NIOCore
import XCTest

@testable import GatehouseServer

final class RateLimitedLogTests: XCTestCase {
    /// Collects what was logged.
    struct CapturingHandler: LogHandler {
        let lines: NIOLockedValueBox<[(String, Logger.Metadata)]>
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            lines.withLockedValue { $0.append(("\(event.message)", event.metadata ?? [:])) }
        }
    }

    func testOneLinePerIntervalCountingTheRest() throws {
        let lines = NIOLockedValueBox<[(String, Logger.Metadata)]>([])
        let logger = Logger(label: "test") { _ in CapturingHandler(lines: lines) }
        let log = RateLimitedLog(interval: .milliseconds(200))
        for _ in 0..<4 { log.warning(logger, "refused", metadata: ["upstream": "ledger"]) }
        XCTAssertEqual(lines.withLockedValue { $0.count }, 1, "three of four were suppressed")
        usleep(250_000)
        log.warning(logger, "refused", metadata: ["upstream": "ledger"])
        let logged = lines.withLockedValue { $0 }
        XCTAssertEqual(logged.count, 2)
        XCTAssertNil(logged[0].1["suppressed_since_last"])
        XCTAssertEqual(logged[1].1["suppressed_since_last"], .stringConvertible(3))
        XCTAssertEqual(logged[1].1["upstream"], "ledger")
    }
}
