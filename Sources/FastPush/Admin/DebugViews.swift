#if canImport(Glibc)
import Glibc
#endif
/// Istio's /debug/adsz and /debug/syncz shapes.
enum DebugViews {
    static func adsz(_ server: DiscoveryServer, proxyID: String?) -> String {
        var clients: [String] = []
        for c in server.allConnections {
            let st = c.snapshot
            guard let proxy = st.proxy else { continue }
            let id = c.connectionID
            if let p = proxyID, !id.contains(p) { continue }
            var watches: [String] = []
            for t in XdsType.allCases {
                guard let w = st.watched[t] else { continue }
                // Delta may watch the wildcard and names at once.
                let names = w.wildcard ? ["*"] + (c.xdsProtocol == .delta ? w.names.names : []) : w.names.names
                watches.append("\(JSONText.quote(t.typeURL)):[\(names.map(JSONText.quote).joined(separator: ","))]")
            }
            clients.append("{\"connectionId\":\(JSONText.quote(id)),\"connectedAt\":\(JSONText.quote(isoTime(c.connectedAt))),"
                + "\"address\":\(JSONText.quote(c.peer)),\"protocol\":\"\(c.xdsProtocol.rawValue)\",\"namespace\":\(JSONText.quote(proxy.namespace)),"
                + "\"locality\":\(JSONText.quote(proxy.locality.istioString)),\"userAgent\":\(JSONText.quote(proxy.userAgent)),"
                + "\"watches\":{\(watches.joined(separator: ","))}}")
        }
        return "{\"totalClients\":\(clients.count),\"clients\":[\(clients.joined(separator: ","))]}\n"
    }

    static func syncz(_ server: DiscoveryServer, namespace: String?) -> String {
        var rows: [String] = []
        for c in server.allConnections {
            let st = c.snapshot
            guard let proxy = st.proxy else { continue }
            if let ns = namespace, proxy.namespace != ns { continue }
            func field(_ t: XdsType, _ key: String) -> String {
                let w = st.watched[t]
                return "\"\(key)_sent\":\(JSONText.quote(w?.nonceSent ?? "")),\"\(key)_acked\":\(JSONText.quote(w?.nonceAcked ?? ""))"
            }
            var resources: [String] = []
            for t in XdsType.allCases {
                guard let w = st.watched[t] else { continue }
                var r = "\"sent\":\(JSONText.quote(w.nonceSent)),\"acked\":\(JSONText.quote(w.nonceAcked))"
                if w.lastSendTime > 0 { r += ",\"sentTime\":\(JSONText.quote(isoTime(w.lastSendTime)))" }
                if let e = w.lastError { r += ",\"lastError\":\(JSONText.quote(e))" }
                resources.append("\(JSONText.quote(t.typeURL)):{\(r)}")
            }
            rows.append("{\"cluster_id\":\(JSONText.quote(proxy.cluster)),\"proxy\":\(JSONText.quote(c.connectionID)),"
                + "\"proxy_type\":\"sidecar\",\"protocol\":\"\(c.xdsProtocol.rawValue)\",\"istio_version\":\(JSONText.quote(proxy.userAgent)),"
                + [field(.cds, "cluster"), field(.lds, "listener"), field(.rds, "route"), field(.eds, "endpoint")].joined(separator: ",")
                + ",\"resources\":{\(resources.joined(separator: ","))}}")
        }
        return "[\(rows.joined(separator: ","))]\n"
    }

    static func isoTime(_ seconds: Double) -> String { WallClock.iso8601(seconds: Int(seconds)) }
}
