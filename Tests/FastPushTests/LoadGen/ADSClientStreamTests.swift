import Testing
@testable import FastPush

/// The load generator's simulated clients against a real DiscoveryServer, without sockets.
@Suite struct ADSClientStreamTests {
    /// Feeds what the server writes back into the client.
    final class LoopbackStream: XdsStream {
        var isOpen = true
        var client: ADSClientStream?
        var writes = 0
        func write(body: ByteSlice, tail: SmallBytes, completion: WriteCompletion?) {
            writes += 1
            let bytes = Array(body.buffer) + tail.array
            bytes.withUnsafeBytes { client?.receive($0, now: MonotonicClock.nanos()) }
            completion?(true)
        }
        func close(_ status: GRPCStatus) { isOpen = false }
    }

    /// `@unchecked Sendable`: used from the test thread only.
    final class LoopbackTransport: XdsTransport, @unchecked Sendable {
        let peer = "loadgen-test"
        let stream = LoopbackStream()
        let executor: any XdsExecutor = SyncExecutor()
        func currentStream() -> (any XdsStream)? { stream }
    }

    func connect(_ server: DiscoveryServer, mode: ADSClientStream.Mode, namespace: String) -> (ADSClientStream, LoopbackTransport, () -> Int) {
        let t = LoopbackTransport()
        let conn = server.newConnection(transport: t)
        var n = Node()
        n.id = "sidecar~10.0.0.1~lg-0.\(namespace)~\(namespace).svc.cluster.local"
        var requests = 0
        let client = ADSClientStream(index: 0, mode: mode, node: n) { bytes in
            requests += 1
            let r = try! bytes.withUnsafeBytes { try DiscoveryRequest(decodingDeferringNames: $0) }
            if server.process(r, on: conn) != .ok { Issue.record("request refused") }
        }
        client.blocks = ADSClientStream.BlockCache()
        t.stream.client = client
        return (client, t, { requests })
    }

    @Test func envoyModeFollowsEveryTypeAndACKsQuietly() throws {
        let server = Fixtures.server()
        let (c, t, requests) = connect(server, mode: .envoy, namespace: "demo")
        c.start()
        #expect(c.isSynced)
        #expect(XdsType.allCases.allSatisfy { c[$0].responses == 1 && !c[$0].nonce.isEmpty })
        // EDS asked for exactly the clusters CDS returned (echo and ledger are visible in demo).
        #expect(c[.eds].names == ["outbound|7070||ledger.payments.svc.cluster.local", "outbound|8080||echo.demo.svc.cluster.local"])
        #expect(c[.rds].names == ["7070", "8080"])
        // 4 subscriptions and 4 ACKs, and only 4 responses: ACKs are not answered.
        #expect(requests() == 8 && t.stream.writes == 4)
        #expect(c.error == nil)
        // A push arrives, is ACKed, and the ACK is not answered.
        var echo = Fixtures.echo
        echo.endpoints.append(WorkloadEndpoint(address: "10.9.9.9"))
        server.updateRegistry(RegistrySnapshot(services: [echo, Fixtures.ledger, Fixtures.privateSvc]))
        server.drainQueue()
        #expect(c[.eds].responses == 2 && t.stream.writes == 5 && requests() == 9)
    }

    @Test func grpcModeResolvesTheTarget() throws {
        let server = Fixtures.server()
        let (c, _, _) = connect(server, mode: .grpc(target: "echo.demo.svc.cluster.local:8080"), namespace: "demo")
        c.start()
        #expect(c.isSynced)
        #expect(c[.lds].names == ["echo.demo.svc.cluster.local:8080"])
        #expect(c[.rds].names == ["echo.demo.svc.cluster.local:8080"])
        #expect(c[.cds].names == ["outbound|8080||echo.demo.svc.cluster.local"])
        #expect(c[.eds].names == ["outbound|8080||echo.demo.svc.cluster.local"])
    }

    @Test func sharedBlocksAreUsedForACKs() throws {
        let server = Fixtures.server()
        let blocks = ADSClientStream.BlockCache()
        var clients: [ADSClientStream] = []
        for _ in 0..<3 {
            let (c, _, _) = connect(server, mode: .envoy, namespace: "demo")
            c.blocks = blocks
            c.sendBlock = nil
            c.start()
            clients.append(c)
        }
        #expect(clients.allSatisfy { $0.isSynced })
        // Names followed from identical bodies are parsed once per body.
        #expect(blocks.followed.count == 2)  // one CDS body, one LDS body
    }
}
