import Synchronization

/// How a DeltaDiscoveryRequest was read (delta-xds-semantics.md section 3, fastpilot's rules).
public struct DeltaRequestOutcome: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        /// First request of the type on this stream (or a reconnect): always answered.
        case initial
        /// The nonce of the last response.
        case ack
        /// error_detail set: recorded and counted, never answered for itself.
        case nack(String)
        /// A nonce of an older response: counted, and never taken as an ACK.
        case stale
        /// No nonce: only subscription changes.
        case spontaneous
    }

    public var kind: Kind
    /// The subscription changed (or names were listed): evaluate it against the newest
    /// PushContext, and answer if anything differs from what the client holds.
    public var evaluate: Bool
    /// Names sent whatever the client holds (every name it subscribed to in this request).
    public var force: SubscriptionSet?
    /// Answered even when there is nothing to send (the first request of a type).
    public var mustAnswer: Bool { kind == .initial }
}

/// The Delta request rules on one stream's watches. Pure: no I/O, no locks; the caller holds the
/// connection state. Differences from Istio, after delta-xds-semantics.md: subscription changes
/// are applied on stale nonces, ACKs and NACKs alike (never lost); a re-subscribed name is always
/// answered; `*` can be subscribed and unsubscribed later; names the client unsubscribes leave
/// `held` (so a name still in the wildcard goes out again, the spec's "ambiguous" case).
/// A request's names, interned: the subscribe list (with `*`), the unsubscribe list as sent,
/// and the initial_resource_versions as a VersionSet.
public struct DeltaRequestNames: Sendable {
    public var subscribe: Subscription
    public var unsubscribe: [String]
    public var claims: VersionSet

    public init(subscribe: Subscription, unsubscribe: [String], claims: VersionSet) {
        self.subscribe = subscribe
        self.unsubscribe = unsubscribe
        self.claims = claims
    }

    /// From a request: deferred lists are interned by their wire bytes (decoded once for all
    /// the streams that send the same ones).
    public init(_ r: DeltaDiscoveryRequest) throws(ProtoDecodingError) {
        unsubscribe = r.resourceNamesUnsubscribe
        if r.namesDeferred {
            subscribe = r.subscribeWire.isEmpty ? Subscription(names: .empty, star: false)
                : try SubscriptionSet.of(wire: r.subscribeWire, digest: r.subscribeDigest) { () throws(ProtoDecodingError) in
                    try r.decodedNames().subscribe
                }
            claims = try VersionSet.claimed(wire: r.initialWire, digest: r.initialDigest) { () throws(ProtoDecodingError) in
                try r.decodedNames().initial
            }
        } else {
            subscribe = Subscription(r.resourceNamesSubscribe)
            claims = VersionSet.claimed(r.initialResourceVersions)
        }
    }
}

/// The Delta request rules on one stream's watches. Pure: no I/O, no locks; the caller holds the
/// connection state. Differences from Istio, after delta-xds-semantics.md: subscription changes
/// are applied on stale nonces, ACKs and NACKs alike (never lost); a re-subscribed name is always
/// answered; `*` can be subscribed and unsubscribed later; names the client unsubscribes leave
/// `held` (so a name still in the wildcard goes out again, the spec's "ambiguous" case).
public enum DeltaRules {
    public static func process(_ r: DeltaDiscoveryRequest, type: XdsType, watched: inout Watches) -> DeltaRequestOutcome {
        // Tests and the fuzzer come here with plain arrays; the server interns first.
        let names = DeltaRequestNames(subscribe: Subscription(r.resourceNamesSubscribe), unsubscribe: r.resourceNamesUnsubscribe,
                                      claims: VersionSet.claimed(r.initialResourceVersions))
        return process(r, names: names, type: type, watched: &watched)
    }

    public static func process(_ r: DeltaDiscoveryRequest, names req: DeltaRequestNames, type: XdsType,
                               watched: inout Watches) -> DeltaRequestOutcome {
        let unsubscribe = req.unsubscribe
        guard var w = watched[type] else {
            if let err = r.errorDetail {
                // A NACK of nothing: counted, and no watch is made from it.
                return DeltaRequestOutcome(kind: .nack(message(err)), evaluate: false, force: nil)
            }
            var subscribed = req.subscribe.names
            // "*" is never a resource a client holds.
            var claims = req.claims.contains("*") ? req.claims.filter { $0 != "*" } : req.claims
            var star = req.subscribe.star
            if !unsubscribe.isEmpty {
                let dropped = Set(unsubscribe)
                if dropped.contains("*") { star = false }
                subscribed = subscribed.applying(subscribe: [], unsubscribe: unsubscribe)
                claims = claims.filter { !dropped.contains($0) }
            }
            let wildcard = type.isWildcardType && (star || req.subscribe.isEmpty)
            // Named types: a resource the client holds is one it is subscribed to (Istio). Names
            // asked for without a version claimed are sent, or for CDS and LDS reported removed
            // if they do not exist; claimed ones go out only if their version differs.
            let (names, fresh) = initialNames(subscribed, claims, addClaims: !wildcard)
            var watch = WatchedResource(type: type, subscription: Subscription(names: names, star: false))
            watch.wildcard = wildcard
            watch.held = claims
            watched[type] = watch
            return DeltaRequestOutcome(kind: .initial, evaluate: true, force: fresh)
        }

        let kind: DeltaRequestOutcome.Kind
        if let err = r.errorDetail {
            let msg = message(err)
            w.lastError = msg
            if !r.responseNonce.isEmpty && r.responseNonce == w.nonceSent {
                w.resend = union(w.resend, w.lastSent)
            } else if let held = w.held {
                // An older response was rejected and we no longer know which names it carried:
                // every held version becomes unknown, so the next response carries everything.
                w.held = VersionSet.of(sortedNames: held.names, versions: Array(repeating: 0, count: held.count))
            }
            kind = .nack(msg)
        } else if !r.responseNonce.isEmpty && r.responseNonce != w.nonceSent {
            kind = .stale
        } else if !r.responseNonce.isEmpty {
            w.nonceAcked = r.responseNonce
            w.lastError = nil
            kind = .ack
        } else {
            kind = .spontaneous
        }

        // Subscription changes, whatever the kind of request.
        var changed = false
        let add = req.subscribe.names
        if req.subscribe.star && type.isWildcardType && !w.wildcard { w.wildcard = true; changed = true }
        var droppedWildcard = false
        var remove: [String] = []
        for n in unsubscribe {
            if n == "*" {
                if w.wildcard { w.wildcard = false; changed = true; droppedWildcard = true }
            } else {
                remove.append(n)
            }
        }
        if !add.isEmpty || !remove.isEmpty {
            let names = w.names.applying(subscribe: add.names, unsubscribe: remove)
            if names !== w.names { w.names = names; changed = true }
        }
        if let held = w.held, !held.isEmpty, !remove.isEmpty || droppedWildcard {
            // Unsubscribed names leave what the client holds, without a removal (the spec allows
            // it; Envoy forgets them itself). Without the wildcard only explicit names stay.
            let gone = Set(remove)
            let now = held.filter { !gone.contains($0) && (!droppedWildcard || w.names.contains($0)) }
            if now !== held { w.held = now; changed = true }
        }
        watched[type] = w
        let force = add.isEmpty ? nil : add
        return DeltaRequestOutcome(kind: kind, evaluate: changed || force != nil, force: force)
    }

    static func message(_ err: RPCStatus) -> String { "code \(err.code): \(err.message)" }

    static func union(_ a: SubscriptionSet?, _ b: [String]) -> SubscriptionSet? {
        guard !b.isEmpty else { return a }
        guard let a, !a.isEmpty else { return SubscriptionSet.of(b) }
        return SubscriptionSet.of(a.names + b)
    }

    private static let initialMemo = Mutex<[(subscribed: SubscriptionSet, claims: VersionSet, addClaims: Bool,
                                              names: SubscriptionSet, fresh: SubscriptionSet?)]>([])

    /// A first request's subscription (the names asked for, plus for named types the claimed
    /// ones) and the names asked for without a claim. Reconnecting Envoys of one scope send the
    /// same sets: the last few answers are kept.
    static func initialNames(_ subscribed: SubscriptionSet, _ claims: VersionSet, addClaims: Bool) -> (SubscriptionSet, SubscriptionSet?) {
        if claims.isEmpty { return (subscribed, subscribed.isEmpty ? nil : subscribed) }
        if let hit = initialMemo.withLock({ m in
            m.first { $0.subscribed === subscribed && $0.claims === claims && $0.addClaims == addClaims }
        }) { return (hit.names, hit.fresh) }
        let names = addClaims ? subscribed.applying(subscribe: claims.names, unsubscribe: []) : subscribed
        let claimed = Set(claims.names)
        let freshNames = subscribed.names.filter { !claimed.contains($0) }
        let fresh = freshNames.isEmpty ? nil : SubscriptionSet.of(freshNames)
        initialMemo.withLock { m in
            if m.count >= 16 { m.removeFirst() }
            m.append((subscribed, claims, addClaims, names, fresh))
        }
        return (names, fresh)
    }
}
