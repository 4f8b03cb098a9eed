import FastPush
#if canImport(Glibc)
import Glibc
#endif

/// fastpilot-bench [all|queue|proto|fanout|floor|scale|...] [--short]
///   all --short   the `make bench` suite (under 5 minutes): one table
///   floor [SOCKETS BYTES]   the kernel floor: BYTES to each of SOCKETS loopback sockets
///   fanout-trace [CONNS] [PAIRS]   the in-process fan-out with push tracing on against off
///   scale N K [R] [-- server flags]   one end-to-end scenario (serve + loadgen processes)
///   scale-suite   the scale scenarios of BENCHMARKS.md (State of the World, then the Delta tables)
///   scale-delta [--quick]   the Delta tables only
///   scale-store [STREAMS]   an etcd write against the same change through the file
///   profile STREAMS CONNS [ROUNDS] [--delta]   a scale scenario under perf; flame graphs in bench-results/
///   scale-tls [STREAMS] [PAIRS]     xDS over mutual TLS against plaintext, same run
///   scale-trace [STREAMS] [PAIRS]   push tracing on against off, and /debug/pushz's answer time
///   soak [--duration 10m]   churn, reconnects and a slow client; RSS sampled, flat or not
let args = CommandLine.arguments.dropFirst()
let short = args.contains("--short")
let which = args.first { !$0.hasPrefix("-") } ?? "all"

func row(_ s: Sample) -> [String] {
    [s.name, Harness.fmt(s.median), Harness.fmt(s.min), Harness.fmt(s.max), s.unit]
}

switch which {
case "floor-sink":
    FloorBench.sink(Array(args.dropFirst()))
case "merge-cost":
    QueueBench.mergeCost()
case "profile-ring":
    QueueBench.profileRing()
case "memprobe":
    try FanoutBench.probe(Int(args.dropFirst().first ?? "100") ?? 100)
case "queue":
    print(Harness.table("PushQueue", header: ["benchmark", "median", "min", "max", "unit"], rows: QueueBench.run(short: short).map(row)))
case "proto":
    print(Harness.table("Protobuf", header: ["benchmark", "median", "min", "max", "unit"], rows: try ProtoBench.run(short: short).map(row)))
case "fanout":
    let rest = Array(args.dropFirst()).compactMap { Int($0) }
    // fastpilot-bench fanout CONNS [STREAMS_PER_CONN] [REPS]
    let r = try FanoutBench.run(connections: rest.first ?? 1000, streamsPerConnection: rest.count > 1 ? rest[1] : 1, reps: rest.count > 2 ? rest[2] : 5)
    print(FanoutBench.table([r]))
case "fanout-trace":
    // fastpilot-bench fanout-trace CONNS [PAIRS]: the same fan-out with push tracing on, then
    // off, PAIRS times interleaved; CPU is the whole process's (no kernel, no client).
    let rest = Array(args.dropFirst()).compactMap { Int($0) }
    let conns = rest.first ?? 10_000, pairs = rest.count > 1 ? rest[1] : 3
    var on: [FanoutBench.Result] = [], off: [FanoutBench.Result] = []
    for _ in 0..<pairs {
        on.append(try FanoutBench.run(connections: conns, streamsPerConnection: 1, reps: 5, trace: true))
        off.append(try FanoutBench.run(connections: conns, streamsPerConnection: 1, reps: 5, trace: false))
    }
    print("trace on:"); print(FanoutBench.table(on))
    print("trace off:"); print(FanoutBench.table(off))
    func med(_ xs: [Double]) -> Double { let s = xs.sorted(); return s[s.count / 2] }
    let eOn = med(on.map(\.endpointCPUMicros.median)), eOff = med(off.map(\.endpointCPUMicros.median))
    let fOn = med(on.map(\.fullCPUMicros.median)), fOff = med(off.map(\.fullCPUMicros.median))
    print(String(format: "CPU per stream, medians of %d runs: endpoint on %.2f µs, off %.2f µs (%+.1f%%); full on %.2f µs, off %.2f µs (%+.1f%%)",
                 pairs, eOn, eOff, (eOn / eOff - 1) * 100, fOn, fOff, (fOn / fOff - 1) * 100))
case "floor":
    // fastpilot-bench floor [SOCKETS BYTES]: without arguments, 1 KiB to 1000 and to 10000 sockets.
    let rest = Array(args.dropFirst()).compactMap { Int($0) }
    let cases = rest.count == 2 ? [(rest[0], rest[1])] : [(1000, 1024), (10_000, 1024)]
    for (n, bytes) in cases {
        let s = try FloorBench.measure(sockets: n, bytes: bytes)
        print("floor N=\(n) \(bytes) B: median \(String(format1: s.median * 1e3)) ms (\(String(format1: s.median / Double(n) * 1e6)) us/socket)")
    }
case "scale":
    // fastpilot-bench scale STREAMS CONNS [ROUNDS] [-- server args]
    let rest = Array(args.dropFirst())
    let sep = rest.firstIndex(of: "--") ?? rest.count
    let nums = rest[..<sep].filter { !$0.hasPrefix("-") }.compactMap { Int($0) }
    var sc = ScaleBench.Scenario(streams: nums.first ?? 1000, conns: nums.count > 1 ? nums[1] : (nums.first ?? 1000))
    if nums.count > 2 { sc.rounds = nums[2] }
    if rest[..<sep].contains("--grpc") { sc.mode = "grpc" }
    if rest[..<sep].contains("--delta") { sc.xdsProtocol = "delta" }
    if sep < rest.count { sc.serverArgs = Array(rest[(sep + 1)...]) }
    print(ScaleBench.table([try ScaleBench.run(sc)]))
case "soak":
    // fastpilot-bench soak [--duration 10m] [--interval 60] [--streams N]
    exit(try SoakBench.run(SoakBench.Options.parse(Array(args.dropFirst()))) ? 0 : 1)
case "scale-suite":
    var rows: [ScaleBench.Row] = []
    for (n, k) in [(1000, 1000), (5000, 5000), (10_000, 10_000), (10_000, 100), (50_000, 500)] {
        Harness.progress("scale: \(n) streams over \(k) connections")
        rows.append(try ScaleBench.run(ScaleBench.Scenario(streams: n, conns: k)))
    }
    print("machine: \(Harness.machine())")
    print(ScaleBench.table(rows))
    print(try DeltaBench.run())
    print(try StoreBench.run())
    print(try TraceBench.run())
case "profile":
    // fastpilot-bench profile STREAMS CONNS [ROUNDS] [--delta]: perf record both processes
    print(try Profile.run(Array(args.dropFirst())))
case "flamegraph":
    // fastpilot-bench flamegraph PERF_SCRIPT_TXT [TITLE]: SVG on stdout
    let rest = Array(args.dropFirst())
    let text = try String(contentsOfFile: rest[0], encoding: .utf8)
    print(FlameGraph.svg(FlameGraph.parse(text), title: rest.count > 1 ? rest[1] : rest[0]), terminator: "")
case "scale-trace":
    // fastpilot-bench scale-trace [STREAMS] [PAIRS]: push tracing on against off
    let nums = args.dropFirst().compactMap { Int($0) }
    print(try TraceBench.run(streams: nums.first ?? 10_000, pairs: nums.count > 1 ? nums[1] : 2))
case "scale-tls":
    // fastpilot-bench scale-tls [STREAMS] [PAIRS]: xDS over mutual TLS against plaintext
    let nums = args.dropFirst().compactMap { Int($0) }
    print(try TLSBench.run(streams: nums.first ?? 10_000, pairs: nums.count > 1 ? nums[1] : 2))
case "scale-store":
    // fastpilot-bench scale-store [STREAMS]: etcd against the registry file
    print(try StoreBench.run(streams: args.dropFirst().compactMap { Int($0) }.first ?? 10_000))
case "scale-delta":
    // fastpilot-bench scale-delta [--quick]: the Delta tables only
    print(try DeltaBench.run(quick: args.contains("--quick")))
case "all":
    // The short suite: each part at a size that keeps the whole under five minutes.
    var rows: [[String]] = []
    rows += QueueBench.run(short: true).map(row)
    rows += try ProtoBench.run(short: true).map(row)
    for (c, s) in [(1000, 1), (20, 50)] {
        let f = try FanoutBench.run(connections: c, streamsPerConnection: s, reps: 3)
        rows.append(["fan-out endpoint push, \(f.streams) streams / \(f.connections) conns (no kernel)"] + Array(row(f.endpointMicros).dropFirst()))
        rows.append(["fan-out full push, \(f.streams) streams / \(f.connections) conns (no kernel)"] + Array(row(f.fullMicros).dropFirst()))
        rows.append(["server heap per stream, \(f.streams) streams / \(f.connections) conns", String(Int(f.heapPerStream)), "-", "-", "B"])
    }
    let floor = try FloorBench.measure(sockets: 1000, bytes: 1024)
    rows.append(["kernel floor: 1 KiB to 1000 sockets (io_uring)", String(format1: floor.median * 1e3), String(format1: floor.min * 1e3), String(format1: floor.max * 1e3), "ms"])
    for (n, k) in [(1000, 1000), (2000, 20)] {
        var sc = ScaleBench.Scenario(streams: n, conns: k)
        sc.rounds = 2
        let r = try ScaleBench.run(sc)
        let p = r.report["phases"] as? [[String: Any]] ?? []
        let label = "e2e \(n) streams / \(k) conns"
        func ms(_ v: Double?) -> String { v.map { String(format1: $0 * 1000) } ?? "-" }
        rows.append(["\(label): initial sync (max)", ms(p.first?["max_s"] as? Double), "-", "-", "ms"])
        rows.append(["\(label): endpoint change (max, median of rounds)", ms(ScaleBench.median(p, "endpoint", "max_s")), "-", "-", "ms"])
        rows.append(["\(label): full change (max, median of rounds)", ms(ScaleBench.median(p, "full", "max_s")), "-", "-", "ms"])
        rows.append(["\(label): floor for the same bytes", ms(r.floorSeconds), "-", "-", "ms"])
        rows.append(["\(label): server RSS per stream", (r.report["server_rss_per_stream"] as? Double).map { String(Int($0)) } ?? "-", "-", "-", "B"])
    }
    print("machine: \(Harness.machine())")
    print(Harness.table("fastpilot-bench (make bench)", header: ["benchmark", "median", "min", "max", "unit"], rows: rows))
default:
    print("unknown benchmark \(which)")
    exit(2)
}
