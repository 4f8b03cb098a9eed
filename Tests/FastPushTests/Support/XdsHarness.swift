import Synchronization
@testable import FastPush

/// Records what a stream is sent, decoding each write (shared body + tail) as the client would.
final class RecordingStream: XdsStream {
    var isOpen = true
    var responses: [DiscoveryResponse] = []
    var bodies: [SharedBytes] = []
    var closedWith: GRPCStatus?

    func write(body: ByteSlice, tail: SmallBytes, completion: WriteCompletion?) {
        let bytes = Array(body.buffer) + tail.array
        responses.append(try! DiscoveryResponse(decoding: bytes))
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

    init(_ server: DiscoveryServer, id: String = "sidecar~10.0.0.1~app.default~default.svc.cluster.local", namespace: String? = nil) {
        self.server = server
        var n = Node()
        n.id = id
        if let namespace { n.metadata = ProtoStruct(fields: ["NAMESPACE": .string(namespace)]) }
        node = n
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
        // Through the wire and the production decoder (names deferred behind a digest).
        let wire = r.encode()
        let decoded = try! wire.withUnsafeBytes { try DiscoveryRequest(decodingDeferringNames: $0) }
        return server.process(decoded, on: conn)
    }

    /// ACKs the last response of `t` with the current names.
    @discardableResult
    func ack(_ t: XdsType, names: [String] = []) -> DiscoveryServer.RequestOutcome {
        let r = last(t)!
        return send(t, names: names, nonce: r.nonce, version: r.versionInfo)
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
