import Crypto
import Foundation
import NIOCore
import Testing
@testable import gh_load

@Suite struct WebhookTests {
    /// The whole body as sent: the shared prefix followed by the delivery's suffix.
    func body(_ deliveries: WebhookDeliveries, _ d: WebhookDeliveries.Delivery) -> [UInt8] {
        Array(deliveries.prefix.readableBytesView) + d.suffix
    }

    @Test(arguments: [64, 1024, 262_144])
    func signatureVerifiesIndependently(size: Int) throws {
        let secret = Array("It's a Secret to Everybody".utf8)
        let deliveries = WebhookDeliveries(secret: secret, bodySize: size)
        let a = deliveries.next(), b = deliveries.next()
        for d in [a, b] {
            let bytes = body(deliveries, d)
            #expect(bytes.count == size)
            // An independent computation: one HMAC over the concatenated bytes.
            let mac = HMAC<SHA256>.authenticationCode(for: bytes, using: SymmetricKey(data: secret))
            #expect(d.signature == "sha256=" + mac.map { String(format: "%02x", $0) }.joined())
            // Valid JSON, so an upstream that parses it is not surprised.
            #expect(try JSONSerialization.jsonObject(with: Data(bytes)) is [String: Any])
        }
        // Two deliveries differ: body, signature and delivery id.
        #expect(a.suffix != b.suffix)
        #expect(a.signature != b.signature)
        #expect(a.id != b.id)
        // The prefix is one buffer, not copied per delivery.
        #expect(deliveries.prefix.readableBytes == size - WebhookDeliveries.suffixBytes)
    }

    @Test func githubsExampleSignature() {
        // docs.github.com, "Validating webhook deliveries": secret "It's a Secret to Everybody",
        // payload "Hello, World!" -> sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17
        let mac = HMAC<SHA256>.authenticationCode(
            for: Array("Hello, World!".utf8), using: SymmetricKey(data: Array("It's a Secret to Everybody".utf8)))
        #expect(hexString(mac) == "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
    }

    @Test func runsDoNotRepeatEachOther() {
        let one = WebhookDeliveries(secret: [1, 2, 3], bodySize: 1024, runID: 1)
        let two = WebhookDeliveries(secret: [1, 2, 3], bodySize: 1024, runID: 2)
        #expect(one.next().id != two.next().id)
        #expect(one.prefix != two.prefix)
    }

    @Test func optionsAreChecked() throws {
        let url = "https://127.0.0.1:8443/hook"
        _ = try GHLoad.parse(["--url", url, "--webhook-github-secret", "s", "--body-size", "262144"])
        #expect(throws: (any Error).self) { try GHLoad.parse(["--url", url, "--webhook-github-secret", "s", "--body-size", "10"]) }
        #expect(throws: (any Error).self) {
            try GHLoad.parse(["--url", url, "--webhook-github-secret", "s", "--tokens-file", "/dev/null"])
        }
    }
}
