/// The four xDS types fastpilot serves, in Istio's push order.
public enum XdsType: Int, CaseIterable, Sendable, Hashable, CustomStringConvertible {
    case cds = 0, eds, lds, rds

    public static let pushOrder: [XdsType] = [.cds, .eds, .lds, .rds]

    public init?(typeURL: String) {
        switch typeURL {
        case EnvoyTypeURL.cluster: self = .cds
        case EnvoyTypeURL.clusterLoadAssignment: self = .eds
        case EnvoyTypeURL.listener: self = .lds
        case EnvoyTypeURL.routeConfiguration: self = .rds
        default: return nil
        }
    }

    public var typeURL: String {
        switch self {
        case .cds: EnvoyTypeURL.cluster
        case .eds: EnvoyTypeURL.clusterLoadAssignment
        case .lds: EnvoyTypeURL.listener
        case .rds: EnvoyTypeURL.routeConfiguration
        }
    }

    /// CDS and LDS: an empty first request (or "*") subscribes to everything; a response must
    /// list every resource, and a missing one is deleted.
    public var isWildcardType: Bool { self == .cds || self == .lds }

    /// Istio's short names, used in logs and metric labels.
    public var description: String {
        switch self { case .cds: "CDS"; case .eds: "EDS"; case .lds: "LDS"; case .rds: "RDS" }
    }

    public var metricLabel: String {
        switch self { case .cds: "cds"; case .eds: "eds"; case .lds: "lds"; case .rds: "rds" }
    }
}
