/// Why a push happened (Istio's TriggerReason; the strings are Istio's, typo included).
public enum TriggerReason: String, Sendable, Hashable, CaseIterable {
    case endpoint, headlessendpoint, config, service, proxy, global, ambient, unknown, debug
    case secret, networks, proxyrequest, dependentresource = "depdendentresource", namespace, cluster, tag
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
    public var reason: [TriggerReason: Int]?
    /// When the request entered the push queue (monotonic nanoseconds; 0 = unset).
    public var start: UInt64
    /// The snapshot to push; nil while debouncing.
    public var push: PushContext?

    public init(full: Bool = false, forced: Bool = false, configsUpdated: Set<ConfigKey>? = nil,
                reason: [TriggerReason: Int]? = nil, start: UInt64 = 0, push: PushContext? = nil) {
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
        if other.reason != nil {
            var r = reason ?? [:]
            for (k, v) in other.reason! { r[k, default: 0] += v }
            reason = r
        }
        full = full || other.full
        forced = forced || other.forced
        if let p = other.push { push = p }
        if let cu = other.configsUpdated {
            if configsUpdated == nil { configsUpdated = cu } else { configsUpdated!.formUnion(cu) }
        }
    }

    /// The push queue's merge: like `merge`, but takes the other's push even when nil, and
    /// builds a new value (inputs are shared by every connection).
    public func copyMerge(_ other: PushRequest?) -> PushRequest {
        guard let other else { return self }
        var reason: [TriggerReason: Int]?
        if self.reason != nil || other.reason != nil {
            var r: [TriggerReason: Int] = [:]
            for (k, v) in self.reason ?? [:] { r[k, default: 0] += v }
            for (k, v) in other.reason ?? [:] { r[k, default: 0] += v }
            reason = r
        }
        var cu: Set<ConfigKey>?
        if configsUpdated != nil || other.configsUpdated != nil {
            cu = (configsUpdated ?? []).union(other.configsUpdated ?? [])
        }
        return PushRequest(full: full || other.full, forced: forced || other.forced, configsUpdated: cu,
                           reason: reason, start: start, push: other.push)
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

    /// Only a client request (reason == {proxyrequest}).
    public var isRequest: Bool { reason?.count == 1 && reason?[.proxyrequest] != nil }

    /// Whether every updated key is of `kind` (and there is at least one).
    public func onlyHasConfigs(of kind: ConfigKey.Kind) -> Bool {
        guard let cu = configsUpdated, !cu.isEmpty else { return false }
        return cu.allSatisfy { $0.kind == kind }
    }

    public var reasonSummary: String {
        guard let reason, !reason.isEmpty else { return "none" }
        return reason.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue):\($0.value)" }.joined(separator: ",")
    }
}
