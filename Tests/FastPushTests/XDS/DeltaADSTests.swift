import Testing
@testable import FastPush

/// Delta ADS on a DiscoveryServer without sockets: the numbered cases of delta-xds-semantics.md
/// (section 9) that apply to fastpilot, with fastpilot's expected results.
@Suite struct DeltaADSTests {
    static let echo = ResourceNames.outboundCluster(port: 8080, host: "echo.demo.svc.cluster.local")
    static let ledger = ResourceNames.outboundCluster(port: 7070, host: "ledger.payments.svc.cluster.local")

    /// Envoy's delta flow: wildcard CDS, EDS by name, wildcard LDS, RDS by name, each ACKed.
    func envoy(_ server: DiscoveryServer, namespace: String = "demo") -> DeltaTestClient {
        let c = DeltaTestClient(server, id: "sidecar~10.0.0.9~app.\(namespace)~\(namespace).svc.cluster.local")
        c.send(.cds)
        c.ack(.cds)
        let clusters = c.names(c.last(.cds))
        c.send(.eds, subscribe: clusters)
        c.ack(.eds)
        c.send(.lds)
        c.ack(.lds)
        let routes = server.pushContext.view(for: namespace).ports.map(String.init)
        c.send(.rds, subscribe: routes)
        c.ack(.rds)
        return c
    }

    @Test("case 1: a first request without a node ends the stream INVALID_ARGUMENT")
    func firstRequestWithoutNode() {
        let server = Fixtures.server()
        let c = DeltaTestClient(server)
        let outcome = c.send(.cds, withNode: false)
        guard case let .close(status) = outcome else { Issue.record("stream not closed: \(outcome)"); return }
        #expect(status.code == .invalidArgument)
        let empty = DeltaTestClient(server, id: "")
        guard case .close = empty.send(.cds) else { Issue.record("empty node id accepted"); return }
    }

    @Test("case 3: legacy wildcard CDS gets every cluster in scope with 16-hex versions and a nonce")
    func legacyWildcard() throws {
        let server = Fixtures.server()
        let c = DeltaTestClient(server, namespace: "demo")
        c.send(.cds)
        let r = try #require(c.last(.cds))
        #expect(Set(r.resources.map(\.name)) == [Self.echo, Self.ledger])
        #expect(r.removedResources.isEmpty)
        #expect(!r.nonce.isEmpty)
        #expect(r.systemVersionInfo == String(server.pushContext.version))
        for res in r.resources {
            #expect(res.version.count == 16 && res.version.allSatisfy { $0.isHexDigit && !$0.isUppercase })
            #expect(res.resource?.typeURL == EnvoyTypeURL.cluster)
        }
    }

    @Test("cases 4-5: explicit * is the same set; * subscribed and unsubscribed at once is an empty answer")
    func explicitWildcard() throws {
        let server = Fixtures.server()
        let a = DeltaTestClient(server, namespace: "demo")
        a.send(.cds, subscribe: ["*"])
        #expect(Set(a.names(a.last(.cds))) == [Self.echo, Self.ledger])
        let b = DeltaTestClient(server, namespace: "demo")
        b.send(.cds, subscribe: ["*"], unsubscribe: ["*"])
        let r = try #require(b.last(.cds))
        #expect(r.resources.isEmpty && r.removedResources.isEmpty)
    }

    @Test("cases 6-7: an ACK gets nothing; a NACK gets nothing, is counted and shown, the next ACK clears it")
    func ackAndNack() throws {
        let server = Fixtures.server()
        let c = envoy(server)
        let count = c.received.count
        c.ack(.cds)
        c.ack(.eds)
        #expect(c.received.count == count)
        let before = server.metrics.rejects[XdsType.cds.rawValue].count
        c.send(.cds, nonce: c.last(.cds)!.nonce, error: RPCStatus(code: 13, message: "bad cluster"))
        #expect(c.received.count == count)
        #expect(server.metrics.rejects[XdsType.cds.rawValue].count == before + 1)
        #expect(c.conn.snapshot.watched[.cds]?.lastError?.contains("bad cluster") == true)
        c.ack(.cds)
        #expect(c.conn.snapshot.watched[.cds]?.lastError == nil)
        let w = try #require(c.conn.snapshot.watched[.cds])
        #expect(w.nonceAcked == w.nonceSent)
    }

    @Test("case 8: a NACK that subscribes EDS B records B and answers it")
    func nackWithSubscribe() throws {
        let server = Fixtures.server()
        let c = DeltaTestClient(server, namespace: "demo")
        c.send(.eds, subscribe: [Self.echo])
        c.send(.eds, subscribe: [Self.ledger], nonce: c.last(.eds)!.nonce, error: RPCStatus(code: 13, message: "no"))
        #expect(c.names(c.last(.eds)) == [Self.ledger])
        #expect(c.conn.snapshot.watched[.eds]?.names.names == [Self.ledger, Self.echo].sorted())
    }

    @Test("cases 9-10: a stale nonce is counted and ignored, but its subscription is applied and answered")
    func staleNonce() throws {
        let server = Fixtures.server()
        let c = DeltaTestClient(server, namespace: "demo")
        c.send(.eds, subscribe: [Self.echo])
        let before = server.metrics.expiredNonce[XdsType.eds.rawValue].count
        c.send(.eds, nonce: "stale")
        #expect(c.received.count == 1)
        #expect(server.metrics.expiredNonce[XdsType.eds.rawValue].count == before + 1)
        c.send(.eds, subscribe: [Self.ledger], nonce: "stale")
        #expect(c.names(c.last(.eds)) == [Self.ledger])
        #expect(c.conn.snapshot.watched[.eds]?.nonceAcked == "")
    }

    @Test("cases 11-13: EDS by name, exactly the new names; unsubscribe gets nothing, not even pushes")
    func edsByName() throws {
        let server = Fixtures.server()
        let c = DeltaTestClient(server, namespace: "demo")
        c.send(.eds, subscribe: [Self.echo])
        #expect(c.names(c.last(.eds)) == [Self.echo])
        c.send(.eds, subscribe: [Self.ledger], nonce: c.last(.eds)!.nonce)
        #expect(c.names(c.last(.eds)) == [Self.ledger])
        let count = c.received.count
        c.send(.eds, unsubscribe: [Self.ledger])
        #expect(c.received.count == count)
        c.send(.eds, unsubscribe: ["outbound|1||never.subscribed"])
        #expect(c.received.count == count)
        // An endpoint change of the unsubscribed cluster does not reach the stream.
        var ledger = Fixtures.ledger
        ledger.endpoints = [WorkloadEndpoint(address: "10.9.9.9")]
        server.updateRegistry(RegistrySnapshot(services: [Fixtures.echo, ledger, Fixtures.privateSvc]))
        server.drainQueue()
        #expect(c.received.count == count)
    }

    @Test("cases 15-16: a re-subscribed name is sent again; an unknown cluster gets an empty CLA")
    func resubscribeAndUnknown() throws {
        let server = Fixtures.server()
        let c = DeltaTestClient(server, namespace: "demo")
        c.send(.eds, subscribe: [Self.echo])
        c.ack(.eds, subscribe: [Self.echo])
        #expect(c.names(c.last(.eds)) == [Self.echo])
        #expect(c.received(.eds).count == 2)
        c.ack(.eds, subscribe: ["outbound|1||gone.invalid"])
        let r = try #require(c.last(.eds))
        #expect(c.names(r) == ["outbound|1||gone.invalid"] && r.removedResources.isEmpty)
        let cla = try EnvoyTestDecode.cla(r.resources[0])
        #expect(cla.clusterName == "outbound|1||gone.invalid" && cla.endpointCount == 0)
    }

    @Test("cases 18-21: named CDS that does not exist is removed; explicit plus wildcard; unsubscribing *")
    func cdsNamesAndWildcard() throws {
        let server = Fixtures.server()
        let named = DeltaTestClient(server, namespace: "demo")
        named.send(.cds, subscribe: ["outbound|1||gone.invalid"])
        #expect(named.last(.cds)?.removedResources == ["outbound|1||gone.invalid"])

        let c = DeltaTestClient(server, namespace: "demo")
        c.send(.cds)
        c.ack(.cds, subscribe: [Self.echo])
        #expect(c.names(c.last(.cds)) == [Self.echo], "case 19: A sent once")
        c.ack(.cds, subscribe: ["outbound|9||x.invalid"])
        #expect(c.last(.cds)?.removedResources == ["outbound|9||x.invalid"] && c.last(.cds)!.resources.isEmpty, "case 20")
        var count = c.received.count
        c.send(.cds, unsubscribe: ["outbound|9||x.invalid"])
        #expect(c.received.count == count, "case 20: unsubscribing X needs no answer")
        c.send(.cds, unsubscribe: [Self.echo])
        #expect(c.names(c.last(.cds)) == [Self.echo], "case 19: still in the wildcard, so sent again")
        count = c.received.count
        c.send(.cds, unsubscribe: ["*"])
        #expect(c.received.count == count, "case 21: no answer")
        #expect(c.conn.snapshot.watched[.cds]?.wildcard == false)
        // Later pushes carry only explicit names: none.
        server.updateRegistry(RegistrySnapshot(services: [Fixtures.echo, Fixtures.ledger, Fixtures.privateSvc,
                                                          Fixtures.service("new.demo.svc.cluster.local", ns: "demo")]))
        server.drainQueue()
        #expect(c.received(.cds).count == count - 0 || c.last(.cds)?.resources.isEmpty == true)
        #expect(!c.received(.cds).contains { $0.resources.contains { $0.name.contains("new.demo") } })
    }

    @Test("case 24: an endpoint-only change sends exactly that CLA, to subscribers only, nothing else")
    func endpointChange() throws {
        let server = Fixtures.server()
        let c = envoy(server)
        let other = DeltaTestClient(server, namespace: "demo")
        other.send(.eds, subscribe: [Self.ledger])
        let count = c.received.count, otherCount = other.received.count
        var echo = Fixtures.echo
        echo.endpoints.append(WorkloadEndpoint(address: "10.0.0.3"))
        server.updateRegistry(RegistrySnapshot(services: [echo, Fixtures.ledger, Fixtures.privateSvc]))
        server.drainQueue()
        #expect(c.received.count == count + 1)
        let r = try #require(c.received.last)
        #expect(r.typeURL == EnvoyTypeURL.clusterLoadAssignment && c.names(r) == [Self.echo] && r.removedResources.isEmpty)
        #expect(other.received.count == otherCount)
    }

    @Test("cases 28-29: a service added sends its cluster, its listener and the port's route; removed, its cluster is removed")
    func serviceAddedAndRemoved() throws {
        let server = Fixtures.server()
        let c = envoy(server)
        let count = c.received.count
        let added = Fixtures.service("new.demo.svc.cluster.local", ns: "demo", ports: [9090])
        server.updateRegistry(RegistrySnapshot(services: [Fixtures.echo, Fixtures.ledger, Fixtures.privateSvc, added]))
        server.drainQueue()
        let newCluster = ResourceNames.outboundCluster(port: 9090, host: "new.demo.svc.cluster.local")
        let after = Array(c.received[count...])
        #expect(after.map(\.typeURL) == [EnvoyTypeURL.cluster, EnvoyTypeURL.listener])
        #expect(c.names(after[0]) == [newCluster])
        #expect(c.names(after[1]) == ["0.0.0.0_9090"])
        // Envoy subscribes to the new CLA and route: exactly those are answered.
        c.ack(.cds)
        c.ack(.lds)
        c.send(.eds, subscribe: [newCluster])
        #expect(c.names(c.last(.eds)) == [newCluster])
        c.ack(.eds)
        c.send(.rds, subscribe: ["9090"])
        #expect(c.names(c.last(.rds)) == ["9090"])
        c.ack(.rds)
        let count2 = c.received.count
        server.updateRegistry(RegistrySnapshot(services: [Fixtures.echo, Fixtures.ledger, Fixtures.privateSvc]))
        server.drainQueue()
        let removal = Array(c.received[count2...])
        let cds = try #require(removal.first { $0.typeURL == EnvoyTypeURL.cluster })
        #expect(cds.resources.isEmpty && cds.removedResources == [newCluster])
        let lds = try #require(removal.first { $0.typeURL == EnvoyTypeURL.listener })
        #expect(lds.removedResources == ["0.0.0.0_9090"])
        // The removed service's CLA: empty, not removed (Envoy unsubscribes once CDS dropped it).
        let eds = try #require(removal.first { $0.typeURL == EnvoyTypeURL.clusterLoadAssignment })
        #expect(c.names(eds) == [newCluster] && eds.removedResources.isEmpty)
    }

    @Test("case 35: a forced push with no change sends nothing")
    func forcedNoChange() {
        let server = Fixtures.server()
        let c = envoy(server)
        let count = c.received.count
        server.pushAll(reason: .debug)
        server.drainQueue()
        #expect(c.received.count == count)
    }

    @Test("case 36: versions are content hashes: unchanged across pushes and servers, changed with content")
    func versionsAreContentHashes() throws {
        let a = envoy(Fixtures.server())
        let b = envoy(Fixtures.server())
        #expect(a.held == b.held)
        #expect(a.held[.eds]?[Self.echo] != nil)
        var echo = Fixtures.echo
        echo.endpoints = [WorkloadEndpoint(address: "10.1.1.1")]
        let c = envoy(Fixtures.server([echo, Fixtures.ledger, Fixtures.privateSvc]))
        #expect(c.held[.eds]?[Self.echo] != a.held[.eds]?[Self.echo])
        #expect(c.held[.eds]?[Self.ledger] == a.held[.eds]?[Self.ledger])
    }

    @Test("case 37: a NACKed response is not resent alone; the next response of the type carries it again")
    func nackHealing() throws {
        let server = Fixtures.server()
        let c = envoy(server)
        c.send(.cds, nonce: c.last(.cds)!.nonce, error: RPCStatus(code: 13, message: "rejected"))
        let count = c.received.count
        server.pushAll(reason: .debug)
        server.drainQueue()
        let carried = c.received[count...].filter { $0.typeURL == EnvoyTypeURL.cluster }
        #expect(carried.count == 1)
        #expect(Set(carried.flatMap { $0.resources.map(\.name) }) == [Self.echo, Self.ledger])
    }

    @Test("cases 39-41: reconnect with initial_resource_versions: unchanged skipped, gone removed, changed sent")
    func reconnect() throws {
        let server = Fixtures.server()
        let first = envoy(server)
        first.apply()
        let held = first.held
        first.close()
        // Same config: every type answered empty.
        let again = DeltaTestClient(server, id: "sidecar~10.0.0.9~app.demo~demo.svc.cluster.local")
        again.send(.cds, initial: held[.cds]!.map { ($0.key, $0.value) })
        again.send(.eds, subscribe: Array(held[.eds]!.keys), initial: held[.eds]!.map { ($0.key, $0.value) })
        again.send(.lds, initial: held[.lds]!.map { ($0.key, $0.value) })
        again.send(.rds, subscribe: Array(held[.rds]!.keys), initial: held[.rds]!.map { ($0.key, $0.value) })
        #expect(again.received.count == 4)
        #expect(again.received.allSatisfy { $0.resources.isEmpty && $0.removedResources.isEmpty })
        // B deleted, C added, A's version unknown ("") while it is unchanged.
        server.updateRegistry(RegistrySnapshot(services: [Fixtures.echo, Fixtures.privateSvc,
                                                          Fixtures.service("c.demo.svc.cluster.local", ns: "demo", ports: [8080])]))
        let third = DeltaTestClient(server, id: "sidecar~10.0.0.9~app.demo~demo.svc.cluster.local")
        var claims = held[.cds]!.map { ($0.key, $0.value) }
        claims.removeAll { $0.0 == Self.echo }
        claims.append((Self.echo, ""))
        third.send(.cds, initial: claims)
        let r = try #require(third.last(.cds))
        #expect(Set(third.names(r)) == [Self.echo, ResourceNames.outboundCluster(port: 8080, host: "c.demo.svc.cluster.local")])
        #expect(r.removedResources == [Self.ledger])
    }

    @Test("case 42-43: EDS first on a new stream is answered at once; a name held without a version is sent")
    func edsFirstOnReconnect() throws {
        let server = Fixtures.server()
        let first = envoy(server)
        first.apply()
        let v = try #require(first.held[.eds]?[Self.echo])
        let c = DeltaTestClient(server, namespace: "demo")
        c.send(.eds, subscribe: [Self.echo, Self.ledger], initial: [(Self.echo, v)])
        #expect(c.names(c.last(.eds)) == [Self.ledger])
    }

    @Test("a claimed \"*\" in initial_resource_versions is no resource: not removed, not subscribed")
    func starClaimIsIgnored() throws {
        let server = Fixtures.server()
        let c = DeltaTestClient(server, namespace: "demo")
        c.send(.cds, initial: [("*", "")])
        let r = try #require(c.last(.cds))
        #expect(r.removedResources.isEmpty)
        #expect(Set(c.names(r)) == [Self.echo, Self.ledger])
        c.send(.eds, initial: [("*", ""), (Self.echo, "")])
        #expect(c.names(c.last(.eds)) == [Self.echo])
        #expect(c.conn.snapshot.watched[.eds]?.names.names == [Self.echo])
    }

    @Test("case 44: a nonce from the old stream on a first request is a first request")
    func oldNonceOnFirstRequest() {
        let server = Fixtures.server()
        let c = DeltaTestClient(server, namespace: "demo")
        c.send(.cds, nonce: "42")
        #expect(c.received(.cds).count == 1)
    }

    @Test("case 46: SotW and Delta streams of one node both get an endpoint change")
    func sotwAndDelta() throws {
        let server = Fixtures.server()
        let d = envoy(server)
        let s = TestClient(server, id: "sidecar~10.0.0.9~app.demo~demo.svc.cluster.local")
        s.send(.eds, names: [Self.echo, Self.ledger])
        var echo = Fixtures.echo
        echo.endpoints.append(WorkloadEndpoint(address: "10.0.0.4"))
        server.updateRegistry(RegistrySnapshot(services: [echo, Fixtures.ledger, Fixtures.privateSvc]))
        server.drainQueue()
        #expect(d.names(d.received.last) == [Self.echo])
        #expect(s.last(.eds)?.resources.count == 1)
        #expect(server.allConnections.map(\.xdsProtocol).sorted { $0.rawValue < $1.rawValue } == [.delta, .sotw])
    }

    @Test("case 48: a NACK as the first request of a type creates no watch and gets no answer")
    func nackFirst() {
        let server = Fixtures.server()
        let c = DeltaTestClient(server, namespace: "demo")
        c.send(.cds)
        let before = server.metrics.rejects[XdsType.eds.rawValue].count
        c.send(.eds, nonce: "1", error: RPCStatus(code: 13, message: "x"))
        #expect(c.received.count == 1)
        #expect(c.conn.snapshot.watched[.eds] == nil)
        #expect(server.metrics.rejects[XdsType.eds.rawValue].count == before + 1)
    }
}

/// Reads the few fields the Delta tests check from an encoded resource.
enum EnvoyTestDecode {
    struct CLA { var clusterName = ""; var endpointCount = 0 }

    static func cla(_ r: DeltaResource) throws -> CLA {
        var out = CLA()
        let value = r.resource?.value ?? []
        try value.withUnsafeBytes { buf in
            var rd = ProtoReader(buf)
            while let (f, _) = try rd.next() {
                if f == 1 { out.clusterName = try rd.stringField() }
                else if f == 2 {
                    var loc = try rd.messageField()
                    while let (lf, _) = try loc.next() {
                        if lf == 2 { out.endpointCount += 1; try loc.skipField() } else { try loc.skipField() }
                    }
                } else { try rd.skipField() }
            }
        }
        return out
    }
}
