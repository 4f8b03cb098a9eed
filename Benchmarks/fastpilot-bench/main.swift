import FastPush
#if canImport(Glibc)
import Glibc
#endif

/// fastpilot-bench [queue|all] [--short]
let args = CommandLine.arguments.dropFirst()
let short = args.contains("--short")
let which = args.first { !$0.hasPrefix("-") } ?? "all"
var report = "machine: \(Harness.machine())\n"
if which == "floor-sink" { FloorBench.sink(Array(args.dropFirst())) }
if which == "floor" {
    for n in [1000, 10_000] {
        let s = try FloorBench.measure(sockets: n, bytes: 1024)
        print("floor N=\(n) 1KiB: median \(Int(s.median * 1e3 * 10) / 10) ms (\(Int(s.median / Double(n) * 1e7) / 10) us/socket)")
    }
    exit(0)
}
if which == "scale" {
    // fastpilot-bench scale STREAMS CONNS [ROUNDS] [-- server args]
    let rest = Array(args.dropFirst())
    let sep = rest.firstIndex(of: "--") ?? rest.count
    let nums = rest[..<sep].filter { !$0.hasPrefix("-") }.compactMap { Int($0) }
    var sc = ScaleBench.Scenario(streams: nums.first ?? 1000, conns: nums.count > 1 ? nums[1] : (nums.first ?? 1000))
    if nums.count > 2 { sc.rounds = nums[2] }
    sc.serverArgs = sep < rest.count ? Array(rest[(sep + 1)...]) : ["--debounce-after", "1ms", "--eds-debounce", "false"]
    let row = try ScaleBench.run(sc)
    print(ScaleBench.table([row]))
    exit(0)
}
if which == "memprobe" { try FanoutBench.probe(Int(args.dropFirst().first ?? "100") ?? 100); exit(0) }
if which == "fanout" {
    let rest = Array(args.dropFirst()).compactMap { Int($0) }
    let r = try FanoutBench.run(connections: rest.first ?? 1000, streamsPerConnection: rest.count > 1 ? rest[1] : 1, reps: 5)
    print(FanoutBench.table([r]))
    exit(0)
}
if which == "merge-cost" { QueueBench.mergeCost(); exit(0) }
if which == "profile-ring" { QueueBench.profileRing(); exit(0) }
if which == "queue" || which == "all" { report += QueueBench.run(short: short) }
print(report)
