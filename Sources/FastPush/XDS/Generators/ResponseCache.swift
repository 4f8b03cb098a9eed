import Synchronization

/// Builds each value once, however many workers ask at the same time: the first one builds
/// while the others wait on that key only. The encode-once half of "encode once, write many".
public final class OnceCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    final class Cell: Sendable {
        let value = Mutex<Value?>(nil)
    }

    /// A hit, by far the common case (every stream of a push asks for the same values), takes
    /// one lock; only a value still being built is waited for on its own cell.
    enum Slot: Sendable {
        case built(Value)
        case building(Cell)
    }

    private let slots: Mutex<[Key: Slot]>
    /// How many values were built (tests prove sharing with it; metrics report it).
    public let builds = Atomic<Int>(0)

    public init(seed: [Key: Value] = [:]) {
        slots = Mutex(seed.mapValues { .built($0) })
    }

    public func get(_ key: Key, build: () -> Value) -> Value {
        let slot = slots.withLock { slots -> Slot in
            if let s = slots[key] { return s }
            let c = Cell()
            slots[key] = .building(c)
            return .building(c)
        }
        let c: Cell
        switch slot {
        case let .built(v): return v
        case let .building(cell): c = cell
        }
        let (value, built) = c.value.withLock { v -> (Value, Bool) in
            if let v { return (v, false) }
            let made = build()
            v = made
            builds.wrappingAdd(1, ordering: .relaxed)
            return (made, true)
        }
        if built { slots.withLock { $0[key] = .built(value) } }
        return value
    }

    public var count: Int { slots.withLock { $0.count } }

    /// The values built so far, for carrying into the next version.
    public func entries(where keep: (Key) -> Bool) -> [Key: Value] {
        let all = slots.withLock { $0 }
        var out: [Key: Value] = [:]
        for (k, slot) in all where keep(k) {
            switch slot {
            case let .built(v): out[k] = v
            case let .building(c): if let v = c.value.withLock({ $0 }) { out[k] = v }
            }
        }
        return out
    }
}

/// One encoded resource, keyed by its name and, where what it contains depends on who asks,
/// by the namespace whose view it was built from.
public struct ResourceKey: Hashable, Sendable {
    public var name: String
    public var scope: String
    public var host: String
    public init(name: String, scope: String = "", host: String = "") {
        self.name = name; self.scope = scope; self.host = host
    }
}

/// One response body: the resources (already wrapped in Any) and the type URL, shared by
/// every stream that gets the same set.
public struct EncodedBody: Sendable {
    public let bytes: SharedBytes
    /// FNV-1a of the bytes: a stream skips a response identical to the one it already has.
    public let hash: UInt64
    public let resourceCount: Int

    public init(bytes: SharedBytes, resourceCount: Int) {
        self.bytes = bytes
        self.resourceCount = resourceCount
        var h: UInt64 = 0xcbf29ce484222325
        for b in bytes.buffer { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        self.hash = h
    }
}

/// What a response body is keyed by: type, the asking proxy's view of the registry, the
/// subscription (an interned set, or wildcard), and for an incremental EDS push the hosts that
/// changed.
public struct ResponseKey: Hashable, Sendable {
    /// The asking proxy's NamespaceView (`id`): what it can see.
    public var view: Int
    public var subscription: SubscriptionSet?
    public var partial: UpdatedHosts?
    public init(view: Int, subscription: SubscriptionSet?, partial: UpdatedHosts? = nil) {
        self.view = view; self.subscription = subscription; self.partial = partial
    }
}

/// What a Delta resource table is keyed by: the asking proxy's view, whether it watches the
/// type's wildcard, and its explicit subscription (interned).
public struct TableKey: Hashable, Sendable {
    public var view: Int
    public var wildcard: Bool
    public var subscription: SubscriptionSet
    public init(view: Int, wildcard: Bool, subscription: SubscriptionSet) {
        self.view = view; self.wildcard = wildcard; self.subscription = subscription
    }
}

/// The caches of one PushContext version, one of each kind per xDS type: encoded resources,
/// State-of-the-World response bodies, and Delta resource tables.
public final class PushCaches: Sendable {
    public let resources: [OnceCache<ResourceKey, EncodedResource>]
    public let responses: [OnceCache<ResponseKey, EncodedBody>]
    public let tables: [OnceCache<TableKey, ResourceTable>]

    public init() {
        resources = XdsType.allCases.map { _ in OnceCache() }
        responses = XdsType.allCases.map { _ in OnceCache() }
        tables = XdsType.allCases.map { _ in OnceCache() }
    }

    private init(resources: [OnceCache<ResourceKey, EncodedResource>], responses: [OnceCache<ResponseKey, EncodedBody>],
                 tables: [OnceCache<TableKey, ResourceTable>]) {
        self.resources = resources
        self.responses = responses
        self.tables = tables
    }

    public func resources(_ t: XdsType) -> OnceCache<ResourceKey, EncodedResource> { resources[t.rawValue] }
    public func responses(_ t: XdsType) -> OnceCache<ResponseKey, EncodedBody> { responses[t.rawValue] }
    public func tables(_ t: XdsType) -> OnceCache<TableKey, ResourceTable> { tables[t.rawValue] }

    /// For a full push that changed only the services named in `hosts`: the encoded resources
    /// of every other service carry over (so do their versions, and a Delta stream is sent
    /// none of them). Clusters, load assignments and proxyless listeners depend on one service
    /// each; an outbound listener `0.0.0.0_PORT` on its port only. Route configurations group
    /// the services of a port and are built again, as are response bodies and tables.
    func carryingOver(exceptServices hosts: Set<String>) -> PushCaches {
        func host(_ t: XdsType, _ k: ResourceKey) -> String? {
            switch t {
            case .cds: ResourceNames.parseCluster(k.name)?.host
            case .eds: k.host
            case .lds: ResourceNames.parseOutboundListener(k.name) != nil ? "" : ResourceNames.parseTarget(k.name).host
            case .rds: nil
            }
        }
        let res = XdsType.allCases.map { t -> OnceCache<ResourceKey, EncodedResource> in
            guard t != .rds else { return OnceCache() }
            return OnceCache(seed: resources[t.rawValue].entries { k in host(t, k).map { !hosts.contains($0) } ?? false })
        }
        return PushCaches(resources: res, responses: XdsType.allCases.map { _ in OnceCache() },
                          tables: XdsType.allCases.map { _ in OnceCache() })
    }

    /// For an endpoint-only change: CDS, LDS and RDS do not depend on endpoints and are shared
    /// as they are; EDS keeps the load assignments of hosts that did not change.
    func carryingOver(exceptEndpointsOf hosts: Set<String>) -> PushCaches {
        var res = resources
        var resp = responses
        var tabs = tables
        let eds = XdsType.eds.rawValue
        res[eds] = OnceCache(seed: resources[eds].entries { !hosts.contains($0.host) })
        resp[eds] = OnceCache()
        tabs[eds] = OnceCache()
        return PushCaches(resources: res, responses: resp, tables: tabs)
    }
}
