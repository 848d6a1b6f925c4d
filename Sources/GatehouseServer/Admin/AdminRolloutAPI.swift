import NIOHTTP1

/// `GET /rollout`, `POST /rollout/promote`, `POST /rollout/rollback`. The mutating two need
/// `admin.token` as a bearer token.
struct AdminRolloutAPI: Sendable {
    enum ChangeResult: Sendable {
        case changed(version: String)
        /// Already in that state (a rollback twice is not an error).
        case unchanged(version: String)
        case noRollout
    }

    let authorization: AdminAuthorization
    let status: @Sendable () -> [UInt8]
    let promote: @Sendable () -> ChangeResult
    let rollBack: @Sendable () -> ChangeResult

    func handle(method: HTTPMethod, path: String, headers: HTTPHeaders) -> (status: HTTPResponseStatus, body: [UInt8]) {
        if method == .GET { return (.ok, status()) }
        switch authorization.check(headers) {
        case .disabled:
            return (.forbidden, Array(#"{"error":"mutating admin endpoints are disabled: configure admin.token"}"#.utf8))
        case .refused:
            return (.unauthorized, Array(#"{"error":"a valid admin bearer token is required"}"#.utf8))
        case .allowed:
            break
        }
        let promoting = path == "/rollout/promote"
        switch promoting ? promote() : rollBack() {
        case .noRollout:
            return (.conflict, Array(#"{"error":"no rollout is running"}"#.utf8))
        case .changed(let version), .unchanged(let version):
            let state = promoting ? "promoted" : "rolled_back"
            return (.ok, Array(#"{"state":"\#(state)","enforcing":"\#(version)"}"#.utf8))
        }
    }
}
