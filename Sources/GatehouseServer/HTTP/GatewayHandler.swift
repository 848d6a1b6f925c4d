import Foundation
import GatehouseCore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// The per-connection heart of the data path: validate → normalise → route → decide →
/// forward → respond, writing one decision record per request.
///
/// It reads the client's bytes itself (`HTTP1RequestParser`) and handles one request at a
/// time: requests a client pipelines behind it wait unparsed, up to a bound, until the
/// exchange in flight ends. Upstream connections run on this connection's event loop, so
/// both sides are driven from here without locks. Backpressure runs both ways: when the
/// side being written to stops being writable, reads on the other side are withheld.
final class GatewayHandler: ChannelDuplexHandler, UpstreamResponseReceiver {
    typealias InboundIn = ByteBuffer
    // No response encoder below: responses are written as bytes (`ResponseBytes`).
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Dependencies: Sendable {
        let snapshots: SnapshotStore
        let listener: ListenerRuntime
        let decisionLog: DecisionLog
        let pools: UpstreamPools
        /// Operational log (never request data): problems an operator must fix, rate-limited.
        let logger: Logger
        /// Token ids, webhook deliveries and rate cells; outlives configuration snapshots.
        let state: any StateStore
        /// `gatehouse_decisions_total` and request durations (the gateway passes its registry's).
        var metrics = DecisionMetrics(registry: .init())
        var checks: CheckDurations?
        var handshakes: TLSHandshakeCounters?
    }

    private enum State {
        /// Waiting for the next request head.
        case idle
        /// A deny response is written; the rest of the request body is discarded.
        case rejecting
        /// Waiting for the state store (replay, rate limit); client reads are withheld.
        case awaitingState
        /// A webhook delivery's body is being buffered (up to the route's `max_body`) so its
        /// signature can be checked before anything reaches the upstream.
        case verifyingBody
        /// Waiting for an upstream connection; client reads are withheld.
        case connecting
        /// Request and response streaming between the client and `upstream`.
        case proxying
        /// The connection is going away; nothing more is done.
        case closed
    }

    /// Request bytes discarded after a deny before the connection is closed instead.
    private static let maxDiscardBytes = 1 << 20
    /// Unparsed bytes held (requests pipelined behind the one in flight) before client reads
    /// stop until the exchange ends. Clients rarely pipeline, so reads go on until then.
    static let maxHeldInputBytes = 64 * 1024

    private let dependencies: Dependencies
    private let client: ClientAddress
    private let clientIsTrustedProxy: Bool
    /// The TLS handshake's verified client certificate lands here (before any request).
    private let peerSlot: PeerSlot?
    private let timeouts: ConnectionTimeouts?
    private var state = State.idle
    private var exchange: Exchange?
    /// The running configuration as this connection last read it (no lock while no reload happened).
    private var snapshotReading: ReadMostly<GatewaySnapshot>.Reading?
    /// What the head checks keep between this connection's requests (its token, the verifier).
    private var checksMemory = HeadChecks.ConnectionMemory()
    /// This event loop's decision-log queue (no lock shared with the other loops).
    private var logQueue: DecisionLog.Queue?
    /// This event loop's held metrics observations (counted in bursts, and at every scrape).
    private var heldMetrics: LoopObservations<DecisionMetrics.Observation>?
    private var checkDurations: CheckDurations.Recorder?
    private var pool: UpstreamPool?
    private var upstream: UpstreamConnection?
    private var bufferedBody: [ByteBuffer] = []
    private var discardedBytes = 0
    /// The upstream's silence limit while a response is due; re-armed on every upstream read.
    private var responseTimer: DeadlineTimer?
    /// Client reads are withheld while the upstream cannot take more (or is not connected yet)...
    private var clientReadsPausedForUpstream = false
    /// ...or while `maxHeldInputBytes` of pipelined requests wait.
    private var clientReadsPausedForPipeline = false
    private var clientReadPending = false
    /// The current request's `.end` has arrived: anything more belongs to the next request.
    private var requestEndSeen = false
    private var parser: HTTP1RequestParser
    private var input = ClientInput()
    /// Response bytes joined until the next flush (one TLS record per response).
    private var output = ClientOutput()
    /// `parseInput` is running: an exchange that ends inside it lets its loop go on to the
    /// next request, instead of starting a nested parse (pipelined requests refused one
    /// after another would otherwise nest once each).
    private var parsing = false
    /// Draining on shutdown: finish the exchange in flight, then close.
    private var quiescing = false
    private var upstreamNeedsFlush = false
    private var clientNeedsFlush = false
    private var context: ChannelHandlerContext?
    /// Per-connection id source: seeded once, no syscall per request.
    private var random = FastRandom()
    /// The metric series this connection's last request was counted in.
    private var recentSeries = DecisionMetrics.RecentSeries()

    init(dependencies: Dependencies, client: ClientAddress, peerSlot: PeerSlot? = nil, timeouts: ConnectionTimeouts?) {
        self.dependencies = dependencies
        self.listener = dependencies.listener
        self.client = client
        self.peerSlot = peerSlot
        self.clientIsTrustedProxy = dependencies.listener.isTrustedProxy(client)
        self.timeouts = timeouts
        self.parser = HTTP1RequestParser(limits: .init(dependencies.listener.config.limits))
    }

    private let listener: ListenerRuntime

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        logQueue = dependencies.decisionLog.queue(for: context.eventLoop)
        heldMetrics = dependencies.metrics.observations(for: context.eventLoop)
        checkDurations = dependencies.checks?.recorder(for: context.eventLoop)
        timeouts?.start(context: context)
        responseTimer = DeadlineTimer(eventLoop: context.eventLoop) { [unowned self] in self.responseTimedOut() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        responseTimer?.cancel()
        timeouts?.stop()
        // channelInactive has let go of any upstream; this is the backstop that guarantees the
        // upstream handler's strong `receiver` never outlives this handler.
        abortUpstream()
        output.discard()
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        timeouts?.channelActive()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        timeouts?.bytesArrived()
        if state == .closed || quiescing && state == .idle || parser.hasFailed { return }
        input.append(unwrapInboundIn(data))
        parseInput(context: context)
    }

    /// Hands the parsed request to the exchange: the current request's parts while it is
    /// under way; the next request only once the exchange before it has ended.
    private func parseInput(context: ChannelHandlerContext) {
        guard !parsing else { return }
        parsing = true
        defer { parsing = false }
        while state == .idle || (state != .closed && !requestEndSeen) {
            if quiescing && state == .idle { break }
            let event: HTTP1RequestParser.Event
            do {
                guard let parsed = try parser.next(from: &input.bytes) else { break }
                event = parsed
            } catch {
                input.discard()
                handleParserError(error, context: context)
                return
            }
            switch event {
            case .head(let head):
                requestEndSeen = false
                receivedHead(head, context: context)
            case .body(let body):
                receivedBody(body, context: context)
            case .end:
                requestEndSeen = true
                receivedEnd(context: context)
            }
        }
        input.endOfRead(allocator: context.channel.allocator)
        let full = input.count >= Self.maxHeldInputBytes
        if full != clientReadsPausedForPipeline {
            clientReadsPausedForPipeline = full
            if !full { resumeClientReadsIfUnblocked() }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // Graceful shutdown: an idle connection closes now; a busy one after its response.
            quiescing = true
            input.discard()
            if state == .idle {
                closeClient(context: context)
            } else {
                exchange?.closeAfterResponse = true
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if upstreamNeedsFlush, let upstream {
            upstreamNeedsFlush = false
            upstream.channel.flush()
        }
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if clientReadsPausedForUpstream || clientReadsPausedForPipeline {
            clientReadPending = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { upstream?.handler.resumeReads() }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // Transport errors (reset, TLS alert): the connection is gone.
        context.close(promise: nil)
    }

    /// A request the parser refused: answered in turn (after any exchange before it), and the
    /// connection closed, since where the next request would start is no longer known.
    private func handleParserError(_ failure: HTTP1RequestParser.Failure, context: ChannelHandlerContext) {
        let reason = failure.reason
        switch state {
        case .idle:
            if exchange == nil { exchange = newExchange() }
            respondWithError(reason, close: true, context: context)
        case .rejecting:
            // The request was already answered; its body is broken, so the connection goes.
            closeClient(context: context)
        case .awaitingState, .verifyingBody, .connecting, .proxying:
            abortUpstream()
            if exchange?.responseHeadSent == false {
                respondWithError(reason, close: true, context: context)
            } else {
                finish(decision: .allow, reason: reason, status: exchange?.responseStatus ?? 0)
                closeClient(context: context)
            }
        case .closed:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if state == .awaitingState || state == .verifyingBody || state == .connecting || state == .proxying {
            // The client went away mid-exchange: stop the upstream side too.
            abortUpstream()
            finish(decision: .allow, reason: .allowed, status: 499)
        }
        state = .closed
        timeouts?.stop()
        context.fireChannelInactive()
    }

    // MARK: Request

    private func receivedHead(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        timeouts?.requestStarted()
        let exchange = newExchange()
        exchange.head = head
        let snapshot = dependencies.snapshots.snapshot(reusing: &snapshotReading)
        self.exchange = exchange
        exchange.policyVersion = snapshot.version  // a rollout's deciding policy replaces it

        let validated: RequestValidator.Validated
        switch listener.validator.validate(head) {
        case .success(let result): validated = result
        case .failure(let rejection):
            respondWithError(rejection.reason, close: rejection.closeConnection, context: context)
            return
        }
        exchange.framing = validated.framing

        let target: NormalizedTarget
        switch listener.normalizer.normalize(head.uri) {
        case .success(let normalized): target = normalized
        case .failure:
            respondWithError(.requestInvalidPath, close: Self.mustCloseAfterDeny(validated), context: context)
            return
        }
        exchange.path = target.path

        let peer = peerSlot?.peer
        // The router canonicalises the host itself, and only when some route names a host.
        let request = HeadChecks.Request(
            host: validated.host, path: target.path, method: head.method.rawValue, headers: head.headers,
            authorization: validated.authorization, peer: peer, tokens: snapshot.tokens, durations: checkDurations)
        let verdict = decidingVerdict(request, snapshot: snapshot, exchange: exchange)
        guard let route = verdict.route else {
            respondWithError(.routeNotFound, close: Self.mustCloseAfterDeny(validated), context: context)
            return
        }
        exchange.route = route
        let bodyLimit = route.maxBodyBytes ?? listener.config.limits.maxBodyBytes
        exchange.bodyLimit = bodyLimit
        if case .contentLength(let length) = validated.framing, length > bodyLimit {
            respondWithError(.requestTooLarge, close: true, context: context)
            return
        }
        exchange.shadow = verdict.shadow
        if let token = verdict.token {
            exchange.token = DecisionRecord.Token(issuer: token.iss, subject: token.sub, id: token.jti)
        }
        if let denial = verdict.denial {
            respondWithError(denial, close: Self.mustCloseAfterDeny(validated), context: context)
            return
        }
        exchange.denyCloses = Self.mustCloseAfterDeny(validated)
        var claimHeaders: [(String, String)] = []
        if let tokenCheck = route.tokenCheck, let verified = verdict.token {
            claimHeaders = Self.headers(from: verified, tokenCheck.claimHeaders)
            if tokenCheck.mintUpstream {
                // The next hop gets a token scoped to it, never the broad inbound one.
                guard let minted = snapshot.minter?.mint(
                    audience: route.cluster.tokenAudience, subject: verified.sub, actor: peer?.spiffeID,
                    scopes: tokenCheck.requirement.scopes.sorted(), now: Date())
                else {
                    respondWithError(.upstreamUnavailable, close: Self.mustCloseAfterDeny(validated), context: context)
                    return
                }
                claimHeaders.append(("authorization", "Bearer " + minted))
            }
        }
        let verifiedToken = verdict.token
        let replayedJTI = verdict.replayKey

        var uri = target.path
        if let query = target.query { uri += "?" + query }
        var upstreamRequest = UpstreamRequestHead(method: head.method, uri: uri, allocator: context.channel.allocator)
        exchange.requestID = HeaderRewriter.upstreamRequestHeaders(
            from: head.headers,
            context: .init(
                clientIP: client.text, clientIsTrustedProxy: clientIsTrustedProxy, scheme: listener.scheme,
                host: validated.host, framing: validated.framing, peer: peer,
                forwardClientCert: route.forwardClientCert, stripHeaders: route.tokenCheck?.stripHeaders ?? [],
                addHeaders: claimHeaders, hasConnectionField: validated.hasConnectionField
            ),
            requestID: exchange.requestID, random: &random, into: &upstreamRequest
        )
        upstreamRequest.finish()
        exchange.upstreamRequest = upstreamRequest
        // Without a Connection field the version decides; `isKeepAlive` would search the fields.
        let keepAlive = validated.hasConnectionField ? head.isKeepAlive : head.version.minor >= 1
        if !keepAlive { exchange.closeAfterResponse = true }
        exchange.expectsContinue = validated.expectsContinue
        // The connection's previous pool serves again while it is the cluster's current one (a
        // reload that replaces the cluster retires it): no lookup per request.
        if pool?.cluster !== route.cluster || pool?.isRetired != false {
            pool = dependencies.pools.pool(for: route.cluster, on: context.eventLoop)
        }
        guard replayedJTI != nil || route.rateLimit != nil else {
            // Nothing to ask the state store: no continuation closures on the common path.
            forwardOrVerifyBody(context: context)
            return
        }
        let rateKey = route.rateLimit.map {
            RateLimitKey.make($0, route: route.name, peer: peer, token: verifiedToken, clientIP: client.text, headers: head.headers)
        }
        checkReplayedToken(replayedJTI, context: context) { handler in
            handler.checkRateLimit(route.rateLimit, key: rateKey, context: context) { handler in
                handler.forwardOrVerifyBody(context: context)
            }
        }
    }

    /// The stable policy's verdict; during a rollout, the verdict of the policy that decides
    /// for this caller, with the other policy's outcome kept for the record.
    private func decidingVerdict(_ request: HeadChecks.Request, snapshot: GatewaySnapshot, exchange: Exchange) -> HeadVerdict {
        let stable = HeadChecks.evaluate(snapshot.router, request, memory: &checksMemory)
        guard let rollout = snapshot.rollout else { return stable }
        // Check durations are the stable policy's (timing both would time every check twice).
        var untimed = request
        untimed.durations = nil
        let candidate = HeadChecks.evaluate(rollout.router, untimed, memory: &checksMemory)
        let key = cohortKey(rollout.config.cohort, request: request, tokens: [stable.token, candidate.token], exchange: exchange)
        let candidateDecides = rollout.candidateDecides(cohortKey: key)
        let other = candidateDecides ? stable : candidate
        exchange.rollout = rollout
        exchange.cohort = candidateDecides ? "candidate" : "stable"
        exchange.policyVersion = candidateDecides ? rollout.candidateVersion : rollout.stableVersion
        exchange.shadowPolicy = .init(
            version: candidateDecides ? rollout.stableVersion : rollout.candidateVersion, decision: other.decision, reason: other.reason)
        return candidateDecides ? candidate : stable
    }

    /// What puts this request in or out of the canary; nil keeps it on the stable policy.
    private func cohortKey(
        _ cohort: RolloutConfig.Cohort, request: HeadChecks.Request, tokens: [VerifiedToken?], exchange: Exchange
    ) -> String? {
        switch cohort {
        case .peer: return request.peer?.spiffeID
        // Only a verified token's subject: a caller must not pick its policy with a forged claim.
        case .subject: return tokens.lazy.compactMap { $0?.sub }.first
        case .ip: return client.text
        case .request: return exchange.requestID
        }
    }

    // MARK: Checks against the state store

    /// Runs `next` with the store's answer: at once, or when it arrives on this loop (client
    /// reads withheld meanwhile). Nothing runs if the exchange ended in the meantime.
    private func awaitAnswer<T>(
        _ answer: StateAnswer<T>, context: ChannelHandlerContext, _ next: @escaping (GatewayHandler, Result<T, Error>) -> Void
    ) {
        switch answer {
        case .now(let value):
            next(self, .success(value))
        case .later(let future):
            guard let exchange else { return }
            state = .awaitingState
            pauseClientReads()
            let loopBound = NIOLoopBound((self, exchange, next), eventLoop: context.eventLoop)
            future.hop(to: context.eventLoop).whenComplete { result in
                let (handler, waiting, next) = loopBound.value
                guard handler.state == .awaitingState, handler.exchange === waiting else { return }
                handler.resumeClientReads()
                next(handler, result)
            }
        }
    }

    /// `replay: jti`: each token id once. No answer from the store is a refusal (fail closed).
    private func checkReplayedToken(
        _ jti: (key: String, expiresAt: Date, shadowed: Bool)?, context: ChannelHandlerContext,
        then next: @escaping (GatewayHandler) -> Void
    ) {
        guard let jti else { return next(self) }
        awaitAnswer(dependencies.state.insertIfAbsent(jti.key, expiresAt: jti.expiresAt, on: context.eventLoop), context: context) {
            handler, result in
            guard let exchange = handler.exchange else { return }
            let reason: ReasonCode
            switch result {
            case .success(.inserted):
                exchange.insertedReplayKeys.append(jti.key)
                if jti.shadowed { exchange.shadow.append(.init(check: .token, decision: .allow, reason: .allowed)) }
                return next(handler)
            case .success(.duplicate): reason = .replayDetected
            case .success(.unavailable), .failure: reason = .stateUnavailable
            }
            handler.refuse(.token, reason, shadowed: jti.shadowed, close: exchange.denyCloses, context: context, orElse: next)
        }
    }

    /// A check refused: an enforced one answers `reason`; a shadowed one is recorded and the
    /// exchange goes on with `next`.
    private func refuse(
        _ check: RouteCheck, _ reason: ReasonCode, shadowed: Bool, close: Bool, context: ChannelHandlerContext,
        orElse next: (GatewayHandler) -> Void
    ) {
        guard shadowed else { return respondWithError(reason, close: close, context: context) }
        exchange?.shadow.append(.init(check: check, decision: .deny, reason: reason))
        next(self)
    }

    /// The route's rate limit: one GCRA step on the caller's cell.
    private func checkRateLimit(
        _ limit: RateLimitConfig?, key: String?, context: ChannelHandlerContext, then next: @escaping (GatewayHandler) -> Void
    ) {
        guard let limit, let key else { return next(self) }
        let started = NIODeadline.now()
        awaitAnswer(dependencies.state.rateLimit(key, policy: limit.policy, on: context.eventLoop), context: context) {
            handler, result in
            handler.dependencies.checks?.observe(.rateLimit, since: started)
            guard let exchange = handler.exchange else { return }
            let fallback: RateLimitFallback
            let shadowed = limit.mode == .shadow
            switch result {
            case .success(let decision?):
                exchange.rateLimit = .init(policy: limit.name, store: .ok, remaining: decision.remaining)
                if shadowed {
                    // Recorded only: the client is not told about a limit that is not enforced.
                    exchange.shadow.append(.init(check: .rateLimit, decision: decision.allowed ? .allow : .deny,
                        reason: decision.allowed ? .allowed : .rateLimited))
                    return next(handler)
                }
                exchange.rateLimitHeaders = RateLimitHeaders.fields(limit, decision)
                if decision.allowed { return next(handler) }
                handler.respondWithError(
                    .rateLimited, close: exchange.denyCloses, context: context,
                    headers: [("retry-after", RateLimitHeaders.retryAfter(decision))] + exchange.rateLimitHeaders)
                return
            case .success(nil):
                exchange.rateLimit = .init(policy: limit.name, store: .full, remaining: nil)
                fallback = limit.onFull
            case .failure:
                exchange.rateLimit = .init(policy: limit.name, store: .error, remaining: nil)
                fallback = limit.onStoreError
            }
            // The store could not decide: the limit's policy does, and the record says so.
            if fallback == .allow { return next(handler) }
            handler.refuse(.rateLimit, .stateUnavailable, shadowed: shadowed, close: exchange.denyCloses, context: context, orElse: next)
        }
    }

    /// Every check passed: buffer and verify a webhook body, or go upstream.
    private func forwardOrVerifyBody(context: ChannelHandlerContext) {
        guard let exchange, let route = exchange.route else { return }
        if exchange.expectsContinue, let head = exchange.head {
            // Only now: a client refused by a check before needs not send its body at all.
            let interim = ResponseBytes.head(
                versionMinor: head.version.minor, status: .continue, headers: [], allocator: context.channel.allocator)
            output.write(interim, context: context)
            output.flush(context: context)
        }
        guard route.webhook != nil else {
            acquireUpstream(excluding: nil, context: context)
            return
        }
        // Nothing goes upstream until the whole body is here and its signature checked.
        state = .verifyingBody
        if exchange.requestComplete, let verifier = route.webhook {
            verifyDelivery(verifier, context: context)
        } else {
            armBodyTimer()
        }
    }

    /// A webhook body that stops arriving for the listener's `header_read` timeout is
    /// answered with 408: a buffered delivery must not hold a connection forever.
    private func armBodyTimer() {
        responseTimer?.arm(in: .init(listener.config.timeouts.headerRead))
    }

    /// The whole delivery is buffered: verify it, remember it, then forward the exact bytes.
    private func verifyDelivery(_ verifier: WebhookVerifier, context: ChannelHandlerContext) {
        responseTimer?.disarm()
        guard let exchange, let head = exchange.head else { return }
        let body = Self.contiguous(bufferedBody, allocator: context.channel.allocator)
        bufferedBody = body.readableBytes > 0 ? [body] : []
        let headers = head.headers
        let checks = dependencies.checks
        let verify: @Sendable () -> WebhookVerdict = {
            let started = NIODeadline.now()
            defer { checks?.observe(.webhook, since: started) }
            return body.withUnsafeReadableBytes { bytes in verifier.verify(headers: headers, body: bytes, now: Date()) }
        }
        // A large body is hashed on the thread pool: SHA-256 runs at about 2 GB/s, so a
        // 64 MiB delivery would hold this event loop (and every connection on it) for ~30 ms.
        let answer: StateAnswer<WebhookVerdict> =
            body.readableBytes <= Self.inlineVerificationBytes
            ? .now(verify()) : .later(NIOThreadPool.singleton.runIfActive(eventLoop: context.eventLoop, verify))
        awaitAnswer(answer, context: context) { handler, result in
            guard let exchange = handler.exchange else { return }
            switch result {
            case .success(.invalid(let reason, _)):
                handler.refuse(.webhook, reason, shadowed: verifier.config.mode == .shadow, close: false, context: context) {
                    $0.acquireUpstream(excluding: nil, context: context)
                }
            case .success(.valid(let delivery)):
                exchange.webhook = DecisionRecord.Webhook(
                    scheme: verifier.config.scheme.rawValue, secretIndex: delivery.secretIndex,
                    publicKey: delivery.verifiedByPublicKey, deliveryID: delivery.deliveryID)
                handler.rememberDelivery(
                    delivery.replayKeys.map(\.value)[...], expiresAt: delivery.replayExpiresAt,
                    shadowed: verifier.config.mode == .shadow, context: context)
            case .failure:
                // The thread pool is gone: the process is shutting down.
                handler.respondWithError(.stateUnavailable, close: true, context: context)
            }
        }
    }

    /// Webhook bodies up to this size are verified on the event loop (a few µs per KiB).
    static let inlineVerificationBytes = 64 * 1024

    /// Inserts a verified delivery's replay keys one by one; any seen before is a replay.
    private func rememberDelivery(_ keys: ArraySlice<String>, expiresAt: Date, shadowed: Bool, context: ChannelHandlerContext) {
        guard let key = keys.first else {
            if shadowed { exchange?.shadow.append(.init(check: .webhook, decision: .allow, reason: .allowed)) }
            acquireUpstream(excluding: nil, context: context)
            return
        }
        awaitAnswer(dependencies.state.insertIfAbsent(key, expiresAt: expiresAt, on: context.eventLoop), context: context) {
            handler, result in
            guard let exchange = handler.exchange else { return }
            let reason: ReasonCode
            switch result {
            case .success(.inserted):
                exchange.insertedReplayKeys.append(key)
                return handler.rememberDelivery(keys.dropFirst(), expiresAt: expiresAt, shadowed: shadowed, context: context)
            case .success(.duplicate): reason = .replayDetected
            case .success(.unavailable), .failure: reason = .stateUnavailable
            }
            handler.refuse(.webhook, reason, shadowed: shadowed, close: false, context: context) {
                $0.acquireUpstream(excluding: nil, context: context)
            }
        }
    }

    /// One buffer holding `parts` in order (the parts themselves when there is just one).
    static func contiguous(_ parts: [ByteBuffer], allocator: ByteBufferAllocator) -> ByteBuffer {
        if parts.count == 1 { return parts[0] }
        var joined = allocator.buffer(capacity: parts.reduce(0) { $0 + $1.readableBytes })
        for var part in parts { joined.writeBuffer(&part) }
        return joined
    }

    /// `claims_to_headers`: scalar claims only, and only values that are safe in a header.
    static func headers(from token: VerifiedToken, _ mapping: [(claim: String, header: String)]) -> [(String, String)] {
        mapping.compactMap { entry in
            let value: String
            switch token.claims[entry.claim] {
            case .string(let text)?: value = text
            case .integer(let number)?: value = String(number)
            case .bool(let flag)?: value = String(flag)
            default: return nil
            }
            guard value.utf8.count <= 1024, RequestValidator.isCleanValue(value) else { return nil }
            return (entry.header, value)
        }
    }

    private func receivedBody(_ body: ByteBuffer, context: ChannelHandlerContext) {
        switch state {
        case .rejecting:
            discardedBytes += body.readableBytes
            if discardedBytes > Self.maxDiscardBytes { closeClient(context: context) }
        case .awaitingState, .verifyingBody, .connecting, .proxying:
            guard let exchange else { return }
            exchange.bodyBytes += body.readableBytes
            if exchange.bodyBytes > exchange.bodyLimit {
                abortUpstream()
                if exchange.responseHeadSent {
                    finish(decision: .deny, reason: .requestTooLarge, status: exchange.responseStatus)
                    closeClient(context: context)
                } else {
                    respondWithError(.requestTooLarge, close: true, context: context)
                }
                return
            }
            if state == .verifyingBody {
                bufferedBody.append(body)
                armBodyTimer()
            } else if state == .connecting || state == .awaitingState {
                bufferedBody.append(body)
            } else if let upstream {
                upstream.writeBody(body)
                upstreamNeedsFlush = true
                if !upstream.channel.isWritable { pauseClientReads() }
            }
        case .idle, .closed:
            break
        }
    }

    private func receivedEnd(context: ChannelHandlerContext) {
        switch state {
        case .rejecting:
            exchange = nil
            becomeIdle()
        case .awaitingState:
            exchange?.requestComplete = true
        case .verifyingBody:
            exchange?.requestComplete = true
            if let verifier = exchange?.route?.webhook { verifyDelivery(verifier, context: context) }
        case .connecting:
            exchange?.requestComplete = true
        case .proxying:
            exchange?.requestComplete = true
            exchange?.requestForwarded = true
            // A request without a chunked body ends with nothing to write: no empty flush
            // through the upstream pipeline (one per GET).
            if upstream?.writeEnd() == true { upstreamNeedsFlush = true }
        case .idle, .closed:
            break
        }
    }

    // MARK: Upstream connection

    private func acquireUpstream(excluding: Int?, context: ChannelHandlerContext) {
        guard let pool else { return }
        exchange?.attempts += 1
        state = .connecting
        switch pool.acquire(excluding: excluding) {
        case .ready(let connection):
            attach(connection, context: context)
        case .pending(let future):
            pauseClientReads()
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            future.whenComplete { result in
                let (handler, context) = loopBound.value
                handler.connectCompleted(result, excluding: excluding, context: context)
            }
        }
    }

    private func connectCompleted(
        _ result: Result<UpstreamConnection, Error>, excluding: Int?, context: ChannelHandlerContext
    ) {
        guard state == .connecting, let exchange else {
            // The client left while we were connecting: the connection goes back to the pool.
            if case .success(let connection) = result { pool?.release(connection, reusable: true) }
            return
        }
        switch result {
        case .success(let connection):
            resumeClientReads()
            attach(connection, context: context)
        case .failure(let error):
            let connectError = error as? UpstreamPool.ConnectError
            let poolExhausted = (error as? UpstreamFailure) == .poolExhausted
            if let connectError, exchange.attempts < 2, exchange.isIdempotent,
                pool?.cluster.selector.endpoints.count ?? 0 > 1
            {
                // One retry, on another endpoint, for a connect failure of an idempotent request:
                // nothing was sent yet, so the upstream cannot have acted on it.
                acquireUpstream(excluding: connectError.endpoint, context: context)
                return
            }
            if let connectError, let detail = connectError.detail, let cluster = pool?.cluster {
                // The record says which reason; only the log can say what the upstream presented.
                cluster.handshakeFailureLog.warning(
                    dependencies.logger, "upstream TLS handshake refused",
                    metadata: [
                        "upstream": .string(cluster.name), "reason": .string(connectError.reason.rawValue),
                        "detail": .string(detail),
                    ])
            }
            resumeClientReads()
            respondWithError(poolExhausted ? .upstreamPoolExhausted : connectError?.reason ?? .upstreamUnavailable,
                close: !(exchange.requestComplete || exchange.framing == .none), context: context)
        }
    }

    private func attach(_ connection: UpstreamConnection, context: ChannelHandlerContext) {
        guard let request = exchange?.upstreamRequest else { return }
        upstream = connection
        connection.handler.receiver = self
        exchange?.upstreamEndpoint = connection.endpointLabel
        state = .proxying
        connection.writeHead(request, chunked: exchange?.framing == .chunked)
        for body in bufferedBody { connection.writeBody(body) }
        bufferedBody.removeAll()
        if exchange?.requestComplete == true {
            exchange?.requestForwarded = true
            connection.writeEnd()
        }
        connection.channel.flush()
        armResponseTimer()
        if !connection.channel.isWritable { pauseClientReads() }
    }

    private func armResponseTimer() {
        guard let cluster = pool?.cluster else { return }
        responseTimer?.arm(in: cluster.responseTimeout)
    }

    private func responseTimedOut() {
        if state == .verifyingBody, let context {
            respondWithError(.requestTimeout, close: true, context: context)
            return
        }
        guard state == .proxying, let upstream else { return }
        upstream.handler.receiver = nil
        upstreamFailed(.responseTimeout)
    }

    /// Detaches from the upstream connection without reusing it.
    private func abortUpstream() {
        responseTimer?.disarm()
        bufferedBody.removeAll()
        if let upstream {
            self.upstream = nil
            pool?.release(upstream, reusable: false)
        }
    }

    // MARK: UpstreamResponseReceiver

    func upstreamResponseHead(_ head: UpstreamResponseHead) {
        guard let context, state == .proxying, let exchange, let request = exchange.head else { return }
        armResponseTimer()
        exchange.upstreamStatus = head.status
        exchange.upstreamKeepAlive = head.keepAlive
        let clientVersionMinor = request.version.minor == 0 ? 0 : 1
        let framing = HeaderRewriter.clientResponseFraming(head, clientVersionMinor: clientVersionMinor)
        exchange.clientFraming = framing
        // Answered before the whole request arrived: the rest of the request cannot be
        // relayed any more, so the connection closes after this response.
        if !exchange.requestComplete || framing == .closeDelimited { exchange.closeAfterResponse = true }
        let connection: StaticString? =
            exchange.closeAfterResponse ? "close" : clientVersionMinor == 0 ? "keep-alive" : nil
        // Room for a small body too: the write coalescer appends it here rather than copying both.
        var bodyRoom = 0
        if case .contentLength(let length) = head.framing, length <= Self.inlineBodyBytes { bodyRoom = length }
        var bytes = context.channel.allocator.buffer(capacity: head.bytes.readableBytes + 256 + bodyRoom)
        HeaderRewriter.writeClientResponseHead(
            head, framing: framing, clientVersionMinor: clientVersionMinor, requestID: exchange.requestID,
            connection: connection, extra: exchange.rateLimitHeaders, into: &bytes)
        exchange.responseHeadSent = true
        exchange.responseStatus = head.status
        output.write(bytes, context: context)
        clientNeedsFlush = true
    }

    /// Bodies up to this size get room in the response head's buffer.
    static let inlineBodyBytes = 8 * 1024

    func upstreamResponseBody(_ body: ByteBuffer) {
        guard let context, state == .proxying, let exchange else { return }
        armResponseTimer()
        switch exchange.clientFraming {
        case .noBody: return  // a body where none may be (e.g. after a HEAD): never relayed
        case .chunked:
            ResponseBytes.writeChunk(body, allocator: context.channel.allocator) { output.write($0, context: context) }
        case .contentLength, .closeDelimited:
            output.write(body, context: context)
        }
        clientNeedsFlush = true
        if !context.channel.isWritable { upstream?.handler.pauseReads() }
    }

    func upstreamReadComplete() {
        // One flush per upstream read burst, and none when `.end` already flushed everything.
        guard clientNeedsFlush, let context else { return }
        clientNeedsFlush = false
        output.flush(context: context)
    }

    func upstreamResponseEnd() {
        guard let context, state == .proxying, let exchange, let upstream else { return }
        responseTimer?.disarm()
        self.upstream = nil
        pool?.release(upstream, reusable: exchange.requestForwarded && exchange.upstreamKeepAlive)
        finish(decision: .allow, reason: .allowed, status: exchange.responseStatus)
        let lastChunk = exchange.clientFraming == .chunked ? ResponseBytes.lastChunk(allocator: context.channel.allocator) : nil
        clientNeedsFlush = false
        if exchange.closeAfterResponse {
            state = .closed
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            // Closed once everything is written (an empty write completes with the batch).
            if let lastChunk { output.write(lastChunk, context: context) }
            let written = context.eventLoop.makePromise(of: Void.self)
            output.flush(context: context, promise: written)
            written.futureResult.whenComplete { _ in loopBound.value.close(promise: nil) }
        } else {
            // Flushed first: becoming idle may start a pipelined request, whose response must follow this one.
            if let lastChunk { output.write(lastChunk, context: context) }
            output.flush(context: context)
            becomeIdle()
        }
    }

    func upstreamFailed(_ failure: UpstreamFailure) {
        guard let context, state == .proxying, let exchange, let connection = upstream else { return }
        abortUpstream()
        // A pooled connection the upstream closed while idle: safe to retry once on a fresh
        // connection when nothing of the response arrived and the request carried no body.
        if failure == .closedEarly, exchange.upstreamStatus == 0, connection.requestsServed > 0,
            exchange.isIdempotent, exchange.framing == .none, exchange.attempts < 2
        {
            acquireUpstream(excluding: nil, context: context)
            return
        }
        let reason: ReasonCode
        switch failure {
        case .responseTimeout: reason = .upstreamTimeout
        case .protocolError: reason = .upstreamProtocolError
        case .tlsFailed: reason = .upstreamTLSFailed
        default: reason = .upstreamUnavailable
        }
        if exchange.responseHeadSent {
            // Part of the response is already out: all that is left is to cut the connection,
            // so the client sees a truncated response rather than a wrong one.
            finish(decision: .allow, reason: reason, status: exchange.responseStatus)
            closeClient(context: context)
        } else {
            respondWithError(reason, close: !exchange.requestComplete, context: context)
        }
    }

    func upstreamWritabilityChanged(isWritable: Bool) {
        if isWritable { resumeClientReads() }
    }

    // MARK: Responding

    /// Answers with a short generic error, records the decision, and either discards the
    /// rest of the request (keep-alive) or closes once the response is written.
    private func respondWithError(
        _ reason: ReasonCode, close: Bool, context: ChannelHandlerContext, headers extra: [(String, String)] = []
    ) {
        let exchange = self.exchange ?? newExchange()
        let version = exchange.head?.version ?? .http1_1
        let closing = close || exchange.closeAfterResponse || exchange.head?.isKeepAlive == false
        var body = #"{"error":""# + reason.publicMessage + #"","request_id":""# + exchange.requestID + "\""
        if listener.config.exposeReason { body += #","reason":""# + reason.rawValue + "\"" }
        body += "}"
        // A CONNECT response has no body (it would switch to a tunnel), so announce none.
        if exchange.head?.method == .CONNECT { body = "" }
        let headers = [
            ("content-type", "application/json"), ("content-length", String(body.utf8.count)),
            ("x-request-id", exchange.requestID), ("connection", closing ? "close" : "keep-alive"),
        ] + extra
        var response = ResponseBytes.head(
            versionMinor: version.minor == 0 ? 0 : 1, status: HTTPResponseStatus(statusCode: reason.httpStatus), headers: headers,
            allocator: context.channel.allocator)
        // A response to HEAD announces its length but carries no body (RFC 9110 §9.3.2).
        if exchange.head?.method != .HEAD { response.writeString(body) }
        exchange.responseHeadSent = true
        exchange.responseStatus = reason.httpStatus
        self.exchange = exchange
        let decision: DecisionRecord.Decision = reason.isUpstreamFailure ? .allow : .deny
        finish(decision: decision, reason: reason, status: reason.httpStatus)
        if closing {
            state = .closed
            // The client may still be sending a body we will not read. Closing outright would
            // make the kernel answer its next bytes with a reset, which can destroy our response
            // before the client reads it. So: half-close, keep reading (and dropping) for a
            // short while, then close (nginx's lingering close).
            let linger = exchange.head != nil && !exchange.requestComplete && exchange.framing != .none
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let written = context.eventLoop.makePromise(of: Void.self)
            output.write(response, context: context)
            output.flush(context: context, promise: written)
            written.futureResult.whenComplete { _ in
                let (handler, context) = loopBound.value
                if linger { handler.lingerThenClose(context: context) } else { context.close(promise: nil) }
            }
        } else {
            output.write(response, context: context)
            output.flush(context: context)
            if exchange.requestComplete || exchange.head == nil {
                becomeIdle()
            } else {
                state = .rejecting
                discardedBytes = 0
                resumeClientReads()
            }
        }
    }

    /// How long a half-closed connection keeps draining the client's unread request body.
    static let lingerTime = TimeAmount.seconds(2)

    private func lingerThenClose(context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        context.close(mode: .output, promise: nil)
        input.discard()
        clientReadsPausedForUpstream = false
        clientReadsPausedForPipeline = false
        if clientReadPending {
            clientReadPending = false
            context.read()
        }
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: Self.lingerTime) { loopBound.value.close(promise: nil) }
    }

    private func newExchange() -> Exchange {
        Exchange(requestID: RequestIdentifiers.newRequestID(using: &random))
    }

    private func closeClient(context: ChannelHandlerContext) {
        state = .closed
        output.discard()  // part of a response cut short: never sent after all
        context.close(promise: nil)
    }

    private func becomeIdle() {
        exchange = nil
        // A refused webhook body stays here otherwise, in front of the next request's.
        bufferedBody.removeAll()
        state = .idle
        requestEndSeen = false
        clientReadsPausedForUpstream = false
        if quiescing, let context {
            closeClient(context: context)
            return
        }
        timeouts?.requestFinished()
        if input.count > 0, let context {
            parseInput(context: context)
        }
        resumeClientReadsIfUnblocked()
    }

    /// Writes the one decision record for the current exchange.
    private func finish(decision: DecisionRecord.Decision, reason: ReasonCode, status: Int) {
        guard let exchange else { return }
        if !exchange.insertedReplayKeys.isEmpty && (status >= 500 || status == 499 || reason != .allowed) {
            // Not delivered (refused, the upstream failed or answered 5xx, or the client left):
            // the sender will retry, and its retry must not be taken for a replay. An attacker's
            // copy of a delivery that did go through is still refused: that one stays.
            if let eventLoop = context?.eventLoop {
                for key in exchange.insertedReplayKeys { dependencies.state.remove(key, on: eventLoop) }
            }
        }
        let elapsed = NIODeadline.now() - exchange.startedAt
        let record = DecisionRecord(
            timestampMillis: exchange.startedWallMillis,
            requestID: exchange.requestID,
            listener: listener.name,
            route: exchange.route?.name,
            method: exchange.head?.method.rawValue,
            path: exchange.path,
            clientIP: client.text,
            peer: peerSlot?.peer?.record,
            token: exchange.token,
            webhook: exchange.webhook,
            rateLimit: exchange.rateLimit,
            decision: decision,
            reason: reason,
            status: status,
            upstream: exchange.route.map { route in
                .init(name: route.cluster.name, endpoint: exchange.upstreamEndpoint, status: exchange.upstreamStatus)
            },
            durationMillis: Double(elapsed.nanoseconds) / 1_000_000,
            policyVersion: exchange.policyVersion ?? dependencies.snapshots.snapshot(reusing: &snapshotReading).version,
            cohort: exchange.cohort,
            shadow: exchange.shadow,
            shadowPolicy: exchange.shadowPolicy
        )
        if let rollout = exchange.rollout, let other = exchange.shadowPolicy {
            rollout.record(Self.rolloutSample(record, other: other, upstreamStatus: exchange.upstreamStatus))
        }
        dependencies.metrics.recordRequest(record, recent: &recentSeries, held: heldMetrics)
        dependencies.decisionLog.record(record, in: logQueue)
        self.exchange?.route = nil  // one record per exchange, even if called again on a later failure
        self.exchange = nil
    }

    private func pauseClientReads() {
        clientReadsPausedForUpstream = true
    }

    private func resumeClientReads() {
        guard clientReadsPausedForUpstream else { return }
        clientReadsPausedForUpstream = false
        resumeClientReadsIfUnblocked()
    }

    private func resumeClientReadsIfUnblocked() {
        guard !clientReadsPausedForUpstream, !clientReadsPausedForPipeline, clientReadPending, let context else { return }
        clientReadPending = false
        context.read()
    }

    /// After a deny the rest of the request must be read or the connection closed. A small
    /// declared body is read and discarded so the client keeps its connection; a large one,
    /// or one the client holds back waiting for `100 Continue`, is not worth waiting for.
    /// Both policies' outcomes for auto-rollback: the deciding one's final decision, the
    /// other one's verdict on the request head.
    static func rolloutSample(_ record: DecisionRecord, other: DecisionRecord.ShadowPolicy, upstreamStatus: Int) -> RolloutSample {
        let candidateDecided = record.cohort == "candidate"
        let decidingDenied = record.decision == .deny
        let otherDenied = other.decision == .deny
        let stableDenied = candidateDecided ? otherDenied : decidingDenied
        let candidateDenied = candidateDecided ? decidingDenied : otherDenied
        return RolloutSample(
            stableDenied: stableDenied, candidateDenied: candidateDenied,
            candidateReason: candidateDenied && !stableDenied ? (candidateDecided ? record.reason : other.reason) : nil,
            candidateDecided: candidateDecided,
            candidateFailed: candidateDecided && (record.reason.isUpstreamFailure || upstreamStatus >= 500))
    }

    static func mustCloseAfterDeny(_ request: RequestValidator.Validated) -> Bool {
        if request.expectsContinue { return true }
        if case .contentLength(let length) = request.framing { return length > maxDiscardBytes }
        return false
    }
}

@available(*, unavailable)
extension GatewayHandler: Sendable {}

extension ReasonCode {
    /// Failures of the hop to the upstream, after the policy allowed the request.
    var isUpstreamFailure: Bool {
        switch self {
        case .upstreamUnavailable, .upstreamTimeout, .upstreamProtocolError, .upstreamPoolExhausted: return true
        default: return false
        }
    }
}

enum WallClock {
    static func nowMillis() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }
}

/// The webhook verifier reads request headers through NIO's own case-insensitive lookup.
extension HTTPHeaders: WebhookHeaders {
    public func values(_ lowercasedName: String) -> [String] { self[lowercasedName] }
}
