/// Go-style durations as Istio's env vars use them: "100ms", "10s", "1m30s", "250us".
public enum DurationText {
    public static func nanos(_ s: String) -> UInt64? {
        var total: Double = 0
        var rest = Substring(s)
        guard !rest.isEmpty else { return nil }
        if let plain = Double(rest) { return plain == 0 ? 0 : nil }  // bare numbers: only 0
        while !rest.isEmpty {
            let num = rest.prefix { $0.isNumber || $0 == "." }
            guard !num.isEmpty, let v = Double(num) else { return nil }
            rest = rest.dropFirst(num.count)
            let unit = rest.prefix { $0.isLetter || $0 == "µ" }
            rest = rest.dropFirst(unit.count)
            let scale: Double
            switch unit {
            case "ns": scale = 1
            case "us", "µs": scale = 1e3
            case "ms": scale = 1e6
            case "s": scale = 1e9
            case "m": scale = 60e9
            case "h": scale = 3600e9
            default: return nil
            }
            total += v * scale
        }
        return UInt64(total)
    }

    public static func format(_ nanos: UInt64) -> String {
        if nanos % 1_000_000_000 == 0 { return "\(nanos / 1_000_000_000)s" }
        if nanos % 1_000_000 == 0 { return "\(nanos / 1_000_000)ms" }
        return "\(nanos / 1000)us"
    }
}
