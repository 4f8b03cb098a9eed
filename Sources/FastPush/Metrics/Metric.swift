import Synchronization

/// A Prometheus metric that can render itself.
public protocol Metric: Sendable {
    var name: String { get }
    var help: String { get }
    var kind: String { get }
    /// Sample lines without HELP/TYPE.
    func samples() -> [String]
}

/// A monotonically increasing count.
public final class Counter: Metric {
    public let name: String
    public let help: String
    public let labels: String
    public var kind: String { "counter" }
    private let value = Atomic<Int>(0)

    public init(_ name: String, _ help: String, labels: String = "") {
        self.name = name; self.help = help; self.labels = labels
    }

    public func inc(_ by: Int = 1) { value.wrappingAdd(by, ordering: .relaxed) }
    public var count: Int { value.load(ordering: .relaxed) }
    public func samples() -> [String] { ["\(name)\(labels) \(count)"] }
}

/// A value that goes up and down.
public final class Gauge: Metric {
    public let name: String
    public let help: String
    public let labels: String
    public var kind: String { "gauge" }
    private let value = Atomic<Int>(0)

    public init(_ name: String, _ help: String, labels: String = "") {
        self.name = name; self.help = help; self.labels = labels
    }

    public func set(_ v: Int) { value.store(v, ordering: .relaxed) }
    public func add(_ v: Int) { value.wrappingAdd(v, ordering: .relaxed) }
    public var current: Int { value.load(ordering: .relaxed) }
    public func samples() -> [String] { ["\(name)\(labels) \(current)"] }
}

/// Observations in cumulative buckets (Istio's bucket bounds per metric).
///
/// `@unchecked Sendable`: the bucket counters are atomics behind a pointer that never changes.
public final class Histogram: Metric, @unchecked Sendable {
    public let name: String
    public let help: String
    public let labels: String
    public let bounds: [Double]
    public var kind: String { "histogram" }
    private let buckets: UnsafeMutablePointer<Atomic<Int>>
    private let total = Atomic<Int>(0)
    /// Sum in billionths (integer, so that it can be an atomic add).
    private let sumNanos = Atomic<Int>(0)

    public init(_ name: String, _ help: String, bounds: [Double], labels: String = "") {
        self.name = name; self.help = help; self.bounds = bounds; self.labels = labels
        buckets = .allocate(capacity: bounds.count)
        for i in 0..<bounds.count { (buckets + i).initialize(to: Atomic(0)) }
    }

    deinit { buckets.deallocate() }

    /// A duration in nanoseconds, recorded in seconds.
    public func observe(nanos: UInt64) { record(Double(nanos) / 1e9, raw: Int(truncatingIfNeeded: nanos)) }

    /// A plain value (sizes in bytes).
    public func observe(value: Double) { record(value, raw: Int(value * 1e9)) }

    private func record(_ value: Double, raw: Int) {
        for (i, b) in bounds.enumerated() where value <= b {
            buckets[i].wrappingAdd(1, ordering: .relaxed)
            break
        }
        total.wrappingAdd(1, ordering: .relaxed)
        sumNanos.wrappingAdd(raw, ordering: .relaxed)
    }

    public var count: Int { total.load(ordering: .relaxed) }
    public var sum: Double { Double(sumNanos.load(ordering: .relaxed)) / 1e9 }

    public func samples() -> [String] {
        var out: [String] = []
        var cumulative = 0
        let base = labels.isEmpty ? "" : String(labels.dropFirst().dropLast()) + ","
        for (i, b) in bounds.enumerated() {
            cumulative += buckets[i].load(ordering: .relaxed)
            out.append("\(name)_bucket{\(base)le=\"\(Histogram.format(b))\"} \(cumulative)")
        }
        out.append("\(name)_bucket{\(base)le=\"+Inf\"} \(count)")
        out.append("\(name)_sum\(labels) \(sum)")
        out.append("\(name)_count\(labels) \(count)")
        return out
    }

    static func format(_ d: Double) -> String {
        d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d)
    }
}
