import Testing
@testable import FastPush

@Suite struct RegistryValidationTests {
    private static let good = serviceEntryJSON(name: "good", spec: #"""
        {"hosts": ["good.default"], "ports": [{"name": "g", "number": 80}], "resolution": "STATIC"}
        """#)

    /// Puts `spec` at items[1] (after a valid entry) of namespace "shop", name "cart".
    private func errorFor(spec: String) -> RegistryError? {
        parseError(listJSON([Self.good, serviceEntryJSON(name: "cart", namespace: "shop", spec: spec)]))
    }

    /// The one error line must name the file, the object and the field.
    private func expectLine(_ e: RegistryError?, field: String, _ message: String,
                            sourceLocation: SourceLocation = #_sourceLocation) {
        guard let e else {
            Issue.record("expected an error", sourceLocation: sourceLocation); return
        }
        #expect(e.kind == .invalid, sourceLocation: sourceLocation)
        #expect(e.problems.count == 1, "\(e)", sourceLocation: sourceLocation)
        let prefix = "registry.json: items[1] (ServiceEntry shop/cart): \(field): "
        #expect(e.description.hasPrefix(prefix), "\(e)", sourceLocation: sourceLocation)
        #expect(e.description.contains(message), "\(e)", sourceLocation: sourceLocation)
    }

    @Test func missingHosts() {
        expectLine(errorFor(spec: #"{"ports": [{"name": "g", "number": 80}], "resolution": "STATIC"}"#),
                   field: "spec.hosts", "required")
        expectLine(errorFor(spec: #"{"hosts": [], "ports": [{"name": "g", "number": 80}], "resolution": "STATIC"}"#),
                   field: "spec.hosts", "at least one host")
    }

    @Test func badPortNumber() {
        expectLine(errorFor(spec: #"""
            {"hosts": ["c.shop"], "resolution": "STATIC", "ports": [{"name": "a", "number": 80}, {"name": "b", "number": 70000}]}
            """#), field: "spec.ports[1].number", "must be 1..65535, got 70000")
        expectLine(errorFor(spec: #"""
            {"hosts": ["c.shop"], "resolution": "STATIC", "ports": [{"name": "a", "number": 0}]}
            """#), field: "spec.ports[0].number", "must be 1..65535, got 0")
        expectLine(errorFor(spec: #"""
            {"hosts": ["c.shop"], "resolution": "STATIC", "ports": [{"name": "a", "number": 80.5}]}
            """#), field: "spec.ports[0].number", "expected an integer")
        expectLine(errorFor(spec: #"""
            {"hosts": ["c.shop"], "resolution": "STATIC", "ports": [{"name": "a", "number": 80, "targetPort": 65536}]}
            """#), field: "spec.ports[0].targetPort", "must be 0..65535, got 65536")
    }

    @Test func duplicatePortNameAndNumber() {
        expectLine(errorFor(spec: #"""
            {"hosts": ["c.shop"], "resolution": "STATIC", "ports": [{"name": "grpc", "number": 80}, {"name": "grpc", "number": 81}]}
            """#), field: "spec.ports[1].name", "\"grpc\" is already used by spec.ports[0]")
        expectLine(errorFor(spec: #"""
            {"hosts": ["c.shop"], "resolution": "STATIC", "ports": [{"name": "a", "number": 80}, {"name": "b", "number": 80}]}
            """#), field: "spec.ports[1].number", "80 is already used by spec.ports[0]")
    }

    @Test func missingPortName() {
        expectLine(errorFor(spec: #"{"hosts": ["c.shop"], "resolution": "STATIC", "ports": [{"number": 80}]}"#),
                   field: "spec.ports[0].name", "required")
    }

    @Test func endpointMissingAddress() {
        expectLine(errorFor(spec: #"""
            {"hosts": ["c.shop"], "resolution": "STATIC", "ports": [{"name": "g", "number": 80}],
             "endpoints": [{"address": "10.0.0.1"}, {"ports": {"g": 81}}]}
            """#), field: "spec.endpoints[1].address", "required")
    }

    @Test(arguments: ["cart.shop.svc", "10.0.0", "10.0.0.256", "fe80::1%eth0", "[::1]", "010.0.0.1", ""])
    func badStaticAddress(_ address: String) {
        let e = errorFor(spec: #"""
            {"hosts": ["c.shop"], "resolution": "STATIC", "ports": [{"name": "g", "number": 80}],
             "endpoints": [{"address": "\#(address)"}]}
            """#)
        expectLine(e, field: "spec.endpoints[0].address", address.isEmpty ? "must not be empty" : "\"\(address)\"")
    }

    @Test func endpointPortMustNameAServicePort() {
        expectLine(errorFor(spec: #"""
            {"hosts": ["c.shop"], "resolution": "STATIC", "ports": [{"name": "grpc", "number": 80}],
             "endpoints": [{"address": "10.0.0.1", "ports": {"http": 8080}}]}
            """#), field: "spec.endpoints[0].ports.http", "no port named \"http\"")
    }

    @Test func wrongTypes() {
        expectLine(errorFor(spec: #"""
            {"hosts": ["c.shop"], "resolution": "STATIC", "ports": [{"name": "g", "number": "80"}]}
            """#), field: "spec.ports[0].number", "expected a number, got string \"80\"")
        expectLine(errorFor(spec: #"""
            {"hosts": "c.shop", "resolution": "STATIC", "ports": [{"name": "g", "number": 80}]}
            """#), field: "spec.hosts", "expected an array, got string")
        expectLine(errorFor(spec: #"""
            {"hosts": ["c.shop"], "resolution": "STATIC", "ports": [{"name": "g", "number": true}]}
            """#), field: "spec.ports[0].number", "expected a number, got boolean true")
        expectLine(errorFor(spec: #"""
            {"hosts": ["c.shop"], "resolution": "STATIC", "ports": [{"name": "g", "number": 80}],
             "endpoints": [{"address": "10.0.0.1", "labels": {"app": 3}}]}
            """#), field: "spec.endpoints[0].labels.app", "expected a string, got number 3")
        expectLine(errorFor(spec: #"""
            {"hosts": ["c.shop"], "resolution": "STATIC", "ports": [{"name": "g", "number": 80}],
             "endpoints": [{"address": "10.0.0.1", "weight": -1}]}
            """#), field: "spec.endpoints[0].weight", "must be 0..4294967295, got -1")
        expectLine(errorFor(spec: #"""
            {"hosts": ["c.shop"], "resolution": 1, "ports": [{"name": "g", "number": 80}]}
            """#), field: "spec.resolution", "expected a string, got number 1")
    }

    @Test func invalidHosts() {
        for (host, message) in [("*", "full wildcard"), ("Cart.shop", "lowercase"), ("a..b", "empty label"),
                                ("-a.b", "start and end"), ("10.0.0.1", "all digits"), ("a.*.b", "wildcard")] {
            expectLine(errorFor(spec: #"""
                {"hosts": ["\#(host)"], "resolution": "STATIC", "ports": [{"name": "g", "number": 80}]}
                """#), field: "spec.hosts[0]", message)
        }
    }

    @Test func unknownResolutionAndNoneWithEndpoints() {
        expectLine(errorFor(spec: #"""
            {"hosts": ["c.shop"], "resolution": "static", "ports": [{"name": "g", "number": 80}]}
            """#), field: "spec.resolution", "must be one of STATIC")
        expectLine(errorFor(spec: #"""
            {"hosts": ["c.shop"], "ports": [{"name": "g", "number": 80}], "endpoints": [{"address": "10.0.0.1"}]}
            """#), field: "spec.endpoints", "set spec.resolution: STATIC")
    }

    @Test func exportToRules() {
        expectLine(errorFor(spec: #"""
            {"hosts": ["c.shop"], "resolution": "STATIC", "ports": [{"name": "g", "number": 80}], "exportTo": ["~", "a"]}
            """#), field: "spec.exportTo", "cannot be combined")
        expectLine(errorFor(spec: #"""
            {"hosts": ["c.shop"], "resolution": "STATIC", "ports": [{"name": "g", "number": 80}], "exportTo": ["Bad_NS"]}
            """#), field: "spec.exportTo[0]", "Bad_NS")
    }

    @Test func unsupportedAPIVersion() {
        let item = serviceEntryJSON(name: "cart", namespace: "shop",
                                    spec: #"{"hosts": ["c.shop"], "resolution": "STATIC", "ports": [{"name": "g", "number": 80}]}"#,
                                    apiVersion: "networking.istio.io/v2")
        expectLine(parseError(listJSON([Self.good, item])), field: "apiVersion", "unsupported \"networking.istio.io/v2\"")
    }

    @Test func missingMetadataNameNamesTheItemOnly() throws {
        let e = try #require(parseError(listJSON([Self.good, #"{"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": {}, "spec": {}}"#])))
        #expect(e.description.contains("registry.json: items[1]: metadata.name: required"))
    }

    @Test func bareArrayItemsAreNamedByIndex() throws {
        let bad = serviceEntryJSON(name: "cart", namespace: "shop", spec: #"{"hosts": ["c.shop"], "resolution": "STATIC"}"#)
        let e = try #require(parseError("[\(Self.good), \(bad)]"))
        #expect(e.description == "registry.json: [1] (ServiceEntry shop/cart): spec.ports: required")
    }

    @Test func loneObjectIsNamedByKindAndName() throws {
        let e = try #require(parseError(serviceEntryJSON(name: "cart", namespace: "shop", spec: #"{"hosts": ["c.shop"], "resolution": "STATIC"}"#),
                                        source: "request body"))
        #expect(e.description == "request body: ServiceEntry shop/cart: spec.ports: required")
    }

    @Test func collectsEveryProblemInTheFile() throws {
        let a = serviceEntryJSON(name: "a", spec: #"{"hosts": [], "ports": [{"name": "g", "number": 0}], "resolution": "STATIC"}"#)
        let b = serviceEntryJSON(name: "b", spec: #"{"hosts": ["b.x"], "ports": [{"name": "g", "number": 80}], "resolution": "STATIC", "endpoints": [{"address": "nope"}]}"#)
        let e = try #require(parseError(listJSON([a, Self.good, b])))
        #expect(e.problems.count == 3)
        let lines = e.description.split(separator: "\n").map(String.init)
        #expect(lines == [
            "registry.json: items[0] (ServiceEntry default/a): spec.hosts: must list at least one host",
            "registry.json: items[0] (ServiceEntry default/a): spec.ports[0].number: must be 1..65535, got 0",
            "registry.json: items[2] (ServiceEntry default/b): spec.endpoints[0].address: must be an IPv4 or IPv6 address for resolution STATIC, got \"nope\"",
        ])
    }

    @Test func capsTheNumberOfProblems() throws {
        let bad = (0..<30).map { serviceEntryJSON(name: "e\($0)", spec: #"{"hosts": ["h\#($0).x"], "resolution": "STATIC"}"#) }
        let e = try #require(parseError(listJSON(bad)))
        #expect(e.problems.count == RegistryError.maxProblems)
        #expect(e.omitted == 30 - RegistryError.maxProblems)
        #expect(e.description.hasSuffix("registry.json: ... and 10 more problems"))
    }

    @Test func malformedJSONNamesFileAndPosition() throws {
        let e = try #require(parseError("{\"items\": [\n  {\"kind\": \"ServiceEntry\",,}\n]}", source: "/etc/fastpilot/registry.json"))
        #expect(e.kind == .malformedJSON)
        #expect(e.description.hasPrefix("/etc/fastpilot/registry.json: line 2, column 27: malformed JSON: unexpected ',', expected a string key"))
    }

    @Test func wrongTopLevelShapes() throws {
        let num = try #require(parseError("42"))
        #expect(num.description.hasPrefix("registry.json: expected a List"))
        let items = try #require(parseError(#"{"kind": "List", "items": {}}"#))
        #expect(items.description == "registry.json: items: expected an array, got object")
        let notObject = try #require(parseError(#"{"kind": "List", "items": [42]}"#))
        #expect(notObject.description == "registry.json: items[0]: expected a ServiceEntry object, got number 42")
    }
}
