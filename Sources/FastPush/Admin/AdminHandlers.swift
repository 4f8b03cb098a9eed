/// Routes of the admin API.
public final class AdminHandlers: Sendable {
    let server: DiscoveryServer
    let token: String?
    let writer: any RegistryWriter
    /// Answers /ready: 200 once the registry is loaded (a store: its first sync) and until drain.
    let ready: @Sendable () -> Bool

    public init(server: DiscoveryServer, token: String? = nil, writer: (any RegistryWriter)? = nil,
                ready: @escaping @Sendable () -> Bool = { true }) {
        self.server = server
        self.token = token
        self.writer = writer ?? MemoryRegistryWriter(server: server)
        self.ready = ready
    }

    /// Answers through `respond`: at once, or for a registry write once its store made it
    /// durable (from another thread).
    public func handle(_ r: HTTPRequest, respond: @escaping @Sendable (HTTPResponse) -> Void) {
        let writes = r.method != "GET" || r.query["push"] == "true"
        if writes, let token {
            guard Self.sameBytes(r.headers["authorization"] ?? "", "Bearer \(token)") else {
                Log.warn("admin_unauthorized", ["method": r.method, "path": r.path])
                var resp = HTTPResponse.error(401, "this endpoint needs 'Authorization: Bearer <token>'")
                resp.headers.append(("WWW-Authenticate", "Bearer"))
                return respond(resp)
            }
        }
        if r.path.hasPrefix(ServiceEntryAPI.prefix) { return ServiceEntryAPI.handle(r, writer: writer, respond: respond) }
        respond(route(r))
    }

    /// `handle`, waiting for the answer (tests, and the memory writer, which answers at once).
    public func handle(_ r: HTTPRequest) -> HTTPResponse {
        let box = LateBox<HTTPResponse>()
        let done = Semaphore()
        handle(r) { resp in box.value = resp; done.signal() }
        done.wait()
        return box.value!
    }

    /// Compares in time that depends only on the lengths, so a token cannot be guessed byte by byte.
    static func sameBytes(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var diff = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<min(x.count, y.count) { diff |= x[i] ^ y[i] }
        return diff == 0
    }

    func route(_ r: HTTPRequest) -> HTTPResponse {
        if r.path == "/v1/serviceentries" {
            guard r.method == "GET" else { return .error(405, "method \(r.method) not allowed; use GET") }
            return .json(200, writer.list())
        }
        switch (r.method, r.path) {
        case ("GET", "/ready"):
            if server.isDraining { return HTTPResponse(status: 503, text: "draining\n") }
            return ready() ? HTTPResponse(status: 200, text: "ready\n") : HTTPResponse(status: 503, text: "registry not synced yet\n")
        case ("GET", "/metrics"):
            return HTTPResponse(status: 200, contentType: "text/plain; version=0.0.4", body: Array(server.metrics.registry.render().utf8))
        case ("GET", "/debug/adsz"):
            if r.query["push"] == "true" {
                let n = server.connectionCount
                server.pushAll(reason: .debug)
                return HTTPResponse(status: 200, text: "Pushed to \(n) servers\n")
            }
            return .json(200, DebugViews.adsz(server, proxyID: r.query["proxyID"]))
        case ("GET", "/debug/memory"):
            return .json(200, MemoryStats.json(trim: r.query["trim"] == "true"))
        case ("GET", "/debug/syncz"):
            return .json(200, DebugViews.syncz(server, namespace: r.query["namespace"]))
        case ("GET", "/debug/pushz"), ("GET", "/debug/pushz.svg"):
            var version: UInt64?
            if let v = r.query["version"] {
                guard let n = UInt64(v) else { return .error(400, "version: expected a push version, got \"\(LogLimiter.clip(v))\"") }
                version = n
            }
            if r.path == "/debug/pushz" && version == nil { return .json(200, PushzView.list(server)) }
            guard server.traces.enabled else { return .error(404, "push tracing is off (--push-trace=false)") }
            guard let t = PushzView.one(server, version: version) else {
                return .error(404, version.map { "no trace of push version \($0) (the ring keeps the last \(server.traces.capacity))" } ?? "no push yet")
            }
            if r.path == "/debug/pushz.svg" { return HTTPResponse(status: 200, contentType: "image/svg+xml", body: Array(PushzView.svg(t).utf8)) }
            return .json(200, PushzView.json(t, server: server, detail: true, pending: PushzView.pending(server)) + "\n")
        case (_, "/ready"), (_, "/metrics"), (_, "/debug/adsz"), (_, "/debug/syncz"), (_, "/debug/memory"), (_, "/debug/pushz"), (_, "/debug/pushz.svg"):
            return .error(405, "method \(r.method) not allowed on \(r.path)")
        default:
            return .error(404, "no such endpoint: \(r.path)")
        }
    }
}
