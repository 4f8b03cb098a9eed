#if canImport(Glibc)
import Glibc
#endif

/// Wall-clock seconds since the epoch, for debug output (never for latency).
public enum WallClock {
    public static func seconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// UTC, RFC 3339: `2026-11-26T21:16:18Z`, or `…18.042Z` with milliseconds.
    public static func iso8601(seconds: Int, millis: Int? = nil) -> String {
        var t = time_t(seconds)
        var tmv = tm()
        gmtime_r(&t, &tmv)
        func pad(_ v: Int32, _ w: Int = 2) -> String {
            let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        let frac = millis.map { "." + pad(Int32($0), 3) } ?? ""
        return "\(pad(tmv.tm_year + 1900, 4))-\(pad(tmv.tm_mon + 1))-\(pad(tmv.tm_mday))T"
            + "\(pad(tmv.tm_hour)):\(pad(tmv.tm_min)):\(pad(tmv.tm_sec))\(frac)Z"
    }
}
