import GatehouseCore
import NIOCore
import NIOHTTP1

/// One request/response exchange on a client connection: what the decision record needs,
/// gathered as the exchange progresses. A class: it is updated in place on every event, and
/// copying a struct this size per event showed up in profiles. Loop-bound, like its handler.
final class Exchange {
    let startedAt: NIODeadline
    let startedWallMillis: Int64
    var requestID: String
    var head: HTTPRequestHead?
    var path: String?
    var route: CompiledRoute?
    var framing: RequestValidator.BodyFraming = .none
    var bodyLimit: Int = 0
    var bodyBytes: Int = 0
    /// The client sent `.end`.
    var requestComplete = false
    /// `.end` was written to the upstream.
    var requestForwarded = false
    var upstreamRequest: UpstreamRequestHead?
    /// The verified bearer token's identifiers, for the record.
    var token: DecisionRecord.Token?
    /// The verified webhook delivery, for the record.
    var webhook: DecisionRecord.Webhook?
    /// The route's rate limit, for the record.
    var rateLimit: DecisionRecord.RateLimit?
    /// `RateLimit-Policy` and `RateLimit`, added to the response.
    var rateLimitHeaders: [(String, String)] = []
    /// A deny must close the connection rather than read and drop the rest of the body.
    var denyCloses = false
    /// The client waits for `100 Continue` before sending its body.
    var expectsContinue = false
    /// Replay keys this exchange inserted: forgotten again if the upstream does not take the
    /// delivery, so the sender's retry is not refused as a replay.
    var insertedReplayKeys: [String] = []
    var upstreamEndpoint: String?
    var upstreamStatus = 0
    var upstreamKeepAlive = true
    var responseHeadSent = false
    /// How the response body reaches the client (set with the upstream's head).
    var clientFraming: HeaderRewriter.ResponseFraming = .noBody
    var responseStatus = 0
    var attempts = 0
    /// Close the client connection once the response is written.
    var closeAfterResponse = false
    /// The deciding policy's version, and `stable` or `candidate`.
    var policyVersion: String?
    var cohort = "stable"
    /// Shadowed checks of the deciding policy, in the order they ran.
    var shadow: [DecisionRecord.ShadowCheck] = []
    /// During a rollout: what the other policy would have done with this request's head.
    var shadowPolicy: DecisionRecord.ShadowPolicy?
    var rollout: RolloutRuntime?

    init(requestID: String, startedAt: NIODeadline = .now(), wallMillis: Int64 = WallClock.nowMillis()) {
        self.startedAt = startedAt
        self.startedWallMillis = wallMillis
        self.requestID = requestID
    }

    /// Idempotent per RFC 9110 §9.2.2: safe to send twice.
    var isIdempotent: Bool {
        switch head?.method {
        case .GET, .HEAD, .OPTIONS, .TRACE, .PUT, .DELETE: return true
        default: return false
        }
    }
}
