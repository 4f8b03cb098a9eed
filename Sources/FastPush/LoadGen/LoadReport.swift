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
    /// The server's own view of the push this round measured (`/debug/pushz`), when it has one.
    public var server: ServerPushTrace?

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

/// One push as the server traced it (fastpilot's `/debug/pushz?version=V`): per stage, the
/// median, p99 and slowest connection, in seconds; `toWrite`/`toAck` from the config event.
public struct ServerPushTrace: Sendable {
    public var version: UInt64
    public var pushed: Int
    public var acked: Int
    public var nacked: Int
    /// Stage name -> (p50, p99, max).
    public var stages: [(String, Double, Double, Double)]
    public var toWrite: (Double, Double, Double)
    public var toAck: (Double, Double, Double)
    public var slowestPeer: String?
}

extension ServerPushTrace {
    /// From a `/debug/pushz?version=V` document (milliseconds there, seconds here).
    init(json doc: JSONValue, version: UInt64) {
        func num(_ v: JSONValue?) -> Double {
            switch v {
            case let .double(d)?: d / 1000
            case let .int(i)?: Double(i) / 1000
            default: 0
            }
        }
        func triple(_ v: JSONValue?) -> (Double, Double, Double) { (num(v?["p50_ms"]), num(v?["p99_ms"]), num(v?["max_ms"])) }
        func count(_ v: JSONValue?) -> Int { if case let .int(i)? = v { Int(i) } else { 0 } }
        self.version = version
        pushed = count(doc["streams"]?["pushed"])
        acked = count(doc["streams"]?["acked"])
        nacked = count(doc["streams"]?["nacked"])
        stages = PushStage.allCases.map { s in
            let t = triple(doc["stages"]?["\(s)"])
            return ("\(s)", t.0, t.1, t.2)
        }
        toWrite = triple(doc["to_write"])
        toAck = triple(doc["to_ack"])
        if case let .array(slow)? = doc["slowest"], case let .string(peer)? = slow.first?["peer"] { slowestPeer = peer }
    }
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
        // The server's side of the same rounds, from its push traces.
        let traced = phases.filter { $0.server != nil }
        if let first = traced.first?.server {
            let sh = ["round", "version", "client p99 / max"] + first.stages.map { "\($0.0) p99" } + ["to write p99 / max", "to ack p99 / max", "acked", "slowest"]
            var srows: [[String]] = []
            for p in traced {
                let t = p.server!
                srows.append([p.name, String(t.version), "\(Self.ms(p.percentile(99))) / \(Self.ms(p.total))"]
                             + t.stages.map { Self.ms($0.2) }
                             + ["\(Self.ms(t.toWrite.1)) / \(Self.ms(t.toWrite.2))", "\(Self.ms(t.toAck.1)) / \(Self.ms(t.toAck.2))",
                                "\(t.acked)/\(t.pushed)" + (t.nacked > 0 ? " (\(t.nacked) NACK)" : ""), t.slowestPeer ?? "-"])
            }
            var sw = sh.map(\.count)
            for r in srows { for (i, c) in r.enumerated() { sw[i] = max(sw[i], c.count) } }
            func sline(_ c: [String]) -> String {
                c.enumerated().map { $1 + String(repeating: " ", count: sw[$0] - $1.count) }.joined(separator: "  ")
            }
            out += "server stages (ms, from /debug/pushz; the client's latency counts from the trigger, the server's from the config event):\n"
            out += sline(sh) + "\n"
            for r in srows { out += sline(r) + "\n" }
        }
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
                + "\"server_cpu_s\":\(num(p.serverCPU)),\"loadgen_cpu_s\":\(p.loadgenCPU),\"wall_s\":\(p.wallSeconds)"
                + (p.server.map { t in
                    func triple(_ v: (Double, Double, Double)) -> String { "{\"p50_s\":\(v.0),\"p99_s\":\(v.1),\"max_s\":\(v.2)}" }
                    let stages = t.stages.map { "\(JSONText.quote($0.0)):\(triple(($0.1, $0.2, $0.3)))" }.joined(separator: ",")
                    return ",\"server_trace\":{\"version\":\(t.version),\"pushed\":\(t.pushed),\"acked\":\(t.acked),\"nacked\":\(t.nacked),"
                        + "\"stages\":{\(stages)},\"to_write\":\(triple(t.toWrite)),\"to_ack\":\(triple(t.toAck)),"
                        + "\"slowest_peer\":\(t.slowestPeer.map(JSONText.quote) ?? "null")}"
                } ?? "") + "}"
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
        let traced = phases.filter { $0.server != nil }
        let w = 760.0, plotH = 420.0, left = 60.0, right = 180.0, top = 30.0, bottom = 50.0
        let h = plotH + (traced.isEmpty ? 0 : 30 + 16 * Double(traced.count))
        let maxMs = max(1, (phases.compactMap(\.total).max() ?? 0.001) * 1000)
        let colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
        func x(_ ms: Double) -> Double { left + ms / maxMs * (w - left - right) }
        func y(_ f: Double) -> Double { plotH - bottom - f * (plotH - top - bottom) }
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
        s += "<text x=\"\((w - right + left) / 2 - 20)\" y=\"\(plotH - 12)\">milliseconds</text>\n"
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
            // The server's slowest ACK of the same push, from its config event (dashed).
            if let t = p.server, t.toAck.2 > 0, t.toAck.2 * 1000 <= maxMs {
                s += "<line x1=\"\(x(t.toAck.2 * 1000))\" y1=\"\(y(0))\" x2=\"\(x(t.toAck.2 * 1000))\" y2=\"\(y(1))\" stroke=\"\(c)\" stroke-dasharray=\"4 3\"/>\n"
            }
        }
        if !traced.isEmpty {
            var ty = plotH + 8
            s += "<text x=\"\(left)\" y=\"\(ty)\">server stages, p99 ms (dashed: the server's last ACK of the push, from the config event):</text>\n"
            for p in traced {
                let t = p.server!
                ty += 16
                let stages = t.stages.map { "\($0.0) \(Self.ms($0.2))" }.joined(separator: ", ")
                s += "<text x=\"\(left)\" y=\"\(ty)\">\(p.name) (v\(t.version)): \(stages); to ack max \(Self.ms(t.toAck.2))</text>\n"
            }
        }
        return s + "</svg>\n"
    }
}
