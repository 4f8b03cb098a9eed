/// Turns the registry file into services. Accepted shapes:
/// - what `kubectl get serviceentries.networking.istio.io -A -o json` prints:
///   `{"apiVersion":"v1","kind":"List","items":[...]}` (any object with `items`);
/// - a bare JSON array of ServiceEntry objects;
/// - a single ServiceEntry object.
///
/// Each host of an entry becomes one `Service` (hosts of one entry share ports and endpoints).
/// Errors are collected over the whole file (up to `RegistryError.maxProblems`); warnings for
/// unsupported-but-valid Istio features are logged once per process and kept on the snapshot.
///
/// Policy: an **error** (the file is refused) for what Istio's validation rejects or what cannot
/// be read; a **warning** and a skip for valid Istio that fastpilot does not implement:
/// - `resolution` absent means NONE, as in Istio. NONE, DNS and DNS_ROUND_ROBIN entries are
///   validated, then skipped with a warning (no endpoints to serve over EDS). NONE *with*
///   endpoints is an error, as in Istio; the message says to set `resolution: STATIC`.
/// - `*.example.com` hosts: warning, that host skipped. A bare `*` is an error (Istio too).
/// - `unix://` endpoints: warning, endpoint skipped. `workloadSelector`: warning, ignored.
/// - Items of another kind in a List: warning, skipped.
/// - A (namespace, host) defined twice: the first in file order wins, with a warning.
/// - Errors besides the obvious: duplicate port names or numbers, endpoint `ports` keys that
///   name no service port, non-DNS-1123 names, `~` combined with other `exportTo` entries,
///   numbers written as strings (protojson would accept "80"; we ask for 80).
/// - Kept as written: `protocol` (absent = ""). Read as unset: `targetPort` 0, `weight` 0.
///   `"*"` anywhere in `exportTo` means everyone. Ignored: `location`, `addresses`,
///   `subjectAltNames`, endpoint `network`/`serviceAccount`, and unknown fields.
public enum ServiceEntryParser {
    /// `source` names the input in errors and logs: usually the file path.
    public static func parse(_ bytes: [UInt8], source: String) throws(RegistryError) -> RegistrySnapshot {
        let root: JSONValue
        do {
            root = try JSONReader.parse(bytes)
        } catch {
            throw RegistryError(kind: .malformedJSON, file: source,
                                "line \(error.line), column \(error.column): malformed JSON: \(error.message)")
        }

        var problems = RegistryProblems()
        var entries: [DecodedServiceEntry] = []
        func decode(_ item: JSONValue, _ label: String?) {
            if let e = ServiceEntryDecoder.decode(item, label: label, into: &problems) { entries.append(e) }
        }
        switch root {
        case .array(let items):
            for (i, item) in items.enumerated() { decode(item, "[\(i)]") }
        case .object(let obj) where obj["items"] != nil:
            guard case .array(let items) = obj["items"]! else {
                throw RegistryError(kind: .invalid, file: source,
                                    "items: expected an array, got \(obj["items"]!.preview)")
            }
            for (i, item) in items.enumerated() { decode(item, "items[\(i)]") }
        case .object:
            decode(root, nil)
        default:
            throw RegistryError(kind: .invalid, file: source,
                                "expected a List with \"items\", an array of ServiceEntry objects, or one "
                                + "ServiceEntry object; got \(root.preview)")
        }
        guard problems.isEmpty else { throw problems.error(file: source) }

        let services = expand(entries, &problems)
        RegistryWarnings.shared.log(problems.warnings, file: source)
        return RegistrySnapshot(services: services, warnings: problems.warnings)
    }

    public static func parse(json: String, source: String) throws(RegistryError) -> RegistrySnapshot {
        try parse(Array(json.utf8), source: source)
    }

    /// One service per host, in file order; a (namespace, host) defined twice keeps the first.
    private static func expand(_ entries: [DecodedServiceEntry], _ problems: inout RegistryProblems) -> [Service] {
        var owner: [ServiceID: String] = [:]
        var out: [Service] = []
        for e in entries {
            for host in e.hosts {
                let id = ServiceID(namespace: e.namespace, hostname: host)
                if let first = owner[id] {
                    problems.warn(first == e.name
                        ? "ServiceEntry \(e.namespace)/\(e.name) lists host \(host) twice"
                        : "host \(host) in namespace \(e.namespace) is defined by ServiceEntry \(e.namespace)/\(first) "
                            + "and \(e.namespace)/\(e.name); keeping \(e.namespace)/\(first), the first in the file")
                    continue
                }
                owner[id] = e.name
                out.append(Service(hostname: host, namespace: e.namespace, configName: e.name, ports: e.ports,
                                   endpoints: e.endpoints, exportTo: e.exportTo, resolution: e.resolution))
            }
        }
        return out
    }
}
