import Synchronization

/// Istio's doSendPushes with threads we own: one dispatcher takes a push slot, then dequeues a
/// connection, and hands it to one of a fixed set of workers. Slots bound the pushes in flight
/// (dequeued but not done); a slot comes back only through `PushDone` (when the push ends, or
/// earlier when its write stalls on a client that does not read). While more slots and
/// connections are at hand the dispatcher takes them too, and hands a batch over at once: one
/// wake-up per batch instead of one per connection.
public final class PushDispatcher<Item: PushQueueItem>: Sendable {
    public struct Job: Sendable {
        public let item: Item
        public let request: PushRequest
        public let done: PushDone
        /// When the dispatcher took it off the queue (monotonic nanos).
        public let dequeued: UInt64
    }

    public let queue: PushQueue<Item>
    public let throttle: Int
    public let workerCount: Int
    private let slots: Semaphore
    private let inFlight = Atomic<Int>(0)
    private let maxInFlight = Atomic<Int>(0)
    private let jobs = Mutex<[[Job]]>([])
    /// Batches are sized so that every worker gets work when the slots allow it.
    public let maxBatch: Int
    private let jobSignal = Semaphore()
    private let stopping = Atomic<Bool>(false)
    private let threads = Mutex<[OSThread]>([])
    private let process: @Sendable ([Job]) -> Void
    private let onDequeue: @Sendable (PushRequest) -> Void

    /// Istio's auto throttle (PILOT_PUSH_THROTTLE=0): min(15 + 5 × cores, 100).
    public static func defaultThrottle(cores: Int) -> Int { min(15 + 5 * cores, 100) }

    public init(queue: PushQueue<Item>, throttle: Int, workers: Int,
                onDequeue: @escaping @Sendable (PushRequest) -> Void = { _ in },
                process: @escaping @Sendable ([Job]) -> Void) {
        precondition(throttle > 0 && workers > 0)
        self.maxBatch = max(1, min(64, throttle / workers))
        self.queue = queue
        self.throttle = throttle
        self.workerCount = workers
        self.slots = Semaphore(value: throttle)
        self.process = process
        self.onDequeue = onDequeue
    }

    public var inFlightCount: Int { inFlight.load(ordering: .relaxed) }
    /// The most pushes ever in flight at once (tests prove the limit with it).
    public var maxObservedInFlight: Int { maxInFlight.load(ordering: .relaxed) }

    public func start() {
        var t = [OSThread.spawn(name: "fp-dispatch") { [self] in dispatchLoop() }]
        for i in 0..<workerCount {
            t.append(OSThread.spawn(name: "fp-push-\(i)") { [self] in workerLoop() })
        }
        threads.withLock { $0 = t }
    }

    /// Shuts the queue down; queued connections are still dispatched, then all threads exit.
    public func stop() {
        queue.shutDown()
        for t in threads.withLock({ t in defer { t = [] }; return t }) { t.join() }
    }

    private func dispatchLoop() {
        var batch: [Job] = []
        while true {
            slots.wait()
            guard let (item, request) = queue.dequeue() else {
                slots.signal()
                break
            }
            batch.append(job(item, request))
            while batch.count < maxBatch, slots.tryWait() {
                guard let (i, r) = queue.tryDequeue() else {
                    slots.signal()
                    break
                }
                batch.append(job(i, r))
            }
            let b = batch
            batch.removeAll(keepingCapacity: true)
            jobs.withLock { $0.append(b) }
            jobSignal.signal()
        }
        stopping.store(true, ordering: .releasing)
        for _ in 0..<workerCount { jobSignal.signal() }
    }

    private func job(_ item: Item, _ request: PushRequest) -> Job {
        let n = inFlight.wrappingAdd(1, ordering: .relaxed).newValue
        var m = maxInFlight.load(ordering: .relaxed)
        while n > m {
            let r = maxInFlight.compareExchange(expected: m, desired: n, ordering: .relaxed)
            if r.exchanged { break }
            m = r.original
        }
        onDequeue(request)
        let done = PushDone(markDone: { [self] in queue.markDone(item) },
                            releaseSlot: { [self] in
                                inFlight.wrappingAdd(-1, ordering: .relaxed)
                                slots.signal()
                            })
        return Job(item: item, request: request, done: done, dequeued: MonotonicClock.nanos())
    }

    private func workerLoop() {
        while true {
            jobSignal.wait()
            let batch = jobs.withLock { $0.isEmpty ? nil : $0.removeFirst() }
            if let batch {
                process(batch)
            } else if stopping.load(ordering: .acquiring) {
                break
            }
        }
    }
}
