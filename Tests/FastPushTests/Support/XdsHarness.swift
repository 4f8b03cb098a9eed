import Synchronization
@testable import FastPush

/// Records what a stream is sent, decoding each write (shared body + tail) as the client would.
final class RecordingStream: XdsStream {
    var isOpen = true
    /// Delta streams record DeltaDiscoveryResponses instead.
    var delta = false
    var responses: [DiscoveryResponse] = []
    var deltaResponses: [DeltaDiscoveryResponse] = []
    var bodies: [SharedBytes] = []
    var closedWith: GRPCStatus?

    func write(body: ByteSlice, tail: SmallBytes, completion: WriteCompletion?) {
        let bytes = Array(body.buffer) + tail.array
        if delta {
            deltaResponses.append(try! DeltaDiscoveryResponse(decoding: bytes))
        } else {
            responses.append(try! DiscoveryResponse(decoding: bytes))
        }
        bodies.append(body.storage)
        completion?(true)
    }

    func close(_ status: GRPCStatus) { isOpen = false; closedWith = status }
}

/// Runs stream work at once on the calling thread (tests drive pushes from one thread).
final class SyncExecutor: XdsExecutor {
    var identity: ObjectIdentifier { ObjectIdentifier(self) }
    var inExecutor: Bool { true }
    func execute(_ task: @escaping @Sendable () -> Void) { task() }
}

/// `@unchecked Sendable`: tests use it from one thread at a time (drainQueue runs pushes inline).
final class SyncTransport: XdsTransport, @unchecked Sendable {
    let peer = "test"
    /// What a TLS handshake would have proved (set before the connection is made).
    var peerIdentity: SPIFFEIdentity?
    let stream = RecordingStream()
    let executor: any XdsExecutor = SyncExecutor()
    func currentStream() -> (any XdsStream)? { stream.isOpen ? stream : nil }
}

/// One simulated client on a DiscoveryServer, without sockets.
final class TestClient {
    let server: DiscoveryServer
    let transport = SyncTransport()
    let conn: XdsConnection
    let node: Node
    private var sentNode = false

    init(_ server: DiscoveryServer, id: String = "sidecar~10.0.0.1~app.default~default.svc.cluster.local", namespace: String? = nil,
         identity: SPIFFEIdentity? = nil) {
        self.server = server
        var n = Node()
        n.id = id
        if let namespace { n.metadata = ProtoStruct(fields: ["NAMESPACE": .string(namespace)]) }
        node = n
        transport.peerIdentity = identity
        conn = server.newConnection(transport: transport)
    }

    var received: [DiscoveryResponse] { transport.stream.responses }
    func received(_ t: XdsType) -> [DiscoveryResponse] { received.filter { $0.typeURL == t.typeURL } }
    func last(_ t: XdsType) -> DiscoveryResponse? { received(t).last }

    @discardableResult
    func send(_ t: XdsType, names: [String] = [], nonce: String = "", version: String = "", error: RPCStatus? = nil) -> DiscoveryServer.RequestOutcome {
        var r = DiscoveryRequest()
        r.typeURL = t.typeURL
        r.resourceNames = names
        r.responseNonce = nonce
        r.versionInfo = version
        r.errorDetail = error
        if !sentNode { r.node = node; sentNode = true }
        // Through the wire and the production decoder (names left in the buffer behind a digest).
        let wire = r.encode()
        return wire.withUnsafeBytes { message in
            let decoded = try! DiscoveryRequest(decodingDeferringNames: message, leavingNamesInPlace: true)
            return server.process(decoded, on: conn, message: message)
        }
    }

    /// ACKs the last response of `t` with the current names.
    @discardableResult
    func ack(_ t: XdsType, names: [String] = []) -> DiscoveryServer.RequestOutcome {
        let r = last(t)!
        return send(t, names: names, nonce: r.nonce, version: r.versionInfo)
    }

    func close() { server.disconnect(conn); transport.stream.isOpen = false }
}

/// One simulated Delta client on a DiscoveryServer, without sockets. Requests go through the
/// wire encoding and the production decoder (the node decoded on the first request only).
final class DeltaTestClient {
    let server: DiscoveryServer
    let transport = SyncTransport()
    let conn: XdsConnection
    let node: Node
    private var sentNode = false
    /// What the client holds per type (name -> version), applied from every response as Envoy does.
    var held: [XdsType: [String: String]] = [:]

    init(_ server: DiscoveryServer, id: String = "sidecar~10.0.0.1~app.default~default.svc.cluster.local", namespace: String? = nil,
         identity: SPIFFEIdentity? = nil) {
        self.server = server
        var n = Node()
        n.id = id
        if let namespace { n.metadata = ProtoStruct(fields: ["NAMESPACE": .string(namespace)]) }
        node = n
        transport.stream.delta = true
        transport.peerIdentity = identity
        conn = server.newConnection(transport: transport, xdsProtocol: .delta)
    }

    var received: [DeltaDiscoveryResponse] { transport.stream.deltaResponses }
    func received(_ t: XdsType) -> [DeltaDiscoveryResponse] { received.filter { $0.typeURL == t.typeURL } }
    func last(_ t: XdsType) -> DeltaDiscoveryResponse? { received(t).last }
    func names(_ r: DeltaDiscoveryResponse?) -> [String] { r?.resources.map(\.name) ?? [] }

    @discardableResult
    func send(_ t: XdsType, subscribe: [String] = [], unsubscribe: [String] = [], initial: [(String, String)] = [],
              nonce: String = "", error: RPCStatus? = nil, withNode: Bool? = nil) -> DiscoveryServer.RequestOutcome {
        var r = DeltaDiscoveryRequest()
        r.typeURL = t.typeURL
        r.resourceNamesSubscribe = subscribe
        r.resourceNamesUnsubscribe = unsubscribe
        r.initialResourceVersions = initial.map { (name: $0.0, version: $0.1) }
        r.responseNonce = nonce
        r.errorDetail = error
        // Envoy copies the node into every request; the server decodes only the first.
        if withNode ?? true { r.node = node }
        let wire = r.encode()
        let decoded = try! wire.withUnsafeBytes { try DeltaDiscoveryRequest(decoding: $0, decodingNode: !sentNode, deferringNames: true) }
        let outcome = server.process(decoded, on: conn)
        if case .ok = outcome { sentNode = true }
        return outcome
    }

    /// Applies every response not yet applied to `held`, as Envoy would.
    func apply() {
        while applied < received.count {
            let r = received[applied]
            applied += 1
            guard let t = XdsType(typeURL: r.typeURL) else { continue }
            for res in r.resources { held[t, default: [:]][res.name] = res.version }
            for name in r.removedResources { held[t]?[name] = nil }
        }
    }
    private var applied = 0

    /// ACKs the last response of `t`.
    @discardableResult
    func ack(_ t: XdsType, subscribe: [String] = []) -> DiscoveryServer.RequestOutcome {
        apply()
        return send(t, subscribe: subscribe, nonce: last(t)!.nonce)
    }

    func close() { server.disconnect(conn); transport.stream.isOpen = false }
}

extension DiscoveryServer {
    /// Pushes synchronously: build the PushContext, then run every queued connection's push.
    func pushNow(_ r: PushRequest) {
        push(r)
        drainQueue()
    }

    func drainQueue() {
        while let (c, r) = queue.dequeue(timeoutNanos: 0) {
            pushConnection(c, r, done: PushDone { [queue] in queue.markDone(c) })
        }
    }
}

enum Fixtures {
    static func service(_ host: String, ns: String, ports: [UInt32] = [8080], endpoints: [WorkloadEndpoint] = [WorkloadEndpoint(address: "10.0.0.1")],
                        exportTo: ExportTo = .all) -> Service {
        Service(hostname: host, namespace: ns, configName: host.split(separator: ".").first.map(String.init) ?? host,
                ports: ports.map { ServicePort(number: $0, name: "grpc-\($0)") }, endpoints: endpoints, exportTo: exportTo)
    }

    static let echo = service("echo.demo.svc.cluster.local", ns: "demo",
                              endpoints: [WorkloadEndpoint(address: "10.0.0.1", locality: Locality(istioString: "r/a")),
                                          WorkloadEndpoint(address: "10.0.0.2", locality: Locality(istioString: "r/b"))])
    static let ledger = service("ledger.payments.svc.cluster.local", ns: "payments", ports: [7070])
    static let privateSvc = service("private.payments.svc.cluster.local", ns: "payments", ports: [9000],
                                    exportTo: .namespaces([], includesOwn: true))

    static func server(_ services: [Service] = [echo, ledger, privateSvc]) -> DiscoveryServer {
        DiscoveryServer(registry: RegistrySnapshot(services: services))
    }
}
