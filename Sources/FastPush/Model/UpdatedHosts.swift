/// The hosts an incremental EDS push regenerates, as part of a response cache key. Built once
/// per published push and shared by every connection: its hash is computed once, and equal
/// keys usually are the same object.
public final class UpdatedHosts: Hashable, Sendable {
    public let keys: [String]
    public let hostnames: Set<String>
    private let precomputedHash: Int

    public init(_ configs: Set<ConfigKey>) {
        keys = configs.map { "\($0.namespace)/\($0.name)" }.sorted()
        hostnames = Set(configs.map(\.name))
        var h = Hasher()
        h.combine(keys)
        precomputedHash = h.finalize()
    }

    public static func == (a: UpdatedHosts, b: UpdatedHosts) -> Bool {
        a === b || (a.precomputedHash == b.precomputedHash && a.keys == b.keys)
    }

    public func hash(into h: inout Hasher) { h.combine(precomputedHash) }
}
