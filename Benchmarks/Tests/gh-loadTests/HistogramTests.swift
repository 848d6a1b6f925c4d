import Testing
@testable import gh_load

@Suite struct HistogramTests {
    @Test func bucketsCoverEveryValueAndStayWithinOnePercent() {
        var v: UInt64 = 0
        while v < 1 << 40 {
            let i = LatencyHistogram.index(for: v)
            let r = LatencyHistogram.range(of: i)
            #expect(r.contains(v), "value \(v) not in bucket \(i) \(r)")
            let width = Double(r.upperBound - r.lowerBound + 1)
            #expect(width / Double(max(r.lowerBound, 1)) <= 1.0 / 128 + 1e-12 || r.lowerBound < 256)
            v = v < 1000 ? v + 1 : v + v / 97 + 1
        }
        #expect(LatencyHistogram.index(for: .max) == LatencyHistogram.bucketCount - 1)
    }

    @Test func quantilesOfUniformValues() {
        var h = LatencyHistogram()
        for v in 1...100_000 { h.record(UInt64(v)) }
        for (q, want) in [(0.5, 50_000.0), (0.9, 90_000.0), (0.99, 99_000.0)] {
            let got = Double(h.value(atQuantile: q))
            #expect(abs(got - want) / want < 0.01, "q=\(q) got \(got) want \(want)")
        }
        #expect(h.value(atQuantile: 1) == 100_000)
        #expect(h.value(atQuantile: 0) == 1)
        #expect(h.maxValue == 100_000)
    }

    @Test func mergeEqualsRecordingEverything() {
        var a = LatencyHistogram(), b = LatencyHistogram(), all = LatencyHistogram()
        for v in stride(from: UInt64(3), to: 5_000_000, by: 7919) {
            if v % 2 == 0 { a.record(v) } else { b.record(v) }
            all.record(v)
        }
        a.merge(b)
        #expect(a == all)
    }

    @Test func smallValuesAreExact() {
        var h = LatencyHistogram()
        h.record(7); h.record(7); h.record(200)
        #expect(h.value(atQuantile: 0.5) == 7)
        #expect(h.value(atQuantile: 0.99) == 200)
    }

    @Test func parsesURLs() throws {
        let t = try Target(parsing: "https://127.0.0.1:8443/a/b?c=1")
        #expect(t == Target(tls: true, host: "127.0.0.1", port: 8443, path: "/a/b?c=1"))
        #expect(t.hostIsIPLiteral)
        #expect(t.hostHeader == "127.0.0.1:8443")
        let u = try Target(parsing: "http://localhost")
        #expect(u == Target(tls: false, host: "localhost", port: 80, path: "/"))
        #expect(!u.hostIsIPLiteral)
        let v = try Target(parsing: "https://[::1]:9/")
        #expect(v.host == "::1" && v.port == 9 && v.hostHeader == "[::1]:9")
        #expect(t.isLoopback && u.isLoopback && v.isLoopback)
        #expect(try Target(parsing: "http://127.8.9.10:1/").isLoopback)
        #expect(try !Target(parsing: "http://10.0.0.1/").isLoopback)
        #expect(try !Target(parsing: "http://example.com/").isLoopback)
        #expect(try !Target(parsing: "http://127.0.0.1.example.com/").isLoopback)
        #expect(throws: Target.ParseError.self) { try Target(parsing: "ftp://x") }
        #expect(throws: Target.ParseError.self) { try Target(parsing: "http://x:0/") }
    }
}
