/// One simulated ADS client on one stream, subscribing and ACKing as a real client does:
/// - `envoy`: wildcard CDS, then EDS for the clusters received, wildcard LDS, then RDS for the
///   route names in the listeners;
/// - `grpc`: LDS by name, then RDS, CDS and EDS for the names each response leads to.
/// Every response is ACKed with its version and nonce and the type's current names; a changed
/// name set is sent as a new subscription. Loop-thread only; `send` writes one request.
public final class ADSClientStream {
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
        var clusters: [String] = [], edsNames: [String] = [], routes: [String] = [], routeClusters: [String] = []
        let view: DiscoveryResponseView
        let type: XdsType?
        do {
            // Only the types whose names lead somewhere are read resource by resource.
            var t: XdsType?
            view = try DiscoveryResponseView(message) { typeURL, value throws(ProtoDecodingError) in
                if t == nil { t = XdsType(typeURL: String(decoding: typeURL, as: UTF8.self)) }
                switch t {
                case .cds?:
                    let c = try EnvoyResourceNames.cluster(value)
                    clusters.append(c.name)
                    edsNames.append(c.edsName.isEmpty ? c.name : c.edsName)
                case .lds?:
                    routes += try EnvoyResourceNames.listener(value).routes
                case .rds?:
                    if case .grpc = self.mode { routeClusters += try EnvoyResourceNames.route(value).clusters }
                default:
                    break
                }
            }
            type = XdsType(typeURL: view.typeURL)
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
        case (.envoy, .cds):
            subscribe(.eds, names: Array(Set(edsNames)).sorted())
        case (.envoy, .eds):
            if !state[XdsType.lds.rawValue].requested { subscribe(.lds, names: []) }
        case (.envoy, .lds):
            subscribe(.rds, names: Array(Set(routes)).sorted())
        case (.grpc, .lds):
            subscribe(.rds, names: Array(Set(routes)).sorted())
        case (.grpc, .rds):
            subscribe(.cds, names: Array(Set(routeClusters)).sorted())
        case (.grpc, .cds):
            subscribe(.eds, names: Array(Set(edsNames)).sorted())
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
