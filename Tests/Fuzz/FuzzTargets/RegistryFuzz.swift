import FastPush

/// `registry`: `ServiceEntryParser.parse` on arbitrary bytes, and what the server does with a
/// registry that parsed.
///
/// Invariants: no trap (only RegistryError can be thrown, by type); parsing is deterministic;
/// a parsed registry never holds one (namespace, host) twice; the diff against the demo
/// registry and a PushContext build do not trap; and a client on a server with that registry
/// gets well-formed CDS, EDS, LDS and RDS answers (sidecar wildcard and proxyless by-name).
enum RegistryFuzz {
    static let name = "registry"
    static let target = FuzzTarget(
        name: name,
        summary: "ServiceEntryParser.parse, then the parsed registry served to a client",
        run: { data throws(FuzzViolation) in try run(data) },
        seeds: { RegistrySeeds.all() })

    /// Serving is skipped for larger registries: the point is odd shapes, not size.
    static let maxServedServices = 32

    static func run(_ data: UnsafeRawBufferPointer) throws(FuzzViolation) {
        let bytes = Array(data)
        let snapshot: RegistrySnapshot
        do {
            snapshot = try ServiceEntryParser.parse(bytes, source: "fuzz")
        } catch {
            // Typed: a RegistryError, whose description must render.
            trace("refused: \(error.description.prefix(160))")
            return
        }
        trace("parsed: \(snapshot.count) services, \(snapshot.warnings.count) warnings")
        try checkSnapshot(snapshot, target: name)
        let again = try? ServiceEntryParser.parse(bytes, source: "fuzz")
        try require(again == snapshot, name, "parsing the same bytes twice gave different registries")
        _ = RegistryDiff(from: Fixtures.demo, to: snapshot)
        _ = RegistryDiff(from: snapshot, to: Fixtures.demo)
        guard snapshot.count <= maxServedServices else { return }
        try serve(snapshot)
    }

    static func checkSnapshot(_ s: RegistrySnapshot, target: String) throws(FuzzViolation) {
        var ids = Set<String>()
        for svc in s.services {
            try require(ids.insert("\(svc.namespace)/\(svc.hostname)").inserted, target,
                        "host \(svc.hostname) twice in namespace \(svc.namespace)")
        }
    }

    /// One sidecar (wildcard CDS/LDS, then EDS and RDS for what they name) and one proxyless
    /// client (LDS/RDS/CDS/EDS by name), in the namespace of the first service.
    static func serve(_ snapshot: RegistrySnapshot) throws(FuzzViolation) {
        let server = Fixtures.server(snapshot)
        let ns = snapshot.services.first?.namespace ?? "default"
        var clusters: [String] = []
        var targets: [String] = []
        var ports = Set<UInt32>()
        for s in snapshot.services {
            for p in s.ports.prefix(4) {
                clusters.append("outbound|\(p.number)||\(s.hostname)")
                targets.append("\(s.hostname):\(p.number)")
                ports.insert(p.number)
            }
        }
        let routes = ports.sorted().map(String.init)

        let sidecar = Fixtures.node(namespace: ns)
        var grpcNode = Fixtures.node(id: "grpc~10.0.0.2~client-1.\(ns)~\(ns).svc.cluster.local", namespace: ns)
        grpcNode.userAgentName = "gRPC Go"
        let plans: [(Node, [(XdsType, [String])])] = [
            (sidecar, [(.cds, []), (.eds, clusters), (.lds, []), (.rds, routes)]),
            (grpcNode, [(.lds, targets), (.rds, targets), (.cds, clusters), (.eds, clusters)]),
        ]
        for (node, plan) in plans {
            let transport = CapturingTransport()
            let conn = server.newConnection(transport: transport)
            var checker = ResponseChecker(target: name)
            var first = true
            for (type, names) in plan {
                let r = Fixtures.request(type, names: names, node: first ? node : nil)
                first = false
                let wire = r.encode()
                guard let decoded = wire.withUnsafeBytes({ try? DiscoveryRequest(decodingDeferringNames: $0) }) else {
                    throw FuzzViolation(name, "our own request does not decode")
                }
                let before = transport.stream.writes.count
                let outcome = server.process(decoded, on: conn)
                try require(outcome == .ok, name, "\(type) request for \(names.count) names refused: \(outcome)")
                for w in transport.stream.writes[before...] {
                    let r = try checker.check(w, expectedType: type.typeURL)
                    trace("  \(type) \(names.count) names -> \(r.resources.count) resources")
                }
            }
            server.disconnect(conn)
        }
        // A change back to the demo registry: the diff and the PushContext rebuild.
        server.updateRegistry(Fixtures.demo)
    }
}
