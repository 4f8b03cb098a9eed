#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The whole server: I/O loops, xDS over gRPC, the push pipeline, the registry and the admin
/// API, wired from ServeOptions.
public final class FastPilotServer: Sendable {
    public let options: ServeOptions
    public let discovery: DiscoveryServer
    public let group: EventLoopGroup
    public let grpc: GRPCServer
    public let admin: AdminServer
    /// The admin API's own loop: /metrics, /debug/* and writes are answered promptly while the
    /// xDS loops are busy with a large push.
    let adminGroup: EventLoopGroup
    let watcher: RegistryWatcher?
    let tlsWatcher: TLSCertificateWatcher?
    /// `--store`: the registry in etcd.
    public let store: EtcdRegistryStore?

    public var xdsPort: UInt16 { grpc.port }
    public var adminPort: UInt16 { admin.port }

    public init(options: ServeOptions) throws {
        self.options = options
        Log.setLevel(options.logLevel)
        let metrics = XdsMetrics()
        var initial: RegistrySnapshot
        var watcher: RegistryWatcher?
        let serverBox = LateBox<DiscoveryServer>()
        let fileWriterBox = WriterSlot()
        if let path = options.registryPath {
            let w = RegistryWatcher(path: path, alreadyApplied: { fileWriterBox.writer?.alreadyApplied($0) ?? false },
                                    ownerWrites: { fileWriterBox.writer?.writes ?? 0 }) { result in
                // A change seen before the writer exists is applied once it does (below).
                guard let server = serverBox.value, let writer = fileWriterBox.writerOrMiss() else { return }
                switch result {
                case .success: Self.reloadFile(path, server: server, writer: writer, metrics: metrics)
                case let .failure(error): Self.registryInvalid(path, error, metrics)
                }
            }
            switch w.start() {
            case let .success(s): initial = s
            case let .failure(e):
                w.stop()
                throw e
            }
            watcher = w
        } else if options.storeURL != nil {
            initial = .empty  // until the store's first sync; ADS waits for it
        } else {
            initial = DemoRegistry.snapshot()
        }
        for warning in initial.warnings { Log.warn("registry_warning", ["message": warning]) }
        var dc = DiscoveryServerConfig()
        dc.defaultNamespace = options.defaultNamespace
        dc.pushThrottle = options.pushThrottle
        dc.pushWorkers = options.pushWorkers
        dc.debounce.after = options.debounceAfter
        dc.debounce.max = options.debounceMax
        dc.debounce.enableEDSDebounce = options.enableEDSDebounce
        dc.maxStreams = options.maxStreams
        dc.pushTrace = options.pushTrace
        dc.pushTraceCapacity = options.pushTraceCapacity
        let discovery = DiscoveryServer(config: dc, registry: initial, metrics: metrics)
        serverBox.value = discovery
        self.discovery = discovery
        self.watcher = watcher
        var store: EtcdRegistryStore?
        let writer: any RegistryWriter
        var missedFileChange = false
        if let url = options.storeURL {
            var sc = EtcdRegistryStore.Config()
            sc.prefix = options.storePrefix
            let s = try EtcdRegistryStore(url: url, config: sc, server: discovery)
            discovery.waitForRegistry { s.synced }
            store = s
            writer = s
        } else if let path = options.registryPath {
            let fw = FileRegistryWriter(path: path, server: discovery, applied: watcher?.takeInitialContent())
            missedFileChange = fileWriterBox.install(fw)
            writer = fw
        } else {
            writer = MemoryRegistryWriter(server: discovery)
        }
        self.store = store
        group = try EventLoopGroup(threads: options.ioThreads, backend: options.io)
        var gc = GRPCServerConfig()
        gc.host = options.xdsHost
        gc.port = options.xdsPort
        gc.h2.maxConcurrentStreams = options.maxConcurrentStreams
        gc.maxMessageSize = options.maxRecvMsgSize
        gc.maxConnections = options.maxConnections
        gc.socketSendBuffer = options.socketSendBuffer
        gc.sendTimeoutNanos = options.sendTimeoutNanos
        gc.maxConnectionAgeNanos = options.maxConnectionAgeNanos
        gc.maxConnectionAgeGraceNanos = options.maxConnectionAgeGraceNanos
        gc.plaintext = options.xdsPlaintext
        if let cert = options.tlsCertPath, let key = options.tlsKeyPath {
            let tc = TLSContext.Configuration(role: .server, certificatePath: cert, keyPath: key, trustPath: options.tlsClientCAPath)
            let holder: TLSContextHolder
            do {
                holder = TLSContextHolder(try TLSContext(tc))
            } catch {
                throw SocketError(operation: "TLS: " + error.description, errno: EINVAL)
            }
            var listener = GRPCServerConfig.TLSListener(host: options.xdsTLSHost, port: options.xdsTLSPort, contexts: holder)
            listener.handshakeTimeoutNanos = options.tlsHandshakeTimeoutNanos
            listener.onHandshake = { ok in (ok ? metrics.tlsHandshakes : metrics.tlsHandshakeFailures).inc() }
            gc.tls = listener
            tlsWatcher = TLSCertificateWatcher(holder: holder, configuration: tc, intervalNanos: options.tlsWatchIntervalNanos) { result in
                if case .failure = result { metrics.tlsReloadErrors.inc() }
            }
        } else {
            tlsWatcher = nil
        }
        discovery.start()
        if missedFileChange, let path = options.registryPath, let fw = fileWriterBox.writer {
            Self.reloadFile(path, server: discovery, writer: fw, metrics: metrics)
        }
        grpc = try GRPCServer(group: group, config: gc, onSendTimeout: { metrics.writeTimeouts.inc() },
                              onMaxConnectionAge: { metrics.connectionMaxAge.inc() }) { loop in
            ADSService(server: discovery, loop: loop)
        }
        var ac = AdminConfig()
        ac.host = options.adminHost
        ac.port = options.adminPort
        if let file = options.adminTokenFile {
            ac.token = try Self.readToken(file)
        }
        let storeRef = store
        let ready: @Sendable () -> Bool = { storeRef?.synced ?? true }
        var adminIO = IOLoopConfig()
        adminIO.threadName = "fp-admin"
        adminIO.receiveBufferCount = 16
        adminGroup = try EventLoopGroup(threads: 1, config: adminIO, backend: options.io)
        admin = try AdminServer(group: adminGroup, config: ac, handlers: AdminHandlers(server: discovery, token: ac.token, writer: writer, ready: ready))
        store?.start()
        tlsWatcher?.start()
        if options.xdsPlaintext {
            Log.info("listening", ["service": "xds", "address": "\(options.xdsHost):\(grpc.port)"])
        }
        if options.tlsEnabled {
            Log.info("listening", ["service": "xds-tls", "address": "\(options.xdsTLSHost):\(grpc.tlsPort)",
                                   "client_certificates": options.tlsClientCAPath == nil ? "not requested" : "required"])
        }
        Log.info("listening", ["service": "admin", "address": "\(options.adminHost):\(admin.port)"])
        Log.info("started", ["services": initial.count, "registry": options.registryPath ?? store.map { "etcd \($0.endpoints)" } ?? "demo",
                             "io_backend": group.backend.rawValue, "io_threads": options.ioThreads, "push_workers": options.pushWorkers,
                             "push_throttle": options.pushThrottle, "debounce_after": DurationText.format(options.debounceAfter),
                             "debounce_max": DurationText.format(options.debounceMax)])
    }

    public func stop() {
        tlsWatcher?.stop()
        watcher?.stop()
        store?.stop()
        discovery.stop()
        group.shutdown()
        adminGroup.shutdown()
        Log.info("stopped", [:])
    }

    /// SIGTERM: stop accepting, GOAWAY to every client, finish in-flight pushes (up to the drain
    /// duration), then stop.
    public func drainAndStop() {
        let t0 = MonotonicClock.nanos()
        Log.info("drain_start", ["connections": grpc.connectionCount, "drain_duration": DurationText.format(options.drainNanos)])
        watcher?.stop()
        store?.stop()
        grpc.beginDrain()
        let left = discovery.drain(timeoutNanos: options.drainNanos)
        Log.info("drain_done", ["seconds": MonotonicClock.seconds(since: t0), "pushes_unfinished": left])
        stop()
    }

    static func readToken(_ path: String) throws -> String {
        guard let f = fopen(path, "r") else { throw SocketError(operation: "read --admin-token-file \(path)", errno: errno) }
        defer { fclose(f) }
        var buf = [CChar](repeating: 0, count: 4096)
        let n = fread(&buf, 1, buf.count - 1, f)
        let token = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .split(whereSeparator: { $0 == "\n" || $0 == "\r" || $0 == " " }).first.map(String.init) ?? ""
        guard !token.isEmpty else { throw SocketError(operation: "--admin-token-file \(path) is empty", errno: EINVAL) }
        return token
    }
}

extension FastPilotServer {
    /// The watcher saw the file change: read it again under the admin writers' lock (what the
    /// watcher read may be older than a write that landed since) and apply it.
    static func reloadFile(_ path: String, server: DiscoveryServer, writer: FileRegistryWriter, metrics: XdsMetrics) {
        let before = server.registry
        switch writer.reload() {
        case let .success(snapshot):
            let diff = RegistryDiff(from: before, to: snapshot)
            Log.info("registry_loaded", ["file": path, "services": snapshot.count,
                                         "full_changes": diff.fullChanges.count, "endpoint_changes": diff.endpointChanges.count])
        case let .failure(error):
            registryInvalid(path, error, metrics)
        }
    }

    static func registryInvalid(_ path: String, _ error: RegistryError, _ metrics: XdsMetrics) {
        metrics.registryErrors.inc()
        Log.error("registry_invalid", ["file": path, "error": error.description, "action": "keeping the last good registry"])
    }
}

/// The file writer, which exists only after the watcher has started; remembers a change the
/// watcher reported before it did. Sendable: a Mutex.
final class WriterSlot: Sendable {
    private let state = Mutex<(writer: FileRegistryWriter?, missed: Bool)>((nil, false))

    var writer: FileRegistryWriter? { state.withLock { $0.writer } }

    /// The writer, or nil after noting that a change was missed.
    func writerOrMiss() -> FileRegistryWriter? {
        state.withLock { s in
            if s.writer == nil { s.missed = true }
            return s.writer
        }
    }

    /// Whether a change was missed before `w`.
    func install(_ w: FileRegistryWriter) -> Bool {
        state.withLock { s in
            s.writer = w
            return s.missed
        }
    }
}

/// A reference set once after creation (the registry callback needs the server it feeds).
final class LateBox<T: Sendable>: Sendable {
    private let storage = Mutex<T?>(nil)
    var value: T? {
        get { storage.withLock { $0 } }
        set { storage.withLock { $0 = newValue } }
    }
}
