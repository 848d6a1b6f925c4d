import Crypto
import Foundation
import GatehouseServer
import X509
import XCTest

final class TrustBundlesTests: XCTestCase {
    private let now = Date(timeIntervalSince1970: 1_800_000_000)
    private var directory: String!

    override func setUpWithError() throws {
        self.directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("trust-bundles-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let directory = self.directory {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    private func write(_ name: String, _ contents: String) throws -> String {
        let path = self.directory + "/" + name
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testLoadsEveryCertificateBlockInOrderAndSkipsOthers() throws {
        let pki = SVIDTestPKI(now: self.now)
        let first = try pki.ca("first").certificate
        let second = try pki.ca("second").certificate
        let key = try Certificate.PrivateKey(P256.Signing.PrivateKey()).serializeAsPEM().pemString
        let path = try self.write(
            "bundle.pem",
            "comment lines are fine\n" + (try first.serializeAsPEM().pemString) + "\n" + key + "\n"
                + (try second.serializeAsPEM().pemString) + "\n"
        )
        XCTAssertEqual(try TrustBundles.loadPEM(path: path), [first, second])
    }

    func testErrorsNameTheFile() throws {
        let missing = self.directory + "/missing.pem"
        XCTAssertThrowsError(try TrustBundles.loadPEM(path: missing)) { error in
            guard case .unreadable(let path, _) = error as? TrustBundleError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, missing)
            XCTAssertTrue("\(error)".hasPrefix(missing + ": "), "\(error)")
        }

        let empty = try self.write("empty.pem", "")
        XCTAssertThrowsError(try TrustBundles.loadPEM(path: empty)) { error in
            XCTAssertTrue("\(error)".hasPrefix(empty + ": "), "\(error)")
        }

        let keyOnly = try self.write(
            "key.pem",
            try Certificate.PrivateKey(P256.Signing.PrivateKey()).serializeAsPEM().pemString
        )
        XCTAssertThrowsError(try TrustBundles.loadPEM(path: keyOnly)) { error in
            XCTAssertEqual(error as? TrustBundleError, .noCertificates(path: keyOnly))
            XCTAssertEqual("\(error)", keyOnly + ": no CERTIFICATE block in trust bundle")
        }

        let good = try SVIDTestPKI(now: self.now).ca("good").certificate.serializeAsPEM().pemString
        let garbage = "-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n"
        let damaged = try self.write("damaged.pem", good + "\n" + garbage)
        XCTAssertThrowsError(try TrustBundles.loadPEM(path: damaged)) { error in
            XCTAssertEqual(error as? TrustBundleError, .invalidCertificate(path: damaged, index: 2))
        }
    }

    func testRootsPerTrustDomain() throws {
        let pki = SVIDTestPKI(now: self.now)
        let prod = try pki.ca("prod").certificate
        let staging = try pki.ca("staging").certificate
        let bundles = TrustBundles(["prod.example": [prod], "staging.example": [staging], "empty.example": []])
        XCTAssertEqual(bundles.trustDomains, ["prod.example", "staging.example"])
        XCTAssertEqual(bundles.roots(for: "prod.example"), CertificateStore([prod]))
        XCTAssertEqual(bundles.roots(for: "staging.example"), CertificateStore([staging]))
        XCTAssertNil(bundles.roots(for: "empty.example"), "a domain without certificates is unknown")
        XCTAssertNil(bundles.roots(for: "other.example"))
        XCTAssertNil(bundles.roots(for: "PROD.EXAMPLE"))
    }
}
