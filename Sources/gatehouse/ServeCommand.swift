import ArgumentParser
import Foundation
import GatehouseCore
import GatehouseServer
import Logging
import ServiceLifecycle

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the gateway. SIGTERM/SIGINT drain and exit; SIGHUP reloads the configuration, reopens the decision log and re-reads TLS material."
    )

    @Option(name: .long, help: "The configuration file.")
    var config: String

    @Option(name: .long, help: "Log level for operational logs on stderr (trace, debug, info, notice, warning, error).")
    var logLevel: Logger.Level = .info

    func run() async throws {
        bootstrapLogging(level: logLevel)
        let logger = Logger(label: "gatehouse")
        let loaded = try loadConfigOrExit(config)
        try await runGateway(config: loaded, logger: logger)
    }
}

/// Runs a gateway until SIGTERM or SIGINT, then drains it.
func runGateway(config: GatewayConfig, logger: Logger, beforeServing: @escaping @Sendable () -> Void = {}) async throws {
    let gateway: Gateway
    do {
        // `serve` and `demo` come here once per process: the only place MetricsSystem is bootstrapped.
        gateway = try await Gateway(config: config, logger: logger, metrics: GatewayMetrics.bootstrapProcessWide())
    } catch let errors as ConfigErrors {
        for issue in errors.issues { printError(issue.description) }
        throw ExitCode(1)
    } catch {
        printError("\(config.sourceFile): \(error)")
        throw ExitCode(1)
    }
    let hangups = SignalWatcher(signal: SIGHUP) {
        logger.info("SIGHUP: reloading the configuration, reopening the decision log, re-reading certificates, keys and trust bundles")
        gateway.decisionLog.reopen()
        Task {
            // A failed reload logs every problem itself and keeps the running configuration.
            _ = await gateway.reloadConfig()
            await gateway.reloadTLSMaterial()
        }
    }
    defer { hangups.cancel() }
    let service = GatewayService(gateway: gateway, onReady: beforeServing)
    let group = ServiceGroup(
        configuration: .init(
            services: [.init(service: service)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
    )
    try await group.run()
    let counters = gateway.decisionLog.counters
    logger.info("stopped", metadata: [
        "records_written": .stringConvertible(counters.written),
        "records_failed_over": .stringConvertible(counters.failedOver),
        "records_dropped": .stringConvertible(counters.dropped),
    ])
}

struct GatewayService: Service {
    let gateway: Gateway
    let onReady: @Sendable () -> Void

    func run() async throws {
        try await gateway.start()
        onReady()
        // Wait for SIGTERM/SIGINT, then stop accepting and drain.
        try? await gracefulShutdown()
        await gateway.shutdown()
    }
}

/// Calls `action` on a background queue each time `signal` arrives.
final class SignalWatcher: @unchecked Sendable {  // the source is immutable after init; DispatchSource is thread-safe
    private let source: DispatchSourceSignal

    init(signal number: Int32, action: @escaping @Sendable () -> Void) {
        signal(number, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler(handler: action)
        source.resume()
    }

    func cancel() { source.cancel() }
}

func bootstrapLogging(level: Logger.Level) {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
}

/// Loads and validates a config (the same step a live reload takes, `ConfigCompiler.load`);
/// on failure prints every problem (`FILE:LINE:COL: key: ...`) and exits with `exitCode`.
func loadConfigOrExit(_ path: String, exitCode: Int32 = 1) throws -> GatewayConfig {
    do throws(ConfigErrors) {
        return try ConfigCompiler.load(path: path).config
    } catch {
        for issue in error.issues { printError(issue.description) }
        throw ExitCode(exitCode)
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
