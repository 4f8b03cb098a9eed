import FastPush

/// An invariant a fuzz target checks did not hold. The libFuzzer driver turns it into a crash
/// (so the input is saved); the corpus replay test turns it into a test failure.
public struct FuzzViolation: Error, CustomStringConvertible, Sendable {
    public let target: String
    public let message: String
    public init(_ target: String, _ message: String) { self.target = target; self.message = message }
    public var description: String { "[\(target)] invariant violated: \(message)" }
}

/// One fuzz entry point: bytes in, nothing out but a violation. A trap inside FastPush (array
/// index, force unwrap, precondition) is the other failure mode and ends the process.
public struct FuzzTarget: Sendable {
    public let name: String
    public let summary: String
    let entry: @Sendable (UnsafeRawBufferPointer) throws(FuzzViolation) -> Void
    /// Named seed inputs: what `gen-corpus` writes to Tests/Fuzz/corpus/<name>/.
    public let seeds: @Sendable () -> [(name: String, bytes: [UInt8])]

    init(name: String, summary: String, run: @escaping @Sendable (UnsafeRawBufferPointer) throws(FuzzViolation) -> Void,
         seeds: @escaping @Sendable () -> [(name: String, bytes: [UInt8])]) {
        self.name = name
        self.summary = summary
        self.entry = run
        self.seeds = seeds
    }

    public func run(_ bytes: UnsafeRawBufferPointer) throws(FuzzViolation) { try entry(bytes) }

    public func run(_ bytes: [UInt8]) throws(FuzzViolation) {
        var failure: FuzzViolation?
        bytes.withUnsafeBytes { raw in
            do throws(FuzzViolation) { try entry(raw) } catch { failure = error }
        }
        if let failure { throw failure }
    }
}

public enum FuzzTargets {
    public static let all: [FuzzTarget] = [
        ProtoFuzz.target, RequestFuzz.target, H2Fuzz.target, RegistryFuzz.target, AdminFuzz.target,
        DeltaRequestFuzz.target,
    ]

    public static func named(_ name: String) -> FuzzTarget? { all.first { $0.name == name } }

    public static var names: [String] { all.map(\.name) }

    /// Set by `replay -v`: the targets describe what each input did (off while fuzzing).
    nonisolated(unsafe) public static var trace: ((String) -> Void)?
}

@inline(__always)
func trace(_ message: @autoclosure () -> String) {
    if let t = FuzzTargets.trace { t(message()) }
}

// MARK: helpers shared by the targets

@inline(__always)
func require(_ condition: Bool, _ target: String, _ message: @autoclosure () -> String) throws(FuzzViolation) {
    if !condition { throw FuzzViolation(target, message()) }
}

/// Reads an input front to back; every read is bounded by what is left.
struct InputCursor {
    let bytes: UnsafeRawBufferPointer
    var pos = 0
    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var isAtEnd: Bool { pos >= bytes.count }
    var remaining: Int { bytes.count - pos }

    mutating func byte() -> UInt8? {
        guard pos < bytes.count else { return nil }
        defer { pos += 1 }
        return bytes[pos]
    }

    mutating func uint16() -> Int? {
        guard remaining >= 2 else { return nil }
        defer { pos += 2 }
        return Int(bytes[pos]) << 8 | Int(bytes[pos + 1])
    }

    /// Up to `n` bytes (fewer at the end of the input).
    mutating func take(_ n: Int) -> UnsafeRawBufferPointer {
        let k = Swift.max(0, Swift.min(n, remaining))
        defer { pos += k }
        return UnsafeRawBufferPointer(rebasing: bytes[pos..<(pos + k)])
    }

    mutating func rest() -> UnsafeRawBufferPointer { take(remaining) }
}

/// A chunk format shared by the seed generators and the targets that read chunks:
/// `op(1) length(2, big-endian) payload(length)`; a short last payload takes what is left.
enum Chunks {
    static func encode(_ chunks: [(op: UInt8, payload: [UInt8])]) -> [UInt8] {
        var out: [UInt8] = []
        for (op, p) in chunks {
            let n = Swift.min(p.count, 0xFFFF)
            out.append(op)
            out.append(UInt8(n >> 8))
            out.append(UInt8(n & 0xFF))
            out.append(contentsOf: p.prefix(n))
        }
        return out
    }
}

/// An XdsStream that keeps every write (body + tail), as a client would receive it.
final class CapturingStream: XdsStream {
    var isOpen = true
    var writes: [[UInt8]] = []
    var closedWith: GRPCStatus?

    func write(body: ByteSlice, tail: SmallBytes, completion: WriteCompletion?) {
        writes.append(Array(body.buffer) + tail.array)
        completion?(true)
    }

    func close(_ status: GRPCStatus) { isOpen = false; closedWith = status }
}

/// Runs everything at once on the calling thread: fuzz inputs drive one connection from one thread.
final class InlineExecutor: XdsExecutor {
    var identity: ObjectIdentifier { ObjectIdentifier(self) }
    var inExecutor: Bool { true }
    func execute(_ task: @escaping @Sendable () -> Void) { task() }
}

/// `@unchecked Sendable`: used from the fuzzing thread only.
final class CapturingTransport: XdsTransport, @unchecked Sendable {
    let peer = "fuzz"
    let stream = CapturingStream()
    let executor: any XdsExecutor = InlineExecutor()
    func currentStream() -> (any XdsStream)? { stream.isOpen ? stream : nil }
}

enum Fixtures {
    /// Parsed once: the demo registry is a constant.
    static let demo = DemoRegistry.snapshot()

    /// A server that never starts its pipeline threads: pushes stay in the queue, responses to
    /// requests are written inline. A small stream limit keeps the push ring cheap to allocate.
    static func server(_ registry: RegistrySnapshot = demo) -> DiscoveryServer {
        var config = DiscoveryServerConfig()
        config.maxStreams = 64
        config.pushWorkers = 1
        return DiscoveryServer(config: config, registry: registry)
    }

    static func node(id: String = "sidecar~10.0.0.1~app-1.demo~demo.svc.cluster.local", namespace: String? = nil,
                      metadata extra: [String: ProtoValue] = [:]) -> Node {
        var n = Node()
        n.id = id
        n.cluster = "app.demo"
        var fields = extra
        if let namespace { fields["NAMESPACE"] = .string(namespace) }
        if !fields.isEmpty { n.metadata = ProtoStruct(fields: fields) }
        n.userAgentName = "envoy"
        n.userAgentVersion = "1.31.0"
        n.clientFeatures = ["envoy.lb.does_not_support_overprovisioning"]
        return n
    }

    static func request(_ type: XdsType, names: [String] = [], node: Node? = nil, version: String = "",
                        nonce: String = "", error: RPCStatus? = nil) -> DiscoveryRequest {
        var r = DiscoveryRequest()
        r.typeURL = type.typeURL
        r.resourceNames = names
        r.node = node
        r.versionInfo = version
        r.responseNonce = nonce
        r.errorDetail = error
        return r
    }
}

/// What a well-formed response written by the server must satisfy, whatever the request was.
struct ResponseChecker {
    let target: String
    var nonces: Set<String> = []

    /// Decodes one write and checks it; returns it for further checks.
    @discardableResult
    mutating func check(_ bytes: [UInt8], expectedType: String?) throws(FuzzViolation) -> DiscoveryResponse {
        let r: DiscoveryResponse
        do { r = try DiscoveryResponse(decoding: bytes) } catch {
            throw FuzzViolation(target, "a response the server wrote does not decode: \(error)")
        }
        if let expectedType {
            try require(r.typeURL == expectedType, target, "response type \(r.typeURL), request type \(expectedType)")
        }
        try require(XdsType(typeURL: r.typeURL) != nil, target, "response of unknown type \(r.typeURL)")
        try require(!r.nonce.isEmpty, target, "response without a nonce")
        try require(!r.versionInfo.isEmpty, target, "response without a version")
        try require(nonces.insert(r.nonce).inserted, target, "nonce \(r.nonce) sent twice on one stream")
        for a in r.resources {
            try require(a.typeURL == r.typeURL, target, "a \(r.typeURL) response holds a \(a.typeURL) resource")
        }
        return r
    }
}
