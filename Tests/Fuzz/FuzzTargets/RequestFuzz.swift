import FastPush

/// `request`: the DiscoveryRequest handler (`DiscoveryServer.process`) fed a sequence of
/// requests on one stream, as a client would send them, with registry changes in between.
///
/// Input: chunks `op(1) length(2, big-endian) payload(length)` (see `Chunks`); `op % 5`:
/// - 0: a DiscoveryRequest, decoded as ADS does (`decodingDeferringNames`); undecodable ones are skipped;
/// - 1: a DiscoveryRequest decoded whole (names not deferred: the other path of `process`);
/// - 2: a registry change: payload[0] bits 0-4 drop demo service i, bit 5 adds a port to the
///   first service (a full push), bit 6 drops every service's last endpoint (an EDS-only push),
///   bit 7 restores the demo registry;
/// - 3: the client reconnects (the stream ends, a new one starts);
/// - 4: the client ACKs the last response of type `payload[0] % 4` with exactly the
///   subscription the server holds: an oracle, since such an ACK must be answered by nothing
///   (unless the watch is flagged to always respond: EDS after a CDS request).
///
/// Invariants: no trap; the outcome is `.ok` or `.close(non-OK status)`; `.close` for an
/// unknown type URL and for a first request without a node, and nothing written with it; at
/// most one response per request, each decoding as a DiscoveryResponse of the request's type
/// holding only resources of that type, with a version and a nonce never used before on the
/// stream; after the last stream ends the server holds no connection.
enum RequestFuzz {
    static let name = "request"
    static let target = FuzzTarget(
        name: name,
        summary: "DiscoveryServer.process over a sequence of requests on one stream, with registry changes",
        run: { data throws(FuzzViolation) in try run(data) },
        seeds: { RequestSeeds.all() })

    static let maxSteps = 512

    static func run(_ data: UnsafeRawBufferPointer) throws(FuzzViolation) {
        let server = Fixtures.server()
        var stream = Stream(server)
        var c = InputCursor(data)
        var steps = 0
        while !c.isAtEnd, steps < maxSteps {
            steps += 1
            let op = c.byte()!
            let payload = c.take(c.uint16() ?? c.remaining)
            switch op % 5 {
            case 0, 1:
                try stream.send(payload, deferred: op % 5 == 0)
            case 2:
                changeRegistry(server, payload.first ?? 0)
            case 3:
                stream.end()
                stream = Stream(server)
            default:
                try stream.ackCurrent(XdsType(rawValue: Int((payload.first ?? 0) % 4))!)
            }
        }
        stream.end()
        try require(server.connectionCount == 0, name, "\(server.connectionCount) connections left after every stream ended")
    }

    static func changeRegistry(_ server: DiscoveryServer, _ bits: UInt8) {
        if bits & 0x80 != 0 {
            server.updateRegistry(Fixtures.demo)
            return
        }
        var services = server.registry.services
        let demo = Fixtures.demo.services
        for i in 0..<min(5, demo.count) where bits & (1 << i) != 0 {
            services.removeAll { $0.hostname == demo[i].hostname && $0.namespace == demo[i].namespace }
        }
        if bits & 0x20 != 0, !services.isEmpty, services[0].ports.count < 8 {
            let next = (services[0].ports.map(\.number).max() ?? 9000) + 1
            services[0].ports.append(ServicePort(number: next, name: "grpc-\(next)"))
        }
        if bits & 0x40 != 0 {
            for i in services.indices where !services[i].endpoints.isEmpty { services[i].endpoints.removeLast() }
        }
        server.updateRegistry(RegistrySnapshot(services: services))
    }

    /// One ADS stream: a connection with a transport that keeps what is written.
    struct Stream {
        let server: DiscoveryServer
        let transport = CapturingTransport()
        let conn: XdsConnection
        var checker = ResponseChecker(target: RequestFuzz.name)
        var closed = false

        init(_ server: DiscoveryServer) {
            self.server = server
            conn = server.newConnection(transport: transport)
        }

        mutating func send(_ payload: UnsafeRawBufferPointer, deferred: Bool) throws(FuzzViolation) {
            guard !closed else { return }  // ADS ends the stream on .close: later requests never arrive
            let request: DiscoveryRequest
            do {
                request = deferred ? try DiscoveryRequest(decodingDeferringNames: payload, leavingNamesInPlace: true) : try DiscoveryRequest(decoding: payload)
            } catch {
                return
            }
            _ = try process(request, message: payload)
        }

        /// An ACK of the latest response that repeats the subscription the server holds.
        mutating func ackCurrent(_ type: XdsType) throws(FuzzViolation) {
            guard !closed, let w = conn.snapshot.watched[type], !w.nonceSent.isEmpty, !w.alwaysRespond else { return }
            var names = w.names.names
            if w.wildcard && !names.isEmpty { names.append("*") }
            var r = Fixtures.request(type, names: names, version: w.versionSent, nonce: w.nonceSent)
            r = r.encode().withUnsafeBytes { (try? DiscoveryRequest(decodingDeferringNames: $0)) ?? r }
            let (outcome, written) = try process(r)
            try require(outcome == .ok && written == 0, name,
                        "an ACK of nonce \(w.nonceSent) repeating the subscription \(w.names) (wildcard \(w.wildcard)) got \(outcome) and \(written) response(s)")
        }

        @discardableResult
        mutating func process(_ request: DiscoveryRequest, message: UnsafeRawBufferPointer? = nil) throws(FuzzViolation) -> (DiscoveryServer.RequestOutcome, Int) {
            let before = transport.stream.writes.count
            let hadProxy = conn.proxy != nil
            let outcome = server.process(request, on: conn, message: message)
            let written = transport.stream.writes[before...]
            trace("\(XdsType(typeURL: request.typeURL).map(String.init(describing:)) ?? "?") names=\(request.namesDeferred ? "deferred" : "\(request.resourceNames.count)") nonce=\(request.responseNonce) -> \(outcome), \(written.count) response(s)")
            let known = XdsType(typeURL: request.typeURL) != nil
            try require(written.count <= 1, name, "\(written.count) responses to one request")
            switch outcome {
            case .ok:
                try require(known, name, "an unknown type URL \(request.typeURL) was accepted")
                try require(hadProxy || request.node != nil, name, "a first request without node was accepted")
                try require(conn.proxy != nil, name, "accepted, but the stream has no proxy")
                for w in written { try checker.check(w, expectedType: request.typeURL) }
            case let .close(status):
                try require(status.code != .ok, name, "closed with status OK")
                try require(written.isEmpty, name, "wrote a response, then closed the stream with \(status)")
                end()
            }
            if !known { try require(outcome != .ok, name, "unknown type accepted") }
            return (outcome, written.count)
        }

        mutating func end() {
            guard !closed else { return }
            closed = true
            server.disconnect(conn)
            transport.stream.isOpen = false
        }
    }
}
