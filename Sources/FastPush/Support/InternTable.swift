import Synchronization

/// Equal values made once and shared: `intern(key)` returns the object already made for an equal
/// key, or makes it. Entries are strong references (a weak one would give every object a side
/// table and make each retain and release of it a slow path); an entry that only the table still
/// holds is purged. A purge runs once the inserts since the last one outnumber what that purge
/// kept (and 1024), so the table holds at most about twice the live objects, and the purges cost
/// O(1) per insert over time.
public final class InternTable<Key: Hashable & Sendable, Value: AnyObject & Sendable>: Sendable {
    private struct State {
        var entries: [Key: Value] = [:]
        var insertsSincePurge = 0
        var keptByLastPurge = 0
    }

    private let state = Mutex(State())

    public init() {}

    public func intern(_ key: Key, make: () -> Value) -> Value {
        state.withLock { t in
            if let existing = t.entries[key] { return existing }
            let v = make()
            t.entries[key] = v
            t.insertsSincePurge += 1
            if t.insertsSincePurge > max(1024, t.keptByLastPurge) {
                for k in Array(t.entries.keys) {
                    var v = t.entries.removeValue(forKey: k)!
                    if !isKnownUniquelyReferenced(&v) { t.entries[k] = v }
                }
                t.keptByLastPurge = t.entries.count
                t.insertsSincePurge = 0
            }
            return v
        }
    }

    /// Entries in the table, dead or alive (tests check that it stays bounded).
    public var count: Int { state.withLock { $0.entries.count } }
}
