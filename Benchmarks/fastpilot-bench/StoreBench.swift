import FastPush

/// An etcd write to the last of the streams against the same change through the registry
/// file: 10k streams (1 per connection), endpoint changes made through the admin API, which
/// writes the file durably (temp, fsync, rename) or runs an etcd transaction and waits for the
/// server's own watch, in the same run.
enum StoreBench {
    static func run(streams: Int = 10_000) throws -> String {
        var rows: [[String]] = []
        var p100: [String: Double] = [:]
        for source in ["file", "etcd"] {
            Harness.progress("store bench: \(streams) streams, registry in \(source)")
            var sc = ScaleBench.Scenario(streams: streams, conns: streams)
            sc.registrySource = source
            sc.triggers = "endpoint"
            sc.rounds = 5
            let r = try ScaleBench.run(sc)
            let p = DeltaBench.phases(r)
            p100[source] = ScaleBench.median(p, "endpoint", "max_s")
            rows.append([source == "file" ? "registry file (--registry)" : "etcd (--store, one member)",
                         ScaleBench.ms(ScaleBench.median(p, "endpoint", "p50_s")) + " / " + ScaleBench.ms(p100[source]),
                         ScaleBench.ms(r.floorSeconds),
                         source == "etcd" ? (p100["file"].flatMap { f in p100["etcd"].map { String(format: "%+.1f", ($0 - f) * 1000) } } ?? "-") : ""])
        }
        return "machine: \(Harness.machine())\n" + Harness.table(
            "An endpoint change through the admin API to the last of \(streams) streams (1 per connection; medians of 5 rounds; ms)",
            header: ["registry", "p50 / max", "floor", "etcd max - file max"], rows: rows) + "\n"
    }
}
