import Testing
@testable import FastPush

@Suite struct GRPCConnectionTests {
    func setUp(maxMessageSize: Int = 4 << 20) -> (H2Pipe, EchoService, GRPCServerConnection, GRPCClientConnection) {
        let pipe = H2Pipe()
        let svc = EchoService()
        let server = GRPCServerConnection(h2: pipe.server, service: svc, peer: "test", maxMessageSize: maxMessageSize)
        let client = GRPCClientConnection(h2: pipe.client, authority: "fastpilot")
        return (pipe, svc, server, client)
    }

    @Test func echoRoundTripEndsWithOK() throws {
        let (pipe, svc, server, client) = setUp()
        let rec = RecordingCall()
        let call = try #require(client.startCall(path: "/test.Echo/Echo", delegate: rec))
        call.send(bytes: Array("hello".utf8))
        call.send(bytes: [])
        pipe.pump()
        #expect(rec.messages == [Array("hello".utf8), []])
        #expect(svc.opened == 1)
        call.halfClose()
        pipe.pump()
        #expect(rec.status == .ok)
        #expect(svc.closed == 1)
        #expect(server.streamCount == 0)
    }

    @Test func unknownMethodIsUnimplemented() throws {
        let (pipe, svc, server, client) = setUp()
        let rec = RecordingCall()
        _ = try #require(client.startCall(path: "/nope.Service/Method", delegate: rec))
        pipe.pump()
        #expect(rec.status?.code == .unimplemented)
        #expect(rec.status?.message.contains("/nope.Service/Method") == true)
        #expect(svc.opened == 0)
        withExtendedLifetime(server) {}
    }

    @Test func oversizedMessageIsResourceExhausted() throws {
        let (pipe, svc, server, client) = setUp(maxMessageSize: 1024)
        let rec = RecordingCall()
        let call = try #require(client.startCall(path: "/test.Echo/Echo", delegate: rec))
        call.send(bytes: [UInt8](repeating: 7, count: 1024))
        call.send(bytes: [UInt8](repeating: 7, count: 1025))
        pipe.pump()
        #expect(svc.received.count == 1)
        #expect(rec.status?.code == .resourceExhausted)
        #expect(rec.status?.message.contains("1025") == true)
        #expect(pipe.serverAlive)
        withExtendedLifetime(server) {}
    }

    @Test func compressedMessageIsUnimplemented() throws {
        let (pipe, svc, server, client) = setUp()
        let rec = RecordingCall()
        let call = try #require(client.startCall(path: "/test.Echo/Echo", delegate: rec))
        // Compressed flag set by hand: our client never compresses.
        client.h2.send(streamID: call.id, StreamMessage(head: SmallBytes([1, 0, 0, 0, 3]), body: ByteSlice(SharedBytes([1, 2, 3]))))
        pipe.pump()
        #expect(svc.received.isEmpty)
        #expect(rec.status?.code == .unimplemented)
        #expect(rec.status?.message.contains("compressed") == true)
        withExtendedLifetime(server) {}
    }

    @Test func messageSplitAcrossFramesIsReassembled() throws {
        let (pipe, svc, server, client) = setUp()
        let rec = RecordingCall()
        let call = try #require(client.startCall(path: "/test.Echo/Echo", delegate: rec))
        // Larger than one 16 KiB DATA frame, so it arrives in pieces.
        let big = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        call.send(bytes: big)
        pipe.pump()
        #expect(svc.received.count == 1 && svc.received.first == big)
        #expect(rec.messages.count == 1 && rec.messages.first == big)
        withExtendedLifetime(server) {}
    }

    @Test func writeCompletionRunsWhenSentAndFailsOnReset() throws {
        let (pipe, _, server, client) = setUp()
        let rec = RecordingCall()
        let call = try #require(client.startCall(path: "/test.Echo/Echo", delegate: rec))
        pipe.pump()
        let stream = try #require(server.streamsForTesting.first)
        var results: [Bool] = []
        stream.send(bytes: [1, 2, 3]) { results.append($0) }
        #expect(results.isEmpty)
        pipe.pump()
        #expect(results == [true])
        // Queue a message, then the client resets before it is written.
        stream.send(bytes: [4]) { results.append($0) }
        call.cancel()
        var co = OutboundBuffer()
        client.h2.produce(into: &co, budget: 1 << 20)
        _ = co.drain().withUnsafeBytes { pipe.server.receive($0) }
        #expect(results == [true, false])
    }

    @Test func garbagePrefaceFailsTheConnection() {
        let (pipe, _, server, _) = setUp()
        let ok = Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8).withUnsafeBytes { pipe.server.receive($0) }
        #expect(!ok)
        #expect(pipe.server.lastError != nil)
        withExtendedLifetime(server) {}
    }

    @Test func deframerHandlesByteByByteInput() throws {
        var d = GRPCDeframer(maxMessageSize: 100)
        let wire: [UInt8] = [0, 0, 0, 0, 3, 9, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 5]
        var got: [[UInt8]] = []
        for b in wire {
            try [b].withUnsafeBytes { try d.feed($0) { got.append(Array($0)); return true } }
        }
        #expect(got == [[9, 8, 7], [], [5]])
        #expect(d.bufferedBytes == 0)
    }

    @Test func deframerRejectsBeforeBuffering() {
        var d = GRPCDeframer(maxMessageSize: 10)
        #expect(throws: GRPCDeframer.Failure.tooLarge(size: 0x01000000, limit: 10)) {
            try ([0, 1, 0, 0, 0] as [UInt8]).withUnsafeBytes { try d.feed($0) { _ in true } }
        }
        #expect(d.bufferedBytes <= 5)
    }
}
