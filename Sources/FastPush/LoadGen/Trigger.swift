#if canImport(Glibc)
import Glibc
#endif

/// Makes the change a round measures: through fastpilot's admin API (an endpoint change of
/// one ServiceEntry, or a new ServiceEntry for a full change), or by running a command for
/// other servers. Undone at the end.
final class Trigger {
    let options: LoadGenOptions
    private(set) var watchedClusters: Set<String> = []
    private var namespace = ""
    private var name = ""
    private var original: [Service] = []
    private var created: [String] = []

    init(options: LoadGenOptions) throws {
        self.options = options
        if options.triggerCommand != nil {
            watchedClusters = Set(options.expectClusters)
            return
        }
        let r = try HTTPClient.request("GET", host: options.adminHost, port: options.adminPort, path: "/v1/serviceentries")
        guard r.status == 200 else { throw TriggerError("GET /v1/serviceentries: HTTP \(r.status): \(r.text)") }
        let snapshot = try ServiceEntryParser.parse(r.body, source: "admin API")
        let wanted = options.triggerService?.split(separator: "/").map(String.init)
        let candidates = snapshot.services.filter { s in
            guard !s.endpoints.isEmpty else { return false }
            guard let w = wanted, w.count == 2 else { return true }
            return s.namespace == w[0] && s.configName == w[1]
        }
        // By default a service every stream's namespace sees (else some of them): a change of a
        // service no stream watches would measure nothing.
        let namespaces = options.namespaces
        let pick = wanted != nil ? candidates.first
            : candidates.first { s in namespaces.allSatisfy { s.isVisible(from: $0) } }
              ?? candidates.first { s in namespaces.contains { s.isVisible(from: $0) } }
        guard let pick else {
            throw TriggerError("no ServiceEntry with endpoints\(options.triggerService.map { " named \($0)" } ?? " visible to the streams' namespaces \(namespaces.joined(separator: ","))") to change")
        }
        namespace = pick.namespace
        name = pick.configName
        original = snapshot.services.filter { $0.namespace == namespace && $0.configName == name }
        for s in original { for p in s.ports { watchedClusters.insert(ResourceNames.outboundCluster(port: p.number, host: s.hostname)) } }
        Log.info("loadgen_trigger", ["service": "\(namespace)/\(name)", "clusters": watchedClusters.count])
    }

    func fire(_ kind: LoadGenOptions.Trigger, round: Int) throws {
        if let cmd = options.triggerCommand {
            try Self.run(cmd.replacingAll("{round}", with: String(round)).replacingAll("{kind}", with: kind.rawValue), flag: "--trigger-cmd")
            return
        }
        switch kind {
        case .endpoint:
            // Alternate every endpoint's weight: an endpoint-only change each round.
            let changed = original.map { s -> Service in
                var c = s
                c.endpoints = s.endpoints.map { var e = $0; e.weight = round % 2 == 1 ? 2 : 1; return e }
                return c
            }
            try put(namespace, name, ServiceEntryAPI.render(changed))
        case .full:
            let n = "loadgen-full-\(getpid())-\(round)"
            // On a port in use, every client's route configuration for that port changes too;
            // --full-new-port gives the new service a port of its own (a new listener and route).
            let port: UInt32 = options.fullNewPort ? UInt32(20000 + round % 10000) : 8080
            let s = Service(hostname: "\(n).\(namespace).svc.cluster.local", namespace: namespace, configName: n,
                            ports: [ServicePort(number: port, name: "grpc")], endpoints: [WorkloadEndpoint(address: "10.254.0.\(round % 250 + 1)")])
            try put(namespace, n, ServiceEntryAPI.render([s]))
            created.append(n)
        }
    }

    func cleanUp() {
        guard options.triggerCommand == nil else { return }
        for n in created {
            _ = try? HTTPClient.request("DELETE", host: options.adminHost, port: options.adminPort, path: "/v1/serviceentries/\(namespace)/\(n)")
        }
        if !original.isEmpty { try? put(namespace, name, ServiceEntryAPI.render(original)) }
    }

    private func put(_ ns: String, _ n: String, _ json: String) throws {
        let r = try HTTPClient.request("PUT", host: options.adminHost, port: options.adminPort, path: "/v1/serviceentries/\(ns)/\(n)", body: Array(json.utf8))
        guard r.status == 200 else { throw TriggerError("PUT \(ns)/\(n): HTTP \(r.status): \(r.text)") }
    }

    /// Runs `cmd` with sh and waits; a non-zero exit is an error naming `flag`.
    static func run(_ cmd: String, flag: String) throws {
        var pid: pid_t = 0
        let argv = ["/bin/sh", "-c", cmd]
        var cargs = argv.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        let rc = posix_spawn(&pid, "/bin/sh", nil, nil, &cargs, environ)
        guard rc == 0 else { throw TriggerError("\(flag): posix_spawn failed: \(rc)") }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        if status != 0 { throw TriggerError("\(flag) exited with status \(status): \(cmd)") }
    }
}

struct TriggerError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

extension String {
    func replacingAll(_ a: String, with b: String) -> String {
        guard !a.isEmpty else { return self }
        let hay = Array(utf8), needle = Array(a.utf8)
        var out: [UInt8] = []
        var i = 0
        while i < hay.count {
            if i + needle.count <= hay.count && Array(hay[i..<(i + needle.count)]) == needle {
                out += b.utf8
                i += needle.count
            } else {
                out.append(hay[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
