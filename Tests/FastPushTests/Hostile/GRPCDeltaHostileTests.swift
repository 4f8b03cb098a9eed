import Testing
@testable import FastPush

/// Hostile DeltaAggregatedResources input at the gRPC layer, without sockets: the real
/// ADSService behind a server H2Connection, a client H2Connection, bytes pumped in memory.
@Suite struct GRPCDeltaHostileTests {
    static let echo = ResourceNames.outboundCluster(port: 8080, host: "echo.demo.svc.cluster.local")

    /// One HTTP/2 connection to an ADSService on a DiscoveryServer.
    final class Harness {
        let pipe = H2Pipe()
        let loop = InlineLoop()
        let discovery = Fixtures.server()
        let server: GRPCServerConnection
        let client: GRPCClientConnection

        init() {
            server = GRPCServerConnection(h2: pipe.server, service: ADSService(server: discovery, loop: loop), peer: "hostile",
                                          maxMessageSize: 4 << 20)
            client = GRPCClientConnection(h2: pipe.client, authority: "fastpilot")
        }

        func pump() {
            for _ in 0..<4 {
                pipe.pump()
                loop.runPending()
            }
            pipe.pump()
        }

        func open() throws -> (GRPCClientCall, RecordingCall) {
            let rec = RecordingCall()
            let call = try #require(client.startCall(path: ADSService.deltaPath, delegate: rec))
            return (call, rec)
        }

        func send(_ call: GRPCClientCall, _ bytes: [UInt8]) {
            _ = call.send(bytes: bytes)
            pump()
        }

        func responses(_ rec: RecordingCall) throws -> [DeltaDiscoveryResponse] {
            try rec.messages.map { try DeltaDiscoveryResponse(decoding: $0) }
        }
    }

    static func request(_ t: XdsType, node namespace: String? = nil, subscribe: [String] = [], unsubscribe: [String] = [],
                        nonce: String = "") -> [UInt8] {
        var r = DeltaDiscoveryRequest()
        r.typeURL = t.typeURL
        r.resourceNamesSubscribe = subscribe
        r.resourceNamesUnsubscribe = unsubscribe
        r.responseNonce = nonce
        if let namespace {
            var n = Node()
            n.id = "sidecar~10.0.0.5~app.\(namespace)~\(namespace).svc.cluster.local"
            r.node = n
        }
        return r.encode()
    }

    /// Malformed requests, each after a valid first request (so the node is skipped, not
    /// decoded, as for every later request of a real stream) or as the first request.
    static let malformed: [(name: String, afterValidFirst: Bool, bytes: [UInt8])] = {
        let cds = DeltaWire.string(2, EnvoyTypeURL.cluster)
        let eds = DeltaWire.string(2, EnvoyTypeURL.clusterLoadAssignment)
        return [
            ("truncated varint (a length)", true, cds + [0x32, 0x85]),
            ("truncated varint (a tag)", true, cds + [0xB2]),
            ("truncated varint, first request", false, [0x0A, 0x80]),
            ("wrong wire type for field 1 (node skipped)", true, DeltaWire.key(1, 0) + [0x07] + cds),
            ("wrong wire type for field 1 (node decoded)", false, DeltaWire.key(1, 0) + [0x07] + cds),
            ("invalid UTF-8 in a subscribed name", true, eds + DeltaWire.bytes(3, [0x61, 0xC3, 0x28])),
            ("invalid UTF-8 in an unsubscribed name", true, eds + DeltaWire.bytes(4, [0xED, 0xA0, 0x80])),
            ("initial_resource_versions entry as a varint", true, cds + DeltaWire.key(5, 0) + [0x01]),
            ("initial_resource_versions entry that does not parse", true, cds + DeltaWire.bytes(5, [0x0A, 0x09, 0x61])),
            ("initial_resource_versions key with the wrong wire type", true, cds + DeltaWire.bytes(5, DeltaWire.key(1, 5) + [1, 2, 3, 4])),
            ("error_detail that is not a message", true, cds + DeltaWire.key(7, 0) + [0x0D]),
            ("a length past the end", true, cds + DeltaWire.key(3, 2) + DeltaWire.varint(1 << 20) + [0x61]),
        ]
    }()

    @Test(arguments: malformed.indices)
    func malformedRequestEndsOnlyItsStream(_ i: Int) throws {
        let (name, afterValidFirst, bytes) = Self.malformed[i]
        let h = Harness()
        // A healthy stream of another node on the same connection.
        let (good, goodRec) = try h.open()
        h.send(good, Self.request(.cds, node: "payments"))
        #expect(goodRec.messages.count == 1)

        let (bad, badRec) = try h.open()
        if afterValidFirst {
            h.send(bad, Self.request(.cds, node: "demo"))
            #expect(badRec.messages.count == 1, "\(name): the valid first request was not answered")
        }
        #expect(h.discovery.connectionCount == (afterValidFirst ? 2 : 1))
        h.send(bad, bytes)
        let status = try #require(badRec.status, "\(name): the stream did not end")
        #expect(status.code == .invalidArgument, "\(name): \(status)")
        #expect(status.message.contains("malformed DeltaDiscoveryRequest"), "\(name): \(status.message)")
        #expect(badRec.messages.count == (afterValidFirst ? 1 : 0), "\(name): a response to the malformed request")
        // The bad stream has left the server; the good one is still served, and still pushed.
        #expect(h.discovery.connectionCount == 1, "\(name)")
        #expect(h.pipe.serverAlive && h.pipe.clientAlive)
        let nonce = try #require(h.responses(goodRec).last).nonce
        h.send(good, Self.request(.eds, subscribe: [Self.echo], nonce: ""))
        #expect(try h.responses(goodRec).last?.resources.map(\.name) == [Self.echo], "\(name)")
        h.send(good, Self.request(.cds, nonce: nonce))
        #expect(goodRec.status == nil)
        var echo = Fixtures.echo
        echo.endpoints.append(WorkloadEndpoint(address: "10.0.0.9"))
        let before = goodRec.messages.count
        h.discovery.updateRegistry(RegistrySnapshot(services: [echo, Fixtures.ledger, Fixtures.privateSvc]))
        h.discovery.drainQueue()
        h.pump()
        #expect(goodRec.messages.count == before + 1, "\(name): the healthy stream was not pushed")
    }

    @Test func firstRequestWithoutNodeEndsTheStreamWithAMessage() throws {
        let h = Harness()
        let (call, rec) = try h.open()
        h.send(call, Self.request(.cds))
        let status = try #require(rec.status)
        #expect(status.code == .invalidArgument && status.message.contains("node"))
        #expect(rec.messages.isEmpty)
        #expect(h.discovery.connectionCount == 0)
    }

    /// Two Delta streams of different nodes on one HTTP/2 connection (case 45): own scopes,
    /// own nonces, and closing one leaves the other pushed.
    @Test func twoDeltaStreamsOnOneConnection() throws {
        let h = Harness()
        let (a, aRec) = try h.open()
        let (b, bRec) = try h.open()
        h.send(a, Self.request(.cds, node: "demo"))
        h.send(b, Self.request(.cds, node: "payments"))
        let ra = try #require(h.responses(aRec).first), rb = try #require(h.responses(bRec).first)
        #expect(ra.resources.count == 2 && rb.resources.count == 3)
        h.send(a, Self.request(.eds, subscribe: [Self.echo]))
        h.send(b, Self.request(.eds, subscribe: [Self.echo]))
        a.cancel()
        h.pump()
        #expect(h.discovery.connectionCount == 1)
        let before = bRec.messages.count
        var echo = Fixtures.echo
        echo.endpoints.append(WorkloadEndpoint(address: "10.0.0.9"))
        h.discovery.updateRegistry(RegistrySnapshot(services: [echo, Fixtures.ledger, Fixtures.privateSvc]))
        h.discovery.drainQueue()
        h.pump()
        #expect(bRec.messages.count == before + 1)
        #expect(try h.responses(bRec).last?.resources.map(\.name) == [Self.echo])
        #expect(Set(try h.responses(bRec).map(\.nonce)).count == bRec.messages.count)
    }

    /// A request that unsubscribes a huge number of names it never subscribed to: no answer,
    /// and the stream's state is the same objects as before (nothing grew, nothing copied).
    @Test func hugeUnsubscribeListOfUnknownNames() throws {
        let h = Harness()
        let (call, rec) = try h.open()
        h.send(call, Self.request(.cds, node: "demo"))
        h.send(call, Self.request(.eds, subscribe: [Self.echo]))
        #expect(rec.messages.count == 2)
        let conn = try #require(h.discovery.allConnections.first)
        let before = conn.snapshot.watched
        let unknown = (0..<40_000).map { "outbound|\($0)||never-subscribed-\($0).invalid" }
        for t in [XdsType.eds, .cds] {
            let nonce = try #require(h.responses(rec).last { $0.typeURL == t.typeURL }).nonce
            let bytes = Self.request(t, unsubscribe: unknown, nonce: nonce)
            #expect(bytes.count > 1 << 20)
            h.send(call, bytes)
            #expect(rec.status == nil, "\(t): \(String(describing: rec.status))")
            #expect(rec.messages.count == 2, "\(t): answered a phantom unsubscribe")
            let after = try #require(conn.snapshot.watched[t])
            let was = try #require(before[t])
            #expect(after.names === was.names && after.held === was.held && after.resend == nil, "\(t)")
            #expect(after.names.count == was.names.count && after.held?.count == was.held?.count)
            #expect(after.nonceAcked == nonce)
        }
        // And the same list without a nonce (a spontaneous request): still nothing.
        h.send(call, Self.request(.eds, unsubscribe: unknown))
        #expect(rec.messages.count == 2 && rec.status == nil)
        #expect(conn.snapshot.watched[.eds]?.names === before[.eds]?.names)
    }
}

/// An IOLoop without sockets: the test thread is the loop; `execute` queues work for `runPending`.
final class InlineLoop: IOLoop, @unchecked Sendable {
    private var pending: [() -> Void] = []

    var index: Int { 0 }
    var inEventLoop: Bool { true }
    func execute(_ task: @escaping @Sendable () -> Void) { pending.append(task) }

    func runPending() {
        var rounds = 0
        while !pending.isEmpty, rounds < 16 {
            rounds += 1
            let tasks = pending
            pending = []
            for t in tasks { t() }
        }
    }

    var nowNanos: UInt64 { 0 }
    func schedule(afterNanos: UInt64, _ task: @escaping () -> Void) {}
    func scheduleFlush(_ channel: Channel) {}
    func closeChannel(_ channel: Channel, reason: CloseReason) {}
    func register(fd: Int32, peer: String, handler: any ChannelHandler) -> Channel { fatalError("InlineLoop has no sockets") }
    func listen(fd: Int32, onAccept: @escaping (Int32) -> Void) {}
    func stopListening(fd: Int32) {}
    func forEachChannel(_ body: (Channel) -> Void) {}
    var channelCount: Int { 0 }
    func shutdown() {}
}
