#if canImport(Glibc)
import Glibc
#endif
import Testing
import Synchronization
@testable import FastPush

/// Random concurrent load on the push queue: no connection is processed twice at once, no
/// update is lost, and the queue ends empty. Time-bounded, so it also fits under TSan.
@Suite(.timeLimit(.minutes(2))) struct PushQueueStressTests {
    typealias Queue = PushQueue<TestConn>

    /// What the consumers saw. Each consumer owns its own record; they are combined after join.
    final class Record: @unchecked Sendable {
        // Written by one consumer thread only, read after it is joined.
        var delivered: [Set<Int>]
        var batches = 0
        init(connections: Int) { delivered = Array(repeating: [], count: connections) }
    }

    struct Config {
        var producers = 4
        var consumers = 1
        var connections = 5_000
        var enqueuesPerProducer = 50_000
        /// Producers stop early after this long (TSan is 5–15× slower).
        var producerBudgetMillis = 2_000
    }

    /// Runs the load and checks every invariant. Keys are unique per (producer, sequence).
    static func run(_ cfg: Config) {
        let q = Queue(capacity: cfg.connections)
        let conns = (0..<cfg.connections).map { TestConn($0) }
        let producersDone = Counter()
        let doubleProcessing = Counter()
        let emptyRequests = Counter()
        let records = (0..<cfg.consumers).map { _ in Record(connections: cfg.connections) }
        let enqueued = Locked<[[Int: [Int]]]>(Array(repeating: [:], count: cfg.producers))

        let consumerThreads = (0..<cfg.consumers).map { ci in
            OSThread.spawn(name: "fp-test-cons\(ci)") {
                let rec = records[ci]
                var rng = SystemRandomNumberGenerator()
                while true {
                    let finished = producersDone.value == cfg.producers
                    guard let (c, r) = q.dequeue(timeoutNanos: 20 * PushTest.ms) else {
                        if finished { break }
                        continue
                    }
                    if c.busy.exchange(true, ordering: .acquiringAndReleasing) { doubleProcessing.add() }
                    let keys = r.configsUpdated ?? []
                    if keys.isEmpty { emptyRequests.add() }
                    for k in keys { if let i = PushTest.index(of: k) { rec.delivered[c.id].insert(i) } }
                    rec.batches += 1
                    if Int.random(in: 0..<16, using: &rng) == 0 { usleep(UInt32.random(in: 1...20, using: &rng)) }
                    c.busy.store(false, ordering: .releasing)
                    q.markDone(c)
                }
            }
        }

        let t0 = MonotonicClock.nanos()
        PushTest.onThreads(cfg.producers) { p in
            var rng = SystemRandomNumberGenerator()
            var mine: [Int: [Int]] = [:]
            let budget = t0 &+ UInt64(cfg.producerBudgetMillis) * PushTest.ms
            for s in 0..<cfg.enqueuesPerProducer {
                if s & 255 == 0 && MonotonicClock.nanos() > budget { break }
                let c = Int.random(in: 0..<cfg.connections, using: &rng)
                // Unique across producers: key = s * producers + p.
                let k = s * cfg.producers + p
                mine[c, default: []].append(k)
                q.enqueue(conns[c], PushTest.request([k], reason: .endpoint))
                if Int.random(in: 0..<64, using: &rng) == 0 { sched_yield() }
            }
            enqueued.withLock { $0[p] = mine }
            producersDone.add()
        }
        for t in consumerThreads { t.join() }

        var expected = Array(repeating: Set<Int>(), count: cfg.connections)
        var total = 0
        for perProducer in enqueued.value {
            for (c, ks) in perProducer { expected[c].formUnion(ks); total += ks.count }
        }
        var delivered = Array(repeating: Set<Int>(), count: cfg.connections)
        var batches = 0
        for rec in records {
            batches += rec.batches
            for c in 0..<cfg.connections { delivered[c].formUnion(rec.delivered[c]) }
        }
        var lost = 0, phantom = 0
        for c in 0..<cfg.connections {
            lost += expected[c].subtracting(delivered[c]).count
            phantom += delivered[c].subtracting(expected[c]).count
        }
        #expect(total > 0)
        #expect(batches > 0 && batches <= total)
        #expect(doubleProcessing.value == 0, "a connection was processed by two consumers at once")
        #expect(emptyRequests.value == 0)
        #expect(lost == 0, "\(lost) of \(total) updates never delivered")
        #expect(phantom == 0)
        #expect(q.pending == 0)
        #expect(conns.allSatisfy { $0.pushQueueLink.stateName == "idle" })
    }

    @Test("stress: 4 producers, 5000 connections, one consumer — no double processing, no lost update")
    func stressOneConsumer() {
        var cfg = Config()
        if PushTest.underTSan { cfg.enqueuesPerProducer = 15_000 }
        Self.run(cfg)
    }

    @Test("stress: 4 producers, 5000 connections, two concurrent consumers (the ring is MPMC)")
    func stressTwoConsumers() {
        var cfg = Config()
        cfg.consumers = 2
        if PushTest.underTSan { cfg.enqueuesPerProducer = 15_000 }
        Self.run(cfg)
    }

    @Test("stress: few connections, heavy contention on each link")
    func stressHotConnections() {
        var cfg = Config()
        cfg.connections = 8
        cfg.consumers = 2
        cfg.enqueuesPerProducer = PushTest.underTSan ? 10_000 : 40_000
        Self.run(cfg)
    }

    @Test("ping-pong: a consumer parked in dequeue() without timeout never misses a wakeup")
    func pingPongNoLostWakeup() {
        // The consumer parks (blocking dequeue, as the dispatcher does) right as the producer
        // enqueues the next request; a lost wakeup would leave it asleep with an item queued.
        let q = Queue(capacity: 16)
        let c = TestConn(0)
        let processed = Atomic<Int>(0)
        let consumer = OSThread.spawn(name: "fp-test-pong") {
            while let (item, _) = q.dequeue() {
                q.markDone(item)
                processed.wrappingAdd(1, ordering: .releasing)
            }
        }
        let iterations = PushTest.underTSan ? 20_000 : 200_000
        let budget = MonotonicClock.nanos() &+ 3_000 * PushTest.ms
        var stalls = 0, done = 0
        for i in 0..<iterations {
            if i & 1023 == 0 && MonotonicClock.nanos() > budget { break }
            // Vary the alignment between the producer's enqueue and the consumer parking.
            var x = 0
            for k in 0..<Int.random(in: 0..<200) { x &+= k }
            if x == -1 { print(x) }
            q.enqueue(c, PushRequest(full: true))
            // Spin (yielding) rather than poll every millisecond: most rounds take microseconds.
            let deadline = MonotonicClock.nanos() &+ 2_000 * PushTest.ms
            while processed.load(ordering: .acquiring) != i + 1 && MonotonicClock.nanos() < deadline { sched_yield() }
            if processed.load(ordering: .acquiring) != i + 1 {
                stalls += 1
                break
            }
            done += 1
        }
        // Also wakes a stalled consumer: it takes what is queued, then sees the shutdown.
        q.shutDown()
        consumer.join()
        #expect(stalls == 0, "consumer stayed parked with \(q.pending) connection(s) queued")
        #expect(done > 0)
    }
}
