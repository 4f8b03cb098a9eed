/// An immutable registry: every service, sorted by (namespace, hostname), at most one per
/// pair. Built by the parser or directly from services (tests, the admin API).
public struct RegistrySnapshot: Sendable, Equatable, CustomStringConvertible {
    /// Sorted by (namespace, hostname); unique on that pair.
    public let services: [Service]
    /// Unsupported things skipped while parsing (already logged once per process).
    public let warnings: [String]
    private let index: [ServiceID: Int]

    public static let empty = RegistrySnapshot(services: [])

    /// Sorts `services`; on a duplicate (namespace, hostname) the first one wins, as the
    /// oldest ServiceEntry does in Istio.
    public init(services: [Service], warnings: [String] = []) {
        var seen = Set<ServiceID>()
        let unique = services.filter { seen.insert(ServiceID($0)).inserted }
        let sorted = unique.sorted { ($0.namespace, $0.hostname) < ($1.namespace, $1.hostname) }
        var index: [ServiceID: Int] = [:]
        index.reserveCapacity(sorted.count)
        for (i, s) in sorted.enumerated() { index[ServiceID(s)] = i }
        self.services = sorted
        self.warnings = warnings
        self.index = index
    }

    private init(sorted services: [Service], warnings: [String], index: [ServiceID: Int]) {
        self.services = services
        self.warnings = warnings
        self.index = index
    }

    /// The same services, in the same order, with the endpoints of those named in `keys` taken
    /// from `latest`; also the hostnames that changed. Nothing is re-sorted or re-indexed.
    func replacingEndpoints(of keys: Set<ConfigKey>, from latest: RegistrySnapshot) -> (RegistrySnapshot, Set<String>) {
        var services = self.services
        var hosts = Set<String>()
        for key in keys {
            let id = ServiceID(namespace: key.namespace, hostname: key.name)
            guard let i = index[id], let now = latest.service(namespace: id.namespace, hostname: id.hostname) else { continue }
            services[i].endpoints = now.endpoints
            hosts.insert(id.hostname)
        }
        return (RegistrySnapshot(sorted: services, warnings: warnings, index: index), hosts)
    }

    public func service(namespace: String, hostname: String) -> Service? {
        index[ServiceID(namespace: namespace, hostname: hostname)].map { services[$0] }
    }

    public var count: Int { services.count }
    public var isEmpty: Bool { services.isEmpty }

    /// Same services; warnings do not count.
    public static func == (a: RegistrySnapshot, b: RegistrySnapshot) -> Bool { a.services == b.services }

    public var description: String {
        "RegistrySnapshot(\(services.count) services, \(Set(services.map(\.namespace)).count) namespaces)"
    }
}

/// (namespace, hostname): how Istio identifies a service.
struct ServiceID: Hashable, Sendable {
    var namespace: String
    var hostname: String

    init(namespace: String, hostname: String) { self.namespace = namespace; self.hostname = hostname }
    init(_ s: Service) { self.init(namespace: s.namespace, hostname: s.hostname) }
}
