import Testing
@testable import FastPush

@Suite struct SPIFFEIdentityTests {
    @Test func parsesIstioIdentities() throws {
        let id = try #require(SPIFFEIdentity(uri: "spiffe://cluster.local/ns/payments/sa/ledger-v2"))
        #expect(id.trustDomain == "cluster.local")
        #expect(id.namespace == "payments")
        #expect(id.serviceAccount == "ledger-v2")
        #expect(id.description == "spiffe://cluster.local/ns/payments/sa/ledger-v2")
        #expect(SPIFFEIdentity(uri: "spiffe://Example.ORG/ns/a/sa/b")?.trustDomain == "example.org")
    }

    @Test(arguments: [
        "https://cluster.local/ns/a/sa/b",
        "spiffe://cluster.local/ns/a",
        "spiffe://cluster.local/ns/a/sa/b/extra",
        "spiffe://cluster.local/ns//sa/b",
        "spiffe:///ns/a/sa/b",
        "spiffe://cluster.local/namespace/a/sa/b",
        "spiffe://cluster.local/ns/a%2Fb/sa/c",
        "spiffe://cluster.local/ns/a/sa/b?x=1",
        "spiffe://cluster.local/ns/a/sa/b#frag",
        "spiffe://cluster.local/ns/a.b/sa/c",
        "spiffe://cluster.local/ns/ä/sa/c",
        "",
    ])
    func refusesAnythingElse(_ uri: String) {
        #expect(SPIFFEIdentity(uri: uri) == nil)
    }

    static func code(_ o: DiscoveryServer.RequestOutcome) -> GRPCStatusCode? {
        if case let .close(status) = o { return status.code }
        return nil
    }

    static let identity = SPIFFEIdentity(uri: "spiffe://cluster.local/ns/default/sa/app")!

    @Test func aNodeInItsCertificatesNamespaceIsServed() {
        let server = Fixtures.server()
        let c = TestClient(server, id: "sidecar~10.0.0.1~app.default~default.svc.cluster.local", identity: Self.identity)
        #expect(c.send(.cds) == .ok)
        #expect(c.last(.cds) != nil)
        #expect(c.transport.stream.closedWith == nil)
    }

    @Test func aNodeClaimingAnotherNamespaceIsRefusedWithPermissionDenied() {
        let server = Fixtures.server()
        let before = server.metrics.identityDenied.count
        let c = TestClient(server, id: "sidecar~10.0.0.1~app.payments~payments.svc.cluster.local", identity: Self.identity)
        #expect(Self.code(c.send(.cds)) == .permissionDenied)
        #expect(c.received.isEmpty)
        #expect(server.metrics.identityDenied.count == before + 1)
        // Metadata is a claim too.
        let m = TestClient(server, id: "proxyless", namespace: "payments", identity: Self.identity)
        #expect(Self.code(m.send(.lds)) == .permissionDenied)
        #expect(m.received.isEmpty)
    }

    @Test func aNodeThatClaimsNothingGetsItsCertificatesNamespace() {
        let server = Fixtures.server()
        let other = SPIFFEIdentity(uri: "spiffe://cluster.local/ns/other/sa/x")!
        let c = TestClient(server, id: "proxyless-client", identity: other)
        #expect(c.send(.cds) == .ok)
        #expect(c.transport.stream.closedWith == nil)
        #expect(c.conn.proxy?.namespace == "other")
    }

    @Test func deltaStreamsFollowTheSameRule() {
        let server = Fixtures.server()
        let c = DeltaTestClient(server, id: "sidecar~10.0.0.1~app.payments~payments.svc.cluster.local", identity: Self.identity)
        #expect(Self.code(c.send(.cds, subscribe: ["*"])) == .permissionDenied)
        #expect(c.received.isEmpty)
        let ok = DeltaTestClient(server, id: "sidecar~10.0.0.1~app.default~default.svc.cluster.local", identity: Self.identity)
        #expect(ok.send(.cds, subscribe: ["*"]) == .ok)
        #expect(!ok.received.isEmpty)
    }

    @Test func withoutACertificateTheClaimStands() {
        let server = Fixtures.server()
        let c = TestClient(server, id: "sidecar~10.0.0.1~app.payments~payments.svc.cluster.local")
        #expect(c.send(.cds) == .ok)
        #expect(c.conn.proxy?.namespace == "payments")
    }
}
