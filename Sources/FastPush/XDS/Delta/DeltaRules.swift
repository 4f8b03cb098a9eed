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
public enum DeltaRules {
    public static func process(_ r: DeltaDiscoveryRequest, type: XdsType, watched: inout Watches) -> DeltaRequestOutcome {
        let subscribe = r.resourceNamesSubscribe, unsubscribe = r.resourceNamesUnsubscribe
        guard var w = watched[type] else {
            if let err = r.errorDetail {
                // A NACK of nothing: counted, and no watch is made from it.
                return DeltaRequestOutcome(kind: .nack(message(err)), evaluate: false, force: nil)
            }
            let dropped = Set(unsubscribe)
            let star = subscribe.contains("*") && !dropped.contains("*")
            let wildcard = type.isWildcardType && (star || subscribe.isEmpty)
            var names = subscribe.filter { $0 != "*" && !dropped.contains($0) }
            let claims = r.initialResourceVersions.filter { !dropped.contains($0.name) && $0.name != "*" }
            if !wildcard {
                // Named types: a resource the client holds is one it is subscribed to (Istio).
                names += claims.map(\.name)
            }
            var watch = WatchedResource(type: type, subscription: Subscription(names: SubscriptionSet.of(names), star: false))
            watch.wildcard = wildcard
            watch.held = VersionSet.claimed(claims)
            watched[type] = watch
            // Names asked for without a version claimed: sent, or for CDS and LDS reported
            // removed if they do not exist. Claimed ones go out only if their version differs.
            let claimed = Set(claims.map(\.name))
            let fresh = subscribe.filter { $0 != "*" && !dropped.contains($0) && !claimed.contains($0) }
            return DeltaRequestOutcome(kind: .initial, evaluate: true, force: fresh.isEmpty ? nil : SubscriptionSet.of(fresh))
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
        var add: [String] = [], remove: [String] = []
        for n in subscribe {
            if n == "*" {
                if type.isWildcardType && !w.wildcard { w.wildcard = true; changed = true }
            } else {
                add.append(n)
            }
        }
        var droppedWildcard = false
        for n in unsubscribe {
            if n == "*" {
                if w.wildcard { w.wildcard = false; changed = true; droppedWildcard = true }
            } else {
                remove.append(n)
            }
        }
        if !add.isEmpty || !remove.isEmpty {
            let names = w.names.applying(subscribe: add, unsubscribe: remove)
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
        let force = add.isEmpty ? nil : SubscriptionSet.of(add)
        return DeltaRequestOutcome(kind: kind, evaluate: changed || force != nil, force: force)
    }

    static func message(_ err: RPCStatus) -> String { "code \(err.code): \(err.message)" }

    static func union(_ a: SubscriptionSet?, _ b: [String]) -> SubscriptionSet? {
        guard !b.isEmpty else { return a }
        guard let a, !a.isEmpty else { return SubscriptionSet.of(b) }
        return SubscriptionSet.of(a.names + b)
    }
}
