import FastPush
#if canImport(Glibc)
import Glibc
#endif

/// The benchmarks' own timing harness: warm-up runs, then repetitions; medians, min and max.
struct Sample {
    let name: String
    let unit: String
    let values: [Double]

    var median: Double {
        let s = values.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
    var min: Double { values.min() ?? 0 }
    var max: Double { values.max() ?? 0 }
}

enum Harness {
    /// Runs `body` `warmup` times unmeasured, then `reps` times; `body` returns the value to
    /// report for that run (operations per second, MB/s, milliseconds...).
    static func run(_ name: String, unit: String, warmup: Int = 1, reps: Int = 5, _ body: () -> Double) -> Sample {
        for _ in 0..<warmup { _ = body() }
        var values: [Double] = []
        for _ in 0..<reps { values.append(body()) }
        let s = Sample(name: name, unit: unit, values: values)
        progress("  \(name): median \(fmt(s.median)) \(unit) (min \(fmt(s.min)), max \(fmt(s.max)))")
        return s
    }

    static func seconds(_ body: () -> Void) -> Double {
        let t0 = MonotonicClock.nanos()
        body()
        return Double(MonotonicClock.nanos() - t0) / 1e9
    }

    static func fmt(_ v: Double) -> String {
        if v >= 1e6 { return String(format1: v / 1e6) + "M" }
        if v >= 1e4 { return String(format1: v / 1e3) + "k" }
        return String(format1: v)
    }

    static func progress(_ s: String) {
        var line = s + "\n"
        line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }

    static func table(_ title: String, header: [String], rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = Swift.max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            "| " + cells.enumerated().map { $1 + String(repeating: " ", count: widths[$0] - $1.count) }.joined(separator: " | ") + " |"
        }
        var out = "\n### \(title)\n\n" + line(header) + "\n"
        out += "|" + widths.map { String(repeating: "-", count: $0 + 2) }.joined(separator: "|") + "|\n"
        for r in rows { out += line(r) + "\n" }
        return out
    }

    /// "machine: N cores, kernel X, model" for every report.
    static func machine() -> String {
        var u = utsname()
        uname(&u)
        let release = withUnsafeBytes(of: u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        var model = "?"
        if let f = fopen("/proc/cpuinfo", "r") {
            var buf = [CChar](repeating: 0, count: 512)
            while fgets(&buf, 512, f) != nil {
                let l = String(cString: buf)
                if l.hasPrefix("model name") { model = String(l.split(separator: ":", maxSplits: 1).last ?? "").trimmed; break }
            }
            fclose(f)
        }
        return "\(System.coreCount) cores (\(model)), Linux \(release)"
    }
}

extension String {
    init(format1 v: Double) {
        let r = (v * 10).rounded() / 10
        self = r == r.rounded() && abs(r) < 1e15 ? String(Int(r)) : String(r)
    }
    var trimmed: String {
        var s = Substring(self)
        while s.first?.isWhitespace == true { s = s.dropFirst() }
        while s.last?.isWhitespace == true { s = s.dropLast() }
        return String(s)
    }
}
