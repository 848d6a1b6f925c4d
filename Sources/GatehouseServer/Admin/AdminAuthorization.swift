import Crypto
import GatehouseCore
import NIOHTTP1

/// `admin.token`: the bearer token the mutating admin endpoints require. Without one they
/// are disabled: a default that lets anyone on the admin port change policy is the kind of
/// implicit trust the gateway exists to remove.
struct AdminAuthorization: Sendable {
    enum Outcome: Equatable {
        case allowed
        /// No `admin.token` is configured: the endpoint is off.
        case disabled
        /// No bearer token, the wrong one, or the configured one cannot be read (fail closed).
        case refused
    }

    private let reference: SecretReference?
    private let environment: [String: String]

    /// The reference is resolved on each check (a rare, operator-driven request), so a
    /// rotated token file takes effect at once; the gateway resolves it once at start-up too,
    /// so a missing secret fails there.
    init(reference: SecretReference?, environment: [String: String]) {
        self.reference = reference
        self.environment = environment
    }

    func check(_ headers: HTTPHeaders) -> Outcome {
        guard let reference else { return .disabled }
        guard let token = try? SecretResolver.resolve(reference, environment: environment) else { return .refused }
        let values = headers["authorization"]
        guard values.count == 1, values[0].count > 7, values[0].prefix(7).lowercased() == "bearer " else { return .refused }
        // Digest against digest: the comparison takes the same time whatever the guess.
        let presented = Array(SHA256.hash(data: Array(values[0].dropFirst(7).utf8)))
        let expected = Array(SHA256.hash(data: token))
        var difference: UInt8 = 0
        for (a, b) in zip(presented, expected) { difference |= a ^ b }
        return difference == 0 ? .allowed : .refused
    }
}
