import Synchronization

/// The slowest connections of one push. A fan-out completes in order of time, so nearly every
/// fold is a new slowest: a sorted list behind one lock cost a sort and a shared lock per
/// stream. Here the candidates spread over shards (by the low bits of their time), each a
/// min-heap of the top `kept` behind its own lock, whose root is that shard's admission
/// threshold; reading merges them.
final class SlowestList: Sendable {
    static let shardCount = 8

    private final class Shard: Sendable {
        let heap = Mutex<[SlowConnection]>([])
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
            if h.count < k {
                h.append(c)
                Self.siftUp(&h, h.count - 1)
            } else if c.totalNanos > h[0].totalNanos {
                h[0] = c
                Self.siftDown(&h, 0)
            } else {
                return
            }
            if h.count == k { shard.threshold.store(h[0].totalNanos, ordering: .relaxed) }
        }
    }

    /// The slowest `kept`, slowest first.
    var top: [SlowConnection] {
        var all: [SlowConnection] = []
        for s in shards { all += s.heap.withLock { $0 } }
        all.sort { $0.totalNanos > $1.totalNanos }
        return Array(all.prefix(kept))
    }

    func reset() {
        for s in shards {
            s.heap.withLock { $0.removeAll(keepingCapacity: true) }
            s.threshold.store(0, ordering: .relaxed)
        }
    }

    private static func siftUp(_ h: inout [SlowConnection], _ start: Int) {
        var i = start
        while i > 0 {
            let p = (i - 1) / 2
            guard h[i].totalNanos < h[p].totalNanos else { return }
            h.swapAt(i, p)
            i = p
        }
    }

    private static func siftDown(_ h: inout [SlowConnection], _ start: Int) {
        var i = start
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < h.count && h[l].totalNanos < h[m].totalNanos { m = l }
            if r < h.count && h[r].totalNanos < h[m].totalNanos { m = r }
            guard m != i else { return }
            h.swapAt(i, m)
            i = m
        }
    }
}
