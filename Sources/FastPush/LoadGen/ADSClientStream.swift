/// One simulated ADS client on one stream, subscribing and ACKing as a real client does:
/// - `envoy`: wildcard CDS, then EDS for the clusters received, wildcard LDS, then RDS for the
///   route names in the listeners;
/// - `grpc`: LDS by name, then RDS, CDS and EDS for the names each response leads to.
/// Every response is ACKed with its version and nonce and the type's current names; a changed
/// name set is sent as a new subscription. Loop-thread only; `send` writes one request.
public final class ADSClientStream: ADSLoadStream {
    public enum Mode: Sendable, Equatable {
        case envoy
        case grpc(target: String)
    }

    public struct TypeState {
        public var names: [String] = []
        public var requested = false
        public var version = ""
        public var nonce = ""
        public var responses = 0
    }

    /// Encoded `type_url` + `resource_names` blocks, shared by the streams of one loop that
    /// subscribe alike: an ACK is that block plus its own version and nonce.
    public final class BlockCache {
        private var blocks: [String: SharedBytes] = [:]
        /// Names followed from a response, by a digest of its resources: thousands of streams
        /// receive the same CDS and LDS bodies, and the load generator must not be the bottleneck.
        var followed: [UInt64: [String]] = [:]
        public init() {}
        func block(_ t: XdsType, _ names: [String]) -> SharedBytes {
            let key = t.typeURL + "\u{0}" + names.joined(separator: "\u{0}")
            if let b = blocks[key] { return b }
            var r = DiscoveryRequest()
            r.typeURL = t.typeURL
            r.resourceNames = names
            let b = SharedBytes(r.encode())
            blocks[key] = b
            return b
        }
    }

    public let index: Int
    public let mode: Mode
    let node: Node
    let send: ([UInt8]) -> Void
    /// Sends a shared block and a small tail as one message (no copy of the block).
    public var sendBlock: ((SharedBytes, SmallBytes) -> Void)?
    public var blocks: BlockCache?
    private var typeBlocks: [SharedBytes?] = Array(repeating: nil, count: XdsType.allCases.count)
    public private(set) var state: [TypeState] = Array(repeating: TypeState(), count: XdsType.allCases.count)
    public private(set) var syncedAt: UInt64 = 0
    public private(set) var bytesReceived = 0
    public private(set) var messagesReceived = 0
    public private(set) var error: String?
    private var sentNode = false
    /// Called after each response is handled: (type, version, time).
    public var onResponse: ((XdsType, String, UInt64) -> Void)?
    public var onSynced: (() -> Void)?

    public init(index: Int, mode: Mode, node: Node, send: @escaping ([UInt8]) -> Void) {
        self.index = index
        self.mode = mode
        self.node = node
        self.send = send
    }

    public subscript(_ t: XdsType) -> TypeState { state[t.rawValue] }
    public func version(_ t: XdsType) -> String { state[t.rawValue].version }
    public func requested(_ t: XdsType) -> Bool { state[t.rawValue].requested }
    public var edsNames: [String] { state[XdsType.eds.rawValue].names }

    var followsRoutes: Bool { if case .grpc = mode { true } else { false } }

    /// FNV-style mixing of a resource's bytes, a word at a time (change detection only).
    static func mix(_ h: UInt64, _ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h = h ^ UInt64(bytes.count)
        var i = 0
        while i + 8 <= bytes.count {
            h = (h ^ bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0x100000001b3
            h ^= h >> 31
            i += 8
        }
        while i < bytes.count { h = (h ^ UInt64(bytes[i])) &* 0x100000001b3; i += 1 }
        return h
    }

    /// The first request(s) on the stream.
    public func start() {
        switch mode {
        case .envoy: subscribe(.cds, names: [])
        case let .grpc(target): subscribe(.lds, names: [target])
        }
    }

    public var isSynced: Bool { syncedAt != 0 }

    /// Handles one response message. A malformed one records an error and is not ACKed.
    public func receive(_ message: UnsafeRawBufferPointer, now: UInt64) {
        bytesReceived += message.count
        messagesReceived += 1
        var next: [String]?
        let view: DiscoveryResponseView
        let type: XdsType?
        do {
            // First pass: the type and a digest of the resources (the names they lead to are
            // cached by it). Only the types whose names lead somewhere are digested.
            var t: XdsType?
            var digest: UInt64 = 0xcbf29ce484222325
            view = try DiscoveryResponseView(message) { typeURL, value throws(ProtoDecodingError) in
                if t == nil { t = XdsType(typeURL: String(decoding: typeURL, as: UTF8.self)) }
                if t == .cds || t == .lds || (t == .rds && self.followsRoutes) {
                    digest = ADSClientStream.mix(digest, value)
                }
            }
            type = XdsType(typeURL: view.typeURL)
            if let type, type == .cds || type == .lds || (type == .rds && followsRoutes) {
                digest ^= UInt64(type.rawValue) &* 0x9E3779B97F4A7C15
                if let cached = blocks?.followed[digest] {
                    next = cached
                } else {
                    var names: [String] = []
                    _ = try DiscoveryResponseView(message) { _, value throws(ProtoDecodingError) in
                        switch type {
                        case .cds:
                            let c = try EnvoyResourceNames.cluster(value)
                            names.append(c.edsName.isEmpty ? c.name : c.edsName)
                        case .lds: names += try EnvoyResourceNames.listener(value).routes
                        case .rds: names += try EnvoyResourceNames.route(value).clusters
                        default: break
                        }
                    }
                    let sorted = Array(Set(names)).sorted()
                    blocks?.followed[digest] = sorted
                    next = sorted
                }
            }
        } catch {
            self.error = "malformed response: \(error)"
            return
        }
        guard let type else {
            error = "response with unknown type_url \(view.typeURL)"
            return
        }
        var s = state[type.rawValue]
        s.version = view.versionInfo
        s.nonce = view.nonce
        s.responses += 1
        state[type.rawValue] = s
        ack(type)
        // Follow the names, as the real client would.
        switch (mode, type) {
        case (.envoy, .cds), (.grpc, .cds):
            subscribe(.eds, names: next ?? [])
        case (.envoy, .eds):
            if !state[XdsType.lds.rawValue].requested { subscribe(.lds, names: []) }
        case (.envoy, .lds), (.grpc, .lds):
            subscribe(.rds, names: next ?? [])
        case (.grpc, .rds):
            subscribe(.cds, names: next ?? [])
        default:
            break
        }
        // Synced: all four types asked for and answered (a client that sees no service never is).
        if syncedAt == 0 && state.allSatisfy({ $0.requested && $0.responses > 0 }) {
            syncedAt = now
            onSynced?()
        }
        onResponse?(type, view.versionInfo, now)
    }

    /// ACK: the response's version and nonce, with the type's current names.
    private func ack(_ t: XdsType) {
        let s = state[t.rawValue]
        request(t, names: s.names, version: s.version, nonce: s.nonce)
    }

    /// A (new) subscription for `t`, sent only if it differs from the current one.
    private func subscribe(_ t: XdsType, names: [String]) {
        var s = state[t.rawValue]
        if s.requested && s.names == names { return }
        // A non-wildcard type with nothing to watch is not requested (that would unsubscribe).
        if !t.isWildcardType && names.isEmpty && !s.requested { return }
        s.requested = true
        s.names = names
        state[t.rawValue] = s
        typeBlocks[t.rawValue] = nil
        request(t, names: names, version: s.version, nonce: s.nonce)
    }

    private func request(_ t: XdsType, names: [String], version: String, nonce: String) {
        if sentNode, let sendBlock, let blocks,
           DiscoveryResponseTail.size(version: version, nonce: nonce) <= SmallBytes.capacity {
            let block = typeBlocks[t.rawValue] ?? blocks.block(t, names)
            typeBlocks[t.rawValue] = block
            // DiscoveryRequest's version_info (1) and response_nonce (5) have the same field
            // numbers as the response's version and nonce: the same tail encoder writes them.
            var tail = SmallBytes()
            tail.append(max: DiscoveryResponseTail.size(version: version, nonce: nonce)) {
                DiscoveryResponseTail.encode(version: version, nonce: nonce, into: $0.baseAddress!)
            }
            sendBlock(block, tail)
            return
        }
        var r = DiscoveryRequest()
        r.typeURL = t.typeURL
        r.resourceNames = names
        r.versionInfo = version
        r.responseNonce = nonce
        if !sentNode {
            r.node = node
            sentNode = true
        }
        send(r.encode())
    }
}
