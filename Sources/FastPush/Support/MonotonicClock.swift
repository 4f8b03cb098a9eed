#if canImport(Glibc)
import Glibc
#endif

/// Nanoseconds on CLOCK_MONOTONIC: push latencies are differences of these.
public enum MonotonicClock {
    @inline(__always)
    public static func nanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// `end - start`, or 0 if `end` is earlier: two readings taken on different threads (a
    /// write completed after a reader took "now") must not wrap into centuries.
    @inline(__always)
    public static func between(_ start: UInt64, _ end: UInt64) -> UInt64 {
        end > start ? end - start : 0
    }

    public static func seconds(since start: UInt64) -> Double {
        Double(nanos() &- start) / 1e9
    }
}
