/// One simulated Envoy on a Delta ADS stream (DeltaAggregatedResources), as Envoy's delta mux
/// behaves: wildcard CDS, EDS subscribed by name for the clusters it holds, wildcard LDS, RDS by
/// name for the routes its listeners name; every response ACKed by nonce (with the node, which
/// Envoy copies into every request); subscription changes sent as subscribe/unsubscribe lists.
/// It keeps what it holds (name -> version) per type, so that a reconnect sends
/// `initial_resource_versions` as Envoy does. Loop-thread only.
public final class DeltaClientStream: ADSLoadStream {
    public let index: Int
    let nodeField: [UInt8]
    let send: ([UInt8]) -> Void
    /// Shared by the streams of one loop: most streams move from the same held state to the same
    /// next one on the same response body.
    public var transitions: DeltaTransitions?
    private var types: [TypeState] = Array(repeating: TypeState(), count: XdsType.allCases.count)
    public private(set) var syncedAt: UInt64 = 0
    public private(set) var bytesReceived = 0
    public private(set) var messagesReceived = 0
    public private(set) var error: String?
    public var onResponse: ((XdsType, String, UInt64) -> Void)?
    public var onSynced: (() -> Void)?

    struct TypeState {
        var names: [String] = []
        var requested = false
        var version = ""
        var responses = 0
        var held = DeltaHeld.empty
    }

    public init(index: Int, node: Node, send: @escaping ([UInt8]) -> Void) {
        self.index = index
        var w = ProtoWriter(capacity: node.protoSize + 8)
        w.writeMessage(field: 1, node)
        self.nodeField = w.toArray()
        self.send = send
    }

    public func version(_ t: XdsType) -> String { types[t.rawValue].version }
    public func requested(_ t: XdsType) -> Bool { types[t.rawValue].requested }
    public var edsNames: [String] { types[XdsType.eds.rawValue].names }
    public var isSynced: Bool { syncedAt != 0 }
    /// What the stream holds of `t`: name -> version.
    public func held(_ t: XdsType) -> [String: String] { types[t.rawValue].held.versions }

    public func start() {
        let reconnecting = types.contains { !$0.held.versions.isEmpty }
        guard reconnecting else {
            types[XdsType.cds.rawValue].requested = true
            request(.cds, subscribe: [], initial: [:])
            return
        }
        // A reconnect: every type the stream had, in subscription order, with what it holds.
        for t in XdsType.pushOrder where types[t.rawValue].requested {
            let s = types[t.rawValue]
            request(t, subscribe: t.isWildcardType ? [] : s.names, initial: s.held.versions)
        }
    }

    /// The stream is gone: it will start again on a new one, keeping what it holds.
    public func prepareReconnect() {
        syncedAt = 0
        for i in types.indices { types[i].responses = 0 }
    }

    public func receive(_ message: UnsafeRawBufferPointer, now: UInt64) {
        bytesReceived += message.count
        messagesReceived += 1
        let view: DeltaResponseView
        do { view = try DeltaResponseView(message) } catch {
            self.error = "malformed delta response: \(error)"
            return
        }
        guard let type = XdsType(typeURL: view.typeURL) else {
            error = "delta response with unknown type_url \(view.typeURL)"
            return
        }
        var s = types[type.rawValue]
        let before = s.held
        do {
            s.held = try transitions?.next(from: before, type: type, digest: view.digest, message: message)
                ?? DeltaHeld.applying(message, to: before, type: type)
        } catch {
            self.error = "malformed delta resource: \(error)"
            return
        }
        s.version = view.systemVersionInfo
        s.responses += 1
        types[type.rawValue] = s
        request(type, nonce: view.nonce)
        switch type {
        case .cds: follow(.eds, s.held.followed)
        case .eds:
            if !types[XdsType.lds.rawValue].requested {
                types[XdsType.lds.rawValue].requested = true
                request(.lds, subscribe: [], initial: [:])
            }
        case .lds: follow(.rds, s.held.followed)
        case .rds: break
        }
        if syncedAt == 0 && types.allSatisfy({ $0.requested && $0.responses > 0 }) {
            syncedAt = now
            onSynced?()
        }
        onResponse?(type, view.systemVersionInfo, now)
    }

    /// Moves the subscription of `t` to `names` (sorted): subscribe what is new, unsubscribe
    /// what is gone.
    private func follow(_ t: XdsType, _ names: [String]) {
        var s = types[t.rawValue]
        if s.requested && s.names == names { return }
        if !s.requested && names.isEmpty { return }
        // Both lists are sorted: one merge walk, no hashing (every stream makes this move).
        var add: [String] = [], drop: [String] = []
        var i = 0, j = 0
        let old = s.names
        while i < old.count || j < names.count {
            if j == names.count || (i < old.count && old[i] < names[j]) { drop.append(old[i]); i += 1 }
            else if i == old.count || names[j] < old[i] { add.append(names[j]); j += 1 }
            else { i += 1; j += 1 }
        }
        s.requested = true
        s.names = names
        types[t.rawValue] = s
        request(t, subscribe: add, unsubscribe: drop)
    }

    private func request(_ t: XdsType, subscribe: [String] = [], unsubscribe: [String] = [], initial: [String: String] = [:],
                         nonce: String = "") {
        var r = DeltaDiscoveryRequest()
        r.typeURL = t.typeURL
        r.resourceNamesSubscribe = subscribe
        r.resourceNamesUnsubscribe = unsubscribe
        r.initialResourceVersions = initial.map { (name: $0.key, version: $0.value) }
        r.responseNonce = nonce
        var w = ProtoWriter(capacity: nodeField.count + r.protoSize)
        w.writeRaw(nodeField)
        r.write(to: &w)
        send(w.toArray())
    }
}

/// What a Delta client holds of one type, immutable and shared: name -> version, and per
/// resource the names it leads to (a cluster's EDS service name, a listener's route names).
public final class DeltaHeld: Sendable {
    public let versions: [String: String]
    let leadsTo: [String: [String]]
    /// The union of `leadsTo`, sorted: the next type's subscription.
    public let followed: [String]

    init(versions: [String: String], leadsTo: [String: [String]]) {
        self.versions = versions
        self.leadsTo = leadsTo
        self.followed = Array(Set(leadsTo.values.joined())).sorted()
    }

    static let empty = DeltaHeld(versions: [:], leadsTo: [:])

    /// `held` after the response in `message`: resources added or replaced, removals applied.
    static func applying(_ message: UnsafeRawBufferPointer, to held: DeltaHeld, type: XdsType) throws(ProtoDecodingError) -> DeltaHeld {
        var versions = held.versions
        var leads = held.leadsTo
        var r = ProtoReader(message)
        while let (field, wt) = try r.next() {
            switch field {
            case 2:
                var res = try r.messageField()
                var name = "", version = ""
                var value = UnsafeRawBufferPointer(start: nil, count: 0)
                while let (f, w) = try res.next() {
                    switch f {
                    case 1: version = try res.stringField()
                    case 2:
                        var any = try res.messageField()
                        while let (af, aw) = try any.next() {
                            if af == 2 && aw == .lengthDelimited { value = try any.readLengthDelimited() } else { try any.skip(wireType: aw) }
                        }
                    case 3: name = try res.stringField()
                    default: try res.skip(wireType: w)
                    }
                }
                versions[name] = version
                switch type {
                case .cds:
                    let c = try EnvoyResourceNames.cluster(value)
                    leads[name] = [c.edsName.isEmpty ? c.name : c.edsName]
                case .lds: leads[name] = try EnvoyResourceNames.listener(value).routes
                default: break
                }
            case 6:
                let name = try r.stringField()
                versions[name] = nil
                leads[name] = nil
            default: try r.skip(wireType: wt)
            }
        }
        return DeltaHeld(versions: versions, leadsTo: leads)
    }
}

/// Held-state transitions by response body, shared by the streams of one loop.
public final class DeltaTransitions {
    private struct Key: Hashable { let from: ObjectIdentifier; let type: Int; let digest: UInt64 }
    // The value keeps `from` alive, so its identifier cannot be reused while the entry exists.
    private var cache: [Key: (from: DeltaHeld, to: DeltaHeld)] = [:]
    public init() {}

    func next(from: DeltaHeld, type: XdsType, digest: UInt64, message: UnsafeRawBufferPointer) throws(ProtoDecodingError) -> DeltaHeld {
        let key = Key(from: ObjectIdentifier(from), type: type.rawValue, digest: digest)
        if let hit = cache[key] { return hit.to }
        let to = try DeltaHeld.applying(message, to: from, type: type)
        if cache.count >= 4096 { cache.removeAll(keepingCapacity: true) }
        cache[key] = (from, to)
        return to
    }
}

/// A DeltaDiscoveryResponse read in place: the small fields copied, the resources and removals
/// folded into a digest (they are shared by every stream that gets the same change; the
/// version and nonce are not).
public struct DeltaResponseView {
    public var systemVersionInfo = ""
    public var typeURL = ""
    public var nonce = ""
    public var digest: UInt64 = 0xcbf29ce484222325

    public init(_ buffer: UnsafeRawBufferPointer) throws(ProtoDecodingError) {
        var r = ProtoReader(buffer)
        while let (field, wt) = try r.next() {
            switch field {
            case 1: systemVersionInfo = try r.stringField()
            case 2, 6:
                guard wt == .lengthDelimited else { throw .wrongWireType(field: field, expected: .lengthDelimited, actual: wt) }
                let bytes = try r.readLengthDelimited()
                digest = (digest ^ UInt64(field)) &* 0x100000001b3
                digest = ADSClientStream.mix(digest, bytes)
            case 4: typeURL = try r.stringField()
            case 5: nonce = try r.stringField()
            default: try r.skip(wireType: wt)
            }
        }
    }
}
