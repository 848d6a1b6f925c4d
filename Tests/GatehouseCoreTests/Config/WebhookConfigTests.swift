import XCTest

@testable import GatehouseCore

/// `routes[].webhook`.
final class WebhookConfigTests: XCTestCase {
    private func errors(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        configErrors(yaml, file: file, line: line)
    }

    /// The webhook mapping starts on line 12, its keys at column 7.
    private func yaml(_ webhook: String, route extra: String = "") -> String {
        """
        environment: prod
        listeners:
          - name: public
            address: 127.0.0.1:0
            insecure_plaintext: true
        upstreams:
          app: { endpoints: ["127.0.0.1:9000"] }
        routes:
          - name: hooks
            match: { path: /hooks, methods: [POST] }
            upstream: app\(extra)
            webhook:
        \(webhook)

        """
    }

    private func load(_ webhook: String) throws -> RouteWebhookConfig {
        try XCTUnwrap(ConfigLoader.parse(yaml: yaml(webhook), file: "t.yaml").routes[0].webhook)
    }

    // MARK: Valid examples, one per scheme

    func testGitHubWithDefaults() throws {
        let config = try load("""
                  scheme: github
                  secrets: [env:GITHUB_WEBHOOK_SECRET]
            """)
        XCTAssertEqual(config.scheme, .github)
        XCTAssertEqual(config.secrets, [.environment("GITHUB_WEBHOOK_SECRET")])
        XCTAssertEqual(config.tolerance, .seconds(300))
        XCTAssertTrue(config.rejectReplay)
        XCTAssertNil(config.idHeader)
        XCTAssertEqual(config.maxBodyBytes, 1 << 20)
        XCTAssertNil(config.generic)
        XCTAssertEqual(config.location, SourceLocation(file: "t.yaml", line: 13, column: 7))
    }

    func testStripeWithRotationAndEveryCommonKey() throws {
        let config = try load("""
                  scheme: stripe
                  secrets: [env:STRIPE_NEW, file:/run/secrets/stripe-old]
                  tolerance: 2m
                  replay: false
                  id_header: X-Request-Id
                  max_body: 512KiB
            """)
        XCTAssertEqual(config.secrets, [.environment("STRIPE_NEW"), .file("/run/secrets/stripe-old")])
        XCTAssertEqual(config.tolerance, .seconds(120))
        XCTAssertFalse(config.rejectReplay)
        XCTAssertEqual(config.idHeader, "x-request-id")
        XCTAssertEqual(config.maxBodyBytes, 512 * 1024)
    }

    /// The data path enforces a route's body limit before any check: for a webhook route it is `max_body`.
    func testTheRouteBodyLimitIsTheWebhookMaxBody() throws {
        let parsed = try ConfigLoader.parse(yaml: yaml("      scheme: github\n      secrets: [env:S]\n      max_body: 2MiB"), file: "t.yaml")
        XCTAssertEqual(parsed.routes[0].maxBodyBytes, 2 << 20)
        let defaults = try ConfigLoader.parse(yaml: yaml("      scheme: github\n      secrets: [env:S]"), file: "t.yaml")
        XCTAssertEqual(defaults.routes[0].maxBodyBytes, 1 << 20)
    }

    /// `replay` is a YAML boolean like every switch in the file; YAML 1.1 spells it `on`/`off` too.
    func testReplaySwitch() throws {
        XCTAssertFalse(try load("      scheme: github\n      secrets: [env:S]\n      replay: off").rejectReplay)
        XCTAssertTrue(try load("      scheme: github\n      secrets: [env:S]\n      replay: on").rejectReplay)
        XCTAssertTrue(try load("      scheme: github\n      secrets: [env:S]\n      replay: true").rejectReplay)
    }

    func testSlackAndShopify() throws {
        XCTAssertEqual(try load("      scheme: slack\n      secrets: [file:/run/secrets/slack]").scheme, .slack)
        XCTAssertEqual(try load("      scheme: shopify\n      secrets: [env:SHOPIFY]\n      id_header: X-Shopify-Webhook-Id").idHeader, "x-shopify-webhook-id")
    }

    func testStandardWithPublicKeysOnly() throws {
        let config = try load("""
                  scheme: standard
                  public_keys: [env:SENDER_PUBLIC_KEY]
            """)
        XCTAssertEqual(config.secrets, [])
        XCTAssertEqual(config.publicKeys, [.environment("SENDER_PUBLIC_KEY")])
    }

    func testGeneric() throws {
        let config = try load("""
                  scheme: generic
                  secrets: [env:PARTNER]
                  id_header: X-Event-Id
                  generic:
                    header: X-Partner-Signature
                    prefix: "sha512="
                    encoding: base64
                    algorithm: sha512
                    signed: "{id}.{timestamp}.{body}"
                    timestamp_header: X-Partner-Timestamp
            """)
        let generic = try XCTUnwrap(config.generic)
        XCTAssertEqual(generic.header, "x-partner-signature")
        XCTAssertEqual(generic.prefix, "sha512=")
        XCTAssertEqual(generic.encoding, .base64)
        XCTAssertEqual(generic.algorithm, .sha512)
        XCTAssertEqual(generic.signed.parts, [.id, .literal("."), .timestamp, .literal("."), .body])
        XCTAssertEqual(generic.timestampHeader, "x-partner-timestamp")
        XCTAssertEqual(config.idHeader, "x-event-id")

        let minimal = try XCTUnwrap(try load("      scheme: generic\n      secrets: [env:PARTNER]\n      generic: { header: X-Sig }").generic)
        XCTAssertEqual(minimal.signed, .body)
        XCTAssertEqual(minimal.encoding, .hex)
        XCTAssertEqual(minimal.algorithm, .sha256)
        XCTAssertEqual(minimal.prefix, "")
    }

    // MARK: Mistakes

    func testUnknownKeysAndKeysOfAnotherScheme() {
        XCTAssertEqual(errors(yaml("""
                  scheme: github
                  secrets: [env:S]
                  tolerence: 5m
                  public_keys: [env:P]
                  generic: { header: X-Sig }
            """)), [
                "t.yaml:15:7: routes[0].webhook.tolerence: unknown key (did you mean `tolerance`?)",
                "t.yaml:16:20: routes[0].webhook.public_keys: `public_keys` does not apply to scheme `github` (expected one of `scheme`, `secrets`, `tolerance`, `replay`, `max_body`, `mode`, `id_header`)",
                "t.yaml:17:16: routes[0].webhook.generic: `generic` does not apply to scheme `github` (expected one of `scheme`, `secrets`, `tolerance`, `replay`, `max_body`, `mode`, `id_header`)",
            ])
        XCTAssertEqual(errors(yaml("""
                  scheme: standard
                  secrets: [env:S]
                  id_header: X-Id
            """)), [
                "t.yaml:15:18: routes[0].webhook.id_header: `id_header` does not apply to scheme `standard` (expected one of `scheme`, `secrets`, `tolerance`, `replay`, `max_body`, `mode`, `public_keys`)"
            ])
        XCTAssertEqual(errors(yaml("""
                  scheme: gitlab
                  secrets: [env:S]
            """)), [
                "t.yaml:13:15: routes[0].webhook.scheme: unknown value `gitlab` (expected one of `github`, `stripe`, `slack`, `shopify`, `standard`, `generic`)"
            ])
    }

    func testSecretsAreReferencesAndNeverEmpty() {
        XCTAssertEqual(errors(yaml("""
                  scheme: github
                  secrets: ["It's a Secret to Everybody"]
            """)), [
                "t.yaml:14:17: routes[0].webhook.secrets[0]: not a secret reference; secrets are never inline (expected `env:NAME` or `file:/path/to/key.pem`)"
            ])
        XCTAssertEqual(errors(yaml("""
                  scheme: github
                  secrets: []
            """)), ["t.yaml:14:16: routes[0].webhook.secrets: must not be empty (expected at least one entry)"])
        XCTAssertEqual(errors(yaml("""
                  scheme: stripe
            """)), ["t.yaml:13:7: routes[0].webhook.secrets: required key is missing (expected a non-empty list of `env:NAME` or `file:/path`)"])
        XCTAssertEqual(errors(yaml("""
                  scheme: standard
            """)), [
                "t.yaml:13:7: routes[0].webhook.secrets: required key is missing (expected a non-empty list of `env:NAME` or `file:/path` (or `public_keys` for `v1a` signatures))"
            ])
        XCTAssertEqual(errors(yaml("""
                  scheme: github
                  secrets: [env:S, env:S]
            """)), ["t.yaml:14:24: routes[0].webhook.secrets[1]: duplicate reference `env:S`"])
        XCTAssertEqual(errors(yaml("""
                  scheme: github
                  secrets: env:S
            """)), ["t.yaml:14:16: routes[0].webhook.secrets: wrong type: found a string (expected a list)"])
    }

    func testTemplates() {
        func generic(_ signed: String, _ extra: String = "") -> String {
            yaml("""
                      scheme: generic
                      secrets: [env:S]
                      generic:
                        header: X-Sig
                        signed: "\(signed)"\(extra)
                """)
        }
        let expected = "(expected `body`, or text with `{body}` exactly once and optionally `{timestamp}` and `{id}`)"
        XCTAssertEqual(errors(generic("{timestamp}.")), ["t.yaml:17:17: routes[0].webhook.generic.signed: bad template: `{body}` is missing \(expected)"])
        XCTAssertEqual(errors(generic("{body}.{body}")), ["t.yaml:17:17: routes[0].webhook.generic.signed: bad template: `{body}` appears 2 times \(expected)"])
        XCTAssertEqual(errors(generic("{nonce}.{body}")), ["t.yaml:17:17: routes[0].webhook.generic.signed: bad template: unknown placeholder `{nonce}` \(expected)"])
        XCTAssertEqual(errors(generic("{timestamp.{body}")), ["t.yaml:17:17: routes[0].webhook.generic.signed: bad template: unknown placeholder `{timestamp.{body}` \(expected)"])
        XCTAssertEqual(errors(generic("{body}}")), ["t.yaml:17:17: routes[0].webhook.generic.signed: bad template: `}` without an opening `{` \(expected)"])
        XCTAssertEqual(errors(generic("{timestamp}.{body}")), [
            "t.yaml:17:17: routes[0].webhook.generic.signed: `{timestamp}` needs the header it comes from (expected `timestamp_header: NAME`)"
        ])
        XCTAssertEqual(errors(generic("{body}", "\n        timestamp_header: X-Time")), [
            "t.yaml:18:27: routes[0].webhook.generic.timestamp_header: the timestamp is not signed (expected a `signed` template with `{timestamp}`)"
        ])
        XCTAssertEqual(errors(generic("{id}:{body}")), [
            "t.yaml:17:17: routes[0].webhook.generic.signed: `{id}` needs the header it comes from (expected `id_header: NAME` on the webhook)"
        ])
        XCTAssertEqual(errors(yaml("      scheme: generic\n      secrets: [env:S]")), [
            "t.yaml:13:7: routes[0].webhook.generic: required key is missing (expected the signature format: a mapping with `header` and optionally `prefix`, `encoding`, `algorithm`, `signed`, `timestamp_header`)"
        ])
        XCTAssertEqual(errors(yaml("      scheme: generic\n      secrets: [env:S]\n      generic: { header: \"X Sig\", encoding: base32 }")), [
            "t.yaml:15:26: routes[0].webhook.generic.header: `X Sig` is not a header name (expected e.g. `X-Signature`)",
            "t.yaml:15:45: routes[0].webhook.generic.encoding: unknown value `base32` (expected one of `hex`, `base64`)",
        ])
    }

    func testToleranceReplayAndMaxBody() {
        XCTAssertEqual(errors(yaml("      scheme: slack\n      secrets: [env:S]\n      tolerance: 500ms")), [
            "t.yaml:15:18: routes[0].webhook.tolerance: timestamps are whole seconds (expected at least `1s`, e.g. `5m`)"
        ])
        XCTAssertEqual(errors(yaml("      scheme: slack\n      secrets: [env:S]\n      tolerance: 48h")), [
            "t.yaml:15:18: routes[0].webhook.tolerance: `48h` is longer than 24h (expected at most 24h)"
        ])
        XCTAssertEqual(errors(yaml("      scheme: slack\n      secrets: [env:S]\n      tolerance: 300")), [
            "t.yaml:15:18: routes[0].webhook.tolerance: `300` has no unit (expected an integer with a unit ms, s, m or h, e.g. `500ms`, `10s`, `5m`)"
        ])
        XCTAssertEqual(errors(yaml("      scheme: slack\n      secrets: [env:S]\n      replay: sometimes")), [
            "t.yaml:15:15: routes[0].webhook.replay: wrong type: found a string (expected `true` or `false`)"
        ])
        XCTAssertEqual(errors(yaml("      scheme: slack\n      secrets: [env:S]\n      max_body: 1GiB")), [
            "t.yaml:15:17: routes[0].webhook.max_body: 1073741824 bytes is more than the gateway buffers for a webhook (expected at most `64MiB`)"
        ])
    }

    func testAWebhookRouteHasOneBodyLimit() {
        XCTAssertEqual(errors(yaml("      scheme: github\n      secrets: [env:S]", route: "\n    max_body_bytes: 1MiB")), [
            "t.yaml:12:21: routes[0].max_body_bytes: a webhook route's body limit is `webhook.max_body` (expected `max_body` under `webhook`)"
        ])
    }
}
