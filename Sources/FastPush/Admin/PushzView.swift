/// `/debug/pushz`: the recent pushes' timelines (JSON, newest first), one push in detail
/// (`?version=V`), and a waterfall of one push (`/debug/pushz.svg[?version=V]`, the newest by
/// default).
enum PushzView {
    static func ms(_ nanos: UInt64) -> String { PushTraces.ms(nanos) }

    static func stage(_ s: StageSummary) -> String {
        "{\"count\":\(s.count),\"p50_ms\":\(ms(s.p50)),\"p90_ms\":\(ms(s.p90)),\"p99_ms\":\(ms(s.p99)),\"max_ms\":\(ms(s.max))}"
    }

    static func outcome(_ o: TraceOutcome) -> String {
        switch o { case .acked: "acked"; case .nacked: "nacked"; case .superseded: "superseded"; case .closed: "closed" }
    }

    /// Connections that have not ACKed the push they were last sent, by push (connection id,
    /// peer, nanoseconds since the write): one pass over the connections.
    static func pending(_ server: DiscoveryServer) -> [UInt64: [(String, String, UInt64)]] {
        let now = MonotonicClock.nanos()
        var out: [UInt64: [(String, String, UInt64)]] = [:]
        for c in server.allConnections {
            let s = c.traceState
            guard s.seq != 0, s.pending else { continue }
            out[s.seq, default: []].append((c.connectionID, c.peer, s.completed == 0 ? 0 : MonotonicClock.between(s.completed, now)))
        }
        return out
    }

    static func json(_ t: PushTrace, server: DiscoveryServer, detail: Bool, pending: [UInt64: [(String, String, UInt64)]]) -> String {
        let i = t.info
        let waiting = pending[t.seq] ?? []
        let state = t.isFinished ? (t.folded.load(ordering: .relaxed) < t.pushed.load(ordering: .relaxed) ? "timed_out" : "done") : "in_progress"
        var o = "{\"version\":\(i.version),\"seq\":\(t.seq),\"reason\":\(JSONText.quote(i.reason)),\"full\":\(i.full),"
        o += "\"state\":\"\(state)\",\"published\":\(JSONText.quote(WallClock.iso8601(seconds: Int(i.wallPublished)))),"
        o += "\"push\":{\"debounce_ms\":\(ms(MonotonicClock.between(i.firstEvent, i.debounced))),\"context_ms\":\(ms(MonotonicClock.between(i.debounced, i.built))),"
        o += "\"publish_ms\":\(i.published == 0 ? "null" : ms(MonotonicClock.between(i.built, i.published)))},"
        let pushed = t.pushed.load(ordering: .relaxed), folded = t.folded.load(ordering: .relaxed)
        o += "\"streams\":{\"enqueued\":\(t.enqueued.load(ordering: .relaxed)),\"processed\":\(t.processed.load(ordering: .relaxed)),"
        o += "\"pushed\":\(pushed),\"acked\":\(t.acked.load(ordering: .relaxed)),\"nacked\":\(t.nacked.load(ordering: .relaxed)),"
        o += "\"superseded\":\(t.superseded.load(ordering: .relaxed)),\"closed\":\(t.closed.load(ordering: .relaxed)),"
        o += "\"not_acked\":\(Swift.max(0, pushed - folded))},"
        o += "\"stages\":{" + PushStage.allCases.map { "\"\($0)\":\(stage(t.durations[$0.rawValue].summary))" }.joined(separator: ",") + "},"
        o += "\"to_write\":\(stage(t.offsets[PushStage.write.rawValue].summary)),\"to_ack\":\(stage(t.offsets[PushStage.ack.rawValue].summary)),"
        if detail {
            o += "\"ends\":{" + PushStage.allCases.map { "\"\($0)\":\(stage(t.offsets[$0.rawValue].summary))" }.joined(separator: ",") + "},"
        }
        let shown = detail ? waiting : Array(waiting.prefix(20))
        o += "\"pending_count\":\(waiting.count),\"pending_clients\":[" + shown.map {
            "{\"connection\":\(JSONText.quote($0.0)),\"peer\":\(JSONText.quote($0.1)),\"waiting_ms\":\(ms($0.2))}"
        }.joined(separator: ",") + "],"
        o += "\"slowest\":[" + t.slowestConnections.map {
            "{\"peer\":\(JSONText.quote($0.peer)),\"node\":\(JSONText.quote($0.node)),\"total_ms\":\(ms($0.totalNanos)),"
                + "\"stage\":\"\($0.slowestStage)\",\"stage_ms\":\(ms($0.stageNanos)),\"outcome\":\"\(outcome($0.outcome))\"}"
        }.joined(separator: ",") + "]}"
        return o
    }

    static func list(_ server: DiscoveryServer) -> String {
        let traces = server.traces
        guard traces.enabled else { return "{\"enabled\":false,\"pushes\":[]}\n" }
        let waiting = pending(server)
        return "{\"enabled\":true,\"capacity\":\(traces.capacity),\"pushes\":[" + traces.recent.map { json($0, server: server, detail: false, pending: waiting) }.joined(separator: ",") + "]}\n"
    }

    /// `version` nil: the newest.
    static func one(_ server: DiscoveryServer, version: UInt64?) -> PushTrace? {
        version.map { server.traces.trace(version: $0) } ?? server.traces.recent.first
    }

    /// A waterfall: one row per stage, x = time since the first config event. The push's own
    /// stages are single bars; each connection stage shows where its connections ended it: a
    /// bar to the median, a box from the median to p99, a line to the slowest. The slowest
    /// clients are marked on the row of the stage that made them slow.
    static func svg(_ t: PushTrace) -> String {
        let i = t.info
        let rows = ["debounce", "context", "publish"] + PushStage.allCases.map { "\($0)" }
        // The bars, then a column of figures on the right.
        let left = 110.0, right = 380.0, top = 50.0, rowH = 34.0, width = 1180.0
        let height = top + rowH * Double(rows.count) + 150
        let ends = PushStage.allCases.map { t.offsets[$0.rawValue].summary }
        let span = Double(Swift.max(ends.map(\.max).max() ?? 0, MonotonicClock.between(i.firstEvent, i.published), 1_000_000))
        func x(_ nanos: UInt64) -> Double { left + (width - left - right) * Double(nanos) / span }
        func y(_ row: Int) -> Double { top + rowH * Double(row) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(left)\" y=\"20\" font-size=\"14\">push version \(i.version) (\(esc(i.reason))): \(t.pushed.load(ordering: .relaxed)) streams, "
            + "\(t.acked.load(ordering: .relaxed)) acked, \(t.nacked.load(ordering: .relaxed)) nacked</text>\n"
        // Axis with five ticks.
        let axisY = y(rows.count) + 6
        s += "<line x1=\"\(left)\" y1=\"\(axisY)\" x2=\"\(width - right)\" y2=\"\(axisY)\" stroke=\"black\"/>\n"
        for k in 0...5 {
            let v = UInt64(Swift.min(span * Double(k) / 5, 9e18))
            s += "<line x1=\"\(x(v))\" y1=\"\(axisY)\" x2=\"\(x(v))\" y2=\"\(axisY + 5)\" stroke=\"black\"/>"
            s += "<text x=\"\(x(v) - 12)\" y=\"\(axisY + 18)\">\(ms(v)) ms</text>\n"
        }
        for (r, name) in rows.enumerated() {
            s += "<text x=\"8\" y=\"\(y(r) + 20)\">\(name)</text>\n"
            s += "<line x1=\"\(left)\" y1=\"\(y(r) + rowH)\" x2=\"\(width - right)\" y2=\"\(y(r) + rowH)\" stroke=\"#eee\"/>\n"
        }
        // The push's own stages.
        let own: [(UInt64, UInt64)] = [(i.firstEvent, i.debounced), (i.debounced, i.built), (i.built, i.published == 0 ? i.built : i.published)]
        for (r, (a, b)) in own.enumerated() {
            let x0 = x(MonotonicClock.between(i.firstEvent, a)), x1 = Swift.max(x(MonotonicClock.between(i.firstEvent, b)), x0 + 1)
            s += "<rect x=\"\(x0)\" y=\"\(y(r) + 8)\" width=\"\(x1 - x0)\" height=\"16\" fill=\"#7f7f7f\"/>"
            s += "<text x=\"\(width - right + 16)\" y=\"\(y(r) + 20)\">took \(ms(MonotonicClock.between(a, b))) ms</text>\n"
        }
        // Connection stages: where they ended.
        for stage in PushStage.allCases {
            let r = 3 + stage.rawValue
            let e = ends[stage.rawValue], d = t.durations[stage.rawValue].summary
            guard e.count > 0 else { s += "<text x=\"\(width - right + 16)\" y=\"\(y(r) + 20)\" fill=\"#999\">no connection reached it</text>\n"; continue }
            let startP50: UInt64 = stage.rawValue == 0 ? MonotonicClock.between(i.firstEvent, i.built) : ends[stage.rawValue - 1].p50
            let x0 = x(Swift.min(startP50, e.p50)), x50 = x(e.p50), x99 = x(e.p99), xmax = x(e.max)
            s += "<rect x=\"\(x0)\" y=\"\(y(r) + 10)\" width=\"\(Swift.max(x50 - x0, 1))\" height=\"12\" fill=\"#aec7e8\"/>"
            s += "<rect x=\"\(x50)\" y=\"\(y(r) + 6)\" width=\"\(Swift.max(x99 - x50, 1))\" height=\"20\" fill=\"#1f77b4\"/>"
            s += "<line x1=\"\(x99)\" y1=\"\(y(r) + 16)\" x2=\"\(xmax)\" y2=\"\(y(r) + 16)\" stroke=\"#1f77b4\"/>"
            s += "<line x1=\"\(xmax)\" y1=\"\(y(r) + 8)\" x2=\"\(xmax)\" y2=\"\(y(r) + 24)\" stroke=\"#1f77b4\"/>\n"
            s += "<text x=\"\(width - right + 16)\" y=\"\(y(r) + 14)\" fill=\"#333\">ended p50 \(ms(e.p50)) / p99 \(ms(e.p99)) / max \(ms(e.max)) ms</text>"
            s += "<text x=\"\(width - right + 16)\" y=\"\(y(r) + 27)\" fill=\"#777\">took p50 \(ms(d.p50)) / max \(ms(d.max)) ms (\(e.count))</text>\n"
        }
        // The slowest clients.
        let slow = t.slowestConnections
        for c in slow.prefix(8) {
            let r = 3 + c.slowestStage.rawValue
            s += "<circle cx=\"\(x(c.totalNanos))\" cy=\"\(y(r) + 16)\" r=\"4\" fill=\"#d62728\"><title>\(esc(c.peer)) \(esc(c.node)): \(ms(c.totalNanos)) ms</title></circle>\n"
        }
        var ly = y(rows.count) + 44
        s += "<text x=\"\(left)\" y=\"\(ly)\" font-size=\"13\">slowest clients (red):</text>\n"
        for c in slow.prefix(5) {
            ly += 16
            s += "<text x=\"\(left)\" y=\"\(ly)\" fill=\"#d62728\">\(esc(c.peer)) \(esc(c.node)): \(ms(c.totalNanos)) ms, mostly \(c.slowestStage) (\(ms(c.stageNanos)) ms), \(outcome(c.outcome))</text>\n"
        }
        return s + "</svg>\n"
    }

    static func esc(_ s: String) -> String {
        var o = ""
        for ch in s {
            switch ch {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            default: o.append(ch)
            }
        }
        return o
    }
}
