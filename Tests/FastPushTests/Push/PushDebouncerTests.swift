import Testing
import Synchronization
@testable import FastPush

/// istio-push-semantics.md 3.2 and section 18 cases 15–21 (TestDebounce: DebounceAfter 50 ms,
/// DebounceMax 100 ms, EDS debounce off; the fake full push sleeps 200 ms and fails if two
/// full pushes overlap). Like Istio, each check waits (bounded) for the expected counts.
@Suite(.timeLimit(.minutes(1))) struct PushDebouncerTests {
    static let after: UInt64 = 50 * PushTest.ms
    static let max: UInt64 = 100 * PushTest.ms

    /// Istio's fakePush: counts partial and full pushes; a full push takes 200 ms and must never
    /// overlap another full push.
    final class FakePusher: Sendable {
        let partial = Counter()
        let full = Counter()
        let overlaps = Counter()
        let fullRunning = Atomic<Bool>(false)
        /// Every request handed to pushFn, with the time the push started.
        let requests = Locked<[(PushRequest, UInt64)]>([])
        /// Event counts of each committed debounced batch (onPushed).
        let batches = Locked<[Int]>([])
        /// Whether partial pushes bypass the debounce (EDS debounce off): they are not batches.
        let partialBypasses: Bool
        init(partialBypasses: Bool) { self.partialBypasses = partialBypasses }

        /// Updates accounted for by onPushed (batches) or by a bypass push.
        var reported: Int { batches.value.reduce(0, +) + (partialBypasses ? partial.value : 0) }

        func push(_ r: PushRequest) {
            requests.withLock { $0.append((r, MonotonicClock.nanos())) }
            guard r.full else {
                partial.add()
                return
            }
            if fullRunning.exchange(true, ordering: .acquiringAndReleasing) {
                overlaps.add()
                return
            }
            full.add()
            PushTest.sleep(millis: 200)
            fullRunning.store(false, ordering: .releasing)
        }
    }

    static func make(edsDebounce: Bool = false) -> (Debouncer, FakePusher) {
        var o = DebounceOptions()
        o.after = after
        o.max = max
        o.enableEDSDebounce = edsDebounce
        let fake = FakePusher(partialBypasses: !edsDebounce)
        let d = Debouncer(options: o, onPushed: { events, _ in fake.batches.withLock { $0.append(events) } },
                          pushFn: { fake.push($0) })
        d.start()
        return (d, fake)
    }

    static func fullRequest(_ i: Int) -> PushRequest {
        PushRequest(full: true, configsUpdated: [PushTest.key(i)], reason: [.service: 1])
    }

    static func endpointRequest(_ i: Int) -> PushRequest {
        PushRequest(full: false, configsUpdated: [PushTest.endpointKey(i)], reason: [.endpoint: 1])
    }

    /// Istio's expect(partial, full): wait (bounded) until the counts match.
    static func expectCounts(_ f: FakePusher, partial: Int, full: Int,
                             sourceLocation: SourceLocation = #_sourceLocation) {
        let ok = PushTest.waitUntil(timeoutMillis: 2_000) { f.partial.value == partial && f.full.value == full }
        #expect(ok, "expected \(partial) partial / \(full) full, got \(f.partial.value) / \(f.full.value)",
                sourceLocation: sourceLocation)
    }

    /// Waits until every update is committed (nothing left to push) and reported (onPushed runs
    /// just after the commit), then checks the final counts and that no two full pushes overlapped.
    static func expectSettled(_ d: Debouncer, _ f: FakePusher, partial: Int, full: Int,
                              sourceLocation: SourceLocation = #_sourceLocation) {
        let idle = PushTest.waitUntil(timeoutMillis: 3_000) {
            d.isIdle && f.reported == d.inboundUpdates.load(ordering: .acquiring)
        }
        #expect(idle, "debouncer never settled", sourceLocation: sourceLocation)
        #expect(f.partial.value == partial, sourceLocation: sourceLocation)
        #expect(f.full.value == full, sourceLocation: sourceLocation)
        #expect(f.overlaps.value == 0, "two full pushes ran at once", sourceLocation: sourceLocation)
        #expect(d.committedUpdates.load(ordering: .acquiring) == d.inboundUpdates.load(ordering: .acquiring),
                sourceLocation: sourceLocation)
    }

    @Test("case 15: endpoint-only requests bypass the debounce (EDS debounce off) — partial 1…5, full 0")
    func case15EndpointOnlyBypass() {
        let (d, f) = Self.make()
        defer { d.stop() }
        for i in 1...5 {
            d.configUpdate(Self.endpointRequest(i))
            Self.expectCounts(f, partial: i, full: 0)
        }
        Self.expectSettled(d, f, partial: 5, full: 0)
        // Each bypassed request is pushed as it came, unmerged.
        let keys = f.requests.value.map { $0.0.configsUpdated ?? [] }
        #expect(Set(keys) == Set((1...5).map { [PushTest.endpointKey($0)] }))
    }

    @Test("case 16: one full request is not pushed at once (still debouncing), then once")
    func case16FullWaits() {
        let (d, f) = Self.make()
        defer { d.stop() }
        let sent = MonotonicClock.nanos()
        d.configUpdate(Self.fullRequest(1))
        let fullNow = f.full.value
        // A push can only exist if DebounceAfter had passed; check only when it had not.
        if MonotonicClock.nanos() &- sent < Self.after {
            #expect(fullNow == 0)
            #expect(f.partial.value == 0)
        }
        Self.expectCounts(f, partial: 0, full: 1)
        Self.expectSettled(d, f, partial: 0, full: 1)
        // Whatever the scheduling, the push never started before DebounceAfter of quiet.
        let started = f.requests.value.map(\.1)
        #expect(started.allSatisfy { $0 &- sent >= Self.after })
    }

    @Test("case 17: two full requests back to back — exactly one full push")
    func case17TwoFullOnePush() {
        let (d, f) = Self.make()
        defer { d.stop() }
        d.configUpdate(Self.fullRequest(1))
        d.configUpdate(Self.fullRequest(2))
        Self.expectCounts(f, partial: 0, full: 1)
        Self.expectSettled(d, f, partial: 0, full: 1)
        let r = f.requests.value.first?.0
        #expect(r?.configsUpdated == [PushTest.key(1), PushTest.key(2)])
        #expect(r?.reason == [.service: 2])
        #expect(f.batches.value == [2])
    }

    @Test("case 18: 2 full + 2 endpoint-only → 2 partial, 1 full; one more endpoint-only → 3 partial, 1 full")
    func case18Mixed() {
        let (d, f) = Self.make()
        defer { d.stop() }
        d.configUpdate(Self.fullRequest(1))
        d.configUpdate(Self.fullRequest(2))
        d.configUpdate(Self.endpointRequest(3))
        d.configUpdate(Self.endpointRequest(4))
        Self.expectCounts(f, partial: 2, full: 1)
        d.configUpdate(Self.endpointRequest(5))
        Self.expectCounts(f, partial: 3, full: 1)
        Self.expectSettled(d, f, partial: 3, full: 1)
        // Endpoint-only requests never joined the full batch.
        let fullReq = f.requests.value.first { $0.0.full }?.0
        #expect(fullReq?.configsUpdated == [PushTest.key(1), PushTest.key(2)])
    }

    @Test("case 19: 4 full requests 25 ms apart (never 50 ms quiet) — exactly one full push (DebounceMax)")
    func case19DebounceMax() {
        let (d, f) = Self.make()
        defer { d.stop() }
        var sentAt: [UInt64] = []
        for i in 1...4 {
            if i > 1 { PushTest.sleep(millis: 25) }
            sentAt.append(MonotonicClock.nanos())
            d.configUpdate(Self.fullRequest(i))
        }
        Self.expectCounts(f, partial: 0, full: 1)
        // Istio's expectation holds when the sleeps kept their schedule: no gap reached
        // DebounceAfter and all four arrived before DebounceMax. An overloaded machine can
        // stretch a 25 ms sleep; then a second batch is legitimate.
        let gaps = zip(sentAt.dropFirst(), sentAt).map { $0 &- $1 }
        let onSchedule = gaps.allSatisfy { $0 < 40 * PushTest.ms } && sentAt.last! &- sentAt.first! < 90 * PushTest.ms
        let idle = PushTest.waitUntil(timeoutMillis: 3_000) { d.isIdle && f.reported == 4 }
        #expect(idle)
        if onSchedule {
            #expect(f.full.value == 1)
            #expect(f.batches.value == [4])
        } else {
            #expect((1...2).contains(f.full.value))
        }
        #expect(f.overlaps.value == 0)
        #expect(f.batches.value.reduce(0, +) == 4)
    }

    @Test("case 19 (detail): a continuous stream of full requests is still pushed — DebounceMax forces it")
    func case19ContinuousStream() {
        let (d, f) = Self.make()
        defer { d.stop() }
        // 500 ms of requests every 10 ms: the quiet period alone would never fire.
        let begin = MonotonicClock.nanos()
        var i = 0
        while MonotonicClock.nanos() &- begin < 500 * PushTest.ms {
            d.configUpdate(Self.fullRequest(i))
            i += 1
            PushTest.sleep(millis: 10)
        }
        let lastSent = MonotonicClock.nanos()
        let firstPush = f.requests.value.first?.1
        #expect(firstPush != nil && firstPush! < lastSent, "no push while requests kept coming")
        #expect(PushTest.waitUntil(timeoutMillis: 3_000) { d.isIdle && f.reported == i })
        Self.expectSettled(d, f, partial: 0, full: f.batches.value.count)
        #expect(f.full.value >= 2)
        #expect(f.batches.value.reduce(0, +) == i)
    }

    @Test("case 20: full, 60 ms, full — two full pushes, the second waits for the first")
    func case20SecondWaitsForFirst() {
        let (d, f) = Self.make()
        defer { d.stop() }
        d.configUpdate(Self.fullRequest(1))
        PushTest.sleep(millis: 60)
        // The second request must arrive while the first push runs (Istio relies on the sleep;
        // an overloaded machine could delay the first push past it, so make sure).
        #expect(PushTest.waitUntil(timeoutMillis: 2_000) { f.full.value == 1 })
        d.configUpdate(Self.fullRequest(2))
        Self.expectCounts(f, partial: 0, full: 2)
        Self.expectSettled(d, f, partial: 0, full: 2)
        let reqs = f.requests.value
        #expect(reqs.map { $0.0.configsUpdated ?? [] } == [[PushTest.key(1)], [PushTest.key(2)]])
        // Second push started after the first one's 200 ms.
        if reqs.count == 2 { #expect(reqs[1].1 &- reqs[0].1 >= 200 * PushTest.ms) }
    }

    @Test("case 21: committedUpdates — each batch adds its event count, each bypassed request adds 1")
    func case21CommittedAccounting() {
        let (d, f) = Self.make()
        defer { d.stop() }
        d.configUpdate(Self.fullRequest(1))
        #expect(PushTest.waitUntil(timeoutMillis: 2_000) { f.full.value == 1 })
        // While the first push runs: two more full (one batch) and two endpoint-only (bypass).
        d.configUpdate(Self.fullRequest(2))
        d.configUpdate(Self.endpointRequest(3))
        d.configUpdate(Self.fullRequest(4))
        d.configUpdate(Self.endpointRequest(5))
        #expect(d.inboundUpdates.load(ordering: .acquiring) == 5)
        Self.expectSettled(d, f, partial: 2, full: 2)
        #expect(f.batches.value == [1, 2])
        #expect(d.committedUpdates.load(ordering: .acquiring) == 5)
        #expect(d.isIdle)
    }

    @Test("case 21 (detail): inbound runs ahead of committed until the push completes")
    func case21CommittedAfterPush() {
        let (d, f) = Self.make()
        defer { d.stop() }
        d.configUpdate(Self.fullRequest(1))
        #expect(d.inboundUpdates.load(ordering: .acquiring) == 1)
        #expect(PushTest.waitUntil(timeoutMillis: 2_000) { f.full.value == 1 })
        // The push has started and lasts 200 ms; it is committed only when it returns.
        let committedDuringPush = d.committedUpdates.load(ordering: .acquiring)
        let stillRunning = f.fullRunning.load(ordering: .acquiring)
        if stillRunning { #expect(committedDuringPush == 0) }
        Self.expectSettled(d, f, partial: 0, full: 1)
        #expect(d.committedUpdates.load(ordering: .acquiring) == 1)
    }

    @Test("EDS debounce on: incremental requests join the batch instead of bypassing it")
    func edsDebounceOnMerges() {
        let (d, f) = Self.make(edsDebounce: true)
        defer { d.stop() }
        d.configUpdate(Self.endpointRequest(1))
        d.configUpdate(Self.fullRequest(2))
        d.configUpdate(Self.endpointRequest(3))
        Self.expectCounts(f, partial: 0, full: 1)
        Self.expectSettled(d, f, partial: 0, full: 1)
        let r = f.requests.value.first?.0
        #expect(r?.full == true)
        #expect(r?.configsUpdated == [PushTest.endpointKey(1), PushTest.key(2), PushTest.endpointKey(3)])
        #expect(r?.reason == [.endpoint: 2, .service: 1])
        #expect(f.batches.value == [3])

        // An incremental-only batch stays incremental: one partial push with both keys.
        d.configUpdate(Self.endpointRequest(4))
        d.configUpdate(Self.endpointRequest(5))
        Self.expectCounts(f, partial: 1, full: 1)
        Self.expectSettled(d, f, partial: 1, full: 1)
        let r2 = f.requests.value.last?.0
        #expect(r2?.full == false)
        #expect(r2?.configsUpdated == [PushTest.endpointKey(4), PushTest.endpointKey(5)])
        #expect(f.batches.value == [3, 2])
    }

    @Test("a request without a reason is counted as unknown")
    func emptyReasonBecomesUnknown() {
        let (d, f) = Self.make()
        defer { d.stop() }
        d.configUpdate(PushRequest(full: true, configsUpdated: [PushTest.key(1)]))
        Self.expectSettled(d, f, partial: 0, full: 1)
        #expect(f.requests.value.first?.0.reason == [.unknown: 1])
    }
}
