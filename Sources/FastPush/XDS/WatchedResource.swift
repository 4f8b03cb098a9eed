/// What one stream watches of one type, and where its ACKs stand (Istio's WatchedResource).
public struct WatchedResource: Sendable {
    public let type: XdsType
    public var names: SubscriptionSet
    /// CDS/LDS subscribed with no names or "*": everything the proxy can see.
    public var wildcard: Bool
    public var nonceSent = ""
    public var nonceAcked = ""
    public var versionSent = ""
    public var versionAcked = ""
    /// Set on EDS when CDS is (re)requested: Envoy waits for EDS to finish warming clusters,
    /// so the next EDS ACK is answered (envoyproxy/envoy#13009).
    public var alwaysRespond = false
    public var lastError: String?
    /// Wall-clock seconds of the last response, for debug output.
    public var lastSendTime: Double = 0
    /// The PushContext version of the last complete (non-partial) response: older responses
    /// still in flight from a worker are dropped instead of rolling the client back.
    public var lastFullVersion: UInt64 = 0
    /// Hash of the last response body: a push identical to it is not sent again.
    public var lastBodyHash: UInt64?
    /// Digest of the last request's resource_names on the wire: an identical ACK skips decoding.
    public var namesDigest: UInt64 = 0
    /// Set by a NACK: the client may lack what it rejected, so the next response of this type
    /// carries the complete set (not only what changed), and heals it.
    public var needsComplete = false

    // Delta streams only (nil or empty on SotW). `names` holds the explicit subscription and
    // `lastFullVersion` the PushContext version of `held`.

    /// What the client holds, as far as the server knows: set when a response is stamped.
    public var held: VersionSet?
    /// Names to send on the next response whatever their version: what the client NACKed, or
    /// the load assignment of a cluster it must warm again.
    public var resend: SubscriptionSet?
    /// Names the last response carried: a NACK of it puts them in `resend`.
    public var lastSent: [String] = []

    public init(type: XdsType, names: [String]) {
        self.init(type: type, subscription: Subscription(names))
    }

    public init(type: XdsType, subscription: Subscription) {
        self.type = type
        self.names = subscription.names
        self.wildcard = type.isWildcardType && (subscription.names.isEmpty || subscription.star)
    }
}

/// How a request was read (Istio's ShouldRespond).
public enum RequestKind: Equatable, Sendable {
    /// First request on the stream for this type, or a reconnect: respond.
    case initial
    /// ACK of the last response. `respond` when the subscription grew (or warming).
    case ack(respond: Bool)
    /// NACK: record the error, never answer (that would loop).
    case nack(String)
    /// Nonce of an older response: ignore.
    case stale
    /// No names for a non-wildcard type: drop the watch.
    case unsubscribe

    public var respond: Bool {
        switch self {
        case .initial: true
        case let .ack(r): r
        default: false
        }
    }
}

/// The SotW request rules of istio-push-semantics.md section 8.2, on one stream's watches.
/// Pure: no I/O, no locks; the caller holds the connection state.
public enum SotWRules {
    /// `subscription`: the request's names, already interned (else read from `request`).
    public static func process(_ request: DiscoveryRequest, type: XdsType, subscription: Subscription? = nil,
                               watched: inout Watches) -> RequestKind {
        if let err = request.errorDetail {
            let msg = "code \(err.code): \(err.message)"
            watched[type]?.lastError = msg
            watched[type]?.needsComplete = true
            return .nack(msg)
        }
        let empty = subscription?.isEmpty ?? request.resourceNames.isEmpty
        if empty && !type.isWildcardType {
            watched[type] = nil
            return .unsubscribe
        }
        guard let previous = watched[type], !request.responseNonce.isEmpty else {
            watched[type] = WatchedResource(type: type, subscription: subscription ?? Subscription(request.resourceNames))
            if type == .cds { watched[.eds]?.alwaysRespond = true }
            return .initial
        }
        guard request.responseNonce == previous.nonceSent else { return .stale }
        var w = previous
        w.lastError = nil
        w.nonceAcked = request.responseNonce
        w.versionAcked = request.versionInfo
        // Almost every ACK repeats the subscription in the same order (an Envoy EDS ACK lists
        // every cluster): compare in place before re-sorting and interning it.
        if let subscription {
            let updated = WatchedResource(type: type, subscription: subscription)
            w.names = updated.names
            w.wildcard = updated.wildcard
        } else if request.resourceNames != previous.names.names {
            let updated = WatchedResource(type: type, names: request.resourceNames)
            w.names = updated.names
            w.wildcard = updated.wildcard
        }
        var respond = false
        if w.alwaysRespond {
            w.alwaysRespond = false
            respond = true
        } else if w.names != previous.names || w.wildcard != previous.wildcard {
            // Only removals on a non-wildcard type need no answer: absence is not deletion there.
            let added = !w.names.nameSet.isSubset(of: previous.names.nameSet) || (w.wildcard && !previous.wildcard)
            respond = type.isWildcardType || added
        }
        watched[type] = w
        return .ack(respond: respond)
    }
}

/// A stream's watches, one slot per type, stored inline: cheaper per stream than a dictionary
/// (tens of thousands of streams each hold one). Reads like `[XdsType: WatchedResource]`.
public struct Watches: Sendable, ExpressibleByDictionaryLiteral {
    private var cds: WatchedResource?
    private var eds: WatchedResource?
    private var lds: WatchedResource?
    private var rds: WatchedResource?

    public init() {}

    public init(dictionaryLiteral elements: (XdsType, WatchedResource)...) {
        for (t, w) in elements { self[t] = w }
    }

    public subscript(_ t: XdsType) -> WatchedResource? {
        get {
            switch t { case .cds: cds; case .eds: eds; case .lds: lds; case .rds: rds }
        }
        set {
            switch t {
            case .cds: cds = newValue
            case .eds: eds = newValue
            case .lds: lds = newValue
            case .rds: rds = newValue
            }
        }
    }
}
