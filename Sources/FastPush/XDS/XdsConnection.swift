import Synchronization

/// One ADS stream (Istio's Connection; the seed's XdsConnection): the proxy behind it, what it
/// watches, and its place in the push queue. Requests arrive on the stream's loop thread;
/// pushes are generated on worker threads and written back on the loop thread, so the watch
/// state sits behind a mutex held only for a few field updates.
public final class XdsConnection: PushQueueItem, Sendable {
    public struct State: Sendable {
        public var proxy: Proxy?
        public var watched = Watches()
        var nonceCounter: UInt64 = 0
        /// What the proxy saw in the last push or response: ProxyNeedsPush checks it against
        /// what it sees now. Only the namespace view is kept, not the whole PushContext, so a
        /// proxy that no change reaches does not pin an old snapshot's response caches.
        public var lastView: NamespaceView?
        public var lastPushVersion: UInt64 = 0
        /// A request answered from a snapshot newer than the last push: what the proxy may also
        /// hold (of the requested type) until a push catches up with it.
        public var answeredView: NamespaceView?
        var answeredVersion: UInt64 = 0
        public var pushes = 0
        /// The push whose last write is still under way (its slot goes back early on a stall).
        var pendingPush: PushDone?
        /// The traced push in flight: its timestamps, until the client ACKs it.
        var trace = TraceSlot()
    }

    public let id: UInt64
    public let transport: any XdsTransport
    public let xdsProtocol: XdsProtocol
    public let connectedAt: Double
    public let pushQueueLink = PushQueueLink()
    /// Where this connection's push records go when they close (nil: tracing off).
    let traces: PushTraces?
    let state = Mutex(State())
    private let closedFlag = Atomic<Bool>(false)

    public init(id: UInt64, transport: any XdsTransport, xdsProtocol: XdsProtocol = .sotw, traces: PushTraces? = nil) {
        self.id = id
        self.transport = transport
        self.xdsProtocol = xdsProtocol
        self.traces = traces
        self.connectedAt = WallClock.seconds()
    }

    public var peer: String { transport.peer }
    public var isClosed: Bool { closedFlag.load(ordering: .acquiring) }
    func markClosed() { closedFlag.store(true, ordering: .releasing) }

    public var proxy: Proxy? { state.withLock { $0.proxy } }
    public var snapshot: State { state.withLock { $0 } }

    /// Records the snapshot a push brought the proxy (never an older one), and counts it.
    func pushed(_ push: PushContext, view: NamespaceView) {
        state.withLock { st in
            st.pushes += 1
            if st.lastPushVersion < push.version {
                st.lastPushVersion = push.version
                st.lastView = view
            }
            if st.answeredVersion <= push.version { st.answeredView = nil }
        }
    }

    /// A request was answered from `push`. It does not replace the last push's view, which
    /// ProxyNeedsPush compares with: a snapshot whose push has not reached this stream yet must
    /// not hide that push's removals (the other types still hold the older one). It is kept
    /// beside it, so that what the answer brought can be taken away too.
    func answered(from push: PushContext, view: NamespaceView) {
        state.withLock { st in
            if st.lastView == nil {
                st.lastPushVersion = push.version
                st.lastView = view
            } else if push.version > st.lastPushVersion && push.version >= st.answeredVersion {
                st.answeredVersion = push.version
                st.answeredView = view
            }
        }
    }

    /// Istio's conID: proxy id and a process-wide counter.
    public var connectionID: String { "\(proxy?.id ?? "")-\(id)" }

    /// Writes responses in order on the stream's thread. `done` runs once all are written, or
    /// at once if the stream is gone or nothing needed sending.
    public func deliver(_ responses: [XdsResponse], done: PushDone?) {
        guard !responses.isEmpty else { done?(); return }
        transport.withStream { [self] stream in write(responses, to: stream, done: done) }
    }

    /// On the stream's thread. `trace`: the push is traced; its record starts here (a record
    /// still open, of an older push, closes as superseded).
    func write(_ responses: [XdsResponse], to stream: (any XdsStream)?, done: PushDone?, trace: TraceStamp? = nil) {
        if let trace, traces != nil { traceBegin(trace) }
        guard let stream, stream.isOpen else {
            if trace != nil { traceEnd(.closed) }
            done?()
            return
        }
        var last: (SharedBytes, SmallBytes)?
        for r in responses {
            guard let stamped = stamp(r) else { continue }
            if let (lb, lt) = last { stream.write(body: ByteSlice(lb), tail: lt, completion: nil) }
            last = stamped
        }
        guard let (lb, lt) = last else {
            if trace != nil { traceEnd(.superseded) }  // nothing of it went out
            done?()
            return
        }
        if let done {
            let traced = trace != nil
            state.withLock { st in
                st.pendingPush = done
                if traced { st.trace.submitted = MonotonicClock.nanos() }
            }
            stream.write(body: ByteSlice(lb), tail: lt) { [self] _ in
                let record = state.withLock { st -> TraceRecord? in
                    if st.pendingPush === done { st.pendingPush = nil }
                    return traced ? completed(&st) : nil
                }
                if let record { traces?.fold(record) }
                done()
            }
        } else {
            stream.write(body: ByteSlice(lb), tail: lt, completion: nil)
        }
    }

    /// The stream's writes have not moved for a while: give the push slot back so that one
    /// client that does not read cannot hold up pushes to the others. Returns true if a slot
    /// was released.
    public func writeStalled() -> Bool {
        guard let done = state.withLock({ $0.pendingPush }) else { return false }
        return done.releaseSlot()
    }

    /// Assigns the nonce and records the send, or returns nil when the response must not go
    /// out: the type is no longer watched, a newer complete response went first, or (for a
    /// push) the client already has exactly these bytes. Returns the body to write and the tail.
    func stamp(_ r: XdsResponse) -> (SharedBytes, SmallBytes)? {
        if r.delta != nil { return stampDelta(r) }
        return state.withLock { st -> (SharedBytes, SmallBytes)? in
            guard var w = st.watched[r.type] else { return nil }
            if r.version < w.lastFullVersion || (!r.full && r.version == w.lastFullVersion && !r.forced) { return nil }
            if !r.forced && w.lastBodyHash == r.body.hash { return nil }
            st.nonceCounter &+= 1
            let nonce = String(st.nonceCounter)
            let version = String(r.version)
            w.nonceSent = nonce
            w.versionSent = version
            w.lastSendTime = WallClock.seconds()
            w.lastBodyHash = r.body.hash
            Self.traceSent(&st, r)
            if r.full {
                w.lastFullVersion = Swift.max(w.lastFullVersion, r.version)
                w.needsComplete = false
            }
            st.watched[r.type] = w
            return (r.body.bytes, Self.tail(version: version, nonce: nonce))
        }
    }

    /// A Delta response: written if the stream still holds what the patch starts from (and
    /// nothing it must resend is missing from it); otherwise remade from the same PushContext
    /// for what the stream holds and watches now, or dropped if a newer state went out first.
    /// A request's answer (forced) was made on this thread just before: it always applies.
    private func stampDelta(_ r: XdsResponse) -> (SharedBytes, SmallBytes)? {
        guard let plan = r.delta else { return nil }
        return state.withLock { st -> (SharedBytes, SmallBytes)? in
            guard var w = st.watched[r.type], let proxy = st.proxy else { return nil }
            var patch = plan.patch
            var table = plan.table
            var body = r.body
            let resendCovered = w.resend.map { pending in plan.patch.resend.map { pending.nameSet.isSubset(of: $0.nameSet) } ?? false } ?? true
            if !r.forced && (w.held !== patch.from || !resendCovered) {
                if r.version < w.lastFullVersion { return nil }
                let request = PushRequest(full: true, forced: true, reason: [.unknown: 1], push: plan.push)
                let ctx = GeneratorContext(proxy: proxy, watch: w, request: request, push: plan.push, forRequest: false, view: plan.view)
                table = Generators.table(r.type, ctx)
                patch = table.patch(from: w.held ?? .empty, resend: w.resend)
                guard let b = patch.body else {
                    w.held = table.versions
                    w.lastFullVersion = Swift.max(w.lastFullVersion, r.version)
                    st.watched[r.type] = w
                    return nil
                }
                body = b
            }
            st.nonceCounter &+= 1
            let nonce = String(st.nonceCounter)
            let version = String(r.version)
            w.nonceSent = nonce
            w.versionSent = version
            w.lastSendTime = WallClock.seconds()
            w.held = table.versions
            w.lastFullVersion = Swift.max(w.lastFullVersion, r.version)
            w.lastSent = patch.sent
            Self.traceSent(&st, r)
            if let pending = w.resend {
                let sent = Set(patch.sent)
                let left = pending.names.filter { !sent.contains($0) && table.versions.contains($0) }
                w.resend = left.isEmpty ? nil : SubscriptionSet.of(left)
            }
            st.watched[r.type] = w
            return (body.bytes, Self.tail(version: version, nonce: nonce))
        }
    }

    /// version_info (system_version_info) and nonce: the same field numbers in both protocols.
    static func tail(version: String, nonce: String) -> SmallBytes {
        var tail = SmallBytes()
        tail.append(max: DiscoveryResponseTail.size(version: version, nonce: nonce)) { buf in
            DiscoveryResponseTail.encode(version: version, nonce: nonce, into: buf.baseAddress!)
        }
        return tail
    }
}
