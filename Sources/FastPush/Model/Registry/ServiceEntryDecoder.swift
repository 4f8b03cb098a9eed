/// One ServiceEntry, validated, before it is split into one `Service` per host.
struct DecodedServiceEntry: Sendable {
    var name: String
    var namespace: String
    /// Supported hosts only (wildcard hosts were dropped with a warning).
    var hosts: [String]
    var ports: [ServicePort]
    var endpoints: [WorkloadEndpoint]
    var exportTo: ExportTo
    var resolution: Resolution
}

/// Validates one ServiceEntry object as Istio's validation would, with two outcomes besides
/// success:
/// - an **error** for what Istio itself rejects or what cannot be read (the whole file is then
///   refused and the caller keeps its last good registry);
/// - a **warning** (logged once per process) for valid Istio features fastpilot does not
///   implement; the unsupported part (host, endpoint, or whole entry) is skipped.
enum ServiceEntryDecoder {
    static let apiVersions: Set<String> = [
        "networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3",
    ]

    /// `label` is where the object sits in the file: `items[3]`, `[3]`, or nil for a lone object.
    /// Returns nil when the item has errors or is skipped.
    static func decode(_ item: JSONValue, label: String?, into problems: inout RegistryProblems)
        -> DecodedServiceEntry?
    {
        var r = FieldReader(object: label)
        defer { problems.absorb(r.problems) }

        guard case .object(let obj) = item else {
            r.fail(nil, "expected a ServiceEntry object, got \(item.preview)")
            return nil
        }

        // metadata first: the name goes into every later error line.
        let meta = r.object(obj["metadata"], "metadata", required: true)
        let name = r.string(meta?["name"], "metadata.name", required: true)
        if let name, let bad = NameRules.dns1123Subdomain(name) { r.fail("metadata.name", bad) }
        var namespace = r.string(meta?["namespace"], "metadata.namespace") ?? "default"
        if let bad = NameRules.dns1123Label(namespace) {
            r.fail("metadata.namespace", bad)
            namespace = "default"
        }
        let id = "\(namespace)/\(name ?? "?")"
        if name != nil { r.object = label.map { "\($0) (ServiceEntry \(id))" } ?? "ServiceEntry \(id)" }

        let kind = r.string(obj["kind"], "kind", required: true)
        if let kind, kind != "ServiceEntry" {
            r.warn("\(kind) \(id) is not a ServiceEntry; skipped")
            return nil
        }
        if let api = r.string(obj["apiVersion"], "apiVersion", required: true), !apiVersions.contains(api) {
            r.fail("apiVersion", "unsupported \"\(api)\"; expected networking.istio.io/v1, v1beta1 or v1alpha3")
        }

        guard let spec = r.object(obj["spec"], "spec", required: true) else { return nil }
        let hosts = decodeHosts(spec["hosts"], id: id, &r)
        let ports = decodePorts(spec["ports"], &r)
        let resolution = decodeResolution(spec["resolution"], &r)
        // With an unreadable resolution the address rules are unknown: skip the endpoints.
        let endpoints = resolution.map {
            decodeEndpoints(spec["endpoints"], resolution: $0, portNames: Set(ports.map(\.name)), id: id, &r)
        } ?? []
        let exportTo = decodeExportTo(spec["exportTo"], &r)
        if let sel = spec["workloadSelector"], sel != .null {
            r.warn("ServiceEntry \(id): spec.workloadSelector is not supported; only spec.endpoints are used")
        }
        // spec.location, spec.addresses, spec.subjectAltNames and unknown fields are ignored.

        guard r.problems.isEmpty, let name, let resolution else { return nil }
        guard resolution == .static else {
            let absent = spec["resolution"] == nil ? " (the default when spec.resolution is absent)" : ""
            r.warn("ServiceEntry \(id): resolution \(resolution.rawValue)\(absent) is not supported, only STATIC; entry skipped")
            return nil
        }
        return DecodedServiceEntry(name: name, namespace: namespace, hosts: hosts, ports: ports,
                                   endpoints: endpoints, exportTo: exportTo, resolution: resolution)
    }

    private static func decodeHosts(_ v: JSONValue?, id: String, _ r: inout FieldReader) -> [String] {
        guard let list = r.array(v, "spec.hosts", required: true) else { return [] }
        if list.isEmpty { r.fail("spec.hosts", "must list at least one host") }
        var hosts: [String] = []
        for (i, item) in list.enumerated() {
            let field = FieldReader.index("spec.hosts", i)
            guard let h = r.string(item, field, required: true) else { continue }
            if h == "*" {
                r.fail(field, "the full wildcard \"*\" is not a valid ServiceEntry host")
            } else if h.hasPrefix("*.") && !h.dropFirst(2).contains("*") {
                if let bad = NameRules.hostname(String(h.dropFirst(2))) {
                    r.fail(field, bad)
                } else {
                    r.warn("ServiceEntry \(id): wildcard host \(h) is not supported; host skipped")
                }
            } else if h.contains("*") {
                r.fail(field, "\"\(h)\": a wildcard is only allowed as a leading \"*.\"")
            } else if let bad = NameRules.hostname(h) {
                r.fail(field, bad)
            } else {
                hosts.append(h)
            }
        }
        return hosts
    }

    private static func decodePorts(_ v: JSONValue?, _ r: inout FieldReader) -> [ServicePort] {
        guard let list = r.array(v, "spec.ports", required: true) else { return [] }
        if list.isEmpty { r.fail("spec.ports", "must list at least one port") }
        var ports: [ServicePort] = []
        var names: [String: Int] = [:]
        var numbers: [Int64: Int] = [:]
        for (i, item) in list.enumerated() {
            let base = FieldReader.index("spec.ports", i)
            guard let p = r.object(item, base, required: true) else { continue }
            let number = r.integer(p["number"], base + ".number", in: 1...65535, required: true)
            let name = r.string(p["name"], base + ".name", required: true)
            let proto = r.string(p["protocol"], base + ".protocol") ?? ""
            // 0 is protobuf's "unset", which is also what Istio does with it.
            let target = r.integer(p["targetPort"], base + ".targetPort", in: 0...65535)
            if let name {
                if let bad = NameRules.dns1123Label(name) {
                    r.fail(base + ".name", bad)
                } else if let first = names[name] {
                    r.fail(base + ".name", "\"\(name)\" is already used by spec.ports[\(first)]")
                } else {
                    names[name] = i
                }
            }
            if let number {
                if let first = numbers[number] {
                    r.fail(base + ".number", "\(number) is already used by spec.ports[\(first)]")
                } else {
                    numbers[number] = i
                }
            }
            if let number, let name {
                ports.append(ServicePort(number: UInt32(number), name: name, protocolName: proto,
                                         targetPort: target.flatMap { $0 == 0 ? nil : UInt32($0) }))
            }
        }
        return ports
    }

    private static func decodeResolution(_ v: JSONValue?, _ r: inout FieldReader) -> Resolution? {
        guard v != nil, v != .null else { return Resolution.none }  // protobuf default: NONE
        guard let s = r.string(v, "spec.resolution") else { return nil }
        guard let res = Resolution(rawValue: s) else {
            r.fail("spec.resolution", "must be one of STATIC, NONE, DNS, DNS_ROUND_ROBIN, got \"\(s)\"")
            return nil
        }
        return res
    }

    private static func decodeEndpoints(_ v: JSONValue?, resolution: Resolution, portNames: Set<String>,
                                        id: String, _ r: inout FieldReader) -> [WorkloadEndpoint] {
        guard let list = r.array(v, "spec.endpoints") else { return [] }
        if resolution == .none && !list.isEmpty {
            r.fail("spec.endpoints", "must be empty for resolution NONE (the default when spec.resolution is "
                + "absent); for fixed addresses set spec.resolution: STATIC")
            return []
        }
        var out: [WorkloadEndpoint] = []
        for (i, item) in list.enumerated() {
            let base = FieldReader.index("spec.endpoints", i)
            guard let e = r.object(item, base, required: true) else { continue }
            let address = r.string(e["address"], base + ".address", required: true)
            var ok = address != nil
            var skip = false
            if let address {
                if address.isEmpty {
                    r.fail(base + ".address", "must not be empty"); ok = false
                } else if resolution == .static && address.hasPrefix("unix://") {
                    r.warn("ServiceEntry \(id): unix domain socket endpoint \(address) is not supported; endpoint skipped")
                    skip = true
                } else if resolution == .static && !NameRules.isIPLiteral(address) {
                    r.fail(base + ".address", "must be an IPv4 or IPv6 address for resolution STATIC, got \"\(address)\"")
                    ok = false
                } else if !NameRules.isIPLiteral(address), let bad = NameRules.hostname(address) {
                    r.fail(base + ".address", "must be an IP address or a hostname: \(bad)"); ok = false
                }
            }
            var ports: [String: UInt32] = [:]
            if let map = r.object(e["ports"], base + ".ports") {
                for key in map.keys.sorted() {
                    let field = FieldReader.key(base + ".ports", key)
                    guard let n = r.integer(map[key], field, in: 1...65535, required: true) else { ok = false; continue }
                    if !portNames.contains(key) {
                        r.fail(field, "no port named \"\(key)\" in spec.ports"); ok = false
                    }
                    ports[key] = UInt32(n)
                }
            }
            let labels = r.stringMap(e["labels"], base + ".labels")
            var locality = Locality()
            if let loc = r.string(e["locality"], base + ".locality") {
                if loc.split(separator: "/", omittingEmptySubsequences: false).count > 3 {
                    r.fail(base + ".locality", "must be region/zone/subzone, got \"\(loc)\""); ok = false
                } else {
                    locality = Locality(istioString: loc)
                }
            }
            let weight = r.integer(e["weight"], base + ".weight", in: 0...Int64(UInt32.max)) ?? 0
            if ok && !skip, let address {
                out.append(WorkloadEndpoint(address: address, ports: ports, labels: labels,
                                            locality: locality, weight: UInt32(weight)))
            }
        }
        return out
    }

    /// absent / empty / contains "*" -> `.all`; "~" alone -> nobody; else named namespaces,
    /// with "." meaning the entry's own namespace.
    private static func decodeExportTo(_ v: JSONValue?, _ r: inout FieldReader) -> ExportTo {
        guard let list = r.array(v, "spec.exportTo") else { return .all }
        var names: Set<String> = []
        var own = false, all = false, none = false
        for (i, item) in list.enumerated() {
            let field = FieldReader.index("spec.exportTo", i)
            guard let s = r.string(item, field, required: true) else { continue }
            switch s {
            case "*": all = true
            case ".": own = true
            case "~": none = true
            default:
                if let bad = NameRules.dns1123Label(s) { r.fail(field, bad) } else { names.insert(s) }
            }
        }
        if none && list.count > 1 {
            r.fail("spec.exportTo", "\"~\" (export to no one) cannot be combined with other entries")
        }
        if list.isEmpty || all { return .all }
        return .namespaces(names, includesOwn: own)
    }
}
