import GatehouseCore
import XCTest

/// Compares the byte-level normaliser against a slow, obviously-correct reference built from
/// `split` and a segment stack, on many generated targets made of the troublesome pieces.
final class PathNormalizerReferenceTests: XCTestCase {
    func testMatchesReferenceOnGeneratedTargets() {
        let pieces = [
            "a", "b", "~", ".", ".", "/", "/", "/", "%2e", "%2E", "%2f", "%41", "%7e", "%c3", "%25", "%",
            "%z", "%5C", "%00", "?", "\\", " ", "#", "é", "-",
        ]
        var rng = SplitMix64(seed: 0x6761_7465_686f_7573)
        var successes = 0
        var rewritten = 0
        var rejections: Set<String> = []
        for iteration in 0..<20_000 {
            var target = "/"
            for _ in 0..<Int.random(in: 0...10, using: &rng) {
                target += pieces.randomElement(using: &rng)!
            }
            let merge = iteration % 2 == 1
            let actual = PathNormalizer(mergeSlashes: merge).normalize(target)
            let expected = Self.reference(target, mergeSlashes: merge)
            if actual != expected {
                XCTFail("\(target.debugDescription) merge=\(merge): got \(actual), reference \(expected)")
                return
            }
            switch actual {
            case .success(let normalized):
                successes += 1
                if normalized.path != target.prefix(while: { $0 != "?" }) { rewritten += 1 }
            case .failure(let rejection):
                rejections.insert("\(rejection)")
            }
        }
        // The generator must exercise both outcomes and every rejection it can produce.
        XCTAssertGreaterThan(successes, 2_000)
        XCTAssertGreaterThan(rewritten, 1_000)
        XCTAssertEqual(
            rejections,
            [
                "fragment", "controlCharacter", "nonASCII", "invalidPercentEncoding", "encodedSlash",
                "encodedBackslash", "encodedNul", "rawBackslash", "climbsAboveRoot",
            ]
        )
    }

    /// The rules written the slow way. Byte checks run over the whole target in order, then
    /// the path is split into segments, each decoded and then resolved against a stack.
    static func reference(_ target: String, mergeSlashes: Bool) -> Result<NormalizedTarget, PathRejection> {
        let bytes = Array(target.utf8)
        guard bytes.first == UInt8(ascii: "/") else { return .failure(.notOriginForm) }
        let queryStart = bytes.firstIndex(of: UInt8(ascii: "?"))
        for (offset, byte) in bytes.enumerated() {
            if byte >= 0x80 { return .failure(.nonASCII) }
            if byte <= 0x20 || byte == 0x7F { return .failure(.controlCharacter) }
            if byte == UInt8(ascii: "#") { return .failure(.fragment) }
            if byte == UInt8(ascii: "\\"), offset < (queryStart ?? bytes.count) { return .failure(.rawBackslash) }
        }
        let pathBytes = bytes[..<(queryStart ?? bytes.count)]
        if pathBytes.filter({ $0 == UInt8(ascii: "/") }).count > PathNormalizer.maxSegments {
            return .failure(.tooManySegments)
        }
        let query = queryStart.map { String(decoding: bytes[($0 + 1)...], as: UTF8.self) }

        let rawSegments = pathBytes.dropFirst().split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        var stack: [String] = []
        for (index, raw) in rawSegments.enumerated() {
            let isLast = index == rawSegments.count - 1
            var decoded = ""
            var i = raw.startIndex
            while i < raw.endIndex {
                if raw[i] == UInt8(ascii: "%") {
                    guard i + 2 < raw.endIndex else { return .failure(.invalidPercentEncoding) }
                    let hex = String(decoding: raw[(i + 1)...(i + 2)], as: UTF8.self)
                    guard hex.allSatisfy(\.isHexDigit), let value = UInt8(hex, radix: 16) else {
                        return .failure(.invalidPercentEncoding)
                    }
                    switch value {
                    case 0x2F: return .failure(.encodedSlash)
                    case 0x5C: return .failure(.encodedBackslash)
                    case 0x00: return .failure(.encodedNul)
                    default: break
                    }
                    let scalar = Unicode.Scalar(value)
                    if scalar.properties.isAlphabetic && value < 0x80 || ("0"..."9").contains(scalar)
                        || "-._~".unicodeScalars.contains(scalar)
                    {
                        decoded.unicodeScalars.append(scalar)
                    } else {
                        decoded += "%" + hex.uppercased()
                    }
                    i += 3
                } else {
                    decoded.unicodeScalars.append(Unicode.Scalar(raw[i]))
                    i += 1
                }
            }
            switch decoded {
            case ".":
                if isLast { stack.append("") }
            case "..":
                guard !stack.isEmpty else { return .failure(.climbsAboveRoot) }
                stack.removeLast()
                if isLast { stack.append("") }
            case "" where mergeSlashes && !isLast:
                break
            default:
                stack.append(decoded)
            }
        }
        return .success(NormalizedTarget(path: stack.map { "/" + $0 }.joined(), query: query))
    }
}
