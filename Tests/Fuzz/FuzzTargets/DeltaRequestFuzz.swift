import FastPush

/// `delta`: the Delta ADS handler (`DiscoveryServer.process(_: DeltaDiscoveryRequest, on:)`) fed a
/// sequence of DeltaDiscoveryRequests on one stream, decoded as ADS decodes them (the node only
/// until the stream has one), with registry changes, reconnects and worker pushes in between.
///
/// Input: chunks `op(1) length(2, big-endian) payload(length)` (see `Chunks`); `op % 7`:
/// - 0: a DeltaDiscoveryRequest from the payload, decoded as ADS does (`decoding:decodingNode:deferringNames: true`,
///   the subscribe list and initial versions kept as wire bytes); undecodable ones are skipped;
/// - 1: the same, and if the stream has no node yet a sidecar node is put in (namespace
///   `["demo", "payments", "other"][(op / 7) % 3]`), so mutations need not keep one valid;
/// - 2: a registry change, as the `request` target's (payload[0] bits);
/// - 3: the client reconnects; payload[0] bit 0: Envoy's way, every type it watched again with
///   its subscriptions and what it holds as `initial_resource_versions`;
/// - 4: an oracle ACK of the last nonce of type `payload[0] % 4`, with the node and no lists;
/// - 5: a worker computes a push for the stream now (from the newest snapshot, what the stream
///   holds and must resend: the same `Generators.table` + `ResourceTable.patch` a push uses),
///   kept until op 6;
/// - 6: the kept pushes are written on the stream's thread (`XdsConnection.deliver`, which
///   stamps them and remakes or drops them if the stream moved on meanwhile).
/// The server's own push workers are not run (their entry point is internal); op 5/6 stand in.
///
/// Invariants: no trap; the deferring and the plain decoder accept the same requests and read
/// the same fields; `.ok` or `.close(non-OK)`, `.close` exactly for an unknown type URL, a first
/// request without a node id, or names that do not decode (INVALID_ARGUMENT "malformed
/// DeltaDiscoveryRequest"), and nothing written with it; a request gets at most one
/// response of its own type, plus the EDS one a CDS answer may bring (warming); every response
/// decodes, names no resource twice, none in both `resources` and `removed_resources`, has a
/// nonce never used before on the stream and a system_version_info, holds only Anys of its type
/// with 16-hex versions, and (EDS, RDS) removes nothing; the oracle ACK gets no response and
/// leaves `held` the same object; after every step what the server believes the stream holds
/// (`held`) is exactly what the client holds by applying every response it was sent and
/// dropping what it unsubscribed (versions a NACK made unknown excepted, as the server records
/// them); after the last stream ends the server holds no connection.
enum DeltaRequestFuzz {
    static let name = "delta"
    static let target = FuzzTarget(
        name: name,
        summary: "DiscoveryServer.process over DeltaDiscoveryRequests on one stream, with registry changes, reconnects and pushes",
        run: { data throws(FuzzViolation) in try run(data) },
        seeds: { DeltaSeeds.all() })

    static let maxSteps = 512
    static let namespaces = ["demo", "payments", "other"]

    static func run(_ data: UnsafeRawBufferPointer) throws(FuzzViolation) {
        let run = DeltaFuzzRun()
        var c = InputCursor(data)
        var steps = 0
        while !c.isAtEnd, steps < maxSteps {
            steps += 1
            let op = c.byte()!
            let payload = c.take(c.uint16() ?? c.remaining)
            try run.step(op, payload)
        }
        try run.finish()
    }

    static func node(_ namespace: String) -> Node {
        var n = Node()
        n.id = "sidecar~10.0.0.1~app-1.\(namespace)~\(namespace).svc.cluster.local"
        n.metadata = ProtoStruct(fields: ["NAMESPACE": .string(namespace), "ISTIO_VERSION": .string("1.24.0")])
        n.userAgentName = "envoy"
        return n
    }
}

/// One fuzz input's server and its current stream.
final class DeltaFuzzRun {
    let server = Fixtures.server()
    var stream: DeltaFuzzStream

    init() { stream = DeltaFuzzStream(server) }

    func step(_ op: UInt8, _ payload: UnsafeRawBufferPointer) throws(FuzzViolation) {
        switch op % 7 {
        case 0:
            try stream.send(payload, node: nil)
        case 1:
            try stream.send(payload, node: DeltaRequestFuzz.namespaces[Int(op / 7) % 3])
        case 2:
            RequestFuzz.changeRegistry(server, payload.first ?? 0)
        case 3:
            let old = stream
            old.end()
            stream = DeltaFuzzStream(server)
            if (payload.first ?? 0) & 1 != 0 { try stream.reconnect(like: old) }
        case 4:
            try stream.ackOracle(XdsType(rawValue: Int((payload.first ?? 0) % 4))!)
        case 5:
            stream.planPush()
        default:
            try stream.deliverPlans()
        }
        try stream.checkHeld()
    }

    func finish() throws(FuzzViolation) {
        stream.end()
        try require(server.connectionCount == 0, DeltaRequestFuzz.name, "\(server.connectionCount) connections left after every stream ended")
    }
}

/// One Delta stream, and the client's side of it: what it holds per type (from every response
/// it was sent, minus what it unsubscribed) and what it subscribes to.
final class DeltaFuzzStream {
    static let target = DeltaRequestFuzz.name

    let server: DiscoveryServer
    let transport = CapturingTransport()
    let conn: XdsConnection
    var closed = false
    /// ADS decodes the node until a request was accepted.
    var nodeRead = false
    var namespace = ""
    var nonces = Set<String>()
    var seen = 0
    var held: [XdsType: [String: String]] = [:]
    var explicit: [XdsType: Set<String>] = [:]
    var wildcard: [XdsType: Bool] = [:]
    var plans: [XdsResponse] = []

    init(_ server: DiscoveryServer) {
        self.server = server
        conn = server.newConnection(transport: transport, xdsProtocol: .delta)
    }

    func send(_ payload: UnsafeRawBufferPointer, node namespace: String?) throws(FuzzViolation) {
        guard !closed else { return }  // ADS ends the stream on .close: later requests never arrive
        // As ADS decodes it (names kept as wire bytes), and the plain way: they must agree.
        let plain = try? DeltaDiscoveryRequest(decoding: payload, decodingNode: !nodeRead)
        guard var request = try? DeltaDiscoveryRequest(decoding: payload, decodingNode: !nodeRead, deferringNames: true) else {
            try require(plain == nil, Self.target, "the plain decoder accepts a request the deferring one rejects")
            return
        }
        let names = try? request.decodedNames()
        try require((plain == nil) == (names == nil), Self.target,
                    "the plain decoder \(plain == nil ? "rejects" : "accepts") a request whose deferred names \(names == nil ? "do not" : "do") decode")
        if let plain, let names {
            try require(plain.resourceNamesSubscribe == names.subscribe
                        && plain.initialResourceVersions.elementsEqual(names.initial, by: { $0 == $1 }), Self.target,
                        "deferred names differ from the plain decoder's")
            var a = plain, b = request
            a.resourceNamesSubscribe = []; a.initialResourceVersions = []; a.node = nil
            b.node = nil
            try require(a == b && plain.nodeSkipped == request.nodeSkipped, Self.target, "the deferring decoder reads other fields differently")
        }
        if let namespace, conn.proxy == nil { request.node = DeltaRequestFuzz.node(namespace) }
        _ = try process(request)
    }

    /// Processes one request and checks what it did. Returns the outcome and the number of responses.
    @discardableResult
    func process(_ request: DeltaDiscoveryRequest) throws(FuzzViolation) -> (DiscoveryServer.RequestOutcome, Int) {
        let t = Self.target
        let type = XdsType(typeURL: request.typeURL)
        let hadProxy = conn.proxy != nil
        let before = type.flatMap { conn.snapshot.watched[$0] }
        let writes = transport.stream.writes.count
        let outcome = server.process(request, on: conn)
        let written = transport.stream.writes.count - writes
        trace("delta \(type.map(String.init(describing:)) ?? "?") sub=\(request.resourceNamesSubscribe.count) unsub=\(request.resourceNamesUnsubscribe.count) initial=\(request.initialResourceVersions.count) nonce=\(request.responseNonce) nack=\(request.errorDetail != nil) -> \(outcome), \(written) response(s)")
        let nodeOK = request.node.map { !$0.id.isEmpty } ?? false
        let names = try? request.decodedNames()
        switch outcome {
        case .ok:
            try require(type != nil, t, "an unknown type URL \(request.typeURL) was accepted")
            try require(hadProxy || nodeOK, t, "a first request without a node id was accepted")
            try require(conn.proxy != nil, t, "accepted, but the stream has no proxy")
            guard let names else { throw FuzzViolation(t, "a request whose names do not decode was accepted") }
            nodeRead = true
            applyInterest(request, names.subscribe, names.initial, type!, watch: before)
            try require(written <= 2, t, "\(written) responses to one request")
            let responses = try absorb()
            if let first = responses.first {
                try require(first.typeURL == request.typeURL, t, "a \(request.typeURL) request answered with \(first.typeURL)")
            }
            if responses.count == 2 {
                try require(type == .cds && responses[1].typeURL == XdsType.eds.typeURL, t,
                            "two responses to a \(request.typeURL) request: \(responses.map(\.typeURL))")
            }
        case let .close(status):
            try require(status.code != .ok, t, "closed with status OK")
            try require(written == 0, t, "wrote \(written) response(s), then closed the stream with \(status)")
            try require(type == nil || (!hadProxy && !nodeOK) || names == nil, t, "a valid request closed the stream: \(status)")
            if names == nil && type != nil {
                try require(status.code == .invalidArgument && status.message.hasPrefix("malformed DeltaDiscoveryRequest"), t,
                            "undecodable names closed the stream with \(status)")
            }
            end()
        }
        if type == nil { try require(outcome != .ok, t, "unknown type accepted") }
        return (outcome, written)
    }

    /// The client's side of a request it sends: its interest changes at once, as the server's
    /// rules say (delta-xds-semantics.md section 3, fastpilot).
    func applyInterest(_ r: DeltaDiscoveryRequest, _ subscribe: [String], _ initial: [(name: String, version: String)],
                       _ t: XdsType, watch: WatchedResource?) {
        let unsubscribe = r.resourceNamesUnsubscribe
        guard let watch else {
            guard r.errorDetail == nil else { return }  // a NACK of nothing makes no watch
            let dropped = Set(unsubscribe)
            let claims = initial.filter { !dropped.contains($0.name) && $0.name != "*" }
            let star = subscribe.contains("*") && !dropped.contains("*")
            let wild = t.isWildcardType && (star || subscribe.isEmpty)
            var names = Set(subscribe.filter { $0 != "*" && !dropped.contains($0) })
            if !wild { names.formUnion(claims.map(\.name)) }
            explicit[t] = names
            wildcard[t] = wild
            var h: [String: String] = [:]
            for c in claims { h[c.name] = c.version }
            held[t] = h
            return
        }
        if r.errorDetail != nil && !(!r.responseNonce.isEmpty && r.responseNonce == watch.nonceSent) {
            // A NACK of an older response: the server no longer knows which versions it holds.
            held[t] = (held[t] ?? [:]).mapValues { _ in "" }
        }
        if subscribe.contains("*") && t.isWildcardType && wildcard[t] != true { wildcard[t] = true }
        var droppedWildcard = false
        if unsubscribe.contains("*") && wildcard[t] == true {
            wildcard[t] = false
            droppedWildcard = true
        }
        let add = subscribe.filter { $0 != "*" }, remove = Set(unsubscribe.filter { $0 != "*" })
        explicit[t, default: []].formUnion(add)
        explicit[t, default: []].subtract(remove)
        for n in remove { held[t]?[n] = nil }
        if droppedWildcard, let h = held[t] { held[t] = h.filter { explicit[t, default: []].contains($0.key) } }
    }

    /// Checks and applies every write not seen yet.
    func absorb() throws(FuzzViolation) -> [DeltaDiscoveryResponse] {
        let t = Self.target
        var out: [DeltaDiscoveryResponse] = []
        while seen < transport.stream.writes.count {
            let bytes = transport.stream.writes[seen]
            seen += 1
            let r: DeltaDiscoveryResponse
            do { r = try DeltaDiscoveryResponse(decoding: bytes) } catch {
                throw FuzzViolation(t, "a response the server wrote does not decode: \(error)")
            }
            guard let type = XdsType(typeURL: r.typeURL) else { throw FuzzViolation(t, "response of unknown type \(r.typeURL)") }
            try require(!r.nonce.isEmpty, t, "response without a nonce")
            try require(nonces.insert(r.nonce).inserted, t, "nonce \(r.nonce) sent twice on one stream")
            try require(!r.systemVersionInfo.isEmpty, t, "response without system_version_info")
            let names = r.resources.map(\.name)
            let nameSet = Set(names)
            try require(nameSet.count == names.count, t, "a name twice in resources: \(names)")
            try require(Set(r.removedResources).count == r.removedResources.count, t, "a name twice in removed_resources: \(r.removedResources)")
            try require(nameSet.isDisjoint(with: r.removedResources), t,
                        "in both resources and removed_resources: \(nameSet.intersection(r.removedResources).sorted())")
            try require(type.isWildcardType || r.removedResources.isEmpty, t, "a \(type) response removes \(r.removedResources)")
            for res in r.resources {
                try require(res.resource?.typeURL == r.typeURL, t, "a \(r.typeURL) response holds \(res.resource?.typeURL ?? "no resource") for \(res.name)")
                try require(ContentHash.parse(res.version) != 0, t, "\(res.name) has version \(res.version.debugDescription)")
                held[type, default: [:]][res.name] = res.version
            }
            for n in r.removedResources { held[type]?[n] = nil }
            out.append(r)
        }
        return out
    }

    /// What the server believes the stream holds, against what it holds.
    func checkHeld() throws(FuzzViolation) {
        guard !closed else { return }
        let watched = conn.snapshot.watched
        for type in XdsType.allCases {
            let server: [String: String]
            if let w = watched[type] {
                server = w.held.map { h in Dictionary(uniqueKeysWithValues: zip(h.names, h.versions.map(ContentHash.hex))) } ?? [:]
            } else {
                server = [:]
            }
            let mine = (held[type] ?? [:]).mapValues { ContentHash.hex(ContentHash.parse($0)) }
            if server != mine {
                let extra = Set(server.keys).subtracting(mine.keys).sorted(), missing = Set(mine.keys).subtracting(server.keys).sorted()
                let differ = Set(server.keys).intersection(mine.keys).filter { server[$0] != mine[$0] }.sorted()
                throw FuzzViolation(Self.target, "\(type): the server's held ≠ what the stream was sent: server only \(extra), client only \(missing), versions differ \(differ)")
            }
        }
    }

    func ackOracle(_ type: XdsType) throws(FuzzViolation) {
        guard !closed, let proxy = conn.proxy, let w = conn.snapshot.watched[type], !w.nonceSent.isEmpty else { return }
        var r = DeltaDiscoveryRequest()
        r.node = DeltaRequestFuzz.node(proxy.namespace)  // Envoy repeats it; ADS skips it
        r.typeURL = type.typeURL
        r.responseNonce = w.nonceSent
        let decoded: DeltaDiscoveryRequest
        do { decoded = try r.encode().withUnsafeBytes { try DeltaDiscoveryRequest(decoding: $0, decodingNode: !nodeRead, deferringNames: true) } } catch {
            throw FuzzViolation(Self.target, "an ACK fastpilot encoded does not decode: \(error)")
        }
        let (outcome, written) = try process(decoded)
        let after = conn.snapshot.watched[type]
        try require(outcome == .ok && written == 0, Self.target,
                    "an ACK of nonce \(w.nonceSent) with no lists got \(outcome) and \(written) response(s)")
        try require(after?.held === w.held, Self.target, "an ACK changed what the stream holds")
        try require(after?.nonceAcked == w.nonceSent && after?.lastError == nil, Self.target, "an ACK was not recorded as one")
    }

    /// A push as a worker makes it, for every watched type, kept for `deliverPlans`.
    func planPush() {
        guard !closed, plans.count < 16, let proxy = conn.proxy else { return }
        let push = server.pushContext
        let view = push.view(for: proxy.namespace)
        let watched = conn.snapshot.watched
        for type in XdsType.pushOrder {
            guard let w = watched[type] else { continue }
            let request = PushRequest(full: true, forced: true, reason: [.debug: 1], push: push)
            let table = Generators.table(type, GeneratorContext(proxy: proxy, watch: w, request: request, push: push,
                                                                forRequest: false, view: view))
            let patch = table.patch(from: w.held ?? .empty, resend: w.resend)
            guard let body = patch.body else { continue }
            plans.append(XdsResponse(type: type, version: push.version, body: body, full: true, forced: false,
                                     delta: DeltaPlan(patch: patch, table: table, push: push, view: view)))
        }
    }

    func deliverPlans() throws(FuzzViolation) {
        let pending = plans
        plans = []
        guard !pending.isEmpty else { return }
        let writes = transport.stream.writes.count
        conn.deliver(pending, done: nil)
        let written = transport.stream.writes.count - writes
        trace("delta deliver \(pending.count) planned push(es) -> \(written) written")
        try require(closed ? written == 0 : written <= pending.count, Self.target, "\(pending.count) planned pushes wrote \(written) responses")
        let responses = try absorb()
        let order = pending.map(\.type.typeURL)
        var i = 0
        for r in responses {
            while i < order.count && order[i] != r.typeURL { i += 1 }
            try require(i < order.count, Self.target, "planned pushes \(order) wrote \(responses.map(\.typeURL)), out of order")
            i += 1
        }
    }

    /// Envoy's reconnect: every type `old` watched, in push order, with its interest and what it held.
    func reconnect(like old: DeltaFuzzStream) throws(FuzzViolation) {
        guard old.nodeRead, let ns = old.conn.proxy?.namespace else { return }
        for type in XdsType.pushOrder where old.held[type] != nil || old.explicit[type] != nil {
            var r = DeltaDiscoveryRequest()
            r.typeURL = type.typeURL
            if !nodeRead { r.node = DeltaRequestFuzz.node(ns) }
            var subscribe = (old.explicit[type] ?? []).sorted()
            if type.isWildcardType {
                if old.wildcard[type] == true {
                    if !subscribe.isEmpty { subscribe.append("*") }
                } else if subscribe.isEmpty {
                    subscribe = ["*"]
                    r.resourceNamesUnsubscribe = ["*"]
                }
            }
            r.resourceNamesSubscribe = subscribe
            r.initialResourceVersions = (old.held[type] ?? [:]).sorted { $0.key < $1.key }.map { (name: $0.key, version: $0.value) }
            // Through the wire, as ADS reads it.
            let decoded: DeltaDiscoveryRequest
            do { decoded = try r.encode().withUnsafeBytes { try DeltaDiscoveryRequest(decoding: $0, decodingNode: !nodeRead, deferringNames: true) } } catch {
                throw FuzzViolation(Self.target, "a reconnect request fastpilot encoded does not decode: \(error)")
            }
            _ = try process(decoded)
            if closed { return }
        }
    }

    func end() {
        guard !closed else { return }
        closed = true
        server.disconnect(conn)
        transport.stream.isOpen = false
    }
}

// MARK: seeds

/// Plays a script through the target's own steps on a real server, so ACKs carry the nonces the
/// server really sends; records the chunks.
final class DeltaSeedSession {
    let run = DeltaFuzzRun()
    var chunks: [(op: UInt8, payload: [UInt8])] = []

    func raw(_ op: UInt8, _ payload: [UInt8]) {
        chunks.append((op, payload))
        payload.withUnsafeBytes { p in
            do throws(FuzzViolation) { try run.step(op, p) } catch {}
        }
    }

    var stream: DeltaFuzzStream { run.stream }

    func nonce(_ t: XdsType) -> String { stream.conn.snapshot.watched[t]?.nonceSent ?? "" }

    /// A request; the node goes in through op 1 while the stream has none (namespace `ns`).
    func send(_ t: XdsType, subscribe: [String] = [], unsubscribe: [String] = [], initial: [(String, String)] = [],
              nonce: String? = nil, ack: Bool = false, nack: String? = nil, ns: Int = 0, op: UInt8? = nil) {
        var r = DeltaDiscoveryRequest()
        r.typeURL = t.typeURL
        r.resourceNamesSubscribe = subscribe
        r.resourceNamesUnsubscribe = unsubscribe
        r.initialResourceVersions = initial.map { (name: $0.0, version: $0.1) }
        if ack || nack != nil { r.responseNonce = self.nonce(t) }
        if let nonce { r.responseNonce = nonce }
        if let nack { r.errorDetail = RPCStatus(code: 13, message: nack) }
        if stream.conn.proxy != nil { r.node = DeltaRequestFuzz.node(DeltaRequestFuzz.namespaces[ns]) }  // Envoy repeats it
        raw(op ?? UInt8(1 + 7 * ns), r.encode())
    }

    func registry(_ bits: UInt8) { raw(2, [bits]) }
    func reconnect(claims: Bool) { raw(3, [claims ? 1 : 0]) }
    func ackOracle(_ t: XdsType) { raw(4, [UInt8(t.rawValue)]) }
    func plan() { raw(5, []) }
    func deliver() { raw(6, []) }

    /// Envoy's start: CDS, EDS for its clusters, LDS, RDS for its ports, each ACKed.
    func envoyFlow(ns: Int = 0) {
        send(.cds, ns: ns)
        send(.cds, ack: true, ns: ns)
        send(.eds, subscribe: Array(stream.held[.cds, default: [:]].keys).sorted(), ns: ns)
        send(.eds, ack: true, ns: ns)
        send(.lds, ns: ns)
        send(.lds, ack: true, ns: ns)
        let routes = stream.held[.lds, default: [:]].keys.compactMap { $0.hasPrefix("0.0.0.0_") ? String($0.dropFirst(8)) : nil }
        send(.rds, subscribe: routes.sorted(), ns: ns)
        send(.rds, ack: true, ns: ns)
    }

    var bytes: [UInt8] { Chunks.encode(chunks) }
}

enum DeltaSeeds {
    static func all() -> [(name: String, bytes: [UInt8])] {
        var seeds: [(String, [UInt8])] = []
        func add(_ name: String, _ script: (DeltaSeedSession) -> Void) {
            let s = DeltaSeedSession()
            script(s)
            seeds.append((name, s.bytes))
        }
        let echo = demoClusters[0], ledger = demoClusters[4]
        add("envoy-flow") { s in s.envoyFlow() }
        add("envoy-flow-payments") { s in s.envoyFlow(ns: 1) }
        add("ack-oracle-every-type") { s in
            s.envoyFlow()
            for t in XdsType.pushOrder { s.ackOracle(t) }
        }
        add("nack-then-ack") { s in
            s.envoyFlow()
            s.send(.cds, nack: "bad cluster")
            s.send(.cds, ack: true)
            s.plan(); s.deliver()
        }
        add("nack-stale-nonce") { s in
            s.envoyFlow()
            s.send(.eds, nonce: "1", nack: "old response")
            s.plan(); s.deliver()
        }
        add("nack-with-subscribe") { s in
            s.send(.eds, subscribe: [echo])
            s.send(.eds, subscribe: [ledger], ack: true, nack: "rejected")
        }
        add("stale-nonce-subscribe") { s in
            s.send(.eds, subscribe: [echo])
            s.send(.eds, subscribe: [ledger], nonce: "999")
            s.send(.eds, nonce: "998")
        }
        add("wildcard-star") { s in
            s.send(.cds, subscribe: ["*"])
            s.send(.cds, subscribe: [echo], ack: true)
            s.send(.cds, unsubscribe: ["*"], ack: true)
            s.send(.cds, subscribe: ["*"], ack: true)
            s.send(.cds, unsubscribe: [echo], ack: true)
        }
        add("star-subscribed-and-unsubscribed") { s in
            s.send(.cds, subscribe: ["*"], unsubscribe: ["*"])
            s.send(.lds, subscribe: ["*", "0.0.0.0_8080"], unsubscribe: ["*"])
        }
        add("unknown-names") { s in
            s.send(.eds, subscribe: ["outbound|1||gone.invalid", "", "garbage", echo])
            s.send(.rds, subscribe: ["9999", "nowhere.invalid:1", "8080"])
            s.send(.cds, subscribe: ["outbound|1||gone.invalid"])
            s.send(.lds, subscribe: ["nothing.svc:80", "0.0.0.0_1"])
        }
        add("reconnect-with-claims") { s in
            s.envoyFlow()
            s.reconnect(claims: true)
            s.send(.cds, ack: true)
        }
        add("reconnect-after-change") { s in
            s.envoyFlow()
            s.registry(0x08)
            s.reconnect(claims: true)
            s.plan(); s.deliver()
        }
        add("reconnect-unknown-versions") { s in
            s.send(.cds, initial: [(echo, ""), (ledger, "v1"), ("outbound|1||gone.invalid", "0123456789abcdef"), (echo, "ffffffffffffffff")])
            s.send(.eds, subscribe: [echo], initial: [(echo, "0000000000000000"), (ledger, "")])
        }
        add("registry-then-requests") { s in
            s.envoyFlow()
            s.registry(0x01); s.send(.eds, subscribe: [demoClusters[1]], ack: true)
            s.registry(0x40); s.plan(); s.deliver()
            s.registry(0x20); s.plan(); s.deliver()
            s.registry(0x80); s.plan(); s.deliver()
        }
        add("plan-request-deliver") { s in
            s.envoyFlow()
            s.registry(0x48)
            s.plan()
            s.send(.eds, unsubscribe: [ledger], ack: true)
            s.send(.cds, unsubscribe: ["*"], ack: true)
            s.deliver()
        }
        add("plan-registry-plan-deliver") { s in
            s.envoyFlow()
            s.registry(0x02); s.plan()
            s.registry(0x80); s.plan()
            s.deliver()
        }
        add("eds-first-then-cds") { s in
            s.send(.eds, subscribe: [echo, ledger])
            s.send(.cds, initial: [(echo, ""), (ledger, "")])
        }
        add("no-node-first") { s in s.send(.cds, op: 0) }
        add("empty-node-id") { s in
            var r = DeltaDiscoveryRequest()
            r.typeURL = XdsType.cds.typeURL
            r.node = Node()
            s.raw(0, r.encode())
        }
        add("unknown-type") { s in
            var r = DeltaDiscoveryRequest()
            r.typeURL = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
            s.raw(1, r.encode())
        }
        add("later-node-other-namespace") { s in
            s.send(.cds)
            var r = DeltaDiscoveryRequest()
            r.typeURL = XdsType.eds.typeURL
            r.node = DeltaRequestFuzz.node("payments")
            r.resourceNamesSubscribe = [demoClusters[2]]
            s.raw(0, r.encode())
        }
        add("initial-versions-on-a-later-request") { s in
            s.send(.cds)
            s.send(.cds, initial: [(echo, "0123456789abcdef")], ack: true)
        }
        add("duplicates-and-both-lists") { s in
            s.send(.eds, subscribe: [echo, echo, ledger], unsubscribe: [ledger])
            s.send(.eds, subscribe: [ledger, ledger], unsubscribe: [echo, echo], ack: true)
            s.send(.cds, subscribe: [echo, "*", echo], unsubscribe: ["*", "*"])
        }
        add("undecodable-then-valid") { s in
            s.raw(1, [0x12, 0xFF])
            s.raw(0, [0x0A, 0x05, 0x08])
            s.send(.cds)
        }
        add("node-varint-wire-type") { s in
            s.send(.cds)
            s.raw(0, [0x08, 0x01, 0x12, 0x00])
        }
        add("other-namespace-flow") { s in s.envoyFlow(ns: 2) }
        return seeds
    }
}
