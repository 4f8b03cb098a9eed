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

    private static let table = InternTable<Key, SubscriptionSet>()

    /// The interned set for `names` (any order, duplicates allowed).
    public static func of(_ names: [String]) -> SubscriptionSet {
        let sorted = Array(Set(names)).sorted()
        var h = Hasher()
        h.combine(sorted)
        let key = Key(names: sorted, hash: h.finalize())
        return table.intern(key) { SubscriptionSet(sortedUnique: sorted, hash: key.hash) }
    }

    /// Interned sets alive or awaiting a purge (tests check that the table stays bounded).
    static var internedCount: Int { table.count }

    public static let empty = SubscriptionSet.of([])

    // MARK: differences

    private static let differences = Mutex<[(from: SubscriptionSet, to: SubscriptionSet, added: SubscriptionSet)]>([])

    /// The names in `self` that `old` lacks, as an interned set. Thousands of streams make the
    /// same move (a new cluster appears for all of them), so the last few moves are cached.
    public func added(since old: SubscriptionSet) -> SubscriptionSet {
        if let hit = SubscriptionSet.differences.withLock({ d in d.first { $0.from === old && $0.to === self }?.added }) {
            return hit
        }
        let added = SubscriptionSet.of(names.filter { !old.nameSet.contains($0) })
        SubscriptionSet.differences.withLock { d in
            if d.count >= 8 { d.removeFirst() }
            d.append((old, self, added))
        }
        return added
    }

    private static let transitions = Mutex<[(from: SubscriptionSet, add: [String], remove: [String], to: SubscriptionSet)]>([])

    /// The set with `subscribe` added and `unsubscribe` taken out (a Delta request's lists).
    /// Thousands of streams make the same move when a cluster appears (each subscribes to its
    /// load assignment), so the last few moves are cached.
    public func applying(subscribe add: [String], unsubscribe remove: [String]) -> SubscriptionSet {
        if add.allSatisfy(nameSet.contains) && !remove.contains(where: nameSet.contains) { return self }
        if let hit = SubscriptionSet.transitions.withLock({ t in
            t.first { $0.from === self && $0.add == add && $0.remove == remove }?.to
        }) { return hit }
        let gone = Set(remove)
        let result = SubscriptionSet.of(names.filter { !gone.contains($0) } + add.filter { !gone.contains($0) })
        if add.count + remove.count <= 64 {
            SubscriptionSet.transitions.withLock { t in
                if t.count >= 16 { t.removeFirst() }
                t.append((self, add, remove, result))
            }
        }
        return result
    }

    // MARK: interning by wire bytes

    private struct WireEntry {
        let wire: [UInt8]
        let subscription: Subscription
    }

    private static let wireTable = Mutex<[UInt64: [WireEntry]]>([:])
    private static let wireTableLimit = 1024

    /// The subscription a request's `resource_names` wire bytes spell: identical bytes from
    /// thousands of clients (every Envoy of a namespace asks EDS for the same clusters) are
    /// decoded and sorted once. `decode` runs only for bytes not seen before.
    public static func of(wire: [UInt8], digest: UInt64,
                          decode: () throws(ProtoDecodingError) -> [String]) throws(ProtoDecodingError) -> Subscription {
        if let hit = wireTable.withLock({ t in t[digest]?.first { $0.wire == wire }?.subscription }) { return hit }
        let s = Subscription(try decode())
        wireTable.withLock { t in
            if t.count >= wireTableLimit { t.removeAll(keepingCapacity: true) }
            t[digest, default: []].append(WireEntry(wire: wire, subscription: s))
        }
        return s
    }
}

/// A request's resource names: the interned set, and whether "*" (wildcard) was among them.
public struct Subscription: Sendable, Equatable {
    public let names: SubscriptionSet
    public let star: Bool

    public init(_ names: [String]) {
        star = names.contains("*")
        self.names = SubscriptionSet.of(star ? names.filter { $0 != "*" } : names)
    }

    public init(names: SubscriptionSet, star: Bool) {
        self.names = names
        self.star = star
    }

    /// No names at all: for a non-wildcard type, an unsubscribe.
    public var isEmpty: Bool { names.isEmpty && !star }
}
