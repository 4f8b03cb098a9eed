#if canImport(Glibc)
import Glibc
#endif
import Testing
import Synchronization
@testable import FastPush

enum IOBackendSupport {
    /// Whether this machine can set up a ring (a seccomp profile may forbid it).
    static let uringAvailable: Bool = {
        guard let loop = try? URingLoop(index: 0) else { return false }
        loop.shutdown()
        return true
    }()

    /// The backends that can run here, each explicitly.
    static var backends: [IOBackend] { uringAvailable ? [.uring, .epoll] : [.epoll] }
}

/// Choosing the backend: `.auto` falls back to epoll only when the ring cannot be set up.
@Suite struct IOBackendChoiceTests {
    struct FakeRingError: Error {}

    final class Calls: @unchecked Sendable {
        let count = Mutex(0)
    }

    static func failingRing(_ errno: Int32, calls: Calls = Calls()) -> (Int, IOLoopConfig) throws -> any IOLoop {
        { _, _ in
            calls.count.withLock { $0 += 1 }
            throw SocketError(operation: EventLoopGroup.uringSetupOperation, errno: errno)
        }
    }

    @Test func autoFallsBackToEpollWhenRingSetupFails() throws {
        for e in [EPERM, ENOSYS, ENOMEM] {
            let calls = Calls()
            let group = try EventLoopGroup(threads: 2, config: IOLoopConfig(), backend: .auto, environment: [:],
                                           makeURing: Self.failingRing(e, calls: calls))
            defer { group.shutdown() }
            #expect(group.backend == .epoll)
            #expect(group.loops.count == 2)
            #expect(group.loops.allSatisfy { $0 is EpollLoop })
            #expect(group.fallbackReason == SocketError(operation: "io_uring_queue_init", errno: e).description)
            #expect(calls.count.withLock { $0 } == 1)
            // The loops run.
            #expect(group.onEveryLoop { $0.inEventLoop } == [true, true])
        }
    }

    /// Ring setup that fails on a later loop (ENOMEM from the locked-memory limit, say): the
    /// rings already made are shut down, every loop is epoll, and the warning is one line.
    /// (Tests run in parallel and the log is global: this one's errno, ENXIO, is its own.)
    @Test func fallbackAfterSomeRingsAreMadeLogsOneLine() throws {
        var template = [CChar]("/tmp/fastpilot-io-backend-XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        try #require(fd >= 0)
        defer { close(fd); unlink(template) }
        Log.setOutput(fd: fd)
        let made = Mutex(0)
        let group: EventLoopGroup
        do {
            defer { Log.setOutput(fd: 2) }
            group = try EventLoopGroup(threads: 3, config: IOLoopConfig(), backend: .auto, environment: [:]) { i, c in
                if i < 2, IOBackendSupport.uringAvailable {
                    made.withLock { $0 += 1 }
                    return try URingLoop(index: i, config: c)
                }
                throw SocketError(operation: EventLoopGroup.uringSetupOperation, errno: ENXIO)
            }
        }
        defer { group.shutdown() }
        #expect(group.backend == .epoll)
        #expect(group.loops.count == 3 && group.loops.allSatisfy { $0 is EpollLoop })
        #expect(made.withLock { $0 } == (IOBackendSupport.uringAvailable ? 2 : 0))
        let size = Int(lseek(fd, 0, SEEK_END))
        var bytes = [UInt8](repeating: 0, count: size)
        _ = pread(fd, &bytes, size, 0)
        let reason = Log.quote(SocketError(operation: "io_uring_queue_init", errno: ENXIO).description)
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
            .filter { $0.contains("event=io_backend") && $0.contains("reason=\(reason)") }
        #expect(lines.count == 1, "\(lines)")
        #expect(lines.first?.contains("level=warn event=io_backend backend=epoll reason=") == true)
    }

    @Test func explicitURingThatFailsThrows() {
        #expect(throws: SocketError.self) {
            _ = try EventLoopGroup(threads: 1, config: IOLoopConfig(), backend: .uring, environment: [:],
                                   makeURing: Self.failingRing(EPERM))
        }
        #expect(throws: SocketError.self) {
            _ = try EventLoopGroup(threads: 1, config: IOLoopConfig(), backend: .auto, environment: ["FASTPILOT_IO": "uring"],
                                   makeURing: Self.failingRing(EPERM))
        }
    }

    @Test func otherErrorsAreNotAFallback() {
        // An eventfd that cannot be made is about descriptors, not io_uring.
        #expect(throws: SocketError.self) {
            _ = try EventLoopGroup(threads: 1, config: IOLoopConfig(), backend: .auto, environment: [:]) { _, _ in
                throw SocketError(operation: "eventfd", errno: EMFILE)
            }
        }
        #expect(throws: FakeRingError.self) {
            _ = try EventLoopGroup(threads: 1, config: IOLoopConfig(), backend: .auto, environment: [:]) { _, _ in
                throw FakeRingError()
            }
        }
    }

    @Test func environmentChoosesForAuto() throws {
        let calls = Calls()
        for value in ["epoll", "EPOLL"] {
            let g = try EventLoopGroup(threads: 1, config: IOLoopConfig(), backend: .auto, environment: ["FASTPILOT_IO": value],
                                       makeURing: Self.failingRing(EPERM, calls: calls))
            #expect(g.backend == .epoll && g.fallbackReason == nil)
            g.shutdown()
        }
        #expect(calls.count.withLock { $0 } == 0)
        let auto = try EventLoopGroup(threads: 1, config: IOLoopConfig(), backend: .auto, environment: ["FASTPILOT_IO": "auto"],
                                      makeURing: Self.failingRing(EPERM, calls: calls))
        #expect(auto.backend == .epoll && auto.fallbackReason != nil)
        auto.shutdown()
        #expect(throws: SocketError.self) {
            _ = try EventLoopGroup(threads: 1, config: IOLoopConfig(), backend: .auto, environment: ["FASTPILOT_IO": "kqueue"],
                                   makeURing: Self.failingRing(EPERM))
        }
        // An explicit backend is not overridden by the environment.
        let explicit = try EventLoopGroup(threads: 1, config: IOLoopConfig(), backend: .epoll, environment: ["FASTPILOT_IO": "uring"],
                                          makeURing: Self.failingRing(EPERM, calls: calls))
        #expect(explicit.backend == .epoll)
        explicit.shutdown()
        #expect(calls.count.withLock { $0 } == 1)
    }

    @Test(.enabled(if: IOBackendSupport.uringAvailable, "io_uring cannot be set up here"))
    func autoUsesURingWhereItWorks() throws {
        let g = try EventLoopGroup(threads: 2, config: IOLoopConfig(), backend: .auto, environment: [:]) {
            try URingLoop(index: $0, config: $1)
        }
        defer { g.shutdown() }
        #expect(g.backend == .uring && g.fallbackReason == nil)
        #expect(g.loops.allSatisfy { $0 is URingLoop })
    }

    @Test func acceptFlagsAreSocketFlags() {
        #expect(EpollLoop.acceptFlags == Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue))
    }

    @Test func flags() throws {
        #expect(try ServeOptions.parse([]).io == .auto)
        #expect(try ServeOptions.parse(["--io", "epoll"]).io == .epoll)
        #expect(try ServeOptions.parse(["--io=uring"]).io == .uring)
        #expect(try ServeOptions.parse([], env: ["FASTPILOT_IO": "epoll"]).io == .epoll)
        #expect(try ServeOptions.parse(["--io", "uring"], env: ["FASTPILOT_IO": "epoll"]).io == .uring)
        #expect(throws: ServeOptions.ParseError.self) { try ServeOptions.parse(["--io", "poll"]) }
        #expect(ServeOptions.help.contains("--io auto|uring|epoll"))
        #expect(try LoadGenOptions.parse([]).io == .auto)
        #expect(try LoadGenOptions.parse(["--io", "epoll"]).io == .epoll)
        #expect(throws: LoadGenOptions.ParseError.self) { try LoadGenOptions.parse(["--io", "select"]) }
        #expect(LoadGenOptions.help.contains("--io auto|uring|epoll"))
    }
}

/// What every backend must do with a raw socket: backpressure, `stalledSinceNanos`, counters,
/// completions, closes, timers. Run on each backend explicitly.
@Suite(.timeLimit(.minutes(1))) struct IOLoopBehaviourTests {
    final class Shared: @unchecked Sendable {
        let sent = Mutex<Bool?>(nil)
        /// Every piece's completion, in the order they ran.
        let results = Mutex<[Bool]>([])
        let inactive = Mutex<[String]>([])
        let received = Mutex<[UInt8]>([])
        let done = Semaphore()
        let closed = Semaphore()
    }

    static func pattern(_ i: Int) -> UInt8 { UInt8(truncatingIfNeeded: i &* 31 &+ i >> 11) }

    /// Produces `total` patterned bytes in pieces, each with a completion.
    final class BulkHandler: ChannelHandler {
        let shared: Shared
        var remaining: Int
        var position = 0
        var pieces = 0
        let closeAfterFlush: Bool
        /// The first completion closes the channel (from inside the loop's send path).
        var closeInCompletion = false
        var channel: Channel?

        init(total: Int, shared: Shared, closeAfterFlush: Bool = false) {
            self.remaining = total
            self.shared = shared
            self.closeAfterFlush = closeAfterFlush
        }

        func channelActive(_ channel: Channel) {
            self.channel = channel
            if closeAfterFlush { channel.closeAfterFlush() }
        }

        func channelRead(_ channel: Channel, _ bytes: UnsafeRawBufferPointer) {
            shared.received.withLock { $0 += bytes }
        }

        func produce(_ channel: Channel, into out: inout OutboundBuffer, budget: Int) {
            guard remaining > 0 else { return }
            let n = min(budget, remaining, 100_000)
            guard n > 0 else { return }
            let start = position
            out.appendBytes(count: n) { dst in
                for i in 0..<n { dst[i] = IOLoopBehaviourTests.pattern(start + i) }
            }
            position += n
            remaining -= n
            pieces += 1
            let shared = shared
            let last = remaining == 0
            out.onSent { [self] ok in
                shared.results.withLock { $0.append(ok) }
                if closeInCompletion, ok { channel.close(.local("from a completion")) }
                if last {
                    shared.sent.withLock { $0 = ok }
                    shared.done.signal()
                }
            }
        }

        func channelInactive(_ channel: Channel, reason: CloseReason) {
            shared.inactive.withLock { $0.append(reason.description) }
            shared.closed.signal()
            self.channel = nil
        }
    }

    /// A connected loopback pair: the server end non-blocking (for the loop), the client end
    /// blocking with a 5 s receive timeout (for the test).
    static func tcpPair() throws -> (server: Int32, client: Int32) {
        let (lfd, port) = try Socket.listen(host: "127.0.0.1", port: 0, backlog: 4)
        defer { close(lfd) }
        let client = try Socket.connect(host: "127.0.0.1", port: port, nonBlocking: false)
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var pfd = pollfd(fd: lfd, events: Int16(POLLIN), revents: 0)
        _ = poll(&pfd, 1, 5000)
        let server = accept(lfd, nil, nil)
        guard server >= 0 else { throw SocketError(operation: "accept", errno: errno) }
        _ = fcntl(server, F_SETFL, fcntl(server, F_GETFL) | O_NONBLOCK)
        return (server, client)
    }

    /// Runs `body` on the loop and returns its result.
    static func onLoop<T>(_ loop: any IOLoop, _ body: @escaping () -> T) -> T {
        let box = UnsafeSendableBox(body)
        let result = Mutex<UnsafeSendableBox<T>?>(nil)
        let done = Semaphore()
        loop.execute {
            let r = box.value()
            result.withLock { $0 = UnsafeSendableBox(r) }
            done.signal()
        }
        done.wait()
        return result.withLock { $0 }!.value
    }

    static func readAll(_ fd: Int32, count: Int) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(count)
        var buf = [UInt8](repeating: 0, count: 65536)
        while out.count < count {
            let n = read(fd, &buf, min(buf.count, count - out.count))
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return out
    }

    static func checkPattern(_ bytes: [UInt8]) -> Bool {
        for (i, b) in bytes.enumerated() where b != pattern(i) { return false }
        return true
    }

    static func eventually(_ body: () -> Bool) -> Bool {
        for _ in 0..<500 {
            if body() { return true }
            usleep(10_000)
        }
        return false
    }

    struct Snapshot {
        var pending = 0, stalled: UInt64 = 0, now: UInt64 = 0, waiting = false
        var sent: UInt64 = 0, received: UInt64 = 0, open = 0
    }

    static func snapshot(_ handler: BulkHandler, _ loop: any IOLoop, _ ch: Channel?) -> Snapshot {
        let box = UnsafeSendableBox((handler, ch))
        return onLoop(loop) {
            let ch = box.value.1 ?? box.value.0.channel!
            return Snapshot(pending: ch.pendingOutboundBytes, stalled: ch.stalledSinceNanos, now: loop.nowNanos,
                            waiting: ch.sendInFlight, sent: ch.bytesSent, received: ch.bytesReceived, open: loop.channelCount)
        }
    }

    static func register(_ handler: BulkHandler, fd: Int32, on loop: any IOLoop) -> Channel {
        let box = UnsafeSendableBox(handler)
        return onLoop(loop) { loop.register(fd: fd, peer: "test", handler: box.value) }
    }

    @Test(arguments: IOBackendSupport.backends)
    func backpressureStallsThenDrains(backend: IOBackend) throws {
        let group = try EventLoopGroup(threads: 1, backend: backend)
        defer { group.shutdown() }
        let loop = group.loops[0]
        let (server, client) = try Self.tcpPair()
        defer { close(client) }
        Socket.setSendBuffer(server, bytes: 64 * 1024)
        Socket.setReceiveBuffer(client, bytes: 64 * 1024)
        let total = 4 << 20
        let shared = Shared()
        let handler = BulkHandler(total: total, shared: shared)
        let ch = Self.register(handler, fd: server, on: loop)

        // The client does not read: the kernel buffers fill and the loop waits for the socket.
        usleep(300_000)
        let stalled = Self.snapshot(handler, loop, ch)
        #expect(stalled.pending > 0)
        #expect(stalled.stalled != 0 && stalled.stalled <= stalled.now)
        // epoll: EAGAIN armed EPOLLOUT. (io_uring: a sendmsg is in flight most of the time, but
        // between its completion and the next flush it is not; no check there.)
        if backend == .epoll { #expect(stalled.waiting) }
        #expect(stalled.sent < UInt64(total))
        #expect(shared.sent.withLock { $0 } == nil)

        let got = Self.readAll(client, count: total)
        #expect(got.count == total)
        #expect(Self.checkPattern(got))
        #expect(shared.done.wait(timeoutNanos: 5_000_000_000))
        #expect(shared.sent.withLock { $0 } == true)
        let drained = Self.snapshot(handler, loop, ch)
        #expect(drained.pending == 0 && drained.stalled == 0 && !drained.waiting)
        #expect(drained.sent == UInt64(total))

        // Reads reach the handler and the counter.
        _ = "hello".withCString { write(client, $0, 5) }
        #expect(Self.eventually { shared.received.withLock { $0 } == Array("hello".utf8) })
        #expect(Self.snapshot(handler, loop, ch).received == 5)

        // The peer closes: one channelInactive, with eof, and the loop forgets the channel.
        shutdown(client, Int32(SHUT_WR))
        #expect(shared.closed.wait(timeoutNanos: 5_000_000_000))
        #expect(Self.eventually { Self.onLoop(loop) { loop.channelCount } == 0 })
        #expect(shared.inactive.withLock { $0 } == ["eof"])
    }

    @Test(arguments: IOBackendSupport.backends)
    func closeFailsPendingCompletionsOnce(backend: IOBackend) throws {
        let group = try EventLoopGroup(threads: 1, backend: backend)
        defer { group.shutdown() }
        let loop = group.loops[0]
        let (server, client) = try Self.tcpPair()
        defer { close(client) }
        Socket.setSendBuffer(server, bytes: 64 * 1024)
        Socket.setReceiveBuffer(client, bytes: 64 * 1024)
        let shared = Shared()
        let handler = BulkHandler(total: 4 << 20, shared: shared)
        let ch = Self.register(handler, fd: server, on: loop)
        usleep(200_000)
        let box = UnsafeSendableBox((ch, handler))
        let pieces = Self.onLoop(loop) {
            let (ch, handler) = box.value
            #expect(ch.pendingOutboundBytes > 0)
            ch.close(.local("test"))
            ch.close(.local("again"))
            loop.closeChannel(ch, reason: .local("and again"))
            return handler.pieces
        }
        // Every completion ran: the ones the kernel took with true, the rest with false.
        let results = shared.results.withLock { $0 }
        #expect(results.count == pieces)
        #expect(results.last == false)
        #expect(results.drop { $0 }.allSatisfy { !$0 })
        #expect(shared.inactive.withLock { $0 } == ["test"])
        #expect(shared.closed.wait(timeoutNanos: 1_000_000_000))
        #expect(Self.eventually { Self.onLoop(loop) { loop.channelCount } == 0 })
    }

    /// A completion runs while the loop is consuming sent bytes; closing from there must not
    /// touch the outbound buffer being consumed.
    @Test(arguments: IOBackendSupport.backends)
    func completionThatClosesTheChannel(backend: IOBackend) throws {
        let group = try EventLoopGroup(threads: 1, backend: backend)
        defer { group.shutdown() }
        let loop = group.loops[0]
        let (server, client) = try Self.tcpPair()
        defer { close(client) }
        Socket.setSendBuffer(server, bytes: 64 * 1024)
        let shared = Shared()
        let handler = BulkHandler(total: 2 << 20, shared: shared)
        handler.closeInCompletion = true
        _ = Self.register(handler, fd: server, on: loop)
        _ = Self.readAll(client, count: 2 << 20)  // until the server closes
        #expect(shared.closed.wait(timeoutNanos: 5_000_000_000))
        #expect(shared.inactive.withLock { $0 } == ["from a completion"])
        let results = shared.results.withLock { $0 }
        #expect(results.first == true)
        #expect(results.dropFirst().allSatisfy { !$0 }, "after the close, the rest fail: \(results)")
        #expect(Self.eventually { Self.onLoop(loop) { loop.channelCount } == 0 })
    }

    @Test(arguments: IOBackendSupport.backends)
    func closeAfterFlushSendsEverythingThenCloses(backend: IOBackend) throws {
        let group = try EventLoopGroup(threads: 1, backend: backend)
        defer { group.shutdown() }
        let loop = group.loops[0]
        let (server, client) = try Self.tcpPair()
        defer { close(client) }
        let total = 1 << 20
        let shared = Shared()
        let handler = BulkHandler(total: total, shared: shared, closeAfterFlush: true)
        _ = Self.register(handler, fd: server, on: loop)
        let got = Self.readAll(client, count: total + 1)
        #expect(got.count == total)
        #expect(Self.checkPattern(got))
        #expect(shared.closed.wait(timeoutNanos: 5_000_000_000))
        #expect(shared.inactive.withLock { $0 } == ["closed after flush"])
        #expect(shared.sent.withLock { $0 } == true)
    }

    @Test(arguments: IOBackendSupport.backends)
    func timersFireInOrderAndNotEarly(backend: IOBackend) throws {
        let group = try EventLoopGroup(threads: 1, backend: backend)
        defer { group.shutdown() }
        let loop = group.loops[0]
        let fired = Mutex<[(Int, UInt64)]>([])
        let done = Semaphore()
        let start = MonotonicClock.nanos()
        loop.execute {
            for (i, ms) in [(3, 60), (1, 20), (2, 40)] {
                loop.schedule(afterNanos: UInt64(ms) * 1_000_000) {
                    fired.withLock { $0.append((i, MonotonicClock.nanos() - start)) }
                    if i == 3 { done.signal() }
                }
            }
        }
        #expect(done.wait(timeoutNanos: 5_000_000_000))
        let f = fired.withLock { $0 }
        #expect(f.map(\.0) == [1, 2, 3])
        for (i, at) in f { #expect(at >= UInt64(i * 20) * 1_000_000, "timer \(i) at \(at) ns") }
        // execute from another thread runs on the loop.
        #expect(Self.onLoop(loop) { loop.inEventLoop })
        #expect(!loop.inEventLoop)
    }
}
