@testable import FastPush

/// Connects a client and a server H2Connection in memory: the EmbeddedChannel of this project.
final class H2Pipe {
    let client: H2Connection
    let server: H2Connection
    var serverAlive = true
    var clientAlive = true
    var bytesToServer = 0
    var bytesToClient = 0

    init(serverSettings: H2Settings = H2Settings()) {
        client = H2Connection(role: .client)
        server = H2Connection(role: .server, settings: serverSettings)
    }

    /// Moves bytes both ways until both sides are quiet.
    func pump(rounds: Int = 200) {
        for _ in 0..<rounds {
            var co = OutboundBuffer()
            if clientAlive { client.produce(into: &co, budget: 1 << 22) }
            let cb = co.drain()
            var so = OutboundBuffer()
            if serverAlive { server.produce(into: &so, budget: 1 << 22) }
            let sb = so.drain()
            if cb.isEmpty && sb.isEmpty { return }
            bytesToServer += cb.count
            bytesToClient += sb.count
            if serverAlive && !cb.isEmpty { serverAlive = cb.withUnsafeBytes { server.receive($0) } }
            if clientAlive && !sb.isEmpty { clientAlive = sb.withUnsafeBytes { client.receive($0) } }
        }
    }
}

/// Records what a client call sees.
final class RecordingCall: GRPCClientCallDelegate {
    var messages: [[UInt8]] = []
    var status: GRPCStatus?
    func callReceived(_ call: GRPCClientCall, message: UnsafeRawBufferPointer) { messages.append(Array(message)) }
    func callEnded(_ call: GRPCClientCall, status: GRPCStatus) { self.status = status }
}

/// Echoes each message back; ends the call with OK when the client half-closes.
final class EchoService: GRPCService, GRPCStreamHandler {
    var opened = 0
    var closed = 0
    var received: [[UInt8]] = []
    func makeHandler(path: String, stream: GRPCServerStream) -> (any GRPCStreamHandler)? {
        guard path == "/test.Echo/Echo" else { return nil }
        opened += 1
        return self
    }
    func received(_ stream: GRPCServerStream, message: UnsafeRawBufferPointer) {
        received.append(Array(message))
        stream.send(bytes: Array(message))
    }
    func halfClosed(_ stream: GRPCServerStream) { stream.finish(.ok) }
    func closed(_ stream: GRPCServerStream) { closed += 1 }
}
