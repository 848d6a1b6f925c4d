/// The fields of one decision record that `gatehouse report` looks at (see
/// `DecisionRecord.jsonBytes()`): identifiers and outcomes only.
public struct DecisionLogEntry: Sendable, Equatable {
    public var timestampMillis: Int64
    public var route: String?
    public var peerSPIFFEID: String?
    public var tokenIssuer: String?
    public var tokenSubject: String?
    /// Not written by this version's records; read if a later one adds them.
    public var tokenAudience: String?
    public var tokenEnvironment: String?
    public var webhookSecretIndex: Int?
    public var webhookPublicKeyIndex: Int?
    public var allowed: Bool
    public var reason: String
    public var clientIP: String?
    public var policyVersion: String?

    /// nil when the line is not a decision record (not JSON, or no `ts`/`decision`/`reason`).
    public init?(jsonLine: ArraySlice<UInt8>) {
        guard case .success(.object(let object)) = StrictJSON.parse(Array(jsonLine)),
            let ts = object["ts"]?.stringValue, let millis = Self.millis(rfc3339: ts),
            let decision = object["decision"]?.stringValue, let reason = object["reason"]?.stringValue
        else { return nil }
        timestampMillis = millis
        allowed = decision == "allow"
        self.reason = reason
        route = object["route"]?.stringValue
        clientIP = object["client_ip"]?.stringValue
        if case .object(let peer)? = object["peer"] { peerSPIFFEID = peer["spiffe_id"]?.stringValue }
        if case .object(let token)? = object["token"] {
            tokenIssuer = token["iss"]?.stringValue
            tokenSubject = token["sub"]?.stringValue
            tokenAudience = token["aud"]?.stringValue
            tokenEnvironment = token["env"]?.stringValue
        }
        if case .object(let webhook)? = object["webhook"] {
            webhookSecretIndex = webhook["secret_index"]?.doubleValue.map { Int($0) }
            webhookPublicKeyIndex = webhook["public_key_index"]?.doubleValue.map { Int($0) }
        }
        if case .object(let policy)? = object["policy"] { policyVersion = policy["version"]?.stringValue }
    }

    /// A line the gateway writes about itself (an `event` such as `rollout.rolled_back`).
    public static func isGatewayEvent(jsonLine: ArraySlice<UInt8>) -> Bool {
        guard case .success(.object(let object)) = StrictJSON.parse(Array(jsonLine)) else { return false }
        return object["event"]?.stringValue != nil && object["decision"] == nil
    }

    /// `YYYY-MM-DDTHH:MM:SS[.fff]Z` (as the gateway writes it) to milliseconds since the epoch.
    public static func millis(rfc3339 text: String) -> Int64? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20, bytes.last == UInt8(ascii: "Z"), bytes[4] == 0x2D, bytes[7] == 0x2D,
            bytes[10] == UInt8(ascii: "T"), bytes[13] == 0x3A, bytes[16] == 0x3A
        else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var value: Int64 = 0
            for index in range {
                let digit = Int64(bytes[index]) - 0x30
                guard (0...9).contains(digit) else { return nil }
                value = value * 10 + digit
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
            (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        var fraction: Int64 = 0
        if bytes.count > 20, bytes[19] == UInt8(ascii: ".") {
            let digits = min(3, bytes.count - 21)
            guard digits > 0, let value = number(20..<(20 + digits)) else { return nil }
            fraction = value * [1, 100, 10, 1][digits]
        }
        // Days from civil (Howard Hinnant's algorithm).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + fraction
    }
}
