/// `/v1/serviceentries/{namespace}/{name}`: read, create or replace, and delete one
/// ServiceEntry in the registry's JSON shape. A change that touches only endpoints becomes an
/// incremental EDS push, like a registry file change.
enum ServiceEntryAPI {
    static let prefix = "/v1/serviceentries/"

    static func handle(_ r: HTTPRequest, server: DiscoveryServer) -> HTTPResponse {
        let parts = r.path.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            return .error(404, "expected \(prefix){namespace}/{name}")
        }
        let namespace = String(parts[0]), name = String(parts[1])
        switch r.method {
        case "GET":
            let services = server.registry.services.filter { $0.namespace == namespace && $0.configName == name }
            guard !services.isEmpty else { return .error(404, "no ServiceEntry \(namespace)/\(name)") }
            return .json(200, render(services))
        case "PUT":
            return put(r.body, namespace: namespace, name: name, server: server)
        case "DELETE":
            var found = false
            let diff = server.modifyRegistry { old in
                let kept = old.services.filter { !($0.namespace == namespace && $0.configName == name) }
                found = kept.count != old.services.count
                return RegistrySnapshot(services: kept, warnings: old.warnings)
            }
            guard found else { return .error(404, "no ServiceEntry \(namespace)/\(name)") }
            Log.info("admin_serviceentry_deleted", ["namespace": namespace, "name": name, "full_changes": diff.fullChanges.count])
            return .json(200, "{\"deleted\":\(JSONText.quote("\(namespace)/\(name)"))}\n")
        default:
            return .error(405, "method \(r.method) not allowed; use GET, PUT or DELETE")
        }
    }

    static func put(_ body: [UInt8], namespace: String, name: String, server: DiscoveryServer) -> HTTPResponse {
        let parsed: RegistrySnapshot
        do {
            parsed = try ServiceEntryParser.parse(body, source: "request body")
        } catch {
            return .error(400, error.description)
        }
        if let wrong = parsed.services.first(where: { $0.namespace != namespace || $0.configName != name }) {
            return .error(400, "request body: metadata says \(wrong.namespace)/\(wrong.configName), the URL says \(namespace)/\(name)")
        }
        guard !parsed.services.isEmpty else {
            let why = parsed.warnings.isEmpty ? "no hosts" : parsed.warnings.joined(separator: "; ")
            return .error(400, "request body: nothing fastpilot can serve (\(why))")
        }
        var conflict: Service?
        let diff = server.modifyRegistry { old in
            var kept = old.services.filter { !($0.namespace == namespace && $0.configName == name) }
            // Another ServiceEntry already owns one of these hosts in this namespace.
            conflict = parsed.services.first { p in kept.contains { $0.namespace == p.namespace && $0.hostname == p.hostname } }
            if conflict != nil { return old }
            kept.append(contentsOf: parsed.services)
            return RegistrySnapshot(services: kept, warnings: old.warnings)
        }
        if let c = conflict {
            return .error(409, "host \(c.hostname) in namespace \(c.namespace) belongs to another ServiceEntry")
        }
        Log.info("admin_serviceentry_put", ["namespace": namespace, "name": name,
                                            "full_changes": diff.fullChanges.count, "endpoint_changes": diff.endpointChanges.count])
        let kind = diff.isEmpty ? "unchanged" : diff.fullChanges.isEmpty ? "endpoints" : "full"
        return .json(200, "{\"applied\":\(JSONText.quote("\(namespace)/\(name)")),\"push\":\"\(kind)\"}\n")
    }

    /// Every entry, as `kubectl get serviceentries -A -o json` prints a List.
    static func list(_ server: DiscoveryServer) -> String {
        var groups: [String: [Service]] = [:]
        var order: [String] = []
        for s in server.registry.services {
            let k = "\(s.namespace)/\(s.configName)"
            if groups[k] == nil { order.append(k) }
            groups[k, default: []].append(s)
        }
        let items = order.sorted().map { render(groups[$0]!).trimmingTrailingNewline }
        return "{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[\(items.joined(separator: ","))]}\n"
    }

    /// The entry back in ServiceEntry JSON (one object; hosts of one entry share ports and endpoints).
    static func render(_ services: [Service]) -> String {
        let s = services[0]
        func str(_ v: String) -> String { JSONText.quote(v) }
        let ports = s.ports.map { p -> String in
            var o = "{\"number\":\(p.number),\"name\":\(str(p.name)),\"protocol\":\(str(p.protocolName))"
            if let t = p.targetPort { o += ",\"targetPort\":\(t)" }
            return o + "}"
        }
        let endpoints = s.endpoints.map { e -> String in
            var o = "{\"address\":\(str(e.address))"
            if !e.ports.isEmpty { o += ",\"ports\":{\(e.ports.sorted { $0.key < $1.key }.map { "\(str($0.key)):\($0.value)" }.joined(separator: ","))}" }
            if !e.labels.isEmpty { o += ",\"labels\":{\(e.labels.sorted { $0.key < $1.key }.map { "\(str($0.key)):\(str($0.value))" }.joined(separator: ","))}" }
            if e.locality != Locality() { o += ",\"locality\":\(str(e.locality.istioString))" }
            if e.weight > 0 { o += ",\"weight\":\(e.weight)" }
            return o + "}"
        }
        var exportTo = ""
        if case let .namespaces(set, own) = s.exportTo {
            var list = set.sorted().map(str)
            if own { list.insert("\".\"", at: 0) }
            exportTo = ",\"exportTo\":[\(list.isEmpty ? "\"~\"" : list.joined(separator: ","))]"
        }
        return "{\"apiVersion\":\"networking.istio.io/v1\",\"kind\":\"ServiceEntry\","
            + "\"metadata\":{\"name\":\(str(s.configName)),\"namespace\":\(str(s.namespace))},"
            + "\"spec\":{\"hosts\":[\(services.map { str($0.hostname) }.joined(separator: ","))],"
            + "\"ports\":[\(ports.joined(separator: ","))],\"resolution\":\(str(s.resolution.rawValue)),"
            + "\"endpoints\":[\(endpoints.joined(separator: ","))]\(exportTo)}}\n"
    }
}

extension String {
    var trimmingTrailingNewline: String { hasSuffix("\n") ? String(dropLast()) : self }
}
