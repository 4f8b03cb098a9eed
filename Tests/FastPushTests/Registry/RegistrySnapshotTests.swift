import Testing
@testable import FastPush

@Suite struct RegistrySnapshotTests {
    private func svc(_ host: String, _ ns: String, config: String = "c") -> Service {
        Service(hostname: host, namespace: ns, configName: config, ports: [ServicePort(number: 80, name: "g")], endpoints: [])
    }

    @Test func sortsByNamespaceThenHostname() {
        let s = RegistrySnapshot(services: [svc("b", "n2"), svc("z", "n1"), svc("a", "n2"), svc("a", "n1")])
        #expect(s.services.map { "\($0.namespace)/\($0.hostname)" } == ["n1/a", "n1/z", "n2/a", "n2/b"])
    }

    @Test func looksUpByNamespaceAndHostname() {
        let s = RegistrySnapshot(services: [svc("a", "n1", config: "one"), svc("a", "n2", config: "two")])
        #expect(s.service(namespace: "n2", hostname: "a")?.configName == "two")
        #expect(s.service(namespace: "n3", hostname: "a") == nil)
        #expect(s.service(namespace: "n1", hostname: "b") == nil)
    }

    @Test func firstOfADuplicatePairWins() {
        let s = RegistrySnapshot(services: [svc("a", "n1", config: "first"), svc("a", "n1", config: "second")])
        #expect(s.count == 1)
        #expect(s.service(namespace: "n1", hostname: "a")?.configName == "first")
    }

    @Test func equalityIgnoresWarnings() {
        #expect(RegistrySnapshot(services: [svc("a", "n")], warnings: ["w"]) == RegistrySnapshot(services: [svc("a", "n")]))
        #expect(RegistrySnapshot(services: [svc("a", "n")]) != RegistrySnapshot.empty)
    }
}
