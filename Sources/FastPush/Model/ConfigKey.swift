/// Istio's `ConfigKey{Kind, Name, Namespace}`: what a PushRequest says has changed. For
/// services the name is the hostname and the kind is ServiceEntry.
public struct ConfigKey: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: UInt8, Sendable, CustomStringConvertible {
        case serviceEntry = 1
        /// Endpoint-only changes (master's `kind.Endpoints`): incremental EDS.
        case endpoints = 2
        case sidecar = 3
        case unknown = 255

        public var description: String {
            switch self {
            case .serviceEntry: "ServiceEntry"
            case .endpoints: "Endpoints"
            case .sidecar: "Sidecar"
            case .unknown: "Unknown"
            }
        }
    }

    public var kind: Kind
    public var name: String
    public var namespace: String

    public init(kind: Kind, name: String, namespace: String) {
        self.kind = kind; self.name = name; self.namespace = namespace
    }

    public var description: String { "\(kind)/\(namespace)/\(name)" }
}
