import Synchronization

/// Resource names, sorted, each with its content version: what a Delta stream holds of one type,
/// or what a resource table offers it. Interned by content, so that equal sets are one object:
/// a stream in sync with its scope holds the very set the scope's table has, an unchanged table
/// in the next PushContext is the same set again, and "nothing to send" is one pointer
/// comparison per stream. Per stream, the state is therefore one reference, not a map.
public final class VersionSet: Sendable, CustomStringConvertible {
    public let names: [String]
    public let versions: [UInt64]
    let contentHash: UInt64

    private init(names: [String], versions: [UInt64], hash: UInt64) {
        self.names = names
        self.versions = versions
        self.contentHash = hash
    }

    public var count: Int { names.count }
    public var isEmpty: Bool { names.isEmpty }
    public var description: String { "VersionSet(\(names.count))" }

    /// The version held for `name` (binary search), or nil.
    public func version(of name: String) -> UInt64? {
        var lo = 0, hi = names.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if names[mid] < name { lo = mid + 1 } else { hi = mid }
        }
        return lo < names.count && names[lo] == name ? versions[lo] : nil
    }

    public func contains(_ name: String) -> Bool { version(of: name) != nil }

    /// The entries whose names pass `keep`, as an interned set (self if all pass).
    public func filter(_ keep: (String) -> Bool) -> VersionSet {
        var n: [String] = [], v: [UInt64] = []
        for i in names.indices where keep(names[i]) { n.append(names[i]); v.append(versions[i]) }
        return n.count == names.count ? self : VersionSet.of(sortedNames: n, versions: v)
    }

    // MARK: interning

    public static let empty = VersionSet.of(sortedNames: [], versions: [])

    private static func hash(_ names: [String], _ versions: [UInt64]) -> UInt64 {
        var h: UInt64 = 0x9E3779B97F4A7C15 ^ UInt64(names.count)
        for i in names.indices {
            var s = names[i]
            let nh = s.withUTF8 { ContentHash.hash(UnsafeRawBufferPointer($0)) }
            h = (h ^ nh) &* 0xBF58476D1CE4E5B9
            h = (h ^ versions[i] ^ (h >> 31)) &* 0x94D049BB133111EB
        }
        return h
    }

    private struct Key: Hashable {
        let names: [String]
        let versions: [UInt64]
        let hash: UInt64
        func hash(into h: inout Hasher) { h.combine(hash) }
        static func == (a: Key, b: Key) -> Bool { a.hash == b.hash && a.versions == b.versions && a.names == b.names }
    }

    private static let table = InternTable<Key, VersionSet>()

    /// The interned set for names sorted ascending and unique, with their versions.
    public static func of(sortedNames names: [String], versions: [UInt64]) -> VersionSet {
        precondition(names.count == versions.count)
        let h = hash(names, versions)
        return table.intern(Key(names: names, versions: versions, hash: h)) { VersionSet(names: names, versions: versions, hash: h) }
    }

    /// A client's `initial_resource_versions` (any order; a repeated name keeps its last version;
    /// versions that are not ours are 0, unknown).
    public static func claimed(_ entries: [(name: String, version: String)]) -> VersionSet {
        guard !entries.isEmpty else { return empty }
        var byName: [String: UInt64] = [:]
        byName.reserveCapacity(entries.count)
        for e in entries { byName[e.name] = ContentHash.parse(e.version) }
        let names = byName.keys.sorted()
        return of(sortedNames: names, versions: names.map { byName[$0]! })
    }

    private static let wireTable = Mutex<[UInt64: [(wire: [UInt8], set: VersionSet)]]>([:])

    /// `claimed` for a request's initial_resource_versions still as wire bytes: thousands of
    /// reconnecting Envoys that hold the same resources send the same bytes, decoded once.
    public static func claimed(wire: [UInt8], digest: UInt64,
                               decode: () throws(ProtoDecodingError) -> [(name: String, version: String)]) throws(ProtoDecodingError) -> VersionSet {
        if wire.isEmpty { return empty }
        if let hit = wireTable.withLock({ t in t[digest]?.first { $0.wire == wire }?.set }) { return hit }
        let set = claimed(try decode())
        wireTable.withLock { t in
            if t.count >= 256 { t.removeAll(keepingCapacity: true) }
            t[digest, default: []].append((wire, set))
        }
        return set
    }

    /// Builds a set from unsorted entries that may repeat a name (the last one wins).
    public static func of(_ entries: [(String, UInt64)]) -> VersionSet {
        var byName: [String: UInt64] = [:]
        for (n, v) in entries { byName[n] = v }
        let names = byName.keys.sorted()
        return of(sortedNames: names, versions: names.map { byName[$0]! })
    }

    /// Interned sets alive or awaiting a purge (tests check that the table stays bounded).
    static var internedCount: Int { table.count }
}
