import Synchronization

/// The resource names one stream subscribes to for one type, sorted and deduplicated. Equal
/// subscriptions are interned to one object, so that a response cache lookup for ten thousand
/// Envoys watching the same hundred clusters compares one pointer, not a hundred strings.
public final class SubscriptionSet: Hashable, Sendable, CustomStringConvertible {
    public let names: [String]
    public let nameSet: Set<String>
    private let precomputedHash: Int

    private init(sortedUnique names: [String], hash: Int) {
        self.names = names
        self.nameSet = Set(names)
        self.precomputedHash = hash
    }

    public static func == (a: SubscriptionSet, b: SubscriptionSet) -> Bool {
        a === b || (a.precomputedHash == b.precomputedHash && a.names == b.names)
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(precomputedHash) }

    public var count: Int { names.count }
    public var isEmpty: Bool { names.isEmpty }
    public func contains(_ name: String) -> Bool { nameSet.contains(name) }
    public var description: String { names.count <= 4 ? names.description : "[\(names.count) names]" }

    // MARK: interning

    private struct Key: Hashable {
        let names: [String]
        let hash: Int
        func hash(into h: inout Hasher) { h.combine(hash) }
        static func == (a: Key, b: Key) -> Bool { a.hash == b.hash && a.names == b.names }
    }

    private final class WeakRef: @unchecked Sendable {
        // Read and written only under `table`'s lock.
        weak var value: SubscriptionSet?
        init(_ v: SubscriptionSet) { value = v }
    }

    private static let table = Mutex<(entries: [Key: WeakRef], insertsSincePurge: Int)>(([:], 0))

    /// The interned set for `names` (any order, duplicates allowed).
    public static func of(_ names: [String]) -> SubscriptionSet {
        let sorted = Array(Set(names)).sorted()
        var h = Hasher()
        h.combine(sorted)
        let key = Key(names: sorted, hash: h.finalize())
        return table.withLock { t in
            if let existing = t.entries[key]?.value { return existing }
            let s = SubscriptionSet(sortedUnique: sorted, hash: key.hash)
            t.entries[key] = WeakRef(s)
            t.insertsSincePurge += 1
            if t.insertsSincePurge > max(1024, t.entries.count) {
                t.entries = t.entries.filter { $0.value.value != nil }
                t.insertsSincePurge = 0
            }
            return s
        }
    }

    public static let empty = SubscriptionSet.of([])
}

/// The hosts an incremental EDS push regenerates (namespace/hostname), as a cache key part.
public struct UpdatedHosts: Hashable, Sendable {
    public let keys: [String]
    public let hostnames: Set<String>

    public init(_ configs: Set<ConfigKey>) {
        keys = configs.map { "\($0.namespace)/\($0.name)" }.sorted()
        hostnames = Set(configs.map(\.name))
    }

    public static func == (a: UpdatedHosts, b: UpdatedHosts) -> Bool { a.keys == b.keys }
    public func hash(into h: inout Hasher) { h.combine(keys) }
}
