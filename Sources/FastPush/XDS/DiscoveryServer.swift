#if canImport(Glibc)
import Glibc
#endif
import Synchronization

public struct DiscoveryServerConfig: Sendable {
    /// Namespace of a proxy whose node names none.
    public var defaultNamespace = "default"
    /// Pushes in flight (PILOT_PUSH_THROTTLE).
    public var pushThrottle = PushDispatcher<XdsConnection>.defaultThrottle(cores: System.coreCount)
    /// Threads that generate pushes.
    public var pushWorkers = System.coreCount
    public var debounce = DebounceOptions()
    /// Most ADS streams at once: the push ring's size.
    public var maxStreams = 1 << 17
    /// Record every push's timeline (`/debug/pushz`), and how many recent pushes to keep.
    public var pushTrace = true
    public var pushTraceCapacity = 64
    public init() {}
}

/// Where requests are answered and pushes decided (Istio's DiscoveryServer): holds the
/// connections, the config store and the current PushContext, and runs the pipeline
/// ConfigUpdate → debounce → PushContext → PushQueue → workers → streams.
public final class DiscoveryServer: Sendable {
    public enum RequestOutcome: Equatable, Sendable {
        case ok
        /// The stream must end with this status.
        case close(GRPCStatus)
    }

    public let config: DiscoveryServerConfig
    public let metrics: XdsMetrics
    public let queue: PushQueue<XdsConnection>
    /// Recent pushes' timelines.
    public let traces: PushTraces
    private let store: Mutex<RegistrySnapshot>
    private let current: Mutex<PushContext>
    /// Serialises PushContext builds: a debounced push and an EDS bypass never build at once.
    private let buildLock = Mutex<UInt64>(1)
    private let connections = Mutex<[UInt64: XdsConnection]>([:])
    private let nextConnectionID = Atomic<UInt64>(0)
    private let dispatcherBox = Mutex<PushDispatcher<XdsConnection>?>(nil)
    private let draining = Atomic<Bool>(false)
    /// A registry from a store: streams are refused until its first sync (Istio refuses them
    /// until it is ready, and clients retry), so that no proxy is sent an empty config.
    private let registryReady = Mutex<(@Sendable () -> Bool)?>(nil)
    private let debouncerBox = Mutex<Debouncer?>(nil)
    private let traceThread = Mutex<(OSThread, Semaphore)?>(nil)
    private let stoppedFlag = Atomic<Bool>(false)

    public init(config: DiscoveryServerConfig = DiscoveryServerConfig(), registry: RegistrySnapshot,
                metrics: XdsMetrics = XdsMetrics()) {
        self.config = config
        self.metrics = metrics
        self.queue = PushQueue(capacity: config.maxStreams)
        self.traces = PushTraces(capacity: config.pushTraceCapacity, enabled: config.pushTrace, registry: metrics.registry)
        self.store = Mutex(registry)
        self.current = Mutex(PushContext(version: 1, registry: registry))
        metrics.services.set(registry.count)
    }

    // MARK: lifecycle

    public func start() {
        let dispatcher = PushDispatcher(queue: queue, throttle: config.pushThrottle, workers: config.pushWorkers,
                                        onDequeue: { [metrics] r in
            metrics.proxyQueueTime.observe(nanos: MonotonicClock.nanos() &- r.start)
            // Once per dequeued connection: by subscript, without the iterator's array.
            if let stats = r.reason {
                for reason in TriggerReason.allCases { if let n = stats[reason] { metrics.pushTriggers[reason]?.inc(n) } }
            }
        }) { [self] jobs in
            var deliveries = DeliveryBatch()
            for job in jobs { pushConnection(job.item, job.request, done: job.done, into: &deliveries, dequeued: job.dequeued) }
            deliveries.flush()
        }
        let debouncer = Debouncer(options: config.debounce, onPushed: { [metrics] _, nanos in
            metrics.debounceTime.observe(nanos: nanos)
        }) { [self] r in push(r) }
        dispatcherBox.withLock { $0 = dispatcher }
        debouncerBox.withLock { $0 = debouncer }
        dispatcher.start()
        debouncer.start()
        if traces.enabled {
            // Finishes the traces of pushes some client never ACKed.
            let wake = Semaphore()
            let thread = OSThread.spawn(name: "fp-trace") { [weak self, traces] in
                while true {
                    _ = wake.wait(timeoutNanos: 1_000_000_000)
                    guard let self, !self.stoppedFlag.load(ordering: .acquiring) else { return }
                    traces.sweep(now: MonotonicClock.nanos())
                }
            }
            traceThread.withLock { $0 = (thread, wake) }
        }
    }

    /// Their closures hold this server: dropping them after they stop ends the cycle.
    public func stop() {
        debouncerBox.withLock { d in defer { d = nil }; return d }?.stop()
        dispatcherBox.withLock { d in defer { d = nil }; return d }?.stop()
        stoppedFlag.store(true, ordering: .releasing)
        if let (thread, wake) = traceThread.withLock({ t in defer { t = nil }; return t }) {
            wake.signal()
            thread.join()
        }
    }

    public var dispatcher: PushDispatcher<XdsConnection>? { dispatcherBox.withLock { $0 } }

    public var isDraining: Bool { draining.load(ordering: .relaxed) }

    /// Refuse ADS streams until `ready` says the registry is loaded.
    public func waitForRegistry(_ ready: @escaping @Sendable () -> Bool) { registryReady.withLock { $0 = ready } }

    /// The status a new stream gets while the registry is not loaded yet, else nil.
    func notReady() -> GRPCStatus? {
        guard let ready = registryReady.withLock({ $0 }), !ready() else { return nil }
        return GRPCStatus(.unavailable, "the registry store has not been synced yet; retry")
    }

    /// Stops taking changes (the debouncer ends; a batch still waiting is dropped and counted),
    /// then waits up to `timeoutNanos` for the pushes already queued or in flight to be written.
    /// Returns how many were still in flight.
    @discardableResult
    public func drain(timeoutNanos: UInt64) -> Int {
        draining.store(true, ordering: .relaxed)
        debouncer?.stop()
        let deadline = MonotonicClock.nanos() &+ timeoutNanos
        while MonotonicClock.nanos() < deadline {
            if queue.pending == 0 && (dispatcher?.inFlightCount ?? 0) == 0 { return 0 }
            OSThread.sleep(nanos: 5_000_000)
        }
        return queue.pending + (dispatcher?.inFlightCount ?? 0)
    }
    public var debouncer: Debouncer? { debouncerBox.withLock { $0 } }

    // MARK: config

    public var pushContext: PushContext { current.withLock { $0 } }
    public var registry: RegistrySnapshot { store.withLock { $0 } }

    /// Replaces the registry and pushes what changed: services added, removed or reshaped as a
    /// full push, endpoint-only changes as incremental EDS.
    @discardableResult
    /// `immediate`: push now, past the debouncer (a store's first sync: streams are admitted
    /// right after it, and must not be answered from the registry before it).
    public func updateRegistry(_ snapshot: RegistrySnapshot, immediate: Bool = false) -> RegistryDiff {
        modifyRegistry(immediate: immediate) { _ in snapshot }
    }

    /// Read-modify-write of the registry (the admin API edits one ServiceEntry at a time).
    @discardableResult
    public func modifyRegistry(immediate: Bool = false, _ change: (RegistrySnapshot) -> RegistrySnapshot) -> RegistryDiff {
        let diff = store.withLock { old -> RegistryDiff in
            let new = change(old)
            let d = RegistryDiff(from: old, to: new)
            old = new
            return d
        }
        let update: (PushRequest) -> Void = immediate ? { self.push($0) } : { self.configUpdate($0) }
        if !diff.fullChanges.isEmpty {
            metrics.inboundConfig.inc()
            update(PushRequest(full: true, configsUpdated: diff.allChanges, reason: [.service: diff.fullChanges.count]))
        } else if !diff.endpointChanges.isEmpty {
            metrics.inboundEDS.inc()
            update(PushRequest(full: false, configsUpdated: diff.endpointChanges, reason: [.endpoint: diff.endpointChanges.count]))
        }
        return diff
    }

    /// Istio's ConfigUpdate: into the debouncer.
    public func configUpdate(_ request: PushRequest) {
        if let d = debouncer { d.configUpdate(request) } else { push(request) }
    }

    /// A debounced push: a new PushContext (or, for endpoint-only changes, a cheap copy), then
    /// every connection into the push queue with the same request.
    public func push(_ request: PushRequest) {
        let t0 = MonotonicClock.nanos()
        // The debouncer and the EDS bypass both get here. Reading the registry and publishing
        // under the build lock keeps versions, registry contents and the queue in one order:
        // an older registry can never be built, or published, after a newer one.
        let firstEvent = request.firstEvent == 0 ? t0 : request.firstEvent
        let (ctx, seq) = buildLock.withLock { version -> (PushContext, UInt64) in
            version += 1
            let latest = registry
            let old = current.withLock { $0 }
            let next: PushContext
            if request.forced {
                next = PushContext(version: version, registry: latest)
            } else if request.full {
                let keys = request.configsUpdated ?? []
                // Only services changed (the registry's only kind of change): keep the rest.
                if !keys.isEmpty && keys.allSatisfy({ $0.kind == .serviceEntry || $0.kind == .endpoints }) {
                    next = PushContext(version: version, registry: latest, previous: old, changed: keys)
                } else {
                    next = PushContext(version: version, registry: latest)
                }
            } else {
                next = old.withUpdatedEndpoints(version: version, updated: request.configsUpdated ?? [], latest: latest)
            }
            current.withLock { $0 = next }
            metrics.pushContextInit.observe(nanos: MonotonicClock.nanos() &- t0)
            var r = request
            r.push = next
            r.start = MonotonicClock.nanos()
            r.firstEvent = firstEvent
            if let cu = r.configsUpdated, !cu.isEmpty { r.updatedHosts = UpdatedHosts(cu) }
            let seq = queue.publish(r)
            var info = PushTrace.Info()
            info.version = next.version
            info.reason = request.reasonSummary
            info.full = request.full
            info.firstEvent = firstEvent
            info.debounced = t0
            info.built = r.start
            traces.begin(seq: seq, info: info)
            return (next, seq)
        }
        metrics.services.set(ctx.serviceCount)
        let conns = connectionList
        // Logged before the enqueue: a client may have the push before a later line is out.
        Log.info("push", ["version": ctx.version, "full": request.full, "services": ctx.serviceCount,
                          "connections": conns.count, "reason": request.reasonSummary,
                          "configs": request.configsUpdated?.count ?? 0])
        for c in conns { queue.enqueue(c, published: seq) }
        traces.published(seq: seq, enqueued: conns.count, at: MonotonicClock.nanos(), wall: WallClock.seconds())
    }

    /// Pushes the current PushContext to everyone (Istio's /debug/adsz?push=true).
    public func pushAll(reason: TriggerReason) {
        let seq = buildLock.withLock { _ -> UInt64 in
            var r = PushRequest(full: true, forced: true, reason: [reason: 1], start: MonotonicClock.nanos(), push: pushContext)
            r.configsUpdated = []
            return queue.publish(r)
        }
        for c in connectionList { queue.enqueue(c, published: seq) }
    }

    private var connectionList: [XdsConnection] { connections.withLock { Array($0.values) } }

    // MARK: connections

    /// A new ADS stream. It takes part in pushes once its first request names the node.
    public func newConnection(transport: any XdsTransport, xdsProtocol: XdsProtocol = .sotw) -> XdsConnection {
        XdsConnection(id: nextConnectionID.wrappingAdd(1, ordering: .relaxed).newValue, transport: transport, xdsProtocol: xdsProtocol,
                      traces: traces.enabled ? traces : nil)
    }

    public func disconnect(_ conn: XdsConnection) {
        conn.markClosed()
        conn.traceClosed()
        let removed = connections.withLock { $0.removeValue(forKey: conn.id) } != nil
        if removed {
            metrics.xdsClients.add(-1)
            Log.info("ads_disconnect", ["conn": conn.connectionID, "peer": conn.peer])
        }
    }

    public var connectionCount: Int { connections.withLock { $0.count } }
    public var allConnections: [XdsConnection] { connectionList.sorted { $0.id < $1.id } }

    // MARK: requests (the stream's loop thread)

    /// A request for a type fastpilot does not serve ends its stream.
    func unknownType(_ typeURL: String, on conn: XdsConnection) -> RequestOutcome {
        // The client's text goes into a log line and a trailer: a bounded prefix of it.
        let shown = LogLimiter.clip(typeURL)
        if let dropped = LogLimiter.unknownType.admit() {
            Log.warn("ads_unknown_type", ["peer": conn.peer, "type_url": shown, "suppressed": dropped])
        }
        return .close(GRPCStatus(.invalidArgument, "unknown type_url \"\(shown)\": fastpilot serves CDS, EDS, LDS and RDS"))
    }

    /// Reads one DiscoveryRequest by the SotW rules and answers it on the stream if needed.
    /// `message`: the buffer a request decoded with `leavingNamesInPlace` came from, valid for
    /// this call; its names are copied out only when they differ from the held subscription.
    public func process(_ request: DiscoveryRequest, on conn: XdsConnection, message: UnsafeRawBufferPointer? = nil) -> RequestOutcome {
        guard let type = XdsType(typeURL: request.typeURL) else { return unknownType(request.typeURL, on: conn) }
        var initialized = false
        var added: SubscriptionSet?
        var request = request
        var badNames: ProtoDecodingError?
        let result = conn.state.withLock { st -> (RequestKind, Proxy)? in
            if st.proxy == nil {
                guard let node = request.node else { return nil }
                st.proxy = Proxy(node: node, defaultNamespace: config.defaultNamespace, identity: conn.transport.peerIdentity)
                initialized = true
            }
            let before = st.watched[type]
            var subscription: Subscription?
            if request.namesDeferred {
                if let before, !request.responseNonce.isEmpty, before.namesDigest == request.resourceNamesDigest {
                    // The same bytes as this stream's last request: the same subscription.
                    subscription = Subscription(names: before.names, star: before.wildcard && !before.names.isEmpty)
                } else {
                    if let message { request.materializeNames(from: message) }
                    do throws(ProtoDecodingError) {
                        subscription = try SubscriptionSet.of(wire: request.resourceNamesWire, digest: request.resourceNamesDigest) {
                            () throws(ProtoDecodingError) -> [String] in
                            var r = request
                            try r.decodeDeferredNames()
                            return r.resourceNames
                        }
                    } catch { badNames = error; return nil }
                }
            }
            let kind = SotWRules.process(request, type: type, subscription: subscription, watched: &st.watched)
            // Only a request that (re)set the subscription moves the digest: a stale or NACKed
            // one changes nothing, and its names must not pass for the watch's.
            switch kind {
            case .initial, .ack: st.watched[type]?.namesDigest = request.resourceNamesDigest
            default: break
            }
            // Istio answers a grown EDS/RDS subscription with the new names only (Delta.Subscribed):
            // for these types absence is not deletion, and the rest is already with the client.
            if case .ack(true) = kind, !type.isWildcardType, let before, !before.alwaysRespond, !before.needsComplete,
               let now = st.watched[type] {
                added = now.names.added(since: before.names)
            }
            return (kind, st.proxy!)
        }
        if let badNames {
            return .close(GRPCStatus(.invalidArgument, "malformed DiscoveryRequest: \(badNames)"))
        }
        guard let (kind, proxy) = result else {
            return .close(GRPCStatus(.invalidArgument, "the first DiscoveryRequest on a stream must carry node"))
        }
        if initialized, let status = register(conn, proxy) { return .close(status) }
        switch kind {
        case .ack: conn.traceAnswered(type, nonce: request.responseNonce, nack: false)
        case .nack: conn.traceAnswered(type, nonce: request.responseNonce, nack: true)
        default: break
        }
        switch kind {
        case let .nack(message):
            metrics.rejects[type.rawValue].inc()
            Log.warn("ads_nack", ["type": type, "conn": conn.connectionID, "version": request.versionInfo,
                                  "nonce": request.responseNonce, "error": message])
        case .stale:
            metrics.expiredNonce[type.rawValue].inc()
            Log.debug("ads_stale_nonce", ["type": type, "conn": conn.connectionID, "nonce": request.responseNonce])
        case .unsubscribe:
            Log.debug("ads_unsubscribe", ["type": type, "conn": conn.connectionID])
        case .initial, .ack:
            break
        }
        guard kind.respond else { return .ok }
        respond(type, conn: conn, proxy: proxy, only: added)
        return .ok
    }

    func register(_ conn: XdsConnection, _ proxy: Proxy) -> GRPCStatus? {
        if let status = notReady() { return status }
        // istiod's rule: a proxy with a certificate gets config for its certificate's namespace only.
        if let id = conn.transport.peerIdentity, proxy.namespace != id.namespace {
            metrics.identityDenied.inc()
            if let dropped = LogLimiter.identityDenied.admit() {
                Log.warn("ads_permission_denied", ["peer": conn.peer, "node": proxy.id, "claimed_namespace": proxy.namespace,
                                                   "identity": id.description, "suppressed": dropped])
            }
            return GRPCStatus(.permissionDenied, "authorization failed: node \(proxy.id) claims namespace \(proxy.namespace), its certificate is \(id)")
        }
        let count = connections.withLock { c -> Int? in
            if c.count >= queue.capacity { return nil }
            queue.register(conn)
            c[conn.id] = conn
            return c.count
        }
        guard count != nil else {
            Log.warn("ads_refused", ["peer": conn.peer, "node": proxy.id, "reason": "max_streams", "limit": queue.capacity])
            return GRPCStatus(.resourceExhausted, "too many ADS streams (limit \(queue.capacity))")
        }
        metrics.xdsClients.add(1)
        if proxy.id.isEmpty {
            Log.warn("ads_connect", ["conn": conn.connectionID, "peer": conn.peer, "namespace": proxy.namespace,
                                     "note": "empty node id: answered, never pushed"])
        } else {
            Log.info("ads_connect", ["conn": conn.connectionID, "peer": conn.peer, "namespace": proxy.namespace,
                                      "protocol": conn.xdsProtocol.rawValue, "user_agent": proxy.userAgent])
        }
        return nil
    }

    /// Answers a request from the newest snapshot: everything the stream watches of `type`, or
    /// for a grown EDS/RDS subscription only the names it added.
    private func respond(_ type: XdsType, conn: XdsConnection, proxy: Proxy, only: SubscriptionSet? = nil) {
        let push = pushContext
        let start = MonotonicClock.nanos()
        let view = push.view(for: proxy.namespace)
        conn.answered(from: push, view: view)
        guard var watch = conn.state.withLock({ $0.watched[type] }) else { return }
        if let only {
            watch.names = only
        }
        let request = PushRequest(full: true, forced: true, reason: [.proxyrequest: 1], start: start, push: push)
        let ctx = GeneratorContext(proxy: proxy, watch: watch, request: request, push: push, forRequest: true, partial: only != nil, view: view)
        guard let r = Generators.generate(type, ctx) else { return }
        record(r, since: start)
        conn.deliver([r], done: nil)
    }

    func record(_ r: XdsResponse, since start: UInt64) {
        let i = r.type.rawValue
        metrics.pushes[i].inc()
        metrics.configSize[i].observe(value: Double(r.body.bytes.count))
        metrics.pushTime[i].observe(nanos: MonotonicClock.nanos() &- start)
    }

    // MARK: pushes (worker threads)

    /// Istio's pushConnection: scope the request to the proxy, generate the types it watches
    /// that the change touches, and write them. `done` runs when they are written.
    func pushConnection(_ conn: XdsConnection, _ request: PushRequest, done: PushDone) {
        var deliveries = DeliveryBatch()
        pushConnection(conn, request, done: done, into: &deliveries, dequeued: MonotonicClock.nanos())
        deliveries.flush()
    }

    func pushConnection(_ conn: XdsConnection, _ request: PushRequest, done: PushDone, into deliveries: inout DeliveryBatch,
                        dequeued: UInt64) {
        // Every path counts the connection as having taken the push (its trace waits for that).
        var pushed = false
        defer { traces.processed(from: request.traceFrom, to: request.traceSeq, pushed: pushed) }
        guard !conn.isClosed, let push = request.push else { done(); return }
        let (proxy, watched, before, answered) = conn.state.withLock { ($0.proxy, $0.watched, $0.lastView, $0.answeredView) }
        guard let proxy, !proxy.id.isEmpty else { done(); return }
        let view = push.view(for: proxy.namespace)
        guard let scoped = ProxyNeedsPush.evaluate(proxy: proxy, request: request, now: push, before: before, view: view,
                                                   answered: answered) else {
            done()
            return
        }
        let start = MonotonicClock.nanos()
        var responses: [XdsResponse] = []
        switch conn.xdsProtocol {
        case .sotw:
            for type in XdsType.pushOrder {
                guard let watch = watched[type], Generators.needsPush(type, scoped) else { continue }
                let ctx = GeneratorContext(proxy: proxy, watch: watch, request: scoped, push: push, forRequest: false, view: view)
                if let r = Generators.generate(type, ctx) {
                    record(r, since: start)
                    responses.append(r)
                }
            }
        case .delta:
            responses = deltaPush(proxy: proxy, watched: watched, request: scoped, push: push, view: view, start: start)
        }
        conn.pushed(push, view: view)
        guard !responses.isEmpty else { done(); return }
        pushed = true
        // Istio's meaning: from the config event to the write.
        let since = request.firstEvent != 0 ? request.firstEvent : request.start
        let metrics = self.metrics
        let stamp = request.traceSeq != 0 && traces.enabled
            ? TraceStamp(seq: request.traceSeq, version: push.version, dequeued: dequeued, generated: MonotonicClock.nanos()) : nil
        deliveries.add(conn, responses, PushDone(markDone: {
            metrics.convergenceTime.observe(nanos: MonotonicClock.nanos() &- since)
            done()
        }, releaseSlot: { done.releaseSlot() }), trace: stamp)
    }
}

public enum System {
    /// Online CPUs: the default number of I/O loops and push workers.
    public static let coreCount: Int = {
        let n = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        return n > 0 ? n : 1
    }()
}
