/// A minimal writer for flat JSON objects with correct string escaping.
/// Nil values are written as `null` so every record has the same keys.
public struct JSONObjectWriter {
    private var output: String = "{"
    private var first = true

    public init() {
        output.reserveCapacity(512)
    }

    private mutating func key(_ name: String) {
        if !first { output.append(",") }
        first = false
        Self.appendQuoted(name, to: &output)
        output.append(":")
    }

    public mutating func field(_ name: String, _ value: String?) {
        key(name)
        if let value { Self.appendQuoted(value, to: &output) } else { output.append("null") }
    }

    public mutating func field(_ name: String, _ value: Int) {
        key(name)
        output.append(String(value))
    }

    public mutating func field(_ name: String, _ value: Double) {
        key(name)
        output.append(value.isFinite ? String(value) : "null")
    }

    public mutating func field(_ name: String, _ value: Bool) {
        key(name)
        output.append(value ? "true" : "false")
    }

    public mutating func object(_ name: String, _ body: (inout JSONObjectWriter) -> Void) {
        key(name)
        var inner = JSONObjectWriter()
        body(&inner)
        output.append(inner.finish())
    }

    public mutating func finish() -> String {
        output.append("}")
        return output
    }

    static func appendQuoted(_ value: String, to output: inout String) {
        output.append("\"")
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": output.append("\\\"")
            case "\\": output.append("\\\\")
            case "\n": output.append("\\n")
            case "\r": output.append("\\r")
            case "\t": output.append("\\t")
            case "\u{2028}": output.append("\\u2028")
            case "\u{2029}": output.append("\\u2029")
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16)
                    output.append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
                } else {
                    output.unicodeScalars.append(scalar)
                }
            }
        }
        output.append("\"")
    }
}

/// RFC 3339 timestamps in UTC with millisecond precision, without Foundation's formatters.
public enum RFC3339 {
    public static func format(millisecondsSinceEpoch ms: Int64) -> String {
        let millis = Int(((ms % 1000) + 1000) % 1000)
        var seconds = (ms - Int64(millis)) / 1000
        let secondOfDay = Int(((seconds % 86_400) + 86_400) % 86_400)
        seconds -= Int64(secondOfDay)
        let days = Int(seconds / 86_400)
        let (year, month, day) = civilDate(daysSinceEpoch: days)
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T"
            + "\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2))"
            + ".\(pad(millis, 3))Z"
    }

    /// Howard Hinnant's days-from-civil inverse: exact for the proleptic Gregorian calendar.
    static func civilDate(daysSinceEpoch: Int) -> (year: Int, month: Int, day: Int) {
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }
}
