import Testing
import Synchronization
@testable import FastPush

/// Encode once: however many workers ask at once, each key is built once and everyone gets
/// that one value.
@Suite(.timeLimit(.minutes(1))) struct OnceCacheTests {
    final class Built: Sendable {
        let key: Int
        init(_ key: Int) { self.key = key }
    }

    @Test func concurrentGetsBuildEachKeyOnce() {
        let cache = OnceCache<Int, Built>(seed: [-1: Built(-1)])
        let keys = 50
        let seen = Mutex<[Int: Set<ObjectIdentifier>]>([:])
        let threads = (0..<8).map { t in
            OSThread.spawn(name: "t-once-\(t)") {
                var mine: [Int: Set<ObjectIdentifier>] = [:]
                for i in 0..<2_000 {
                    let k = (i &* 7 &+ t) % keys
                    let v = cache.get(k) {
                        if i % 100 == 0 { OSThread.sleep(nanos: 100_000) }  // widen the race
                        return Built(k)
                    }
                    #expect(v.key == k)
                    mine[k, default: []].insert(ObjectIdentifier(v))
                }
                seen.withLock { all in all.merge(mine) { $0.union($1) } }
            }
        }
        for th in threads { th.join() }
        #expect(cache.builds.load(ordering: .relaxed) == keys)
        #expect(seen.withLock { $0.values.allSatisfy { $0.count == 1 } })
        // The seed is a hit, never built.
        #expect(cache.get(-1) { Built(-2) }.key == -1)
        #expect(cache.count == keys + 1)
        #expect(cache.entries { $0 >= 0 }.count == keys)
    }
}
