#if canImport(Glibc)
import Glibc
#endif
import Testing
import Synchronization
@testable import FastPush

/// The fan-out path of the PushQueue: publish once, enqueue connections by sequence number.
@Suite struct BroadcastQueueTests {
    final class Conn: PushQueueItem {
        let pushQueueLink = PushQueueLink()
        let id: Int
        let busy = Atomic<Bool>(false)
        init(_ id: Int) { self.id = id }
    }

    static func key(_ n: Int) -> ConfigKey { ConfigKey(kind: .serviceEntry, name: "svc-\(n)", namespace: "ns") }

    @Test func broadcastsMergeOldestStartNewestPush() throws {
        let q = PushQueue<Conn>(capacity: 16)
        let c = Conn(0)
        let p1 = PushContext(version: 1, registry: .empty), p2 = PushContext(version: 2, registry: .empty)
        let s1 = q.publish(PushRequest(full: false, configsUpdated: [Self.key(1)], reason: [.endpoint: 1], start: 10, push: p1))
        let s2 = q.publish(PushRequest(full: true, configsUpdated: [Self.key(2)], reason: [.service: 1], start: 20, push: p2))
        q.enqueue(c, published: s1)
        q.enqueue(c, published: s2)
        #expect(q.pending == 1)
        let (got, r) = try #require(q.dequeue(timeoutNanos: 0))
        #expect(got === c)
        #expect(r.start == 10 && r.push === p2 && r.full)
        #expect(r.configsUpdated == [Self.key(1), Self.key(2)])
        #expect(r.reason?[.endpoint] == 1 && r.reason?[.service] == 1)
        q.markDone(c)
        #expect(q.dequeue(timeoutNanos: 10_000_000) == nil)
    }

    @Test func broadcastAndIndividualCombine() throws {
        let q = PushQueue<Conn>(capacity: 16)
        let c = Conn(0)
        q.enqueue(c, PushRequest(configsUpdated: [Self.key(1)], start: 5))
        q.enqueue(c, published: q.publish(PushRequest(configsUpdated: [Self.key(2)], start: 7)))
        let (_, r) = try #require(q.dequeue(timeoutNanos: 0))
        #expect(r.configsUpdated == [Self.key(1), Self.key(2)] && r.start == 5)
    }

    @Test func broadcastDuringProcessingRequeuesAtTheTail() throws {
        let q = PushQueue<Conn>(capacity: 16)
        let a = Conn(0), b = Conn(1)
        q.enqueue(a, published: q.publish(PushRequest(configsUpdated: [Self.key(1)])))
        let (first, _) = try #require(q.dequeue(timeoutNanos: 0))
        #expect(first === a)
        let s = q.publish(PushRequest(configsUpdated: [Self.key(2)]))
        q.enqueue(a, published: s)
        q.enqueue(b, published: s)
        #expect(q.dequeue(timeoutNanos: 0)?.0 === b)
        q.markDone(a)
        let (again, r) = try #require(q.dequeue(timeoutNanos: 0))
        #expect(again === a && r.configsUpdated == [Self.key(2)])
    }

    @Test func registeredConnectionsSkipOlderBroadcasts() throws {
        let q = PushQueue<Conn>(capacity: 16)
        let old = q.publish(PushRequest(configsUpdated: [Self.key(1)]))
        let c = Conn(0)
        q.register(c)
        q.enqueue(c, published: old)
        // Nothing new for it: handed out and dropped inside dequeue.
        #expect(q.dequeue(timeoutNanos: 50_000_000) == nil)
        q.enqueue(c, published: q.publish(PushRequest(configsUpdated: [Self.key(2)])))
        #expect(q.dequeue(timeoutNanos: 0)?.1.configsUpdated == [Self.key(2)])
    }

    @Test func aConnectionLappedByTheLogGetsAForcedFullPush() throws {
        let log = RequestLog(capacity: 4)
        let first = log.publish(PushRequest(configsUpdated: [Self.key(0)]))
        for i in 1...8 { _ = log.publish(PushRequest(configsUpdated: [Self.key(i)])) }
        let r = try #require(log.merged(after: first - 1, upTo: log.latest))
        #expect(r.forced && r.full)
        // Within the window, the exact merge.
        let exact = try #require(log.merged(after: log.latest - 2, upTo: log.latest))
        #expect(!exact.forced && exact.configsUpdated == [Self.key(7), Self.key(8)])
    }

    @Test func theLogKeepsOnlyTheNewestPushContextAlive() throws {
        let log = RequestLog(capacity: 8)
        weak var first: PushContext?
        var seqs: [UInt64] = []
        do {
            let ctx = PushContext(version: 1, registry: RegistrySnapshot(services: []))
            first = ctx
            seqs.append(log.publish(PushRequest(configsUpdated: [Self.key(1)], push: ctx)))
        }
        #expect(first != nil, "held by the log while it is the newest")
        let newer = PushContext(version: 2, registry: RegistrySnapshot(services: []))
        seqs.append(log.publish(PushRequest(configsUpdated: [Self.key(2)], push: newer)))
        #expect(first == nil, "an older snapshot is released once a newer one is published")
        // The old entry still carries its keys, now with the newest snapshot.
        let r = try #require(log.merged(after: seqs[0] - 1, upTo: seqs[0]))
        #expect(r.configsUpdated == [Self.key(1)] && r.push === newer)
    }

    /// Several producers broadcast to thousands of connections while one consumer drains:
    /// no connection is processed twice at once, and every connection sees every key.
    @Test(.timeLimit(.minutes(1))) func stressNoLostBroadcast() {
        let q = PushQueue<Conn>(capacity: 4096)
        let conns = (0..<3000).map(Conn.init)
        let producers = 4, rounds = 40
        let seen = Mutex<[Set<ConfigKey>]>(Array(repeating: [], count: conns.count))
        let allKeys = Set((0..<producers).flatMap { p in (0..<rounds).map { BroadcastQueueTests.key(p * 1000 + $0) } })
        let overlap = Atomic<Int>(0)
        let consumer = OSThread.spawn(name: "t-consumer") {
            while let (c, r) = q.dequeue() {
                if c.busy.exchange(true, ordering: .acquiringAndReleasing) { overlap.wrappingAdd(1, ordering: .relaxed) }
                // A connection lapped by the request log gets a forced full push: everything.
                seen.withLock { $0[c.id].formUnion(r.forced ? allKeys : (r.configsUpdated ?? [])) }
                c.busy.store(false, ordering: .releasing)
                q.markDone(c)
            }
        }
        let box = UnsafeSendableArray(conns)
        let threads = (0..<producers).map { p in
            OSThread.spawn(name: "t-prod-\(p)") {
                for r in 0..<rounds {
                    let seq = q.publish(PushRequest(configsUpdated: [BroadcastQueueTests.key(p * 1000 + r)]))
                    for c in box.value { q.enqueue(c, published: seq) }
                }
            }
        }
        for t in threads { t.join() }
        // Drain, then stop the consumer.
        let deadline = MonotonicClock.nanos() + 30_000_000_000
        while q.pending > 0 && MonotonicClock.nanos() < deadline { sched_yield() }
        q.shutDown()
        consumer.join()
        #expect(overlap.load(ordering: .relaxed) == 0)
        let all = seen.withLock { $0 }
        #expect(all.allSatisfy { $0 == allKeys }, "a connection missed a broadcast")
    }
}

struct UnsafeSendableArray<T>: @unchecked Sendable {
    // Read-only once shared with the producer threads.
    let value: [T]
    init(_ v: [T]) { value = v }
}
