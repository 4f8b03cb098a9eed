/// Follows the registry kept in etcd by list-then-watch: one Range of the prefix gives the whole
/// registry as of a revision, then a Watch from the next revision applies every change, in
/// order, so the registry served is always one etcd revision, never a partial view. A connection
/// that breaks resumes the watch from the last revision applied (on the next endpoint); a resume
/// point etcd has compacted away means listing again. Sans-I/O: what happened goes in, what to
/// do comes out; `EtcdRegistryStore` does the I/O.
public struct RegistrySync: Sendable {
    public enum Action: Equatable, Sendable {
        /// Range over the prefix (the newest revision).
        case list
        /// Watch the prefix from `fromRevision` (inclusive).
        case watch(fromRevision: Int64)
        /// The registry is now exactly these keys, as of `revision`.
        case replace([EtcdKeyValue], revision: Int64)
        /// Apply these events in order; the registry is then as of `revision`.
        case apply([EtcdEvent], revision: Int64)
        /// Drop the connection; connect (to the next endpoint) after the delay.
        case reconnect(afterNanos: UInt64)
    }

    public enum Phase: Equatable, Sendable { case disconnected, listing, watching }

    public private(set) var phase = Phase.disconnected
    /// The revision the applied registry is as of; 0 until the first list.
    public private(set) var revision: Int64 = 0
    /// Failures since the last success: the reconnect delay grows with them.
    public private(set) var failures = 0
    public let backoff: Backoff

    public init(backoff: Backoff = Backoff()) { self.backoff = backoff }

    /// The first list completed (`/ready` answers 200 from then on).
    public var synced: Bool { revision > 0 }

    /// Connected to an endpoint: list (first time, or after a compaction), else resume.
    public mutating func connected() -> [Action] {
        if revision == 0 {
            phase = .listing
            return [.list]
        }
        phase = .watching
        return [.watch(fromRevision: revision + 1)]
    }

    public mutating func listed(_ r: EtcdRangeResponse) -> [Action] {
        guard phase == .listing else { return [] }
        // A linearizable Range is never older than what was applied; a response that is (a
        // member that lags, on a serializable read) would roll the registry back: list again.
        guard r.header.revision >= revision, r.header.revision > 0 else { return failed() }
        revision = r.header.revision
        phase = .watching
        failures = 0
        return [.replace(r.kvs, revision: revision), .watch(fromRevision: revision + 1)]
    }

    public mutating func watched(_ w: EtcdWatchResponse) -> [Action] {
        guard phase == .watching else { return [] }
        if w.canceled {
            if w.compactRevision > 0 {
                // The resume point was compacted away: the events in between are lost.
                phase = .listing
                return [.list]
            }
            return failed()
        }
        failures = 0
        // Events at or below the applied revision were seen already (a resume that overlaps,
        // or a member replaying): dropped, so nothing is applied twice or out of order.
        let fresh = w.events.filter { $0.kv.modRevision > revision }
        guard let last = fresh.last else {
            // A progress notification: every event up to its revision was delivered. (The
            // "created" answer carries the current revision while the replay is still to come.)
            if !w.created && w.events.isEmpty && w.header.revision > revision { revision = w.header.revision }
            return []
        }
        revision = max(revision, last.kv.modRevision)
        return [.apply(fresh, revision: revision)]
    }

    /// The connection broke, a call failed or timed out.
    public mutating func failed() -> [Action] {
        phase = .disconnected
        failures += 1
        return [.reconnect(afterNanos: backoff.delay(afterFailures: failures))]
    }
}

/// Exponential backoff with jitter: `initial` doubled per failure up to `max`, each delay
/// spread by ±`jitter` so that replicas do not reconnect in step.
public struct Backoff: Sendable {
    public var initialNanos: UInt64 = 100_000_000
    public var maxNanos: UInt64 = 5_000_000_000
    public var jitter = 0.2
    /// [0, 1): the jitter's source (tests pin it).
    public var random: @Sendable () -> Double = { Double.random(in: 0..<1) }

    public init() {}

    public func delay(afterFailures n: Int) -> UInt64 {
        guard n > 0 else { return 0 }
        let base = min(Double(maxNanos), Double(initialNanos) * pow2(n - 1))
        return UInt64(base * (1 - jitter + 2 * jitter * random()))
    }

    private func pow2(_ k: Int) -> Double { k >= 62 ? Double(UInt64.max) : Double(UInt64(1) << UInt64(k)) }
}
