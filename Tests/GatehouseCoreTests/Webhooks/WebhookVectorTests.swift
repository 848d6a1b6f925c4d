import XCTest

@testable import GatehouseCore

/// Each scheme against a signature made by someone else: the provider's published example
/// where there is one, otherwise an independent implementation (the command is in the comment).
/// A verifier that agrees only with itself would pass a round-trip test; it cannot pass these.
final class WebhookVectorTests: XCTestCase {
    private typealias Support = WebhookTestSupport

    /// GitHub docs, "Validating webhook deliveries" → "Testing the webhook payload validation".
    func testGitHubPublishedVector() throws {
        let verifier = try Support.verifier(.github, secrets: ["It's a Secret to Everybody"])
        let headers = WebhookHeaderFields([
            "X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        ])
        let delivery = assertValid(verifier.verify(headers: headers, body: Array("Hello, World!".utf8), now: Support.date(1_700_000_000)), secretIndex: 0)
        XCTAssertEqual(delivery?.deliveryID, "72d3162e-cc78-11e3-81ab-4c9367dc0958")
        XCTAssertNil(delivery?.timestamp)
        assertInvalid(verifier.verify(headers: headers, body: Array("Hello, World?".utf8), now: Support.date(1_700_000_000)), .webhookBadSignature)
    }

    /// Slack docs, "Verifying requests from Slack" (the slash-command example).
    func testSlackPublishedVector() throws {
        let verifier = try Support.verifier(.slack, secrets: ["8f742231b10e8888abcd99yyyzzz85a5"])
        let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
        let headers = WebhookHeaderFields([
            "X-Slack-Request-Timestamp": "1531420618",
            "X-Slack-Signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
        ])
        let delivery = assertValid(verifier.verify(headers: headers, body: Array(body.utf8), now: Support.date(1_531_420_618 + 30)), secretIndex: 0)
        XCTAssertEqual(delivery?.timestamp, Support.date(1_531_420_618))
        XCTAssertNil(delivery?.deliveryID)
    }

    /// Standard Webhooks reference library (libraries/go/webhook_test.go, TestWebhookSign).
    func testStandardWebhooksPublishedSymmetricVector() throws {
        let verifier = try Support.verifier(.standard, secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
        var headers = WebhookHeaderFields([
            "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "webhook-timestamp": "1614265330",
            "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ])
        let body = Array(#"{"test": 2432232314}"#.utf8)
        let delivery = assertValid(verifier.verify(headers: headers, body: body, now: Support.date(1_614_265_330)), secretIndex: 0)
        XCTAssertEqual(delivery?.deliveryID, "msg_p5jXN8AQM9LWM0D4loKWxJek")
        XCTAssertEqual(delivery?.verifiedByPublicKey, false)

        // The reference tests' "valid multi sig": wrong v1s and an unknown v2 around the right one.
        headers.replace("webhook-signature", [
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=", "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
        ].joined(separator: " "))
        assertValid(verifier.verify(headers: headers, body: body, now: Support.date(1_614_265_330)), secretIndex: 0)
        // ... and "invalid signature is invalid".
        headers.replace("webhook-signature", "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=")
        assertInvalid(verifier.verify(headers: headers, body: body, now: Support.date(1_614_265_330)), .webhookBadSignature)

        // The reference libraries accept the secret without its `whsec_` prefix too.
        let bare = try Support.verifier(.standard, secrets: ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
        headers.replace("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        assertValid(bare.verify(headers: headers, body: body, now: Support.date(1_614_265_330)), secretIndex: 0)
    }

    /// Standard Webhooks reference library (libraries/go/webhook_asymmetric_test.go,
    /// TestAsymmetricWebhookSign): the signature is published; the library publishes the
    /// private seed `VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk=`, and the public key below was
    /// derived from it with Python's `cryptography` (Ed25519PrivateKey.from_private_bytes).
    func testStandardWebhooksPublishedAsymmetricVector() throws {
        let publicKey = "whpk_ZlN4eg7dSSqi0moX9hQUk3orrOouK3QVQSlJa248c/g="
        let signature = "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag=="
        let verifier = try Support.verifier(.standard, secrets: [], publicKeys: [publicKey])
        var headers = WebhookHeaderFields([
            "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330", "webhook-signature": signature,
        ])
        let body = Array(#"{"test": 2432232314}"#.utf8)
        let delivery = assertValid(verifier.verify(headers: headers, body: body, now: Support.date(1_614_265_330)), secretIndex: 0)
        XCTAssertEqual(delivery?.verifiedByPublicKey, true)

        assertInvalid(verifier.verify(headers: headers, body: body + [0x20], now: Support.date(1_614_265_330)), .webhookBadSignature)
        headers.replace("webhook-id", "msg_other")
        assertInvalid(verifier.verify(headers: headers, body: body, now: Support.date(1_614_265_330)), .webhookBadSignature)
        // "partial signature is invalid": a `v1a,` with nothing after it.
        headers.replace("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
        headers.replace("webhook-signature", "v1a,")
        assertInvalid(verifier.verify(headers: headers, body: body, now: Support.date(1_614_265_330)), .webhookMalformedSignature)

        // A route with both an HMAC secret and the public key: the v1a signature matches the key.
        let both = try Support.verifier(.standard, secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], publicKeys: [publicKey])
        headers.replace("webhook-signature", "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= " + signature)
        let mixed = assertValid(both.verify(headers: headers, body: body, now: Support.date(1_614_265_330)), secretIndex: 0)
        XCTAssertEqual(mixed?.verifiedByPublicKey, true)
    }

    /// No official Stripe vector was found. Made with
    /// `printf '%s' '1700000000.{"id":"evt_gatehouse_test","object":"event"}' | openssl dgst -sha256 -hmac 'whsec_gatehouse_stripe_test_secret' -hex`
    /// and the same with Python's hmac module: the `whsec_` secret is the key as a whole.
    func testStripeIndependentVector() throws {
        let verifier = try Support.verifier(.stripe, secrets: ["whsec_gatehouse_stripe_test_secret"])
        let headers = WebhookHeaderFields([
            "Stripe-Signature": "t=1700000000,v1=1c639ac4d990571eae2667621a635dd258276727bd37b16e8db42f2e80a24dbf,v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"
        ])
        let body = Array(#"{"id":"evt_gatehouse_test","object":"event"}"#.utf8)
        let delivery = assertValid(verifier.verify(headers: headers, body: body, now: Support.date(1_700_000_100)), secretIndex: 0)
        XCTAssertEqual(delivery?.timestamp, Support.date(1_700_000_000))
        // Stripe keys with the whole `whsec_` string, unlike Standard Webhooks: decoding it would not verify.
        let decoding = try Support.verifier(.stripe, secrets: ["gatehouse_stripe_test_secret"])
        assertInvalid(decoding.verify(headers: headers, body: body, now: Support.date(1_700_000_100)), .webhookBadSignature)
    }

    /// No official Shopify vector was found. Made with
    /// `printf '%s' '{"id":820982911946154508,"email":"jon@example.com"}' | openssl dgst -sha256 -hmac 'gatehouse-shopify-test-secret' -binary | base64`
    /// and cross-checked with Python's hmac + base64.
    func testShopifyIndependentVector() throws {
        let verifier = try Support.verifier(.shopify, secrets: ["gatehouse-shopify-test-secret"])
        let headers = WebhookHeaderFields(["X-Shopify-Hmac-Sha256": "My7wjS1Zjt3NQ+qT4V74yib94yX6DlMvh1M7Dc0qbYo="])
        let body = Array(#"{"id":820982911946154508,"email":"jon@example.com"}"#.utf8)
        assertValid(verifier.verify(headers: headers, body: body, now: Support.date(1_700_000_000)), secretIndex: 0)
        assertInvalid(verifier.verify(headers: headers, body: Array(body.dropLast()), now: Support.date(1_700_000_000)), .webhookBadSignature)
    }

    /// Made with `printf '%s' 'evt-42.1700000000.hello' | openssl dgst -sha512 -hmac 'gatehouse-generic-test-secret' -binary | base64 -w0`
    /// and cross-checked with Python's hmac + base64.
    func testGenericSHA512Base64TemplateIndependentVector() throws {
        let verifier = try Support.verifier(.generic, secrets: ["gatehouse-generic-test-secret"]) { config in
            var format = GenericWebhookFormat(header: "x-signature")
            format.prefix = "v1="
            format.encoding = .base64
            format.algorithm = .sha512
            format.signed = try! WebhookSignedTemplate(parsing: "{id}.{timestamp}.{body}")
            format.timestampHeader = "x-timestamp"
            config.generic = format
            config.idHeader = "x-event-id"
        }
        let headers = WebhookHeaderFields([
            "X-Signature": "v1=2C52YhjhsmF+5sW/Diaq/4YF37K0u2Mk9N7cQ/PmjfipM7BzlHtrb9Unp8iV86G2PEctmPm9hc97PJckrqWfxA==",
            "X-Timestamp": "1700000000",
            "X-Event-Id": "evt-42",
        ])
        let delivery = assertValid(verifier.verify(headers: headers, body: Array("hello".utf8), now: Support.date(1_700_000_000)), secretIndex: 0)
        XCTAssertEqual(delivery?.deliveryID, "evt-42")
        // The id is signed: one replay key, the id's.
        XCTAssertEqual(delivery?.replayKeys.map(\.kind), [.deliveryID])
        var renamed = headers
        renamed.replace("X-Event-Id", "evt-43")
        assertInvalid(verifier.verify(headers: renamed, body: Array("hello".utf8), now: Support.date(1_700_000_000)), .webhookBadSignature)
    }
}
