/// Istio's resource names.
public enum ResourceNames {
    /// Cluster and ClusterLoadAssignment: `outbound|PORT||HOST`.
    public static func outboundCluster(port: UInt32, host: String) -> String { "outbound|\(port)||\(host)" }

    /// `outbound|PORT|SUBSET|HOST` → (port, host). Other directions and malformed names: nil.
    /// One scan of the bytes (it runs per cluster name when tables are built: `split` allocated
    /// an array of four substrings each time).
    public static func parseCluster(_ name: String) -> (port: UInt32, host: String)? {
        let u = name.utf8
        guard u.starts(with: "outbound|".utf8) else { return nil }
        var i = u.index(u.startIndex, offsetBy: 9)
        var port: UInt32 = 0
        var digits = 0
        while i < u.endIndex, u[i] != UInt8(ascii: "|") {
            let d = u[i] &- UInt8(ascii: "0")
            guard d < 10 else { return nil }
            let (m, o1) = port.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt32(d))
            guard !o1, !o2 else { return nil }
            port = a
            digits += 1
            i = u.index(after: i)
        }
        guard digits > 0, i < u.endIndex else { return nil }
        i = u.index(after: i)
        // The subset: anything up to the third bar.
        while i < u.endIndex, u[i] != UInt8(ascii: "|") { i = u.index(after: i) }
        guard i < u.endIndex else { return nil }
        i = u.index(after: i)
        guard i < u.endIndex else { return nil }
        return (port, String(name[i...]))
    }

    /// Sidecar outbound listener `0.0.0.0_PORT`.
    public static func outboundListener(port: UInt32) -> String { "0.0.0.0_\(port)" }

    public static func parseOutboundListener(_ name: String) -> UInt32? {
        guard name.hasPrefix("0.0.0.0_") else { return nil }
        return UInt32(name.dropFirst(8))
    }

    /// A proxyless gRPC target: `HOST:PORT`, or `HOST` for the service's first port.
    public static func parseTarget(_ name: String) -> (host: String, port: UInt32?) {
        if let colon = name.lastIndex(of: ":"), let port = UInt32(name[name.index(after: colon)...]) {
            return (String(name[..<colon]), port)
        }
        return (name, nil)
    }

    /// The RouteConfiguration a proxyless listener points at: always `HOST:PORT`.
    public static func grpcRoute(host: String, port: UInt32) -> String { "\(host):\(port)" }
}

extension NamespaceView {
    /// The service and port behind a cluster name, if this view sees it.
    func resolveCluster(_ name: String) -> (Service, ServicePort)? {
        guard let (port, host) = ResourceNames.parseCluster(name), let s = byHost[host],
              let p = s.ports.first(where: { $0.number == port }) else { return nil }
        return (s, p)
    }

    /// The service and port behind a proxyless target `HOST[:PORT]`.
    func resolveTarget(_ name: String) -> (Service, ServicePort)? {
        let (host, port) = ResourceNames.parseTarget(name)
        guard let s = byHost[host] else { return nil }
        guard let port else { return s.ports.first.map { (s, $0) } }
        return s.ports.first(where: { $0.number == port }).map { (s, $0) }
    }
}
