import ArgumentParser
import Foundation

/// Prints a usage error and exits 2 (the audit, graph and report commands' contract).
func usage(_ message: String) throws -> Never {
    printError("error: \(message)")
    throw ExitCode(2)
}

extension Gatehouse {
    /// Commands whose usage errors exit 2 rather than argument-parser's 64: CI scripts tell
    /// "findings" (1) from "could not run" (2).
    static let usageExitsTwo: Set<String> = ["audit", "graph", "report"]

    /// argument-parser's own `main`, except for `usageExitsTwo`'s parse errors.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if exitCode(for: error) == .validationFailure, let name = CommandLine.arguments.dropFirst().first, usageExitsTwo.contains(name) {
                printError(fullMessage(for: error))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}
