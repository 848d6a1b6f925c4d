import ArgumentParser
import GatehouseCore
import GatehouseServer
import Logging

struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate a configuration file; print every problem as FILE:LINE:COL: key: problem."
    )

    @Option(name: .long, help: "The configuration file to check.")
    var config: String

    func run() async throws {
        let loaded = try loadConfigOrExit(config)
        // Compile as `serve` and a live reload would (`ConfigCompiler`: certificates, keys,
        // endpoint addresses, webhook secrets), and build the listeners' TLS, without binding.
        do {
            // Quiet: compiling may start background work (a Redis store dials its server)
            // whose warnings are not findings about the file.
            var logger = Logger(label: "gatehouse.check")
            logger.logLevel = .error
            _ = try await Gateway(config: loaded, logger: logger, configPollInterval: nil)
        } catch let errors as ConfigErrors {
            for issue in errors.issues { printError(issue.description) }
            throw ExitCode(1)
        } catch {
            printError("\(config): \(error)")
            throw ExitCode(1)
        }
        print("\(config): ok (\(loaded.listeners.count) listener(s), \(loaded.routes.count) route(s), version \(loaded.policyVersion))")
    }
}
