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

    public let kind: Kind
    public let name: String
    public let namespace: String
    /// Istio's HashCode(): computed once, so that set operations on the push path (merging
    /// requests per connection) hash one integer instead of two strings.
    public let hashCode: UInt64

    public init(kind: Kind, name: String, namespace: String) {
        self.kind = kind; self.name = name; self.namespace = namespace
        var h: UInt64 = 0xcbf29ce484222325 ^ UInt64(kind.rawValue)
        for b in namespace.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        h = (h ^ 0x2F) &* 0x100000001b3
        for b in name.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        hashCode = h
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(hashCode) }

    public static func == (a: ConfigKey, b: ConfigKey) -> Bool {
        a.hashCode == b.hashCode && a.kind == b.kind && a.name == b.name && a.namespace == b.namespace
    }

    public var description: String { "\(kind)/\(namespace)/\(name)" }
}
