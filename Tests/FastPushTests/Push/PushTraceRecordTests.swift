import Testing
@testable import FastPush

/// Push traces without sockets: a DiscoveryServer driven by test clients (XdsHarness), each
/// push's trace read back from `server.traces`.
@Suite struct PushTraceRecordTests {
    static let echoCluster = "outbound|8080||echo.demo.svc.cluster.local"

    /// An Envoy-style client in namespace demo that watches the echo cluster, synced and ACKed.
    static func client(_ server: DiscoveryServer, _ id: String = "sidecar~10.0.0.1~app.demo~demo.svc.cluster.local") -> TestClient {
        let c = TestClient(server, id: id, namespace: "demo")
        c.send(.cds)
        c.ack(.cds)
        c.send(.eds, names: [echoCluster])
        c.ack(.eds, names: [echoCluster])
        return c
    }

    /// An endpoint-only change of echo (published; connections enqueued, not yet pushed).
    static func moveEndpoints(_ server: DiscoveryServer, _ i: Int) {
        var echo = Fixtures.echo
        echo.endpoints = [WorkloadEndpoint(address: "10.0.9.\(i)")]
        server.updateRegistry(RegistrySnapshot(services: [echo, Fixtures.ledger, Fixtures.privateSvc]))
    }

    static func slot(_ c: TestClient) -> TraceSlot { c.conn.state.withLock { $0.trace } }

    static func ackEDS(_ c: TestClient, _ r: DiscoveryResponse) {
        c.send(.eds, names: [echoCluster], nonce: r.nonce, version: r.versionInfo)
    }

    @Test func stagesRunInOrderFromTheConfigEventToTheACK() throws {
        let server = Fixtures.server()
        let c = Self.client(server)
        Self.moveEndpoints(server, 1)
        let t = try #require(server.traces.recent.first)
        #expect(t.enqueued.load(ordering: .relaxed) == 1)
        #expect(t.processed.load(ordering: .relaxed) == 0)
        server.drainQueue()
        // Written, not yet ACKed: the connection's slot holds the push, in order.
        let s = Self.slot(c)
        #expect(s.seq == t.seq)
        #expect(s.dequeued != 0)
        #expect(s.dequeued <= s.generated && s.generated <= s.submitted && s.submitted <= s.completed)
        #expect(s.pendingTypes != 0)
        #expect(!t.isFinished)
        #expect(t.pushed.load(ordering: .relaxed) == 1 && t.folded.load(ordering: .relaxed) == 0)

        Self.ackEDS(c, try #require(c.last(.eds)))
        #expect(Self.slot(c).seq == 0, "the ACK closed the record")
        #expect(t.acked.load(ordering: .relaxed) == 1)
        #expect(t.isFinished)
        // The fold stops at the first stage that ended before the one before it: a count of 1 in
        // every stage means enqueue <= dequeue <= generate <= submit <= complete <= ACK held.
        for stage in PushStage.allCases {
            #expect(t.durations[stage.rawValue].summary.count == 1, "\(stage)")
        }
        let ends = PushStage.allCases.map { t.offsets[$0.rawValue].summary.max }
        #expect(zip(ends, ends.dropFirst()).allSatisfy { $0 <= $1 }, "stage ends from the first event: \(ends)")
        let i = t.info
        #expect(i.firstEvent <= i.debounced && i.debounced <= i.built && i.built <= i.published)
        #expect(t.slowestConnections.count == 1)
        #expect(t.slowestConnections.first?.node == c.node.id)
    }

    @Test func anACKIsCreditedToThePushWhoseNonceItCarries() throws {
        let server = Fixtures.server()
        let c = Self.client(server)
        Self.moveEndpoints(server, 1)
        server.drainQueue()
        let r1 = try #require(c.last(.eds))
        let t1 = try #require(server.traces.recent.first)
        Self.moveEndpoints(server, 2)
        server.drainQueue()
        let r2 = try #require(c.last(.eds))
        let t2 = try #require(server.traces.recent.first)
        #expect(t1.seq != t2.seq && r1.nonce != r2.nonce)
        #expect(t1.superseded.load(ordering: .relaxed) == 1, "v1's record closed when v2 went out")
        #expect(t1.isFinished)

        Self.ackEDS(c, r1)  // late ACK of v1: not v2's
        #expect(t2.acked.load(ordering: .relaxed) == 0)
        #expect(t1.acked.load(ordering: .relaxed) == 0)
        #expect(Self.slot(c).seq == t2.seq && Self.slot(c).pendingTypes != 0)
        #expect(!t2.isFinished)

        Self.ackEDS(c, r2)
        #expect(t2.acked.load(ordering: .relaxed) == 1)
        #expect(t2.isFinished)
        #expect(t1.acked.load(ordering: .relaxed) == 0)
    }

    @Test func aNACKIsRecordedAgainstItsPush() throws {
        let server = Fixtures.server()
        let c = Self.client(server)
        let before = server.traces.metrics?.nacks.count ?? -1
        Self.moveEndpoints(server, 1)
        server.drainQueue()
        let t = try #require(server.traces.recent.first)
        let r = try #require(c.last(.eds))
        c.send(.eds, names: [Self.echoCluster], nonce: r.nonce, version: "", error: RPCStatus(code: 3, message: "bad endpoint"))
        #expect(t.nacked.load(ordering: .relaxed) == 1)
        #expect(t.acked.load(ordering: .relaxed) == 0)
        #expect(t.isFinished)
        #expect(t.slowestConnections.first?.outcome == .nacked)
        #expect(server.traces.metrics?.nacks.count == before + 1)
    }

    @Test func aMergedPushStartsAtItsFirstConfigEvent() throws {
        var a = PushRequest(full: false, configsUpdated: [], reason: [.endpoint: 1])
        a.firstEvent = 1_000
        var b = PushRequest(full: false, configsUpdated: [], reason: [.endpoint: 1])
        b.firstEvent = 5_000
        var ab = b
        ab.merge(a)
        #expect(ab.firstEvent == 1_000, "the earlier event wins, whichever order they merged in")
        var ba = a
        ba.merge(b)
        #expect(ba.firstEvent == 1_000)

        let server = Fixtures.server()
        let c = Self.client(server)
        let t0 = MonotonicClock.nanos()
        var first = PushRequest(full: false, configsUpdated: [], reason: [.endpoint: 1])
        first.firstEvent = t0
        var later = PushRequest(full: false, configsUpdated: [], reason: [.endpoint: 1])
        later.firstEvent = t0 + 50_000_000
        server.pushNow(PushRequest.merge(later, first)!)
        let t = try #require(server.traces.recent.first)
        #expect(t.info.firstEvent == t0)
        #expect(t.info.debounced >= t0)
        _ = c
    }

    @Test func pushesMergedInTheQueueAreAllAccountedFor() throws {
        let server = Fixtures.server()
        let c = Self.client(server)
        let n = c.received.count
        Self.moveEndpoints(server, 1)
        let t1 = try #require(server.traces.recent.first)
        Self.moveEndpoints(server, 2)
        let t2 = try #require(server.traces.recent.first)
        server.drainQueue()
        #expect(c.received.count == n + 1, "one push for both changes")
        #expect(t1.processed.load(ordering: .relaxed) == 1 && t1.pushed.load(ordering: .relaxed) == 0)
        #expect(t1.isFinished, "nothing of v1 itself is waited for")
        #expect(t2.pushed.load(ordering: .relaxed) == 1)
        Self.ackEDS(c, try #require(c.last(.eds)))
        #expect(t2.acked.load(ordering: .relaxed) == 1 && t2.isFinished)
    }

    @Test func theRingKeepsItsCapacityNewestFirst() {
        let traces = PushTraces(capacity: 10)
        #expect(traces.capacity == 16, "rounded up to a power of two")
        for seq in 1...200 as ClosedRange<UInt64> {
            var info = PushTrace.Info()
            info.version = seq + 1000
            traces.begin(seq: seq, info: info)
        }
        let recent = traces.recent
        #expect(recent.count == 16)
        #expect(recent.map(\.seq) == Array((185...200).reversed()))
        #expect(traces.trace(1) == nil && traces.trace(184) == nil)
        #expect(traces.trace(version: 1200)?.seq == 200)
        #expect(traces.trace(version: 1100) == nil)
    }

    @Test func memoryStaysBoundedUnderManyPushesAndConnections() throws {
        let server = Fixtures.server()
        let clients = (0..<60).map { Self.client(server, "sidecar~10.0.1.\($0)~app.demo~demo.svc.cluster.local") }
        for i in 0..<150 {
            Self.moveEndpoints(server, i % 200 + 1)
            server.drainQueue()
            for c in clients where i % 3 != 0 { Self.ackEDS(c, c.last(.eds)!) }
        }
        let recent = server.traces.recent
        #expect(recent.count == server.traces.capacity)
        #expect(recent.allSatisfy { $0.slowestConnections.count <= PushTrace.slowestKept })
        #expect(recent.contains { $0.slowestConnections.count == PushTrace.slowestKept }, "60 connections, 20 kept")
        // A connection holds at most one open record: the newest push it was sent.
        let newest = recent.first!.seq
        #expect(clients.allSatisfy { Self.slot($0).seq == 0 || Self.slot($0).seq == newest })
    }

    @Test func aClientThatNeverACKsIsPendingUntilTheTimeout() throws {
        let server = Fixtures.server()
        let acking = Self.client(server)
        let silent = Self.client(server, "sidecar~10.0.0.2~silent.demo~demo.svc.cluster.local")
        Self.moveEndpoints(server, 1)
        server.drainQueue()
        let t = try #require(server.traces.recent.first)
        Self.ackEDS(acking, try #require(acking.last(.eds)))
        #expect(t.acked.load(ordering: .relaxed) == 1)
        #expect(!t.isFinished)
        let pending = PushzView.pending(server)[t.seq] ?? []
        #expect(pending.map(\.0) == [silent.conn.connectionID])
        let json = PushzView.json(t, server: server, detail: true, pending: PushzView.pending(server))
        #expect(json.contains("\"state\":\"in_progress\"") && json.contains("\"pending_count\":1"))
        // Swept after the ACK timeout: finished as timed out, the silent client still listed.
        server.traces.sweep(now: MonotonicClock.nanos() + server.traces.ackTimeoutNanos + 1)
        #expect(t.isFinished)
        let after = PushzView.json(t, server: server, detail: true, pending: PushzView.pending(server))
        #expect(after.contains("\"state\":\"timed_out\""))
        #expect(after.contains(silent.conn.connectionID))
    }
}
