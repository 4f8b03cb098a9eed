import FastPush
import Synchronization

/// Ring PushQueue against the mutex + condition variable baseline: P producer threads each run
/// push fan-outs (a new request with one changed service, enqueued to every connection), one
/// consumer dequeues and marks done. Reported: enqueues per second across producers.
enum QueueBench {
    final class Conn: PushQueueItem {
        let pushQueueLink = PushQueueLink()
    }

    static let connections = 10_000

    /// Nanoseconds per repeat enqueue (connection already queued), one thread.
    static func mergeCost() {
        let conns = (0..<1000).map { _ in Conn() }
        let q = PushQueue<Conn>(capacity: 1024)
        let r1 = PushRequest(full: false, configsUpdated: [ConfigKey(kind: .endpoints, name: "a.demo.svc.cluster.local", namespace: "demo")], reason: [.endpoint: 1], start: 1)
        for c in conns { q.enqueue(c, r1) }
        let n = 5_000_000
        let secs = Harness.seconds { for i in 0..<n { q.enqueue(conns[i % 1000], r1) } }
        print("repeat enqueue: \(Int(secs * 1e9 / Double(n))) ns")
    }

    /// Ring only, for profiling.
    static func profileRing() {
        let conns = (0..<connections).map { _ in Conn() }
        let q = PushQueue<Conn>(capacity: connections)
        print(measure(producers: 2, perProducer: 2_000_000, conns: conns, publish: { q.publish($0) }, enqueue: { q.enqueue($0, published: $1) },
                      consume: { while let (c, _) = q.dequeue() { q.markDone(c) } }, shutDown: { q.shutDown() }))
    }

    static func run(short: Bool) -> [Sample] {
        var out: [Sample] = []
        let perProducer = short ? 200_000 : 1_000_000
        let conns = (0..<connections).map { _ in Conn() }
        for producers in [1, 2, 4] {
            let ring = Harness.run("ring    P=\(producers)", unit: "ops/s", reps: short ? 3 : 5) {
                let q = PushQueue<Conn>(capacity: connections)
                return measure(producers: producers, perProducer: perProducer, conns: conns,
                               publish: { q.publish($0) }, enqueue: { q.enqueue($0, published: $1) },
                               consume: { while let (c, _) = q.dequeue() { q.markDone(c) } },
                               shutDown: { q.shutDown() })
            }
            let mutex = Harness.run("mutex   P=\(producers)", unit: "ops/s", reps: short ? 3 : 5) {
                let q = MutexQueue<Conn>()
                return measure(producers: producers, perProducer: perProducer, conns: conns,
                               publish: { q.publish($0) }, enqueue: { q.enqueue($0, published: $1) },
                               consume: { while let (c, _) = q.dequeue() { q.markDone(c) } },
                               shutDown: { q.shutDown() })
            }
            out.append(Sample(name: "PushQueue ring, \(producers) producer(s)", unit: "enqueues/s", values: ring.values))
            out.append(Sample(name: "PushQueue mutex+cond (baseline), \(producers) producer(s)", unit: "enqueues/s", values: mutex.values))
            out.append(Sample(name: "PushQueue ring / baseline, \(producers) producer(s)", unit: "x", values: [ring.median / mutex.median]))
        }
        return out
    }

    static func measure(producers: Int, perProducer: Int, conns: [Conn],
                        publish: @escaping @Sendable (PushRequest) -> UInt64,
                        enqueue: @escaping @Sendable (Conn, UInt64) -> Void,
                        consume: @escaping @Sendable () -> Void,
                        shutDown: @escaping @Sendable () -> Void) -> Double {
        let consumerDone = Semaphore()
        OSThread.spawn(name: "bench-consumer") { consume(); consumerDone.signal() }
        let start = Semaphore()
        let finished = Semaphore()
        let box = UnsafeSendable(conns)
        for p in 0..<producers {
            OSThread.spawn(name: "bench-prod-\(p)") {
                var rng = UInt64(0x9E3779B97F4A7C15) &* UInt64(p + 1)
                let cs = box.value
                // Each producer is a push fan-out: every round a new request (one changed
                // service) to every connection, starting at a random place.
                let rounds = perProducer / cs.count
                let requests = (0..<rounds).map { r in
                    PushRequest(full: false, configsUpdated: [ConfigKey(kind: .endpoints, name: "svc-\(p)-\(r % 64).demo.svc.cluster.local", namespace: "demo")],
                                reason: [.endpoint: 1], start: 1)
                }
                start.wait()
                for r in 0..<rounds {
                    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17
                    let offset = Int(rng % UInt64(cs.count))
                    let seq = publish(requests[r])
                    for i in 0..<cs.count { enqueue(cs[(i + offset) % cs.count], seq) }
                }
                finished.signal()
            }
        }
        let secs = Harness.seconds {
            for _ in 0..<producers { start.signal() }
            for _ in 0..<producers { finished.wait() }
        }
        shutDown()
        consumerDone.wait()
        return Double(producers * (perProducer / conns.count) * conns.count) / secs
    }
}

struct UnsafeSendable<T>: @unchecked Sendable {
    // Read-only after creation: the producer threads only read it.
    let value: T
    init(_ v: T) { value = v }
}
