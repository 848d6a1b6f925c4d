import GatehouseCore
import Logging
import Metrics
import NIOCore
import NIOSSL

/// Builds the configured state store: in memory by default, Redis with `backend: redis`.
/// Problems are reported like config errors, at the `state` key they come from.
enum StateStoreSetup {
    static func make(
        _ config: GatewayConfig, replayCapacity: Int?, group: any EventLoopGroup, logger: Logger, environment: [String: String],
        metricsFactory: any MetricsFactory
    ) throws -> any StateStore {
        guard let redis = config.state.redis else {
            return InMemoryStateStore(replayCapacity: replayCapacity ?? config.state.maxEntries, rateCapacity: config.state.maxEntries)
        }
        func failure(_ key: String, _ message: String) -> ConfigErrors {
            ConfigErrors([ConfigIssue(location: redis.location, keyPath: "state.\(key)", message: message)])
        }
        var settings = RedisStoreSettings(host: redis.address.host, port: redis.address.port, environment: config.environment)
        settings.keyPrefix = redis.keyPrefix
        settings.timeout = redis.timeout
        settings.connections = redis.connections
        if let reference = redis.password {
            do {
                var password = try SecretResolver.resolve(reference, environment: environment)
                // A password file almost always ends in a newline nobody meant as part of it.
                while password.last == 0x0A || password.last == 0x0D { password.removeLast() }
                settings.password = password
            } catch {
                throw failure("password", "\(error)")
            }
        }
        if let tls = redis.tls {
            do {
                var tlsSettings = RedisTLSSettings(serverName: tls.serverName)
                if let path = tls.caFile { tlsSettings.roots = .certificates(try TLSMaterial.caCertificates(path, key: "tls.ca").map(TLSMaterial.nioCertificate)) }
                if let path = tls.certificatePath, let key = tls.privateKey {
                    tlsSettings.certificateChain = try TLSMaterial.certificateChain(path, key: "tls.certificate")
                    tlsSettings.privateKey = try TLSMaterial.privateKey(key, environment: environment, key: "tls.private_key")
                }
                settings.tls = tlsSettings
            } catch GatewayStartError.tls(let key, let message) {
                throw failure(key, message)
            }
        }
        if let problem = settings.problems.first { throw failure("backend", problem) }
        do {
            return try RedisStateStore(settings: settings, group: group, logger: logger, metricsFactory: metricsFactory)
        } catch {
            throw failure("backend", "cannot set up the Redis store (\(error))")
        }
    }
}
