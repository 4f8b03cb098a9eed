/// The client behind one ADS stream, from the node in its first request.
public struct Proxy: Sendable {
    public let id: String
    public let namespace: String
    public let cluster: String
    public let locality: Locality
    public let userAgent: String

    /// The namespace the node claims (metadata or id), else its certificate's, else the default.
    public init(node: Node, defaultNamespace: String = "default", identity: SPIFFEIdentity? = nil) {
        id = node.id
        namespace = Proxy.namespace(of: node) ?? identity?.namespace ?? defaultNamespace
        cluster = node.cluster
        let l = node.locality
        locality = Locality(region: l?.region ?? "", zone: l?.zone ?? "", subZone: l?.subZone ?? "")
        userAgent = node.userAgentVersion.isEmpty ? node.userAgentName : "\(node.userAgentName) \(node.userAgentVersion)"
    }

    /// Istio's rules: metadata NAMESPACE, else the node id convention
    /// `TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.DOMAIN`.
    static func namespace(of node: Node) -> String? {
        if let ns = node.metadata?[string: "NAMESPACE"], !ns.isEmpty { return ns }
        let parts = node.id.split(separator: "~", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        if let dot = parts[2].firstIndex(of: "."), parts[2].index(after: dot) < parts[2].endIndex {
            return String(parts[2][parts[2].index(after: dot)...])
        }
        if let first = parts[3].split(separator: ".").first, !first.isEmpty { return String(first) }
        return nil
    }
}
