import FastPush

/// `admin`: the admin server's HTTP/1.1 head parser and its routes, against a DiscoveryServer
/// with the demo registry and one subscribed sidecar (so debug views and pushes have a stream).
///
/// Input: up to 8 raw HTTP/1.1 requests back to back, each `head \r\n\r\n body`, read as
/// `HTTP1Connection` reads one: `HTTP1Parser.findHeadEnd` / `parseHead`, the same 431, 400, 411
/// and 413 refusals, then `Content-Length` bytes of body (a short last body takes what is left).
/// Each parsed request goes to `AdminHandlers.handle`.
///
/// Invariants: no trap; statuses are HTTP statuses; the registry never holds a (namespace,
/// host) twice; after a 200 PUT or a 200 GET of `/v1/serviceentries/{ns}/{name}`, a GET returns
/// the entry and its JSON parses back to exactly the services the registry holds for it (the
/// API's output is valid input); after a 200 DELETE a GET is 404.
enum AdminFuzz {
    static let name = "admin"
    static let target = FuzzTarget(
        name: name,
        summary: "HTTP1Parser head parsing + AdminHandlers.handle (ServiceEntry API, debug views)",
        run: { data throws(FuzzViolation) in try run(data) },
        seeds: { AdminSeeds.all() })

    static let maxBody = 1 << 20
    static let maxRequests = 8
    static let entryPrefix = "/v1/serviceentries/"

    static func run(_ data: UnsafeRawBufferPointer) throws(FuzzViolation) {
        let server = Fixtures.server()
        let handlers = AdminHandlers(server: server)
        let client = subscribe(server)
        defer { server.disconnect(client) }

        var rest = Array(data)
        for _ in 0..<maxRequests {
            // No head end: the server waits (or answers 431 past maxHead); nothing is routed.
            guard let headEnd = HTTP1Parser.findHeadEnd(rest) else { return }
            guard let (head, contentLength) = HTTP1Parser.parseHead(Array(rest[..<headEnd])) else { return }
            try checkHead(head, contentLength)
            if head.headers["transfer-encoding"] != nil || contentLength > maxBody { return }
            let bodyStart = headEnd + 4
            let bodyEnd = min(rest.count, bodyStart + contentLength)
            var request = head
            request.body = Array(rest[bodyStart..<bodyEnd])
            rest = Array(rest[bodyEnd...])
            try handle(request, handlers, server)
        }
    }

    /// What the parser's output must look like, whatever the bytes were.
    static func checkHead(_ head: HTTPRequest, _ contentLength: Int) throws(FuzzViolation) {
        try require(contentLength >= 0, name, "negative Content-Length \(contentLength)")
        try require(!head.method.contains(" ") && !head.path.contains(" "), name, "a space in method or path")
        try require(!head.path.contains("?"), name, "the query was left in the path \(head.path)")
        for (k, v) in head.query {
            try require(!k.contains("&") && !v.contains("&") && !k.contains("="), name, "query pair \(k)=\(v) not split")
        }
        for k in head.headers.keys {
            try require(!k.contains(":"), name, "header name \(k) not split at its colon")
        }
    }

    static func handle(_ r: HTTPRequest, _ handlers: AdminHandlers, _ server: DiscoveryServer) throws(FuzzViolation) {
        let response = handlers.handle(r)
        trace("\(r.method) \(r.path) -> \(response.status) \(String(decoding: response.body.prefix(120), as: UTF8.self))")
        try require((200...599).contains(response.status), name, "status \(response.status) for \(r.method) \(r.path)")
        try RegistryFuzz.checkSnapshot(server.registry, target: name)

        guard r.path.hasPrefix(entryPrefix), response.status == 200 else { return }
        let parts = r.path.dropFirst(entryPrefix.count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return }
        let (ns, entry) = (String(parts[0]), String(parts[1]))
        let get = handlers.handle(HTTPRequest(method: "GET", path: r.path))
        switch r.method {
        case "PUT", "GET":
            try require(get.status == 200, name, "\(r.method) \(r.path) was 200, a GET after it \(get.status)")
            let held = server.registry.services.filter { $0.namespace == ns && $0.configName == entry }
            let parsed: RegistrySnapshot
            do {
                parsed = try ServiceEntryParser.parse(get.body, source: "GET \(r.path)")
            } catch {
                throw FuzzViolation(name, "GET \(r.path) returned JSON the parser refuses: \(error)\n\(String(decoding: get.body, as: UTF8.self))")
            }
            try require(parsed.services == held, name,
                        "GET \(r.path) does not round-trip:\nregistry: \(held)\nparsed:   \(parsed.services)")
        case "DELETE":
            try require(get.status == 404, name, "DELETE \(r.path) was 200, a GET after it \(get.status)")
        default:
            break
        }
    }

    /// A sidecar watching CDS and EDS, so registry edits queue pushes and debug views list it.
    static func subscribe(_ server: DiscoveryServer) -> XdsConnection {
        let conn = server.newConnection(transport: CapturingTransport())
        _ = server.process(Fixtures.request(.cds, node: Fixtures.node(namespace: "demo")), on: conn)
        _ = server.process(Fixtures.request(.eds, names: ["outbound|8080||echo.demo.svc.cluster.local"]), on: conn)
        return conn
    }
}
