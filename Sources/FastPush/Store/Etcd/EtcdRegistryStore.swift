import Synchronization

/// The registry kept in etcd (`--store etcd://...`): one key per ServiceEntry,
/// `PREFIX serviceentries/NS/NAME`, whose value is the object's JSON (a registry file item).
/// `RegistrySync` follows it by list-then-watch into the DiscoveryServer, through the same diff
/// as the registry file; admin writes are compare-and-swap transactions, answered once this
/// replica's own watch has applied their revision. While etcd is unreachable the last registry
/// applied keeps being served.
///
/// `@unchecked Sendable`: the sync state, the client and the write waiters are confined to the
/// store's own loop thread (`loop`); calls from other threads hop onto it with `execute`. The
/// entries, which the admin API reads from its own threads, sit behind a Mutex.
public final class EtcdRegistryStore: RegistryWriter, @unchecked Sendable {
    public struct Config: Sendable {
        public var prefix = "/fastpilot/"
        public var requestTimeoutNanos: UInt64 = 5_000_000_000
        /// How long a write waits for this replica's watch to apply it.
        public var applyTimeoutNanos: UInt64 = 5_000_000_000
        public var backoff = Backoff()
        /// A linearizable read this often proves the member still reaches the quorum; one that
        /// fails or takes longer than `probeTimeoutNanos` moves to the next endpoint (a hung or
        /// partitioned member keeps its TCP connection alive but answers nothing).
        public var probeIntervalNanos: UInt64 = 5_000_000_000
        public var probeTimeoutNanos: UInt64 = 3_000_000_000
        public init() {}
    }

    /// One ServiceEntry as stored.
    struct Entry {
        let object: JSONValue
        let services: [Service]
        let createRevision: Int64
        let modRevision: Int64
    }

    struct Metrics: Sendable {
        let connected: Gauge
        let revision: Gauge
        let events: Counter
        let errors: Counter

        init(_ registry: MetricsRegistry) {
            connected = registry.register(Gauge("fastpilot_store_connected", "1 while the registry store (etcd) is connected and followed, else 0."))
            revision = registry.register(Gauge("fastpilot_store_revision", "The store revision the served registry is as of."))
            events = registry.register(Counter("fastpilot_store_events", "Store watch events applied to the registry."))
            errors = registry.register(Counter("fastpilot_store_errors", "Store failures: connections, calls and watches that failed or timed out."))
        }
    }

    public let endpoints: String
    let config: Config
    let server: DiscoveryServer
    let group: EventLoopGroup
    let loop: any IOLoop
    let prefixBytes: [UInt8]
    let metrics: Metrics
    private let entries = Mutex<[String: Entry]>([:])
    private let syncedFlag = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    // Loop-confined:
    private let client: EtcdClient
    private var sync: RegistrySync
    private var waiters: [(revision: Int64, fire: (Bool) -> Void)] = []
    /// A reconnect is scheduled: further failures of the old connection are the same failure.
    private var reconnecting = false

    /// Does not connect yet (`start`).
    public init(url: String, config: Config, server: DiscoveryServer) throws {
        guard let eps = EtcdClient.Endpoint.parse(url) else {
            throw SocketError(operation: "--store \(url): expected etcd://HOST:PORT[,HOST:PORT...]", errno: 22)
        }
        endpoints = eps.map(\.description).joined(separator: ",")
        self.config = config
        self.server = server
        prefixBytes = Array(config.prefix.utf8) + Array("serviceentries/".utf8)
        metrics = Metrics(server.metrics.registry)
        var io = IOLoopConfig()
        io.threadName = "fp-store"
        io.receiveBufferCount = 16
        group = try EventLoopGroup(threads: 1, config: io)
        loop = group.loops[0]
        client = EtcdClient(endpoints: eps, loop: loop, requestTimeoutNanos: config.requestTimeoutNanos)
        sync = RegistrySync(backoff: config.backoff)
    }

    /// The first list has been applied.
    public var synced: Bool { syncedFlag.load(ordering: .acquiring) }

    public func start() {
        loop.execute { [self] in
            client.onConnectionLost = { [unowned self] why in fail("connection", why) }
            connect()
        }
    }

    /// Closes the connection and ends the store's loop; waits. Safe to call more than once.
    public func stop() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let done = Semaphore()
        loop.execute { [self] in
            client.close()
            for w in waiters { w.fire(false) }
            waiters = []
            done.signal()
        }
        done.wait()
        group.shutdown()
    }

    // MARK: following (loop thread)

    private func connect() {
        guard !stopping.load(ordering: .acquiring) else { return }
        reconnecting = false
        do {
            try client.connect()
        } catch {
            fail("connect", "\(client.endpoint): \(error)")
            return
        }
        Log.info("store_connected", ["endpoint": client.endpoint, "revision": sync.revision])
        perform(sync.connected())
        probe(generation: client.generation)
    }

    /// Every probe interval while this connection lives: a linearizable one-key read.
    private func probe(generation gen: Int) {
        loop.schedule(afterNanos: config.probeIntervalNanos) { [self] in
            guard gen == client.generation, !stopping.load(ordering: .acquiring), !reconnecting else { return }
            var r = EtcdRangeRequest(key: prefixBytes, rangeEnd: Etcd.prefixEnd(prefixBytes))
            r.limit = 1
            r.keysOnly = true
            client.call(Etcd.rangePath, r, timeoutNanos: config.probeTimeoutNanos) { [self] (result: Result<EtcdRangeResponse, EtcdClient.Failure>) in
                guard gen == client.generation else { return }
                switch result {
                case .success: probe(generation: gen)
                case let .failure(e): fail("probe", e.description)
                }
            }
        }
    }

    private func fail(_ what: String, _ why: String) {
        guard !stopping.load(ordering: .acquiring), !reconnecting else { return }
        metrics.errors.inc()
        Log.warn("store_error", ["store": "etcd", "during": what, "endpoint": client.endpoint, "error": why,
                                 "action": "serving the registry as of revision \(sync.revision); reconnecting"])
        perform(sync.failed())
    }

    private func perform(_ actions: [RegistrySync.Action]) {
        for action in actions {
            switch action {
            case .list:
                let gen = client.generation
                client.range(EtcdRangeRequest(key: prefixBytes, rangeEnd: Etcd.prefixEnd(prefixBytes))) { [self] result in
                    guard gen == client.generation else { return }
                    switch result {
                    case let .success(r): perform(sync.listed(r))
                    case let .failure(e): fail("list", e.description)
                    }
                }
            case let .watch(from):
                let gen = client.generation
                let create = EtcdWatchCreateRequest(key: prefixBytes, rangeEnd: Etcd.prefixEnd(prefixBytes), startRevision: from,
                                                    progressNotify: true)
                client.watch(create, onResponse: { [self] w in
                    guard gen == client.generation else { return }
                    if w.created { metrics.connected.set(1) }
                    perform(sync.watched(w))
                }, onEnd: { [self] e in
                    guard gen == client.generation else { return }
                    fail("watch", e.description)
                })
            case let .replace(kvs, revision):
                replace(kvs, revision: revision)
            case let .apply(events, revision):
                apply(events, revision: revision)
            case let .reconnect(delay):
                reconnecting = true
                metrics.connected.set(0)
                client.close()
                client.advance()
                loop.schedule(afterNanos: delay) { [self] in connect() }
            }
        }
    }

    /// The entry name (`NS/NAME`) of a key under the prefix, or nil.
    private func entryName(_ key: [UInt8]) -> String? {
        guard key.count > prefixBytes.count, key.starts(with: prefixBytes) else { return nil }
        return String(decoding: key[prefixBytes.count...], as: UTF8.self)
    }

    /// Parses one stored value; a bad one is logged and counted, and nil.
    private func decode(_ kv: EtcdKeyValue) -> Entry? {
        guard let name = entryName(kv.key) else { return nil }
        let source = "etcd key \(String(decoding: kv.key, as: UTF8.self)) (revision \(kv.modRevision))"
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        do {
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw RegistryError(kind: .invalid, file: source, "the key must end in serviceentries/NAMESPACE/NAME")
            }
            let snapshot = try ServiceEntryParser.parse(kv.value, source: source)
            if let wrong = snapshot.services.first(where: { $0.namespace != parts[0] || $0.configName != parts[1] }) {
                throw RegistryError(kind: .invalid, file: source, "the object is \(wrong.namespace)/\(wrong.configName), the key says \(name)")
            }
            guard let object = try? JSONReader.parse(kv.value), case .object = object else {
                throw RegistryError(kind: .invalid, file: source, "expected one ServiceEntry object")
            }
            return Entry(object: object, services: snapshot.services, createRevision: kv.createRevision, modRevision: kv.modRevision)
        } catch {
            server.metrics.registryErrors.inc()
            Log.warn("registry_invalid", ["store": "etcd", "key": String(decoding: kv.key, as: UTF8.self), "error": "\(error)",
                                          "action": "key skipped; the last good content of it, if any, is kept"])
            return nil
        }
    }

    private func replace(_ kvs: [EtcdKeyValue], revision: Int64) {
        var fresh: [String: Entry] = [:]
        let previous = entries.withLock { $0 }
        for kv in kvs {
            guard let name = entryName(kv.key) else { continue }
            if let e = decode(kv) { fresh[name] = e } else if let old = previous[name] { fresh[name] = old }
        }
        entries.withLock { $0 = fresh }
        // The first sync admits ADS streams: its PushContext is built before that, not after
        // the debounce (a stream admitted in between was answered from the empty registry).
        let diff = server.updateRegistry(snapshot(fresh), immediate: !syncedFlag.load(ordering: .acquiring))
        applied(revision: revision, events: 0)
        if !syncedFlag.exchange(true, ordering: .acquiringAndReleasing) {
            Log.info("store_synced", ["store": "etcd", "revision": revision, "entries": fresh.count, "services": server.registry.count])
        } else {
            Log.info("store_listed", ["store": "etcd", "revision": revision, "entries": fresh.count,
                                      "full_changes": diff.fullChanges.count, "endpoint_changes": diff.endpointChanges.count])
        }
    }

    private func apply(_ events: [EtcdEvent], revision: Int64) {
        let current = entries.withLock { current -> [String: Entry] in
            for e in events {
                guard let name = entryName(e.kv.key) else { continue }
                switch e.type {
                case .put: if let entry = decode(e.kv) { current[name] = entry }
                case .delete: current[name] = nil
                }
            }
            return current
        }
        let diff = server.updateRegistry(snapshot(current))
        metrics.events.inc(events.count)
        Log.debug("store_events", ["events": events.count, "revision": revision,
                                   "full_changes": diff.fullChanges.count, "endpoint_changes": diff.endpointChanges.count])
        applied(revision: revision, events: events.count)
    }

    /// The registry of these entries: oldest entry first, so that of two entries claiming one
    /// host in a namespace the older one wins, as in Istio.
    private func snapshot(_ e: [String: Entry]) -> RegistrySnapshot {
        let ordered = e.sorted { ($0.value.createRevision, $0.key) < ($1.value.createRevision, $1.key) }
        return RegistrySnapshot(services: ordered.flatMap(\.value.services))
    }

    private func applied(revision: Int64, events: Int) {
        metrics.revision.set(Int(revision))
        guard !waiters.isEmpty else { return }
        var left: [(revision: Int64, fire: (Bool) -> Void)] = []
        for w in waiters { if w.revision <= revision { w.fire(true) } else { left.append(w) } }
        waiters = left
    }

    /// Runs `then(true)` once the registry is as of `revision`, or `then(false)` after the
    /// apply timeout.
    private func whenApplied(_ revision: Int64, _ then: @escaping (Bool) -> Void) {
        if sync.revision >= revision { then(true); return }
        var fired = false
        let once: (Bool) -> Void = { ok in
            guard !fired else { return }
            fired = true
            then(ok)
        }
        waiters.append((revision, once))
        loop.schedule(afterNanos: config.applyTimeoutNanos) { once(false) }
    }

    // MARK: RegistryWriter (any thread)

    private func key(_ namespace: String, _ name: String) -> [UInt8] { prefixBytes + Array("\(namespace)/\(name)".utf8) }

    static func rendered(_ object: JSONValue, _ revision: Int64) -> String {
        object.setting(["metadata", "resourceVersion"], to: .string(String(revision))).serialized() + "\n"
    }

    /// The compare for `expected` ("0": the key must not exist).
    private func guardOn(_ key: [UInt8], _ expected: String?) throws(WriteRefusal) -> [EtcdCompare] {
        guard let expected else { return [] }
        guard let rev = Int64(expected), rev >= 0 else { throw WriteRefusal(400, "resourceVersion \"\(expected)\" is not a revision") }
        return [EtcdCompare(key: key, .equal, .modRevision(rev))]
    }

    public func put(_ entry: EntryWrite, done: @escaping @Sendable (WriteOutcome) -> Void) {
        if let owner = server.hostOwner(of: entry.services, except: entry.namespace, entry.name) {
            return done(.refused(status: 409, message: "host \(owner.hostname) in namespace \(owner.namespace) belongs to ServiceEntry \(owner.namespace)/\(owner.configName)"))
        }
        let k = key(entry.namespace, entry.name)
        let compare: [EtcdCompare]
        do { compare = try guardOn(k, entry.expectedVersion) } catch { return done(.refused(status: error.status, message: error.message)) }
        let value = Array(entry.object.serialized().utf8)
        let txn = EtcdTxnRequest(compare: compare, success: [.put(EtcdPutRequest(key: k, value: value))],
                                 failure: [.range(EtcdRangeRequest(key: k))])
        write(txn, expected: entry.expectedVersion, name: "\(entry.namespace)/\(entry.name)", done: done) { revision in
            .applied(body: Self.rendered(entry.object, revision))
        }
    }

    public func delete(namespace: String, name: String, expectedVersion: String?, done: @escaping @Sendable (WriteOutcome) -> Void) {
        let k = key(namespace, name)
        let compare: [EtcdCompare]
        do { compare = try guardOn(k, expectedVersion) } catch { return done(.refused(status: error.status, message: error.message)) }
        let txn = EtcdTxnRequest(compare: compare, success: [.deleteRange(EtcdDeleteRangeRequest(key: k))],
                                 failure: [.range(EtcdRangeRequest(key: k))])
        write(txn, expected: expectedVersion, name: "\(namespace)/\(name)", done: done) { _ in
            .applied(body: "{\"deleted\":\(JSONText.quote("\(namespace)/\(name)"))}\n")
        }
    }

    /// Runs the transaction, then answers once this replica applied it.
    private func write(_ txn: EtcdTxnRequest, expected: String?, name: String, done: @escaping @Sendable (WriteOutcome) -> Void,
                       answer: @escaping @Sendable (Int64) -> WriteOutcome) {
        loop.execute { [self] in
            guard client.isConnected else {
                done(.refused(status: 503, message: "the registry store (etcd) is unreachable; nothing was written"))
                return
            }
            client.txn(txn) { [self] result in
                switch result {
                case let .failure(e):
                    if case .unavailable = e { fail("write", e.description) } else { metrics.errors.inc() }
                    done(.refused(status: 503, message: "the registry store (etcd \(client.endpoint)) did not confirm the write: \(e); "
                                  + "it may or may not have been applied: read it back before writing again"))
                case let .success(r):
                    guard r.succeeded else {
                        var stored = "none (the entry does not exist)"
                        if case let .range(rr)? = r.responses.first, let kv = rr.kvs.first { stored = String(kv.modRevision) }
                        done(.refused(status: 409, message: "\(name): resourceVersion \(expected ?? "?") does not match the stored one: \(stored)"))
                        return
                    }
                    if case let .deleteRange(d)? = r.responses.first, d.deleted == 0 {
                        done(.refused(status: 404, message: "no ServiceEntry \(name)"))
                        return
                    }
                    let revision = r.header.revision
                    whenApplied(revision) { ok in
                        done(ok ? answer(revision)
                             : .refused(status: 504, message: "\(name) was written at revision \(revision), but this replica has not applied it yet"))
                    }
                }
            }
        }
    }

    public func get(namespace: String, name: String) -> String? {
        entries.withLock { $0["\(namespace)/\(name)"] }.map { Self.rendered($0.object, $0.modRevision).trimmingTrailingNewline + "\n" }
    }

    public func list() -> String {
        let all = entries.withLock { $0 }
        let items = all.keys.sorted().map { Self.rendered(all[$0]!.object, all[$0]!.modRevision).trimmingTrailingNewline }
        return "{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[\(items.joined(separator: ","))]}\n"
    }
}

/// A write refused before it reached the store.
struct WriteRefusal: Error {
    let status: Int
    let message: String
    init(_ status: Int, _ message: String) { self.status = status; self.message = message }
}
