import Testing
@testable import FastPush

@Suite struct RegistryParsingTests {
    /// Trimmed from a real `kubectl get serviceentries.networking.istio.io -A -o json`.
    static let kubectlList = #"""
    {
        "apiVersion": "v1",
        "items": [
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "ServiceEntry",
                "metadata": {
                    "annotations": {
                        "kubectl.kubernetes.io/last-applied-configuration": "{\"apiVersion\":\"networking.istio.io/v1\"}\n"
                    },
                    "creationTimestamp": "2026-03-02T10:11:12Z",
                    "generation": 3,
                    "name": "echo",
                    "namespace": "demo",
                    "resourceVersion": "918273",
                    "uid": "5b0f9a57-5d1c-4a55-9a7e-0cde2c2f1b7a"
                },
                "spec": {
                    "endpoints": [
                        {
                            "address": "10.0.0.1",
                            "labels": {"app": "echo", "version": "v1"},
                            "locality": "us-east1/us-east1-b/rack1",
                            "ports": {"grpc": 15051},
                            "weight": 3,
                            "network": "net1",
                            "serviceAccount": "echo"
                        },
                        {"address": "fd00::2", "locality": "us-west1"}
                    ],
                    "hosts": ["echo.demo.svc.cluster.local", "echo.example.internal"],
                    "location": "MESH_INTERNAL",
                    "ports": [
                        {"name": "grpc", "number": 8080, "protocol": "GRPC"},
                        {"name": "http-admin", "number": 9090, "protocol": "HTTP", "targetPort": 19090}
                    ],
                    "resolution": "STATIC"
                },
                "status": {"conditions": [], "observedGeneration": "3"}
            },
            {
                "apiVersion": "networking.istio.io/v1beta1",
                "kind": "ServiceEntry",
                "metadata": {"name": "private", "namespace": "alpha"},
                "spec": {
                    "hosts": ["private.alpha.svc.cluster.local"],
                    "exportTo": ["."],
                    "location": "MESH_EXTERNAL",
                    "ports": [{"name": "tcp", "number": 5432, "protocol": "TCP"}],
                    "resolution": "STATIC",
                    "endpoints": [{"address": "192.168.1.10"}]
                }
            },
            {
                "apiVersion": "networking.istio.io/v1alpha3",
                "kind": "ServiceEntry",
                "metadata": {"name": "shared", "namespace": "alpha"},
                "spec": {
                    "hosts": ["shared.alpha.svc.cluster.local"],
                    "exportTo": [".", "beta", "gamma"],
                    "ports": [{"name": "grpc", "number": 7070, "protocol": "GRPC"}],
                    "resolution": "STATIC",
                    "endpoints": []
                }
            }
        ],
        "kind": "List",
        "metadata": {"resourceVersion": ""}
    }
    """#

    @Test func parsesAKubectlList() throws {
        let snap = try ServiceEntryParser.parse(json: Self.kubectlList, source: "registry.json")
        // one service per host, sorted by (namespace, hostname)
        #expect(snap.services.map { "\($0.namespace)/\($0.hostname)" } == [
            "alpha/private.alpha.svc.cluster.local",
            "alpha/shared.alpha.svc.cluster.local",
            "demo/echo.demo.svc.cluster.local",
            "demo/echo.example.internal",
        ])
        #expect(snap.warnings.isEmpty)

        let echo = try #require(snap.service(namespace: "demo", hostname: "echo.demo.svc.cluster.local"))
        #expect(echo.configName == "echo")
        #expect(echo.resolution == .static)
        #expect(echo.exportTo == .all)
        #expect(echo.ports == [
            ServicePort(number: 8080, name: "grpc", protocolName: "GRPC"),
            ServicePort(number: 9090, name: "http-admin", protocolName: "HTTP", targetPort: 19090),
        ])
        #expect(echo.endpoints == [
            WorkloadEndpoint(address: "10.0.0.1", ports: ["grpc": 15051], labels: ["app": "echo", "version": "v1"],
                             locality: Locality(region: "us-east1", zone: "us-east1-b", subZone: "rack1"), weight: 3),
            WorkloadEndpoint(address: "fd00::2", locality: Locality(region: "us-west1")),
        ])
        // targetPort applies where the endpoint has no mapping of its own
        #expect(echo.endpoints[0].port(for: echo.ports[0]) == 15051)
        #expect(echo.endpoints[1].port(for: echo.ports[0]) == 8080)
        #expect(echo.endpoints[1].port(for: echo.ports[1]) == 19090)

        // hosts of one entry share everything but the hostname
        let alias = try #require(snap.service(namespace: "demo", hostname: "echo.example.internal"))
        #expect(alias.ports == echo.ports && alias.endpoints == echo.endpoints && alias.configName == "echo")
    }

    @Test func mapsExportTo() throws {
        let snap = try ServiceEntryParser.parse(json: Self.kubectlList, source: "registry.json")
        #expect(snap.service(namespace: "alpha", hostname: "private.alpha.svc.cluster.local")?.exportTo
            == .namespaces([], includesOwn: true))
        #expect(snap.service(namespace: "alpha", hostname: "shared.alpha.svc.cluster.local")?.exportTo
            == .namespaces(["beta", "gamma"], includesOwn: true))
    }

    @Test(arguments: [
        (#"["*"]"#, ExportTo.all),
        (#"["*", "other"]"#, ExportTo.all),
        (#"[]"#, ExportTo.all),
        (#"["~"]"#, ExportTo.namespaces([], includesOwn: false)),
        (#"["."]"#, ExportTo.namespaces([], includesOwn: true)),
        (#"["a", "b"]"#, ExportTo.namespaces(["a", "b"], includesOwn: false)),
        (#"[".", "a"]"#, ExportTo.namespaces(["a"], includesOwn: true)),
    ])
    func exportToVariants(_ list: String, _ expected: ExportTo) throws {
        let json = serviceEntryJSON(name: "x", spec: #"""
            {"hosts": ["x.default"], "ports": [{"name": "grpc", "number": 80}], "resolution": "STATIC",
             "exportTo": \#(list)}
            """#)
        let snap = try ServiceEntryParser.parse(json: json, source: "r.json")
        #expect(snap.services.first?.exportTo == expected)
    }

    @Test func absentExportToMeansAll() throws {
        let json = serviceEntryJSON(name: "x", spec: #"{"hosts": ["x.default"], "ports": [{"name": "g", "number": 80}], "resolution": "STATIC"}"#)
        #expect(try ServiceEntryParser.parse(json: json, source: "r.json").services.first?.exportTo == .all)
    }

    @Test func acceptsABareArrayAndASingleObject() throws {
        let a = serviceEntryJSON(name: "a", namespace: "ns1", spec: #"{"hosts": ["a.ns1"], "ports": [{"name": "g", "number": 80}], "resolution": "STATIC"}"#)
        let b = serviceEntryJSON(name: "b", namespace: nil, spec: #"{"hosts": ["b.default"], "ports": [{"name": "g", "number": 80}], "resolution": "STATIC"}"#)
        let arr = try ServiceEntryParser.parse(json: "[\(a), \(b)]", source: "r.json")
        #expect(arr.services.map(\.hostname) == ["b.default", "a.ns1"])  // "default" < "ns1"
        #expect(arr.services.first?.namespace == "default")  // absent namespace

        let one = try ServiceEntryParser.parse(json: a, source: "r.json")
        #expect(one.services.map(\.hostname) == ["a.ns1"])
    }

    @Test func emptyListIsAnEmptyRegistry() throws {
        #expect(try ServiceEntryParser.parse(json: listJSON([]), source: "r.json").isEmpty)
        #expect(try ServiceEntryParser.parse(json: "[]", source: "r.json").isEmpty)
    }

    @Test func duplicateHostKeepsTheFirstEntryInFileOrder() throws {
        let spec = { (port: Int) in #"{"hosts": ["dup.default"], "ports": [{"name": "g", "number": \#(port)}], "resolution": "STATIC"}"# }
        let snap = try ServiceEntryParser.parse(
            json: listJSON([serviceEntryJSON(name: "zz-first", spec: spec(80)), serviceEntryJSON(name: "aa-second", spec: spec(81))]),
            source: "r.json")
        #expect(snap.services.count == 1)
        #expect(snap.services.first?.configName == "zz-first")
        #expect(snap.services.first?.ports.first?.number == 80)
        #expect(snap.warnings.count == 1)
        #expect(snap.warnings.first?.contains("keeping default/zz-first") == true)
    }

    @Test func sameHostnameInTwoNamespacesIsTwoServices() throws {
        let spec = #"{"hosts": ["same.example"], "ports": [{"name": "g", "number": 80}], "resolution": "STATIC"}"#
        let snap = try ServiceEntryParser.parse(
            json: listJSON([serviceEntryJSON(name: "a", namespace: "n2", spec: spec), serviceEntryJSON(name: "a", namespace: "n1", spec: spec)]),
            source: "r.json")
        #expect(snap.services.map(\.namespace) == ["n1", "n2"])
        #expect(snap.warnings.isEmpty)
    }

    @Test func unsupportedResolutionSkipsTheEntryWithOneWarning() throws {
        let dns = serviceEntryJSON(name: "ext", spec: #"""
            {"hosts": ["api.example.com"], "ports": [{"name": "https", "number": 443, "protocol": "TLS"}],
             "resolution": "DNS", "location": "MESH_EXTERNAL", "endpoints": [{"address": "api.example.com"}]}
            """#)
        let none = serviceEntryJSON(name: "passthrough", spec: #"""
            {"hosts": ["db.example.com"], "ports": [{"name": "tcp", "number": 5432, "protocol": "TCP"}]}
            """#)
        let ok = serviceEntryJSON(name: "ok", spec: #"{"hosts": ["ok.default"], "ports": [{"name": "g", "number": 80}], "resolution": "STATIC"}"#)
        let snap = try ServiceEntryParser.parse(json: listJSON([dns, none, ok]), source: "r.json")
        #expect(snap.services.map(\.hostname) == ["ok.default"])
        #expect(snap.warnings.count == 2)
        #expect(snap.warnings.contains { $0.contains("default/ext") && $0.contains("resolution DNS") })
        #expect(snap.warnings.contains { $0.contains("default/passthrough") && $0.contains("NONE (the default") })
        // parse() logged them through the process-wide deduper: a reload will not log them again
        for w in snap.warnings { #expect(!RegistryWarnings.shared.isNew(w)) }
    }

    @Test func wildcardHostIsSkippedWithAWarning() throws {
        let json = serviceEntryJSON(name: "w", spec: #"""
            {"hosts": ["*.example.com", "real.example.com"], "ports": [{"name": "http", "number": 80, "protocol": "HTTP"}],
             "resolution": "STATIC", "endpoints": [{"address": "10.1.1.1"}]}
            """#)
        let snap = try ServiceEntryParser.parse(json: json, source: "r.json")
        #expect(snap.services.map(\.hostname) == ["real.example.com"])
        #expect(snap.warnings.count == 1)
        #expect(snap.warnings.first?.contains("*.example.com") == true)
    }

    @Test func unixSocketEndpointIsSkippedWithAWarning() throws {
        let json = serviceEntryJSON(name: "u", spec: #"""
            {"hosts": ["u.default"], "ports": [{"name": "g", "number": 80}], "resolution": "STATIC",
             "endpoints": [{"address": "unix:///var/run/u.sock"}, {"address": "10.0.0.9"}]}
            """#)
        let snap = try ServiceEntryParser.parse(json: json, source: "r.json")
        #expect(snap.services.first?.endpoints.map(\.address) == ["10.0.0.9"])
        #expect(snap.warnings.count == 1)
    }

    @Test func otherKindsInTheListAreSkipped() throws {
        let dr = #"{"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": "d", "namespace": "n"}, "spec": {"host": "x"}}"#
        let ok = serviceEntryJSON(name: "ok", spec: #"{"hosts": ["ok.default"], "ports": [{"name": "g", "number": 80}], "resolution": "STATIC"}"#)
        let snap = try ServiceEntryParser.parse(json: listJSON([dr, ok]), source: "r.json")
        #expect(snap.services.count == 1)
        #expect(snap.warnings == ["DestinationRule n/d is not a ServiceEntry; skipped"])
    }

    @Test func protocolStringIsKeptAsWritten() throws {
        let json = serviceEntryJSON(name: "p", spec: #"""
            {"hosts": ["p.default"], "resolution": "STATIC",
             "ports": [{"name": "a", "number": 1, "protocol": "HTTP2"}, {"name": "b", "number": 2, "protocol": "Mongo"}, {"name": "c", "number": 3}]}
            """#)
        let snap = try ServiceEntryParser.parse(json: json, source: "r.json")
        #expect(snap.services.first?.ports.map(\.protocolName) == ["HTTP2", "Mongo", ""])
    }

    @Test func weightAndTargetPortZeroMeanUnset() throws {
        let json = serviceEntryJSON(name: "z", spec: #"""
            {"hosts": ["z.default"], "resolution": "STATIC", "ports": [{"name": "g", "number": 80, "targetPort": 0}],
             "endpoints": [{"address": "10.0.0.1", "weight": 0}, {"address": "10.0.0.2", "weight": 4294967295}]}
            """#)
        let s = try #require(try ServiceEntryParser.parse(json: json, source: "r.json").services.first)
        #expect(s.ports.first?.targetPort == nil)
        #expect(s.endpoints.map(\.weight) == [0, UInt32.max])
    }

    @Test func warningDedupeRemembersMessagesForTheProcess() {
        let w = RegistryWarnings()
        #expect(w.isNew("resolution DNS is not supported"))
        #expect(!w.isNew("resolution DNS is not supported"))
        #expect(w.isNew("something else"))
    }
}
