/// One measured phase: initial sync, or one trigger round.
public struct PhaseResult: Sendable {
    public var name: String
    public var expected: Int
    /// Seconds from the phase start (connect, or the trigger) to each stream's receipt.
    public var latencies: [Double]
    public var bytes: Int
    public var messages: Int
    public var serverCPU: Double?
    public var loadgenCPU: Double
    public var wallSeconds: Double

    public var converged: Int { latencies.count }
    public var complete: Bool { converged >= expected }

    public func percentile(_ p: Double) -> Double? {
        guard !latencies.isEmpty else { return nil }
        let s = latencies.sorted()
        let i = min(s.count - 1, max(0, Int((p / 100 * Double(s.count)).rounded(.up)) - 1))
        return s[i]
    }

    public var total: Double? { latencies.max() }
}

/// The `--hold` phase: streams kept open while something else changes the config.
public struct HoldResult: Sendable {
    public var seconds: Double
    public var streamsEnded: Int
    public var messages: Int
    public var bytes: Int
}

public struct LoadReport: Sendable {
    public var machine: String
    public var options: String
    public var streams: Int
    public var connections: Int
    public var phases: [PhaseResult] = []
    public var serverRSSBefore: Int?
    public var serverRSSAfterSync: Int?
    public var hold: HoldResult?

    public var rssPerStream: Double? {
        guard let a = serverRSSBefore, let b = serverRSSAfterSync, streams > 0 else { return nil }
        return Double(b - a) / Double(streams)
    }

    public var success: Bool { phases.allSatisfy(\.complete) && (hold?.streamsEnded ?? 0) == 0 }

    static func ms(_ s: Double?) -> String {
        guard let s else { return "-" }
        let v = s * 1000
        return v >= 100 ? String(Int(v.rounded())) : String(Double(Int(v * 10)) / 10)
    }

    public func table() -> String {
        var rows: [[String]] = []
        for p in phases {
            rows.append([p.name, "\(p.converged)/\(p.expected)", Self.ms(p.percentile(50)), Self.ms(p.percentile(90)),
                         Self.ms(p.percentile(99)), Self.ms(p.total), "\(p.messages)", Self.bytes(p.bytes),
                         p.serverCPU.map { String(Double(Int($0 * 100)) / 100) } ?? "-",
                         String(Double(Int(p.loadgenCPU * 100)) / 100)])
        }
        let header = ["phase", "converged", "p50 ms", "p90 ms", "p99 ms", "max ms", "msgs", "bytes", "server cpu s", "loadgen cpu s"]
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        func line(_ c: [String]) -> String {
            c.enumerated().map { $1 + String(repeating: " ", count: widths[$0] - $1.count) }.joined(separator: "  ")
        }
        var out = "\(streams) streams over \(connections) connections; \(machine)\n" + line(header) + "\n"
        for r in rows { out += line(r) + "\n" }
        if let h = hold {
            out += "hold \(Int(h.seconds)) s: \(h.messages) msgs, \(Self.bytes(h.bytes)), \(h.streamsEnded) streams ended\n"
        }
        if let a = serverRSSBefore, let b = serverRSSAfterSync, let per = rssPerStream {
            out += "server RSS: \(Self.bytes(a)) before, \(Self.bytes(b)) after sync, \(Int(per.rounded())) B per stream\n"
        }
        return out
    }

    static func bytes(_ n: Int) -> String {
        if n >= 1 << 30 { return "\(Double(Int(Double(n) / Double(1 << 30) * 10)) / 10) GiB" }
        if n >= 1 << 20 { return "\(Double(Int(Double(n) / Double(1 << 20) * 10)) / 10) MiB" }
        if n >= 1 << 10 { return "\(Double(Int(Double(n) / Double(1 << 10) * 10)) / 10) KiB" }
        return "\(n) B"
    }

    public func json() -> String {
        func num(_ d: Double?) -> String { d.map { String($0) } ?? "null" }
        func int(_ i: Int?) -> String { i.map { String($0) } ?? "null" }
        let ps = phases.map { p in
            "{\"name\":\(JSONText.quote(p.name)),\"expected\":\(p.expected),\"converged\":\(p.converged),"
                + "\"p50_s\":\(num(p.percentile(50))),\"p90_s\":\(num(p.percentile(90))),\"p99_s\":\(num(p.percentile(99))),"
                + "\"max_s\":\(num(p.total)),\"messages\":\(p.messages),\"bytes\":\(p.bytes),"
                + "\"server_cpu_s\":\(num(p.serverCPU)),\"loadgen_cpu_s\":\(p.loadgenCPU),\"wall_s\":\(p.wallSeconds)}"
        }
        return "{\"machine\":\(JSONText.quote(machine)),\"options\":\(JSONText.quote(options)),\"streams\":\(streams),"
            + "\"connections\":\(connections),\"server_rss_before\":\(int(serverRSSBefore)),"
            + "\"server_rss_after_sync\":\(int(serverRSSAfterSync)),\"server_rss_per_stream\":\(num(rssPerStream)),"
            + "\"success\":\(success),\"phases\":[\(ps.joined(separator: ","))]"
            + (hold.map { ",\"hold\":{\"seconds\":\($0.seconds),\"streams_ended\":\($0.streamsEnded),\"messages\":\($0.messages),\"bytes\":\($0.bytes)}" } ?? "")
            + "}\n"
    }

    /// Latency distributions (CDF per phase) as an SVG line chart.
    public func svg() -> String {
        let w = 760.0, h = 420.0, left = 60.0, right = 180.0, top = 30.0, bottom = 50.0
        let maxMs = max(1, (phases.compactMap(\.total).max() ?? 0.001) * 1000)
        let colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
        func x(_ ms: Double) -> Double { left + ms / maxMs * (w - left - right) }
        func y(_ f: Double) -> Double { h - bottom - f * (h - top - bottom) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(left)\" y=\"18\">push latency CDF: \(streams) streams / \(connections) connections</text>\n"
        s += "<line x1=\"\(left)\" y1=\"\(y(0))\" x2=\"\(w - right)\" y2=\"\(y(0))\" stroke=\"black\"/>\n"
        s += "<line x1=\"\(left)\" y1=\"\(y(0))\" x2=\"\(left)\" y2=\"\(y(1))\" stroke=\"black\"/>\n"
        for i in 0...4 {
            let ms = maxMs * Double(i) / 4
            s += "<text x=\"\(x(ms) - 10)\" y=\"\(y(0) + 18)\">\(Self.ms(ms / 1000))</text>\n"
            s += "<text x=\"\(left - 40)\" y=\"\(y(Double(i) / 4) + 4)\">\(i * 25)%</text>\n"
        }
        s += "<text x=\"\((w - right + left) / 2 - 20)\" y=\"\(h - 12)\">milliseconds</text>\n"
        for (i, p) in phases.enumerated() where !p.latencies.isEmpty {
            let sorted = p.latencies.sorted()
            let step = max(1, sorted.count / 400)
            var pts: [String] = []
            var k = 0
            while k < sorted.count {
                pts.append("\(x(sorted[k] * 1000)),\(y(Double(k + 1) / Double(p.expected > 0 ? p.expected : sorted.count)))")
                k += step
            }
            pts.append("\(x(sorted.last! * 1000)),\(y(Double(sorted.count) / Double(p.expected > 0 ? p.expected : sorted.count)))")
            let c = colors[i % colors.count]
            s += "<polyline fill=\"none\" stroke=\"\(c)\" stroke-width=\"1.5\" points=\"\(pts.joined(separator: " "))\"/>\n"
            s += "<text x=\"\(w - right + 10)\" y=\"\(top + 16 * Double(i + 1))\" fill=\"\(c)\">\(p.name)</text>\n"
        }
        return s + "</svg>\n"
    }
}
