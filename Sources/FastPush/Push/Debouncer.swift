import Synchronization

public struct DebounceOptions: Sendable {
    /// Quiet period after the last event (PILOT_DEBOUNCE_AFTER).
    public var after: UInt64 = 100_000_000
    /// Longest a batch may wait (PILOT_DEBOUNCE_MAX).
    public var max: UInt64 = 10_000_000_000
    /// PILOT_ENABLE_EDS_DEBOUNCE: when false, incremental (endpoint-only) requests skip the wait.
    public var enableEDSDebounce = true
    public init() {}
}

/// Istio's debounce (istio-push-semantics.md 3.2) on threads we own: requests are merged until
/// `after` of quiet or `max` since the first; one push runs at a time, and what arrives
/// meanwhile goes out as one batch right after.
public final class Debouncer: Sendable {
    enum Event: Sendable {
        case update(PushRequest)
        case pushDone
        case stop
    }

    struct State {
        var request: PushRequest?
        var events = 0
        var startDebounce: UInt64 = 0
        var lastUpdate: UInt64 = 0
        var timer: UInt64?
        var free = true
    }

    public let options: DebounceOptions
    private let pushFn: @Sendable (PushRequest) -> Void
    private let onPushed: @Sendable (_ events: Int, _ debounceNanos: UInt64) -> Void
    private let inbox = Mutex<[Event]>([])
    private let signal = Semaphore()
    private let pushJobs = Mutex<[(PushRequest, Int, UInt64)]>([])
    private let pushSignal = Semaphore()
    private let bypassJobs = Mutex<[PushRequest]>([])
    private let bypassSignal = Semaphore()
    private let threads = Mutex<[OSThread]>([])
    /// Istio's InboundUpdates / CommittedUpdates: every request counted in, and out once pushed.
    public let inboundUpdates = Atomic<Int>(0)
    public let committedUpdates = Atomic<Int>(0)

    public init(options: DebounceOptions,
                onPushed: @escaping @Sendable (_ events: Int, _ debounceNanos: UInt64) -> Void = { _, _ in },
                pushFn: @escaping @Sendable (PushRequest) -> Void) {
        self.options = options
        self.pushFn = pushFn
        self.onPushed = onPushed
    }

    public func start() {
        let t = [OSThread.spawn(name: "fp-debounce") { [self] in loop() },
                 OSThread.spawn(name: "fp-pushctx") { [self] in pushLoop() },
                 OSThread.spawn(name: "fp-eds-bypass") { [self] in bypassLoop() }]
        threads.withLock { $0 = t }
    }

    public func stop() {
        post(.stop)
        for t in threads.withLock({ t in defer { t = [] }; return t }) { t.join() }
    }

    /// Istio's ConfigUpdate: callable from any thread, never blocks on a push.
    public func configUpdate(_ request: PushRequest) {
        inboundUpdates.wrappingAdd(1, ordering: .relaxed)
        var r = request
        if r.firstEvent == 0 { r.firstEvent = MonotonicClock.nanos() }
        post(.update(r))
    }

    /// No update is waiting and none is being pushed.
    public var isIdle: Bool { committedUpdates.load(ordering: .acquiring) >= inboundUpdates.load(ordering: .acquiring) }

    private func post(_ e: Event) {
        inbox.withLock { $0.append(e) }
        signal.signal()
    }

    private func loop() {
        var s = State()
        loop: while true {
            let now0 = MonotonicClock.nanos()
            if let t = s.timer {
                _ = signal.wait(timeoutNanos: t > now0 ? t - now0 : 0)
            } else {
                signal.wait()
            }
            let events = inbox.withLock { e -> [Event] in defer { e = [] }; return e }
            let now = MonotonicClock.nanos()
            for e in events {
                switch e {
                case var .update(r):
                    if r.reason?.isEmpty ?? true { r.reason = [.unknown: 1] }
                    if !options.enableEDSDebounce && !r.full {
                        bypassJobs.withLock { $0.append(r) }
                        bypassSignal.signal()
                        continue
                    }
                    s.lastUpdate = now
                    if s.events == 0 {
                        s.timer = now &+ options.after
                        s.startDebounce = now
                    }
                    s.events += 1
                    s.request = PushRequest.merge(s.request, r)
                case .pushDone:
                    s.free = true
                    pushWorker(&s, now: now)
                case .stop:
                    break loop
                }
            }
            if let t = s.timer, now >= t {
                s.timer = nil
                if s.free { pushWorker(&s, now: now) }
            }
        }
        pushJobs.withLock { $0.removeAll() }
        pushSignal.signal()
        bypassSignal.signal()
    }

    private func pushWorker(_ s: inout State, now: UInt64) {
        let eventDelay = now &- s.startDebounce
        let quiet = now &- s.lastUpdate
        if eventDelay >= options.max || quiet >= options.after {
            if let r = s.request {
                s.free = false
                pushJobs.withLock { $0.append((r, s.events, s.startDebounce)) }
                pushSignal.signal()
                s.request = nil
                s.events = 0
            }
        } else {
            s.timer = now &+ (options.after - quiet)
        }
    }

    private func pushLoop() {
        while true {
            pushSignal.wait()
            guard let (r, events, start) = pushJobs.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { break }
            pushFn(r)
            committedUpdates.wrappingAdd(events, ordering: .releasing)
            onPushed(events, MonotonicClock.nanos() &- start)
            post(.pushDone)
        }
    }

    private func bypassLoop() {
        while true {
            bypassSignal.wait()
            guard let r = bypassJobs.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { break }
            pushFn(r)
            committedUpdates.wrappingAdd(1, ordering: .releasing)
        }
    }
}
