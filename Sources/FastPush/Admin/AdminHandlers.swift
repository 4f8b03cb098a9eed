/// Routes of the admin API.
public final class AdminHandlers: Sendable {
    let server: DiscoveryServer

    public init(server: DiscoveryServer) {
        self.server = server
    }

    public func handle(_ r: HTTPRequest) -> HTTPResponse {
        if r.path.hasPrefix(ServiceEntryAPI.prefix) { return ServiceEntryAPI.handle(r, server: server) }
        if r.path == "/v1/serviceentries" {
            guard r.method == "GET" else { return .error(405, "method \(r.method) not allowed; use GET") }
            return .json(200, ServiceEntryAPI.list(server))
        }
        switch (r.method, r.path) {
        case ("GET", "/ready"):
            return HTTPResponse(status: 200, text: "ready\n")
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
        case (_, "/ready"), (_, "/metrics"), (_, "/debug/adsz"), (_, "/debug/syncz"), (_, "/debug/memory"):
            return .error(405, "method \(r.method) not allowed on \(r.path)")
        default:
            return .error(404, "no such endpoint: \(r.path)")
        }
    }
}
