/// What changed between two registry snapshots, as the `ConfigKey`s a push request carries.
/// Follows Istio's rules (EndpointIndex.UpdateServiceEndpoints and the service handler):
/// - a service added or removed, or whose shape changed (ports, exportTo, resolution,
///   configName: `Service.sameShape`), is a full change (`.serviceEntry` key);
/// - a service seen for the first time is a full change even though it also "gained endpoints";
/// - same shape, different endpoints (order ignored) is an endpoint change (`.endpoints` key),
///   including a service whose endpoint list becomes empty: the service itself stays;
/// - identical content gives an empty diff.
/// Key name = hostname, namespace = the service's namespace.
public struct RegistryDiff: Sendable, Equatable {
    public var fullChanges: Set<ConfigKey>
    public var endpointChanges: Set<ConfigKey>

    public var isEmpty: Bool { fullChanges.isEmpty && endpointChanges.isEmpty }
    /// Both sets together, as one push request's `ConfigsUpdated`.
    public var allChanges: Set<ConfigKey> { fullChanges.union(endpointChanges) }

    public init(fullChanges: Set<ConfigKey> = [], endpointChanges: Set<ConfigKey> = []) {
        self.fullChanges = fullChanges
        self.endpointChanges = endpointChanges
    }

    public init(from old: RegistrySnapshot, to new: RegistrySnapshot) {
        self.init()
        for s in new.services {
            guard let before = old.service(namespace: s.namespace, hostname: s.hostname) else {
                fullChanges.insert(Self.key(.serviceEntry, s))
                continue
            }
            if !s.sameShape(as: before) {
                fullChanges.insert(Self.key(.serviceEntry, s))
            } else if !Self.sameEndpoints(before.endpoints, s.endpoints) {
                endpointChanges.insert(Self.key(.endpoints, s))
            }
        }
        for s in old.services where new.service(namespace: s.namespace, hostname: s.hostname) == nil {
            fullChanges.insert(Self.key(.serviceEntry, s))
        }
    }

    /// Equal as multisets: order does not matter, duplicates do.
    static func sameEndpoints(_ a: [WorkloadEndpoint], _ b: [WorkloadEndpoint]) -> Bool {
        if a.count != b.count { return false }
        if a == b { return true }
        var counts: [WorkloadEndpoint: Int] = [:]
        for e in a { counts[e, default: 0] += 1 }
        for e in b {
            guard let n = counts[e], n > 0 else { return false }
            counts[e] = n - 1
        }
        return true
    }

    private static func key(_ kind: ConfigKey.Kind, _ s: Service) -> ConfigKey {
        ConfigKey(kind: kind, name: s.hostname, namespace: s.namespace)
    }
}
