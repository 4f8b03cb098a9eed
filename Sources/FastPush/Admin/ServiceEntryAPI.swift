/// `/v1/serviceentries/{namespace}/{name}`: read, create or replace, and delete one
/// ServiceEntry in the registry's JSON shape. A change that touches only endpoints becomes an
/// incremental EDS push, like a registry file change.
enum ServiceEntryAPI {
    static let prefix = "/v1/serviceentries/"

    /// Answers through `respond`, at once or (a store that must make a write durable first)
    /// later, from another thread.
    static func handle(_ r: HTTPRequest, writer: any RegistryWriter, respond: @escaping @Sendable (HTTPResponse) -> Void) {
        let parts = r.path.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            return respond(.error(404, "expected \(prefix){namespace}/{name}"))
        }
        let namespace = String(parts[0]), name = String(parts[1])
        let finish: @Sendable (WriteOutcome) -> Void = { outcome in
            switch outcome {
            case let .applied(body): respond(.json(200, body))
            case let .refused(status, message): respond(.error(status, message))
            }
        }
        switch r.method {
        case "GET":
            guard let json = writer.get(namespace: namespace, name: name) else {
                return respond(.error(404, "no ServiceEntry \(namespace)/\(name)"))
            }
            respond(.json(200, json))
        case "PUT":
            switch entry(r, namespace: namespace, name: name) {
            case let .success(e):
                writer.put(e) { outcome in
                    if case .applied = outcome {
                        Log.info("admin_serviceentry_put", ["namespace": namespace, "name": name, "resource_version": e.expectedVersion ?? "-"])
                    }
                    finish(outcome)
                }
            case let .failure(e): respond(e.response)
            }
        case "DELETE":
            writer.delete(namespace: namespace, name: name, expectedVersion: ifMatch(r)) { outcome in
                if case .applied = outcome { Log.info("admin_serviceentry_deleted", ["namespace": namespace, "name": name]) }
                finish(outcome)
            }
        default:
            respond(.error(405, "method \(r.method) not allowed; use GET, PUT or DELETE"))
        }
    }

    /// The If-Match header's version, without quotes (ETag style) or a weak marker.
    static func ifMatch(_ r: HTTPRequest) -> String? {
        guard var v = r.headers["if-match"].map({ Substring($0).trimmingCharacters(in: " ") }) else { return nil }
        if v.hasPrefix("W/") { v = String(v.dropFirst(2)) }
        if v.count >= 2, v.hasPrefix("\""), v.hasSuffix("\"") { v = String(v.dropFirst().dropLast()) }
        return v.isEmpty || v == "*" ? nil : v
    }

    /// Validates a PUT body: one ServiceEntry named as the URL says, with something to serve.
    static func entry(_ r: HTTPRequest, namespace: String, name: String) -> Result<EntryWrite, HTTPResponseError> {
        let parsed: RegistrySnapshot
        do {
            parsed = try ServiceEntryParser.parse(r.body, source: "request body")
        } catch {
            return .failure(HTTPResponseError(.error(400, error.description)))
        }
        if let wrong = parsed.services.first(where: { $0.namespace != namespace || $0.configName != name }) {
            return .failure(HTTPResponseError(.error(400, "request body: metadata says \(wrong.namespace)/\(wrong.configName), the URL says \(namespace)/\(name)")))
        }
        guard !parsed.services.isEmpty else {
            let why = parsed.warnings.isEmpty ? "no hosts" : parsed.warnings.joined(separator: "; ")
            return .failure(HTTPResponseError(.error(400, "request body: nothing fastpilot can serve (\(why))")))
        }
        // One ServiceEntry object: not a List or an array of them, which the parser takes too.
        guard let object = try? JSONReader.parse(r.body), case let .object(members) = object, members["items"] == nil else {
            return .failure(HTTPResponseError(.error(400, "request body: expected one ServiceEntry object, not a List")))
        }
        if case let .string(kind)? = members["kind"], kind != "ServiceEntry" {
            return .failure(HTTPResponseError(.error(400, "request body: kind is \(kind), expected ServiceEntry")))
        }
        var version: String?
        switch object["metadata"]?["resourceVersion"] {
        case let .string(v)?: version = v
        case let .int(v)?: version = String(v)
        default: version = nil
        }
        if let m = ifMatch(r) {
            if let v = version, v != m {
                return .failure(HTTPResponseError(.error(400, "metadata.resourceVersion \(v) and If-Match \(m) disagree")))
            }
            version = m
        }
        return .success(EntryWrite(namespace: namespace, name: name, object: object.setting(["metadata", "resourceVersion"], to: nil),
                                   services: parsed.services, expectedVersion: version))
    }

    /// The answer to a write that had no stored object to return.
    static func summary(_ namespace: String, _ name: String, _ diff: RegistryDiff) -> String {
        let kind = diff.isEmpty ? "unchanged" : diff.fullChanges.isEmpty ? "endpoints" : "full"
        return "{\"applied\":\(JSONText.quote("\(namespace)/\(name)")),\"push\":\"\(kind)\"}\n"
    }

    /// Every entry, as `kubectl get serviceentries -A -o json` prints a List.
    static func list(_ registry: RegistrySnapshot) -> String {
        var groups: [String: [Service]] = [:]
        var order: [String] = []
        for s in registry.services {
            let k = "\(s.namespace)/\(s.configName)"
            if groups[k] == nil { order.append(k) }
            groups[k, default: []].append(s)
        }
        let items = order.sorted().map { render(groups[$0]!).trimmingTrailingNewline }
        return "{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[\(items.joined(separator: ","))]}\n"
    }

    /// The entry back in ServiceEntry JSON (one object; hosts of one entry share ports and endpoints).
    static func render(_ services: [Service], resourceVersion: String? = nil) -> String {
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
            + "\"metadata\":{\"name\":\(str(s.configName)),\"namespace\":\(str(s.namespace))"
            + (resourceVersion.map { ",\"resourceVersion\":\(str($0))" } ?? "") + "},"
            + "\"spec\":{\"hosts\":[\(services.map { str($0.hostname) }.joined(separator: ","))],"
            + "\"ports\":[\(ports.joined(separator: ","))],\"resolution\":\(str(s.resolution.rawValue)),"
            + "\"endpoints\":[\(endpoints.joined(separator: ","))]\(exportTo)}}\n"
    }
}

extension String {
    var trimmingTrailingNewline: String { hasSuffix("\n") ? String(dropLast()) : self }
}

/// A response carried as a failure.
struct HTTPResponseError: Error {
    let response: HTTPResponse
    init(_ r: HTTPResponse) { response = r }
}
