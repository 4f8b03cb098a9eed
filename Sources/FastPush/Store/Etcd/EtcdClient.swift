#if canImport(Glibc)
import Glibc
#endif

/// etcd's v3 KV and Watch services over gRPC, through the same HTTP/2 client as the load
/// generator (`GRPCClientChannelHandler`): one connection at a time, to one of the endpoints,
/// moving to the next one after each failure. Loop-thread only; `EtcdRegistryStore` and the
/// `store` commands drive it.
final class EtcdClient {
    struct Endpoint: Sendable, Equatable, CustomStringConvertible {
        let host: String
        let port: UInt16
        var description: String { "\(host):\(port)" }
    }

    enum Failure: Error, CustomStringConvertible {
        /// No connection, the connection broke, or no answer in time.
        case unavailable(String)
        /// etcd answered with an error status.
        case status(GRPCStatus)
        case malformed(String)

        var description: String {
            switch self {
            case let .unavailable(m): "unavailable: \(m)"
            case let .status(s): "etcd: \(s.message) (gRPC \(s.code.rawValue))"
            case let .malformed(m): "malformed etcd response: \(m)"
            }
        }
    }

    let endpoints: [Endpoint]
    let loop: any IOLoop
    let requestTimeoutNanos: UInt64
    private(set) var current = 0
    private var handler: GRPCClientChannelHandler?
    private var channel: Channel?
    /// Counts connections: answers and endings from an older one are ignored.
    private(set) var generation = 0
    /// The connection went away on its own (not through `close`).
    var onConnectionLost: ((String) -> Void)?

    init(endpoints: [Endpoint], loop: any IOLoop, requestTimeoutNanos: UInt64 = 5_000_000_000) {
        precondition(!endpoints.isEmpty)
        self.endpoints = endpoints
        self.loop = loop
        self.requestTimeoutNanos = requestTimeoutNanos
    }

    var endpoint: Endpoint { endpoints[current] }
    var isConnected: Bool { channel?.state == .active }

    /// Connects to the current endpoint (a blocking connect, bounded, on this loop).
    func connect() throws {
        loop.assertInLoop()
        close()
        let ep = endpoint
        let fd = try Socket.connect(host: ep.host, port: ep.port, timeoutMillis: 2000)
        Socket.setNoDelay(fd)
        Socket.setKeepAlive(fd, idleSeconds: 10, intervalSeconds: 3, count: 3)
        generation += 1
        let gen = generation
        let h = GRPCClientChannelHandler(authority: ep.description)
        h.onInactive = { [weak self] reason in
            guard let self, self.generation == gen, self.handler === h else { return }
            self.handler = nil
            self.channel = nil
            self.onConnectionLost?("connection to \(ep) closed: \(reason)")
        }
        handler = h
        channel = loop.register(fd: fd, peer: ep.description, handler: h)
    }

    /// The next endpoint (after a failure).
    func advance() { current = (current + 1) % endpoints.count }

    /// Closes the connection; calls in flight end UNAVAILABLE.
    func close() {
        guard let ch = channel else { return }
        generation += 1
        channel = nil
        handler = nil
        if ch.state == .active { ch.close(.local("etcd client reconnecting")) }
    }

    /// One unary call: `completion` runs once, on the loop.
    func call<Response: ProtoDecodable>(_ path: String, _ request: some ProtoEncodable, timeoutNanos: UInt64? = nil,
                                        completion: @escaping (Result<Response, Failure>) -> Void) {
        guard let h = handler, isConnected else {
            completion(.failure(.unavailable("not connected to \(endpoint)")))
            return
        }
        h.grpc.unary(path: path, request: request.encode(), on: loop, timeoutNanos: timeoutNanos ?? requestTimeoutNanos) { result in
            switch result {
            case let .success(bytes):
                do throws(ProtoDecodingError) {
                    completion(.success(try Response(decoding: bytes)))
                } catch {
                    completion(.failure(.malformed("\(path): \(error)")))
                }
            case let .failure(status):
                completion(.failure(status.code == .unavailable || status.code == .deadlineExceeded
                    ? .unavailable(status.message) : .status(status)))
            }
        }
    }

    func range(_ r: EtcdRangeRequest, completion: @escaping (Result<EtcdRangeResponse, Failure>) -> Void) {
        call(Etcd.rangePath, r, completion: completion)
    }

    func txn(_ r: EtcdTxnRequest, completion: @escaping (Result<EtcdTxnResponse, Failure>) -> Void) {
        call(Etcd.txnPath, r, completion: completion)
    }

    /// Opens a Watch stream with one watcher. Responses and the end arrive on the loop.
    @discardableResult
    func watch(_ create: EtcdWatchCreateRequest, onResponse: @escaping (EtcdWatchResponse) -> Void,
               onEnd: @escaping (Failure) -> Void) -> Bool {
        guard let h = handler, isConnected else {
            onEnd(.unavailable("not connected to \(endpoint)"))
            return false
        }
        let delegate = WatchDelegate(onResponse: onResponse, onEnd: onEnd)
        // etcd cancels a watch that requires a leader when its member loses the leader (cut off
        // from the quorum), instead of leaving it silent.
        guard let call = h.grpc.startCall(path: Etcd.watchPath, delegate: delegate, metadata: [("hasleader", "true")]) else {
            onEnd(.unavailable("could not open a watch stream"))
            return false
        }
        call.send(bytes: EtcdWatchRequest.create(create).encode())
        return true
    }
}

/// One Watch stream's messages, decoded.
final class WatchDelegate: GRPCClientCallDelegate {
    let onResponse: (EtcdWatchResponse) -> Void
    let onEnd: (EtcdClient.Failure) -> Void
    private var ended = false

    init(onResponse: @escaping (EtcdWatchResponse) -> Void, onEnd: @escaping (EtcdClient.Failure) -> Void) {
        self.onResponse = onResponse
        self.onEnd = onEnd
    }

    func callReceived(_ call: GRPCClientCall, message: UnsafeRawBufferPointer) {
        guard !ended else { return }
        do throws(ProtoDecodingError) {
            onResponse(try EtcdWatchResponse(decoding: message))
        } catch {
            ended = true
            call.cancel()
            onEnd(.malformed("watch response: \(error)"))
        }
    }

    func callEnded(_ call: GRPCClientCall, status: GRPCStatus) {
        guard !ended else { return }
        ended = true
        onEnd(status.code == .ok ? .unavailable("the watch stream ended") : .status(status))
    }
}

extension EtcdClient.Endpoint {
    /// `etcd://HOST:PORT[,HOST:PORT...]` (the scheme may be left out).
    static func parse(_ url: String) -> [EtcdClient.Endpoint]? {
        var rest = Substring(url)
        if rest.hasPrefix("etcd://") { rest = rest.dropFirst(7) } else if rest.hasPrefix("http://") { rest = rest.dropFirst(7) }
        var out: [EtcdClient.Endpoint] = []
        for part in rest.split(separator: ",") {
            guard let (h, p) = Socket.parseHostPort(String(part)), p > 0 else { return nil }
            out.append(EtcdClient.Endpoint(host: h, port: p))
        }
        return out.isEmpty ? nil : out
    }
}
