import XCTest

@testable import GatehouseCore

/// Refusals, rotation, tolerance edges and replay keys. Signatures here are made in the test
/// (the published vectors are in WebhookVectorTests).
final class WebhookVerifierTests: XCTestCase {
    private typealias Support = WebhookTestSupport
    private let body = Array(#"{"action":"opened"}"#.utf8)
    private let now: Int64 = 1_700_000_000

    private func githubHeaders(secret: String = "current", body: [UInt8]? = nil, delivery: String = "d-1") -> WebhookHeaderFields {
        let signed = String(decoding: body ?? self.body, as: UTF8.self)
        return WebhookHeaderFields(["X-Hub-Signature-256": "sha256=" + Support.hmacHex(secret, signed), "X-GitHub-Delivery": delivery])
    }

    private func stripeHeaders(t: Int64, secrets: [String] = ["whsec_current"]) -> WebhookHeaderFields {
        let v1s = secrets.map { "v1=" + Support.hmacHex($0, "\(t)." + String(decoding: body, as: UTF8.self)) }
        return WebhookHeaderFields(["Stripe-Signature": (["t=\(t)"] + v1s).joined(separator: ",")])
    }

    // MARK: Signatures

    func testTamperedBodyAndWrongSecretAreBadSignatures() throws {
        let verifier = try Support.verifier(.github, secrets: ["current"])
        assertValid(verifier.verify(headers: githubHeaders(), body: body, now: Support.date(now)), secretIndex: 0)
        assertInvalid(verifier.verify(headers: githubHeaders(), body: body + [0x0A], now: Support.date(now)), .webhookBadSignature,
                      detail: "no signature matches any of the route's 1 key(s)")
        assertInvalid(verifier.verify(headers: githubHeaders(secret: "other"), body: body, now: Support.date(now)), .webhookBadSignature)
    }

    func testEverySecretIsTriedAndTheMatchingIndexIsReported() throws {
        let verifier = try Support.verifier(.github, secrets: ["new", "old"])
        assertValid(verifier.verify(headers: githubHeaders(secret: "new"), body: body, now: Support.date(now)), secretIndex: 0)
        assertValid(verifier.verify(headers: githubHeaders(secret: "old"), body: body, now: Support.date(now)), secretIndex: 1)
        assertInvalid(verifier.verify(headers: githubHeaders(secret: "older"), body: body, now: Support.date(now)), .webhookBadSignature,
                      detail: "no signature matches any of the route's 2 key(s)")
        // Stripe during a roll sends a v1 per secret; the sender's old secret is our second.
        let stripe = try Support.verifier(.stripe, secrets: ["whsec_next", "whsec_current"])
        assertValid(stripe.verify(headers: stripeHeaders(t: now, secrets: ["whsec_unknown", "whsec_current"]), body: body, now: Support.date(now)), secretIndex: 1)
    }

    func testNoSecretsAndUnusableSecretsAreRefusedAtConstruction() {
        XCTAssertThrowsError(try Support.verifier(.github, secrets: [])) { error in
            XCTAssertEqual((error as? WebhookKeyError)?.description, "secrets: no secret or public key to verify with")
        }
        XCTAssertThrowsError(try Support.verifier(.standard, secrets: ["whsec_not*base64"])) { error in
            XCTAssertEqual((error as? WebhookKeyError)?.key, "secrets[0]")
            XCTAssertFalse("\(error)".contains("not*base64"), "never echoes the secret")
        }
        XCTAssertThrowsError(try Support.verifier(.standard, secrets: [], publicKeys: ["whpk_AAAA"])) { error in
            XCTAssertEqual((error as? WebhookKeyError)?.key, "public_keys[0]")
        }
        XCTAssertThrowsError(try Support.verifier(.github, secrets: ["\n"])) { error in
            XCTAssertEqual((error as? WebhookKeyError)?.description, "secrets[0]: is empty")
        }
    }

    func testATrailingLineBreakOfASecretFileIsNotPartOfTheKey() throws {
        let verifier = try Support.verifier(.github, secrets: ["current\n"])
        assertValid(verifier.verify(headers: githubHeaders(), body: body, now: Support.date(now)), secretIndex: 0)
    }

    // MARK: Headers

    func testMissingDuplicateAndOversizedHeaders() throws {
        let verifier = try Support.verifier(.github, secrets: ["current"])
        var headers = githubHeaders()
        headers.remove("x-hub-signature-256")
        assertInvalid(verifier.verify(headers: headers, body: body, now: Support.date(now)), .webhookMissingSignature,
                      detail: "no `x-hub-signature-256` header")

        headers = githubHeaders()
        headers.add("x-hub-signature-256", githubHeaders().values("x-hub-signature-256")[0])
        assertInvalid(verifier.verify(headers: headers, body: body, now: Support.date(now)), .webhookMalformedSignature,
                      detail: "header `x-hub-signature-256` appears 2 times")

        headers = githubHeaders()
        headers.replace("X-Hub-Signature-256", "sha256=" + String(repeating: "a", count: 5000))
        assertInvalid(verifier.verify(headers: headers, body: body, now: Support.date(now)), .webhookMalformedSignature,
                      detail: "header `x-hub-signature-256` is longer than 4096 bytes")

        headers.replace("X-Hub-Signature-256", "sha1=757107ea0eb2509fc211221cce984b8a37570b6d")
        assertInvalid(verifier.verify(headers: headers, body: body, now: Support.date(now)), .webhookMalformedSignature)
        headers.replace("X-Hub-Signature-256", "sha256=zz7107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
        assertInvalid(verifier.verify(headers: headers, body: body, now: Support.date(now)), .webhookMalformedSignature,
                      detail: "`sha256` signature is not 64 hex digits")
    }

    func testHundredsOfEntriesAreMalformedBeforeAnyIsDecoded() throws {
        let verifier = try Support.verifier(.stripe, secrets: ["whsec_current"])
        let valid = stripeHeaders(t: now).values("stripe-signature")[0]
        let many = valid + String(repeating: ",v0=00", count: 200)
        assertInvalid(verifier.verify(headers: WebhookHeaderFields(["Stripe-Signature": many]), body: body, now: Support.date(now)),
                      .webhookMalformedSignature, detail: "more than 16 entries")
        // 16 entries is still fine.
        let sixteen = valid + String(repeating: ",v0=00", count: 14)
        assertValid(verifier.verify(headers: WebhookHeaderFields(["Stripe-Signature": sixteen]), body: body, now: Support.date(now)), secretIndex: 0)

        let standard = try Support.verifier(.standard, secrets: ["whsec_" + Data("0123456789abcdef01234567".utf8).base64EncodedString()])
        let entries = Array(repeating: "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=", count: 17).joined(separator: " ")
        let headers = WebhookHeaderFields(["webhook-id": "msg_1", "webhook-timestamp": "\(now)", "webhook-signature": entries])
        assertInvalid(standard.verify(headers: headers, body: body, now: Support.date(now)), .webhookMalformedSignature,
                      detail: "more than 16 entries")
    }

    func testUnknownVersionsAreIgnoredAndOnlyUnknownVersionsIsMissing() throws {
        let stripe = try Support.verifier(.stripe, secrets: ["whsec_current"])
        let valid = stripeHeaders(t: now).values("stripe-signature")[0]
        assertValid(stripe.verify(headers: WebhookHeaderFields(["Stripe-Signature": valid + ",v0=abc,v9=not-even-hex"]), body: body, now: Support.date(now)), secretIndex: 0)
        assertInvalid(stripe.verify(headers: WebhookHeaderFields(["Stripe-Signature": "t=\(now),v0=abc"]), body: body, now: Support.date(now)),
                      .webhookMissingSignature, detail: "no `v1` signature in `stripe-signature`")
        assertInvalid(stripe.verify(headers: WebhookHeaderFields(["Stripe-Signature": "v1=abc"]), body: body, now: Support.date(now)),
                      .webhookMalformedSignature)
        assertInvalid(stripe.verify(headers: WebhookHeaderFields(["Stripe-Signature": "t=\(now),t=\(now),v1=00"]), body: body, now: Support.date(now)),
                      .webhookMalformedSignature, detail: "`t` appears twice")

        let slack = try Support.verifier(.slack, secrets: ["slack"])
        let slackHeaders = WebhookHeaderFields(["X-Slack-Signature": "v1=" + String(repeating: "0", count: 64), "X-Slack-Request-Timestamp": "\(now)"])
        assertInvalid(slack.verify(headers: slackHeaders, body: body, now: Support.date(now)), .webhookMissingSignature)

        // A route with only an HMAC secret does not consider `v1a` signatures at all.
        let standard = try Support.verifier(.standard, secrets: ["whsec_" + Data("0123456789abcdef01234567".utf8).base64EncodedString()])
        let onlyV1a = WebhookHeaderFields(["webhook-id": "msg_1", "webhook-timestamp": "\(now)", "webhook-signature": "v1a,AAAA v2,AAAA"])
        assertInvalid(standard.verify(headers: onlyV1a, body: body, now: Support.date(now)), .webhookMissingSignature,
                      detail: "no `v1` signature in `webhook-signature`")
    }

    func testBadHexAndBadBase64AreMalformed() throws {
        let shopify = try Support.verifier(.shopify, secrets: ["s"])
        for value in ["not base64!", "My7wjS1Zjt3NQ+qT4V74yib94yX6DlMvh1M7Dc0qbYo", "My7wjS1Zjt3NQ+qT4V74yib94yX6DlMvh1M7Dc0qbYp=", "QUJD"] {
            assertInvalid(shopify.verify(headers: WebhookHeaderFields(["X-Shopify-Hmac-Sha256": value]), body: body, now: Support.date(now)),
                          value == "My7wjS1Zjt3NQ+qT4V74yib94yX6DlMvh1M7Dc0qbYo" ? .webhookBadSignature : .webhookMalformedSignature)
        }
        let slack = try Support.verifier(.slack, secrets: ["slack"])
        let odd = WebhookHeaderFields(["X-Slack-Signature": "v0=abc", "X-Slack-Request-Timestamp": "\(now)"])
        assertInvalid(slack.verify(headers: odd, body: body, now: Support.date(now)), .webhookMalformedSignature,
                      detail: "`v0` signature is not 64 hex digits")
    }

    func testTimestampAndIDHeadersAreReadStrictly() throws {
        let slack = try Support.verifier(.slack, secrets: ["slack"])
        let signature = "v0=" + Support.hmacHex("slack", "v0:\(now):" + String(decoding: body, as: UTF8.self))
        for (timestamp, detail) in [("+\(now)", "`x-slack-request-timestamp` is not a Unix time in seconds"),
                                    ("\(now).5", "`x-slack-request-timestamp` is not a Unix time in seconds"),
                                    ("1234567890123", "`x-slack-request-timestamp` is not a Unix time in seconds")] {
            let headers = WebhookHeaderFields(["X-Slack-Signature": signature, "X-Slack-Request-Timestamp": timestamp])
            assertInvalid(slack.verify(headers: headers, body: body, now: Support.date(now)), .webhookMalformedSignature, detail: detail)
        }
        assertInvalid(slack.verify(headers: WebhookHeaderFields(["X-Slack-Signature": signature]), body: body, now: Support.date(now)),
                      .webhookMalformedSignature, detail: "no `x-slack-request-timestamp` header")

        let standard = try Support.verifier(.standard, secrets: ["whsec_" + Data("0123456789abcdef01234567".utf8).base64EncodedString()])
        let noID = WebhookHeaderFields(["webhook-timestamp": "\(now)", "webhook-signature": "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="])
        assertInvalid(standard.verify(headers: noID, body: body, now: Support.date(now)), .webhookMalformedSignature, detail: "no `webhook-id` header")
        var spaced = noID
        spaced.add("webhook-id", "msg 1")
        assertInvalid(standard.verify(headers: spaced, body: body, now: Support.date(now)), .webhookMalformedSignature)
    }

    func testABodyOverMaxBodyIsTooLarge() throws {
        let verifier = try Support.verifier(.github, secrets: ["current"]) { $0.maxBodyBytes = 8 }
        assertInvalid(verifier.verify(headers: githubHeaders(), body: body, now: Support.date(now)), .requestTooLarge)
    }

    // MARK: Timestamps

    func testToleranceEdgesBothWays() throws {
        let verifier = try Support.verifier(.stripe, secrets: ["whsec_current"]) { $0.tolerance = .seconds(300) }
        let headers = stripeHeaders(t: now)
        assertValid(verifier.verify(headers: headers, body: body, now: Support.date(now + 300)), secretIndex: 0)
        assertValid(verifier.verify(headers: headers, body: body, now: Support.date(now - 300)), secretIndex: 0)
        assertInvalid(verifier.verify(headers: headers, body: body, now: Support.date(now + 301)), .webhookStaleTimestamp,
                      detail: "timestamp is 301 s old, tolerance is 300 s")
        assertInvalid(verifier.verify(headers: headers, body: body, now: Support.date(now - 301)), .webhookStaleTimestamp,
                      detail: "timestamp is 301 s in the future, tolerance is 300 s")
        // The timestamp is checked before any MAC work, and a forged one cannot pass: it is signed.
        let forged = WebhookHeaderFields(["Stripe-Signature": headers.values("stripe-signature")[0].replacingOccurrences(of: "t=\(now)", with: "t=\(now + 1000)")])
        assertInvalid(verifier.verify(headers: forged, body: body, now: Support.date(now + 1000)), .webhookBadSignature)
    }

    // MARK: Replay keys

    func testTheSameDeliveryAlwaysHasTheSameKeys() throws {
        let verifier = try Support.verifier(.github, secrets: ["current"])
        let first = assertValid(verifier.verify(headers: githubHeaders(), body: body, now: Support.date(now)), secretIndex: 0)
        let again = assertValid(verifier.verify(headers: githubHeaders(), body: body, now: Support.date(now + 60)), secretIndex: 0)
        XCTAssertEqual(first?.replayKeys, again?.replayKeys)
        XCTAssertEqual(first?.replayKeys.map(\.kind), [.deliveryID, .signedContent])
        for key in first?.replayKeys ?? [] {
            XCTAssertTrue(key.value.hasPrefix("wh1."))
            XCTAssertEqual(key.value.count, 26, "fixed size whatever the route or id")
        }
        let otherRoute = try Support.verifier(.github, secrets: ["current"], route: "other")
        let elsewhere = assertValid(otherRoute.verify(headers: githubHeaders(), body: body, now: Support.date(now)), secretIndex: 0)
        XCTAssertTrue(Set(first?.replayKeys ?? []).isDisjoint(with: elsewhere?.replayKeys ?? []), "keys are namespaced by route")
    }

    func testAGitHubReplayWithAFreshUnsignedDeliveryIDStillSharesTheSignatureKey() throws {
        let verifier = try Support.verifier(.github, secrets: ["current"])
        let original = assertValid(verifier.verify(headers: githubHeaders(delivery: "d-1"), body: body, now: Support.date(now)), secretIndex: 0)
        let replayed = assertValid(verifier.verify(headers: githubHeaders(delivery: "d-2-made-up"), body: body, now: Support.date(now)), secretIndex: 0)
        let originalKeys = Set(original?.replayKeys ?? [])
        let replayedKeys = Set(replayed?.replayKeys ?? [])
        XCTAssertEqual(originalKeys.intersection(replayedKeys).map(\.kind), [.signedContent])
        XCTAssertNotEqual(original?.replayKeys.first, replayed?.replayKeys.first, "the id keys differ")

        // And the store catches it.
        let store = InMemoryReplayStore(capacity: 10)
        for key in original?.replayKeys ?? [] {
            XCTAssertEqual(store.insertIfAbsent(key.value, expiresAt: original!.replayExpiresAt, now: Support.date(now)), .inserted)
        }
        XCTAssertTrue((replayed?.replayKeys ?? []).contains {
            store.insertIfAbsent($0.value, expiresAt: replayed!.replayExpiresAt, now: Support.date(now)) == .duplicate
        })
    }

    func testAStripeReplayThatDropsOneOfTwoSignaturesKeepsItsKey() throws {
        let verifier = try Support.verifier(.stripe, secrets: ["whsec_new", "whsec_old"])
        let both = assertValid(verifier.verify(headers: stripeHeaders(t: now, secrets: ["whsec_new", "whsec_old"]), body: body, now: Support.date(now)), secretIndex: 0)
        let oldOnly = assertValid(verifier.verify(headers: stripeHeaders(t: now, secrets: ["whsec_old"]), body: body, now: Support.date(now)), secretIndex: 1)
        XCTAssertEqual(both?.replayKeys, oldOnly?.replayKeys)
        XCTAssertEqual(both?.replayKeys.map(\.kind), [.signedContent])
    }

    func testStandardWebhooksKeysOnTheSignedIDAlone() throws {
        let key = Array("0123456789abcdef01234567".utf8)
        let verifier = try Support.verifier(.standard, secrets: ["whsec_" + Data(key).base64EncodedString()])
        func headers(_ id: String) -> WebhookHeaderFields {
            let signature = Support.hmacBase64(key: key, "\(id).\(now)." + String(decoding: body, as: UTF8.self))
            return WebhookHeaderFields(["webhook-id": id, "webhook-timestamp": "\(now)", "webhook-signature": "v1,\(signature)"])
        }
        let delivery = assertValid(verifier.verify(headers: headers("msg_1"), body: body, now: Support.date(now)), secretIndex: 0)
        XCTAssertEqual(delivery?.replayKeys.map(\.kind), [.deliveryID])
        let other = assertValid(verifier.verify(headers: headers("msg_2"), body: body, now: Support.date(now)), secretIndex: 0)
        XCTAssertNotEqual(delivery?.replayKeys, other?.replayKeys)
    }

    func testReplayExpiryOutlivesTheToleranceWindow() throws {
        let stripe = try Support.verifier(.stripe, secrets: ["whsec_current"]) { $0.tolerance = .seconds(120) }
        let delivery = assertValid(stripe.verify(headers: stripeHeaders(t: now), body: body, now: Support.date(now + 30)), secretIndex: 0)
        // timestamp + tolerance, plus the second in which the timestamp is still (inclusively) fresh.
        XCTAssertEqual(delivery?.replayExpiresAt, Support.date(now + 120 + 1))

        // No timestamp: remembered for the tolerance from now (an older replay cannot be stopped).
        let github = try Support.verifier(.github, secrets: ["current"]) { $0.tolerance = .seconds(120) }
        let unsigned = assertValid(github.verify(headers: githubHeaders(), body: body, now: Support.date(now)), secretIndex: 0)
        XCTAssertEqual(unsigned?.replayExpiresAt, Support.date(now + 120))
    }

    func testReplayOffHasNoKeys() throws {
        let verifier = try Support.verifier(.github, secrets: ["current"]) { $0.rejectReplay = false }
        let delivery = assertValid(verifier.verify(headers: githubHeaders(), body: body, now: Support.date(now)), secretIndex: 0)
        XCTAssertEqual(delivery?.replayKeys, [])
    }

    func testRefusalDetailsNeverContainTheSignatureOrTheSecret() throws {
        let verifier = try Support.verifier(.github, secrets: ["current-secret"])
        let headers = githubHeaders(secret: "wrong")
        let signature = headers.values("x-hub-signature-256")[0]
        guard case .invalid(_, let detail) = verifier.verify(headers: headers, body: body, now: Support.date(now)) else {
            return XCTFail("expected a refusal")
        }
        XCTAssertFalse(detail.contains(String(signature.dropFirst(7).prefix(16))))
        XCTAssertFalse(detail.contains("current-secret"))
        XCTAssertFalse(detail.contains("opened"))
    }
}

/// Hostile signature headers: random bytes from the signature alphabet never verify, never
/// crash, and are always refused with a webhook reason.
final class WebhookHostileHeaderTests: XCTestCase {
    private typealias Support = WebhookTestSupport

    func testRandomSignatureHeadersAreRefused() throws {
        let alphabet = Array("v0123456789abcdefABCDEF=,. t1asha256+/_-\t{}:\u{7F}é".unicodeScalars)
        let key = Data("0123456789abcdef01234567".utf8).base64EncodedString()
        let cases: [(WebhookVerifier, String)] = [
            (try Support.verifier(.github, secrets: ["s"]), "x-hub-signature-256"),
            (try Support.verifier(.stripe, secrets: ["whsec_s"]), "stripe-signature"),
            (try Support.verifier(.slack, secrets: ["s"]), "x-slack-signature"),
            (try Support.verifier(.shopify, secrets: ["s"]), "x-shopify-hmac-sha256"),
            (try Support.verifier(.standard, secrets: ["whsec_" + key]), "webhook-signature"),
        ]
        var random = SplitMix64(seed: 20_261_122)
        for _ in 0..<2000 {
            let length = Int.random(in: 0...120, using: &random)
            var value = String.UnicodeScalarView()
            for _ in 0..<length { value.append(alphabet.randomElement(using: &random)!) }
            for (verifier, header) in cases {
                let headers = WebhookHeaderFields([
                    header: String(value), "x-slack-request-timestamp": "1700000000", "webhook-timestamp": "1700000000",
                    "webhook-id": "msg_1",
                ])
                guard case .invalid(let reason, _) = verifier.verify(headers: headers, body: [1, 2, 3], now: Support.date(1_700_000_000)) else {
                    return XCTFail("\(header): \(String(value)) verified")
                }
                XCTAssertTrue(reason.rawValue.hasPrefix("webhook."), "\(header): \(String(value)) -> \(reason)")
            }
        }
    }
}
