#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Runs the load: connects the streams, measures the initial sync, then triggers changes and
/// measures how long each stream takes to receive the new version. The streams live on io_uring
/// loops of their own (the same core as the server); this thread only coordinates.
public final class LoadGenerator {
    enum Phase {
        case sync(start: UInt64)
        case trigger(type: XdsType, start: UInt64)
    }

    struct Track {
        var baseline = ""
        var expected = false
        var done = false
        /// The version that converged it.
        var version = ""
    }

    /// Everything one loop owns: its streams and what the current phase measures.
    final class LoopState {
        var streams: [any ADSLoadStream] = []
        /// Global stream index -> position in `streams` (a reconnect finds its stream again).
        var local: [Int: Int] = [:]
        var refs: [GRPCClientCallRef] = []
        var tracks: [Track] = []
        var phase: Phase?
        var latencies: [Double] = []
        var keepAlive: [AnyObject] = []
        var channels: [Channel] = []
        let blocks = ADSClientStream.BlockCache()
        let transitions = DeltaTransitions()
    }

    final class CallDelegate: GRPCClientCallDelegate {
        let stream: any ADSLoadStream
        let shared: Shared
        init(_ s: any ADSLoadStream, _ shared: Shared) { stream = s; self.shared = shared }
        func callReceived(_ call: GRPCClientCall, message: UnsafeRawBufferPointer) {
            stream.receive(message, now: MonotonicClock.nanos())
        }
        func callEnded(_ call: GRPCClientCall, status: GRPCStatus) {
            shared.streamEnded(stream, status)
        }
    }

    /// What the loops and the coordinator share: counters, and how to open streams.
    final class Shared: Sendable {
        let options: LoadGenOptions
        let synced = Atomic<Int>(0)
        let converged = Atomic<Int>(0)
        let ended = Atomic<Int>(0)
        let endedLogged = Atomic<Bool>(false)
        let finishing = Atomic<Bool>(false)
        /// Streams are being dropped on purpose (the reconnect phase).
        let dropping = Atomic<Bool>(false)

        /// With --tls-ca: every connection speaks TLS first (the client certificate is optional).
        let tls: TLSContext?

        init(options: LoadGenOptions, tls: TLSContext?) {
            self.options = options
            self.tls = tls
        }

        func streamEnded(_ s: any ADSLoadStream, _ status: GRPCStatus) {
            if dropping.load(ordering: .relaxed) { return }
            ended.wrappingAdd(1, ordering: .relaxed)
            if status.code != .ok, !finishing.load(ordering: .relaxed), !endedLogged.exchange(true, ordering: .relaxed) {
                Log.warn("loadgen_stream_ended", ["stream": s.index, "status": status.code.rawValue, "message": status.message])
            }
        }

        /// Opens a connection's streams on its loop (again, with what they hold, on a reconnect).
        func open(fd: Int32, streams: Range<Int>, state: LoopState, loop: any IOLoop) {
            let handler = GRPCClientChannelHandler(authority: "\(options.targetHost):\(options.targetPort)")
            // A fleet's handshakes queue behind each other at the server: allow the whole --timeout.
            let outer: any ChannelHandler = tls.map {
                TLSChannelHandler(inner: handler, context: $0, handshakeTimeoutNanos: options.timeoutNanos)
            } ?? handler
            state.channels.append(loop.register(fd: fd, peer: "\(options.targetHost):\(options.targetPort)", handler: outer))
            state.keepAlive.append(handler)
            let path = options.xdsProtocol == .delta ? ADSService.deltaPath : ADSService.streamPath
            for index in streams {
                if let local = state.local[index] {
                    let stream = state.streams[local]
                    guard let call = handler.grpc.startCall(path: path, delegate: CallDelegate(stream, self)) else {
                        streamEnded(stream, GRPCStatus(.resourceExhausted, "could not open a stream"))
                        continue
                    }
                    state.refs[local].call = call
                    (stream as? DeltaClientStream)?.prepareReconnect()
                    stream.start()
                    continue
                }
                let local = state.streams.count
                let ref = GRPCClientCallRef()
                let stream: any ADSLoadStream
                if options.xdsProtocol == .delta {
                    let d = DeltaClientStream(index: index, node: node(index)) { bytes in ref.call?.send(bytes: bytes) }
                    d.transitions = state.transitions
                    stream = d
                } else {
                    let mode: ADSClientStream.Mode
                    if case .grpc = options.mode { mode = .grpc(target: options.grpcTargets[index % options.grpcTargets.count]) } else { mode = .envoy }
                    let sotw = ADSClientStream(index: index, mode: mode, node: node(index)) { bytes in ref.call?.send(bytes: bytes) }
                    sotw.blocks = state.blocks
                    sotw.sendBlock = { block, tail in ref.call?.send(body: ByteSlice(block), tail: tail) }
                    stream = sotw
                }
                let delegate = CallDelegate(stream, self)
                guard let call = handler.grpc.startCall(path: path, delegate: delegate) else {
                    streamEnded(stream, GRPCStatus(.resourceExhausted, "could not open a stream"))
                    continue
                }
                ref.call = call
                state.local[index] = local
                state.refs.append(ref)
                stream.onSynced = { [unowned(unsafe) state, self] in
                    if case let .sync(start)? = state.phase { state.latencies.append(Double(MonotonicClock.nanos() - start) / 1e9) }
                    synced.wrappingAdd(1, ordering: .relaxed)
                }
                stream.onResponse = { [unowned(unsafe) state, self] type, version, now in
                    guard case let .trigger(t, start)? = state.phase, t == type else { return }
                    var track = state.tracks[local]
                    guard track.expected, !track.done, version != track.baseline else { return }
                    track.done = true
                    track.version = version
                    state.tracks[local] = track
                    state.latencies.append(Double(now &- start) / 1e9)
                    converged.wrappingAdd(1, ordering: .relaxed)
                }
                state.streams.append(stream)
                state.tracks.append(Track())
                stream.start()
            }
        }

        func node(_ index: Int) -> Node {
            let ns = options.namespaces[index % options.namespaces.count]
            var n = Node()
            n.id = "sidecar~10.\(index >> 16 & 255).\(index >> 8 & 255).\(index & 255)~\(options.nodePrefix)-\(index).\(ns)~\(ns).svc.cluster.local"
            n.cluster = options.nodePrefix
            n.metadata = ProtoStruct(fields: ["NAMESPACE": .string(ns)])
            n.userAgentName = "fastpilot-loadgen"
            return n
        }
    }

    public let options: LoadGenOptions
    let group: EventLoopGroup
    let shared: Shared
    private var states: [UnsafeSendableBox<LoopState>] = []

    public init(options: LoadGenOptions) throws {
        self.options = options
        var tls: TLSContext?
        if let ca = options.tlsCA {
            do {
                tls = try TLSContext(.init(role: .client, certificatePath: options.tlsCert, keyPath: options.tlsKey,
                                           trustPath: ca, serverName: options.tlsServerName ?? options.targetHost))
            } catch {
                throw LoadGenOptions.ParseError(description: "TLS: " + error.description)
            }
        }
        self.shared = Shared(options: options, tls: tls)
        var io = IOLoopConfig()
        // The client receives most of the bytes: bigger provided buffers (io_uring; the epoll
        // loop reads into one 64 KiB buffer per loop anyway).
        io.receiveBufferSize = 64 * 1024
        group = try EventLoopGroup(threads: options.ioThreads, config: io, backend: options.io)
        let made = group.onEveryLoop { _ in UnsafeSendableBox(LoopState()) }
        // onEveryLoop returns in completion order; index them by loop.
        var byLoop: [UnsafeSendableBox<LoopState>?] = Array(repeating: nil, count: group.loops.count)
        let indices = group.onEveryLoop { $0.index }
        for (i, box) in zip(indices, made) { byLoop[i] = box }
        states = byLoop.map { $0! }
    }

    /// Runs every phase and returns the report.
    public func run() throws -> LoadReport {
        let o = options
        var report = LoadReport(machine: "\(System.coreCount) cores, Linux", options: "mode=\(o.mode) protocol=\(o.xdsProtocol.rawValue) streams=\(o.streams) conns=\(o.connections)",
                                streams: o.streams, connections: o.connections)
        try checkDescriptorLimit()
        var trigger: Trigger?
        if !o.triggers.isEmpty && o.rounds > 0 {
            trigger = try Trigger(options: o)
        }
        report.serverRSSBefore = o.serverPID.flatMap { ProcStats.of(pid: $0) }?.rssBytes
        report.phases.append(try syncPhase())
        report.serverRSSAfterSync = o.serverPID.flatMap { ProcStats.of(pid: $0) }?.rssBytes
        if let trigger {
            defer { trigger.cleanUp() }
            for round in 1...o.rounds {
                for kind in o.triggers {
                    OSThread.sleep(nanos: o.settleNanos)
                    report.phases.append(try triggerPhase(kind, round: round, trigger: trigger))
                }
            }
        }
        if o.reconnect { report.phases.append(try reconnectPhase()) }
        if o.holdNanos > 0 { report.hold = hold(o.holdNanos) }
        shared.finishing.store(true, ordering: .relaxed)
        group.shutdown()
        return report
    }

    // MARK: phases

    private func syncPhase(name: String = "initial sync") throws -> PhaseResult {
        let o = options
        let cpu0 = serverCPU(), self0 = ProcStats.selfCPUSeconds()
        let t0 = MonotonicClock.nanos()
        for (i, s) in states.enumerated() {
            let loop = group.loops[i]
            loop.execute { s.value.phase = .sync(start: t0) }
        }
        var perConn = [Int](repeating: o.streams / o.connections, count: o.connections)
        for i in 0..<(o.streams % o.connections) { perConn[i] += 1 }
        var first = 0
        for c in 0..<o.connections {
            let source = o.sourceAddresses.isEmpty ? nil : o.sourceAddresses[c % o.sourceAddresses.count]
            let fd = try connect(source: source)
            let loopIndex = c % group.loops.count
            let range = first..<(first + perConn[c])
            first += perConn[c]
            let state = states[loopIndex]
            let loop = group.loops[loopIndex]
            loop.execute { [shared] in shared.open(fd: fd, streams: range, state: state.value, loop: loop) }
            if o.progress && c % 500 == 499 { progress("connecting \(c + 1)/\(o.connections)") }
        }
        let done = wait(for: o.streams, counter: shared.synced, label: name)
        let result = collect(name: name, expected: o.streams, start: t0, cpu0: cpu0, self0: self0)
        if !done { Log.warn("loadgen_sync_incomplete", ["phase": name, "synced": shared.synced.load(ordering: .relaxed), "streams": o.streams]) }
        return result
    }

    /// Every connection dropped, then (after `--reconnect-cmd`, which may restart the server)
    /// opened again; each stream starts with what it holds (Delta: initial_resource_versions).
    /// Measured like the initial sync: until every stream has an answer for every type.
    private func reconnectPhase() throws -> PhaseResult {
        // The rounds' clean-up pushes land first, and are not counted as the reconnect's.
        OSThread.sleep(nanos: options.settleNanos)
        let totals = group.onEveryLoop { [states] loop -> (Int, Int) in
            let s = states[loop.index].value
            return (s.streams.reduce(0) { $0 + $1.bytesReceived }, s.streams.reduce(0) { $0 + $1.messagesReceived })
        }
        lastBytes = totals.reduce(0) { $0 + $1.0 }
        lastMessages = totals.reduce(0) { $0 + $1.1 }
        shared.dropping.store(true, ordering: .relaxed)
        _ = group.onEveryLoop { [states] loop in
            let s = states[loop.index].value
            for ref in s.refs { ref.call = nil }
            for c in s.channels { c.close(.local("reconnect")) }
            s.channels = []
        }
        // Let the closes reach the loops (and the server) before the new connections.
        OSThread.sleep(nanos: 200_000_000)
        if let cmd = options.reconnectCommand { try Trigger.run(cmd, flag: "--reconnect-cmd") }
        shared.dropping.store(false, ordering: .relaxed)
        shared.synced.store(0, ordering: .relaxed)
        return try syncPhase(name: "reconnect")
    }

    private func triggerPhase(_ kind: LoadGenOptions.Trigger, round: Int, trigger: Trigger) throws -> PhaseResult {
        let type: XdsType = kind == .endpoint ? .eds : .cds
        let clusters = kind == .endpoint ? trigger.watchedClusters : []
        // Snapshot every stream's current version of the type, and who must converge.
        let counts = group.onEveryLoop { [states] loop -> Int in
            let s = states[loop.index].value
            s.phase = nil
            s.latencies = []
            var expected = 0
            for (i, stream) in s.streams.enumerated() {
                let watches = stream.requested(type) && (clusters.isEmpty || !Set(stream.edsNames).isDisjoint(with: clusters))
                s.tracks[i] = Track(baseline: stream.version(type), expected: watches && stream.isSynced, done: false)
                if s.tracks[i].expected { expected += 1 }
            }
            return expected
        }
        let expected = counts.reduce(0, +)
        guard expected > 0 else {
            throw TriggerError("\(kind) change #\(round): no stream watches what the trigger changes"
                               + (clusters.isEmpty ? "" : " (\(clusters.sorted().joined(separator: ", ")))")
                               + "; pick a service the streams' namespaces see with --trigger-service NS/NAME")
        }
        shared.converged.store(0, ordering: .relaxed)
        let cpu0 = serverCPU(), self0 = ProcStats.selfCPUSeconds()
        let start = MonotonicClock.nanos()
        _ = group.onEveryLoop { [states] loop in states[loop.index].value.phase = .trigger(type: type, start: start) }
        try trigger.fire(kind, round: round)
        _ = wait(for: expected, counter: shared.converged, label: "\(kind) round \(round)")
        let versions = group.onEveryLoop { [states] loop -> UInt64 in
            states[loop.index].value.tracks.compactMap { UInt64($0.version) }.max() ?? 0
        }
        var result = collect(name: "\(kind) change #\(round)", expected: expected, start: start, cpu0: cpu0, self0: self0)
        if let v = versions.max(), v > 0, options.triggerCommand == nil { result.server = serverTrace(version: v) }
        return result
    }

    /// fastpilot's own trace of push `version` (`/debug/pushz?version=V`), once it is done (the
    /// last ACKs may still be on their way): nil for a server without one.
    private func serverTrace(version: UInt64) -> ServerPushTrace? {
        let deadline = MonotonicClock.nanos() &+ 3_000_000_000
        while true {
            guard let r = try? HTTPClient.request("GET", host: options.adminHost, port: options.adminPort,
                                                  path: "/debug/pushz?version=\(version)", timeoutSeconds: 2),
                  r.status == 200, let doc = try? JSONReader.parse(r.body) else { return nil }
            if case .string("in_progress")? = doc["state"], MonotonicClock.nanos() < deadline {
                OSThread.sleep(nanos: 50_000_000)
                continue
            }
            return ServerPushTrace(json: doc, version: version)
        }
    }

    private func hold(_ nanos: UInt64) -> HoldResult {
        func totals() -> (Int, Int) {
            group.onEveryLoop { [states] loop -> (Int, Int) in
                let s = states[loop.index].value
                return (s.streams.reduce(0) { $0 + $1.bytesReceived }, s.streams.reduce(0) { $0 + $1.messagesReceived })
            }.reduce((0, 0)) { ($0.0 + $1.0, $0.1 + $1.1) }
        }
        let ended0 = shared.ended.load(ordering: .relaxed)
        let (b0, m0) = totals()
        let t0 = MonotonicClock.nanos()
        while true {
            let elapsed = MonotonicClock.nanos() - t0
            if elapsed >= nanos { break }
            progress("holding \(elapsed / 1_000_000_000)/\(nanos / 1_000_000_000) s")
            OSThread.sleep(nanos: min(250_000_000, nanos - elapsed))
        }
        progress("")
        let (b1, m1) = totals()
        return HoldResult(seconds: Double(MonotonicClock.nanos() - t0) / 1e9,
                          streamsEnded: shared.ended.load(ordering: .relaxed) - ended0, messages: m1 - m0, bytes: b1 - b0)
    }

    private func collect(name: String, expected: Int, start: UInt64, cpu0: Double?, self0: Double) -> PhaseResult {
        let parts = group.onEveryLoop { [states] loop -> ([Double], Int, Int) in
            let s = states[loop.index].value
            s.phase = nil
            let lat = s.latencies
            s.latencies = []
            return (lat, s.streams.reduce(0) { $0 + $1.bytesReceived }, s.streams.reduce(0) { $0 + $1.messagesReceived })
        }
        let bytes = parts.reduce(0) { $0 + $1.1 }, msgs = parts.reduce(0) { $0 + $1.2 }
        defer { lastBytes = bytes; lastMessages = msgs }
        let cpu1 = serverCPU()
        return PhaseResult(name: name, expected: expected, latencies: parts.flatMap(\.0), bytes: bytes - lastBytes,
                           messages: msgs - lastMessages, serverCPU: cpu0.flatMap { c0 in cpu1.map { $0 - c0 } },
                           loadgenCPU: ProcStats.selfCPUSeconds() - self0,
                           wallSeconds: Double(MonotonicClock.nanos() - start) / 1e9)
    }

    private var lastBytes = 0, lastMessages = 0

    // MARK: helpers

    private func connect(source: String?) throws -> Int32 {
        var attempt = 0
        while true {
            do {
                let fd = try Socket.connect(host: options.targetHost, port: options.targetPort, sourceHost: source)
                Socket.setNoDelay(fd)
                return fd
            } catch let e as SocketError where (e.errno == EAGAIN || e.errno == EADDRNOTAVAIL || e.errno == ECONNREFUSED) && attempt < 50 {
                attempt += 1
                OSThread.sleep(nanos: 20_000_000)
            }
        }
    }

    private func checkDescriptorLimit() throws {
        var lim = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &lim)
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max
            setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &lim)
            getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &lim)
        }
        if UInt64(options.connections + 64) > UInt64(lim.rlim_cur) {
            throw SocketError(operation: "\(options.connections) connections exceed the descriptor limit \(lim.rlim_cur); use --conns to multiplex streams, or several loadgen processes", errno: EMFILE)
        }
    }

    private func serverCPU() -> Double? { options.serverPID.flatMap { ProcStats.of(pid: $0) }?.cpuSeconds }

    /// Waits until `counter` reaches `target` or the phase times out. Shows progress on a terminal.
    private func wait(for target: Int, counter: borrowing Atomic<Int>, label: String) -> Bool {
        let deadline = MonotonicClock.nanos() &+ options.timeoutNanos
        var lastProgress: UInt64 = 0
        while true {
            let n = counter.load(ordering: .relaxed)
            if n >= target { if lastProgress != 0 { progress("") }; return true }
            let now = MonotonicClock.nanos()
            if now > deadline { if lastProgress != 0 { progress("") }; return false }
            if options.progress && now - lastProgress > 250_000_000 && isatty(2) != 0 {
                progress("\(label): \(n)/\(target)")
                lastProgress = now
            }
            OSThread.sleep(nanos: 1_000_000)
        }
    }

    private func progress(_ s: String) {
        guard options.progress, isatty(2) != 0 else { return }
        var line = "\r\u{1B}[K" + s
        if s.isEmpty { line = "\r\u{1B}[K" }
        line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }
}
