import Synchronization

/// The timelines of recent pushes: a ring of `capacity` PushTraces, indexed by the push's
/// publish sequence number. A push is finished when every connection it was queued for has
/// taken it (or a newer push it was merged into) and every connection it was sent to has ACKed,
/// NACKed, been superseded by a newer push or gone; or `ackTimeout` after its publication. Then
/// one `push_done` line is logged. Recording is lock-free: connections fold their records into
/// atomic histograms.
public final class PushTraces: Sendable {
    public struct Metrics: Sendable {
        let stages: [Histogram]
        let ack: Histogram
        let nacks: Counter

        init(_ registry: MetricsRegistry) {
            let bounds = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 3, 10, 30]
            stages = PushStage.allCases.map {
                registry.register(Histogram("fastpilot_push_stage_seconds", "Time a connection spends in each stage of a push: queue, generate, submit, write (to the kernel), ack (to the client's ACK).",
                                            bounds: bounds, labels: "{stage=\"\($0)\"}"))
            }
            ack = registry.register(Histogram("fastpilot_push_ack_seconds", "Delay in seconds between the first config event of a push and the client's ACK of it.",
                                              bounds: [0.01, 0.05, 0.1, 0.5, 1, 3, 5, 10, 20, 30]))
            nacks = registry.register(Counter("fastpilot_push_nacks_total", "Pushes NACKed by a client."))
        }
    }

    public let capacity: Int
    public let enabled: Bool
    public let ackTimeoutNanos: UInt64
    private let ring: [PushTrace]
    private let mask: UInt64
    private let newest = Atomic<UInt64>(0)
    let metrics: Metrics?

    public init(capacity requested: Int = 64, enabled: Bool = true, ackTimeoutNanos: UInt64 = 30_000_000_000,
                registry: MetricsRegistry? = nil) {
        var c = 2
        while c < requested { c <<= 1 }
        capacity = c
        mask = UInt64(c - 1)
        ring = (0..<c).map { _ in PushTrace() }
        self.enabled = enabled
        self.ackTimeoutNanos = ackTimeoutNanos
        metrics = registry.map(Metrics.init)
    }

    /// The trace of push `seq`, if the ring still holds it.
    public func trace(_ seq: UInt64) -> PushTrace? {
        guard seq != 0 else { return nil }
        let t = ring[Int(seq & mask)]
        return t.seq == seq ? t : nil
    }

    /// Newest first.
    public var recent: [PushTrace] {
        let top = newest.load(ordering: .acquiring)
        guard top > 0 else { return [] }
        return (0..<UInt64(capacity)).compactMap { i in top > i ? trace(top - i) : nil }
    }

    public func trace(version: UInt64) -> PushTrace? { recent.first { $0.info.version == version } }

    /// A push was published as `seq`. The slot it takes is cleared first.
    func begin(seq: UInt64, info: PushTrace.Info) {
        guard enabled else { return }
        ring[Int(seq & mask)].reset(seq: seq, info: info)
        var cur = newest.load(ordering: .relaxed)
        while cur < seq {
            let r = newest.compareExchange(expected: cur, desired: seq, ordering: .acquiringAndReleasing)
            if r.exchanged { break }
            cur = r.original
        }
    }

    /// Every connection was enqueued.
    func published(seq: UInt64, enqueued: Int, at now: UInt64, wall: Double) {
        guard let t = trace(seq) else { return }
        t.enqueued.store(enqueued, ordering: .relaxed)
        t.update { $0.published = now; $0.wallPublished = wall }
        t.publishedAt.store(now, ordering: .releasing)
        check(t)
    }

    /// A connection took pushes `from...to` off the queue (more than one when they were merged);
    /// `pushed`: it was sent something of `to`.
    func processed(from: UInt64, to: UInt64, pushed: Bool) {
        guard enabled, to != 0 else { return }
        var s = from == 0 ? to : from
        while s <= to {
            if let t = trace(s) {
                t.processed.wrappingAdd(1, ordering: .relaxed)
                if s == to && pushed { t.pushed.wrappingAdd(1, ordering: .relaxed) }
                check(t)
            }
            s += 1
        }
    }

    /// A connection's record closed.
    func fold(_ r: TraceRecord) {
        guard let t = trace(r.seq) else { return }
        let firstEvent = t.firstEventAt.load(ordering: .relaxed), built = t.builtAt.load(ordering: .relaxed)
        guard t.fold(r, firstEvent: firstEvent, built: built) else { return }
        if let m = metrics {
            var previous = built
            for stage in PushStage.allCases {
                let end = r.end(stage)
                guard end != 0, end >= previous else { break }
                m.stages[stage.rawValue].observe(nanos: end - previous)
                previous = end
            }
            if r.acked != 0, r.outcome == .acked { m.ack.observe(nanos: MonotonicClock.between(firstEvent, r.acked)) }
            if r.outcome == .nacked { m.nacks.inc() }
        }
        check(t)
    }

    /// Milliseconds with one decimal.
    static func ms(_ nanos: UInt64) -> String { String(Double(nanos / 100_000 + (nanos % 100_000 >= 50_000 ? 1 : 0)) / 10) }

    /// Finishes `t` when nothing is left to wait for.
    private func check(_ t: PushTrace) {
        guard t.publishedAt.load(ordering: .acquiring) != 0,
              t.processed.load(ordering: .acquiring) >= t.enqueued.load(ordering: .acquiring),
              t.folded.load(ordering: .acquiring) >= t.pushed.load(ordering: .acquiring) else { return }
        finish(t, timedOut: false)
    }

    /// Finishes the pushes that waited longer than the ACK timeout (a client that never ACKs).
    public func sweep(now: UInt64) {
        for t in recent where !t.isFinished {
            let p = t.info.published
            if p != 0 && MonotonicClock.between(p, now) > ackTimeoutNanos { finish(t, timedOut: true) }
        }
    }

    private func finish(_ t: PushTrace, timedOut: Bool) {
        guard !t.finished.exchange(true, ordering: .acquiringAndReleasing) else { return }
        t.update { $0.finishedAt = MonotonicClock.nanos() }
        let info = t.info
        let write = t.offsets[PushStage.write.rawValue].summary
        let ack = t.offsets[PushStage.ack.rawValue].summary
        let slow = t.slowestConnections.first
        func ms(_ n: UInt64) -> String { PushTraces.ms(n) }
        Log.info("push_done", [
            "version": info.version, "reason": info.reason, "streams": t.pushed.load(ordering: .relaxed),
            "write_p50_ms": ms(write.p50), "write_p99_ms": ms(write.p99), "write_max_ms": ms(write.max),
            "ack_p50_ms": ms(ack.p50), "ack_p99_ms": ms(ack.p99), "ack_max_ms": ms(ack.max),
            "acked": t.acked.load(ordering: .relaxed), "nacks": t.nacked.load(ordering: .relaxed),
            "pending": timedOut ? t.pushed.load(ordering: .relaxed) - t.folded.load(ordering: .relaxed) : 0,
            "slowest_peer": slow?.peer ?? "-", "slowest_stage": slow.map { "\($0.slowestStage)" } ?? "-",
        ])
    }
}
