import Testing
@testable import FastPush

/// Resource shapes against the rules gRPC's xDS client enforces (grpc-xds-client-notes.md).
@Suite struct GeneratorTests {
    @Test func loadAssignmentGroupsByLocalityDedupesAndWeighs() {
        let svc = Fixtures.service("x.ns.svc", ns: "ns", endpoints: [
            WorkloadEndpoint(address: "10.0.0.1", locality: Locality(istioString: "r/b"), weight: 3),
            WorkloadEndpoint(address: "10.0.0.2", locality: Locality(istioString: "r/a")),
            WorkloadEndpoint(address: "10.0.0.1", locality: Locality(istioString: "r/b"), weight: 3),  // duplicate
            WorkloadEndpoint(address: "10.0.0.3", ports: ["grpc-8080": 9999], locality: Locality(istioString: "r/b")),
        ])
        let cla = EDSGenerator.loadAssignment(name: "outbound|8080||x.ns.svc", service: svc, port: svc.ports[0])
        #expect(cla.localities.count == 2)
        #expect(cla.localities.map(\.zone) == ["a", "b"])
        #expect(cla.localities.allSatisfy { $0.priority == 0 && ($0.weight ?? 0) > 0 })
        let b = cla.localities[1]
        #expect(b.endpoints.map(\.address) == ["10.0.0.1", "10.0.0.3"])
        #expect(b.endpoints.map(\.port) == [8080, 9999])
        #expect(b.weight == 4)
        #expect(b.endpoints.allSatisfy { ($0.weight ?? 1) > 0 })
    }

    @Test func grpcListenerRouteAndClusterNamesMatchTheTarget() throws {
        let server = Fixtures.server()
        let c = TestClient(server, namespace: "demo")
        let host = "echo.demo.svc.cluster.local"
        for target in ["\(host):8080", host] {
            c.send(.lds, names: [target])
            let lds = try #require(c.last(.lds))
            #expect(lds.resources.count == 1)
            // The listener is named exactly as asked, and points at route HOST:PORT.
            let bytes = lds.resources[0].value
            #expect(String(decoding: bytes, as: UTF8.self).contains(target))
            #expect(String(decoding: bytes, as: UTF8.self).contains("\(host):8080"))
            c.ack(.lds, names: [target])
        }
        c.send(.rds, names: ["\(host):8080"])
        let rds = try #require(c.last(.rds))
        let text = String(decoding: rds.resources[0].value, as: UTF8.self)
        #expect(text.contains("outbound|8080||\(host)"))
    }

    @Test func unknownNamesAreOmittedOrEmpty() throws {
        let server = Fixtures.server()
        let c = TestClient(server, namespace: "demo")
        c.send(.lds, names: ["nope.svc:1"])
        #expect(try #require(c.last(.lds)).resources.isEmpty)
        c.send(.eds, names: ["outbound|1||nope.svc"])
        #expect(try #require(c.last(.eds)).resources.count == 1)  // an empty assignment
        c.send(.cds, names: ["outbound|1||nope.svc"])
        #expect(try #require(c.last(.cds)).resources.isEmpty)
    }

    @Test func needsPushFollowsIstioR130() {
        let ep = PushRequest(full: false, configsUpdated: [ConfigKey(kind: .endpoints, name: "a", namespace: "n")])
        #expect(Generators.needsPush(.eds, ep))
        #expect(!Generators.needsPush(.cds, ep) && !Generators.needsPush(.lds, ep) && !Generators.needsPush(.rds, ep))
        let full = PushRequest(full: true, configsUpdated: [ConfigKey(kind: .serviceEntry, name: "a", namespace: "n")])
        #expect(XdsType.allCases.allSatisfy { Generators.needsPush($0, full) })
        #expect(!Generators.needsPush(.cds, PushRequest(full: true, configsUpdated: [])))
        #expect(Generators.needsPush(.cds, PushRequest(forced: true)))
    }

    @Test func proxyNamespaceFromMetadataThenNodeID() {
        var n = Node()
        n.id = "sidecar~10.1.1.1~pod-1.shop~shop.svc.cluster.local"
        #expect(Proxy(node: n).namespace == "shop")
        n.metadata = ProtoStruct(fields: ["NAMESPACE": .string("meta")])
        #expect(Proxy(node: n).namespace == "meta")
        #expect(Proxy(node: Node(), defaultNamespace: "fallback").namespace == "fallback")
    }
}
