import Synchronization

/// Every metric of the process, rendered as Prometheus text for /metrics.
public final class MetricsRegistry: Sendable {
    private let metrics = Mutex<[any Metric]>([])

    public init() {}

    @discardableResult
    public func register<M: Metric>(_ m: M) -> M {
        metrics.withLock { $0.append(m) }
        return m
    }

    public func render() -> String {
        let all = metrics.withLock { $0 }
        var out = ""
        var described = Set<String>()
        for m in all.sorted(by: { $0.name < $1.name }) {
            if described.insert(m.name).inserted {
                out += "# HELP \(m.name) \(m.help)\n# TYPE \(m.name) \(m.kind)\n"
            }
            for s in m.samples() { out += s + "\n" }
        }
        return out
    }
}
