import XCTest

@testable import GatehouseCore

extension XCTestCase {
    /// The rendered issues of a config file that must not load (`t.yaml`); fails the test if it loads.
    func configErrors(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        do {
            let config = try ConfigLoader.parse(yaml: yaml, file: "t.yaml")
            XCTFail("expected errors, got \(config)", file: file, line: line)
            return []
        } catch let errors as ConfigErrors {
            return errors.issues.map(\.description)
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
            return []
        }
    }
}
