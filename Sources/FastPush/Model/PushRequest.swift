/// Why a push happened (Istio's TriggerReason; the strings are Istio's, typo included).
public enum TriggerReason: String, Sendable, Hashable, CaseIterable {
    case endpoint, headlessendpoint, config, service, proxy, global, ambient, unknown, debug
    case secret, networks, proxyrequest, dependentresource = "depdendentresource", namespace, cluster, tag
}

extension TriggerReason {
    /// Position in `allCases`: the slot in ReasonStats.
    var slot: Int {
        switch self {
        case .endpoint: 0; case .headlessendpoint: 1; case .config: 2; case .service: 3
        case .proxy: 4; case .global: 5; case .ambient: 6; case .unknown: 7; case .debug: 8
        case .secret: 9; case .networks: 10; case .proxyrequest: 11; case .dependentresource: 12
        case .namespace: 13; case .cluster: 14; case .tag: 15
        }
    }
}

/// Istio's ReasonStats (`map[TriggerReason]int`) stored inline: merging two requests, which
/// the push queue does on every repeat enqueue, adds sixteen counters instead of allocating a
/// dictionary. Reads like a dictionary.
public struct ReasonStats: Sendable, Equatable, Hashable, ExpressibleByDictionaryLiteral, Sequence {
    private var counts = SIMD16<Int32>()

    public init() {}

    public init(dictionaryLiteral elements: (TriggerReason, Int)...) {
        for (r, n) in elements { counts[r.slot] &+= Int32(truncatingIfNeeded: n) }
    }

    public subscript(_ r: TriggerReason) -> Int? {
        get { counts[r.slot] == 0 ? nil : Int(counts[r.slot]) }
        set { counts[r.slot] = Int32(truncatingIfNeeded: newValue ?? 0) }
    }

    public var isEmpty: Bool { counts == SIMD16<Int32>() }
    public var count: Int { (0..<16).reduce(0) { $0 + (counts[$1] != 0 ? 1 : 0) } }
    public var keys: [TriggerReason] { map(\.key) }

    public mutating func add(_ other: ReasonStats) { counts &+= other.counts }

    public func makeIterator() -> IndexingIterator<[(key: TriggerReason, value: Int)]> {
        TriggerReason.allCases.compactMap { r in self[r].map { (key: r, value: $0) } }.makeIterator()
    }
}

/// What changed and what to push: Istio's model.PushRequest (R1.30: with the `Full` flag).
public struct PushRequest: Sendable {
    /// False: incremental (endpoint-only) push; CDS, LDS and RDS stay silent.
    public var full: Bool
    /// Regenerate everything for every proxy, bypassing scoping.
    public var forced: Bool
    /// What changed; nil and empty differ only for merging (≥1.26: empty means "nothing").
    public var configsUpdated: Set<ConfigKey>?
    /// Counts per reason, never deduplicated.
    public var reason: ReasonStats?
    /// When the request entered the push queue (monotonic nanoseconds; 0 = unset).
    public var start: UInt64
    /// The snapshot to push; nil while debouncing.
    public var push: PushContext?
    /// `configsUpdated` as incremental EDS scope, computed once when a push is published (nil
    /// after a merge or a narrowing: the generator computes it then).
    public var updatedHosts: UpdatedHosts?
    /// When the first config event of this request entered the debouncer (monotonic nanos;
    /// merges keep the earliest): where a push's trace and convergence time start.
    public var firstEvent: UInt64 = 0
    /// The published pushes this request stands for (PushTraces sequence numbers, merges keep
    /// the range); 0: not a traced broadcast.
    public var traceFrom: UInt64 = 0
    public var traceSeq: UInt64 = 0

    public init(full: Bool = false, forced: Bool = false, configsUpdated: Set<ConfigKey>? = nil,
                reason: ReasonStats? = nil, start: UInt64 = 0, push: PushContext? = nil) {
        self.full = full
        self.forced = forced
        self.configsUpdated = configsUpdated
        self.reason = reason
        self.start = start
        self.push = push
    }

    /// The debouncer's merge: receiver's start kept, flags ORed, reasons summed, configs
    /// united, push replaced only by a non-nil one.
    public mutating func merge(_ other: PushRequest?) {
        guard let other else { return }
        updatedHosts = nil
        if let o = other.reason {
            if reason == nil { reason = o } else { reason!.add(o) }
        }
        full = full || other.full
        forced = forced || other.forced
        if let p = other.push { push = p }
        configsUpdated = Self.union(configsUpdated, other.configsUpdated)
        mergeTrace(other)
    }

    /// The earliest first event and the whole range of traced pushes.
    mutating func mergeTrace(_ other: borrowing PushRequest) {
        if other.firstEvent != 0 && (firstEvent == 0 || other.firstEvent < firstEvent) { firstEvent = other.firstEvent }
        if other.traceFrom != 0 && (traceFrom == 0 || other.traceFrom < traceFrom) { traceFrom = other.traceFrom }
        if other.traceSeq > traceSeq { traceSeq = other.traceSeq }
    }

    /// The push queue's merge: like `merge`, but takes the other's push even when nil, and
    /// builds a new value (inputs are shared by every connection).
    public func copyMerge(_ other: PushRequest?) -> PushRequest {
        guard let other else { return self }
        var merged = self
        merged.absorb(other)
        return merged
    }

    /// `self = self.copyMerge(other)` in place: the push queue merges into a connection's
    /// private pending request. The key sets are shared whenever one side holds the other.
    public mutating func absorb(_ other: borrowing PushRequest) {
        updatedHosts = nil
        full = full || other.full
        forced = forced || other.forced
        if let o = other.reason {
            if reason == nil { reason = o } else { reason!.add(o) }
        }
        if other.configsUpdated != nil { configsUpdated = Self.union(configsUpdated, other.configsUpdated) }
        if push !== other.push { push = other.push }
        mergeTrace(other)
    }

    /// A new set only when neither side already holds the other: a repeat enqueue of the same
    /// push shares storage instead of allocating.
    static func union(_ a: Set<ConfigKey>?, _ b: Set<ConfigKey>?) -> Set<ConfigKey>? {
        guard let a else { return b }
        guard let b else { return a }
        if b.isSubset(of: a) { return a }
        if a.isSubset(of: b) { return b }
        return a.union(b)
    }

    /// nil-aware forms: `nil ⊕ x = x`, `x ⊕ nil = x`.
    public static func merge(_ a: PushRequest?, _ b: PushRequest?) -> PushRequest? {
        guard var a else { return b }
        a.merge(b)
        return a
    }

    public static func copyMerge(_ a: PushRequest?, _ b: PushRequest?) -> PushRequest? {
        guard let a else { return b }
        return a.copyMerge(b)
    }

    public var reasonSummary: String {
        guard let reason, !reason.isEmpty else { return "none" }
        return reason.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue):\($0.value)" }.joined(separator: ",")
    }
}
