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
}
