#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Per-connection push queue state. A connection is IDLE, QUEUED (in the ring exactly once),
/// PROCESSING, or PROCESSING+DIRTY (a request arrived while it was being pushed).
public final class PushQueueLink: Sendable {
    static let idle: UInt8 = 0, queued: UInt8 = 1, processing: UInt8 = 2, dirty: UInt8 = 3

    let state = Atomic<UInt8>(0)
    /// The merged individual request waiting for this connection. A tiny per-connection lock:
    /// merging two requests is a set union, which no single atomic can do.
    let pending = Mutex<PushRequest?>(nil)
    /// Broadcast pushes: the newest published request this connection was enqueued with, and
    /// the newest one handed out. Only an atomic max on the enqueue path.
    let broadcastUpTo = Atomic<UInt64>(0)
    let broadcastDone = Atomic<UInt64>(0)

    public init() {}

    public var stateName: String {
        switch state.load(ordering: .relaxed) {
        case Self.idle: "idle"
        case Self.queued: "queued"
        case Self.processing: "processing"
        default: "processing+dirty"
        }
    }
}

public protocol PushQueueItem: AnyObject, Sendable {
    var pushQueueLink: PushQueueLink { get }
}

/// Istio's PushQueue with a lock-free ring. Enqueue of a queued connection merges in place and
/// keeps its position; enqueue during processing marks it dirty, and MarkDone puts it back at
/// the tail. The ring never holds a connection twice, so its size bounds itself. An empty queue
/// parks the consumer on a semaphore: no CPU at idle.
public final class PushQueue<Item: PushQueueItem>: Sendable {
    private let ring: MPSCRing<Item>
    /// Small on purpose: each entry keeps its PushContext alive. A connection lapped by it gets a
    /// forced full push instead, which is always correct.
    public let log = RequestLog(capacity: 64)
    private let parker = Semaphore()
    private let sleepers = Atomic<Int>(0)
    private let shuttingDown = Atomic<Bool>(false)
    private let queued = Atomic<Int>(0)

    /// `capacity`: the most connections that can ever be registered at once.
    public init(capacity: Int) {
        ring = MPSCRing(capacity: capacity)
    }

    public var capacity: Int { ring.size }
    /// Connections waiting in the ring (Istio's Pending()).
    public var pending: Int { queued.load(ordering: .relaxed) }

    /// Publishes a request that will go to many connections (a full push): enqueue them with
    /// `enqueue(_:published:)`.
    public func publish(_ request: PushRequest) -> UInt64 { log.publish(request) }

    /// A connection joining: broadcasts published before now are not its business (it answers
    /// its own requests from the newest snapshot).
    public func register(_ item: Item) {
        let now = log.latest
        item.pushQueueLink.broadcastDone.store(now, ordering: .relaxed)
        item.pushQueueLink.broadcastUpTo.store(now, ordering: .relaxed)
    }

    /// The fan-out path: no lock, no merge, no allocation per connection.
    public func enqueue(_ item: Item, published seq: UInt64) {
        guard !shuttingDown.load(ordering: .acquiring) else { return }
        let link = item.pushQueueLink
        var cur = link.broadcastUpTo.load(ordering: .relaxed)
        while cur < seq {
            let r = link.broadcastUpTo.compareExchange(expected: cur, desired: seq, ordering: .sequentiallyConsistent)
            if r.exchanged { break }
            cur = r.original
        }
        mark(item, link)
    }

    /// Istio's Enqueue: merges `request` into the connection's pending one.
    public func enqueue(_ item: Item, _ request: borrowing PushRequest) {
        guard !shuttingDown.load(ordering: .acquiring) else { return }
        let link = item.pushQueueLink
        link.pending.withLock { pending in
            if pending == nil { pending = copy request } else { pending!.absorb(request) }
        }
        mark(item, link)
    }

    private func mark(_ item: Item, _ link: PushQueueLink) {
        while true {
            switch link.state.load(ordering: .acquiring) {
            case PushQueueLink.idle:
                if link.state.compareExchange(expected: PushQueueLink.idle, desired: PushQueueLink.queued,
                                              ordering: .acquiringAndReleasing).exchanged {
                    append(item)
                    return
                }
            case PushQueueLink.processing:
                if link.state.compareExchange(expected: PushQueueLink.processing, desired: PushQueueLink.dirty,
                                              ordering: .acquiringAndReleasing).exchanged {
                    return
                }
            default:
                // QUEUED or DIRTY: the merged request will be taken with it.
                return
            }
        }
    }

    private func append(_ item: Item) {
        queued.wrappingAdd(1, ordering: .relaxed)
        var spins = 0
        while !ring.push(item) {
            // Unreachable while registrations stay under capacity; never lose the item.
            spins += 1
            if spins == 1 { Log.error("push_queue_full", ["capacity": ring.size]) }
            _ = sched_yield()
        }
        // The cell's release store must not pass the sleepers load below (store-load order):
        // otherwise a consumer registering at that moment could park with this item queued.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        wakeOne()
    }

    /// Claims one parked consumer (by taking it off `sleepers`) and wakes it: one semaphore
    /// post per park, however many producers race here.
    private func wakeOne() {
        var s = sleepers.load(ordering: .sequentiallyConsistent)
        while s > 0 {
            let r = sleepers.compareExchange(expected: s, desired: s - 1, ordering: .sequentiallyConsistent)
            if r.exchanged { parker.signal(); return }
            s = r.original
        }
    }

    /// Undoes a park registration. If a producer already claimed it, its post is on the way
    /// and is consumed here, so no token is left behind.
    private func unpark() {
        var s = sleepers.load(ordering: .sequentiallyConsistent)
        while s > 0 {
            let r = sleepers.compareExchange(expected: s, desired: s - 1, ordering: .sequentiallyConsistent)
            if r.exchanged { return }
            s = r.original
        }
        parker.wait()
    }

    /// The next ready connection, or nil at once.
    public func tryDequeue() -> (Item, PushRequest)? {
        while let item = ring.pop() {
            if let r = take(item) { return (item, r) }
        }
        return nil
    }

    /// Marks a popped connection PROCESSING and takes what it must push (nil: nothing, and it
    /// has been marked done again).
    private func take(_ item: Item) -> PushRequest? {
        queued.wrappingAdd(-1, ordering: .relaxed)
        let link = item.pushQueueLink
        link.state.store(PushQueueLink.processing, ordering: .sequentiallyConsistent)
        let individual = link.pending.withLock { r -> PushRequest? in defer { r = nil }; return r }
        let upTo = link.broadcastUpTo.load(ordering: .sequentiallyConsistent)
        let done = link.broadcastDone.load(ordering: .relaxed)
        var broadcast: PushRequest?
        if upTo > done {
            broadcast = log.merged(after: done, upTo: upTo)
            link.broadcastDone.store(upTo, ordering: .relaxed)
        }
        if let request = Self.combine(individual, broadcast) { return request }
        // Re-queued by a dirty mark whose request we already took: nothing to do.
        markDone(item)
        return nil
    }

    /// Blocks until a connection is ready. nil once shut down and drained, or on timeout.
    public func dequeue(timeoutNanos: UInt64? = nil) -> (Item, PushRequest)? {
        let deadline = timeoutNanos.map { MonotonicClock.nanos() &+ $0 }
        while true {
            if let item = ring.pop() {
                if let request = take(item) { return (item, request) }
                continue
            }
            if shuttingDown.load(ordering: .acquiring) { return nil }
            // A short spin first: under load the next connection is usually a moment away,
            // and a park/wake pair costs two syscalls.
            var spins = 0
            while spins < 256 && ring.isEmpty { spins += 1 }
            if !ring.isEmpty { continue }
            sleepers.wrappingAdd(1, ordering: .sequentiallyConsistent)
            if !ring.isEmpty || shuttingDown.load(ordering: .sequentiallyConsistent) {
                unpark()
                continue
            }
            if let deadline {
                let now = MonotonicClock.nanos()
                if !(now < deadline && parker.wait(timeoutNanos: deadline - now)) {
                    unpark()
                    if ring.isEmpty { return nil }
                }
            } else {
                parker.wait()
            }
        }
    }

    /// Individual and broadcast requests merged: the older start, the newer snapshot.
    static func combine(_ a: PushRequest?, _ b: PushRequest?) -> PushRequest? {
        guard var a else { return b }
        guard let b else { return a }
        let start = min(a.start == 0 ? b.start : a.start, b.start == 0 ? a.start : b.start)
        let newer = (b.push?.version ?? 0) >= (a.push?.version ?? 0) ? b.push : a.push
        a.absorb(b)
        a.start = start
        a.push = newer
        return a
    }

    /// The connection's push finished (written, closed or failed). A request that arrived
    /// meanwhile puts it back at the tail.
    public func markDone(_ item: Item) {
        let link = item.pushQueueLink
        while true {
            let s = link.state.load(ordering: .acquiring)
            if s == PushQueueLink.dirty {
                // Back to PROCESSING first, then look for real work: the request that marked
                // it dirty may already have been taken with the last one. A producer arriving
                // now marks it dirty again, and the CAS below sees that.
                guard link.state.compareExchange(expected: s, desired: PushQueueLink.processing,
                                                 ordering: .sequentiallyConsistent).exchanged else { continue }
                if hasWork(link) {
                    if link.state.compareExchange(expected: PushQueueLink.processing, desired: PushQueueLink.queued,
                                                  ordering: .sequentiallyConsistent).exchanged {
                        append(item)
                        return
                    }
                }
                continue
            } else if s == PushQueueLink.processing {
                if link.state.compareExchange(expected: s, desired: PushQueueLink.idle, ordering: .sequentiallyConsistent).exchanged {
                    return
                }
            } else {
                return
            }
        }
    }

    private func hasWork(_ link: PushQueueLink) -> Bool {
        link.pending.withLock { $0 != nil }
            || link.broadcastUpTo.load(ordering: .sequentiallyConsistent) > link.broadcastDone.load(ordering: .sequentiallyConsistent)
    }

    /// Stops accepting; what is queued is still handed out, then dequeue returns nil.
    public func shutDown() {
        shuttingDown.store(true, ordering: .sequentiallyConsistent)
        while sleepers.load(ordering: .sequentiallyConsistent) > 0 { wakeOne() }
    }
}
