import Synchronization

/// A connection's part of a push, in order: queue (built → dequeued by a worker), generate
/// (dequeued → responses made), submit (made → handed to the stream on its loop), write
/// (handed → the kernel took the last byte), ack (written → the client ACKed, or NACKed, the
/// last response of the push).
public enum PushStage: Int, CaseIterable, Sendable, CustomStringConvertible {
    case queue, generate, submit, write, ack
    public var description: String {
        switch self { case .queue: "queue"; case .generate: "generate"; case .submit: "submit"; case .write: "write"; case .ack: "ack" }
    }
}

/// How a connection's record of a push ended.
public enum TraceOutcome: Sendable { case acked, nacked, superseded, closed }

/// One connection's timeline of one push, as its slot held it (monotonic nanoseconds; 0: the
/// stage was not reached).
public struct TraceRecord: Sendable {
    public var seq: UInt64 = 0
    public var dequeued: UInt64 = 0
    public var generated: UInt64 = 0
    public var submitted: UInt64 = 0
    public var completed: UInt64 = 0
    public var acked: UInt64 = 0
    public var outcome = TraceOutcome.closed
    public var peer = ""
    public var node = ""

    public init() {}

    /// When `stage` ended (a switch, not an array: this runs per stream per push).
    func end(_ stage: PushStage) -> UInt64 {
        switch stage {
        case .queue: dequeued
        case .generate: generated
        case .submit: submitted
        case .write: completed
        case .ack: acked
        }
    }
}

/// One of the slowest connections of a push.
public struct SlowConnection: Sendable {
    public var peer: String
    public var node: String
    /// From the first config event to the last stage it reached.
    public var totalNanos: UInt64
    public var slowestStage: PushStage
    public var stageNanos: UInt64
    public var outcome: TraceOutcome
}

/// Everything recorded about one published push: its own stages (debounce, PushContext build,
/// publish), and the distributions of its connections' stages, folded in as each connection's
/// record closes (lock-free histograms; the top-20 list takes a lock only for a connection that
/// beats its current 20th). Reused: `PushTraces` keeps a ring of them.
public final class PushTrace: Sendable {
    public struct Info: Sendable {
        public var version: UInt64 = 0
        public var reason = ""
        public var full = false
        /// Monotonic nanoseconds: the first config event entered the debouncer, the debounced
        /// push started, its PushContext was ready, every connection was enqueued.
        public var firstEvent: UInt64 = 0
        public var debounced: UInt64 = 0
        public var built: UInt64 = 0
        public var published: UInt64 = 0
        public var wallPublished: Double = 0
        public var finishedAt: UInt64 = 0
    }

    public static let slowestKept = 20

    let seqStore = Atomic<UInt64>(0)
    private let infoStore = Mutex(Info())
    public let enqueued = Atomic<Int>(0)
    /// Connections that took this push off the queue (or a newer one it was merged into).
    public let processed = Atomic<Int>(0)
    /// Connections that were sent at least one response of it.
    public let pushed = Atomic<Int>(0)
    /// Pushed connections whose record closed, by outcome.
    public let folded = Atomic<Int>(0)
    public let acked = Atomic<Int>(0)
    public let nacked = Atomic<Int>(0)
    public let superseded = Atomic<Int>(0)
    public let closed = Atomic<Int>(0)
    let finished = Atomic<Bool>(false)
    /// Per stage: its duration, and when it ended counted from the first config event.
    public let durations: [AtomicHistogram] = PushStage.allCases.map { _ in AtomicHistogram() }
    public let offsets: [AtomicHistogram] = PushStage.allCases.map { _ in AtomicHistogram() }
    private let slowest = SlowestList(kept: PushTrace.slowestKept)
    /// Info's times that every fold reads, kept outside its lock.
    let firstEventAt = Atomic<UInt64>(0)
    let builtAt = Atomic<UInt64>(0)
    let publishedAt = Atomic<UInt64>(0)

    init() {}

    public var seq: UInt64 { seqStore.load(ordering: .acquiring) }
    public var info: Info { infoStore.withLock { $0 } }
    public var isFinished: Bool { finished.load(ordering: .acquiring) }
    public var slowestConnections: [SlowConnection] { slowest.top }

    /// Starts over for a newly published push.
    func reset(seq: UInt64, info: Info) {
        seqStore.store(0, ordering: .releasing)
        enqueued.store(0, ordering: .relaxed); processed.store(0, ordering: .relaxed); pushed.store(0, ordering: .relaxed)
        folded.store(0, ordering: .relaxed); acked.store(0, ordering: .relaxed); nacked.store(0, ordering: .relaxed)
        superseded.store(0, ordering: .relaxed); closed.store(0, ordering: .relaxed)
        finished.store(false, ordering: .relaxed)
        for h in durations { h.reset() }
        for h in offsets { h.reset() }
        slowest.reset()
        infoStore.withLock { $0 = info }
        firstEventAt.store(info.firstEvent, ordering: .relaxed)
        builtAt.store(info.built, ordering: .relaxed)
        publishedAt.store(info.published, ordering: .relaxed)
        seqStore.store(seq, ordering: .releasing)
    }

    func update(_ body: (inout Info) -> Void) { infoStore.withLock { body(&$0) } }

    /// Folds one connection's closed record in. Returns false if the trace was reused meanwhile.
    @discardableResult
    func fold(_ r: TraceRecord, firstEvent: UInt64, built: UInt64) -> Bool {
        guard seq == r.seq else { return false }
        var previous = built
        var total: UInt64 = 0
        var worst = PushStage.queue
        var worstNanos: UInt64 = 0
        for stage in PushStage.allCases {
            let end = r.end(stage)
            guard end != 0, end >= previous else { break }
            let d = end - previous
            durations[stage.rawValue].record(d)
            offsets[stage.rawValue].record(MonotonicClock.between(firstEvent, end))
            if d >= worstNanos { worstNanos = d; worst = stage }
            total = MonotonicClock.between(firstEvent, end)
            previous = end
        }
        switch r.outcome {
        case .acked: acked.wrappingAdd(1, ordering: .relaxed)
        case .nacked: nacked.wrappingAdd(1, ordering: .relaxed)
        case .superseded: superseded.wrappingAdd(1, ordering: .relaxed)
        case .closed: closed.wrappingAdd(1, ordering: .relaxed)
        }
        slowest.offer(total: total) {
            SlowConnection(peer: r.peer, node: r.node, totalNanos: total, slowestStage: worst, stageNanos: worstNanos, outcome: r.outcome)
        }
        folded.wrappingAdd(1, ordering: .releasing)
        return true
    }
}
