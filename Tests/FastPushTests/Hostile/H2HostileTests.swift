import Testing
@testable import FastPush

/// Bad bytes into the server's HTTP/2 session, sans I/O: what it answers and whether it gives
/// up on the connection. The interop suite (test_hostile.py) does the same over a socket.
@Suite struct H2HostileTests {
    static let protocolError: UInt32 = 1
    static let internalError: UInt32 = 2
    static let refusedStream: UInt32 = 7
    static let enhanceYourCalm: UInt32 = 11

    @Test func notHTTP2EndsWithoutGoAway() {
        for garbage in ["GET / HTTP/1.1\r\nHost: x\r\n\r\n", "\u{16}\u{03}\u{01}\u{00}\u{50}hello", "PRI * HTTP/1.1\r\n"] {
            let s = RawServer()
            #expect(!s.feed(Array(garbage.utf8)))
            #expect(s.h2.lastError?.contains("magic") == true, "\(garbage)")
        }
    }

    @Test(arguments: [
        ("DATA on stream 0", RawH2.data(stream: 0, [1, 2, 3])),
        ("HEADERS on an even stream", RawH2.headers(stream: 2, RawH2.request())),
        ("DATA on an idle stream", RawH2.data(stream: 5, [1])),
        ("SETTINGS_ENABLE_PUSH=2", RawH2.settings([(2, 2)])),
        ("SETTINGS_MAX_FRAME_SIZE=100", RawH2.settings([(5, 100)])),
        ("HEADERS without END_HEADERS, then DATA",
         RawH2.headers(stream: 1, RawH2.request(), endHeaders: false) + RawH2.data(stream: 1, [0])),
        ("WINDOW_UPDATE 0 on the connection", RawH2.windowUpdate(stream: 0, 0)),
        ("RST_STREAM on an idle stream", RawH2.rst(stream: 7)),
    ])
    func protocolViolationGetsGoAwayProtocolError(_ name: String, _ bytes: [UInt8]) {
        let s = RawServer()
        s.feed(RawH2.clientPreface)
        s.feed(bytes)
        s.read()
        #expect(s.goAways.map(\.errorCode) == [Self.protocolError], "\(name): \(s.frames)")
        #expect(s.h2.goAwaySent?.code == Self.protocolError, "\(name)")
        #expect(s.h2.isFinished, "\(name): the session must be over")
    }

    @Test func continuationFloodIsCutOffWithEnhanceYourCalm() {
        let s = RawServer()
        s.feed(RawH2.clientPreface)
        var bytes = RawH2.headers(stream: 1, RawH2.request(), endHeaders: false)
        for _ in 0..<100 { bytes += RawH2.frame(.continuation, stream: 1, RawH2.block([("x-pad", "y")])) }
        #expect(!s.feed(bytes))
        #expect(s.h2.lastError?.contains("CONTINUATION") == true)
        s.read()
        #expect(s.goAways.map(\.errorCode) == [Self.enhanceYourCalm], "\(s.frames)")
    }

    @Test func pingFloodThePeerDoesNotReadIsCutOff() {
        let s = RawServer()
        s.feed(RawH2.clientPreface)
        // Never reading the answers: the ACKs queue up to maxOutboundAck.
        var sent = 0
        while s.alive && sent < 10 * s.h2.settings.maxOutboundAck {
            s.feed(Array(repeating: RawH2.ping(), count: 100).flatMap { $0 })
            sent += 100
        }
        #expect(!s.alive)
        #expect(sent <= s.h2.settings.maxOutboundAck + 100)
        s.read()
        #expect(s.goAways.last?.errorCode == Self.enhanceYourCalm, "\(s.goAways)")
    }

    @Test func rapidResetGetsGoAway() {
        var settings = H2Settings()
        settings.streamResetBurst = 50
        settings.streamResetRate = 1
        let s = RawServer(settings: settings)
        s.feed(RawH2.clientPreface + RawH2.settings(ack: true))
        var id: UInt32 = 1
        for _ in 0..<200 where s.goAways.isEmpty {
            s.feed(RawH2.headers(stream: id, RawH2.request()) + RawH2.rst(stream: id))
            s.read()
            id += 2
        }
        #expect(s.goAways.count == 1, "\(s.frames.suffix(5))")
        #expect(id <= 2 * 52 + 1, "the GOAWAY comes once the burst is used up")
        #expect(s.h2.goAwaySent != nil)
    }

    @Test func streamsBeyondTheLimitAreRefusedThenTheConnectionEnds() {
        var settings = H2Settings()
        settings.maxConcurrentStreams = 4
        settings.streamErrorBurst = 10
        settings.streamErrorRate = 1
        let s = RawServer(settings: settings)
        // The client never acknowledges our SETTINGS, so nghttp2 refuses streams over the limit
        // (after the ACK it treats them as a connection error straight away).
        s.feed(RawH2.clientPreface)
        var id: UInt32 = 1
        for _ in 0..<4 {
            s.feed(RawH2.headers(stream: id, RawH2.request()))
            id += 2
        }
        #expect(s.h2.openStreamCount == 4)
        s.feed(RawH2.headers(stream: id, RawH2.request()))
        id += 2
        s.read()
        #expect(s.resets(Self.refusedStream).map(\.stream) == [9], "\(s.frames)")
        #expect(s.alive)
        // The client persists: refused each time until its stream-error budget is gone.
        var extra = 1
        while s.alive && extra < 100 {
            s.feed(RawH2.headers(stream: id, RawH2.request()))
            s.read()
            id += 2
            extra += 1
        }
        #expect(!s.alive)
        #expect(extra == settings.streamErrorBurst + 1)
        #expect(s.h2.lastError?.contains("too many stream errors") == true, "\(s.h2.lastError ?? "")")
        s.read()
        #expect(s.resets(Self.refusedStream).count == settings.streamErrorBurst)
        #expect(s.goAways.map(\.errorCode) == [Self.enhanceYourCalm])
    }

    @Test func acknowledgedLimitExceededIsAConnectionError() {
        var settings = H2Settings()
        settings.maxConcurrentStreams = 2
        let s = RawServer(settings: settings)
        s.feed(RawH2.clientPreface + RawH2.settings(ack: true))
        s.feed(RawH2.headers(stream: 1, RawH2.request()) + RawH2.headers(stream: 3, RawH2.request())
               + RawH2.headers(stream: 5, RawH2.request()))
        s.read()
        #expect(s.goAways.map(\.errorCode) == [Self.protocolError], "\(s.frames)")
    }

    @Test func headerListOverTheLimitResetsTheStreamAndCounts() {
        var settings = H2Settings()
        settings.streamErrorBurst = 3
        let s = RawServer(settings: settings)
        s.feed(RawH2.clientPreface)
        // 18 KB of headers: over the 16 KiB list limit, in a HEADERS and a CONTINUATION frame.
        let big = String(repeating: "v", count: 6000)
        let fields = RawH2.request(extra: [("x-a", big), ("x-b", big), ("x-c", big)])
        for id in stride(from: UInt32(1), through: 5, by: 2) {
            let ok = s.feed(RawH2.headerFrames(stream: id, RawH2.block(fields), endStream: true))
            #expect(ok)
        }
        s.read()
        #expect(s.resets(Self.internalError).map(\.stream) == [1, 3, 5], "\(s.frames)")
        #expect(s.goAways.isEmpty)
        // A fourth one has no token left.
        let ok = s.feed(RawH2.headerFrames(stream: 7, RawH2.block(fields), endStream: true))
        #expect(!ok)
        s.read()
        #expect(s.goAways.map(\.errorCode) == [Self.enhanceYourCalm])
    }

    @Test func malformedRequestsCountAgainstTheStreamErrorBudget() {
        var settings = H2Settings()
        settings.streamErrorBurst = 5
        let s = RawServer(settings: settings)
        s.feed(RawH2.clientPreface)
        var id: UInt32 = 1
        // An upper-case header name makes the request malformed: RST_STREAM PROTOCOL_ERROR.
        while s.alive && id < 200 {
            s.feed(RawH2.headers(stream: id, RawH2.request(extra: [("X-Bad", "1")]), endStream: true))
            s.read()
            id += 2
        }
        #expect(!s.alive)
        #expect(id == 2 * 6 + 1)
        #expect(s.resets(Self.protocolError).count == 5)
        #expect(s.goAways.map(\.errorCode) == [Self.enhanceYourCalm])
    }

    @Test func sessionMemoryIsCountedAndCapped() {
        var settings = H2Settings()
        settings.maxSessionMemory = 256 * 1024
        settings.streamErrorBurst = 1 << 30   // only the memory cap is under test
        let s = RawServer(settings: settings)
        let initial = s.h2.sessionMemory
        #expect(initial > 0 && initial < 64 * 1024, "a new session: \(initial) bytes")
        s.feed(RawH2.clientPreface)
        // Malformed requests the peer never reads the RST_STREAMs for: queued frames pile up.
        let first = RawH2.request(extra: [("X-Bad", "1")])
        var id: UInt32 = 1
        var peak = 0
        while s.alive && id < 200_000 {
            var batch: [UInt8] = []
            for _ in 0..<100 {
                batch += RawH2.headers(stream: id, first, endStream: true)
                id += 2
            }
            s.feed(batch)
            peak = max(peak, s.h2.sessionMemory)
        }
        #expect(!s.alive, "still alive with \(s.h2.sessionMemory) bytes")
        #expect(s.h2.lastError?.contains("memory") == true, "\(s.h2.lastError ?? "")")
        // Overshoot: what one batch (about 8 KiB of input) queues.
        #expect(peak < settings.maxSessionMemory + 128 * 1024, "peak \(peak)")
    }

    @Test func handshakeStateIsVisible() {
        let s = RawServer()
        #expect(!s.h2.peerSettingsReceived)
        s.feed(Array(RawH2.preface.prefix(10)))
        #expect(s.alive && !s.h2.peerSettingsReceived)
        s.feed(Array(RawH2.preface.dropFirst(10)) + RawH2.settings())
        #expect(s.h2.peerSettingsReceived)
    }
}
