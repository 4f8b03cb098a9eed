import Testing
@testable import FastPush

/// Hostile gRPC framing, sans I/O: partial messages that would pile up across streams.
@Suite struct GRPCHostileTests {
    @Test func announcedLengthIsNotReservedUpFront() throws {
        var d = GRPCDeframer(maxMessageSize: 4 << 20)
        // A prefix announcing 4 MiB - 1, and 5 bytes of it.
        let prefix: [UInt8] = [0, 0x00, 0x3F, 0xFF, 0xFF, 1, 2, 3, 4, 5]
        var delivered = 0
        try prefix.withUnsafeBytes { b in try d.feed(b) { _ in delivered += 1; return true } }
        #expect(delivered == 0)
        #expect(d.bufferedBytes == 10)
        #expect(d.reservedBytes <= 5 + GRPCDeframer.initialReservation + 64, "reserved \(d.reservedBytes)")
        // The rest arrives: it grows to the message, and not beyond twice what it holds.
        var left = (4 << 20) - 1 - 5
        let chunk = [UInt8](repeating: 9, count: 16384)
        while left > 0 {
            let n = min(left, chunk.count)
            try chunk.withUnsafeBytes { b in try d.feed(UnsafeRawBufferPointer(rebasing: b[0..<n])) { m in
                #expect(m.count == (4 << 20) - 1)
                delivered += 1
                return true
            } }
            left -= n
            if left > 0 { #expect(d.reservedBytes <= max(2 * d.bufferedBytes, 5 + GRPCDeframer.initialReservation) + 8192) }  // malloc rounds up
        }
        #expect(delivered == 1)
        #expect(d.bufferedBytes == 0)
        d.reset()
        #expect(d.reservedBytes == 0)
    }

    func setUp(maxBuffered: Int) -> (H2Pipe, EchoService, GRPCServerConnection, GRPCClientConnection) {
        let pipe = H2Pipe()
        let svc = EchoService()
        let server = GRPCServerConnection(h2: pipe.server, service: svc, peer: "hostile", maxMessageSize: 1 << 20,
                                          maxBufferedBytes: maxBuffered)
        let client = GRPCClientConnection(h2: pipe.client, authority: "fastpilot")
        return (pipe, svc, server, client)
    }

    /// The first `count` bytes of a message announced as `announced` bytes long.
    func partial(announced: Int, count: Int) -> StreamMessage {
        StreamMessage(head: GRPCDeframer.prefix(length: announced), body: ByteSlice(SharedBytes([UInt8](repeating: 7, count: count))))
    }

    @Test func partialMessagesAcrossStreamsAreBoundedPerConnection() throws {
        let (pipe, svc, server, client) = setUp(maxBuffered: 100_000)
        var calls: [(GRPCClientCall, RecordingCall)] = []
        for _ in 0..<4 {
            let rec = RecordingCall()
            calls.append((try #require(client.startCall(path: "/test.Echo/Echo", delegate: rec)), rec))
        }
        // Each stream sends 40 KB of a 50 KB message: two fit in 100 KB, the third does not.
        for (call, _) in calls.prefix(3) {
            client.h2.send(streamID: call.id, partial(announced: 50_000, count: 40_000))
            pipe.pump()
        }
        #expect(calls[0].1.status == nil && calls[1].1.status == nil)
        let rejected = try #require(calls[2].1.status)
        #expect(rejected.code == .resourceExhausted)
        #expect(rejected.message.contains("100000"))
        #expect(server.bufferedBytes == 2 * 40_005)
        #expect(pipe.serverAlive && pipe.clientAlive)

        // Small messages still flow on another stream of the same connection.
        calls[3].0.send(bytes: Array("still here".utf8))
        pipe.pump()
        #expect(calls[3].1.messages == [Array("still here".utf8)])

        // The first stream completes its message: delivered, and its bytes are given back.
        client.h2.send(streamID: calls[0].0.id, StreamMessage(body: ByteSlice(SharedBytes([UInt8](repeating: 7, count: 10_000)))))
        pipe.pump()
        #expect(svc.received.last?.count == 50_000)
        #expect(server.bufferedBytes == 40_005)

        // The second is cancelled by its client: its bytes are given back too.
        calls[1].0.cancel()
        pipe.pump()
        #expect(server.bufferedBytes == 0)
    }
}
