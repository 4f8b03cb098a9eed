import Synchronization

/// An immutable, versioned snapshot of the registry: what one push generates from. A new one is
/// built per debounced push (versions increase monotonically); an endpoint-only change makes a
/// cheap copy that shares every unchanged service and every non-EDS cache.
public final class PushContext: Sendable {
    public let version: UInt64
    public let registry: RegistrySnapshot
    /// Encoded resources and response bodies of this version, built once and shared by every
    /// connection (see ResponseCache).
    public let cache: PushCaches
    private let views: Mutex<[String: NamespaceView]>

    public init(version: UInt64, registry: RegistrySnapshot) {
        self.version = version
        self.registry = registry
        self.cache = PushCaches()
        self.views = Mutex([:])
    }

    /// A new snapshot after a change of the services in `changed` only (ServiceEntry keys):
    /// what was encoded for every other service carries over from `previous`.
    public init(version: UInt64, registry: RegistrySnapshot, previous: PushContext, changed: Set<ConfigKey>) {
        self.version = version
        self.registry = registry
        self.cache = previous.cache.carryingOver(exceptServices: Set(changed.map(\.name)))
        self.views = Mutex([:])
    }

    private init(version: UInt64, registry: RegistrySnapshot, cache: PushCaches, views: [String: NamespaceView]) {
        self.version = version
        self.registry = registry
        self.cache = cache
        self.views = Mutex(views)
    }

    /// The copy for an incremental (endpoint-only) push: the services named in `updated` take
    /// their endpoints from `latest`; nothing else is rebuilt. Non-EDS caches are shared, EDS
    /// entries of untouched services are carried over.
    public func withUpdatedEndpoints(version: UInt64, updated: Set<ConfigKey>, latest: RegistrySnapshot) -> PushContext {
        let (snapshot, hosts) = registry.replacingEndpoints(of: updated, from: latest)
        // Visibility does not depend on endpoints: the views (and the caches keyed by them) carry
        // over. Generators read endpoints from the registry, never from a view.
        return PushContext(version: version, registry: snapshot,
                           cache: cache.carryingOver(exceptEndpointsOf: hosts),
                           views: views.withLock { $0 })
    }

    public var serviceCount: Int { registry.count }

    public func service(namespace: String, hostname: String) -> Service? {
        registry.service(namespace: namespace, hostname: hostname)
    }

    /// What a proxy in `namespace` sees (exportTo), computed once per namespace per version.
    public func view(for namespace: String) -> NamespaceView {
        if let v = views.withLock({ $0[namespace] }) { return v }
        let v = NamespaceView(namespace: namespace, registry: registry)
        return views.withLock { views in
            if let existing = views[namespace] { return existing }
            views[namespace] = v
            return v
        }
    }
}

/// The services visible from one namespace, with a hostname resolved to one service: the
/// proxy's own namespace wins, otherwise the first namespace in sort order (Istio prefers the
/// oldest; we have no creation times).
public final class NamespaceView: Sendable {
    private static let ids = Atomic<Int>(0)
    /// Unique in the process: response caches are keyed by it instead of the namespace string.
    public let id: Int
    public let namespace: String
    public let services: [Service]
    public let byHost: [String: Service]
    /// Distinct service ports, ascending.
    public let ports: [UInt32]
    public let servicesByPort: [UInt32: [Service]]

    init(namespace: String, registry: RegistrySnapshot) {
        self.id = NamespaceView.ids.wrappingAdd(1, ordering: .relaxed).newValue
        self.namespace = namespace
        var byHost: [String: Service] = [:]
        for s in registry.services where s.isVisible(from: namespace) {
            if let existing = byHost[s.hostname], existing.namespace == namespace { continue }
            if byHost[s.hostname] == nil || s.namespace == namespace { byHost[s.hostname] = s }
        }
        let services = byHost.values.sorted { $0.hostname < $1.hostname }
        var byPort: [UInt32: [Service]] = [:]
        for s in services {
            for p in s.ports { byPort[p.number, default: []].append(s) }
        }
        self.byHost = byHost
        self.services = services
        self.servicesByPort = byPort
        self.ports = byPort.keys.sorted()
    }

    public func isVisible(hostname: String, serviceNamespace: String) -> Bool {
        byHost[hostname]?.namespace == serviceNamespace
    }
}
