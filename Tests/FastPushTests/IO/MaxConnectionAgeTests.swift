import Testing
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
@testable import FastPush

/// Istio's MaxServerConnectionAge (`GRPCServerConfig.maxConnectionAgeNanos`): every connection is
/// sent a graceful GOAWAY at its age ± 10%, its open streams go on until the grace runs out, and
/// then it is closed. Over real loopback sockets, with a raw HTTP/2 client that timestamps every
/// frame. The time bounds are those of the mechanism (the deadline's ±10%), with generous margins,
/// not performance timing.
@Suite(.timeLimit(.minutes(1))) struct MaxConnectionAgeTests {
    static let ms: UInt64 = 1_000_000

    // MARK: the deadline and its jitter

    @Test func offByDefault() {
        let c = GRPCServerConfig()
        #expect(c.maxConnectionAgeNanos == 0)
        #expect(c.maxConnectionAgeGraceNanos == 10_000_000_000)
        #expect(c.connectionAgeLimit() == nil)
    }

    @Test func pinnedRandomSourceGivesDeadlinesWithinTenPercent() {
        let age: UInt64 = 300 * Self.ms
        func limit(_ r: Double) -> UInt64 {
            var c = GRPCServerConfig()
            c.maxConnectionAgeNanos = age
            c.maxConnectionAgeRandom = { r }
            return c.connectionAgeLimit()!
        }
        let low = age * 9 / 10, high = age * 11 / 10
        // The ends and the middle of [0, 1) land on age × 0.9, × 1.0 and (just under) × 1.1.
        #expect(abs(Int64(limit(0)) - Int64(low)) <= 1)
        #expect(abs(Int64(limit(0.5)) - Int64(age)) <= 1)
        #expect(limit(0.999_999) <= high && limit(0.999_999) >= high - Self.ms / 1000)
        #expect(limit(0.25) < limit(0.75))
        // A source that strays outside [0, 1) is clamped, not trusted.
        #expect(limit(-3) >= low - 1 && limit(7) <= high)
        // Every deadline of a sweep over the source's range is within ±10%, and they spread.
        var seen = Set<UInt64>()
        for i in 0..<1000 {
            let d = limit(Double(i) / 1000)
            #expect(d >= low - 1 && d <= high, "r = \(Double(i) / 1000): \(d)")
            seen.insert(d)
        }
        #expect(seen.count > 900)
        // The default source: within ±10% too.
        var c = GRPCServerConfig()
        c.maxConnectionAgeNanos = age
        for _ in 0..<1000 {
            let d = c.connectionAgeLimit()!
            #expect(d >= low - 1 && d <= high)
        }
    }

    @Test func theServerDrawsEachConnectionsDeadlineFromTheSource() throws {
        // Pinned to the top of the range: the GOAWAY cannot come before age × 1.1 (less 1 ms of
        // rounding), and a connection with no streams closes once it is out.
        let age: UInt64 = 300 * Self.ms
        let fixture = try Fixture(age: age, grace: 5_000 * Self.ms, random: { 0.999_999 })
        defer { fixture.stop() }
        let start = MonotonicClock.nanos()
        let client = try RawClient(port: fixture.server.port)
        defer { client.stop() }
        client.send(RawH2.clientPreface)
        let goAway = try #require(client.waitFor(seconds: 5) { $0.first { $0.frame.type == RawH2.FrameType.goAway.rawValue } })
        #expect(goAway.at - start >= age * 11 / 10 - Self.ms)
        #expect(goAway.at - start <= age * 11 / 10 + 1_000 * Self.ms)
        #expect(goAway.frame.errorCode == 0)
        // No streams: nothing to wait for (the 5 s grace is not what closes it).
        let closed = try #require(client.waitForClose(seconds: 4))
        #expect(closed - goAway.at < 2_000 * Self.ms)
        #expect(fixture.maxAgeCount == 1)
    }

    // MARK: over a real socket

    @Test(arguments: [IOBackend.auto, .epoll])
    func goAwayAfterTheAgeThenPushesUntilTheGraceThenClosed(backend: IOBackend) throws {
        let age: UInt64 = 300 * Self.ms
        let grace: UInt64 = 1_500 * Self.ms
        let fixture = try Fixture(age: age, grace: grace, backend: backend)
        defer { fixture.stop() }

        let start = MonotonicClock.nanos()
        let client = try RawClient(port: fixture.server.port)
        defer { client.stop() }
        // An ADS stream (SotW) with a wildcard CDS request.
        var node = Node()
        node.id = "sidecar~10.0.0.7~aged.demo~demo.svc.cluster.local"
        var request = DiscoveryRequest()
        request.node = node
        request.typeURL = XdsType.cds.typeURL
        let message = request.encode()
        let n = UInt32(message.count)
        let framed: [UInt8] = [0] + RawH2.be32(n) + message
        client.send(RawH2.clientPreface + RawH2.headers(stream: 1, RawH2.request(path: ADSService.streamPath))
                    + RawH2.data(stream: 1, framed))

        // The first CDS response, then the GOAWAY (NO_ERROR, last stream 1) at the age ± 10%.
        #expect(client.waitFor(seconds: 5) { $0.first { $0.frame.type == RawH2.FrameType.data.rawValue && $0.frame.stream == 1 } } != nil)
        let goAway = try #require(client.waitFor(seconds: 5) { $0.first { $0.frame.type == RawH2.FrameType.goAway.rawValue } })
        let after = goAway.at - start
        #expect(after >= age * 9 / 10, "GOAWAY after \(after / Self.ms) ms")
        #expect(after <= age * 11 / 10 + 1_000 * Self.ms, "GOAWAY after \(after / Self.ms) ms")
        #expect(goAway.frame.errorCode == 0)
        #expect(goAway.frame.payload.count >= 8 && RawH2.u32(goAway.frame.payload, 0) == 1)
        #expect(fixture.maxAgeCount == 1)

        // The stream goes on: a registry change after the GOAWAY is pushed to it.
        let before = client.frames.count
        _ = fixture.discovery.updateRegistry(try Self.registry(["a", "b"]))
        let push = try #require(client.waitFor(seconds: 5) {
            $0.dropFirst(before).first { $0.frame.type == RawH2.FrameType.data.rawValue && $0.frame.stream == 1 }
        })
        #expect(push.at > goAway.at)
        #expect(Self.contains(push.frame.payload, "b.demo.svc.cluster.local"))

        // Closed once the grace ran out, and not before; the stream was never reset.
        let closed = try #require(client.waitForClose(seconds: 10))
        #expect(push.at < closed)
        #expect(closed - goAway.at >= grace - 100 * Self.ms, "closed \((closed - goAway.at) / Self.ms) ms after GOAWAY")
        #expect(closed - goAway.at <= grace + 2_000 * Self.ms, "closed \((closed - goAway.at) / Self.ms) ms after GOAWAY")
        #expect(client.frames.allSatisfy { $0.frame.type != RawH2.FrameType.rstStream.rawValue })
        #expect(client.frames.filter { $0.frame.type == RawH2.FrameType.goAway.rawValue }.count == 1)
        #expect(waitUntil { fixture.server.connectionCount == 0 })
        #expect(fixture.maxAgeCount == 1)
    }

    @Test func noLimitNoGoAway() throws {
        let fixture = try Fixture(age: 0, grace: 100 * Self.ms)
        defer { fixture.stop() }
        let client = try RawClient(port: fixture.server.port)
        defer { client.stop() }
        client.send(RawH2.clientPreface)
        #expect(client.waitFor(seconds: 0.8) { $0.first { $0.frame.type == RawH2.FrameType.goAway.rawValue } } == nil)
        #expect(client.closedAt == nil)
        #expect(fixture.server.connectionCount == 1)
        #expect(fixture.maxAgeCount == 0)
    }

    // MARK: support

    static func registry(_ names: [String]) throws -> RegistrySnapshot {
        let items = names.enumerated().map { i, name in
            serviceEntryJSON(name: name, namespace: "demo", spec: """
                {"hosts": ["\(name).demo.svc.cluster.local"], "resolution": "STATIC",
                 "ports": [{"number": 8080, "name": "grpc", "protocol": "GRPC"}],
                 "endpoints": [{"address": "127.0.0.\(i + 1)", "ports": {"grpc": 15051}}]}
                """)
        }
        return try ServiceEntryParser.parse(json: listJSON(items), source: "test")
    }

    static func contains(_ haystack: [UInt8], _ needle: String) -> Bool {
        let n = Array(needle.utf8)
        guard haystack.count >= n.count else { return false }
        return (0...(haystack.count - n.count)).contains { Array(haystack[$0..<($0 + n.count)]) == n }
    }

    func waitUntil(_ cond: () -> Bool, seconds: Double = 10) -> Bool {
        let deadline = MonotonicClock.nanos() + UInt64(seconds * 1e9)
        while MonotonicClock.nanos() < deadline {
            if cond() { return true }
            OSThread.sleep(nanos: 10_000_000)
        }
        return cond()
    }

    /// A DiscoveryServer behind a GRPCServer with a connection age limit.
    final class Fixture {
        let group: EventLoopGroup
        let discovery: DiscoveryServer
        let server: GRPCServer
        let maxAge = SharedCounter()
        var maxAgeCount: Int { maxAge.value.load(ordering: .relaxed) }

        init(age: UInt64, grace: UInt64, random: (@Sendable () -> Double)? = nil, backend: IOBackend = .auto) throws {
            group = try EventLoopGroup(threads: 2, backend: backend)
            var dc = DiscoveryServerConfig()
            dc.pushWorkers = 1
            dc.debounce.after = 10 * MaxConnectionAgeTests.ms
            dc.debounce.max = 100 * MaxConnectionAgeTests.ms
            let discovery = DiscoveryServer(config: dc, registry: try MaxConnectionAgeTests.registry(["a"]))
            discovery.start()
            self.discovery = discovery
            var cfg = GRPCServerConfig()
            cfg.host = "127.0.0.1"
            cfg.port = 0
            cfg.maxConnectionAgeNanos = age
            cfg.maxConnectionAgeGraceNanos = grace
            if let random { cfg.maxConnectionAgeRandom = random }
            let counter = maxAge
            server = try GRPCServer(group: group, config: cfg,
                                    onMaxConnectionAge: { counter.value.wrappingAdd(1, ordering: .relaxed) }) { loop in
                ADSService(server: discovery, loop: loop)
            }
        }

        func stop() {
            group.shutdown()
            discovery.stop()
        }
    }

    /// A blocking socket whose reader thread timestamps every HTTP/2 frame and the close.
    final class RawClient: @unchecked Sendable {
        struct Seen { var at: UInt64; var frame: RawH2.Frame }
        let fd: Int32
        private let state = Mutex<(frames: [Seen], closedAt: UInt64?)>(([], nil))
        private let stopping = Atomic<Bool>(false)
        private var reader: OSThread?

        init(port: UInt16) throws {
            fd = try Socket.connect(host: "127.0.0.1", port: port, nonBlocking: false)
            var tv = timeval(tv_sec: 0, tv_usec: 50_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            reader = OSThread.spawn(name: "t-age-reader") { [self] in self.readLoop() }
        }

        var frames: [Seen] { state.withLock { $0.frames } }
        var closedAt: UInt64? { state.withLock { $0.closedAt } }

        func send(_ bytes: [UInt8]) {
            #expect(write(fd, bytes, bytes.count) == bytes.count)
        }

        /// Polls the frames seen so far until `find` finds something.
        func waitFor<T>(seconds: Double, _ find: ([Seen]) -> T?) -> T? {
            let deadline = MonotonicClock.nanos() + UInt64(seconds * 1e9)
            repeat {
                if let t = find(frames) { return t }
                OSThread.sleep(nanos: 2_000_000)
            } while MonotonicClock.nanos() < deadline
            return find(frames)
        }

        func waitForClose(seconds: Double) -> UInt64? {
            waitFor(seconds: seconds) { _ in self.closedAt }
        }

        private func readLoop() {
            var buf = [UInt8](repeating: 0, count: 65536)
            var pending: [UInt8] = []
            while !stopping.load(ordering: .relaxed) {
                let n = read(fd, &buf, buf.count)
                let now = MonotonicClock.nanos()
                if n > 0 {
                    pending += buf[0..<n]
                    var used = 0
                    var new: [Seen] = []
                    while pending.count - used >= 9 {
                        let len = Int(pending[used]) << 16 | Int(pending[used + 1]) << 8 | Int(pending[used + 2])
                        guard pending.count - used - 9 >= len else { break }
                        new += RawH2.parse(Array(pending[used..<(used + 9 + len)])).map { Seen(at: now, frame: $0) }
                        used += 9 + len
                    }
                    pending.removeFirst(used)
                    state.withLock { $0.frames += new }
                } else if n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                    state.withLock { $0.closedAt = now }
                    return
                }
            }
        }

        func stop() {
            stopping.store(true, ordering: .relaxed)
            reader?.join()
            close(fd)
        }
    }
}
