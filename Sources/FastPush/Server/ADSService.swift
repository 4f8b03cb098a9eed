/// envoy.service.discovery.v3.AggregatedDiscoveryService over gRPC: where a request comes in.
/// One instance per connection, on that connection's loop.
public final class ADSService: GRPCService {
    public static let streamPath = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
    public static let deltaPath = "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"

    let server: DiscoveryServer
    let loop: any IOLoop

    public init(server: DiscoveryServer, loop: any IOLoop) {
        self.server = server
        self.loop = loop
    }

    public func makeHandler(path: String, stream: GRPCServerStream) -> (any GRPCStreamHandler)? {
        switch path {
        case Self.streamPath: ADSStreamHandler(server: server, stream: stream, loop: loop, xdsProtocol: .sotw)
        case Self.deltaPath: ADSStreamHandler(server: server, stream: stream, loop: loop, xdsProtocol: .delta)
        default: nil
        }
    }
}

/// One ADS stream, either protocol: decodes DiscoveryRequests (or DeltaDiscoveryRequests) into
/// the DiscoveryServer and writes responses.
final class ADSStreamHandler: GRPCStreamHandler, XdsStream {
    /// Streams ended for bad requests: ten lines a second at most, however many clients misbehave.
    static let rejections = LogLimiter(perSecond: 10)

    let server: DiscoveryServer
    let stream: GRPCServerStream
    let xdsProtocol: XdsProtocol
    private(set) var connection: XdsConnection?
    /// Delta: the node has been read; later requests skip it undecoded.
    private var nodeRead = false

    init(server: DiscoveryServer, stream: GRPCServerStream, loop: any IOLoop, xdsProtocol: XdsProtocol) {
        self.server = server
        self.stream = stream
        self.xdsProtocol = xdsProtocol
        let peer = stream.connection.peer
        connection = server.newConnection(transport: LoopTransport(loop: loop, peer: peer, peerIdentity: stream.connection.peerIdentity,
                                                                   stream: LoopBound(WeakHandler(self), loop: loop)),
                                          xdsProtocol: xdsProtocol)
    }

    func received(_ s: GRPCServerStream, message: UnsafeRawBufferPointer) {
        guard let conn = connection else { return }
        let outcome: DiscoveryServer.RequestOutcome
        do {
            switch xdsProtocol {
            case .sotw:
                outcome = server.process(try DiscoveryRequest(decodingDeferringNames: message, leavingNamesInPlace: true),
                                         on: conn, message: message)
            case .delta:
                let request = try DeltaDiscoveryRequest(decoding: message, decodingNode: !nodeRead, deferringNames: true)
                outcome = server.process(request, on: conn)
                if case .ok = outcome { nodeRead = true }
            }
        } catch {
            let what = xdsProtocol == .sotw ? "DiscoveryRequest" : "DeltaDiscoveryRequest"
            if let dropped = ADSStreamHandler.rejections.admit() {
                Log.warn("ads_bad_request", ["peer": conn.peer, "conn": conn.connectionID, "error": error, "suppressed": dropped])
            }
            s.finish(GRPCStatus(.invalidArgument, "malformed \(what): \(error)"))
            return
        }
        if case let .close(status) = outcome {
            if let dropped = ADSStreamHandler.rejections.admit() {
                Log.warn("ads_stream_closed", ["peer": conn.peer, "conn": conn.connectionID, "status": status.code.rawValue,
                                               "reason": status.message, "suppressed": dropped])
            }
            s.finish(status)
        }
    }

    func halfClosed(_ s: GRPCServerStream) {
        s.finish(.ok)
    }

    func writeStalled(_ s: GRPCServerStream) {
        guard let conn = connection, conn.writeStalled() else { return }
        server.metrics.stalledPushes.inc()
        Log.debug("push_stalled", ["peer": conn.peer, "conn": conn.connectionID, "action": "push slot released"])
    }

    func closed(_ s: GRPCServerStream) {
        guard let conn = connection else { return }
        connection = nil
        server.disconnect(conn)
    }

    // MARK: XdsStream

    var isOpen: Bool { !stream.isFinished && !stream.isClosed }

    func write(body: ByteSlice, tail: SmallBytes, completion: WriteCompletion?) {
        stream.send(body: body, tail: tail, completion: completion)
    }

    func close(_ status: GRPCStatus) { stream.finish(status) }
}

/// Reaches an ADS stream from a push worker: its loop is the executor.
final class LoopTransport: XdsTransport {
    let peer: String
    let peerIdentity: SPIFFEIdentity?
    let stream: LoopBound<WeakHandler>
    let executor: any XdsExecutor

    init(loop: any IOLoop, peer: String, peerIdentity: SPIFFEIdentity? = nil, stream: LoopBound<WeakHandler>) {
        self.peer = peer
        self.peerIdentity = peerIdentity
        self.stream = stream
        self.executor = LoopExecutor(loop: loop)
    }

    func currentStream() -> (any XdsStream)? { stream.value.handler }
}

/// The gRPC stream owns its handler; a connection that outlives it (still queued for a push,
/// say) must not keep it, and through it the server, alive.
struct WeakHandler {
    weak var handler: ADSStreamHandler?
    init(_ handler: ADSStreamHandler) { self.handler = handler }
}

/// An I/O loop as the xDS layer sees it.
struct LoopExecutor: XdsExecutor {
    let loop: any IOLoop
    var identity: ObjectIdentifier { ObjectIdentifier(loop) }
    var inExecutor: Bool { loop.inEventLoop }
    func execute(_ task: @escaping @Sendable () -> Void) { loop.execute(task) }
}
