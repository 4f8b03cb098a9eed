#if canImport(Glibc)
import Glibc
#endif
import CUring
import Synchronization
import FastPush

/// The push fan-out without the kernel: the real DiscoveryServer, dispatcher, workers and io_uring
/// loop threads, but each connection is an in-memory HTTP/2 pair whose server output goes to a
/// null sink once the streams are synced. Reports the server heap per stream and the CPU cost
/// per stream of generating and framing an endpoint push and a full push.
enum FanoutBench {
    /// One simulated connection, confined to its loop: a server HTTP/2 + gRPC + ADS stack and
    /// a client with `streams` simulated Envoys.
    final class Pair {
        let server: H2Connection
        let serverGRPC: GRPCServerConnection
        var client: H2Connection?
        var clientGRPC: GRPCClientConnection?
        var streams: [ADSClientStream] = []
        /// After sync: drop what the server writes, and count it.
        var sink = false
        var sunkBytes = 0
        var dirty = false
        let loopIndex: Int

        init(discovery: DiscoveryServer, loop: any IOLoop) {
            loopIndex = loop.index
            server = H2Connection(role: .server)
            serverGRPC = GRPCServerConnection(h2: server, service: ADSService(server: discovery, loop: loop), peer: "bench")
            // The null sink never returns flow-control credit: advertise the largest windows.
            var settings = H2Settings()
            settings.initialWindowSize = UInt32(Int32.max)
            settings.connectionWindowSize = UInt32(Int32.max)
            let c = H2Connection(role: .client, settings: settings)
            client = c
            clientGRPC = GRPCClientConnection(h2: c, authority: "bench")
        }

        /// Moves bytes both ways until quiet (sync), or drains the server into the sink.
        func pump() {
            dirty = false
            for _ in 0..<64 {
                var so = OutboundBuffer()
                server.produce(into: &so, budget: 1 << 24)
                let sb = so.drain()
                if sink {
                    sunkBytes += sb.count
                    return
                }
                var co = OutboundBuffer()
                client?.produce(into: &co, budget: 1 << 24)
                let cb = co.drain()
                if sb.isEmpty && cb.isEmpty { return }
                if !cb.isEmpty { _ = cb.withUnsafeBytes { server.receive($0) } }
                if !sb.isEmpty { _ = sb.withUnsafeBytes { client?.receive($0) } }
            }
        }
    }

    final class Delegate: GRPCClientCallDelegate {
        let stream: ADSClientStream
        init(_ s: ADSClientStream) { stream = s }
        func callReceived(_ call: GRPCClientCall, message: UnsafeRawBufferPointer) { stream.receive(message, now: MonotonicClock.nanos()) }
        func callEnded(_ call: GRPCClientCall, status: GRPCStatus) {}
    }

    struct Result {
        let streams: Int
        let connections: Int
        let heapPerStream: Double
        let endpointMicros: Sample
        let fullMicros: Sample
        /// Process CPU (all threads) per stream, same rounds.
        let endpointCPUMicros: Sample
        let fullCPUMicros: Sample
    }

    static func run(connections: Int, streamsPerConnection: Int, reps: Int, trace: Bool = true) throws -> Result {
        Log.setLevel(.warn)
        let registryJSON = ScaleBench.registry(services: 100, endpoints: 10)
        var snapshot = try ServiceEntryParser.parse(Array(registryJSON.utf8), source: "bench")
        var cfg = DiscoveryServerConfig()
        cfg.debounce.after = 0
        cfg.debounce.enableEDSDebounce = false
        cfg.pushTrace = trace
        let discovery = DiscoveryServer(config: cfg, registry: snapshot)
        discovery.start()
        defer { discovery.stop() }
        let group = try EventLoopGroup(threads: System.coreCount)
        defer { group.shutdown() }
        let total = connections * streamsPerConnection
        let heap0 = mallinfo2().uordblks
        // Build and sync the pairs on their loops.
        let pairs = Mutex<[UnsafeSendable<Pair>]>([])
        let built = Semaphore()
        for c in 0..<connections {
            let loop = group.loops[c % group.loops.count]
            loop.execute {
                let p = Pair(discovery: discovery, loop: loop)
                let bound = LoopBound(p, loop: loop)
                p.server.onNeedsFlush = { [unowned(unsafe) p] in
                    guard !p.dirty else { return }
                    p.dirty = true
                    loop.execute { bound.value.pump() }
                }
                for s in 0..<streamsPerConnection {
                    var n = Node()
                    n.id = "sidecar~10.0.0.1~bench-\(c)-\(s).bench~bench.svc.cluster.local"
                    let ref = GRPCClientCallRef()
                    let stream = ADSClientStream(index: c * streamsPerConnection + s, mode: .envoy, node: n) { ref.call?.send(bytes: $0) }
                    ref.call = p.clientGRPC!.startCall(path: ADSService.streamPath, delegate: Delegate(stream))
                    stream.start()
                    p.streams.append(stream)
                }
                p.pump()
                pairs.withLock { $0.append(UnsafeSendable(p)) }
                built.signal()
            }
        }
        for _ in 0..<connections { built.wait() }
        // Drop the clients: what stays is the server's.
        let synced = group.onEveryLoop { loop -> Int in
            var n = 0
            for p in pairs.withLock({ $0 }) where p.value.loopIndex == loop.index {
                n += p.value.streams.filter(\.isSynced).count
            }
            return n
        }.reduce(0, +)
        precondition(synced == total, "only \(synced)/\(total) streams synced")
        _ = group.onEveryLoop { loop in
            for p in pairs.withLock({ $0 }) where p.value.loopIndex == loop.index {
                p.value.sink = true
                p.value.streams = []
                p.value.clientGRPC?.connectionClosed(reason: "bench")
                p.value.clientGRPC = nil
                p.value.client = nil
            }
            return 0
        }
        let heapPerStream = Double(Int(mallinfo2().uordblks) - Int(heap0)) / Double(total)

        func measure(_ change: (Int) -> RegistrySnapshot) -> (Sample, Sample) {
            var values: [Double] = []
            var cpu: [Double] = []
            for round in 0..<(reps + 1) {
                let t0 = MonotonicClock.nanos()
                let c0 = ProcStats.selfCPUSeconds()
                discovery.updateRegistry(change(round))
                // Done when every connection's push has been written to its sink. Polled with
                // a short sleep: a sched_yield spin took a share of the two cores it measures.
                while discovery.debouncer?.isIdle == false || discovery.queue.pending > 0 || (discovery.dispatcher?.inFlightCount ?? 0) > 0 {
                    usleep(100)
                }
                if round > 0 {
                    values.append(Double(MonotonicClock.nanos() - t0) / 1e3 / Double(total))
                    cpu.append((ProcStats.selfCPUSeconds() - c0) * 1e6 / Double(total))
                }
            }
            return (Sample(name: "", unit: "us/stream", values: values), Sample(name: "", unit: "us/stream", values: cpu))
        }
        let base = snapshot
        let endpoint = measure { round in
            var services = base.services
            services[0].endpoints = services[0].endpoints.map { var e = $0; e.weight = UInt32(round % 7 + 1); return e }
            return RegistrySnapshot(services: services)
        }
        let full = measure { round in
            var services = base.services
            services.append(Service(hostname: "new-\(round).bench.svc.cluster.local", namespace: "bench", configName: "new-\(round)",
                                    ports: [ServicePort(number: 8080, name: "grpc")], endpoints: [WorkloadEndpoint(address: "10.99.0.1")]))
            snapshot = RegistrySnapshot(services: services)
            return snapshot
        }
        withExtendedLifetime(pairs) {}
        return Result(streams: total, connections: connections, heapPerStream: heapPerStream, endpointMicros: endpoint.0, fullMicros: full.0,
                      endpointCPUMicros: endpoint.1, fullCPUMicros: full.1)
    }

    /// Heap deltas while one connection's server side grows to `n` streams (diagnostics).
    static func probe(_ n: Int) throws {
        Log.setLevel(.warn)
        let snapshot = try ServiceEntryParser.parse(Array(ScaleBench.registry(services: 100, endpoints: 10).utf8), source: "bench")
        let discovery = DiscoveryServer(registry: snapshot)
        let group = try EventLoopGroup(threads: 1)
        defer { group.shutdown() }
        let loop = group.loops[0]
        let done = Semaphore()
        loop.execute {
            func heap() -> Int { Int(mallinfo2().uordblks) }
            var marks: [(String, Int)] = [("start", heap())]
            let p = Pair(discovery: discovery, loop: loop)
            marks.append(("pair", heap()))
            var calls: [GRPCClientCall] = []
            for s in 0..<n {
                var node = Node()
                node.id = "sidecar~10.0.0.1~probe-\(s).bench~bench.svc.cluster.local"
                let ref = GRPCClientCallRef()
                let stream = ADSClientStream(index: s, mode: .envoy, node: node) { ref.call?.send(bytes: $0) }
                ref.call = p.clientGRPC!.startCall(path: ADSService.streamPath, delegate: Delegate(stream))
                calls.append(ref.call!)
                p.streams.append(stream)
            }
            p.pump()
            marks.append(("streams opened", heap()))
            for s in p.streams { s.start() }
            p.pump()
            marks.append(("synced (\(p.streams.filter(\.isSynced).count))", heap()))
            p.streams = []
            calls = []
            p.clientGRPC?.connectionClosed(reason: "probe")
            p.clientGRPC = nil
            p.client = nil
            marks.append(("client dropped", heap()))
            var prev = marks[0].1
            for (name, v) in marks {
                print("\(name): +\(v - prev) B (\((v - prev) / max(1, n)) B/stream)")
                prev = v
            }
            withExtendedLifetime(p) {}
            done.signal()
        }
        done.wait()
    }

    static func table(_ results: [Result]) -> String {
        Harness.table("In-process push fan-out (null sink, no kernel; real dispatcher, workers and loops)",
                      header: ["streams", "connections", "server heap B/stream", "endpoint push µs/stream", "full push µs/stream",
                               "endpoint CPU µs/stream", "full CPU µs/stream"],
                      rows: results.map { r in
                          [String(r.streams), String(r.connections), String(Int(r.heapPerStream.rounded())),
                           String(format1: r.endpointMicros.median), String(format1: r.fullMicros.median),
                           String(format1: r.endpointCPUMicros.median), String(format1: r.fullCPUMicros.median)]
                      })
    }
}
