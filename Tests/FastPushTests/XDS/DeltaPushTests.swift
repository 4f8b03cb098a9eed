import Testing
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
@testable import FastPush

/// More of delta-xds-semantics.md section 9 (fastpilot's expected results), on a DiscoveryServer
/// without sockets: the cases DeltaADSTests leaves out, invariants over a long scenario, memory
/// bounds of the interning and patch caches, and pushes racing requests on several threads.
@Suite struct DeltaPushTests {
    static let echo = ResourceNames.outboundCluster(port: 8080, host: "echo.demo.svc.cluster.local")
    static let ledger = ResourceNames.outboundCluster(port: 7070, host: "ledger.payments.svc.cluster.local")
    static let privateCluster = ResourceNames.outboundCluster(port: 9000, host: "private.payments.svc.cluster.local")
    static let base = [Fixtures.echo, Fixtures.ledger, Fixtures.privateSvc]

    static func id(_ namespace: String, _ n: Int = 9) -> String {
        "sidecar~10.0.0.\(n)~app.\(namespace)~\(namespace).svc.cluster.local"
    }

    /// Envoy's delta flow: wildcard CDS, EDS by name, wildcard LDS, RDS by name, each ACKed.
    static func envoy(_ server: DiscoveryServer, namespace: String = "demo", n: Int = 9) -> DeltaTestClient {
        let c = DeltaTestClient(server, id: id(namespace, n))
        c.send(.cds)
        c.ack(.cds)
        c.send(.eds, subscribe: c.names(c.last(.cds)))
        c.ack(.eds)
        c.send(.lds)
        c.ack(.lds)
        c.send(.rds, subscribe: server.pushContext.view(for: namespace).ports.map(String.init))
        c.ack(.rds)
        c.apply()
        return c
    }

    static func since(_ c: DeltaTestClient, _ n: Int) -> [DeltaDiscoveryResponse] { Array(c.received[n...]) }

    static func update(_ server: DiscoveryServer, _ services: [Service]) {
        server.updateRegistry(RegistrySnapshot(services: services))
        server.drainQueue()
    }

    /// ACKs the last response of every type that got one since `n`.
    static func ackAll(_ c: DeltaTestClient, since n: Int) {
        for t in XdsType.pushOrder where c.received[n...].contains(where: { $0.typeURL == t.typeURL }) { c.ack(t) }
        c.apply()
    }

    static func expectWellFormed(_ responses: [DeltaDiscoveryResponse], sourceLocation: SourceLocation = #_sourceLocation) {
        for r in responses {
            let problems = DeltaInvariants.problems(r)
            #expect(problems.isEmpty, "\(problems)", sourceLocation: sourceLocation)
        }
    }

    // MARK: stream and requests

    @Test("case 2: a later request with another node is ignored; the first node stays")
    func laterNodeIgnored() throws {
        let server = Fixtures.server()
        let first = Self.id("demo")
        let c = DeltaTestClient(server, id: first)
        c.send(.cds)
        c.ack(.cds)
        var other = Node()
        other.id = Self.id("payments", 7)
        other.metadata = ProtoStruct(fields: ["NAMESPACE": .string("payments")])
        var r = DeltaDiscoveryRequest()
        r.typeURL = EnvoyTypeURL.clusterLoadAssignment
        r.resourceNamesSubscribe = [Self.privateCluster]
        r.node = other
        // Decoded with its node (as if the server read it): the node must still not count.
        let decoded = try r.encode().withUnsafeBytes { try DeltaDiscoveryRequest(decoding: $0, decodingNode: true) }
        #expect(decoded.node?.id == other.id)
        #expect(server.process(decoded, on: c.conn) == .ok)
        #expect(c.conn.proxy?.id == first)
        #expect(c.conn.proxy?.namespace == "demo")
        #expect(server.connectionCount == 1)
        // Answered in the first node's scope: payments' private service is invisible from demo.
        let eds = try #require(c.last(.eds))
        #expect(c.names(eds) == [Self.privateCluster])
        #expect(try EnvoyTestDecode.cla(eds.resources[0]).endpointCount == 0)
        // A stream whose first node is in payments does see it.
        let p = DeltaTestClient(server, id: Self.id("payments", 7))
        p.send(.eds, subscribe: [Self.privateCluster])
        #expect(try EnvoyTestDecode.cla(try #require(p.last(.eds)).resources[0]).endpointCount == 1)
        // A later node with an empty id neither closes the stream nor changes it.
        var empty = DeltaDiscoveryRequest()
        empty.typeURL = EnvoyTypeURL.listener
        empty.node = Node()
        #expect(server.process(empty, on: c.conn) == .ok)
        #expect(c.conn.proxy?.id == first)
        #expect(c.last(.lds) != nil)
        // Pushes follow the first node's scope too: exporting private to demo reaches c.
        var exported = Fixtures.privateSvc
        exported.exportTo = .all
        let n = c.received.count
        Self.update(server, [Fixtures.echo, Fixtures.ledger, exported])
        let eds2 = try #require(Self.since(c, n).first { $0.typeURL == EnvoyTypeURL.clusterLoadAssignment })
        #expect(c.names(eds2) == [Self.privateCluster])
        #expect(try EnvoyTestDecode.cla(eds2.resources[0]).endpointCount == 1)
    }

    @Test("case 14: an ACK that also subscribes C is answered with exactly C, and counts as an ACK")
    func ackWithSubscribe() throws {
        let server = Fixtures.server()
        let c = DeltaTestClient(server, namespace: "demo")
        c.send(.eds, subscribe: [Self.echo])
        let n1 = try #require(c.last(.eds)).nonce
        c.send(.eds, subscribe: [Self.ledger], nonce: n1)
        let r = try #require(c.last(.eds))
        #expect(c.received(.eds).count == 2)
        #expect(c.names(r) == [Self.ledger] && r.removedResources.isEmpty)
        #expect(r.nonce != n1)
        let w = try #require(c.conn.snapshot.watched[.eds])
        #expect(w.nonceAcked == n1)
        #expect(w.nonceSent == r.nonce)
        #expect(w.names.names == [Self.echo, Self.ledger].sorted())
        #expect(w.held?.names == [Self.echo, Self.ledger].sorted())
        // Named CDS: the same.
        let cds = DeltaTestClient(server, namespace: "demo")
        cds.send(.cds, subscribe: [Self.echo])
        #expect(cds.names(cds.last(.cds)) == [Self.echo])
        cds.ack(.cds, subscribe: [Self.ledger])
        #expect(cds.names(cds.last(.cds)) == [Self.ledger])
        #expect(cds.last(.cds)?.removedResources == [])
        #expect(cds.conn.snapshot.watched[.cds]?.wildcard == false)
    }

    @Test("case 17: RDS for an unknown route gets an empty RouteConfiguration, never a removal")
    func unknownRoute() throws {
        let server = Fixtures.server()
        let c = DeltaTestClient(server, namespace: "demo")
        c.send(.rds, subscribe: ["9999", "nowhere.invalid:1"])
        let r = try #require(c.last(.rds))
        #expect(Set(c.names(r)) == ["9999", "nowhere.invalid:1"])
        #expect(r.removedResources.isEmpty)
        for res in r.resources {
            #expect(res.resource?.typeURL == EnvoyTypeURL.routeConfiguration)
            let route = try EnvoyTestDecode.route(res)
            #expect(route.name == res.name && route.virtualHosts == 0)
        }
        c.ack(.rds)
        // A service on that port appears: the route is pushed with its virtual host, alone.
        let n = c.received.count
        let added = Fixtures.service("late.demo.svc.cluster.local", ns: "demo", ports: [9999])
        Self.update(server, Self.base + [added])
        let pushed = Self.since(c, n)
        #expect(pushed.count == 1)
        #expect(c.names(pushed.first) == ["9999"])
        #expect(try EnvoyTestDecode.route(try #require(pushed.first?.resources.first)).virtualHosts == 1)
        c.ack(.rds)
        // It goes away again: an empty RouteConfiguration, still no removal.
        let m = c.received.count
        Self.update(server, Self.base)
        let gone = Self.since(c, m)
        #expect(gone.count == 1)
        #expect(c.names(gone.first) == ["9999"] && gone.first?.removedResources == [])
        #expect(try EnvoyTestDecode.route(try #require(gone.first?.resources.first)).virtualHosts == 0)
    }

    @Test("case 22: after a CDS request on a stream watching EDS, only the CLAs of the clusters it carried follow")
    func cdsRequestThenEDS() throws {
        let server = Fixtures.server()
        let first = Self.envoy(server)
        let held = first.held
        first.close()
        let eds = try #require(held[.eds])
        #expect(Set(eds.keys) == [Self.echo, Self.ledger])
        // Reconnect, EDS first, every version matching: an empty answer.
        let c = DeltaTestClient(server, id: Self.id("demo"))
        c.send(.eds, subscribe: eds.keys.sorted(), initial: eds.map { ($0.key, $0.value) })
        #expect(c.received.count == 1)
        #expect(c.received.first?.resources.isEmpty == true && c.received.first?.removedResources.isEmpty == true)
        // CDS claims echo at an old version (""), ledger at its own.
        var claims = try #require(held[.cds])
        claims[Self.echo] = ""
        c.send(.cds, initial: claims.map { ($0.key, $0.value) })
        let after = Self.since(c, 1)
        #expect(after.map(\.typeURL) == [EnvoyTypeURL.cluster, EnvoyTypeURL.clusterLoadAssignment])
        guard after.count == 2 else { return }
        #expect(c.names(after[0]) == [Self.echo] && after[0].removedResources.isEmpty)
        // Its CLA follows though unchanged (the cluster warms again); ledger's does not.
        #expect(c.names(after[1]) == [Self.echo])
        #expect(after[1].resources.first?.version == eds[Self.echo])
        // A CDS request that carries no cluster (only a removal): no EDS follows.
        c.ack(.cds)
        let n = c.received.count
        c.send(.cds, subscribe: ["outbound|1||gone.invalid"], nonce: c.last(.cds)!.nonce)
        let removal = Self.since(c, n)
        #expect(removal.map(\.typeURL) == [EnvoyTypeURL.cluster])
        #expect(removal.first?.resources.isEmpty == true && removal.first?.removedResources == ["outbound|1||gone.invalid"])
        // Re-subscribing ledger explicitly sends it again, and its CLA with it.
        c.ack(.cds)
        let m = c.received.count
        c.send(.cds, subscribe: [Self.ledger], nonce: c.last(.cds)!.nonce)
        let again = Self.since(c, m)
        #expect(again.map(\.typeURL) == [EnvoyTypeURL.cluster, EnvoyTypeURL.clusterLoadAssignment])
        #expect(again.map { c.names($0) } == [[Self.ledger], [Self.ledger]])
        Self.expectWellFormed(c.received)
    }

    // MARK: responses and pushes

    @Test("case 25: an endpoint change batched with a service change sends that CLA and only what the other change altered")
    func batchedEndpointAndServiceChange() throws {
        let server = Fixtures.server()
        let c = Self.envoy(server)
        let n = c.received.count
        // One registry change holding both: echo's endpoints, and a new service on port 8080.
        var echo = Fixtures.echo
        echo.endpoints.append(WorkloadEndpoint(address: "10.0.0.3"))
        let extra = Fixtures.service("extra.demo.svc.cluster.local", ns: "demo", ports: [8080])
        Self.update(server, [echo, Fixtures.ledger, Fixtures.privateSvc, extra])
        let after = Self.since(c, n)
        #expect(after.map(\.typeURL) == [EnvoyTypeURL.cluster, EnvoyTypeURL.clusterLoadAssignment, EnvoyTypeURL.routeConfiguration])
        #expect(after.map { c.names($0) } == [[ResourceNames.outboundCluster(port: 8080, host: "extra.demo.svc.cluster.local")],
                                               [Self.echo], ["8080"]])
        #expect(after.allSatisfy { $0.removedResources.isEmpty })
        Self.ackAll(c, since: n)
        // Two pushes merged in the queue: an endpoint-only one, then a full one.
        let m = c.received.count
        echo.endpoints.removeLast()
        server.updateRegistry(RegistrySnapshot(services: [echo, Fixtures.ledger, Fixtures.privateSvc, extra]))
        let extra2 = Fixtures.service("extra2.demo.svc.cluster.local", ns: "demo", ports: [8080])
        server.updateRegistry(RegistrySnapshot(services: [echo, Fixtures.ledger, Fixtures.privateSvc, extra, extra2]))
        server.drainQueue()
        let merged = Self.since(c, m)
        #expect(merged.map(\.typeURL) == [EnvoyTypeURL.cluster, EnvoyTypeURL.clusterLoadAssignment, EnvoyTypeURL.routeConfiguration])
        #expect(merged.map { c.names($0) } == [[ResourceNames.outboundCluster(port: 8080, host: "extra2.demo.svc.cluster.local")],
                                                [Self.echo], ["8080"]])
        Self.expectWellFormed(c.received)
    }

    @Test("case 26: a service update that changes its endpoints' port sends exactly its CLA, nothing unchanged")
    func serviceUpdate() throws {
        let server = Fixtures.server()
        let c = Self.envoy(server)
        let before = try #require(c.held[.eds]?[Self.echo])
        let n = c.received.count
        var echo = Fixtures.echo
        echo.ports = [ServicePort(number: 8080, name: "grpc-8080", targetPort: 9443)]
        Self.update(server, [echo, Fixtures.ledger, Fixtures.privateSvc])
        let after = Self.since(c, n)
        #expect(after.count == 1, "\(after.map(\.typeURL))")
        let r = try #require(after.first)
        #expect(r.typeURL == EnvoyTypeURL.clusterLoadAssignment)
        #expect(c.names(r) == [Self.echo] && r.removedResources.isEmpty)
        #expect(r.resources.first?.version != before)
        #expect(try EnvoyTestDecode.endpointPorts(r.resources[0]) == [9443, 9443])
    }

    @Test("case 27: a deleted service's CLA goes out empty, never removed; streams not watching it get nothing")
    func serviceDeletedEDS() throws {
        let server = Fixtures.server()
        let c = Self.envoy(server)
        let other = DeltaTestClient(server, namespace: "demo")
        other.send(.eds, subscribe: [Self.echo])
        let n = c.received.count, m = other.received.count
        Self.update(server, [Fixtures.echo, Fixtures.privateSvc])
        let after = Self.since(c, n)
        let eds = after.filter { $0.typeURL == EnvoyTypeURL.clusterLoadAssignment }
        #expect(eds.count == 1)
        #expect(c.names(eds.first) == [Self.ledger] && eds.first?.removedResources == [])
        #expect(try EnvoyTestDecode.cla(try #require(eds.first?.resources.first)).endpointCount == 0)
        let cds = try #require(after.first { $0.typeURL == EnvoyTypeURL.cluster })
        #expect(cds.resources.isEmpty && cds.removedResources == [Self.ledger])
        #expect(other.received.count == m)
        Self.expectWellFormed(after)
    }

    @Test("case 30: a port that disappears removes its cluster, and its listener if no other service uses it")
    func portRemoved() throws {
        let multi = Fixtures.service("multi.demo.svc.cluster.local", ns: "demo", ports: [8080, 9090])
        let server = Fixtures.server(Self.base + [multi])
        let c = Self.envoy(server)
        let c9090 = ResourceNames.outboundCluster(port: 9090, host: "multi.demo.svc.cluster.local")
        #expect(c.held[.cds]?[c9090] != nil && c.held[.lds]?["0.0.0.0_9090"] != nil)
        let n = c.received.count
        var one = multi
        one.ports = [ServicePort(number: 8080, name: "grpc-8080")]
        Self.update(server, Self.base + [one])
        let after = Self.since(c, n)
        let cds = try #require(after.first { $0.typeURL == EnvoyTypeURL.cluster })
        #expect(cds.resources.isEmpty && cds.removedResources == [c9090])
        let lds = try #require(after.first { $0.typeURL == EnvoyTypeURL.listener })
        #expect(lds.resources.isEmpty && lds.removedResources == ["0.0.0.0_9090"])
        // Nothing else is removed, and the port that stays is not resent.
        let removed = after.flatMap(\.removedResources)
        #expect(Set(removed) == [c9090, "0.0.0.0_9090"])
        let c8080 = ResourceNames.outboundCluster(port: 8080, host: "multi.demo.svc.cluster.local")
        #expect(!after.contains { $0.typeURL == EnvoyTypeURL.cluster && $0.resources.contains { $0.name == c8080 } })
        Self.expectWellFormed(after)
    }

    @Test("case 32: exportTo hiding S from namespace N removes S's clusters there; other namespaces get nothing")
    func exportToHides() throws {
        let server = Fixtures.server()
        let demo = Self.envoy(server, namespace: "demo", n: 1)
        let payments = Self.envoy(server, namespace: "payments", n: 2)
        let other = Self.envoy(server, namespace: "other", n: 3)
        #expect(demo.held[.cds]?[Self.ledger] != nil && other.held[.cds]?[Self.ledger] != nil)
        let (d, p, o) = (demo.received.count, payments.received.count, other.received.count)
        var ledger = Fixtures.ledger
        ledger.exportTo = .namespaces(["other"], includesOwn: true)
        Self.update(server, [Fixtures.echo, ledger, Fixtures.privateSvc])
        let after = Self.since(demo, d)
        let cds = try #require(after.first { $0.typeURL == EnvoyTypeURL.cluster })
        #expect(cds.resources.isEmpty && cds.removedResources == [Self.ledger])
        let lds = try #require(after.first { $0.typeURL == EnvoyTypeURL.listener })
        #expect(lds.removedResources == ["0.0.0.0_7070"])
        #expect(!Self.since(payments, p).contains { $0.typeURL == EnvoyTypeURL.cluster })
        #expect(!Self.since(other, o).contains { $0.typeURL == EnvoyTypeURL.cluster })
        // Nothing they hold changed: nothing at all is sent to them.
        #expect(payments.received.count == p && other.received.count == o)
        Self.expectWellFormed(after)
    }

    @Test("case 33: removed then re-added in separate pushes: removal, add, and the CLA on re-subscribe; in one batch: nothing")
    func removedAndReAdded() throws {
        let server = Fixtures.server()
        let c = Self.envoy(server)
        let claVersion = try #require(c.held[.eds]?[Self.echo])
        let clusterVersion = try #require(c.held[.cds]?[Self.echo])
        // Removed.
        let n0 = c.received.count
        Self.update(server, [Fixtures.ledger, Fixtures.privateSvc])
        let removal = Self.since(c, n0)
        let cds = try #require(removal.first { $0.typeURL == EnvoyTypeURL.cluster })
        #expect(cds.resources.isEmpty && cds.removedResources == [Self.echo])
        Self.ackAll(c, since: n0)
        // Envoy drops the removed cluster's EDS subscription: no answer.
        let n1 = c.received.count
        c.send(.eds, unsubscribe: [Self.echo], nonce: c.last(.eds)!.nonce)
        #expect(c.received.count == n1)
        // Re-added with the same content: the cluster comes back at its old version, no CLA yet.
        Self.update(server, Self.base)
        let add = Self.since(c, n1)
        let cds2 = try #require(add.first { $0.typeURL == EnvoyTypeURL.cluster })
        #expect(c.names(cds2) == [Self.echo] && cds2.removedResources.isEmpty)
        #expect(cds2.resources.first?.version == clusterVersion)
        #expect(!add.contains { $0.typeURL == EnvoyTypeURL.clusterLoadAssignment })
        Self.ackAll(c, since: n1)
        // Envoy subscribes again: the CLA is sent, though its bytes equal what it once had.
        c.send(.eds, subscribe: [Self.echo], nonce: c.last(.eds)!.nonce)
        let cla = try #require(c.last(.eds))
        #expect(c.names(cla) == [Self.echo])
        #expect(cla.resources.first?.version == claVersion)
        #expect(try EnvoyTestDecode.cla(cla.resources[0]).endpointCount == 2)
        c.ack(.eds)
        // Removed and re-added in one batch (two registry updates before the queue is drained).
        let n2 = c.received.count
        server.updateRegistry(RegistrySnapshot(services: [Fixtures.ledger, Fixtures.privateSvc]))
        server.updateRegistry(RegistrySnapshot(services: Self.base))
        server.drainQueue()
        #expect(c.received.count == n2, "\(Self.since(c, n2).map { ($0.typeURL, $0.resources.map(\.name), $0.removedResources) })")
        // The debouncer's merge of two ServiceEntry changes of echo, with nothing different: nothing.
        let key = ConfigKey(kind: .serviceEntry, name: "echo.demo.svc.cluster.local", namespace: "demo")
        var merged = PushRequest(full: true, configsUpdated: [key], reason: [.service: 1])
        merged.merge(PushRequest(full: true, configsUpdated: [key], reason: [.service: 1]))
        server.push(merged)
        server.drainQueue()
        #expect(c.received.count == n2)
        Self.expectWellFormed(c.received)
    }

    @Test("case 38: a CDS push carrying a cluster the stream watches in EDS is followed by its CLA in the same push")
    func warming() throws {
        let server = Fixtures.server()
        let c = Self.envoy(server)
        // Only ledger is watched in EDS by this one.
        let d = DeltaTestClient(server, id: Self.id("demo", 2))
        d.send(.cds)
        d.ack(.cds)
        d.send(.eds, subscribe: [Self.ledger])
        d.ack(.eds)
        // Both reject their last CDS response: what it carried must go out again.
        c.send(.cds, nonce: c.last(.cds)!.nonce, error: RPCStatus(code: 13, message: "rejected"))
        d.send(.cds, nonce: d.last(.cds)!.nonce, error: RPCStatus(code: 13, message: "rejected"))
        let (n, m) = (c.received.count, d.received.count)
        server.pushAll(reason: .debug)
        server.drainQueue()
        let after = Self.since(c, n)
        #expect(after.map(\.typeURL) == [EnvoyTypeURL.cluster, EnvoyTypeURL.clusterLoadAssignment])
        guard after.count == 2 else { return }
        #expect(Set(c.names(after[0])) == [Self.echo, Self.ledger])
        #expect(Set(c.names(after[1])) == [Self.echo, Self.ledger])
        // Same push, same snapshot.
        #expect(after[0].systemVersionInfo == after[1].systemVersionInfo)
        // Unchanged content, unchanged versions: the CLAs are resent for warming only.
        for r in after[1].resources { #expect(r.version == c.held[.eds]?[r.name]) }
        let other = Self.since(d, m)
        #expect(other.map(\.typeURL) == [EnvoyTypeURL.cluster, EnvoyTypeURL.clusterLoadAssignment])
        #expect(other.last.map { d.names($0) } == [Self.ledger])
    }

    @Test("case 23: over a long scenario no response lists a name twice or in both lists, nonces are unique, held matches what was sent")
    func invariantsOverAScenario() throws {
        var scenario = DeltaScenario(seed: 23, steps: PushTest.underTSan ? 150 : 400)
        scenario.run()
        #expect(scenario.responses > 200, "the scenario sent too few responses to mean anything: \(scenario.responses)")
        #expect(scenario.kinds.isSuperset(of: ["cds+", "cds-", "eds+", "lds+", "lds-", "rds+"]), "\(scenario.kinds.sorted())")
        #expect(scenario.problems.isEmpty, "\(scenario.problems.prefix(20).joined(separator: "\n"))")
    }

    // MARK: streams together

    @Test("case 45: two Delta streams of different nodes are independent: scopes, nonces, ACK state, closing")
    func twoStreams() throws {
        let server = Fixtures.server()
        let a = Self.envoy(server, namespace: "demo", n: 1)
        let b = Self.envoy(server, namespace: "payments", n: 2)
        #expect(Set(a.received(.cds).flatMap { $0.resources.map(\.name) }) == [Self.echo, Self.ledger])
        #expect(Set(b.received(.cds).flatMap { $0.resources.map(\.name) }) == [Self.echo, Self.ledger, Self.privateCluster])
        for c in [a, b] { #expect(Set(c.received.map(\.nonce)).count == c.received.count) }
        // A NACK on a changes nothing on b.
        let bBefore = try #require(b.conn.snapshot.watched[.cds])
        a.send(.cds, nonce: a.last(.cds)!.nonce, error: RPCStatus(code: 13, message: "only a"))
        #expect(a.conn.snapshot.watched[.cds]?.lastError != nil)
        let bAfter = try #require(b.conn.snapshot.watched[.cds])
        #expect(bAfter.lastError == nil && bAfter.nonceAcked == bAfter.nonceSent && bAfter.held === bBefore.held)
        // a's subscription changes do not reach b.
        let bn = b.received.count
        a.send(.eds, subscribe: ["outbound|1||only-a.invalid"])
        #expect(b.received.count == bn)
        #expect(b.conn.snapshot.watched[.eds]?.names.contains("outbound|1||only-a.invalid") == false)
        // Closing a leaves b pushed.
        a.close()
        let an = a.received.count
        var echo = Fixtures.echo
        echo.endpoints.append(WorkloadEndpoint(address: "10.0.0.5"))
        Self.update(server, [echo, Fixtures.ledger, Fixtures.privateSvc])
        #expect(a.received.count == an)
        #expect(b.names(b.received.last) == [Self.echo] && b.received.count == bn + 1)
        #expect(server.connectionCount == 1)
    }

    @Test("case 47: an ACK does no per-resource work: held stays the same object, no response, the node is not decoded")
    func ackIsConstantWork() throws {
        let services = (0..<5000).map { Fixtures.service("s\($0).demo.svc.cluster.local", ns: "demo") }
        let server = DiscoveryServer(registry: RegistrySnapshot(services: services))
        let c = DeltaTestClient(server, namespace: "demo")
        c.send(.cds)
        let r = try #require(c.last(.cds))
        #expect(r.resources.count == 5000)
        let before = try #require(c.conn.snapshot.watched[.cds])
        let held = try #require(before.held)
        #expect(held.count == 5000)
        // In sync with its scope: the stream holds the scope's table itself.
        let proxy = try #require(c.conn.proxy)
        let table = Generators.table(.cds, GeneratorContext(proxy: proxy, watch: before, request: PushRequest(),
                                                            push: server.pushContext, forRequest: true))
        #expect(table.versions === held)
        let patches = table.cachedPatchCount
        // Envoy's ACK carries the node again; a big one here. It is skipped, not decoded.
        var node = c.node
        node.metadata = ProtoStruct(fields: Dictionary(uniqueKeysWithValues: (0..<500).map { ("K\($0)", ProtoValue.string(String(repeating: "v", count: 40))) }))
        var ack = DeltaDiscoveryRequest()
        ack.node = node
        ack.typeURL = EnvoyTypeURL.cluster
        ack.responseNonce = r.nonce
        let decoded = try ack.encode().withUnsafeBytes { try DeltaDiscoveryRequest(decoding: $0, decodingNode: false, deferringNames: true) }
        #expect(decoded.node == nil && decoded.nodeSkipped)
        // The rules alone: an ACK, nothing to evaluate, held untouched.
        var watches = c.conn.snapshot.watched
        let outcome = DeltaRules.process(decoded, type: .cds, watched: &watches)
        #expect(outcome.kind == .ack && !outcome.evaluate && outcome.force == nil)
        #expect(watches[.cds]?.held === held)
        // Through the server: no response, the same held and names objects, no patch computed.
        let count = c.received.count
        #expect(server.process(decoded, on: c.conn) == .ok)
        #expect(c.received.count == count)
        let after = try #require(c.conn.snapshot.watched[.cds])
        #expect(after.held === held && after.names === before.names)
        #expect(after.nonceAcked == r.nonce)
        #expect(table.cachedPatchCount == patches)
        // A stream holding two clusters reads its ACK the same way.
        let small = DeltaTestClient(Fixtures.server(), namespace: "demo")
        small.send(.cds)
        var smallWatches = small.conn.snapshot.watched
        var smallAck = decoded
        smallAck.responseNonce = try #require(small.last(.cds)).nonce
        let smallOutcome = DeltaRules.process(smallAck, type: .cds, watched: &smallWatches)
        #expect(smallOutcome == outcome)
    }

    /// What the concurrency test below runs into, one step at a time: a push is published, the
    /// client sends any request before a worker gets to the push, then the push runs. The
    /// removal must still reach the stream (Envoy would keep the deleted cluster forever).
    @Test("a request answered between a push's publication and its processing does not swallow the push")
    func requestBetweenPublishAndPush() throws {
        let server = Fixtures.server()
        let c = Self.envoy(server)
        #expect(c.held[.cds]?[Self.ledger] != nil && c.held[.lds]?["0.0.0.0_7070"] != nil)
        // ledger is deleted: the push is published and the stream queued ...
        server.updateRegistry(RegistrySnapshot(services: [Fixtures.echo, Fixtures.privateSvc]))
        // ... and before a worker takes it, Envoy subscribes to one more cluster in EDS.
        let n = c.received.count
        c.send(.eds, subscribe: ["outbound|1||late.invalid"], nonce: c.last(.eds)!.nonce)
        #expect(c.received.count == n + 1)
        server.drainQueue()
        let after = Self.since(c, n + 1)
        let cds = after.first { $0.typeURL == EnvoyTypeURL.cluster }
        #expect(cds?.removedResources == [Self.ledger], "no CDS removal of the deleted cluster: got \(after.map { ($0.typeURL, $0.resources.map(\.name), $0.removedResources) })")
        let lds = after.first { $0.typeURL == EnvoyTypeURL.listener }
        #expect(lds?.removedResources == ["0.0.0.0_7070"])
        let w = try #require(c.conn.snapshot.watched[.cds])
        #expect(w.held?.contains(Self.ledger) == false, "the server still believes the stream holds the deleted cluster")
    }

    // MARK: memory bounds

    @Test("VersionSet interning stays bounded when many clients claim distinct versions and leave")
    func versionSetInterningIsBounded() throws {
        let server = Fixtures.server()
        let baseline = VersionSet.internedCount
        let rounds = 12, perRound = 500
        for round in 0..<rounds {
            var clients: [DeltaTestClient] = []
            for i in 0..<perRound {
                let c = DeltaTestClient(server, namespace: "demo")
                // A distinct claimed set per client (a version no resource has).
                c.send(.cds, initial: [(Self.echo, ContentHash.hex(UInt64(round * perRound + i + 1))), (Self.ledger, "")])
                clients.append(c)
            }
            for c in clients { c.close() }
        }
        #expect(server.connectionCount == 0)
        // 6000 distinct sets were interned and nothing but the table holds them any more (the
        // scope's table keeps at most maxCachedPatches of them through its cached patches).
        let grown = VersionSet.internedCount - baseline
        #expect(grown < 3000, "VersionSet.internedCount grew by \(grown) after \(rounds * perRound) clients claimed distinct versions and disconnected")
    }

    @Test("ResourceTable keeps at most maxCachedPatches patches and still answers beyond them")
    func patchCacheIsBounded() throws {
        let resources = (0..<8).map { EncodedResource(name: "r\($0)", typeURL: EnvoyTypeURL.cluster, value: [UInt8($0)]) }
        let table = ResourceTable(type: .cds, resources: resources)
        var patches: [DeltaPatch] = []
        for i in 0..<(ResourceTable.maxCachedPatches + 100) {
            let p = table.patch(from: VersionSet.of([("r0", UInt64(i + 1)), ("gone\(i)", 5)]))
            patches.append(p)
            #expect(table.cachedPatchCount <= ResourceTable.maxCachedPatches)
            #expect(p.removed == ["gone\(i)"] && p.sent.count == 8)
        }
        #expect(table.cachedPatchCount == ResourceTable.maxCachedPatches)
        #expect(table.patch(from: patches[0].from) === patches[0])
        let last = try #require(patches.last)
        let again = table.patch(from: last.from)
        #expect(again !== last && again.sent == last.sent && again.removed == last.removed)
        // Through a server: many streams with distinct claims against one scope's table.
        let server = Fixtures.server()
        var clients: [DeltaTestClient] = []
        for i in 0..<(ResourceTable.maxCachedPatches + 40) {
            let c = DeltaTestClient(server, namespace: "demo")
            c.send(.cds, initial: [(Self.echo, ContentHash.hex(UInt64(i + 1)))])
            #expect(c.names(c.last(.cds)) == [Self.echo, Self.ledger].sorted())
            clients.append(c)
        }
        let c = try #require(clients.first)
        let w = try #require(c.conn.snapshot.watched[.cds])
        let scope = Generators.table(.cds, GeneratorContext(proxy: c.conn.proxy!, watch: w, request: PushRequest(),
                                                            push: server.pushContext, forRequest: true))
        #expect(scope.cachedPatchCount <= ResourceTable.maxCachedPatches)
    }

    // MARK: concurrency

    /// Pusher threads change the registry while two loop threads process the clients' requests
    /// (ACKs, subscription changes) and the server's real dispatcher and workers push. At the
    /// end every stream holds exactly what it was sent, and what its scope's table now holds.
    @Test("concurrent pushes and requests: every stream's held equals what it was sent, and converges")
    func concurrentPushesAndRequests() throws {
        let tsan = PushTest.underTSan
        var config = DiscoveryServerConfig()
        config.pushWorkers = 3
        config.pushThrottle = 6
        config.maxStreams = 1024
        config.debounce.after = 1_000_000
        config.debounce.max = 20_000_000
        let server = DiscoveryServer(config: config, registry: RegistrySnapshot(services: DeltaScenario.initialServices))
        server.start()
        defer { server.stop() }
        let loops = [LoopThread(name: "fp-test-loop-0"), LoopThread(name: "fp-test-loop-1")]
        defer { for l in loops { l.shutdown() } }
        let namespaces = ["demo", "payments", "other"]
        let streams = tsan ? 9 : 24
        let clients = (0..<streams).map { i in
            LoopDeltaClient(server: server, loop: loops[i % loops.count], namespace: namespaces[i % namespaces.count], n: i)
        }
        for c in clients { c.loop.execute { c.start() } }

        let mutations = tsan ? 25 : 100
        let interest = Counter()
        PushTest.onThreads(4) { t in
            var g = SeededGenerator(seed: UInt64(100 + t))
            if t == 3 {
                // Subscription changes, processed on the clients' loops.
                for k in 0..<(mutations * 3) {
                    let c = clients[Int(g.next() % UInt64(clients.count))]
                    let name = "outbound|1||x\(k % 5).invalid"
                    let subscribe = g.next() % 2 == 0
                    c.loop.execute { c.changeInterest(name, subscribe: subscribe) }
                    interest.add()
                    usleep(UInt32(200 + g.next() % 800))
                }
                return
            }
            for _ in 0..<mutations {
                server.modifyRegistry { DeltaScenario.mutate($0, &g) }
                usleep(UInt32(300 + g.next() % 1500))
            }
        }
        #expect(interest.value == mutations * 3)

        // Quiet: nothing queued or in flight, loops idle, and no response for a while.
        let settled = PushTest.waitUntil(timeoutMillis: 60_000) {
            for l in loops { l.sync {} }
            let a = clients.map { c in c.loop.sync { c.responses.count } }.reduce(0, +)
            PushTest.sleep(millis: 60)
            for l in loops { l.sync {} }
            let b = clients.map { c in c.loop.sync { c.responses.count } }.reduce(0, +)
            return a == b && server.queue.pending == 0 && (server.dispatcher?.inFlightCount ?? 0) == 0
        }
        #expect(settled, "the server did not settle")

        for c in clients {
            let report = c.loop.sync { c.verify() }
            #expect(report.problems.isEmpty, "\(c.name): \(report.problems.prefix(10).joined(separator: "\n"))")
            #expect(report.notConverged.isEmpty, "\(c.name): \(report.notConverged.joined(separator: "\n"))")
            #expect(report.responses > 0, "\(c.name) got nothing")
        }
        // The client and its connection hold each other (it is the connection's transport).
        for c in clients { c.loop.sync { c.disconnect() } }
        #expect(server.connectionCount == 0)
    }
}

// MARK: - invariants

enum DeltaInvariants {
    /// What Envoy would NACK, and what fastpilot promises on every response.
    static func problems(_ r: DeltaDiscoveryResponse) -> [String] {
        var out: [String] = []
        let names = r.resources.map(\.name)
        let type = XdsType(typeURL: r.typeURL)
        if type == nil { out.append("unknown type \(r.typeURL)") }
        if Set(names).count != names.count { out.append("a name twice in resources: \(names)") }
        if Set(r.removedResources).count != r.removedResources.count { out.append("a name twice in removed: \(r.removedResources)") }
        let both = Set(names).intersection(r.removedResources)
        if !both.isEmpty { out.append("in resources and removed: \(both.sorted())") }
        if r.nonce.isEmpty { out.append("no nonce") }
        if r.systemVersionInfo.isEmpty { out.append("no system_version_info") }
        for res in r.resources {
            if res.resource?.typeURL != r.typeURL { out.append("\(res.name): Any of type \(res.resource?.typeURL ?? "nil") in a \(r.typeURL) response") }
            if ContentHash.parse(res.version) == 0 { out.append("\(res.name): version \(res.version.debugDescription) is not 16 hex digits") }
        }
        if let type, !type.isWildcardType, !r.removedResources.isEmpty {
            out.append("\(type) response removes \(r.removedResources): Envoy ignores removals there")
        }
        return out
    }
}

// MARK: - the scenario of case 23

/// One client as Envoy keeps it: what it holds (name → version) from every response it accepted,
/// minus what it unsubscribed, and its interest.
final class ModelDeltaClient {
    let c: DeltaTestClient
    let label: String
    var held: [XdsType: [String: String]] = [:]
    var explicit: [XdsType: Set<String>] = [:]
    var wildcard: [XdsType: Bool] = [:]
    /// Types the client NACKed: it rejected a response the server believes it holds.
    var tainted = Set<XdsType>()
    var nonces = Set<String>()
    var seen = 0

    init(_ server: DiscoveryServer, id: String, label: String) {
        c = DeltaTestClient(server, id: id)
        self.label = label
    }

    var watching: Set<XdsType> { Set(XdsType.allCases.filter { c.conn.snapshot.watched[$0] != nil }) }

    @discardableResult
    func request(_ t: XdsType, subscribe: [String] = [], unsubscribe: [String] = [], initial: [(String, String)] = [],
                 nonce: String = "", error: RPCStatus? = nil) -> Int {
        let first = c.conn.snapshot.watched[t] == nil
        if first && error == nil {
            let dropped = Set(unsubscribe)
            let claims = initial.filter { !dropped.contains($0.0) && $0.0 != "*" }
            var names = Set(subscribe.filter { $0 != "*" && !dropped.contains($0) })
            let wild = t.isWildcardType && ((subscribe.contains("*") && !dropped.contains("*")) || subscribe.isEmpty)
            if !wild { names.formUnion(claims.map(\.0)) }
            explicit[t] = names
            wildcard[t] = wild
            var h: [String: String] = [:]
            for (n, v) in claims { h[n] = v }
            held[t] = h
        } else if !first {
            if subscribe.contains("*") && t.isWildcardType { wildcard[t] = true }
            var droppedWildcard = false
            if unsubscribe.contains("*") && wildcard[t] == true { wildcard[t] = false; droppedWildcard = true }
            let add = subscribe.filter { $0 != "*" }, remove = Set(unsubscribe.filter { $0 != "*" })
            explicit[t, default: []].formUnion(add)
            explicit[t, default: []].subtract(remove)
            for n in remove { held[t]?[n] = nil }
            if droppedWildcard, let h = held[t] { held[t] = h.filter { explicit[t, default: []].contains($0.key) } }
        }
        if error != nil && !first { tainted.insert(t) }
        let before = c.received.count
        c.send(t, subscribe: subscribe, unsubscribe: unsubscribe, initial: initial, nonce: nonce, error: error)
        return c.received.count - before
    }

    /// Applies the responses not seen yet, checking each; returns the problems found.
    func absorb(into kinds: inout Set<String>) -> [String] {
        var out: [String] = []
        while seen < c.received.count {
            let r = c.received[seen]
            seen += 1
            for p in DeltaInvariants.problems(r) { out.append("\(label) \(r.typeURL.split(separator: ".").last ?? ""): \(p)") }
            if !nonces.insert(r.nonce).inserted { out.append("\(label): nonce \(r.nonce) twice on one stream") }
            guard let t = XdsType(typeURL: r.typeURL) else { continue }
            if !r.resources.isEmpty { kinds.insert("\(t.metricLabel)+") }
            if !r.removedResources.isEmpty { kinds.insert("\(t.metricLabel)-") }
            for res in r.resources { held[t, default: [:]][res.name] = res.version }
            for n in r.removedResources { held[t]?[n] = nil }
        }
        return out
    }

    /// The server's idea of what the client holds, against the client's own.
    func compare() -> [String] {
        var out: [String] = []
        let watched = c.conn.snapshot.watched
        for t in XdsType.allCases where !tainted.contains(t) {
            guard let w = watched[t] else { continue }
            let server = w.held.map { h in Dictionary(uniqueKeysWithValues: zip(h.names, h.versions.map(ContentHash.hex))) } ?? [:]
            let mine = (held[t] ?? [:]).mapValues { ContentHash.hex(ContentHash.parse($0)) }
            if server != mine {
                let extra = Set(server.keys).subtracting(mine.keys).sorted(), missing = Set(mine.keys).subtracting(server.keys).sorted()
                let differ = Set(server.keys).intersection(mine.keys).filter { server[$0] != mine[$0] }.sorted()
                out.append("\(label) \(t): server held ≠ client: server only \(extra), client only \(missing), versions differ \(differ)")
            }
            if w.resend != nil { out.append("\(label) \(t): resend \(w.resend!) pending without a NACK") }
        }
        return out
    }
}

/// A deterministic random walk over registry changes, pushes and client requests.
struct DeltaScenario {
    var g: SeededGenerator
    let steps: Int
    var problems: [String] = []
    var responses = 0
    var kinds = Set<String>()

    init(seed: UInt64, steps: Int) {
        g = SeededGenerator(seed: seed)
        self.steps = steps
    }

    static let pool: [Service] = [
        Fixtures.echo, Fixtures.ledger, Fixtures.privateSvc,
        Fixtures.service("s3.demo.svc.cluster.local", ns: "demo", ports: [8080, 9090]),
        Fixtures.service("s4.other.svc.cluster.local", ns: "other", ports: [7070], exportTo: .namespaces(["demo"], includesOwn: true)),
        Fixtures.service("s5.payments.svc.cluster.local", ns: "payments", ports: [8080]),
    ]
    static let initialServices = Array(pool.prefix(4))

    static let clusterNames: [String] = pool.flatMap { s in ([9443] + s.ports.map(\.number)).map { ResourceNames.outboundCluster(port: $0, host: s.hostname) } }
        + ["outbound|1||gone.invalid"]
    static let routeNames = ["8080", "9090", "7070", "9000", "9443", "9999", "echo.demo.svc.cluster.local:8080", "nowhere.invalid:1"]
    static let listenerNames = ["0.0.0.0_8080", "0.0.0.0_9443", "echo.demo.svc.cluster.local:8080", "nope.invalid:1"]

    static func names(_ t: XdsType) -> [String] {
        switch t {
        case .cds, .eds: clusterNames
        case .lds: listenerNames
        case .rds: routeNames
        }
    }

    /// One random change to the registry: a service toggled, its endpoints, a port, its exportTo.
    static func mutate(_ r: RegistrySnapshot, _ g: inout SeededGenerator) -> RegistrySnapshot {
        var services = r.services
        let p = pool[Int(g.next() % UInt64(pool.count))]
        let i = services.firstIndex { $0.hostname == p.hostname && $0.namespace == p.namespace }
        switch g.next() % 6 {
        case 0, 1:
            if let i { services.remove(at: i) } else { services.append(p) }
        case 2, 3:
            guard let i else { services.append(p); break }
            let n = Int(g.next() % 4)
            services[i].endpoints = (0..<n).map { k in
                WorkloadEndpoint(address: "10.1.\(g.next() % 3).\(k + 1)", locality: Locality(istioString: k % 2 == 0 ? "r/a" : "r/b"))
            }
        case 4:
            guard let i else { break }
            if let j = services[i].ports.firstIndex(where: { $0.number == 9443 }) {
                services[i].ports.remove(at: j)
            } else {
                services[i].ports.append(ServicePort(number: 9443, name: "grpc-9443"))
            }
        default:
            guard let i else { break }
            services[i].exportTo = services[i].exportTo == .all ? .namespaces([], includesOwn: true) : .all
        }
        return RegistrySnapshot(services: services)
    }

    func pick<T>(_ a: [T], _ g: inout SeededGenerator) -> T { a[Int(g.next() % UInt64(a.count))] }

    mutating func run() {
        let server = Fixtures.server(Self.initialServices)
        let namespaces = ["demo", "payments", "other"]
        var clients = namespaces.enumerated().map { i, ns in
            ModelDeltaClient(server, id: DeltaPushTests.id(ns, i + 1), label: "\(ns)#0")
        }
        var generations = [0, 0, 0]
        // Envoy's start: CDS, EDS for what CDS sent, LDS, RDS for the ports.
        for m in clients {
            m.request(.cds)
            _ = m.absorb(into: &kinds)
            m.request(.eds, subscribe: (m.held[.cds] ?? [:]).keys.sorted())
            m.request(.lds)
            m.request(.rds, subscribe: ["8080", "7070"])
        }
        for step in 0..<steps {
            let op = g.next() % 14
            let ci = Int(g.next() % UInt64(clients.count))
            let m = clients[ci]
            let t = XdsType(rawValue: Int(g.next() % 4))!
            var note = ""
            switch op {
            case 0, 1:
                server.updateRegistry(Self.mutate(server.registry, &g))
                server.drainQueue()
                note = "registry"
            case 2:
                // Two changes in one batch.
                server.updateRegistry(Self.mutate(server.registry, &g))
                server.updateRegistry(Self.mutate(server.registry, &g))
                server.drainQueue()
                note = "registry x2"
            case 3:
                server.pushAll(reason: .debug)
                server.drainQueue()
                note = "forced"
            case 4, 5:
                // ACK of the last response; with lists sometimes.
                guard let last = m.c.last(t), m.watching.contains(t) else { break }
                let isLatest = m.c.conn.snapshot.watched[t]?.nonceSent == last.nonce
                if g.next() % 2 == 0 {
                    let sent = m.request(t, nonce: last.nonce)
                    if isLatest && sent != 0 { problems.append("step \(step): \(m.label) \(t): an ACK of the last nonce with no lists got \(sent) response(s)") }
                    note = "ack"
                } else {
                    m.request(t, subscribe: [pick(Self.names(t), &g)], nonce: last.nonce)
                    note = "ack+sub"
                }
            case 6:
                m.request(t, subscribe: (0..<(1 + Int(g.next() % 3))).map { _ in pick(Self.names(t), &g) })
                note = "subscribe"
            case 7:
                let held = Array((m.held[t] ?? [:]).keys) + Array(m.explicit[t] ?? [])
                guard !held.isEmpty else { break }
                m.request(t, unsubscribe: [pick(held.sorted(), &g)])
                note = "unsubscribe"
            case 8:
                m.request(t, subscribe: [pick(Self.names(t), &g)], nonce: "stale-\(step)")
                note = "stale+sub"
            case 9:
                guard g.next() % 3 == 0, let last = m.c.last(t) else { break }
                m.request(t, nonce: last.nonce, error: RPCStatus(code: 13, message: "scenario NACK"))
                note = "nack"
            case 10:
                let w: XdsType = g.next() % 2 == 0 ? .cds : .lds
                guard m.watching.contains(w) else { break }
                if m.wildcard[w] == true { m.request(w, unsubscribe: ["*"]) } else { m.request(w, subscribe: ["*"]) }
                note = "star"
            case 11:
                // Reconnect, Envoy's way: every type again with what it holds.
                m.c.close()
                generations[ci] += 1
                let ns = namespaces[ci]
                let r = ModelDeltaClient(server, id: DeltaPushTests.id(ns, ci + 1), label: "\(ns)#\(generations[ci])")
                for type in XdsType.pushOrder where m.held[type] != nil || m.explicit[type] != nil {
                    let held = (m.held[type] ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
                    var subscribe = (m.explicit[type] ?? []).sorted()
                    if type.isWildcardType && m.wildcard[type] == true && !subscribe.isEmpty { subscribe.append("*") }
                    var unsubscribe: [String] = []
                    if type.isWildcardType && m.wildcard[type] != true && subscribe.isEmpty { subscribe = ["*"]; unsubscribe = ["*"] }
                    r.request(type, subscribe: subscribe, unsubscribe: unsubscribe,
                              initial: m.tainted.contains(type) ? held.map { ($0.0, "") } : held)
                    problems += r.absorb(into: &kinds)
                }
                clients[ci] = r
                note = "reconnect"
            default:
                var s = server.registry.services
                guard !s.isEmpty else { break }
                let i = Int(g.next() % UInt64(s.count))
                s[i].endpoints = [WorkloadEndpoint(address: "10.2.0.\(step % 250 + 1)")]
                server.updateRegistry(RegistrySnapshot(services: s))
                server.drainQueue()
                note = "endpoints"
            }
            for c in clients {
                let before = c.seen
                let found = c.absorb(into: &kinds)
                responses += c.seen - before
                problems += found.map { "step \(step) (\(note)): \($0)" }
                problems += c.compare().map { "step \(step) (\(note)): \($0)" }
            }
            if problems.count > 50 { return }
        }
    }
}

// MARK: - the concurrency test's loop threads and clients

/// A thread that runs tasks in order, like an I/O loop: the executor of the streams on it.
final class LoopThread: @unchecked Sendable {
    private let tasks = Locked<[@Sendable () -> Void]>([])
    private let wake = Semaphore()
    private let started = Semaphore()
    private let tid = Locked<pthread_t?>(nil)
    private let stopping = Atomic<Bool>(false)
    private let thread = Locked<OSThread?>(nil)

    init(name: String) {
        let t = OSThread.spawn(name: name) { [self] in
            tid.withLock { $0 = pthread_self() }
            started.signal()
            run()
        }
        thread.withLock { $0 = t }
        started.wait()
    }

    var inLoop: Bool { tid.withLock { $0.map { pthread_equal($0, pthread_self()) != 0 } ?? false } }

    func execute(_ task: @escaping @Sendable () -> Void) {
        tasks.withLock { $0.append(task) }
        wake.signal()
    }

    private func run() {
        while true {
            wake.wait()
            let batch = tasks.withLock { t -> [@Sendable () -> Void] in defer { t = [] }; return t }
            for task in batch { task() }
            if stopping.load(ordering: .acquiring) && tasks.withLock({ $0.isEmpty }) { return }
        }
    }

    /// Runs `body` on the loop and waits for it.
    func sync<T>(_ body: @escaping () -> T) -> T {
        let result = Locked<T?>(nil)
        let done = Semaphore()
        let box = UnsafeSendableBox(body)
        execute {
            let v = box.value()
            result.withLock { $0 = v }
            done.signal()
        }
        done.wait()
        return result.withLock { $0! }
    }

    func shutdown() {
        stopping.store(true, ordering: .releasing)
        wake.signal()
        thread.withLock { $0 }?.join()
    }
}

struct LoopExecutorForTests: XdsExecutor {
    let loop: LoopThread
    var identity: ObjectIdentifier { ObjectIdentifier(loop) }
    var inExecutor: Bool { loop.inLoop }
    func execute(_ task: @escaping @Sendable () -> Void) { loop.execute(task) }
}

/// An Envoy-like Delta client living on a loop thread: it is its own transport and stream,
/// applies every response to what it holds, and answers each one later on its loop (ACK, plus
/// EDS and RDS subscriptions following the clusters and listeners it holds). Every mutable field
/// is touched on the loop thread only.
final class LoopDeltaClient: XdsTransport, XdsStream, @unchecked Sendable {
    let peer = "loop-test"
    let loop: LoopThread
    let executor: any XdsExecutor
    let server: DiscoveryServer
    let node: Node
    let name: String
    private(set) var conn: XdsConnection!

    var isOpen = true
    var responses: [DeltaDiscoveryResponse] = []
    var held: [XdsType: [String: String]] = [:]
    var eds = Set<String>()
    var rds = Set<String>()
    var extra = Set<String>()
    var nodeSent = false
    var nonces = Set<String>()
    var problems: [String] = []

    init(server: DiscoveryServer, loop: LoopThread, namespace: String, n: Int) {
        self.server = server
        self.loop = loop
        executor = LoopExecutorForTests(loop: loop)
        name = "client\(n).\(namespace)"
        var node = Node()
        node.id = "sidecar~10.3.0.\(n)~c\(n).\(namespace)~\(namespace).svc.cluster.local"
        self.node = node
        conn = server.newConnection(transport: self, xdsProtocol: .delta)
    }

    func currentStream() -> (any XdsStream)? { isOpen ? self : nil }

    func close(_ status: GRPCStatus) {
        isOpen = false
        problems.append("stream closed: \(status)")
    }

    func write(body: ByteSlice, tail: SmallBytes, completion: WriteCompletion?) {
        if !loop.inLoop { problems.append("written off the loop thread") }
        let bytes = Array(body.buffer) + tail.array
        completion?(true)
        guard let r = try? DeltaDiscoveryResponse(decoding: bytes) else {
            problems.append("a response does not decode")
            return
        }
        responses.append(r)
        problems += DeltaInvariants.problems(r).map { "\(r.typeURL): \($0)" }
        if !nonces.insert(r.nonce).inserted { problems.append("nonce \(r.nonce) twice") }
        guard let t = XdsType(typeURL: r.typeURL) else { return }
        for res in r.resources { held[t, default: [:]][res.name] = res.version }
        for n in r.removedResources { held[t]?[n] = nil }
        // Envoy reads and answers it later, on this loop.
        loop.execute { [self] in react(to: r, type: t) }
    }

    func start() {
        send(.cds)
        send(.lds)
    }

    /// Ends the stream and drops the connection (which holds this client as its transport).
    func disconnect() {
        isOpen = false
        if let conn { server.disconnect(conn) }
        conn = nil
    }

    private func react(to r: DeltaDiscoveryResponse, type t: XdsType) {
        guard let conn else { return }
        send(t, nonce: r.nonce)
        switch t {
        case .cds:
            let clusters = Set((held[.cds] ?? [:]).keys).union(extra)
            let add = clusters.subtracting(eds), drop = eds.subtracting(clusters)
            if !add.isEmpty || !drop.isEmpty || conn.snapshot.watched[.eds] == nil {
                eds = clusters
                send(.eds, subscribe: add.sorted(), unsubscribe: drop.sorted())
            }
        case .lds:
            let routes = Set((held[.lds] ?? [:]).keys.compactMap { $0.hasPrefix("0.0.0.0_") ? String($0.dropFirst(8)) : nil })
            let add = routes.subtracting(rds), drop = rds.subtracting(routes)
            if !add.isEmpty || !drop.isEmpty {
                rds = routes
                send(.rds, subscribe: add.sorted(), unsubscribe: drop.sorted())
            }
        default:
            break
        }
    }

    /// A cluster the client wants or no longer wants by name (as a gRPC client would), in EDS.
    func changeInterest(_ cluster: String, subscribe: Bool) {
        guard let conn, conn.snapshot.watched[.eds] != nil else { return }
        if subscribe {
            extra.insert(cluster)
            eds.insert(cluster)
            send(.eds, subscribe: [cluster])
        } else if extra.contains(cluster) {
            extra.remove(cluster)
            eds.remove(cluster)
            send(.eds, unsubscribe: [cluster])
        }
    }

    private func send(_ t: XdsType, subscribe: [String] = [], unsubscribe: [String] = [], nonce: String = "") {
        if !loop.inLoop { problems.append("request processed off the loop thread") }
        guard let conn else { return }
        for n in unsubscribe { held[t]?[n] = nil }
        var r = DeltaDiscoveryRequest()
        r.node = node
        r.typeURL = t.typeURL
        r.resourceNamesSubscribe = subscribe
        r.resourceNamesUnsubscribe = unsubscribe
        r.responseNonce = nonce
        let wire = r.encode()
        // As ADS decodes it: the node only until one was accepted, the names kept as wire bytes.
        guard let decoded = try? wire.withUnsafeBytes({ try DeltaDiscoveryRequest(decoding: $0, decodingNode: !nodeSent, deferringNames: true) }) else {
            problems.append("request does not decode")
            return
        }
        let outcome = server.process(decoded, on: conn)
        if outcome == .ok { nodeSent = true } else { problems.append("request \(t) got \(outcome)") }
    }

    struct Report {
        /// Malformed responses, and differences between what the server believes the stream
        /// holds and what it was sent.
        var problems: [String]
        /// Streams whose held set is not the newest snapshot's table for their scope.
        var notConverged: [String] = []
        var responses: Int
    }

    /// On the loop: what the server believes the stream holds against what it holds, and
    /// against the scope's table in the newest snapshot.
    func verify() -> Report {
        var out = problems
        var unconverged: [String] = []
        guard let conn else { return Report(problems: out + ["disconnected"], responses: responses.count) }
        let st = conn.snapshot
        guard let proxy = st.proxy else { return Report(problems: out + ["no proxy"], responses: responses.count) }
        let push = server.pushContext
        for t in XdsType.allCases {
            guard let w = st.watched[t] else { continue }
            let server = w.held.map { h in Dictionary(uniqueKeysWithValues: zip(h.names, h.versions.map(ContentHash.hex))) } ?? [:]
            let mine = held[t] ?? [:]
            if server != mine {
                let extra = Set(server.keys).subtracting(mine.keys).sorted(), missing = Set(mine.keys).subtracting(server.keys).sorted()
                let differ = Set(server.keys).intersection(mine.keys).filter { server[$0] != mine[$0] }.sorted()
                out.append("\(t): held by the server ≠ what was sent: server only \(extra), client only \(missing), versions differ \(differ)")
            }
            let table = Generators.table(t, GeneratorContext(proxy: proxy, watch: w, request: PushRequest(), push: push, forRequest: true))
            if w.held !== table.versions {
                let want = Dictionary(uniqueKeysWithValues: zip(table.versions.names, table.versions.versions.map(ContentHash.hex)))
                let stale = want.filter { server[$0.key] != $0.value }.keys.sorted()
                let gone = Set(server.keys).subtracting(want.keys).sorted()
                unconverged.append("\(t): not converged to snapshot \(push.version) (the stream last saw \(st.lastPushVersion), pushes \(st.pushes)): stale or missing \(stale), not removed \(gone)")
            }
            if w.resend != nil { out.append("\(t): resend still pending: \(w.resend!)") }
        }
        return Report(problems: out, notConverged: unconverged, responses: responses.count)
    }
}

// MARK: - decoding helpers

extension EnvoyTestDecode {
    struct Route { var name = ""; var virtualHosts = 0 }

    static func route(_ r: DeltaResource) throws -> Route {
        var out = Route()
        let value = r.resource?.value ?? []
        try value.withUnsafeBytes { buf in
            var rd = ProtoReader(buf)
            while let (f, _) = try rd.next() {
                if f == 1 { out.name = try rd.stringField() } else if f == 2 { out.virtualHosts += 1; try rd.skipField() } else { try rd.skipField() }
            }
        }
        return out
    }

    /// The port of every endpoint of a ClusterLoadAssignment, in order.
    static func endpointPorts(_ r: DeltaResource) throws -> [UInt32] {
        var ports: [UInt32] = []
        let value = r.resource?.value ?? []
        try value.withUnsafeBytes { buf in
            var cla = ProtoReader(buf)
            while let (f, _) = try cla.next() {
                guard f == 2 else { try cla.skipField(); continue }
                var loc = try cla.messageField()
                while let (lf, _) = try loc.next() {
                    guard lf == 2 else { try loc.skipField(); continue }
                    var lb = try loc.messageField()
                    while let (bf, _) = try lb.next() {
                        guard bf == 1 else { try lb.skipField(); continue }
                        var ep = try lb.messageField()
                        while let (ef, _) = try ep.next() {
                            guard ef == 1 else { try ep.skipField(); continue }
                            var addr = try ep.messageField()
                            while let (af, _) = try addr.next() {
                                guard af == 1 else { try addr.skipField(); continue }
                                var sock = try addr.messageField()
                                while let (sf, _) = try sock.next() {
                                    if sf == 3 { ports.append(try sock.uint32Field()) } else { try sock.skipField() }
                                }
                            }
                        }
                    }
                }
            }
        }
        return ports
    }
}
