import FastPush

/// `h2`: the server's HTTP/2 input path: an `H2Connection` (nghttp2 and our callbacks) under a
/// `GRPCServerConnection` (head validation, routing, deframing) serving the real `ADSService`
/// on a `DiscoveryServer` (plus a small echo method), fed the input as received bytes.
///
/// Input: `flags(1) chunk(1) bytes...`
/// - flags bit 0: first feed a valid client preface + empty SETTINGS, so mutations start past the magic;
/// - flags bits 1-2: the write budget per `produce` call (64 B, 4 KiB, 64 KiB, 4 MiB);
/// - chunk: bytes are fed in pieces of `chunk` bytes (0: all at once), with the output side
///   drained between pieces (so responses, flow control and resets interleave with input).
///
/// Invariants: no trap, bounded work (output rounds are capped) and memory (libFuzzer's
/// -rss_limit_mb / -malloc_limit_mb); when the connection ends every ADS stream has left the
/// DiscoveryServer.
enum H2Fuzz {
    static let name = "h2"
    static let target = FuzzTarget(
        name: name,
        summary: "H2Connection + GRPCServerConnection + ADSService: received bytes in chunks, output drained",
        run: { data throws(FuzzViolation) in try run(data) },
        seeds: { H2Seeds.all() })

    static let echoPath = "/fastpilot.fuzz.Echo/Echo"
    static let clientPreface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    static let emptySettings: [UInt8] = [0, 0, 0, 4, 0, 0, 0, 0, 0]
    static let budgets = [64, 4096, 65536, 4 << 20]
    static let maxRounds = 64

    static func run(_ data: UnsafeRawBufferPointer) throws(FuzzViolation) {
        var c = InputCursor(data)
        let flags = c.byte() ?? 0
        let chunk = Int(c.byte() ?? 0)
        let budget = budgets[Int(flags >> 1) & 3]

        let loop = FuzzLoop()
        let server = Fixtures.server()
        let h2 = H2Connection(role: .server, settings: H2Settings())
        let grpc = GRPCServerConnection(h2: h2, service: FuzzService(server: server, loop: loop), peer: "fuzz",
                                        maxMessageSize: 1 << 20)
        var alive = true
        var produced = 0

        func drain() {
            for _ in 0..<maxRounds {
                loop.runPending()
                var out = OutboundBuffer()
                if !h2.produce(into: &out, budget: budget) { alive = false }
                let n = out.pendingBytes
                produced += n
                if n == 0 { break }
                out.consume(n)  // "sent": completions run, as after a socket write
            }
        }

        if flags & 1 != 0 {
            alive = (clientPreface + emptySettings).withUnsafeBytes { h2.receive($0) }
            drain()
        }
        while alive, !c.isAtEnd {
            let piece = c.take(chunk == 0 ? c.remaining : chunk)
            alive = h2.receive(piece)
            drain()
        }
        drain()
        // The socket closes: what the channel handler does on channelInactive.
        trace("produced \(produced) bytes, alive=\(alive), streams=\(grpc.streamCount), ads connections=\(server.connectionCount), error=\(h2.lastError ?? "-")")
        grpc.connectionClosed()
        loop.runPending()
        try require(server.connectionCount == 0, name,
                    "\(server.connectionCount) ADS connections still registered after the HTTP/2 connection closed")
    }
}

/// The gRPC methods the fuzzed server offers: ADS (the production handler) and an echo.
final class FuzzService: GRPCService {
    let ads: ADSService

    init(server: DiscoveryServer, loop: any IOLoop) {
        ads = ADSService(server: server, loop: loop)
    }

    func makeHandler(path: String, stream: GRPCServerStream) -> (any GRPCStreamHandler)? {
        if path == H2Fuzz.echoPath { return EchoHandler() }
        return ads.makeHandler(path: path, stream: stream)
    }
}

/// Echoes each message; ends the call with OK when the client half-closes.
final class EchoHandler: GRPCStreamHandler {
    func received(_ stream: GRPCServerStream, message: UnsafeRawBufferPointer) {
        stream.send(bytes: Array(message))
    }
    func halfClosed(_ stream: GRPCServerStream) { stream.finish(.ok) }
    func closed(_ stream: GRPCServerStream) {}
}

/// An IOLoop without sockets: the fuzzing thread is the loop; `execute` queues work that
/// `runPending` runs between input chunks, as the real loop would between reads.
final class FuzzLoop: IOLoop, @unchecked Sendable {
    private var pending: [() -> Void] = []

    var index: Int { 0 }
    var inEventLoop: Bool { true }
    func execute(_ task: @escaping @Sendable () -> Void) { pending.append(task) }

    func runPending() {
        var rounds = 0
        while !pending.isEmpty, rounds < 16 {
            rounds += 1
            let tasks = pending
            pending = []
            for t in tasks { t() }
        }
    }

    var nowNanos: UInt64 { 0 }
    func schedule(afterNanos: UInt64, _ task: @escaping () -> Void) {}
    func scheduleFlush(_ channel: Channel) {}
    func closeChannel(_ channel: Channel, reason: CloseReason) {}
    func register(fd: Int32, peer: String, handler: any ChannelHandler) -> Channel {
        fatalError("FuzzLoop has no sockets")
    }
    func listen(fd: Int32, onAccept: @escaping (Int32) -> Void) {}
    func stopListening(fd: Int32) {}
    func forEachChannel(_ body: (Channel) -> Void) {}
    var channelCount: Int { 0 }
    func shutdown() {}
}
