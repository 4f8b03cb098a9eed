import Foundation

/// Reads `perf script` output and renders it: a flame graph (SVG) and the hottest symbols per
/// thread group (text). Thread groups are the threads' names without their number
/// (`fp-uring-0`, `fp-uring-1` -> `fp-uring`).
///
/// Expected input: `perf script -F comm,tid,period,ip,sym,dso` (a header line per sample, then
/// one frame per line, leaf first, then a blank line).
enum FlameGraph {
    struct Sample {
        var thread: String
        var weight: Int
        /// Root first.
        var frames: [String]
    }

    static func parse(_ text: String) -> [Sample] {
        var out: [Sample] = []
        var current: Sample?
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty {
                if var s = current { s.frames.reverse(); out.append(s) }
                current = nil
                continue
            }
            if current == nil {
                // "comm tid period": comm may hold spaces; tid and period are the last two fields.
                let parts = line.split(separator: " ", omittingEmptySubsequences: true)
                guard parts.count >= 3, let period = Int(parts[parts.count - 1]) else { continue }
                let comm = parts[0..<(parts.count - 2)].joined(separator: " ")
                current = Sample(thread: group(comm), weight: max(1, period), frames: [])
            } else {
                current!.frames.append(frame(line))
            }
        }
        if var s = current { s.frames.reverse(); out.append(s) }
        return out
    }

    /// `fp-uring-1` -> `fp-uring`; `fastpilot` stays.
    static func group(_ comm: String) -> String {
        var c = Substring(comm)
        while let last = c.last, last.isNumber { c = c.dropLast() }
        if c.hasSuffix("-") { c = c.dropLast() }
        return c.isEmpty ? comm : String(c)
    }

    /// "7f12 symbol+0x1a (/usr/lib/libx.so)" -> "symbol [libx.so]" (unknown: the dso).
    static func frame(_ line: String) -> String {
        var parts = line.split(separator: " ", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return line }
        var rest = parts[1]
        var dso = ""
        if let open = rest.lastIndex(of: "("), rest.hasSuffix(")") {
            dso = String(rest[rest.index(after: open)..<rest.index(before: rest.endIndex)])
            rest = String(rest[..<open]).trimmingCharacters(in: .whitespaces)
            if let slash = dso.lastIndex(of: "/") { dso = String(dso[dso.index(after: slash)...]) }
        }
        if let plus = rest.range(of: "+0x", options: .backwards) { rest = String(rest[..<plus.lowerBound]) }
        parts[1] = rest
        let sym = rest == "[unknown]" || rest.isEmpty ? "[\(dso.isEmpty ? "unknown" : dso)]" : demangle(rest)
        return dso.isEmpty ? sym : "\(sym) [\(dso)]"
    }

    /// A short readable name for a Swift symbol (the full mangled name is long): the type and
    /// function names it contains, or the symbol as it is.
    static func demangle(_ s: String) -> String {
        guard s.hasPrefix("$s") else { return s }
        // Swift mangling spells identifiers as <length><name>: keep the readable ones.
        var names: [String] = []
        let u = Array(s.utf8)
        var i = 2
        while i < u.count {
            if u[i] >= 0x31 && u[i] <= 0x39 {
                var n = 0
                while i < u.count, u[i] >= 0x30 && u[i] <= 0x39 { n = n * 10 + Int(u[i] - 0x30); i += 1 }
                if i + n <= u.count && n > 1 {
                    let word = String(decoding: u[i..<(i + n)], as: UTF8.self)
                    if word.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) { names.append(word) }
                    i += n
                    continue
                }
            }
            i += 1
        }
        let kept = names.prefix(4).joined(separator: ".")
        return kept.isEmpty ? s : kept
    }

    // MARK: top symbols

    /// Per thread group, the share of samples each leaf symbol holds (self time), hottest first.
    static func top(_ samples: [Sample], limit: Int = 25) -> String {
        var byGroup: [String: [String: Int]] = [:]
        var totals: [String: Int] = [:]
        var all = 0
        for s in samples {
            let leaf = s.frames.last ?? "[no frames]"
            byGroup[s.thread, default: [:]][leaf, default: 0] += s.weight
            totals[s.thread, default: 0] += s.weight
            all += s.weight
        }
        var out = ""
        for (g, total) in totals.sorted(by: { $0.value > $1.value }) {
            out += String(format: "== %@: %.1f%% of all samples\n", g, 100 * Double(total) / Double(max(all, 1)))
            for (sym, w) in byGroup[g]!.sorted(by: { $0.value > $1.value }).prefix(limit) {
                out += String(format: "  %5.1f%%  %@\n", 100 * Double(w) / Double(total), sym)
            }
            out += "\n"
        }
        return out
    }

    // MARK: flame graph

    final class Node {
        var name: String
        var weight = 0
        var children: [String: Node] = [:]
        init(_ name: String) { self.name = name }
    }

    static func tree(_ samples: [Sample]) -> Node {
        let root = Node("all")
        for s in samples {
            root.weight += s.weight
            var n = root
            for f in [s.thread] + s.frames {
                let c = n.children[f] ?? { let x = Node(f); n.children[f] = x; return x }()
                c.weight += s.weight
                n = c
            }
        }
        return root
    }

    /// Root at the bottom, callees above; width is the share of samples. Hover for names.
    static func svg(_ samples: [Sample], title: String) -> String {
        let root = tree(samples)
        let width = 1200.0, rowH = 16.0
        func depth(_ n: Node) -> Int { 1 + (n.children.values.map(depth).max() ?? 0) }
        let levels = min(depth(root), 80)
        let height = Double(levels) * rowH + 60
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"monospace\" font-size=\"11\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"10\" y=\"20\" font-size=\"14\" font-family=\"sans-serif\">\(esc(title)): \(root.weight) samples</text>\n"
        func color(_ name: String) -> String {
            if name.contains("[kernel") { return "#e8a87c" }
            if name.contains("libswiftCore") || name.contains("swift_") { return "#c38d9e" }
            if name.contains("libc.so") { return "#d5b942" }
            if name.contains("nghttp2") { return "#85cdca" }
            if name.contains("liburing") { return "#41b3a3" }
            return "#e27d60"
        }
        func draw(_ n: Node, x: Double, level: Int) {
            let w = width * Double(n.weight) / Double(max(root.weight, 1))
            guard w >= 0.3, level < levels else { return }
            let y = height - 20 - Double(level + 1) * rowH
            let pct = String(format: "%.2f", 100 * Double(n.weight) / Double(max(root.weight, 1)))
            s += "<g><title>\(esc(n.name)) (\(pct)%)</title><rect x=\"\(x)\" y=\"\(y)\" width=\"\(w)\" height=\"\(rowH - 1)\" fill=\"\(color(n.name))\"/>"
            if w > 40 {
                let chars = Int((w - 6) / 6.6)
                let label = n.name.count > chars ? String(n.name.prefix(max(0, chars - 2))) + ".." : n.name
                s += "<text x=\"\(x + 3)\" y=\"\(y + 11)\">\(esc(label))</text>"
            }
            s += "</g>\n"
            var cx = x
            for c in n.children.values.sorted(by: { $0.name < $1.name }) {
                draw(c, x: cx, level: level + 1)
                cx += width * Double(c.weight) / Double(max(root.weight, 1))
            }
        }
        draw(root, x: 0, level: 0)
        return s + "</svg>\n"
    }

    static func esc(_ t: String) -> String {
        t.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
