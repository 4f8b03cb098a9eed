import Synchronization

/// The slowest connections of one push. A fan-out completes in order of time, so nearly every
/// fold is a new slowest: a sorted list behind one lock cost a sort and a shared lock per
/// stream. Here the candidates spread over shards (by the low bits of their time), each a
/// min-heap of the top `kept` behind its own lock, whose root is that shard's admission
/// threshold; reading merges them. The heap moves 16-byte keys; the entries (with their
/// strings) stay in their slots and are overwritten in place.
final class SlowestList: Sendable {
    static let shardCount = 8

    private struct Key { var total: UInt64; var slot: Int }
    private struct Heap {
        var keys: [Key] = []
        var entries: [SlowConnection] = []
    }
    private final class Shard: Sendable {
        let heap = Mutex(Heap())
        let threshold = Atomic<UInt64>(0)
    }

    let kept: Int
    private let shards: [Shard]

    init(kept: Int) {
        self.kept = kept
        shards = (0..<Self.shardCount).map { _ in Shard() }
    }

    /// Offers a connection that took `total`; `make` runs only if it is kept.
    func offer(total: UInt64, _ make: () -> SlowConnection) {
        let shard = shards[Int(truncatingIfNeeded: total) & (Self.shardCount - 1)]
        guard total > shard.threshold.load(ordering: .relaxed) else { return }
        let c = make()
        let k = kept
        shard.heap.withLock { h in
            if h.keys.count < k {
                h.keys.append(Key(total: total, slot: h.entries.count))
                h.entries.append(c)
                Self.siftUp(&h.keys, h.keys.count - 1)
            } else if total > h.keys[0].total {
                h.entries[h.keys[0].slot] = c
                h.keys[0].total = total
                Self.siftDown(&h.keys, 0)
            } else {
                return
            }
            if h.keys.count == k { shard.threshold.store(h.keys[0].total, ordering: .relaxed) }
        }
    }

    /// The slowest `kept`, slowest first.
    var top: [SlowConnection] {
        var all: [SlowConnection] = []
        for s in shards { all += s.heap.withLock { $0.entries } }
        all.sort { $0.totalNanos > $1.totalNanos }
        return Array(all.prefix(kept))
    }

    func reset() {
        for s in shards {
            s.heap.withLock { h in
                h.keys.removeAll(keepingCapacity: true)
                h.entries.removeAll(keepingCapacity: true)
            }
            s.threshold.store(0, ordering: .relaxed)
        }
    }

    private static func siftUp(_ h: inout [Key], _ start: Int) {
        var i = start
        while i > 0 {
            let p = (i - 1) / 2
            guard h[i].total < h[p].total else { return }
            h.swapAt(i, p)
            i = p
        }
    }

    private static func siftDown(_ h: inout [Key], _ start: Int) {
        var i = start
        let n = h.count
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < n && h[l].total < h[m].total { m = l }
            if r < n && h[r].total < h[m].total { m = r }
            guard m != i else { return }
            h.swapAt(i, m)
            i = m
        }
    }
}
