#if canImport(Glibc)
import Glibc
#endif
import Testing
import Synchronization
@testable import FastPush

/// istio-push-semantics.md section 5 and section 18 cases 1–11 (pushqueue_test.go).
/// "Blocks" = `dequeue(timeoutNanos: 500 ms)` returns nil.
@Suite(.timeLimit(.minutes(1))) struct PushQueueTests {
    typealias Queue = PushQueue<TestConn>

    static func req(_ keys: Int...) -> PushRequest { PushTest.request(keys) }

    /// Dequeues with Istio's 500 ms "blocks" timeout.
    static func dequeue(_ q: Queue) -> (TestConn, PushRequest)? { q.dequeue(timeoutNanos: PushTest.blockTimeout) }

    static func expectBlocks(_ q: Queue, sourceLocation: SourceLocation = #_sourceLocation) {
        let got = dequeue(q)
        #expect(got == nil, "dequeue should block, got \(String(describing: got?.0))", sourceLocation: sourceLocation)
    }

    @Test("case 1: dequeue returns connections in enqueue order")
    func case1Order() throws {
        let q = Queue(capacity: 16)
        let p0 = TestConn(0), p1 = TestConn(1)
        q.enqueue(p0, Self.req(0))
        q.enqueue(p1, Self.req(1))
        #expect(q.pending == 2)
        #expect(try #require(Self.dequeue(q)).0 === p0)
        #expect(try #require(Self.dequeue(q)).0 === p1)
        #expect(q.pending == 0)
    }

    @Test("case 2: a single enqueue is dequeued once, then dequeue blocks")
    func case2Single() throws {
        let q = Queue(capacity: 16)
        let p0 = TestConn(0)
        q.enqueue(p0, Self.req(0))
        let (c, r) = try #require(Self.dequeue(q))
        #expect(c === p0)
        #expect(r.configsUpdated == [PushTest.key(0)])
        Self.expectBlocks(q)
    }

    @Test("case 3: duplicate enqueue merges and keeps its position")
    func case3DuplicateMerges() throws {
        let q = Queue(capacity: 16)
        let p0 = TestConn(0), p1 = TestConn(1)
        q.enqueue(p0, Self.req(0))
        q.enqueue(p1, Self.req(1))
        q.enqueue(p0, Self.req(2))
        #expect(q.pending == 2)
        let (c0, r0) = try #require(Self.dequeue(q))
        #expect(c0 === p0)
        #expect(r0.configsUpdated == [PushTest.key(0), PushTest.key(2)])
        #expect(r0.reason == [.config: 2])
        let (c1, r1) = try #require(Self.dequeue(q))
        #expect(c1 === p1)
        #expect(r1.configsUpdated == [PushTest.key(1)])
        Self.expectBlocks(q)
    }

    @Test("case 4: after markDone a connection can be enqueued and dequeued again")
    func case4RequeueAfterDone() throws {
        let q = Queue(capacity: 16)
        let p0 = TestConn(0)
        q.enqueue(p0, Self.req(0))
        #expect(try #require(Self.dequeue(q)).0 === p0)
        q.markDone(p0)
        #expect(p0.pushQueueLink.stateName == "idle")
        q.enqueue(p0, Self.req(1))
        let (c, r) = try #require(Self.dequeue(q))
        #expect(c === p0)
        #expect(r.configsUpdated == [PushTest.key(1)])
        Self.expectBlocks(q)
    }

    @Test("case 5: enqueues while processing are held, merged, and handed out once after markDone")
    func case5EnqueueWhileProcessing() throws {
        let q = Queue(capacity: 16)
        let p0 = TestConn(0)
        q.enqueue(p0, Self.req(0))
        let (c, r) = try #require(Self.dequeue(q))
        #expect(c === p0)
        #expect(r.configsUpdated == [PushTest.key(0)])

        q.enqueue(p0, Self.req(1))
        q.enqueue(p0, Self.req(2))
        #expect(p0.pushQueueLink.stateName == "processing+dirty")
        #expect(q.pending == 0)
        // Not handed out while it is being processed.
        Self.expectBlocks(q)

        q.markDone(p0)
        #expect(q.pending == 1)
        let (c2, r2) = try #require(Self.dequeue(q))
        #expect(c2 === p0)
        #expect(r2.configsUpdated == [PushTest.key(1), PushTest.key(2)])
        #expect(r2.reason == [.config: 2])
        Self.expectBlocks(q)
    }

    @Test("case 6: a dequeue waiting on an empty queue returns the connection enqueued 50 ms later")
    func case6DequeueWaits() throws {
        let q = Queue(capacity: 16)
        let p0 = TestConn(0)
        let got = Locked<Int?>(nil)
        let started = Semaphore()
        let t = OSThread.spawn(name: "fp-test-deq") {
            started.signal()
            if let (c, _) = q.dequeue(timeoutNanos: 5_000 * PushTest.ms) { got.withLock { $0 = c.id } }
        }
        started.wait()
        PushTest.sleep(millis: 50)
        q.enqueue(p0, Self.req(0))
        t.join()
        #expect(got.value == 0)
    }

    @Test("case 7: merged request keeps the first start and unites the configs")
    func case7MergeInQueue() throws {
        let q = Queue(capacity: 16)
        let p0 = TestConn(0)
        let t: UInt64 = 5_000_000_000
        let foo = ConfigKey(kind: .serviceEntry, name: "foo", namespace: "")
        let bar = ConfigKey(kind: .serviceEntry, name: "bar", namespace: "ns1")
        let push0 = PushContext(version: 0, registry: .empty)
        let push1 = PushContext(version: 1, registry: .empty)
        q.enqueue(p0, PushRequest(full: true, configsUpdated: [foo], start: t, push: push0))
        q.enqueue(p0, PushRequest(full: true, configsUpdated: [bar], start: t + 1_000_000_000, push: push1))
        let (c, r) = try #require(Self.dequeue(q))
        #expect(c === p0)
        #expect(r.start == t)
        #expect(r.configsUpdated == [foo, bar])
        // The newest snapshot wins (section 5 invariants).
        #expect(r.push === push1)
        Self.expectBlocks(q)
    }

    @Test("case 8: two concurrent dequeues and one enqueue — exactly one returns")
    func case8TwoDequeuesOneEnqueue() throws {
        let q = Queue(capacity: 16)
        let p0 = TestConn(0)
        let returned = Counter()
        let timedOut = Counter()
        let started = Semaphore()
        let threads = (0..<2).map { i in
            OSThread.spawn(name: "fp-test-deq\(i)") {
                started.signal()
                if let (c, _) = q.dequeue(timeoutNanos: PushTest.blockTimeout) {
                    if c === p0 { returned.add() }
                } else {
                    timedOut.add()
                }
            }
        }
        started.wait()
        started.wait()
        PushTest.sleep(millis: 50)
        q.enqueue(p0, Self.req(0))
        for t in threads { t.join() }
        #expect(returned.value == 1)
        #expect(timedOut.value == 1)
        #expect(q.pending == 0)
    }

    @Test("case 9: 100 connections × 100 updates from several threads — every pair is observed within 10 s")
    func case9ConcurrentEnqueueDequeue() {
        let connections = 100, updates = 100, producers = 4
        let q = Queue(capacity: 128)
        let conns = (0..<connections).map { TestConn($0) }
        let seen = Locked<[Set<Int>]>(Array(repeating: [], count: connections))
        let producersDone = Counter()

        let consumer = OSThread.spawn(name: "fp-test-consumer") {
            let deadline = MonotonicClock.nanos() &+ 10_000 * PushTest.ms
            var complete = 0
            while complete < connections && MonotonicClock.nanos() < deadline {
                guard let (c, r) = q.dequeue(timeoutNanos: 100 * PushTest.ms) else { continue }
                let keys = (r.configsUpdated ?? []).compactMap(PushTest.index(of:))
                seen.withLock {
                    let before = $0[c.id].count
                    $0[c.id].formUnion(keys)
                    if before < updates && $0[c.id].count == updates { complete += 1 }
                }
                q.markDone(c)
            }
        }
        PushTest.onThreads(producers) { p in
            // Producer p sends updates p, p+producers, ... to every connection, interleaved.
            for u in stride(from: p, to: updates, by: producers) {
                for c in conns { q.enqueue(c, PushTest.request([u])) }
            }
            producersDone.add()
        }
        consumer.join()
        // Everything was observed, so nothing more may come out. (The ring may still hold a
        // connection re-queued by a dirty mark whose request was already taken: dequeue drops
        // it without returning it.)
        #expect(q.dequeue(timeoutNanos: 100 * PushTest.ms) == nil)

        let result = seen.value
        let missing = (0..<connections).reduce(0) { $0 + (updates - result[$1].count) }
        #expect(missing == 0, "\(missing) (connection, update) pairs never delivered")
        #expect(result.allSatisfy { $0 == Set(0..<updates) })
        #expect(q.pending == 0)
    }

    @Test("case 10: one connection, 100 sequential enqueues — batches in order, no loss, no reordering")
    func case10BatchesInOrder() {
        let q = Queue(capacity: 16)
        let p0 = TestConn(0)
        let total = 100
        let batches = Locked<[[Int]]>([])

        let consumer = OSThread.spawn(name: "fp-test-consumer") {
            let deadline = MonotonicClock.nanos() &+ 10_000 * PushTest.ms
            var received = 0
            while received < total && MonotonicClock.nanos() < deadline {
                guard let (c, r) = q.dequeue(timeoutNanos: 100 * PushTest.ms) else { continue }
                let keys = (r.configsUpdated ?? []).compactMap(PushTest.index(of:)).sorted()
                received += keys.count
                batches.withLock { $0.append(keys) }
                // "Process" the batch, and only then mark it done.
                usleep(UInt32.random(in: 0...200))
                q.markDone(c)
            }
        }
        for i in 0..<total {
            q.enqueue(p0, PushTest.request([i]))
            if i % 7 == 0 { usleep(50) }
        }
        consumer.join()

        let got = batches.value
        #expect(got.flatMap { $0 } == Array(0..<total))
        #expect(!got.isEmpty)
        #expect(q.pending == 0)
    }

    @Test("case 11: after shutDown enqueue is ignored, queued items still come out, then nil at once")
    func case11ShutDown() throws {
        let q = Queue(capacity: 16)
        let p0 = TestConn(0), p1 = TestConn(1), p2 = TestConn(2)
        q.enqueue(p0, Self.req(0))
        q.enqueue(p1, Self.req(1))
        q.shutDown()
        q.enqueue(p2, Self.req(2))
        q.enqueue(p0, Self.req(3))
        #expect(q.pending == 2)
        #expect(p2.pushQueueLink.stateName == "idle")

        let (c0, r0) = try #require(Self.dequeue(q))
        #expect(c0 === p0)
        #expect(r0.configsUpdated == [PushTest.key(0)])
        #expect(try #require(Self.dequeue(q)).0 === p1)

        // Drained and shut down: nil, and not after waiting out the timeout.
        let t0 = MonotonicClock.nanos()
        #expect(q.dequeue(timeoutNanos: 10_000 * PushTest.ms) == nil)
        #expect(q.dequeue() == nil)
        #expect(MonotonicClock.nanos() - t0 < 5_000 * PushTest.ms)
        #expect(q.pending == 0)
    }

    @Test("case 11 (detail): shutDown wakes a dequeue that is already waiting")
    func case11ShutDownWakesWaiter() {
        let q = Queue(capacity: 16)
        let returned = Locked<Bool>(false)
        let started = Semaphore()
        let t = OSThread.spawn(name: "fp-test-deq") {
            started.signal()
            let r = q.dequeue()
            returned.withLock { $0 = (r == nil) }
        }
        started.wait()
        PushTest.sleep(millis: 50)
        q.shutDown()
        t.join()
        #expect(returned.value)
    }
}
