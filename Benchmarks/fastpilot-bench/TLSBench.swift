import Foundation
import FastPush

/// What mutual TLS costs: the same scenario over plaintext h2c and over the TLS listener (client
/// certificates required), alternating, in one run. Per stream per push, and for the initial
/// sync (which includes every handshake).
enum TLSBench {
    static func run(streams: Int = 10_000, pairs: Int = 2) throws -> String {
        var rows: [[String]] = []
        var cpu: [String: (sync: [Double], ep: [Double], full: [Double])] = [:]
        for i in 0..<(2 * pairs) {
            let tls = i % 2 == 1
            let name = tls ? "mTLS" : "plaintext"
            Harness.progress("tls bench: \(streams) streams, \(name) (\(i / 2 + 1)/\(pairs))")
            var sc = ScaleBench.Scenario(streams: streams, conns: streams)
            sc.tls = tls
            let r = try ScaleBench.run(sc)
            let p = DeltaBench.phases(r)
            let sync = p.first { ($0["name"] as? String) == "initial sync" }
            let syncCPU = sync?["server_cpu_s"] as? Double
            let ep = ScaleBench.median(p, "endpoint", "server_cpu_s"), full = ScaleBench.median(p, "full", "server_cpu_s")
            var c = cpu[name] ?? ([], [], [])
            c.sync.append(syncCPU ?? 0)
            c.ep.append(ep ?? 0)
            c.full.append(full ?? 0)
            cpu[name] = c
            let ok = (r.report["success"] as? Bool) == true
            rows.append([name + (ok ? "" : " (INCOMPLETE)"),
                         ScaleBench.ms(sync?["p50_s"]) + " / " + ScaleBench.ms(sync?["max_s"]),
                         ScaleBench.ms(syncCPU),
                         ScaleBench.ms(ScaleBench.median(p, "endpoint", "p50_s")) + " / " + ScaleBench.ms(ScaleBench.median(p, "endpoint", "max_s")),
                         ScaleBench.ms(ScaleBench.median(p, "full", "p50_s")) + " / " + ScaleBench.ms(ScaleBench.median(p, "full", "max_s")),
                         ScaleBench.ms(ep), ScaleBench.ms(full),
                         (r.report["server_rss_per_stream"] as? Double).map { "\(Int($0.rounded()))" } ?? "-"])
        }
        func mean(_ v: [Double]) -> Double { v.isEmpty ? 0 : v.reduce(0, +) / Double(v.count) }
        func perStream(_ a: [Double], _ b: [Double]) -> String {
            String(format: "%+.1f µs", (mean(a) - mean(b)) / Double(streams) * 1e6)
        }
        let t = cpu["mTLS"] ?? ([], [], []), p = cpu["plaintext"] ?? ([], [], [])
        var out = "machine: \(Harness.machine())\n"
        out += Harness.table("xDS over mutual TLS against plaintext, \(streams) streams (1 per connection; medians of 3 rounds each; ms)",
                             header: ["listener", "sync p50 / max", "server CPU ms / sync", "endpoint p50 / max", "full p50 / max",
                                      "server CPU ms / endpoint round", "server CPU ms / full round", "server RSS B/stream"],
                             rows: rows)
        out += "\nserver CPU that TLS adds per stream (means): endpoint push \(perStream(t.ep, p.ep)), full push \(perStream(t.full, p.full)), "
            + "initial sync with its handshake \(perStream(t.sync, p.sync))\n"
        return out
    }
}
