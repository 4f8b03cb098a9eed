import FastPush

// Seed inputs for every target: what `fastpilot-fuzz gen-corpus Tests/Fuzz/corpus` writes.
// They are built with fastpilot's own encoders (and, for ACKs, a real server's answers), so
// they are valid where they mean to be; the broken ones are broken on purpose, one way each.

let demoHosts = ["echo.demo.svc.cluster.local", "echo-admin.demo.svc.cluster.local",
                 "payments.payments.svc.cluster.local", "ledger.payments.svc.cluster.local", "ledger.internal"]
let demoClusters = ["outbound|8080||echo.demo.svc.cluster.local", "outbound|9090||echo-admin.demo.svc.cluster.local",
                    "outbound|8080||payments.payments.svc.cluster.local", "outbound|8081||payments.payments.svc.cluster.local",
                    "outbound|7070||ledger.payments.svc.cluster.local"]

/// Node metadata as an Istio sidecar sends it: strings, a nested Struct, a list, a number, a bool.
func istioNode(namespace: String = "demo", id: String? = nil) -> Node {
    var n = Fixtures.node(id: id ?? "sidecar~10.0.0.1~app-1.\(namespace)~\(namespace).svc.cluster.local", namespace: namespace, metadata: [
        "ISTIO_VERSION": .string("1.24.0"),
        "CLUSTER_ID": .string("Kubernetes"),
        "LABELS": .structValue(ProtoStruct(fields: ["app": .string("app"), "version": .string("v1")])),
        "INTERCEPTION_MODE": .string("REDIRECT"),
        "APP_CONTAINERS": .list([.string("app"), .string("sidecar")]),
        "CONCURRENCY": .number(2),
        "ENABLE_HBONE": .bool(false),
        "PROXY_CONFIG": .null,
    ])
    n.locality = NodeLocality(region: "us-east1", zone: "us-east1-b", subZone: "")
    return n
}

/// A proxyless gRPC client's node (xds-go style).
func grpcNode(namespace: String = "demo") -> Node {
    var n = Node()
    n.id = "grpc~10.0.0.2~client-1.\(namespace)~\(namespace).svc.cluster.local"
    n.metadata = ProtoStruct(fields: ["NAMESPACE": .string(namespace), "GENERATOR": .string("grpc")])
    n.userAgentName = "gRPC Go"
    n.userAgentVersion = "1.66.0"
    n.clientFeatures = ["envoy.lb.does_not_support_overprovisioning", "xds.config.resource-in-sotw"]
    n.locality = NodeLocality(region: "us-west1", zone: "us-west1-a")
    return n
}

/// A Struct nested `depth` levels through Value.struct_value.
func nestedStruct(_ depth: Int) -> ProtoStruct {
    var s = ProtoStruct(fields: ["leaf": .string("x")])
    for _ in 0..<depth { s = ProtoStruct(fields: ["k": .structValue(s)]) }
    return s
}

func nestedList(_ depth: Int) -> ProtoValue {
    var v = ProtoValue.number(1)
    for _ in 0..<depth { v = .list([v]) }
    return v
}

enum Wire {
    static func varint(_ v: UInt64) -> [UInt8] {
        var v = v, out: [UInt8] = []
        while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        out.append(UInt8(v))
        return out
    }
    static func key(_ field: Int, _ wt: UInt8) -> [UInt8] { varint(UInt64(field) << 3 | UInt64(wt)) }
    static func bytes(_ field: Int, _ b: [UInt8]) -> [UInt8] { key(field, 2) + varint(UInt64(b.count)) + b }
    static func string(_ field: Int, _ s: String) -> [UInt8] { bytes(field, Array(s.utf8)) }
}

/// The responses a fresh demo server writes for a sidecar's first requests: realistic
/// DiscoveryResponse bytes for each type.
func serverResponses() -> [(XdsType, [UInt8])] {
    let server = Fixtures.server()
    let transport = CapturingTransport()
    let conn = server.newConnection(transport: transport)
    var out: [(XdsType, [UInt8])] = []
    let plan: [(XdsType, [String])] = [(.cds, []), (.eds, demoClusters), (.lds, []), (.rds, ["8080", "7070"])]
    for (i, (type, names)) in plan.enumerated() {
        _ = server.process(Fixtures.request(type, names: names, node: i == 0 ? istioNode() : nil), on: conn)
        if let w = transport.stream.writes.last { out.append((type, w)) }
    }
    server.disconnect(conn)
    return out
}

// MARK: proto

enum ProtoSeeds {
    static func all() -> [(name: String, bytes: [UInt8])] {
        var seeds: [(String, [UInt8])] = []
        func add(_ name: String, _ b: [UInt8]) { seeds.append((name, b)) }

        let cds = Fixtures.request(.cds, node: istioNode())
        add("req-cds-initial-sidecar", cds.encode())
        add("req-eds-names", Fixtures.request(.eds, names: demoClusters).encode())
        add("req-eds-ack", Fixtures.request(.eds, names: demoClusters, version: "1", nonce: "2").encode())
        add("req-cds-nack", Fixtures.request(.cds, version: "1", nonce: "1",
                                           error: RPCStatus(code: 13, message: "cluster outbound|8080||x: invalid")).encode())
        add("req-lds-wildcard", Fixtures.request(.lds).encode())
        add("req-rds-ports", Fixtures.request(.rds, names: ["8080", "7070", "8081"]).encode())
        add("req-lds-proxyless", Fixtures.request(.lds, names: ["echo.demo.svc.cluster.local:8080"], node: grpcNode()).encode())
        add("req-rds-proxyless", Fixtures.request(.rds, names: ["echo.demo.svc.cluster.local:8080"]).encode())
        add("req-cds-star", Fixtures.request(.cds, names: ["*"], node: istioNode()).encode())
        add("req-unknown-type", { var r = Fixtures.request(.cds); r.typeURL = "type.googleapis.com/envoy.config.core.v3.Secret"; return r.encode() }())
        var withStatusDetails = RPCStatus(code: 3, message: "bad")
        withStatusDetails.details = [ProtoAny(typeURL: "type.googleapis.com/google.rpc.BadRequest", value: [0x0A, 0x00])]
        add("req-nack-details", Fixtures.request(.eds, names: ["a"], nonce: "3", error: withStatusDetails).encode())
        add("node-sidecar", istioNode().encode())
        add("node-proxyless", grpcNode().encode())
        var values = Node()
        values.metadata = ProtoStruct(fields: ["nan": .number(.nan), "negzero": .number(-0.0), "inf": .number(.infinity),
                                               "null": .null, "t": .bool(true), "e": .string(""), "u": .string("ünïcødé ✓"),
                                               "": .list([])])
        add("node-every-value", values.encode())
        add("struct-nested-31", nestedStruct(15).encode())  // Struct→Value→Struct: 2 levels each
        add("struct-nested-deep", nestedStruct(20).encode())
        var listNode = Node()
        listNode.metadata = ProtoStruct(fields: ["l": nestedList(34)])
        add("node-list-too-deep", listNode.encode())
        add("req-node-deep-metadata", Fixtures.request(.cds, node: { var n = istioNode(); n.metadata = nestedStruct(14); return n }()).encode())
        for (type, bytes) in serverResponses() { add("resp-\(type.metricLabel)", bytes) }
        add("status", RPCStatus(code: 14, message: "unavailable").encode())

        // Broken on purpose.
        let full = cds.encode()
        add("trunc-half", Array(full.prefix(full.count / 2)))
        add("trunc-one-short", Array(full.dropLast()))
        add("names-invalid-utf8", Wire.string(4, EnvoyTypeURL.clusterLoadAssignment) + Wire.bytes(3, [0x61, 0xC3, 0x28]))
        add("names-wrong-wiretype", Wire.string(4, EnvoyTypeURL.clusterLoadAssignment) + Wire.key(3, 0) + [0x05])
        add("varint-11-bytes", Wire.key(1, 0) + [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
        add("group-wiretype", Wire.key(7, 3) + Wire.key(7, 4))
        add("field-zero", [0x02, 0x00])
        add("length-past-end", Wire.key(1, 2) + Wire.varint(1 << 40) + [0x41])
        add("fixed-truncated", Wire.key(9, 1) + [1, 2, 3])
        add("unknown-fields", Wire.key(7, 0) + [0x01] + Wire.key(99, 5) + [1, 2, 3, 4] + Wire.key(536_870_911, 1) + [0, 0, 0, 0, 0, 0, 0, 0] + Wire.string(4, EnvoyTypeURL.cluster))
        add("empty", [])
        return seeds
    }
}

// MARK: request

/// Plays a script against a real server so the seed's ACKs carry the nonces and versions that
/// server really sends; records the chunks.
struct SeedSession {
    let server = Fixtures.server()
    var transport = CapturingTransport()
    var conn: XdsConnection
    var chunks: [(op: UInt8, payload: [UInt8])] = []
    var sentNode = false

    init() { conn = server.newConnection(transport: transport) }

    func last(_ t: XdsType) -> DiscoveryResponse? {
        transport.stream.writes.reversed().lazy.compactMap { try? DiscoveryResponse(decoding: $0) }.first { $0.typeURL == t.typeURL }
    }

    mutating func raw(_ op: UInt8, _ payload: [UInt8]) {
        chunks.append((op, payload))
        switch op % 5 {
        case 0, 1:
            let r = payload.withUnsafeBytes { op % 5 == 0 ? try? DiscoveryRequest(decodingDeferringNames: $0) : try? DiscoveryRequest(decoding: $0) }
            if let r, case .close = server.process(r, on: conn) { reconnectOnly() }
        case 2: RequestFuzz.changeRegistry(server, payload.first ?? 0)
        case 3: reconnectOnly()
        default: break  // the target's own ACK oracle; the seed session does not need its effect
        }
    }

    private mutating func reconnectOnly() {
        server.disconnect(conn)
        transport = CapturingTransport()
        conn = server.newConnection(transport: transport)
        sentNode = false
    }

    mutating func send(_ t: XdsType, _ names: [String] = [], node: Node? = nil, ack: Bool = false, nack: String? = nil,
                       nonce: String? = nil, full: Bool = false) {
        var r = Fixtures.request(t, names: names)
        if !sentNode { r.node = node ?? istioNode(); sentNode = true }
        if ack || nack != nil, let l = last(t) {
            r.responseNonce = l.nonce
            r.versionInfo = l.versionInfo
        }
        if let nack { r.errorDetail = RPCStatus(code: 13, message: nack); r.versionInfo = "" }
        if let nonce { r.responseNonce = nonce }
        raw(full ? 1 : 0, r.encode())
    }

    mutating func registry(_ bits: UInt8) { raw(2, [bits]) }
    mutating func ackOracle(_ t: XdsType) { raw(4, [UInt8(t.rawValue)]) }
    mutating func reconnect() { raw(3, []) }
    var bytes: [UInt8] { Chunks.encode(chunks) }
}

enum RequestSeeds {
    static func all() -> [(name: String, bytes: [UInt8])] {
        var seeds: [(String, [UInt8])] = []
        func add(_ name: String, _ script: (inout SeedSession) -> Void) {
            var s = SeedSession()
            script(&s)
            seeds.append((name, s.bytes))
        }
        add("sidecar-full-flow") { s in
            s.send(.cds); s.send(.cds, ack: true)
            s.send(.eds, demoClusters); s.send(.eds, demoClusters, ack: true)
            s.send(.lds); s.send(.lds, ack: true)
            s.send(.rds, ["8080", "7070", "8081"]); s.send(.rds, ["8080", "7070", "8081"], ack: true)
        }
        add("proxyless-flow") { s in
            let target = ["echo.demo.svc.cluster.local:8080"]
            s.send(.lds, target, node: grpcNode()); s.send(.lds, target, ack: true)
            s.send(.rds, target); s.send(.rds, target, ack: true)
            s.send(.cds, [demoClusters[0]]); s.send(.cds, [demoClusters[0]], ack: true)
            s.send(.eds, [demoClusters[0]]); s.send(.eds, [demoClusters[0]], ack: true)
        }
        add("nack-then-ack") { s in
            s.send(.cds); s.send(.cds, nack: "bad cluster"); s.send(.cds, ack: true)
        }
        add("stale-nonce") { s in
            s.send(.cds); s.send(.cds, nonce: "999")
        }
        add("eds-grow-shrink") { s in
            s.send(.eds, [demoClusters[0]]); s.send(.eds, [demoClusters[0]], ack: true)
            s.send(.eds, Array(demoClusters.prefix(3)), ack: true); s.send(.eds, Array(demoClusters.prefix(3)), ack: true)
            s.send(.eds, [demoClusters[2]], ack: true)
        }
        add("eds-unsubscribe") { s in
            s.send(.eds, [demoClusters[0]]); s.send(.eds, [demoClusters[0]], ack: true); s.send(.eds, [], ack: true)
        }
        add("registry-changes") { s in
            s.send(.cds); s.send(.cds, ack: true); s.send(.eds, demoClusters); s.send(.eds, demoClusters, ack: true)
            s.registry(0x01); s.send(.cds, ack: true)
            s.registry(0x40); s.send(.eds, demoClusters, ack: true)
            s.registry(0x20); s.send(.cds, ack: true)
            s.registry(0x80); s.send(.cds, ack: true)
        }
        add("reconnect") { s in
            s.send(.cds); s.send(.cds, ack: true); s.reconnect(); s.send(.cds); s.send(.lds)
        }
        add("no-node-first") { s in
            s.sentNode = true
            s.send(.cds)
        }
        add("unknown-type") { s in
            var r = Fixtures.request(.cds, node: istioNode())
            r.typeURL = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
            s.raw(0, r.encode())
        }
        add("full-decoder-path") { s in
            s.send(.cds, full: true); s.send(.cds, ack: true, full: true)
            s.send(.eds, demoClusters, full: true); s.send(.eds, demoClusters, ack: true, full: true)
        }
        add("cds-star-and-names") { s in
            s.send(.cds, ["*"]); s.send(.cds, ["*", demoClusters[0]], ack: true); s.send(.cds, [demoClusters[1]], ack: true)
        }
        add("payments-namespace") { s in
            s.send(.cds, node: istioNode(namespace: "payments")); s.send(.lds); s.send(.rds, ["7070", "8080"])
        }
        add("empty-node-id") { s in
            var n = Node()
            n.id = ""
            s.send(.cds, node: n); s.send(.cds, ack: true)
        }
        add("bad-deferred-names") { s in
            s.send(.cds)
            s.raw(0, Wire.string(4, EnvoyTypeURL.clusterLoadAssignment) + Wire.bytes(3, [0xFF, 0xFE]))
        }
        add("duplicate-names") { s in
            s.send(.eds, [demoClusters[0], demoClusters[0], demoClusters[1]])
            s.send(.eds, [demoClusters[1], demoClusters[0]], ack: true)
        }
        add("repeat-without-nonce") { s in
            s.send(.lds); s.send(.lds); s.send(.lds, ack: true); s.send(.lds)
        }
        add("unknown-names") { s in
            s.send(.eds, ["outbound|1||nowhere.invalid", "inbound|8080||x", "", "garbage"])
            s.send(.rds, ["nowhere:1", "0.0.0.0_8080"]); s.send(.lds, ["nothing.svc:80"])
        }
        add("ack-oracle") { s in
            s.send(.cds); s.ackOracle(.cds); s.send(.eds, demoClusters); s.ackOracle(.eds); s.ackOracle(.eds)
            s.send(.lds, ["*", "echo.demo.svc.cluster.local:8080"]); s.ackOracle(.lds)
            s.send(.rds, ["8080"]); s.send(.rds, ["8080", "7070"], ack: true); s.ackOracle(.rds)
            s.send(.eds, [demoClusters[0]], nack: "rejected"); s.ackOracle(.eds)
        }
        add("undecodable-chunk-skipped") { s in
            s.raw(0, [0x0A, 0xFF])
            s.send(.cds)
        }
        return seeds
    }
}

// MARK: h2

enum H2Frame {
    static func frame(_ type: UInt8, _ flags: UInt8, _ stream: UInt32, _ payload: [UInt8]) -> [UInt8] {
        let n = payload.count
        return [UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF), type, flags,
                UInt8(stream >> 24 & 0x7F), UInt8(stream >> 16 & 0xFF), UInt8(stream >> 8 & 0xFF), UInt8(stream & 0xFF)] + payload
    }

    /// HPACK "literal header field without indexing, new name", no Huffman: any header, no table state.
    static func hpack(_ headers: [(String, String)]) -> [UInt8] {
        var out: [UInt8] = []
        func str(_ s: String) {
            let b = Array(s.utf8)
            if b.count < 127 { out.append(UInt8(b.count)) } else {
                out.append(127)
                var v = b.count - 127
                while v >= 128 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
                out.append(UInt8(v))
            }
            out += b
        }
        for (k, v) in headers { out.append(0); str(k); str(v) }
        return out
    }

    static func grpcHeaders(path: String, method: String = "POST", contentType: String = "application/grpc") -> [(String, String)] {
        [(":method", method), (":scheme", "http"), (":path", path), (":authority", "localhost:15010"),
         ("content-type", contentType), ("te", "trailers"), ("user-agent", "grpc-go/1.66.0")]
    }

    static func headers(_ stream: UInt32, _ h: [(String, String)], endStream: Bool = false) -> [UInt8] {
        frame(1, 0x4 | (endStream ? 0x1 : 0), stream, hpack(h))
    }

    static func grpcMessage(_ m: [UInt8], compressed: Bool = false) -> [UInt8] {
        let n = m.count
        return [compressed ? 1 : 0, UInt8(n >> 24 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)] + m
    }

    static func data(_ stream: UInt32, _ payload: [UInt8], endStream: Bool = false) -> [UInt8] {
        frame(0, endStream ? 0x1 : 0, stream, payload)
    }

    static let settingsAck = frame(4, 1, 0, [])
    static func settings(_ entries: [(UInt16, UInt32)]) -> [UInt8] {
        frame(4, 0, 0, entries.flatMap { id, v in [UInt8(id >> 8), UInt8(id & 0xFF), UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] })
    }
    static func windowUpdate(_ stream: UInt32, _ n: UInt32) -> [UInt8] {
        frame(8, 0, stream, [UInt8(n >> 24 & 0x7F), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)])
    }
    static func rst(_ stream: UInt32, _ code: UInt32) -> [UInt8] {
        frame(3, 0, stream, [UInt8(code >> 24), UInt8(code >> 16 & 0xFF), UInt8(code >> 8 & 0xFF), UInt8(code & 0xFF)])
    }
    static let ping = frame(6, 0, 0, [1, 2, 3, 4, 5, 6, 7, 8])
    static func goaway(_ last: UInt32, _ code: UInt32) -> [UInt8] {
        frame(7, 0, 0, [UInt8(last >> 24 & 0x7F), UInt8(last >> 16 & 0xFF), UInt8(last >> 8 & 0xFF), UInt8(last & 0xFF), 0, 0, 0, UInt8(code)])
    }
}

enum H2Seeds {
    /// A seed: flags, chunk size, then either the whole client byte stream (flags bit 0 clear)
    /// or the frames after the preface and SETTINGS that the target adds itself (bit 0 set).
    static func seed(_ frames: [UInt8], prefaced: Bool = true, budget: UInt8 = 3, chunk: UInt8 = 0) -> [UInt8] {
        let flags = (prefaced ? 1 : 0) | (budget & 3) << 1
        let body = prefaced ? frames : H2Fuzz.clientPreface + H2Frame.settings([(2, 0), (4, 4 << 20)]) + frames
        return [flags, chunk] + body
    }

    static func all() -> [(name: String, bytes: [UInt8])] {
        typealias F = H2Frame
        let ads = ADSService.streamPath
        let cds = Fixtures.request(.cds, node: istioNode()).encode()
        let cdsAck = Fixtures.request(.cds, version: "1", nonce: "1").encode()
        let eds = Fixtures.request(.eds, names: demoClusters).encode()
        let lds = Fixtures.request(.lds, names: ["echo.demo.svc.cluster.local:8080"], node: grpcNode()).encode()
        let open1 = F.settingsAck + F.headers(1, F.grpcHeaders(path: ads))

        var seeds: [(String, [UInt8])] = []
        func add(_ name: String, _ b: [UInt8]) { seeds.append((name, b)) }
        add("ads-cds", seed(open1 + F.data(1, F.grpcMessage(cds))))
        add("ads-cds-full-preface", seed(open1 + F.data(1, F.grpcMessage(cds)), prefaced: false))
        add("ads-cds-chunk7", seed(open1 + F.data(1, F.grpcMessage(cds)), chunk: 7))
        add("ads-cds-chunk1-budget64", seed(open1 + F.data(1, F.grpcMessage(cds)), budget: 0, chunk: 1))
        add("ads-cds-ack-eds-halfclose", seed(open1 + F.data(1, F.grpcMessage(cds) + F.grpcMessage(cdsAck))
                                              + F.data(1, F.grpcMessage(eds)) + F.data(1, [], endStream: true)))
        add("ads-proxyless-lds", seed(open1 + F.data(1, F.grpcMessage(lds), endStream: true), budget: 1))
        add("ads-two-streams", seed(open1 + F.headers(3, F.grpcHeaders(path: ads)) + F.data(3, F.grpcMessage(lds))
                                    + F.data(1, F.grpcMessage(cds)) + F.rst(3, 8)))
        add("ads-message-split-frames", seed(open1 + { let m = F.grpcMessage(cds); return F.data(1, Array(m.prefix(3))) + F.data(1, Array(m.dropFirst(3))) }()))
        add("ads-malformed-request", seed(open1 + F.data(1, F.grpcMessage([0x0A, 0xFF, 0x01]))))
        add("ads-no-node", seed(open1 + F.data(1, F.grpcMessage(cdsAck))))
        add("ads-compressed", seed(F.settingsAck + F.headers(1, F.grpcHeaders(path: ads) + [("grpc-encoding", "gzip")]) + F.data(1, F.grpcMessage(cds, compressed: true))))
        add("ads-too-large", seed(open1 + F.data(1, [0, 0x7F, 0xFF, 0xFF, 0xFF, 1, 2, 3])))
        add("ads-window-small", seed(F.settings([(4, 16)]) + open1 + F.data(1, F.grpcMessage(cds)) + F.windowUpdate(1, 1 << 16)
                                     + F.windowUpdate(0, 1 << 20), budget: 1))
        add("echo", seed(F.settingsAck + F.headers(1, F.grpcHeaders(path: H2Fuzz.echoPath)) + F.data(1, F.grpcMessage(Array(repeating: 0x41, count: 300)))
                         + F.data(1, F.grpcMessage([]), endStream: true)))
        add("unknown-method", seed(F.settingsAck + F.headers(1, F.grpcHeaders(path: "/grpc.health.v1.Health/Check"), endStream: true)))
        add("get-405", seed(F.headers(1, F.grpcHeaders(path: ads, method: "GET"), endStream: true)))
        add("json-415", seed(F.headers(1, F.grpcHeaders(path: ads, contentType: "application/json"))))
        add("headers-continuation", seed({ let block = F.hpack(F.grpcHeaders(path: ads))
            return F.frame(1, 0, 1, Array(block.prefix(10))) + F.frame(9, 0x4, 1, Array(block.dropFirst(10))) }()
            + F.data(1, F.grpcMessage(cds))))
        add("ping-goaway", seed(F.ping + open1 + F.goaway(1, 0) + F.data(1, F.grpcMessage(cds))))
        add("rst-then-data", seed(open1 + F.rst(1, 8) + F.data(1, F.grpcMessage(cds))))
        add("priority-frame", seed(F.frame(2, 0, 1, [0, 0, 0, 0, 16]) + open1))
        add("data-on-stream-0", seed(F.data(0, [1, 2, 3])))
        add("even-stream-id", seed(F.headers(2, F.grpcHeaders(path: ads))))
        add("trailers-from-client", seed(open1 + F.data(1, F.grpcMessage(cds)) + F.headers(1, [("grpc-status", "0")], endStream: true)))
        add("bad-magic-http1", [0, 0] + Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        add("truncated-frame", seed(Array(open1.prefix(open1.count - 3))))
        add("huge-header-list", seed(F.headers(1, F.grpcHeaders(path: ads) + [("x-big", String(repeating: "v", count: 3000))])))
        add("settings-many", seed(F.settings((0..<40).map { (UInt16($0 % 6 + 1), UInt32($0)) })))
        return seeds
    }
}

// MARK: registry

enum RegistrySeeds {
    static func entry(name: String = "svc", ns: String = "demo", hosts: String = "[\"svc.demo.svc.cluster.local\"]",
                      resolution: String = "\"STATIC\"", ports: String = "[{\"number\":8080,\"name\":\"grpc\",\"protocol\":\"GRPC\"}]",
                      endpoints: String = "[{\"address\":\"10.0.0.1\"}]", extra: String = "") -> String {
        "{\"apiVersion\":\"networking.istio.io/v1\",\"kind\":\"ServiceEntry\",\"metadata\":{\"name\":\"\(name)\",\"namespace\":\"\(ns)\"},"
            + "\"spec\":{\"hosts\":\(hosts),\"resolution\":\(resolution),\"ports\":\(ports),\"endpoints\":\(endpoints)\(extra)}}"
    }

    static func all() -> [(name: String, bytes: [UInt8])] {
        var seeds: [(String, [UInt8])] = []
        func add(_ name: String, _ s: String) { seeds.append((name, Array(s.utf8))) }
        add("demo-list", DemoRegistry.json)
        add("single-entry", entry())
        add("bare-array", "[" + entry() + "," + entry(name: "b", hosts: "[\"b.demo.svc.cluster.local\",\"b.internal\"]") + "]")
        add("export-to", entry(extra: ",\"exportTo\":[\".\",\"payments\"]"))
        add("export-none", entry(extra: ",\"exportTo\":[\"~\"]"))
        add("export-star", entry(extra: ",\"exportTo\":[\"*\"]"))
        add("export-mixed-tilde", entry(extra: ",\"exportTo\":[\"~\",\"x\"]"))
        add("endpoint-full", entry(endpoints: "[{\"address\":\"10.0.0.1\",\"ports\":{\"grpc\":15051},\"labels\":{\"app\":\"a\"},\"locality\":\"r/z/s\",\"weight\":3,\"network\":\"n1\"}]"))
        add("ipv6-endpoint", entry(endpoints: "[{\"address\":\"::1\"},{\"address\":\"fe80::1%eth0\"}]"))
        add("target-port", entry(ports: "[{\"number\":80,\"name\":\"http\",\"protocol\":\"HTTP\",\"targetPort\":8080},{\"number\":81,\"name\":\"grpc-2\",\"targetPort\":0}]"))
        add("resolution-dns", entry(resolution: "\"DNS\"", endpoints: "[{\"address\":\"example.com\"}]"))
        add("resolution-none", entry(resolution: "\"NONE\"", endpoints: "[]"))
        add("resolution-absent-with-endpoints", entry(resolution: "null"))
        add("wildcard-host", entry(hosts: "[\"*.example.com\",\"svc.demo.svc.cluster.local\"]"))
        add("bare-star-host", entry(hosts: "[\"*\"]"))
        add("unix-endpoint", entry(endpoints: "[{\"address\":\"unix:///var/run/x.sock\"},{\"address\":\"10.0.0.2\"}]"))
        add("workload-selector", entry(extra: ",\"workloadSelector\":{\"labels\":{\"app\":\"x\"}}"))
        add("dup-port-name", entry(ports: "[{\"number\":80,\"name\":\"p\"},{\"number\":81,\"name\":\"p\"}]"))
        add("dup-port-number", entry(ports: "[{\"number\":80,\"name\":\"a\"},{\"number\":80,\"name\":\"b\"}]"))
        add("port-as-string", entry(ports: "[{\"number\":\"80\",\"name\":\"a\"}]"))
        add("port-out-of-range", entry(ports: "[{\"number\":70000,\"name\":\"a\"},{\"number\":-1,\"name\":\"b\"},{\"number\":1.5,\"name\":\"c\"}]"))
        add("endpoint-port-unknown", entry(endpoints: "[{\"address\":\"10.0.0.1\",\"ports\":{\"nope\":1}}]"))
        add("bad-names", entry(name: "Bad_Name", ns: "-ns-", hosts: "[\"UPPER.example\",\"a..b\"]"))
        add("dup-host-two-entries", "[" + entry() + "," + entry(name: "other") + "]")
        add("list-other-kind", "{\"kind\":\"List\",\"items\":[{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"x\"}}," + entry() + "]}")
        add("items-not-array", "{\"items\":{\"a\":1}}")
        add("no-metadata", "{\"kind\":\"ServiceEntry\",\"spec\":{\"hosts\":[\"a.b\"]}}")
        add("string-escapes", entry(name: "s\\u0076c", hosts: "[\"svc.demo.svc.cluster.local\",\"\\ud83d\\ude00.x\",\"\\ud800\"]"))
        add("numbers", "[1e400,-0,0.5e-3,-1E+2,12345678901234567890123]")
        add("deep-arrays", String(repeating: "[", count: 600) + String(repeating: "]", count: 600))
        add("deep-objects", String(repeating: "{\"a\":", count: 300) + "1" + String(repeating: "}", count: 300))
        add("truncated", String(DemoRegistry.json.prefix(700)))
        add("trailing-garbage", entry() + " x")
        add("trailing-comma", "[" + entry() + ",]")
        add("bom", "\u{FEFF}" + entry())
        add("null", "null")
        add("empty", "")
        add("control-char-in-string", "{\"metadata\":{\"name\":\"a\u{01}b\"}}")
        seeds.append(("invalid-utf8", Array(entry().utf8.prefix(60)) + [0xC3, 0x28] + Array(entry().utf8.dropFirst(60))))
        return seeds
    }
}

// MARK: admin

enum AdminSeeds {
    static func request(_ method: String, _ target: String, body: String? = nil, headers: [String] = []) -> String {
        var s = "\(method) \(target) HTTP/1.1\r\nHost: localhost:15014\r\n"
        for h in headers { s += h + "\r\n" }
        if let body { s += "Content-Length: \(body.utf8.count)\r\nContent-Type: application/json\r\n" }
        return s + "\r\n" + (body ?? "")
    }

    static func all() -> [(name: String, bytes: [UInt8])] {
        var seeds: [(String, [UInt8])] = []
        func add(_ name: String, _ s: String) { seeds.append((name, Array(s.utf8))) }
        let newEntry = RegistrySeeds.entry(name: "fresh", ns: "demo", hosts: "[\"fresh.demo.svc.cluster.local\"]",
                                           endpoints: "[{\"address\":\"10.1.0.1\",\"ports\":{\"grpc\":9000},\"locality\":\"r/z\",\"weight\":2,\"labels\":{\"v\":\"1\"}}]",
                                           extra: ",\"exportTo\":[\".\",\"payments\"]")
        let echoMoved = RegistrySeeds.entry(name: "echo", ns: "demo", hosts: "[\"echo.demo.svc.cluster.local\"]",
                                            endpoints: "[{\"address\":\"127.0.0.2\",\"ports\":{\"grpc\":15051}}]")
        add("ready", request("GET", "/ready"))
        add("metrics", request("GET", "/metrics"))
        add("adsz", request("GET", "/debug/adsz"))
        add("adsz-push", request("GET", "/debug/adsz?push=true"))
        add("adsz-proxy", request("GET", "/debug/adsz?proxyID=sidecar~10.0.0.1~app-1.demo~demo.svc.cluster.local&x=1"))
        add("syncz-ns", request("GET", "/debug/syncz?namespace=demo"))
        add("memory", request("GET", "/debug/memory"))
        add("list", request("GET", "/v1/serviceentries"))
        add("get-echo", request("GET", "/v1/serviceentries/demo/echo"))
        add("get-ledger-two-hosts", request("GET", "/v1/serviceentries/payments/ledger"))
        add("get-missing", request("GET", "/v1/serviceentries/demo/nope"))
        add("put-new", request("PUT", "/v1/serviceentries/demo/fresh", body: newEntry))
        add("put-endpoints-only", request("PUT", "/v1/serviceentries/demo/echo", body: echoMoved))
        add("put-conflict", request("PUT", "/v1/serviceentries/demo/clash", body: RegistrySeeds.entry(name: "clash", hosts: "[\"echo.demo.svc.cluster.local\"]")))
        add("put-wrong-metadata", request("PUT", "/v1/serviceentries/demo/a", body: RegistrySeeds.entry(name: "b")))
        add("put-bad-json", request("PUT", "/v1/serviceentries/demo/a", body: "{\"metadata\":"))
        add("put-dns-only", request("PUT", "/v1/serviceentries/demo/svc", body: RegistrySeeds.entry(resolution: "\"DNS\"", endpoints: "[]")))
        add("delete", request("DELETE", "/v1/serviceentries/demo/echo"))
        add("delete-missing", request("DELETE", "/v1/serviceentries/x/y"))
        add("post-405", request("POST", "/v1/serviceentries/demo/echo", body: "{}"))
        add("post-ready-405", request("POST", "/ready"))
        add("bad-entry-path", request("GET", "/v1/serviceentries/demo/echo/extra"))
        add("not-found", request("GET", "/nope"))
        add("chunked-411", request("PUT", "/v1/serviceentries/demo/echo", headers: ["Transfer-Encoding: chunked"]))
        add("too-large-413", "PUT /v1/serviceentries/demo/echo HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n{}")
        add("bad-request-line", "GET /ready\r\n\r\n")
        add("header-no-colon", "GET /ready HTTP/1.1\r\nbroken header\r\n\r\n")
        add("bad-content-length", "GET /ready HTTP/1.1\r\nContent-Length: -5\r\n\r\n")
        add("head-only-no-end", "GET /ready HTTP/1.1\r\nHost: x\r\n")
        add("put-get-delete-get", request("PUT", "/v1/serviceentries/demo/fresh", body: newEntry) + request("GET", "/v1/serviceentries/demo/fresh")
            + request("DELETE", "/v1/serviceentries/demo/fresh") + request("GET", "/v1/serviceentries/demo/fresh"))
        add("put-then-adsz", request("PUT", "/v1/serviceentries/demo/echo", body: echoMoved) + request("GET", "/debug/adsz?push=true")
            + request("GET", "/debug/syncz"))
        add("query-odd", request("GET", "/debug/syncz?namespace&&a=b=c"))
        return seeds
    }
}
