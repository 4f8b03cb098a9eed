import Testing
@testable import FastPush

/// ADS behaviour on a DiscoveryServer without sockets: istio-push-semantics.md cases 35–38,
/// scoping by exportTo, incremental EDS (57–59) and the no-ping-pong rule.
@Suite struct ADSBehaviourTests {
    static let echoCluster = ResourceNames.outboundCluster(port: 8080, host: "echo.demo.svc.cluster.local")

    /// An Envoy-style client: wildcard CDS, EDS for what CDS returned, wildcard LDS, RDS.
    func envoy(_ server: DiscoveryServer, namespace: String) -> TestClient {
        let c = TestClient(server, id: "sidecar~10.0.0.9~app.\(namespace)~\(namespace).svc.cluster.local")
        c.send(.cds)
        c.ack(.cds)
        let clusters = c.last(.cds)!.resources.count
        #expect(clusters > 0)
        c.send(.eds, names: clusterNames(c))
        c.ack(.eds, names: clusterNames(c))
        c.send(.lds)
        c.ack(.lds)
        let routes = server.pushContext.view(for: namespace).ports.map(String.init)
        c.send(.rds, names: routes)
        c.ack(.rds, names: routes)
        return c
    }

    func clusterNames(_ c: TestClient) -> [String] {
        // Cluster.name is field 1 of the Any's value: read it with the wire reader.
        c.last(.cds)!.resources.map { any in
            any.value.withUnsafeBytes { buf -> String in
                var r = ProtoReader(buf)
                while let (f, _) = try! r.next() {
                    if f == 1 { return try! r.readString() }
                    try! r.skip(wireType: r.wireType)
                }
                return ""
            }
        }
    }

    @Test func initialRequestsAreAnsweredAndACKsAreNot() {
        let server = Fixtures.server()
        let c = envoy(server, namespace: "demo")
        let count = c.received.count
        #expect(count == 4)
        // ACKs again: still nothing new (no ping-pong).
        c.ack(.cds)
        c.ack(.lds)
        #expect(c.received.count == count)
        // Every response has a version and a nonce unique on the stream.
        let nonces = c.received.map(\.nonce)
        #expect(Set(nonces).count == nonces.count && !nonces.contains(""))
        #expect(c.received.allSatisfy { !$0.versionInfo.isEmpty })
    }

    @Test("case 35: a full push brings a greater version and a new nonce")
    func fullPushBumpsVersion() throws {
        let server = Fixtures.server()
        let c = envoy(server, namespace: "demo")
        let before = try #require(c.last(.cds))
        server.updateRegistry(RegistrySnapshot(services: [Fixtures.echo, Fixtures.ledger, Fixtures.privateSvc,
                                                          Fixtures.service("new.demo.svc.cluster.local", ns: "demo")]))
        server.drainQueue()
        let after = try #require(c.last(.cds))
        #expect(UInt64(after.versionInfo)! > UInt64(before.versionInfo)!)
        #expect(after.nonce != before.nonce)
        #expect(after.resources.count == before.resources.count + 1)
    }

    @Test("case 36: the same proxy reconnects; only the open connection gets pushes")
    func onlyNewConnectionPushed() {
        let server = Fixtures.server()
        let old = envoy(server, namespace: "demo")
        old.close()
        let new = envoy(server, namespace: "demo")
        let oldCount = old.received.count, newCount = new.received.count
        server.pushNow(PushRequest(full: true, configsUpdated: [ConfigKey(kind: .serviceEntry, name: "echo.demo.svc.cluster.local", namespace: "demo")],
                                   reason: [.service: 1]))
        #expect(old.received.count == oldCount)
        #expect(new.received.count > newCount)
    }

    @Test("case 37: a connection with an empty node id never receives pushes")
    func emptyNodeIDNotPushed() {
        let server = Fixtures.server()
        let c = TestClient(server, id: "")
        c.send(.cds)
        #expect(c.received.count == 1)
        c.ack(.cds)
        server.pushNow(PushRequest(full: true, forced: true, configsUpdated: [], reason: [.debug: 1]))
        #expect(c.received.count == 1)
    }

    @Test("case 38: reconnect — EDS first is answered; after CDS the EDS ACK is answered too (warming)")
    func reconnectWarming() {
        let server = Fixtures.server()
        let c = TestClient(server)
        c.send(.eds, names: [Self.echoCluster], nonce: "nonce-from-old-server", version: "42")
        #expect(c.received(.eds).count == 1)
        c.send(.cds, version: "42")
        #expect(c.received(.cds).count == 1)
        c.ack(.eds, names: [Self.echoCluster])
        #expect(c.received(.eds).count == 2)
        // The next plain ACK is a plain ACK again.
        c.ack(.eds, names: [Self.echoCluster])
        #expect(c.received(.eds).count == 2)
    }

    /// A request answered from a snapshot whose push has not reached the stream yet must not hide
    /// that push: the deleted service's cluster must still leave CDS (it did not, when answering
    /// a request moved the view ProxyNeedsPush compares with).
    @Test func requestBetweenPublishAndPushDoesNotSwallowThePush() throws {
        let server = Fixtures.server()
        let c = envoy(server, namespace: "demo")
        let ledger = ResourceNames.outboundCluster(port: 7070, host: "ledger.payments.svc.cluster.local")
        #expect(clusterNames(c).contains(ledger))
        server.updateRegistry(RegistrySnapshot(services: [Fixtures.echo, Fixtures.privateSvc]))
        let names = clusterNames(c) + ["outbound|1||late.invalid"]
        c.send(.eds, names: names, nonce: c.last(.eds)!.nonce)
        let cdsBefore = c.received(.cds).count
        server.drainQueue()
        #expect(c.received(.cds).count == cdsBefore + 1)
        #expect(!clusterNames(c).contains(ledger))
    }

    /// A full push that adds one service encodes that service's cluster and load assignment,
    /// and carries every other encoded resource over from the previous snapshot.
    @Test func fullPushReencodesOnlyTheChangedService() throws {
        let server = Fixtures.server()
        let c = envoy(server, namespace: "demo")
        let added = Fixtures.service("new.demo.svc.cluster.local", ns: "demo")
        server.updateRegistry(RegistrySnapshot(services: [Fixtures.echo, Fixtures.ledger, Fixtures.privateSvc, added]))
        server.drainQueue()
        let push = server.pushContext
        #expect(clusterNames(c).contains(ResourceNames.outboundCluster(port: 8080, host: "new.demo.svc.cluster.local")))
        #expect(push.cache.resources(.cds).builds.load(ordering: .relaxed) == 1)
        #expect(push.cache.resources(.cds).count == clusterNames(c).count)
        // Changing echo's endpoints and its ports (a full change of echo) re-encodes echo only.
        var echo = Fixtures.echo
        echo.ports.append(ServicePort(number: 9999, name: "grpc-9999"))
        server.updateRegistry(RegistrySnapshot(services: [echo, Fixtures.ledger, Fixtures.privateSvc, added]))
        server.drainQueue()
        let next = server.pushContext
        #expect(next.cache.resources(.cds).builds.load(ordering: .relaxed) == 2, "echo's two clusters")
        #expect(clusterNames(c).contains(ResourceNames.outboundCluster(port: 9999, host: "echo.demo.svc.cluster.local")))
    }

    /// Pushes do not wait for ACKs (as in Istio): each change is one new version, never a resend.
    @Test func clientThatNeverACKsGetsEachNewVersionOnce() throws {
        let server = Fixtures.server()
        let c = TestClient(server)
        c.send(.cds)
        c.send(.eds, names: [Self.echoCluster])
        #expect(c.received.count == 2)
        var echo = Fixtures.echo
        for i in 0..<5 {
            echo.endpoints.append(WorkloadEndpoint(address: "10.0.1.\(i)"))
            server.updateRegistry(RegistrySnapshot(services: [echo, Fixtures.ledger, Fixtures.privateSvc]))
            server.drainQueue()
            #expect(c.received.count == 3 + i, "one EDS per change")
        }
        let eds = c.received(.eds)
        #expect(eds.count == 6)
        let versions = eds.map { UInt64($0.versionInfo)! }
        #expect(zip(versions, versions.dropFirst()).allSatisfy { $0 < $1 }, "versions only grow: \(versions)")
        #expect(Set(eds.map(\.nonce)).count == eds.count)
        // Nothing was ACKed, and nothing is resent when nothing changes.
        #expect(c.conn.snapshot.watched[.eds]?.nonceAcked.isEmpty ?? false)
        server.pushNow(PushRequest(full: false, configsUpdated: [], reason: [.endpoint: 1]))
        #expect(c.received.count == 7)
    }

    @Test func nackIsNotAnsweredAndCounted() {
        let server = Fixtures.server()
        let c = envoy(server, namespace: "demo")
        let n = c.received.count
        let last = c.last(.eds)!
        c.send(.eds, names: clusterNames(c), nonce: last.nonce, version: "", error: RPCStatus(code: 3, message: "bad"))
        #expect(c.received.count == n)
        #expect(server.metrics.rejects[XdsType.eds.rawValue].count == 1)
        #expect(c.conn.snapshot.watched[.eds]?.lastError?.contains("bad") == true)
    }

    @Test func endpointChangeIsIncrementalEDSToWatchersOnly() throws {
        let server = Fixtures.server()
        let demo = envoy(server, namespace: "demo")
        let grpc = TestClient(server, namespace: "payments")
        grpc.send(.lds, names: ["ledger.payments.svc.cluster.local:7070"])
        grpc.ack(.lds, names: ["ledger.payments.svc.cluster.local:7070"])
        let d0 = demo.received.count, g0 = grpc.received.count
        var echo = Fixtures.echo
        echo.endpoints.append(WorkloadEndpoint(address: "10.0.0.3", locality: Locality(istioString: "r/a")))
        server.updateRegistry(RegistrySnapshot(services: [echo, Fixtures.ledger, Fixtures.privateSvc]))
        server.drainQueue()
        // EDS only, with only the changed cluster, to the proxy that watches it.
        let new = demo.received[d0...]
        #expect(new.count == 1)
        #expect(new.first?.typeURL == XdsType.eds.typeURL)
        #expect(new.first?.resources.count == 1)
        #expect(grpc.received.count == g0)
    }

    @Test func emptyEndpointListKeepsTheServiceAndSendsAnEmptyAssignment() throws {
        let server = Fixtures.server()
        let demo = envoy(server, namespace: "demo")
        let d0 = demo.received.count
        var echo = Fixtures.echo
        echo.endpoints = []
        let diff = server.updateRegistry(RegistrySnapshot(services: [echo, Fixtures.ledger, Fixtures.privateSvc]))
        #expect(diff.fullChanges.isEmpty && diff.endpointChanges.count == 1)
        server.drainQueue()
        let new = Array(demo.received[d0...])
        #expect(new.map(\.typeURL) == [XdsType.eds.typeURL])
        #expect(server.pushContext.service(namespace: "demo", hostname: Fixtures.echo.hostname) != nil)
    }

    @Test func exportToScopesPushes() {
        let server = Fixtures.server()
        let demo = envoy(server, namespace: "demo")
        let payments = envoy(server, namespace: "payments")
        // private (exportTo ".") is visible in payments only.
        #expect(clusterNames(payments).contains { $0.contains("private.payments") })
        #expect(!clusterNames(demo).contains { $0.contains("private.payments") })
        let d0 = demo.received.count, p0 = payments.received.count
        let added = Fixtures.service("secret.payments.svc.cluster.local", ns: "payments", ports: [9100],
                                     exportTo: .namespaces([], includesOwn: true))
        server.updateRegistry(RegistrySnapshot(services: [Fixtures.echo, Fixtures.ledger, Fixtures.privateSvc, added]))
        server.drainQueue()
        #expect(demo.received.count == d0)
        let types = Set(payments.received[p0...].map(\.typeURL))
        #expect(types == [XdsType.cds.typeURL, XdsType.lds.typeURL])
        // The routes it watches did not change, so none is resent; the new listener makes the
        // client ask for route 9100, which is answered.
        payments.ack(.lds)
        let routes = server.pushContext.view(for: "payments").ports.map(String.init)
        #expect(routes.contains("9100"))
        let r0 = payments.received(.rds).count
        payments.send(.rds, names: routes, nonce: payments.last(.rds)!.nonce, version: payments.last(.rds)!.versionInfo)
        #expect(payments.received(.rds).count == r0 + 1)
        // Only the newly subscribed route (Istio's Delta.Subscribed): the others are unchanged.
        #expect(payments.last(.rds)!.resources.count == 1)
        #expect(String(decoding: payments.last(.rds)!.resources[0].value, as: UTF8.self).contains("9100"))
    }

    @Test func grownEDSSubscriptionGetsOnlyTheNewClusters() throws {
        let server = Fixtures.server()
        let c = TestClient(server, namespace: "demo")
        c.send(.eds, names: [Self.echoCluster])
        c.ack(.eds, names: [Self.echoCluster])
        let ledger = ResourceNames.outboundCluster(port: 7070, host: "ledger.payments.svc.cluster.local")
        c.ack(.eds, names: [Self.echoCluster, ledger])
        let r = try #require(c.last(.eds))
        #expect(c.received(.eds).count == 2)
        #expect(r.resources.count == 1)
        #expect(String(decoding: r.resources[0].value, as: UTF8.self).contains("ledger"))
        // A later push is still complete, and not held back by that partial response.
        var echo = Fixtures.echo
        echo.endpoints.append(WorkloadEndpoint(address: "10.0.0.9"))
        server.updateRegistry(RegistrySnapshot(services: [echo, Fixtures.ledger, Fixtures.privateSvc]))
        server.drainQueue()
        #expect(c.received(.eds).count == 3)
    }

    @Test func removedServiceReachesProxiesThatSawIt() {
        let server = Fixtures.server()
        let demo = envoy(server, namespace: "demo")
        let d0 = demo.received.count
        server.updateRegistry(RegistrySnapshot(services: [Fixtures.echo, Fixtures.privateSvc]))
        server.drainQueue()
        let cds = demo.received[d0...].filter { $0.typeURL == XdsType.cds.typeURL }
        #expect(cds.count == 1)
        #expect(!clusterNames(demo).contains { $0.contains("ledger") })
    }

    @Test func identicalPushIsNotResent() {
        let server = Fixtures.server()
        let demo = envoy(server, namespace: "demo")
        let d0 = demo.received.count
        // A forced push with nothing changed: every body equals what the stream has.
        server.pushNow(PushRequest(full: true, forced: true, configsUpdated: [], reason: [.debug: 1]))
        #expect(demo.received.count == d0)
    }

    @Test func responsesAreEncodedOnceAndShared() throws {
        let server = Fixtures.server()
        let clients = (0..<50).map { _ in envoy(server, namespace: "demo") }
        let push = server.pushContext
        // One CDS body for the namespace, written to all fifty streams as the same object.
        #expect(push.cache.responses(.cds).builds.load(ordering: .relaxed) == 1)
        let first = try #require(clients[0].transport.stream.bodies.first)
        #expect(clients.allSatisfy { $0.transport.stream.bodies.first === first })
        // A push builds the changed body once more, and shares it again.
        var echo = Fixtures.echo
        echo.endpoints.append(WorkloadEndpoint(address: "10.0.0.7"))
        server.updateRegistry(RegistrySnapshot(services: [echo, Fixtures.ledger, Fixtures.privateSvc]))
        server.drainQueue()
        let eds = server.pushContext.cache.responses(.eds)
        #expect(eds.builds.load(ordering: .relaxed) == 1)
        let pushed = clients.map { $0.transport.stream.bodies.last! }
        #expect(pushed.allSatisfy { $0 === pushed[0] })
        // CDS did not change: its cache is carried over, not rebuilt.
        #expect(server.pushContext.cache.responses(.cds) === push.cache.responses(.cds))
    }

    @Test func unknownTypeAndMissingNodeCloseTheStream() {
        let server = Fixtures.server()
        let c = TestClient(server)
        var r = DiscoveryRequest()
        r.typeURL = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"
        r.node = c.node
        guard case let .close(status) = server.process(r, on: c.conn) else { Issue.record("not closed"); return }
        #expect(status.code == .invalidArgument && status.message.contains("unknown type_url"))
        // A huge type_url is not repeated whole in the status (nor kept by the server).
        r.typeURL = String(repeating: "x", count: 1 << 20)
        let c3 = TestClient(server)
        guard case let .close(s3) = server.process(r, on: c3.conn) else { Issue.record("not closed"); return }
        #expect(s3.code == .invalidArgument && s3.message.utf8.count < 400)
        var noNode = DiscoveryRequest()
        noNode.typeURL = XdsType.cds.typeURL
        let c2 = TestClient(server)
        guard case let .close(s2) = server.process(noNode, on: c2.conn) else { Issue.record("not closed"); return }
        #expect(s2.code == .invalidArgument && s2.message.contains("node"))
    }
}

extension ADSBehaviourTests {
    @Test func afterANackTheNextResponseIsComplete() throws {
        let server = Fixtures.server()
        let c = TestClient(server, namespace: "demo")
        let ledger = ResourceNames.outboundCluster(port: 7070, host: "ledger.payments.svc.cluster.local")
        c.send(.eds, names: [Self.echoCluster, ledger])
        let first = try #require(c.last(.eds))
        c.send(.eds, names: [Self.echoCluster, ledger], nonce: first.nonce, error: RPCStatus(code: 3, message: "no"))
        // An endpoint change of echo alone: the push carries both clusters, healing the client.
        var echo = Fixtures.echo
        echo.endpoints.append(WorkloadEndpoint(address: "10.0.0.8"))
        server.updateRegistry(RegistrySnapshot(services: [echo, Fixtures.ledger, Fixtures.privateSvc]))
        server.drainQueue()
        #expect(c.received(.eds).count == 2)
        #expect(c.last(.eds)?.resources.count == 2)
        c.ack(.eds, names: [Self.echoCluster, ledger])
        // Healed: the next change is incremental again.
        echo.endpoints.append(WorkloadEndpoint(address: "10.0.0.9"))
        server.updateRegistry(RegistrySnapshot(services: [echo, Fixtures.ledger, Fixtures.privateSvc]))
        server.drainQueue()
        #expect(c.last(.eds)?.resources.count == 1)
    }
}

extension ADSBehaviourTests {
    /// A stale request carrying a new subscription must not make the following ACK with the
    /// same names look unchanged (found by the interop NACK test).
    @Test func staleRequestDoesNotHideTheNextSubscriptionChange() throws {
        let server = Fixtures.server()
        let c = TestClient(server, namespace: "demo")
        let ledger = ResourceNames.outboundCluster(port: 7070, host: "ledger.payments.svc.cluster.local")
        c.send(.eds, names: [Self.echoCluster])
        let first = try #require(c.last(.eds))
        c.ack(.eds, names: [Self.echoCluster])
        // A push arrives (new nonce); the client meanwhile sends its grown subscription with
        // the old nonce (stale), then ACKs the push with the same grown names.
        var echo = Fixtures.echo
        echo.endpoints.append(WorkloadEndpoint(address: "10.0.0.8"))
        server.updateRegistry(RegistrySnapshot(services: [echo, Fixtures.ledger, Fixtures.privateSvc]))
        server.drainQueue()
        let pushed = try #require(c.last(.eds))
        #expect(pushed.nonce != first.nonce)
        c.send(.eds, names: [Self.echoCluster, ledger], nonce: first.nonce, version: first.versionInfo)
        #expect(c.received(.eds).count == 2)
        c.send(.eds, names: [Self.echoCluster, ledger], nonce: pushed.nonce, version: pushed.versionInfo)
        #expect(c.received(.eds).count == 3)
        #expect(String(decoding: c.last(.eds)!.resources[0].value, as: UTF8.self).contains("ledger"))
    }
}
