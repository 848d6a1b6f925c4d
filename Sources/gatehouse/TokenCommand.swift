import ArgumentParser
import Foundation
import GatehouseCore
import GatehouseServer

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Work with bearer tokens offline.",
        subcommands: [VerifyTokenCommand.self]
    )
}

struct VerifyTokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Read a token on stdin and run a route's token requirement on it; exit 0 only when it is accepted."
    )

    @Option(name: .long, help: "The configuration file.")
    var config: String

    @Option(name: .long, help: "The route whose `token` requirement to run.")
    var route: String

    @Option(name: .long, help: "Verify as of this Unix time (seconds) instead of now.")
    var at: Int64?

    @Option(name: .customLong("client-cert"), help: "PEM client certificate, for routes with `bind: mtls`.")
    var clientCert: String?

    func run() async throws {
        let loaded = try loadConfigOrExit(config)
        // Bounded: a token is at most 8 KiB; anything beyond is refused by the verifier anyway.
        let input = FileHandle.standardInput.readData(ofLength: 64 * 1024)
        let token = String(decoding: input, as: UTF8.self)
        let now = at.map { Date(timeIntervalSince1970: TimeInterval($0)) } ?? Date()
        let result: Result<VerifiedToken, TokenRefusal>
        do {
            result = try await OfflineTokenCheck.verify(
                config: loaded, route: route, token: token, at: now, clientCertificatePEM: clientCert, report: printError)
        } catch let errors as ConfigErrors {
            for issue in errors.issues { printError(issue.description) }
            throw ExitCode(2)
        } catch {
            printError("\(error)")
            throw ExitCode(2)
        }
        switch result {
        case .success(let verified):
            print("accepted: issuer \(verified.issuerName) (iss \(verified.iss))")
            print("  sub: \(verified.sub ?? "-")")
            print("  jti: \(verified.jti ?? "-")")
            print("  exp: \(ISO8601DateFormatter().string(from: verified.exp))")
            print("  scopes: \(verified.scopes.sorted().joined(separator: " "))")
        case .failure(let refusal):
            print("refused: \(refusal.reason.rawValue) (\(refusal.reason.httpStatus)): \(refusal.detail)")
            throw ExitCode(1)
        }
    }
}
