/// Reads the names that tie xDS resources together, as a client follows them: a cluster's
/// EDS name, a listener's route names, a route's clusters. Decode-only, no copies beyond the
/// names themselves.
public enum EnvoyResourceNames {
    /// Cluster: (name, eds_cluster_config.service_name or "").
    public static func cluster(_ value: UnsafeRawBufferPointer) throws(ProtoDecodingError) -> (name: String, edsName: String) {
        var r = ProtoReader(value)
        var name = "", eds = ""
        while let (f, w) = try r.next() {
            if f == 1 && w == .lengthDelimited { name = try r.readString() }
            else if f == 3 && w == .lengthDelimited {
                var c = try r.messageField()
                while let (cf, cw) = try c.next() {
                    if cf == 2 && cw == .lengthDelimited { eds = try c.readString() } else { try c.skip(wireType: cw) }
                }
            } else { try r.skip(wireType: w) }
        }
        return (name, eds)
    }

    /// ClusterLoadAssignment.cluster_name.
    public static func loadAssignment(_ value: UnsafeRawBufferPointer) throws(ProtoDecodingError) -> String {
        var r = ProtoReader(value)
        while let (f, w) = try r.next() {
            if f == 1 && w == .lengthDelimited { return try r.readString() }
            try r.skip(wireType: w)
        }
        return ""
    }

    /// Listener: its name and the RDS route names of its HttpConnectionManagers (filter chains
    /// and api_listener).
    public static func listener(_ value: UnsafeRawBufferPointer) throws(ProtoDecodingError) -> (name: String, routes: [String]) {
        var r = ProtoReader(value)
        var name = ""
        var routes: [String] = []
        while let (f, w) = try r.next() {
            switch (f, w) {
            case (1, .lengthDelimited): name = try r.readString()
            case (3, .lengthDelimited):  // FilterChain
                var chain = try r.messageField()
                while let (cf, cw) = try chain.next() {
                    guard cf == 3, cw == .lengthDelimited else { try chain.skip(wireType: cw); continue }
                    var filter = try chain.messageField()  // Filter
                    while let (ff, fw) = try filter.next() {
                        if ff == 4 && fw == .lengthDelimited { routes += try hcmRoutes(inAny: try filter.readLengthDelimited()) }
                        else { try filter.skip(wireType: fw) }
                    }
                }
            case (19, .lengthDelimited):  // ApiListener
                var api = try r.messageField()
                while let (af, aw) = try api.next() {
                    if af == 1 && aw == .lengthDelimited { routes += try hcmRoutes(inAny: try api.readLengthDelimited()) }
                    else { try api.skip(wireType: aw) }
                }
            default: try r.skip(wireType: w)
            }
        }
        return (name, routes)
    }

    static func hcmRoutes(inAny any: UnsafeRawBufferPointer) throws(ProtoDecodingError) -> [String] {
        var a = ProtoReader(any)
        var value: UnsafeRawBufferPointer?
        var isHCM = false
        while let (f, w) = try a.next() {
            if f == 1 && w == .lengthDelimited { isHCM = try a.readString() == EnvoyTypeURL.httpConnectionManager }
            else if f == 2 && w == .lengthDelimited { value = try a.readLengthDelimited() }
            else { try a.skip(wireType: w) }
        }
        guard isHCM, let value else { return [] }
        var h = ProtoReader(value)
        while let (f, w) = try h.next() {
            guard f == 3, w == .lengthDelimited else { try h.skip(wireType: w); continue }
            var rds = try h.messageField()
            while let (rf, rw) = try rds.next() {
                if rf == 2 && rw == .lengthDelimited { return [try rds.readString()] }
                try rds.skip(wireType: rw)
            }
        }
        return []
    }

    /// RouteConfiguration: its name and every route's cluster.
    public static func route(_ value: UnsafeRawBufferPointer) throws(ProtoDecodingError) -> (name: String, clusters: [String]) {
        var r = ProtoReader(value)
        var name = ""
        var clusters: [String] = []
        while let (f, w) = try r.next() {
            if f == 1 && w == .lengthDelimited { name = try r.readString(); continue }
            guard f == 2, w == .lengthDelimited else { try r.skip(wireType: w); continue }
            var vh = try r.messageField()
            while let (vf, vw) = try vh.next() {
                guard vf == 3, vw == .lengthDelimited else { try vh.skip(wireType: vw); continue }
                var route = try vh.messageField()
                while let (rf, rw) = try route.next() {
                    guard rf == 2, rw == .lengthDelimited else { try route.skip(wireType: rw); continue }
                    var action = try route.messageField()
                    while let (af, aw) = try action.next() {
                        if af == 1 && aw == .lengthDelimited { clusters.append(try action.readString()) }
                        else { try action.skip(wireType: aw) }
                    }
                }
            }
        }
        return (name, clusters)
    }
}
