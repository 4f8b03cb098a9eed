import Testing
import Synchronization
@testable import FastPush

/// gRPC over real loopback sockets through the event loops: the default backend (`.auto`, so
/// `FASTPILOT_IO` decides), then io_uring and epoll explicitly.
@Suite(.timeLimit(.minutes(1))) struct SocketEchoTests {
    final class Result: @unchecked Sendable {
        // Written on a loop thread, read by the test after `done` is signalled.
        let messages = Mutex<[[UInt8]]>([])
        let status = Mutex<GRPCStatus?>(nil)
        let done = Semaphore()
    }

    final class Call: GRPCClientCallDelegate {
        let result: Result
        let expect: Int
        init(_ r: Result, expect: Int) { result = r; self.expect = expect }
        func callReceived(_ call: GRPCClientCall, message: UnsafeRawBufferPointer) {
            let n = result.messages.withLock { $0.append(Array(message)); return $0.count }
            if n == expect { call.halfClose() }
        }
        func callEnded(_ call: GRPCClientCall, status: GRPCStatus) {
            result.status.withLock { $0 = status }
            result.done.signal()
        }
    }

    @Test func manyCallsOverTwoLoops() throws {
        try echo(backend: .auto)
    }

    @Test(.enabled(if: IOBackendSupport.uringAvailable, "io_uring cannot be set up here"))
    func manyCallsOverTwoLoopsOnURing() throws {
        try echo(backend: .uring)
    }

    @Test func manyCallsOverTwoLoopsOnEpoll() throws {
        try echo(backend: .epoll)
    }

    func echo(backend: IOBackend) throws {
        let group = try EventLoopGroup(threads: 2, backend: backend)
        defer { group.shutdown() }
        if backend != .auto { #expect(group.backend == backend) }
        #expect(group.loops.allSatisfy { (group.backend == .epoll) == ($0 is EpollLoop) })
        var cfg = GRPCServerConfig()
        cfg.host = "127.0.0.1"
        cfg.port = 0
        let server = try GRPCServer(group: group, config: cfg) { _ in EchoService() }
        #expect(server.port != 0)

        let results = (0..<20).map { _ in Result() }
        let big = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        for (i, r) in results.enumerated() {
            let fd = try Socket.connect(host: "127.0.0.1", port: server.port)
            let loop = group.next()
            loop.execute {
                let h = GRPCClientChannelHandler(authority: "127.0.0.1")
                _ = loop.register(fd: fd, peer: "server", handler: h)
                let delegate = Call(r, expect: 2)
                let call = h.grpc.startCall(path: "/test.Echo/Echo", delegate: delegate)!
                call.send(bytes: Array("msg-\(i)".utf8))
                call.send(bytes: big)
            }
        }
        for r in results {
            #expect(r.done.wait(timeoutNanos: 10_000_000_000))
            #expect(r.status.withLock { $0 } == .ok)
            let msgs = r.messages.withLock { $0 }
            #expect(msgs.count == 2)
            #expect(msgs.last?.count == big.count && msgs.last == big)
        }
        #expect(server.connectionCount == 20)
    }
}
