import FastPush

/// The Delta rows of BENCHMARKS.md: State of the World and Delta side by side on the same
/// scenarios, a registry-size axis, one new service in a large registry, and a reconnect of
/// every stream (to the same server, and to a restarted one). Each table's rows run one after
/// another in one invocation, with the floor of each row measured in the same run.
enum DeltaBench {
    static func run(quick: Bool = false) throws -> String {
        var out = "machine: \(Harness.machine())\n"
        out += try sideBySide(quick ? [(1000, 1000)] : [(1000, 1000), (10_000, 10_000), (10_000, 100), (50_000, 500)])
        out += try registrySizes(quick ? [100, 1000] : [100, 1000, 5000])
        out += try newService(services: quick ? 500 : 2000, streams: 1000)
        out += try reconnect(streams: quick ? 1000 : 10_000)
        return out
    }

    static func phases(_ r: ScaleBench.Row) -> [[String: Any]] { r.report["phases"] as? [[String: Any]] ?? [] }
    static func ms(_ v: Double?) -> String { ScaleBench.ms(v) }
    static func mb(_ v: Double?) -> String { v.map { String(format1: $0 / 1e6) } ?? "-" }

    /// Median over the phases named `prefix`: bytes and server CPU per round.
    static func medianInt(_ p: [[String: Any]], _ prefix: String, _ key: String) -> Double? {
        let v = p.filter { ($0["name"] as? String ?? "").hasPrefix(prefix) }.compactMap { ($0[key] as? Int).map(Double.init) ?? ($0[key] as? Double) }.sorted()
        return v.isEmpty ? nil : v[v.count / 2]
    }

    static func sideBySide(_ sizes: [(Int, Int)]) throws -> String {
        var rows: [[String]] = []
        for (n, k) in sizes {
            var cpu: [String: Double] = [:]
            for proto in ["sotw", "delta"] {
                Harness.progress("delta suite: \(n) streams over \(k) connections, \(proto)")
                var sc = ScaleBench.Scenario(streams: n, conns: k)
                sc.xdsProtocol = proto
                let r = try ScaleBench.run(sc)
                let p = phases(r)
                let epCPU = ScaleBench.median(p, "endpoint", "server_cpu_s").map { $0 / Double(n) * 1e6 }
                cpu[proto] = epCPU
                let ok = (r.report["success"] as? Bool) == true
                rows.append([
                    "\(n) / \(k)" + (ok ? "" : " (INCOMPLETE)"), proto == "sotw" ? "SotW" : "Delta",
                    ms(p.first?["max_s"] as? Double) + " (\(mb(medianInt(p, "initial", "bytes"))) MB)",
                    ms(ScaleBench.median(p, "endpoint", "p50_s")) + " / " + ms(ScaleBench.median(p, "endpoint", "max_s")),
                    "\(ms(r.floorSeconds))",
                    ScaleBench.median(p, "endpoint", "max_s").map { String(format1: $0 / r.floorSeconds) + "x" } ?? "-",
                    mb(medianInt(p, "endpoint", "bytes")),
                    ms(ScaleBench.median(p, "full", "p50_s")) + " / " + ms(ScaleBench.median(p, "full", "max_s")),
                    mb(medianInt(p, "full", "bytes")),
                    epCPU.map { String(format1: $0) } ?? "-",
                    (r.report["server_rss_per_stream"] as? Double).map { "\(Int($0.rounded()))" } ?? "-",
                ])
            }
            if let s = cpu["sotw"], let d = cpu["delta"], s > 0 {
                rows.append(["", "Delta / SotW CPU", "", "", "", "", "", "", "", String(format1: d / s) + "x", ""])
            }
        }
        return Harness.table("State of the World and Delta, side by side (100 services; medians of 3 rounds; ms)",
                             header: ["streams / conns", "protocol", "sync max (bytes)", "endpoint p50 / max", "floor",
                                      "endpoint max / floor", "endpoint MB/round", "full p50 / max", "full MB/round",
                                      "server CPU µs/stream/endpoint round", "server RSS B/stream"], rows: rows) + "\n"
    }

    static func registrySizes(_ sizes: [Int]) throws -> String {
        var rows: [[String]] = []
        for services in sizes {
            for proto in ["sotw", "delta"] {
                Harness.progress("delta suite: \(services) services, \(proto)")
                var sc = ScaleBench.Scenario(streams: 1000, conns: 1000)
                sc.services = services
                sc.xdsProtocol = proto
                sc.triggers = "full"
                let r = try ScaleBench.run(sc)
                let p = phases(r)
                rows.append([
                    String(services), proto == "sotw" ? "SotW" : "Delta",
                    ms(p.first?["p50_s"] as? Double) + " / " + ms(p.first?["max_s"] as? Double),
                    mb(medianInt(p, "initial", "bytes")),
                    ms(ScaleBench.median(p, "full", "p50_s")) + " / " + ms(ScaleBench.median(p, "full", "max_s")),
                    mb(medianInt(p, "full", "bytes")),
                    (r.report["server_rss_per_stream"] as? Double).map { "\(Int($0.rounded()))" } ?? "-",
                ])
            }
        }
        return Harness.table("Registry size: 1000 streams, 1 per connection; a full change adds one service on port 8080 (ms, MB)",
                             header: ["services", "protocol", "sync p50 / max", "sync MB", "full p50 / max", "full MB/round",
                                      "server RSS B/stream"], rows: rows) + "\n"
    }

    static func newService(services: Int, streams: Int) throws -> String {
        var rows: [[String]] = []
        for newPort in [false, true] {
            var bytes: [String: Double] = [:]
            for proto in ["sotw", "delta"] {
                Harness.progress("delta suite: one new service in \(services), \(proto), new port \(newPort)")
                var sc = ScaleBench.Scenario(streams: streams, conns: streams)
                sc.services = services
                sc.xdsProtocol = proto
                sc.triggers = "full"
                sc.fullNewPort = newPort
                let r = try ScaleBench.run(sc)
                let p = phases(r)
                bytes[proto] = medianInt(p, "full", "bytes")
                rows.append([newPort ? "its own port" : "port 8080 (in use)", proto == "sotw" ? "SotW" : "Delta",
                             ms(ScaleBench.median(p, "full", "p50_s")) + " / " + ms(ScaleBench.median(p, "full", "max_s")),
                             mb(bytes[proto]),
                             proto == "delta" ? (bytes["sotw"].flatMap { s in bytes["delta"].map { String(format: "%.2f%%", $0 / s * 100) } } ?? "-") : ""])
            }
        }
        return Harness.table("One new service, \(services) services, \(streams) streams (1 per connection; ms, MB per round)",
                             header: ["new service on", "protocol", "p50 / max", "MB/round", "Delta bytes / SotW"], rows: rows) + "\n"
    }

    static func reconnect(streams: Int) throws -> String {
        var rows: [[String]] = []
        for restart in [false, true] {
            Harness.progress("delta suite: reconnect of \(streams) streams, restart \(restart)")
            var sc = ScaleBench.Scenario(streams: streams, conns: streams)
            sc.xdsProtocol = "delta"
            sc.triggers = "endpoint"
            sc.rounds = 1
            sc.reconnect = true
            sc.restart = restart
            let r = try ScaleBench.run(sc)
            let p = phases(r)
            let sync = p.first { ($0["name"] as? String) == "initial sync" }
            let rc = p.first { ($0["name"] as? String) == "reconnect" }
            let sb = (sync?["bytes"] as? Int).map(Double.init), rb = (rc?["bytes"] as? Int).map(Double.init)
            rows.append([restart ? "to a restarted server (same registry)" : "to the same server",
                         ms(sync?["max_s"] as? Double), mb(sb), ms(rc?["p50_s"] as? Double) + " / " + ms(rc?["max_s"] as? Double), mb(rb),
                         sb.flatMap { s in rb.map { String(format: "%.2f%%", $0 / s * 100) } } ?? "-",
                         (rc?["messages"] as? Int).map(String.init) ?? "-"])
        }
        return Harness.table("Reconnect of \(streams) Delta streams with initial_resource_versions (1 per connection; ms, MB)",
                             header: ["reconnect", "initial sync max", "sync MB", "reconnect p50 / max", "reconnect MB",
                                      "reconnect / sync bytes", "messages"], rows: rows) + "\n"
    }
}
