import Testing
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
@testable import FastPush

/// Clients that stop reading: bounded, disconnected after the send timeout, and no harm to others.
@Suite(.timeLimit(.minutes(1))) struct SlowClientTests {
    /// Answers any message with 8 MiB in 1 MiB messages.
    final class FloodService: GRPCService, GRPCStreamHandler {
        func makeHandler(path: String, stream: GRPCServerStream) -> (any GRPCStreamHandler)? { self }
        func received(_ stream: GRPCServerStream, message: UnsafeRawBufferPointer) {
            if message.count == 1 && message[0] == 0x21 {  // "!": flood
                let chunk = SharedBytes([UInt8](repeating: 7, count: 1 << 20))
                for _ in 0..<8 { stream.send(body: ByteSlice(chunk)) }
            } else {
                stream.send(bytes: Array(message))
            }
        }
        func halfClosed(_ stream: GRPCServerStream) { stream.finish(.ok) }
        func closed(_ stream: GRPCServerStream) {}
    }

    /// The bytes a client sends to open a call and send one message, made in memory.
    static func clientBytes(window: UInt32, message: [UInt8]) -> [UInt8] {
        var settings = H2Settings()
        settings.initialWindowSize = window
        settings.connectionWindowSize = window
        let h2 = H2Connection(role: .client, settings: settings)
        let grpc = GRPCClientConnection(h2: h2, authority: "test")
        defer { grpc.connectionClosed(reason: "bytes made") }  // ends the h2 ⇄ gRPC cycle, as a channel handler would
        final class Nothing: GRPCClientCallDelegate {
            func callReceived(_ call: GRPCClientCall, message: UnsafeRawBufferPointer) {}
            func callEnded(_ call: GRPCClientCall, status: GRPCStatus) {}
        }
        let call = grpc.startCall(path: "/test.Flood/Flood", delegate: Nothing())!
        call.send(bytes: message)
        var out = OutboundBuffer()
        h2.produce(into: &out, budget: 1 << 20)
        return out.drain()
    }

    static func rawSocket(port: UInt16, receiveBuffer: Int32?) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if let rb = receiveBuffer { Socket.setReceiveBuffer(fd, bytes: rb) }
        var sa = sockaddr_storage()
        let len = try Socket.fill(&sa, host: "127.0.0.1", port: port)
        let rc = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, len) } }
        #expect(rc == 0)
        return fd
    }

    func startServer(timeoutNanos: UInt64) throws -> (EventLoopGroup, GRPCServer, SharedCounter) {
        let group = try EventLoopGroup(threads: 2)
        var cfg = GRPCServerConfig()
        cfg.host = "127.0.0.1"
        cfg.port = 0
        cfg.sendTimeoutNanos = timeoutNanos
        cfg.socketSendBuffer = 64 * 1024
        let timeouts = SharedCounter()
        let server = try GRPCServer(group: group, config: cfg, onSendTimeout: { timeouts.value.wrappingAdd(1, ordering: .relaxed) }) { _ in
            FloodService()
        }
        return (group, server, timeouts)
    }

    /// A good client on the same server gets its echo while the stuck one is stuck.
    func echoWorks(_ group: EventLoopGroup, port: UInt16) throws -> Bool {
        let fd = try Socket.connect(host: "127.0.0.1", port: port)
        let got = FastPush.Semaphore()
        final class Echo: GRPCClientCallDelegate {
            let got: FastPush.Semaphore
            init(_ g: FastPush.Semaphore) { got = g }
            func callReceived(_ call: GRPCClientCall, message: UnsafeRawBufferPointer) { if message.count == 3 { got.signal() } }
            func callEnded(_ call: GRPCClientCall, status: GRPCStatus) {}
        }
        let loop = group.next()
        loop.execute {
            let h = GRPCClientChannelHandler(authority: "test")
            let ch = loop.register(fd: fd, peer: "server", handler: h)
            let call = h.grpc.startCall(path: "/test.Flood/Flood", delegate: Echo(got))!
            call.send(bytes: [1, 2, 3])
            loop.schedule(afterNanos: 10_000_000_000) { ch.close(.local("test over")) }
        }
        return got.wait(timeoutNanos: 5_000_000_000)
    }

    func waitUntil(_ cond: () -> Bool, seconds: Double = 10) -> Bool {
        let deadline = MonotonicClock.nanos() + UInt64(seconds * 1e9)
        while MonotonicClock.nanos() < deadline {
            if cond() { return true }
            OSThread.sleep(nanos: 10_000_000)
        }
        return cond()
    }

    @Test func clientThatStopsReadingIsClosedAfterTheSendTimeout() throws {
        let (group, server, timeouts) = try startServer(timeoutNanos: 300_000_000)
        defer { group.shutdown() }
        let fd = try Self.rawSocket(port: server.port, receiveBuffer: 4096)
        defer { close(fd) }
        let bytes = Self.clientBytes(window: UInt32(Int32.max), message: [0x21])
        #expect(write(fd, bytes, bytes.count) == bytes.count)
        // It never reads. 8 MiB cannot fit in the kernel's buffers: the server's sends stall.
        #expect(waitUntil { server.connectionCount == 1 })
        #expect(try echoWorks(group, port: server.port))
        #expect(waitUntil { timeouts.value.load(ordering: .relaxed) >= 1 })
        #expect(waitUntil { server.connectionCount <= 1 })  // the stuck one is gone (the echo client may linger)
    }

    @Test func clientThatNeverOpensItsWindowIsClosedAfterTheSendTimeout() throws {
        let (group, server, timeouts) = try startServer(timeoutNanos: 300_000_000)
        defer { group.shutdown() }
        let fd = try Self.rawSocket(port: server.port, receiveBuffer: nil)
        defer { close(fd) }
        // A 64 KiB window, never updated: the server's data waits inside HTTP/2.
        let bytes = Self.clientBytes(window: 65_535, message: [0x21])
        #expect(write(fd, bytes, bytes.count) == bytes.count)
        // It reads (and drops) everything the kernel has, so nothing waits in the socket.
        let stop = SharedCounter()
        let reader = OSThread.spawn(name: "t-reader") {
            var buf = [UInt8](repeating: 0, count: 65536)
            var tv = timeval(tv_sec: 0, tv_usec: 100_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            while !stop.flag.load(ordering: .relaxed) {
                let n = read(fd, &buf, buf.count)
                if n == 0 { break }
            }
        }
        #expect(waitUntil { timeouts.value.load(ordering: .relaxed) >= 1 })
        #expect(waitUntil { server.connectionCount == 0 })
        stop.flag.store(true, ordering: .relaxed)
        reader.join()
    }
}

/// A counter and a flag shared with closures and threads.
final class SharedCounter: Sendable {
    let value = Atomic<Int>(0)
    let flag = Atomic<Bool>(false)
}
