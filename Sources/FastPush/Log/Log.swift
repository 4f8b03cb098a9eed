#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// One line per event, `key=value` fields, written with a single write(2) so that lines from
/// different threads never interleave.
public enum Log {
    public enum Level: Int, Sendable, Comparable {
        case debug = 0, info, warn, error
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
        var name: String {
            switch self { case .debug: "debug"; case .info: "info"; case .warn: "warn"; case .error: "error" }
        }
    }

    private static let minLevel = Atomic<Int>(Level.info.rawValue)
    private static let sink = Atomic<Int32>(2)

    public static func setLevel(_ l: Level) { minLevel.store(l.rawValue, ordering: .relaxed) }
    /// Tests redirect logs to a pipe or file to assert on them.
    public static func setOutput(fd: Int32) { sink.store(fd, ordering: .relaxed) }

    public static func enabled(_ l: Level) -> Bool { l.rawValue >= minLevel.load(ordering: .relaxed) }

    public static func debug(_ event: String, _ fields: KeyValuePairs<String, Any> = [:]) { emit(.debug, event, fields) }
    public static func info(_ event: String, _ fields: KeyValuePairs<String, Any> = [:]) { emit(.info, event, fields) }
    public static func warn(_ event: String, _ fields: KeyValuePairs<String, Any> = [:]) { emit(.warn, event, fields) }
    public static func error(_ event: String, _ fields: KeyValuePairs<String, Any> = [:]) { emit(.error, event, fields) }

    public static func emit(_ level: Level, _ event: String, _ fields: KeyValuePairs<String, Any>) {
        guard enabled(level) else { return }
        var line = "ts=\(timestamp()) level=\(level.name) event=\(event)"
        for (k, v) in fields {
            line += " \(k)=\(quote(String(describing: v)))"
        }
        line += "\n"
        let fd = sink.load(ordering: .relaxed)
        line.withUTF8 { p in
            var off = 0
            while off < p.count {
                let n = write(fd, p.baseAddress! + off, p.count - off)
                if n <= 0 { if n < 0 && errno == EINTR { continue }; return }
                off += n
            }
        }
    }

    static func quote(_ s: String) -> String {
        if s.isEmpty { return "\"\"" }
        var needs = false
        for u in s.utf8 where u == 0x20 || u == 0x3D || u == 0x22 || u < 0x20 { needs = true; break }
        return needs ? JSONText.quote(s) : s
    }

    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return WallClock.iso8601(seconds: Int(ts.tv_sec), millis: Int(ts.tv_nsec / 1_000_000))
    }
}
