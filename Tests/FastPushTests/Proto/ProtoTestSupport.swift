@testable import FastPush

// Helpers shared by the Proto tests: hex conversion, a seeded generator, and the Swift side of
// the reference messages in Tests/interop/vectors/make_vectors.py (same names, same values).

extension Array where Element == UInt8 {
    init(hex: String) {
        var out: [UInt8] = []
        out.reserveCapacity(hex.utf8.count / 2)
        var it = hex.utf8.makeIterator()
        func nibble(_ c: UInt8) -> UInt8 {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            default: fatalError("bad hex digit \(c)")
            }
        }
        while let hi = it.next(), let lo = it.next() { out.append(nibble(hi) << 4 | nibble(lo)) }
        self = out
    }

    var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        var s: [UInt8] = []
        s.reserveCapacity(count * 2)
        for b in self { s.append(digits[Int(b >> 4)]); s.append(digits[Int(b & 15)]) }
        return String(decoding: s, as: UTF8.self)
    }
}

/// SplitMix64: deterministic, so a robustness failure reproduces.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func encodeWith(_ body: (inout ProtoWriter) -> Void) -> [UInt8] {
    var w = ProtoWriter(capacity: 16)
    body(&w)
    return w.toArray()
}

/// Decodes with a reader and a body, for reader-level tests.
func read<T>(_ bytes: [UInt8], _ body: (inout ProtoReader) throws(ProtoDecodingError) -> T) throws(ProtoDecodingError) -> T {
    let result: Result<T, ProtoDecodingError> = bytes.withUnsafeBytes { raw in
        var r = ProtoReader(raw)
        return Result { () throws(ProtoDecodingError) -> T in try body(&r) }
    }
    return try result.get()
}

enum Reference {
    static let clusterFull = EnvoyCluster(
        name: "outbound|8080||echo.default.svc.cluster.local",
        edsServiceName: "outbound|8080||echo.default.svc.cluster.local",
        connectTimeoutMillis: 10_500)

    static let clusterMinimal = EnvoyCluster(name: "echo-cluster")

    static let cla = EnvoyClusterLoadAssignment(clusterName: "echo-cluster", localities: [
        EnvoyLocalityEndpoints(region: "local", zone: "zone-a", weight: 2, priority: 0, endpoints: [
            EnvoyLbEndpoint(address: "127.0.0.1", port: 15051, healthStatus: .healthy, weight: 1),
            EnvoyLbEndpoint(address: "10.1.2.3", port: 8080, healthy: false),
        ]),
        EnvoyLocalityEndpoints(weight: 1, priority: 1, endpoints: [
            EnvoyLbEndpoint(address: "::1", port: 0, healthStatus: .unknown, weight: 300),
        ]),
        EnvoyLocalityEndpoints(region: "us-east1", zone: "us-east1-b", subZone: "rack-7", weight: 0, priority: 2,
                               endpoints: []),
    ])

    static let claEmpty = EnvoyClusterLoadAssignment(clusterName: "empty", localities: [])

    static let hcmHTTP2 = EnvoyHttpConnectionManager(statPrefix: "grpc", routeConfigName: "echo-route", codecType: 2)

    static let listenerAPI = EnvoyAPIListener(
        name: "echo", connectionManager: EnvoyHttpConnectionManager(statPrefix: "echo", routeConfigName: "echo-route"))

    static let listenerOutbound = EnvoyOutboundListener(
        name: "0.0.0.0_8080", port: 8080,
        connectionManager: EnvoyHttpConnectionManager(statPrefix: "outbound_0.0.0.0_8080", routeConfigName: "8080"))

    static let route = EnvoyRouteConfiguration(name: "echo-route", virtualHosts: [
        EnvoyVirtualHost(name: "echo-vh", domains: ["echo", "echo:8080"], routes: [
            EnvoyRoute(prefix: "", cluster: "echo-cluster"),
            EnvoyRoute(prefix: "/pkg.Svc/", cluster: "outbound|8080||other.ns.svc.cluster.local"),
        ]),
        EnvoyVirtualHost(name: "catch-all", domains: ["*"], routes: []),
    ])

    static let metadata = ProtoStruct(fields: [
        "NAMESPACE": .string("default"),
        "GENERATOR": .string("grpc"),
        "ISTIO_VERSION": .string("1.24.0"),
        "LABELS": .structValue(ProtoStruct(fields: ["app": .string("echo"), "version": .string("v1")])),
        "PORTS": .list([.number(8080), .number(9090.5), .string("x"), .bool(true), .null,
                        .structValue(ProtoStruct(fields: ["nested": .list([])]))]),
        "EMPTY": .string(""),
        "ZERO": .number(0),
        "FALSE": .bool(false),
        "ünïcødé ✓": .string("值 🚀"),
    ])

    static var discoveryRequest: DiscoveryRequest {
        var r = DiscoveryRequest()
        r.versionInfo = "1"
        r.typeURL = EnvoyTypeURL.cluster
        r.responseNonce = "nonce-42"
        var n = Node()
        n.id = "sidecar~10.0.0.1~echo-6d4f.default~default.svc.cluster.local"
        n.cluster = "echo.default"
        n.metadata = metadata
        n.locality = NodeLocality(region: "local", zone: "local-a")
        n.userAgentName = "gRPC C-core linux Python"
        n.userAgentVersion = "C-core 58.0.0 Python 1.85.3"
        n.clientFeatures = ["envoy.lb.does_not_support_overprovisioning", "xds.config.resource-in-sotw"]
        r.node = n
        r.resourceNames = ["echo-cluster", "", "outbound|8080||echo.default.svc.cluster.local"]
        r.errorDetail = RPCStatus(code: 3, message: "xDS response validation errors: ✗")
        return r
    }

    static var discoveryRequestMinimal: DiscoveryRequest {
        var r = DiscoveryRequest()
        r.typeURL = EnvoyTypeURL.listener
        r.resourceNames = ["echo"]
        return r
    }

    static var discoveryRequestNegativeCode: DiscoveryRequest {
        var r = DiscoveryRequest()
        r.errorDetail = RPCStatus(code: -2)
        r.node = Node()
        return r
    }

    static var discoveryResponse: DiscoveryResponse {
        var r = DiscoveryResponse()
        r.versionInfo = "2024-01-01T00:00:00Z/7"
        r.nonce = "7"
        r.typeURL = EnvoyTypeURL.cluster
        r.resources = [
            ProtoAny(typeURL: EnvoyTypeURL.cluster, value: clusterMinimal.encode()),
            ProtoAny(typeURL: EnvoyTypeURL.cluster, value: clusterFull.encode()),
        ]
        r.controlPlane = ControlPlane(identifier: "fastpilot-0")
        return r
    }

    /// The response written the push-path way: shared body + per-stream tail.
    static var discoveryResponseSplit: [UInt8] {
        let body = DiscoveryResponseBody.encode(
            typeURL: EnvoyTypeURL.cluster,
            resources: [clusterMinimal.encodedResource(), clusterFull.encodedResource()],
            controlPlane: ControlPlane(identifier: "fastpilot-0"))
        return body.array + DiscoveryResponseTail.encode(version: "2024-01-01T00:00:00Z/7", nonce: "7")
    }

    /// Swift's encoding of every reference message, by the names make_vectors.py uses.
    static var swiftEncodings: [(name: String, bytes: [UInt8])] {
        [
            ("cluster_full", clusterFull.encode()),
            ("cluster_minimal", clusterMinimal.encode()),
            ("cla", cla.encode()),
            ("cla_empty", claEmpty.encode()),
            ("hcm_http2", hcmHTTP2.encode()),
            ("listener_api", listenerAPI.encode()),
            ("listener_outbound", listenerOutbound.encode()),
            ("route", route.encode()),
            ("discovery_request", discoveryRequest.encode()),
            ("discovery_request_minimal", discoveryRequestMinimal.encode()),
            ("discovery_request_negative_code", discoveryRequestNegativeCode.encode()),
            ("discovery_response", discoveryResponse.encode()),
            ("discovery_response_split", discoveryResponseSplit),
        ]
    }
}
