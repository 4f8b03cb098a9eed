#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Per-connection push queue state. A connection is IDLE, QUEUED (in the ring exactly once),
/// PROCESSING, or PROCESSING+DIRTY (a request arrived while it was being pushed).
public final class PushQueueLink: Sendable {
    static let idle: UInt8 = 0, queued: UInt8 = 1, processing: UInt8 = 2, dirty: UInt8 = 3

    let state = Atomic<UInt8>(0)
    /// The merged request waiting for this connection. A tiny per-connection lock: merging two
    /// requests is a set union, which no single atomic can do.
    let pending = Mutex<PushRequest?>(nil)

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

    public func enqueue(_ item: Item, _ request: PushRequest) {
        guard !shuttingDown.load(ordering: .acquiring) else { return }
        let link = item.pushQueueLink
        link.pending.withLock { $0 = PushRequest.copyMerge($0, request) }
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
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 { parker.signal() }
    }

    /// Blocks until a connection is ready. nil once shut down and drained, or on timeout.
    public func dequeue(timeoutNanos: UInt64? = nil) -> (Item, PushRequest)? {
        let deadline = timeoutNanos.map { MonotonicClock.nanos() &+ $0 }
        while true {
            if let item = ring.pop() {
                queued.wrappingAdd(-1, ordering: .relaxed)
                let link = item.pushQueueLink
                link.state.store(PushQueueLink.processing, ordering: .sequentiallyConsistent)
                if let request = link.pending.withLock({ r -> PushRequest? in defer { r = nil }; return r }) {
                    return (item, request)
                }
                // Re-queued by a dirty mark whose request we already took: nothing to do.
                markDone(item)
                continue
            }
            if shuttingDown.load(ordering: .acquiring) { return nil }
            sleepers.wrappingAdd(1, ordering: .sequentiallyConsistent)
            if !ring.isEmpty || shuttingDown.load(ordering: .sequentiallyConsistent) {
                sleepers.wrappingAdd(-1, ordering: .sequentiallyConsistent)
                continue
            }
            if let deadline {
                let now = MonotonicClock.nanos()
                let woke = now < deadline && parker.wait(timeoutNanos: deadline - now)
                sleepers.wrappingAdd(-1, ordering: .sequentiallyConsistent)
                if !woke && ring.isEmpty { return nil }
            } else {
                parker.wait()
                sleepers.wrappingAdd(-1, ordering: .sequentiallyConsistent)
            }
        }
    }

    /// The connection's push finished (written, closed or failed). A request that arrived
    /// meanwhile puts it back at the tail.
    public func markDone(_ item: Item) {
        let link = item.pushQueueLink
        while true {
            let s = link.state.load(ordering: .acquiring)
            if s == PushQueueLink.dirty {
                if link.state.compareExchange(expected: s, desired: PushQueueLink.queued, ordering: .acquiringAndReleasing).exchanged {
                    append(item)
                    return
                }
            } else if s == PushQueueLink.processing {
                if link.state.compareExchange(expected: s, desired: PushQueueLink.idle, ordering: .acquiringAndReleasing).exchanged {
                    return
                }
            } else {
                return
            }
        }
    }

    /// Stops accepting; what is queued is still handed out, then dequeue returns nil.
    public func shutDown() {
        shuttingDown.store(true, ordering: .sequentiallyConsistent)
        for _ in 0..<max(1, sleepers.load(ordering: .sequentiallyConsistent)) { parker.signal() }
    }
}
