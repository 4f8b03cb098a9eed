import Testing
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
@testable import FastPush

/// gRPC over TLS over loopback sockets, through both event loops: the TLS listener, the channel
/// handler between the socket and HTTP/2, the handshake's outcome and the peer identity.
@Suite(.timeLimit(.minutes(1))) struct TLSSocketTests {
    // The plaintext socket tests' call recorder, over TLS here.
    typealias Result = SocketEchoTests.Result
    typealias Call = SocketEchoTests.Call

    /// Answers each message with the identity its connection proved ("none" without one).
    final class WhoAmIService: GRPCService, GRPCStreamHandler {
        func makeHandler(path: String, stream: GRPCServerStream) -> (any GRPCStreamHandler)? { self }
        func received(_ stream: GRPCServerStream, message: UnsafeRawBufferPointer) {
            _ = stream.send(bytes: Array((stream.connection.peerIdentity?.description ?? "none").utf8))
        }
        func halfClosed(_ stream: GRPCServerStream) { stream.finish(.ok) }
        func closed(_ stream: GRPCServerStream) {}
    }

    final class Outcomes: Sendable {
        let ok = Atomic<Int>(0)
        let failed = Atomic<Int>(0)
    }

    static func server(_ group: EventLoopGroup, clientCA: String? = TestCertificates.main.ca, handshakeTimeout: UInt64 = 10_000_000_000,
                       outcomes: Outcomes, service: @escaping @Sendable () -> any GRPCService) throws -> GRPCServer {
        var cfg = GRPCServerConfig()
        cfg.host = "127.0.0.1"
        cfg.port = 0
        cfg.plaintext = false
        var tls = GRPCServerConfig.TLSListener(host: "127.0.0.1", port: 0,
                                               contexts: TLSContextHolder(try TestCertificates.server(clientCA: clientCA)))
        tls.handshakeTimeoutNanos = handshakeTimeout
        tls.onHandshake = { ok in
            if ok { outcomes.ok.wrappingAdd(1, ordering: .relaxed) } else { outcomes.failed.wrappingAdd(1, ordering: .relaxed) }
        }
        cfg.tls = tls
        return try GRPCServer(group: group, config: cfg) { _ in service() }
    }

    /// Opens a TLS connection with `context` and one call that sends `messages`.
    static func call(_ group: EventLoopGroup, port: UInt16, context: TLSContext, path: String = "/test.Echo/Echo",
                     messages: [[UInt8]], into r: Result) throws {
        let fd = try Socket.connect(host: "127.0.0.1", port: port)
        let loop = group.next()
        loop.execute {
            let h = GRPCClientChannelHandler(authority: "localhost")
            let t = TLSChannelHandler(inner: h, context: context)
            _ = loop.register(fd: fd, peer: "server", handler: t)
            let call = h.grpc.startCall(path: path, delegate: Call(r, expect: messages.count))!
            for m in messages { _ = call.send(bytes: m) }
        }
    }

    @Test(arguments: [IOBackend.uring, .epoll])
    func echoOverMutualTLS(backend: IOBackend) throws {
        if backend == .uring && !IOBackendSupport.uringAvailable { return }
        let group = try EventLoopGroup(threads: 2, backend: backend)
        defer { group.shutdown() }
        let outcomes = Outcomes()
        let server = try Self.server(group, outcomes: outcomes) { EchoService() }
        #expect(server.port == 0, "no plaintext listener")
        #expect(server.tlsPort != 0)
        let client = try TestCertificates.client("echo")
        let big = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
        let results = (0..<10).map { _ in Result() }
        for (i, r) in results.enumerated() {
            try Self.call(group, port: server.tlsPort, context: client, messages: [Array("msg-\(i)".utf8), big], into: r)
        }
        for (i, r) in results.enumerated() {
            #expect(r.done.wait(timeoutNanos: 20_000_000_000))
            #expect(r.status.withLock { $0 } == .ok)
            let msgs = r.messages.withLock { $0 }
            #expect(msgs.first == Array("msg-\(i)".utf8))
            #expect(msgs.last == big, "300 KB in 19 records each way, over shared buffers")
        }
        #expect(outcomes.ok.load(ordering: .relaxed) == 10)
        #expect(outcomes.failed.load(ordering: .relaxed) == 0)
        #expect(server.connectionCount == 10)
    }

    @Test func theCertificatesIdentityReachesTheConnection() throws {
        let group = try EventLoopGroup(threads: 1)
        defer { group.shutdown() }
        let outcomes = Outcomes()
        let server = try Self.server(group, outcomes: outcomes) { WhoAmIService() }
        let r = Result()
        try Self.call(group, port: server.tlsPort, context: try TestCertificates.client("echo"), messages: [[1]], into: r)
        #expect(r.done.wait(timeoutNanos: 10_000_000_000))
        #expect(r.messages.withLock { $0 } == [Array(TestCertificates.echoURI.utf8)])
        let plain = Result()
        try Self.call(group, port: server.tlsPort, context: try TestCertificates.client("plain"), messages: [[1]], into: plain)
        #expect(plain.done.wait(timeoutNanos: 10_000_000_000))
        #expect(plain.messages.withLock { $0 } == [Array("none".utf8)], "a URI that is not SPIFFE is no identity")
    }

    @Test(arguments: ["none", "foreign"])
    func refusedClientsEndInTheHandshake(_ who: String) throws {
        let group = try EventLoopGroup(threads: 1)
        defer { group.shutdown() }
        let outcomes = Outcomes()
        let server = try Self.server(group, outcomes: outcomes) { EchoService() }
        let ctx = who == "none" ? try TestCertificates.client(nil) : try TestCertificates.client("echo", from: TestCertificates.foreign)
        let r = Result()
        try Self.call(group, port: server.tlsPort, context: ctx, messages: [[1, 2, 3]], into: r)
        #expect(r.done.wait(timeoutNanos: 10_000_000_000))
        #expect(r.status.withLock { $0 }?.code != .ok)
        #expect(r.messages.withLock { $0 }.isEmpty)
        #expect(Self.eventually { outcomes.failed.load(ordering: .relaxed) == 1 && server.connectionCount == 0 })
        #expect(outcomes.ok.load(ordering: .relaxed) == 0)
    }

    @Test func aStalledHandshakeIsClosedAfterItsTimeoutAndGarbageAtOnce() throws {
        let group = try EventLoopGroup(threads: 1)
        defer { group.shutdown() }
        let outcomes = Outcomes()
        let server = try Self.server(group, handshakeTimeout: 300_000_000, outcomes: outcomes) { EchoService() }
        let silent = try Socket.connect(host: "127.0.0.1", port: server.tlsPort, nonBlocking: false)
        defer { close(silent) }
        let junk = try Socket.connect(host: "127.0.0.1", port: server.tlsPort, nonBlocking: false)
        defer { close(junk) }
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        for fd in [silent, junk] { setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size)) }
        let request = Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { write(junk, $0.baseAddress, $0.count) }
        let t0 = MonotonicClock.nanos()
        #expect(Self.readToEOF(junk), "garbage: an alert at most, then the end")
        #expect(Self.readToEOF(silent), "a silent client is closed")
        let waited = MonotonicClock.nanos() - t0
        #expect(waited >= 250_000_000, "not before the handshake timeout")
        #expect(Self.eventually { outcomes.failed.load(ordering: .relaxed) == 2 && server.connectionCount == 0 })
    }

    /// Reads until EOF (true) or an error or timeout (false).
    static func readToEOF(_ fd: Int32) -> Bool {
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fd, &buf, buf.count)
            if n == 0 { return true }
            if n < 0 { return errno == ECONNRESET }
        }
    }

    static func eventually(_ check: () -> Bool) -> Bool {
        for _ in 0..<500 {
            if check() { return true }
            OSThread.sleep(nanos: 10_000_000)
        }
        return check()
    }
}
