import XCTest

@testable import GatehouseCore

final class RevocationListTests: XCTestCase {
    func testParsesIdsAndSubjectsAndRefusesAnythingElse() throws {
        let list = try RevocationList(parsing: "# revoked after the CI runner leak\njti:abc\n\n  sub:ci-runner  \n")
        XCTAssertEqual(list.tokenIDs, ["abc"])
        XCTAssertEqual(list.subjects, ["ci-runner"])
        XCTAssertThrowsError(try RevocationList(parsing: "jti:abc\nabc\n")) { error in
            XCTAssertEqual(error as? RevocationList.ParseError, .init(line: 2, message: "expected `jti:VALUE` or `sub:VALUE`"))
        }
        XCTAssertThrowsError(try RevocationList(parsing: "jti:\n"), "an empty value is a mistake, not a wildcard")
    }
}
