/// Delta ADS on the same DiscoveryServer, connections, push queue and workers as State of the
/// World: only the request rules (`DeltaRules`) and what a response is made of (a patch from
/// what the stream holds to its scope's `ResourceTable`) differ.
extension DiscoveryServer {
    /// Reads one DeltaDiscoveryRequest and answers it on the stream if needed. Loop thread.
    public func process(_ request: DeltaDiscoveryRequest, on conn: XdsConnection) -> RequestOutcome {
        guard let type = XdsType(typeURL: request.typeURL) else { return unknownType(request.typeURL, on: conn) }
        let names: DeltaRequestNames
        do { names = try DeltaRequestNames(request) } catch {
            return .close(GRPCStatus(.invalidArgument, "malformed DeltaDiscoveryRequest: \(error)"))
        }
        var initialized = false
        let result = conn.state.withLock { st -> (DeltaRequestOutcome, Proxy)? in
            if st.proxy == nil {
                // Only the first request's node counts (later ones are not even decoded).
                guard let node = request.node, !node.id.isEmpty else { return nil }
                st.proxy = Proxy(node: node, defaultNamespace: config.defaultNamespace, identity: conn.transport.peerIdentity)
                initialized = true
            }
            return (DeltaRules.process(request, names: names, type: type, watched: &st.watched), st.proxy!)
        }
        guard let (outcome, proxy) = result else {
            return .close(GRPCStatus(.invalidArgument, "the first DeltaDiscoveryRequest on a stream must carry node with an id"))
        }
        if initialized, let status = register(conn, proxy) { return .close(status) }
        switch outcome.kind {
        case .ack: conn.traceAnswered(type, nonce: request.responseNonce, nack: false)
        case .nack: conn.traceAnswered(type, nonce: request.responseNonce, nack: true)
        default: break
        }
        switch outcome.kind {
        case let .nack(message):
            metrics.rejects[type.rawValue].inc()
            Log.warn("ads_nack", ["type": type, "conn": conn.connectionID, "protocol": "delta",
                                  "nonce": request.responseNonce, "error": message])
        case .stale:
            metrics.expiredNonce[type.rawValue].inc()
            Log.debug("ads_stale_nonce", ["type": type, "conn": conn.connectionID, "nonce": request.responseNonce])
        case .initial, .ack, .spontaneous:
            break
        }
        guard outcome.evaluate else { return .ok }
        let nack: Bool
        if case .nack = outcome.kind { nack = true } else { nack = false }
        respondDelta(type, conn: conn, proxy: proxy, force: outcome.force, mustAnswer: outcome.mustAnswer, nack: nack)
        return .ok
    }

    /// Answers from the newest snapshot with what differs from what the stream holds, plus the
    /// names the request subscribed to. Nothing to send: no response, unless the request is the
    /// first of its type. A CDS answer that carries clusters the stream also watches in EDS is
    /// followed by their load assignments (Envoy warms such a cluster again and waits for them).
    func respondDelta(_ type: XdsType, conn: XdsConnection, proxy: Proxy, force: SubscriptionSet?, mustAnswer: Bool, nack: Bool = false) {
        let push = pushContext
        let start = MonotonicClock.nanos()
        let view = push.view(for: proxy.namespace)
        conn.answered(from: push, view: view)
        guard let watch = conn.state.withLock({ $0.watched[type] }) else { return }
        // A NACK's own answer leaves out what it rejected: that waits for the next change.
        let resend = nack ? force : union(watch.resend, force)
        let request = PushRequest(full: true, forced: true, reason: [.proxyrequest: 1], start: start, push: push)
        let ctx = GeneratorContext(proxy: proxy, watch: watch, request: request, push: push, forRequest: true, view: view)
        let table = Generators.table(type, ctx)
        let patch = table.patch(from: watch.held ?? .empty, resend: resend)
        guard let body = patch.body ?? (mustAnswer ? DeltaPatch.emptyBody(type) : nil) else {
            conn.state.withLock { st in
                st.watched[type]?.held = table.versions
                if let v = st.watched[type]?.lastFullVersion { st.watched[type]?.lastFullVersion = Swift.max(v, push.version) }
            }
            return
        }
        let r = XdsResponse(type: type, version: push.version, body: body, full: true, forced: true,
                            delta: DeltaPlan(patch: patch, table: table, push: push, view: view))
        record(r, since: start)
        countDelta(type, patch)
        conn.deliver([r], done: nil)
        if type == .cds, let warm = warming(after: patch, conn: conn) {
            conn.state.withLock { st in
                let pending = st.watched[.eds]?.resend
                st.watched[.eds]?.resend = union(pending, warm)
            }
            respondDelta(.eds, conn: conn, proxy: proxy, force: nil, mustAnswer: false)
        }
    }

    /// The clusters a CDS patch carries that the stream already watches in EDS.
    private func warming(after cds: DeltaPatch, conn: XdsConnection) -> SubscriptionSet? {
        guard !cds.sent.isEmpty, let eds = conn.state.withLock({ $0.watched[.eds]?.names }) else { return nil }
        let warm = cds.sent.filter(eds.contains)
        return warm.isEmpty ? nil : SubscriptionSet.of(warm)
    }

    /// A worker's push to a Delta stream: per watched type the change touches, the patch from
    /// what the stream holds to its scope's table in `push`. Unchanged tables cost one pointer
    /// comparison; streams that hold the same set share one patch and its encoded body.
    func deltaPush(proxy: Proxy, watched: Watches, request: PushRequest, push: PushContext, view: NamespaceView,
                   start: UInt64) -> [XdsResponse] {
        var responses: [XdsResponse] = []
        var warm: SubscriptionSet?
        for type in XdsType.pushOrder {
            guard let watch = watched[type] else { continue }
            guard Generators.needsPush(type, request) || (type == .eds && warm != nil) else { continue }
            let ctx = GeneratorContext(proxy: proxy, watch: watch, request: request, push: push, forRequest: false, view: view)
            let table = Generators.table(type, ctx)
            let held = watch.held ?? .empty
            if held === table.versions && watch.resend == nil && (type != .eds || warm == nil) { continue }
            let resend = type == .eds ? union(watch.resend, warm) : watch.resend
            let patch = table.patch(from: held, resend: resend)
            if type == .cds, !patch.sent.isEmpty, let eds = watched[.eds] {
                let names = patch.sent.filter(eds.names.contains)
                if !names.isEmpty { warm = SubscriptionSet.of(names) }
            }
            guard let body = patch.body else { continue }
            let r = XdsResponse(type: type, version: push.version, body: body, full: true, forced: false,
                                delta: DeltaPlan(patch: patch, table: table, push: push, view: view))
            record(r, since: start)
            countDelta(type, patch)
            responses.append(r)
        }
        return responses
    }

    private func countDelta(_ type: XdsType, _ patch: DeltaPatch) {
        let c = metrics.deltaResources[type.rawValue]
        if !patch.sent.isEmpty { c.sent.inc(patch.sent.count) }
        if !patch.removed.isEmpty { c.removed.inc(patch.removed.count) }
        if patch.skipped > 0 { c.skipped.inc(patch.skipped) }
    }

    private func union(_ a: SubscriptionSet?, _ b: SubscriptionSet?) -> SubscriptionSet? {
        guard let a, !a.isEmpty else { return b }
        guard let b, !b.isEmpty, b !== a else { return a }
        return SubscriptionSet.of(a.names + b.names)
    }
}
