/// Where the admin API's writes go, by registry source: memory (the embedded demo), the registry
/// file (`FileRegistryWriter`), or etcd (`EtcdRegistryStore`). A write is answered only once it
/// is durable in its store and applied to this server's registry; one that cannot be made
/// durable changes nothing.
public protocol RegistryWriter: Sendable {
    /// Creates or replaces ServiceEntry `entry.namespace/entry.name`. `expectedVersion`: the
    /// resourceVersion the caller last read (`metadata.resourceVersion` or If-Match); a store
    /// with versions refuses the write (409) when it no longer matches. "0": must not exist.
    func put(_ entry: EntryWrite, done: @escaping @Sendable (WriteOutcome) -> Void)
    func delete(namespace: String, name: String, expectedVersion: String?, done: @escaping @Sendable (WriteOutcome) -> Void)
    /// The stored entry as JSON (with its resourceVersion where the store has one).
    func get(namespace: String, name: String) -> String?
    /// Every entry, as `kubectl get serviceentries -A -o json` prints a List.
    func list() -> String
}

/// A validated ServiceEntry on its way to a store.
public struct EntryWrite: Sendable {
    public let namespace: String
    public let name: String
    /// The object as the caller sent it, without metadata.resourceVersion.
    let object: JSONValue
    /// What it parses to (one service per host).
    public let services: [Service]
    public let expectedVersion: String?
}

public enum WriteOutcome: Sendable, Equatable {
    /// `body`: the JSON answer (the stored object, or a short summary).
    case applied(body: String)
    case refused(status: Int, message: String)
}

extension DiscoveryServer {
    /// Replaces the services of ServiceEntry `namespace/name` with `services` in the registry
    /// (what a write does once it is durable). nil: another entry already owns one of these
    /// hosts in this namespace, and nothing changed.
    func replaceEntry(namespace: String, name: String, with services: [Service]) -> (RegistryDiff, conflict: Service?) {
        var conflict: Service?
        let diff = modifyRegistry { old in
            var kept = old.services.filter { !($0.namespace == namespace && $0.configName == name) }
            conflict = services.first { p in kept.contains { $0.namespace == p.namespace && $0.hostname == p.hostname } }
            if conflict != nil { return old }
            kept.append(contentsOf: services)
            return RegistrySnapshot(services: kept, warnings: old.warnings)
        }
        return (diff, conflict)
    }

    /// Another ServiceEntry of the namespace that owns one of `services`' hosts.
    func hostOwner(of services: [Service], except namespace: String, _ name: String) -> Service? {
        let reg = registry
        for p in services {
            if let s = reg.service(namespace: p.namespace, hostname: p.hostname), !(s.namespace == namespace && s.configName == name) {
                return s
            }
        }
        return nil
    }

    var entryList: String { ServiceEntryAPI.list(registry) }

    /// For a registry without store versions (memory, the file): a content version of entry
    /// `namespace/name`, the hash of what fastpilot serves of it (16 hex digits); nil if absent.
    func contentVersion(namespace: String, name: String) -> String? {
        let services = registry.services.filter { $0.namespace == namespace && $0.configName == name }
        guard !services.isEmpty else { return nil }
        var text = ServiceEntryAPI.render(services)
        return ContentHash.hex(text.withUTF8 { ContentHash.hash(UnsafeRawBufferPointer($0)) })
    }

    /// The refusal when the caller's resourceVersion is not the entry's content version ("0":
    /// the entry must not exist); nil when it matches or none was given.
    func versionConflict(_ expected: String?, namespace: String, name: String) -> WriteOutcome? {
        guard let expected else { return nil }
        let current = contentVersion(namespace: namespace, name: name)
        if expected == "0" ? current == nil : current == expected { return nil }
        return .refused(status: 409, message: "\(namespace)/\(name): resourceVersion \(expected) does not match the current one: \(current ?? "none (the entry does not exist)")")
    }

    /// The entry as JSON with its content version.
    func versionedEntry(namespace: String, name: String) -> String? {
        let services = registry.services.filter { $0.namespace == namespace && $0.configName == name }
        guard !services.isEmpty, let v = contentVersion(namespace: namespace, name: name) else { return nil }
        return ServiceEntryAPI.render(services, resourceVersion: v)
    }
}

/// The embedded demo registry: writes live in memory only (a restart forgets them), applied at
/// once.
struct MemoryRegistryWriter: RegistryWriter {
    let server: DiscoveryServer

    func put(_ entry: EntryWrite, done: @escaping @Sendable (WriteOutcome) -> Void) {
        if let refused = server.versionConflict(entry.expectedVersion, namespace: entry.namespace, name: entry.name) { return done(refused) }
        let (diff, conflict) = server.replaceEntry(namespace: entry.namespace, name: entry.name, with: entry.services)
        if let c = conflict {
            done(.refused(status: 409, message: "host \(c.hostname) in namespace \(c.namespace) belongs to another ServiceEntry"))
            return
        }
        done(.applied(body: ServiceEntryAPI.summary(entry.namespace, entry.name, diff)))
    }

    func delete(namespace: String, name: String, expectedVersion: String?, done: @escaping @Sendable (WriteOutcome) -> Void) {
        if let refused = server.versionConflict(expectedVersion, namespace: namespace, name: name) { return done(refused) }
        guard server.registry.services.contains(where: { $0.namespace == namespace && $0.configName == name }) else {
            done(.refused(status: 404, message: "no ServiceEntry \(namespace)/\(name)"))
            return
        }
        _ = server.replaceEntry(namespace: namespace, name: name, with: [])
        done(.applied(body: "{\"deleted\":\(JSONText.quote("\(namespace)/\(name)"))}\n"))
    }

    func get(namespace: String, name: String) -> String? { server.versionedEntry(namespace: namespace, name: name) }

    func list() -> String { server.entryList }
}
