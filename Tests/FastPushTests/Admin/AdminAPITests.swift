import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import FastPush

@Suite struct AdminAPITests {
    static func entry(_ name: String = "shop", ns: String = "demo", addresses: [String] = ["10.1.0.1"], port: Int = 8080) -> [UInt8] {
        let eps = addresses.map { "{\"address\":\"\($0)\",\"locality\":\"r/z\"}" }.joined(separator: ",")
        return Array("""
        {"apiVersion":"networking.istio.io/v1","kind":"ServiceEntry","metadata":{"name":"\(name)","namespace":"\(ns)"},
         "spec":{"hosts":["\(name).\(ns).svc.cluster.local"],"ports":[{"number":\(port),"name":"grpc","protocol":"GRPC"}],
                 "resolution":"STATIC","endpoints":[\(eps)]}}
        """.utf8)
    }

    func call(_ h: AdminHandlers, _ method: String, _ path: String, _ body: [UInt8] = []) -> (Int, String) {
        let r = h.handle(HTTPRequest(method: method, path: path, body: body))
        return (r.status, String(decoding: r.body, as: UTF8.self))
    }

    @Test func putGetDeleteRoundTrip() throws {
        let server = Fixtures.server()
        let h = AdminHandlers(server: server)
        var (status, body) = call(h, "PUT", "/v1/serviceentries/demo/shop", Self.entry())
        #expect(status == 200 && body.contains("\"push\":\"full\""))
        #expect(server.registry.service(namespace: "demo", hostname: "shop.demo.svc.cluster.local") != nil)
        (status, body) = call(h, "GET", "/v1/serviceentries/demo/shop")
        #expect(status == 200)
        // What GET returns parses back to the same services.
        let reparsed = try ServiceEntryParser.parse(Array(body.utf8), source: "get")
        #expect(reparsed.services == server.registry.services.filter { $0.configName == "shop" })
        // Endpoints only: an incremental push.
        (status, body) = call(h, "PUT", "/v1/serviceentries/demo/shop", Self.entry(addresses: ["10.1.0.1", "10.1.0.2"]))
        #expect(status == 200 && body.contains("\"push\":\"endpoints\""))
        (status, body) = call(h, "PUT", "/v1/serviceentries/demo/shop", Self.entry(addresses: ["10.1.0.1", "10.1.0.2"]))
        #expect(body.contains("\"push\":\"unchanged\""))
        (status, _) = call(h, "DELETE", "/v1/serviceentries/demo/shop")
        #expect(status == 200)
        (status, body) = call(h, "GET", "/v1/serviceentries/demo/shop")
        #expect(status == 404 && body.contains("\"error\""))
        (status, _) = call(h, "DELETE", "/v1/serviceentries/demo/shop")
        #expect(status == 404)
    }

    @Test func badBodiesGet400WithTheField() {
        let h = AdminHandlers(server: Fixtures.server())
        var (status, body) = call(h, "PUT", "/v1/serviceentries/demo/shop", Self.entry(port: 70000))
        #expect(status == 400 && body.contains("ports[0].number") && body.hasPrefix("{\"error\""))
        (status, body) = call(h, "PUT", "/v1/serviceentries/demo/shop", Array("{not json".utf8))
        #expect(status == 400)
        (status, body) = call(h, "PUT", "/v1/serviceentries/other/shop", Self.entry())
        #expect(status == 400 && body.contains("the URL says other/shop"))
        (status, _) = call(h, "POST", "/v1/serviceentries/demo/shop", Self.entry())
        #expect(status == 405)
        (status, _) = call(h, "GET", "/v1/serviceentries/demo")
        #expect(status == 404)
    }

    @Test func hostOwnedByAnotherEntryIsAConflict() {
        let server = Fixtures.server()
        let h = AdminHandlers(server: server)
        #expect(call(h, "PUT", "/v1/serviceentries/demo/shop", Self.entry()).0 == 200)
        let other = Array(String(decoding: Self.entry(), as: UTF8.self).replacingFirst("\"name\":\"shop\"", with: "\"name\":\"shop2\"").utf8)
        #expect(call(h, "PUT", "/v1/serviceentries/demo/shop2", other).0 == 409)
    }

    @Test func metricsAndReadiness() {
        let h = AdminHandlers(server: Fixtures.server())
        #expect(call(h, "GET", "/ready").0 == 200)
        let (s, m) = call(h, "GET", "/metrics")
        #expect(s == 200)
        for name in ["pilot_xds_pushes{type=\"eds\"}", "pilot_proxy_queue_time_bucket", "pilot_proxy_convergence_time_count",
                     "pilot_xds_push_time_bucket", "pilot_debounce_time_sum", "pilot_pushcontext_init_seconds_count",
                     "pilot_inbound_updates{type=\"eds\"}", "pilot_total_xds_rejects{type=\"cds\"}",
                     "pilot_xds_expired_nonce{type=\"lds\"}", "pilot_xds{", "pilot_services 3"] {
            #expect(m.contains(name), "missing \(name)")
        }
    }

    @Test func writesNeedTheBearerTokenWhenOneIsSet() {
        let server = Fixtures.server()
        let h = AdminHandlers(server: server, token: "s3cret")
        func send(_ method: String, _ path: String, auth: String?, _ body: [UInt8] = []) -> (Int, String) {
            let r = h.handle(HTTPRequest(method: method, path: path, headers: auth.map { ["authorization": $0] } ?? [:], body: body))
            return (r.status, String(decoding: r.body, as: UTF8.self))
        }
        var (status, body) = send("PUT", "/v1/serviceentries/demo/shop", auth: nil, Self.entry())
        #expect(status == 401 && body.hasPrefix("{\"error\""))
        #expect(server.registry.service(namespace: "demo", hostname: "shop.demo.svc.cluster.local") == nil)
        (status, _) = send("PUT", "/v1/serviceentries/demo/shop", auth: "Bearer s3cre", Self.entry())
        #expect(status == 401)
        (status, _) = send("DELETE", "/v1/serviceentries/demo/web", auth: "Bearer wrong!")
        #expect(status == 401)
        (status, _) = send("GET", "/debug/adsz", query: true, auth: nil)
        #expect(status == 401)
        // Reads stay open.
        #expect(send("GET", "/ready", auth: nil).0 == 200)
        #expect(send("GET", "/metrics", auth: nil).0 == 200)
        (status, body) = send("PUT", "/v1/serviceentries/demo/shop", auth: "Bearer s3cret", Self.entry())
        #expect(status == 200 && body.contains("\"push\":\"full\""))
        #expect(server.registry.service(namespace: "demo", hostname: "shop.demo.svc.cluster.local") != nil)

        func send(_ method: String, _ path: String, query: Bool, auth: String?) -> (Int, String) {
            let r = h.handle(HTTPRequest(method: method, path: path, query: ["push": "true"], headers: auth.map { ["authorization": $0] } ?? [:]))
            return (r.status, String(decoding: r.body, as: UTF8.self))
        }
    }

    @Test func readinessTurnsTo503WhileDraining() {
        let server = Fixtures.server()
        let h = AdminHandlers(server: server)
        #expect(call(h, "GET", "/ready").0 == 200)
        #expect(server.drain(timeoutNanos: 0) == 0)
        let (status, body) = call(h, "GET", "/ready")
        #expect(status == 503 && body == "draining\n")
    }

    /// The HTTP/1.1 limits, over a real socket.
    @Test(.timeLimit(.minutes(1))) func oversizedBodyAndSlowHeadOverSocket() throws {
        let group = try EventLoopGroup(threads: 1)
        defer { group.shutdown() }
        var cfg = AdminConfig()
        cfg.port = 0
        cfg.maxBodyBytes = 1000
        cfg.idleTimeoutNanos = 300_000_000
        let admin = try AdminServer(group: group, config: cfg, handlers: AdminHandlers(server: Fixtures.server()))
        func exchange(_ request: String) throws -> String {
            let fd = try Socket.connect(host: "127.0.0.1", port: admin.port, nonBlocking: false)
            defer { close(fd) }
            var tv = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            _ = request.withCString { write(fd, $0, strlen($0)) }
            var out = [UInt8](repeating: 0, count: 4096)
            var got: [UInt8] = []
            while true {
                let n = read(fd, &out, out.count)
                if n <= 0 { break }
                got += out[0..<n]
            }
            return String(decoding: got, as: UTF8.self)
        }
        #expect(try exchange("GET /ready HTTP/1.1\r\nHost: x\r\n\r\n").hasPrefix("HTTP/1.1 200"))
        #expect(try exchange("PUT /v1/serviceentries/a/b HTTP/1.1\r\nContent-Length: 5000\r\n\r\n").hasPrefix("HTTP/1.1 413"))
        #expect(try exchange("GET /ready HTTP/1.1\r\nHost: x\r\n").hasPrefix("HTTP/1.1 408"))
        #expect(try exchange("garbage\r\n\r\n").hasPrefix("HTTP/1.1 400"))
    }
}

extension String {
    func replacingFirst(_ a: String, with b: String) -> String {
        guard let r = range(of: a) else { return self }
        return replacingCharacters(in: r, with: b)
    }
}
