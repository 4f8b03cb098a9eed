import Synchronization

/// A latency distribution that any number of threads record into without a lock: 112 atomic
/// buckets, four per power of two from 1 µs to about 70 s (so a percentile is within 19% of the
/// truth), plus the exact maximum. The count is the buckets' sum, read when asked: a record is
/// one shared add (and a CAS when it is a new maximum), as it runs per stream per stage.
public final class AtomicHistogram: Sendable {
    public static let bucketCount = 112
    private let buckets: InlineArray<112, Atomic<UInt64>>
    private let maxNanos = Atomic<UInt64>(0)

    public init() {
        buckets = InlineArray { _ in Atomic<UInt64>(0) }
    }

    /// Below 1 µs: bucket 0; then 4 buckets per doubling.
    @inline(__always)
    static func bucket(_ nanos: UInt64) -> Int {
        guard nanos >= 1024 else { return 0 }
        let k = 63 - nanos.leadingZeroBitCount
        let sub = Int((nanos >> UInt64(k - 2)) & 3)
        return min(bucketCount - 1, (k - 10) * 4 + sub + 1)
    }

    /// The largest value bucket `i` holds.
    static func upperBound(_ i: Int) -> UInt64 {
        guard i > 0 else { return 1023 }
        let k = (i - 1) / 4 + 10, sub = UInt64((i - 1) % 4)
        return ((4 + sub + 1) << UInt64(k - 2)) - 1
    }

    public func record(_ nanos: UInt64) {
        buckets[Self.bucket(nanos)].wrappingAdd(1, ordering: .relaxed)
        var m = maxNanos.load(ordering: .relaxed)
        while nanos > m {
            let r = maxNanos.compareExchange(expected: m, desired: nanos, ordering: .relaxed)
            if r.exchanged { break }
            m = r.original
        }
    }

    public var count: UInt64 {
        var n: UInt64 = 0
        for i in 0..<Self.bucketCount { n &+= buckets[i].load(ordering: .relaxed) }
        return n
    }
    public var max: UInt64 { maxNanos.load(ordering: .relaxed) }

    /// The value below which `p` (0...1) of the recorded values fall (a bucket's upper bound,
    /// never above the maximum); 0 when empty.
    public func percentile(_ p: Double) -> UInt64 {
        let n = count
        guard n > 0 else { return 0 }
        let rank = Swift.max(1, UInt64((Double(n) * p).rounded(.up)))
        var seen: UInt64 = 0
        for i in 0..<Self.bucketCount {
            seen += buckets[i].load(ordering: .relaxed)
            if seen >= rank { return Swift.min(Self.upperBound(i), max) }
        }
        return max
    }

    public func reset() {
        for i in 0..<Self.bucketCount { buckets[i].store(0, ordering: .relaxed) }
        maxNanos.store(0, ordering: .relaxed)
    }

    /// count, p50, p90, p99, max (nanoseconds), as the trace views show a stage.
    public var summary: StageSummary {
        StageSummary(count: Int(count), p50: percentile(0.5), p90: percentile(0.9), p99: percentile(0.99), max: max)
    }
}

public struct StageSummary: Sendable, Equatable {
    public var count: Int
    public var p50: UInt64
    public var p90: UInt64
    public var p99: UInt64
    public var max: UInt64
}
