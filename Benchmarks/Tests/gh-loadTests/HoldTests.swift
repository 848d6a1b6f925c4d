import NIOHTTP1
import Testing
@testable import gh_load

@Suite struct HoldTests {
    @Test func holdOptionsAreBounded() throws {
        let url = "https://127.0.0.1:8443/"
        // Hold mode allows more connections than the closed loop (one source port each).
        _ = try GHLoad.parse(["--url", url, "--hold", "10", "--connections", "20000"])
        #expect(throws: (any Error).self) { try GHLoad.parse(["--url", url, "--connections", "20000"]) }
        #expect(throws: (any Error).self) { try GHLoad.parse(["--url", url, "--hold", "10", "--connections", "30000"]) }
        #expect(throws: (any Error).self) { try GHLoad.parse(["--url", url, "--hold", "0"]) }
        #expect(throws: (any Error).self) { try GHLoad.parse(["--url", url, "--hold", "4000"]) }
        #expect(throws: (any Error).self) { try GHLoad.parse(["--url", url, "--hold", "5", "--connect-rate", "0"]) }
        #expect(throws: (any Error).self) { try GHLoad.parse(["--url", url, "--hold", "5", "--new-connection"]) }
        #expect(throws: (any Error).self) { try GHLoad.parse(["--url", "https://10.0.0.1/", "--hold", "5"]) }
    }

    @Test func tallyCountsServerClosesOnlyWhileHolding() {
        let tally = HoldTally()
        tally.opened(latencyUs: 900, status: .ok, at: 10)
        tally.opened(latencyUs: 1100, status: .forbidden, at: 20)
        tally.failed("connect: refused")
        tally.failed("later error")
        tally.closedWhileOpen()            // the server closed one while we held it
        tally.startClosing()
        tally.closedWhileOpen()            // our own close: not counted
        let s = tally.snapshot()
        #expect(s.open == 2)
        #expect(s.non2xx == 1)
        #expect(s.errors == 2)
        #expect(s.firstError == "connect: refused")
        #expect(s.closedByPeer == 1)
        #expect(s.lastOpenNs == 20)
        #expect(s.histogram.totalCount == 2)
    }
}
