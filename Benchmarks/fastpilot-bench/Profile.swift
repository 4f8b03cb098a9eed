import Foundation
import FastPush

/// `make profile SCENARIO="10000 10000"`: a scale scenario with both processes under `perf
/// record -e cpu-clock -g`, then a flame graph (SVG) and the top symbols per thread group for
/// each, rendered here from `perf script`.
enum Profile {
    static func run(_ args: [String]) throws -> String {
        let nums = args.filter { !$0.hasPrefix("-") }.compactMap { Int($0) }
        var sc = ScaleBench.Scenario(streams: nums.first ?? 10_000, conns: nums.count > 1 ? nums[1] : (nums.first ?? 10_000))
        sc.rounds = nums.count > 2 ? nums[2] : 3
        if args.contains("--delta") { sc.xdsProtocol = "delta" }
        let stamp = Int(Date().timeIntervalSince1970)
        let out = FileManager.default.currentDirectoryPath + "/bench-results/profile-\(sc.streams)-\(sc.conns)-\(stamp)"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        sc.profileDir = out
        let row = try ScaleBench.run(sc)
        var report = ScaleBench.table([row]) + "\n"
        for name in ["server", "loadgen"] {
            let data = "\(out)/\(name).perf.data"
            guard FileManager.default.fileExists(atPath: data) else { report += "\(name): no perf data (see \(out)/\(name).perf.log)\n"; continue }
            let script = "\(out)/\(name).perf.txt"
            let pid = try ScaleBench.spawn("/usr/bin/perf", ["script", "-i", data, "-F", "comm,tid,period,ip,sym,dso"], stdout: script)
            var st: Int32 = 0
            waitpid(pid, &st, 0)
            let samples = FlameGraph.parse(try String(contentsOfFile: script, encoding: .utf8))
            try FlameGraph.svg(samples, title: "fastpilot \(name), \(sc.label)").write(toFile: "\(out)/\(name).svg", atomically: true, encoding: .utf8)
            let top = FlameGraph.top(samples)
            try top.write(toFile: "\(out)/\(name).top.txt", atomically: true, encoding: .utf8)
            report += "\(name): \(samples.count) samples; \(out)/\(name).svg, \(out)/\(name).top.txt\n" + top.prefix(2500) + "\n"
        }
        return report
    }
}
