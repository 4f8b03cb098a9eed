/// A service as Istio models it: one ServiceEntry host in one namespace. A ServiceEntry with
/// several hosts becomes several services that share ports and endpoints.
public struct Service: Hashable, Sendable {
    public var hostname: String
    public var namespace: String
    /// metadata.name of the ServiceEntry this service came from.
    public var configName: String
    public var ports: [ServicePort]
    public var endpoints: [WorkloadEndpoint]
    public var exportTo: ExportTo
    public var resolution: Resolution

    public init(hostname: String, namespace: String, configName: String, ports: [ServicePort],
                endpoints: [WorkloadEndpoint], exportTo: ExportTo = .all, resolution: Resolution = .static) {
        self.hostname = hostname
        self.namespace = namespace
        self.configName = configName
        self.ports = ports
        self.endpoints = endpoints
        self.exportTo = exportTo
        self.resolution = resolution
    }

    /// Everything except the endpoints: a change here is a full push, a change only in
    /// `endpoints` is an incremental EDS push.
    public func sameShape(as other: Service) -> Bool {
        hostname == other.hostname && namespace == other.namespace && configName == other.configName
            && ports == other.ports && exportTo == other.exportTo && resolution == other.resolution
    }

    /// Whether a proxy in `namespace` may see this service (ServiceEntry `exportTo`).
    public func isVisible(from proxyNamespace: String) -> Bool {
        exportTo.allows(serviceNamespace: namespace, proxyNamespace: proxyNamespace)
    }
}

public struct ServicePort: Hashable, Sendable {
    public var number: UInt32
    public var name: String
    public var protocolName: String
    /// ServiceEntry `targetPort`: the endpoint port when an endpoint's `ports` map has no entry.
    public var targetPort: UInt32?

    public init(number: UInt32, name: String, protocolName: String = "GRPC", targetPort: UInt32? = nil) {
        self.number = number
        self.name = name
        self.protocolName = protocolName
        self.targetPort = targetPort
    }
}

public struct Locality: Hashable, Sendable, Comparable {
    public var region: String
    public var zone: String
    public var subZone: String

    public init(region: String = "", zone: String = "", subZone: String = "") {
        self.region = region; self.zone = zone; self.subZone = subZone
    }

    /// Istio's `region/zone/subzone` form; missing parts are empty.
    public init(istioString s: String) {
        let parts = s.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        self.init(region: parts.count > 0 ? parts[0] : "",
                  zone: parts.count > 1 ? parts[1] : "",
                  subZone: parts.count > 2 ? parts[2] : "")
    }

    public var istioString: String {
        if subZone.isEmpty { return zone.isEmpty ? region : "\(region)/\(zone)" }
        return "\(region)/\(zone)/\(subZone)"
    }

    public static func < (a: Locality, b: Locality) -> Bool {
        (a.region, a.zone, a.subZone) < (b.region, b.zone, b.subZone)
    }
}

/// One ServiceEntry `endpoints[]` item (a WorkloadEntry spec).
public struct WorkloadEndpoint: Hashable, Sendable {
    public var address: String
    /// Port name -> endpoint port, overriding the service port number.
    public var ports: [String: UInt32]
    public var labels: [String: String]
    public var locality: Locality
    /// 0 means unset (weight 1).
    public var weight: UInt32

    public init(address: String, ports: [String: UInt32] = [:], labels: [String: String] = [:],
                locality: Locality = Locality(), weight: UInt32 = 0) {
        self.address = address
        self.ports = ports
        self.labels = labels
        self.locality = locality
        self.weight = weight
    }

    /// The port this endpoint serves `port` on: the endpoint's own mapping, else the service
    /// port's targetPort, else the service port number.
    public func port(for servicePort: ServicePort) -> UInt32 {
        ports[servicePort.name] ?? servicePort.targetPort ?? servicePort.number
    }
}

/// ServiceEntry `exportTo`: "*" (everyone, the default), "." (own namespace), or namespaces.
public enum ExportTo: Hashable, Sendable {
    case all
    case namespaces(Set<String>, includesOwn: Bool)

    public func allows(serviceNamespace: String, proxyNamespace: String) -> Bool {
        switch self {
        case .all: return true
        case let .namespaces(set, own):
            return (own && serviceNamespace == proxyNamespace) || set.contains(proxyNamespace)
        }
    }
}

public enum Resolution: String, Hashable, Sendable {
    case `static` = "STATIC"
    case none = "NONE"
    case dns = "DNS"
    case dnsRoundRobin = "DNS_ROUND_ROBIN"
}
