import FastPush

/// What push tracing costs: the same scenario with `--push-trace=true` and `=false`, alternating,
/// in one run; server CPU per round and latency side by side; and how long /debug/pushz takes to
/// answer while pushes run.
enum TraceBench {
    static func run(streams: Int = 10_000, pairs: Int = 2) throws -> String {
        var rows: [[String]] = []
        var cpu: [String: [Double]] = [:]
        var pushz: [Double] = []
        for i in 0..<(2 * pairs) {
            let on = i % 2 == 0
            Harness.progress("trace bench: \(streams) streams, trace \(on ? "on" : "off") (\(i / 2 + 1)/\(pairs))")
            var sc = ScaleBench.Scenario(streams: streams, conns: streams)
            sc.serverArgs += ["--push-trace", on ? "true" : "false"]
            sc.rounds = 5
            let r = try ScaleBench.run(sc)
            let p = DeltaBench.phases(r)
            let epCPU = ScaleBench.median(p, "endpoint", "server_cpu_s"), fullCPU = ScaleBench.median(p, "full", "server_cpu_s")
            cpu[on ? "on" : "off", default: []] += [epCPU ?? 0, fullCPU ?? 0]
            pushz += r.pushzSeconds
            rows.append([on ? "on" : "off",
                         ScaleBench.ms(ScaleBench.median(p, "endpoint", "p50_s")) + " / " + ScaleBench.ms(ScaleBench.median(p, "endpoint", "max_s")),
                         ScaleBench.ms(ScaleBench.median(p, "full", "p50_s")) + " / " + ScaleBench.ms(ScaleBench.median(p, "full", "max_s")),
                         ScaleBench.ms(epCPU), ScaleBench.ms(fullCPU)])
        }
        // Separately (its requests cost the server CPU too): /debug/pushz's answer time while pushes run.
        Harness.progress("trace bench: \(streams) streams, polling /debug/pushz")
        var polled = ScaleBench.Scenario(streams: streams, conns: streams)
        polled.pollPushz = true
        polled.rounds = 3
        pushz = try ScaleBench.run(polled).pushzSeconds
        func mean(_ v: [Double]) -> Double { v.isEmpty ? 0 : v.reduce(0, +) / Double(v.count) }
        let on = mean(cpu["on"] ?? []), off = mean(cpu["off"] ?? [])
        pushz.sort()
        var out = "machine: \(Harness.machine())\n"
        out += Harness.table("Push tracing on and off, \(streams) streams (1 per connection; medians of 5 rounds each; ms)",
                             header: ["trace", "endpoint p50 / max", "full p50 / max", "server CPU ms / endpoint round", "server CPU ms / full round"],
                             rows: rows)
        out += "\nserver CPU per round, mean of endpoint and full rounds: trace on \(ScaleBench.ms(on)) ms, off \(ScaleBench.ms(off)) ms: "
            + (off > 0 ? String(format: "%+.1f%%", (on / off - 1) * 100) : "-") + "\n"
        if !pushz.isEmpty {
            out += "/debug/pushz while pushes run: \(pushz.count) requests, p50 \(ScaleBench.ms(pushz[pushz.count / 2])) ms, "
                + "p99 \(ScaleBench.ms(pushz[min(pushz.count - 1, pushz.count * 99 / 100)])) ms, max \(ScaleBench.ms(pushz.last)) ms\n"
        }
        return out
    }
}
