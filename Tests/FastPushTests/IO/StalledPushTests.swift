import Testing
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
@testable import FastPush

/// A client that keeps its HTTP/2 window shut must not hold a push slot: with one slot in all,
/// every push still reaches a good client long before the stuck one is disconnected.
@Suite(.timeLimit(.minutes(1))) struct StalledPushTests {
    static func request(_ id: String) -> [UInt8] {
        var node = Node()
        node.id = id
        var r = DiscoveryRequest()
        r.node = node
        r.typeURL = XdsType.cds.typeURL
        return r.encode()
    }

    @Test func stuckClientGivesBackItsPushSlot() throws {
        var o = ServeOptions()
        o.xdsHost = "127.0.0.1"
        o.xdsPort = 0
        o.adminPort = 0
        o.pushThrottle = 1
        o.pushWorkers = 1
        o.ioThreads = 1
        o.debounceAfter = 1_000_000
        o.sendTimeoutNanos = 60_000_000_000  // the disconnect must not be what frees the slot
        o.logLevel = .error
        let server = try FastPilotServer(options: o)
        defer { server.stop() }

        // The stuck client: a 1 KiB stream window it never opens, and it never reads.
        var settings = H2Settings()
        settings.initialWindowSize = 1024
        settings.connectionWindowSize = 65_535
        let h2 = H2Connection(role: .client, settings: settings)
        let grpc = GRPCClientConnection(h2: h2, authority: "stuck")
        defer { grpc.connectionClosed(reason: "test over") }  // as a channel handler would; ends the h2 ⇄ gRPC cycle
        final class Ignore: GRPCClientCallDelegate {
            func callReceived(_ call: GRPCClientCall, message: UnsafeRawBufferPointer) {}
            func callEnded(_ call: GRPCClientCall, status: GRPCStatus) {}
        }
        let call = try #require(grpc.startCall(path: ADSService.streamPath, delegate: Ignore()))
        _ = call.send(bytes: Self.request("sidecar~10.0.0.8~stuck.demo~demo.svc.cluster.local"))
        var out = OutboundBuffer()
        _ = h2.produce(into: &out, budget: 1 << 20)
        let hello = out.drain()
        let stuck = try Socket.connect(host: "127.0.0.1", port: server.xdsPort)
        defer { close(stuck) }
        #expect(write(stuck, hello, hello.count) == hello.count)

        // The good client, on loops of its own.
        let clients = try EventLoopGroup(threads: 1)
        defer { clients.shutdown() }
        final class Counter: GRPCClientCallDelegate {
            let count = Atomic<Int>(0)
            func callReceived(_ call: GRPCClientCall, message: UnsafeRawBufferPointer) { count.wrappingAdd(1, ordering: .relaxed) }
            func callEnded(_ call: GRPCClientCall, status: GRPCStatus) {}
        }
        let counter = Counter()
        let box = UnsafeSendableBox(counter)
        let fd = try Socket.connect(host: "127.0.0.1", port: server.xdsPort)
        let loop = clients.next()
        let request = Self.request("sidecar~10.0.0.9~good.demo~demo.svc.cluster.local")
        loop.execute {
            let h = GRPCClientChannelHandler(authority: "good")
            _ = loop.register(fd: fd, peer: "server", handler: h)
            _ = h.grpc.startCall(path: ADSService.streamPath, delegate: box.value)?.send(bytes: request)
        }
        func waitFor(_ n: Int, seconds: Double = 10) -> Bool {
            let deadline = MonotonicClock.nanos() + UInt64(seconds * 1e9)
            while MonotonicClock.nanos() < deadline {
                if counter.count.load(ordering: .relaxed) >= n { return true }
                OSThread.sleep(nanos: 5_000_000)
            }
            return false
        }
        #expect(waitFor(1), "the good client's first CDS response")

        // Three full pushes, one after another: each must reach the good client. Without the
        // slot coming back, the stuck client keeps the only one after its first push.
        var services = server.discovery.registry.services
        for i in 1...3 {
            services.append(Fixtures.service("extra-\(i).demo.svc.cluster.local", ns: "demo"))
            server.discovery.updateRegistry(RegistrySnapshot(services: services))
            #expect(waitFor(1 + i), "push \(i) reached the good client")
        }
        #expect(server.discovery.metrics.stalledPushes.count >= 1)
        #expect(server.grpc.connectionCount == 2, "the stuck client is still connected: the timeout did not free the slot")
    }
}
