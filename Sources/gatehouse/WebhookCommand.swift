import ArgumentParser
import Foundation
import GatehouseCore

struct WebhookCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "webhook",
        abstract: "Work with webhook deliveries offline.",
        subcommands: [VerifyWebhookCommand.self]
    )
}

struct VerifyWebhookCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify a captured delivery exactly as a route would (replay is not consulted).",
        discussion: "Exit 0 when valid, 1 when refused, 2 on configuration or usage errors."
    )

    @Option(name: .long, help: "The configuration file.")
    var config: String

    @Option(name: .long, help: "The route whose `webhook` requirement to run.")
    var route: String

    @Option(name: .long, help: "The delivery's headers: `Name: value` lines (a leading request line is skipped).")
    var headers: String

    @Option(name: .long, help: "The delivery's body, byte for byte.")
    var body: String

    @Option(name: .long, help: "Verify as of this Unix time (seconds) instead of now.")
    var at: Int64?

    func run() async throws {
        let loaded = try loadConfigOrExit(config, exitCode: 2)
        guard let routeConfig = loaded.routes.first(where: { $0.name == route }) else {
            printError("\(config): no route named `\(route)`")
            throw ExitCode(2)
        }
        guard let webhook = routeConfig.webhook else {
            printError("\(config): route `\(route)` has no `webhook` section")
            throw ExitCode(2)
        }
        let verifier: WebhookVerifier
        do {
            verifier = try WebhookVerifier(route: route, config: webhook)
        } catch {
            // Names the reference (`env:NAME`) or the entry (`secrets[1]`), never the secret.
            printError("\(config): routes `\(route)` webhook: \(error)")
            throw ExitCode(2)
        }
        let headerFields: WebhookHeaderFields
        do {
            headerFields = try WebhookHeaderFields(capture: try read(headers, limit: WebhookHeaderFields.maxCaptureBytes + 1))
        } catch let error as WebhookHeaderFields.CaptureError {
            printError("\(headers): \(error)")
            throw ExitCode(2)
        }
        // One byte past the limit is enough to know the body is too large.
        let bodyBytes = try read(body, limit: webhook.maxBodyBytes + 1)
        let now = at.map { Date(timeIntervalSince1970: TimeInterval($0)) } ?? Date()

        switch verifier.verify(headers: headerFields, body: bodyBytes, now: now) {
        case .valid(let delivery):
            let key = delivery.verifiedByPublicKey ? "public key" : "secret"
            print("valid (\(key) \(delivery.secretIndex))")
        case .invalid(let reason, let detail):
            print("refused: \(reason.rawValue) (\(reason.httpStatus)): \(detail)")
            throw ExitCode(1)
        }
    }

    /// At most `limit` bytes of a file; an unreadable file is a usage error.
    private func read(_ path: String, limit: Int) throws -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            printError("\(path): cannot read file")
            throw ExitCode(2)
        }
        defer { try? handle.close() }
        do {
            return Array(try handle.read(upToCount: limit) ?? Data())
        } catch {
            printError("\(path): cannot read file (\(error))")
            throw ExitCode(2)
        }
    }
}
