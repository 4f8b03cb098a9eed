import Testing
@testable import FastPush

@Suite struct RegistryDiffTests {
    private static let grpc = ServicePort(number: 8080, name: "grpc", protocolName: "GRPC")
    private static let a = WorkloadEndpoint(address: "10.0.0.1", ports: ["grpc": 15051], locality: Locality(region: "r1"))
    private static let b = WorkloadEndpoint(address: "10.0.0.2", weight: 2)

    private func svc(_ host: String = "echo.demo", ns: String = "demo", endpoints: [WorkloadEndpoint] = [a, b],
                     ports: [ServicePort] = [grpc], exportTo: ExportTo = .all, config: String = "echo") -> Service {
        Service(hostname: host, namespace: ns, configName: config, ports: ports, endpoints: endpoints, exportTo: exportTo)
    }

    private func diff(_ old: [Service], _ new: [Service]) -> RegistryDiff {
        RegistryDiff(from: RegistrySnapshot(services: old), to: RegistrySnapshot(services: new))
    }

    private func full(_ host: String = "echo.demo", ns: String = "demo") -> ConfigKey {
        ConfigKey(kind: .serviceEntry, name: host, namespace: ns)
    }

    private func eds(_ host: String = "echo.demo", ns: String = "demo") -> ConfigKey {
        ConfigKey(kind: .endpoints, name: host, namespace: ns)
    }

    @Test func identicalContentIsAnEmptyDiff() {
        let d = diff([svc(), svc("other.demo")], [svc("other.demo"), svc()])
        #expect(d.isEmpty)
        #expect(d == RegistryDiff())
    }

    @Test func endpointOrderDoesNotMatter() {
        #expect(diff([svc(endpoints: [Self.a, Self.b])], [svc(endpoints: [Self.b, Self.a])]).isEmpty)
    }

    @Test func endpointMultiplicityMatters() {
        let d = diff([svc(endpoints: [Self.a, Self.b])], [svc(endpoints: [Self.a, Self.a])])
        #expect(d.endpointChanges == [eds()])
    }

    @Test func addedServiceIsAFullChange() {
        let d = diff([], [svc()])
        #expect(d.fullChanges == [full()])
        #expect(d.endpointChanges.isEmpty)
    }

    @Test func newServiceIsFullEvenIfItOnlyGainedEndpoints() {
        // Present before under another namespace only: (namespace, hostname) is new -> full.
        let d = diff([svc(ns: "other", endpoints: [])], [svc(ns: "other", endpoints: []), svc(ns: "demo", endpoints: [Self.a])])
        #expect(d.fullChanges == [full(ns: "demo")])
        #expect(d.endpointChanges.isEmpty)
    }

    @Test func removedServiceIsAFullChange() {
        let d = diff([svc(), svc("gone.demo")], [svc()])
        #expect(d.fullChanges == [full("gone.demo")])
        #expect(d.endpointChanges.isEmpty)
    }

    @Test func changedPortsIsAFullChange() {
        let d = diff([svc()], [svc(ports: [ServicePort(number: 8081, name: "grpc", protocolName: "GRPC")])])
        #expect(d.fullChanges == [full()])
        #expect(d.endpointChanges.isEmpty)
    }

    @Test func changedTargetPortIsAFullChange() {
        let d = diff([svc()], [svc(ports: [ServicePort(number: 8080, name: "grpc", protocolName: "GRPC", targetPort: 9000)])])
        #expect(d.fullChanges == [full()])
    }

    @Test func changedExportToIsAFullChange() {
        let d = diff([svc()], [svc(exportTo: .namespaces([], includesOwn: true))])
        #expect(d.fullChanges == [full()])
    }

    @Test func changedConfigNameIsAFullChange() {
        #expect(diff([svc()], [svc(config: "echo-v2")]).fullChanges == [full()])
    }

    @Test func changedResolutionIsAFullChange() {
        var dns = svc()
        dns.resolution = .dns
        #expect(diff([svc()], [dns]).fullChanges == [full()])
    }

    @Test func shapeAndEndpointChangeTogetherIsOnlyFull() {
        let d = diff([svc()], [svc(endpoints: [Self.a], exportTo: .namespaces(["x"], includesOwn: false))])
        #expect(d.fullChanges == [full()])
        #expect(d.endpointChanges.isEmpty)
    }

    @Test func changedEndpointsIsAnEndpointChange() {
        var moved = Self.b
        moved.weight = 5
        let d = diff([svc()], [svc(endpoints: [Self.a, moved])])
        #expect(d.endpointChanges == [eds()])
        #expect(d.fullChanges.isEmpty)
    }

    @Test func endpointsBecomingEmptyIsAnEndpointChange() {
        let d = diff([svc()], [svc(endpoints: [])])
        #expect(d.endpointChanges == [eds()])
        #expect(d.fullChanges.isEmpty)
    }

    @Test func endpointsComingBackIsAnEndpointChange() {
        let d = diff([svc(endpoints: [])], [svc()])
        #expect(d.endpointChanges == [eds()])
        #expect(d.fullChanges.isEmpty)
    }

    @Test func keysCarryHostnameAndServiceNamespace() {
        let d = diff([svc("x.example", ns: "n1")], [svc("x.example", ns: "n1", endpoints: []), svc("y.example", ns: "n2")])
        #expect(d.endpointChanges == [ConfigKey(kind: .endpoints, name: "x.example", namespace: "n1")])
        #expect(d.fullChanges == [ConfigKey(kind: .serviceEntry, name: "y.example", namespace: "n2")])
        #expect(d.allChanges.count == 2)
    }

    @Test func diffOfParsedFilesOnlyTouchesWhatChanged() throws {
        let before = try ServiceEntryParser.parse(json: RegistryParsingTests.kubectlList, source: "r.json")
        let edited = RegistryParsingTests.kubectlList.replacingOccurrences(of: "192.168.1.10", with: "192.168.1.11")
        let after = try ServiceEntryParser.parse(json: edited, source: "r.json")
        let d = RegistryDiff(from: before, to: after)
        #expect(d.endpointChanges == [eds("private.alpha.svc.cluster.local", ns: "alpha")])
        #expect(d.fullChanges.isEmpty)
    }
}

private extension String {
    func replacingOccurrences(of a: String, with b: String) -> String {
        split(separator: a, omittingEmptySubsequences: false).joined(separator: b)
    }
}
