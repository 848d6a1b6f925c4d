/// The one structured record written for every request the gateway answers and every TLS
/// handshake it refuses. Holds identifiers and outcomes only: never a secret, a whole
/// token, a signature or a body.
///
/// Written once: its fields are `let`. With `var` fields the optimised initialiser built the
/// record in a temporary and copied it out (every string retained and released once more,
/// ~36 reference-count operations per request).
public struct DecisionRecord: Sendable, Equatable {
    public enum Decision: String, Sendable {
        case allow
        case deny
    }

    public struct Peer: Sendable, Equatable {
        public var spiffeID: String?
        public var certificateSHA256: String?
        public init(spiffeID: String?, certificateSHA256: String?) {
            self.spiffeID = spiffeID
            self.certificateSHA256 = certificateSHA256
        }
    }

    /// The verified bearer token's identifiers (never the token itself).
    public struct Token: Sendable, Equatable {
        public var issuer: String?
        public var subject: String?
        public var id: String?
        public init(issuer: String?, subject: String?, id: String?) {
            self.issuer = issuer
            self.subject = subject
            self.id = id
        }
    }

    /// The verified webhook delivery: which configured key matched (never the key) and the
    /// sender's delivery id.
    public struct Webhook: Sendable, Equatable {
        public var scheme: String
        /// Index into the route's `secrets`, or into `public_keys` when `publicKey`.
        public var secretIndex: Int
        public var publicKey: Bool
        public var deliveryID: String?
        public init(scheme: String, secretIndex: Int, publicKey: Bool = false, deliveryID: String?) {
            self.scheme = scheme
            self.secretIndex = secretIndex
            self.publicKey = publicKey
            self.deliveryID = deliveryID
        }
    }

    /// The route's rate limit: which policy, and whether the store answered.
    public struct RateLimit: Sendable, Equatable {
        public enum Store: String, Sendable {
            /// The store decided (admitted or limited).
            case ok
            /// The in-memory store was full; `on_full` decided.
            case full
            /// The shared store did not answer; `on_store_error` decided.
            case error
        }

        public var policy: String
        public var store: Store
        /// Requests left right now, when the store decided.
        public var remaining: Int?
        public init(policy: String, store: Store, remaining: Int?) {
            self.policy = policy
            self.store = store
            self.remaining = remaining
        }
    }

    public struct Upstream: Sendable, Equatable {
        public var name: String
        public var endpoint: String?
        /// 0 when the upstream never answered.
        public var status: Int
        public init(name: String, endpoint: String?, status: Int) {
            self.name = name
            self.endpoint = endpoint
            self.status = status
        }
    }

    /// A check in `mode: shadow`: evaluated and recorded, but it did not decide.
    public struct ShadowCheck: Sendable, Equatable {
        public var check: RouteCheck
        public var decision: Decision
        public var reason: ReasonCode
        public init(check: RouteCheck, decision: Decision, reason: ReasonCode) {
            self.check = check
            self.decision = decision
            self.reason = reason
        }
    }

    /// What the policy that did not decide (stable or candidate, during a rollout) would have done.
    public struct ShadowPolicy: Sendable, Equatable {
        public var version: String
        public var decision: Decision
        public var reason: ReasonCode
        public init(version: String, decision: Decision, reason: ReasonCode) {
            self.version = version
            self.decision = decision
            self.reason = reason
        }
    }

    /// Wall-clock time the exchange started, in milliseconds since the Unix epoch.
    public let timestampMillis: Int64
    public let requestID: String
    public let listener: String
    public let route: String?
    public let method: String?
    /// The normalised path (or, when it could not be normalised, nil: raw paths are untrusted input).
    public let path: String?
    public let clientIP: String
    public let peer: Peer?
    public let token: Token?
    public let webhook: Webhook?
    public let rateLimit: RateLimit?
    public let decision: Decision
    public let reason: ReasonCode
    /// The status sent to the client; 0 when no HTTP response was possible (TLS refusal),
    /// 499 when the client went away first.
    public let status: Int
    public let upstream: Upstream?
    public let durationMillis: Double
    public let policyVersion: String
    /// `stable` or `candidate`: whose policy decided.
    public let cohort: String
    /// Shadowed checks of the deciding policy, in the order they ran.
    public let shadow: [ShadowCheck]
    public let shadowPolicy: ShadowPolicy?

    public init(
        timestampMillis: Int64, requestID: String, listener: String, route: String? = nil,
        method: String? = nil, path: String? = nil, clientIP: String, peer: Peer? = nil, token: Token? = nil,
        webhook: Webhook? = nil, rateLimit: RateLimit? = nil, decision: Decision, reason: ReasonCode, status: Int, upstream: Upstream? = nil,
        durationMillis: Double, policyVersion: String, cohort: String = "stable", shadow: [ShadowCheck] = [],
        shadowPolicy: ShadowPolicy? = nil
    ) {
        self.timestampMillis = timestampMillis
        self.requestID = requestID
        self.listener = listener
        self.route = route
        self.method = method
        self.path = path
        self.clientIP = clientIP
        self.peer = peer
        self.token = token
        self.webhook = webhook
        self.rateLimit = rateLimit
        self.decision = decision
        self.reason = reason
        self.status = status
        self.upstream = upstream
        self.durationMillis = durationMillis
        self.policyVersion = policyVersion
        self.cohort = cohort
        self.shadow = shadow
        self.shadowPolicy = shadowPolicy
    }
}

extension DecisionRecord {
    /// One JSON object, no trailing newline.
    public func jsonLine() -> String {
        String(decoding: jsonBytes(), as: UTF8.self)
    }

    /// The record as JSON bytes. Hand-written: it runs once per request.
    public func jsonBytes() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(512)
        appendJSON(to: &bytes)
        return bytes
    }

    /// The record as one JSON object appended to `bytes` (the log writes a batch into one buffer).
    public func appendJSON(to bytes: inout [UInt8]) {
        // Taken over and handed back, so appending never copies what is already there
        // (growth is the array's own, geometric).
        var taken: [UInt8] = []
        swap(&taken, &bytes)
        var json = JSONObjectWriter(continuing: consume taken)
        json.field("ts", timestampMillis: timestampMillis)
        json.field("request_id", requestID)
        json.field("listener", listener)
        json.field("route", route)
        json.field("method", method)
        json.field("path", path)
        json.field("client_ip", clientIP)
        if let peer {
            json.object("peer") { inner in
                inner.field("spiffe_id", peer.spiffeID)
                inner.field("cert_sha256", peer.certificateSHA256)
            }
        }
        if let token {
            json.object("token") { inner in
                inner.field("iss", token.issuer)
                inner.field("sub", token.subject)
                inner.field("jti", token.id)
            }
        }
        if let webhook {
            json.object("webhook") { inner in
                inner.field("scheme", webhook.scheme)
                inner.field(webhook.publicKey ? "public_key_index" : "secret_index", webhook.secretIndex)
                inner.field("delivery_id", webhook.deliveryID)
            }
        }
        if let rateLimit {
            json.object("rate_limit") { inner in
                inner.field("policy", rateLimit.policy)
                inner.field("store", rateLimit.store.rawValue)
                if let remaining = rateLimit.remaining { inner.field("remaining", remaining) }
            }
        }
        if !shadow.isEmpty {
            json.objects("shadow", shadow) { inner, entry in
                inner.field("check", entry.check.rawValue)
                inner.field("decision", entry.decision.rawValue)
                inner.field("reason", entry.reason.rawValue)
            }
        }
        json.field("decision", decision.rawValue)
        json.field("reason", reason.rawValue)
        json.field("status", status)
        if let upstream {
            json.object("upstream") { inner in
                inner.field("name", upstream.name)
                inner.field("endpoint", upstream.endpoint)
                inner.field("status", upstream.status)
            }
        }
        json.field("duration_ms", thousandths: Int((durationMillis * 1000).rounded()))
        json.object("policy") { inner in
            inner.field("version", policyVersion)
            inner.field("cohort", cohort)
            if let shadowPolicy {
                inner.object("shadow") { other in
                    other.field("version", shadowPolicy.version)
                    other.field("decision", shadowPolicy.decision.rawValue)
                    other.field("reason", shadowPolicy.reason.rawValue)
                }
            }
        }
        bytes = json.finish()
    }
}
