import Testing
@testable import FastPush

/// The TLS layer without sockets: two engines joined by an in-memory pipe.
@Suite struct TLSEngineTests {
    /// Moves ciphertext both ways until neither side has anything to send. `chunk` splits what
    /// each side receives into pieces of that size (records split across reads).
    @discardableResult
    static func pump(_ a: TLSEngine, _ b: TLSEngine, chunk: Int = .max) -> (aStatus: TLSEngine.Status, bStatus: TLSEngine.Status) {
        for _ in 0..<20 {
            let ab = a.takeCiphertext()
            let ba = b.takeCiphertext()
            if ab.isEmpty && ba.isEmpty { break }
            feed(b, ab, chunk: chunk)
            feed(a, ba, chunk: chunk)
        }
        return (a.status, b.status)
    }

    static func feed(_ e: TLSEngine, _ bytes: [UInt8], chunk: Int) {
        var i = 0
        while i < bytes.count {
            let n = min(chunk, bytes.count - i)
            bytes[i..<(i + n)].withUnsafeBytes { _ = e.receive($0) }
            i += n
        }
    }

    static func readAll(_ e: TLSEngine) -> (bytes: [UInt8], status: TLSEngine.Status) {
        var got: [UInt8] = []
        let s = e.read { got.append(contentsOf: $0) }
        return (got, s)
    }

    /// The error of a failed session, nil for any other status.
    static func failure(_ s: TLSEngine.Status) -> String? {
        if case let .failed(error) = s { return error }
        return nil
    }

    static func pair(client name: String? = "echo", from set: TestCertificates.Set = TestCertificates.main,
                     clientCA: String? = TestCertificates.main.ca, maxTLS12: Bool = false) throws -> (TLSEngine, TLSEngine) {
        let server = try #require(TLSEngine(context: try TestCertificates.server(clientCA: clientCA)))
        let client = try #require(TLSEngine(context: try TestCertificates.client(name, from: set, maxTLS12: maxTLS12)))
        return (client, server)
    }

    @Test func mutualHandshakeNegotiatesH2AndCarriesTheSPIFFEIdentity() throws {
        let (client, server) = try Self.pair()
        #expect(client.pendingCiphertext > 0, "a client has its ClientHello ready before it hears anything")
        let (c, s) = Self.pump(client, server)
        #expect(c == .established)
        #expect(s == .established)
        #expect(server.alpn == "h2")
        #expect(client.alpn == "h2")
        #expect(server.protocolVersion == "TLSv1.3")
        #expect(server.hasPeerCertificate)
        #expect(server.peerURI() == TestCertificates.echoURI)
        #expect(SPIFFEIdentity(uri: server.peerURI() ?? "")?.namespace == "default")
        #expect(client.peerURI() == nil, "the server's certificate has DNS and IP names only")
    }

    @Test func tls12IsAccepted() throws {
        let (client, server) = try Self.pair(maxTLS12: true)
        let (c, s) = Self.pump(client, server)
        #expect(c == .established && s == .established)
        #expect(server.protocolVersion == "TLSv1.2")
        #expect(server.peerURI() == TestCertificates.echoURI)
    }

    @Test func dataBothWaysInRecordsSplitAcrossReads() throws {
        let (client, server) = try Self.pair()
        Self.pump(client, server, chunk: 7)
        #expect(server.isEstablished)
        let big = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 3) }
        big.withUnsafeBytes { #expect(client.write($0)) }
        let wire = client.takeCiphertext()
        #expect(wire.count > big.count, "records add their headers and tags")
        #expect(wire.count < big.count + 200 * 30, "16 KB records, not one per write")
        // One byte at a time: every record arrives split across many reads.
        var got: [UInt8] = []
        for b in wire {
            [b].withUnsafeBytes { _ = server.receive($0) }
            let s = server.read { got.append(contentsOf: $0) }
            #expect(s == .established)
        }
        #expect(got == big)
        // The BIOs grew to 100 KB; drained, they are replaced, and the session goes on.
        server.releaseIdleBuffers()
        client.releaseIdleBuffers()
        let reply: [UInt8] = Array("pong".utf8)
        reply.withUnsafeBytes { #expect(server.write($0)) }
        Self.feed(client, server.takeCiphertext(), chunk: 3)
        #expect(Self.readAll(client).bytes == reply)
    }

    @Test func aPeerThatStopsMidRecordDeliversNothingUntilTheRestArrives() throws {
        let (client, server) = try Self.pair()
        Self.pump(client, server)
        let msg = Array("half a record".utf8)
        msg.withUnsafeBytes { _ = client.write($0) }
        let wire = client.takeCiphertext()
        Self.feed(server, Array(wire[0..<(wire.count / 2)]), chunk: .max)
        let first = Self.readAll(server)
        #expect(first.bytes.isEmpty)
        #expect(first.status == .established)
        Self.feed(server, Array(wire[(wire.count / 2)...]), chunk: .max)
        #expect(Self.readAll(server).bytes == msg)
    }

    @Test func closeNotifyIsSeenAsAnOrderlyClose() throws {
        let (client, server) = try Self.pair()
        Self.pump(client, server)
        let msg = Array("last words".utf8)
        msg.withUnsafeBytes { _ = client.write($0) }
        client.shutdown()
        Self.feed(server, client.takeCiphertext(), chunk: .max)
        let r = Self.readAll(server)
        #expect(r.bytes == msg, "data before close_notify is delivered")
        #expect(r.status == .closed)
        server.shutdown()
        #expect(server.pendingCiphertext > 0, "the server answers with its own close_notify")
        #expect(!server.write(UnsafeRawBufferPointer(start: nil, count: 0)) || server.status == .closed)
    }

    @Test func garbageInsteadOfAClientHelloFails() throws {
        let server = try #require(TLSEngine(context: try TestCertificates.server()))
        let junk = Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        let s = junk.withUnsafeBytes { server.receive($0) }
        #expect(Self.failure(s) != nil, "expected a failure, got \(s)")
        #expect(!server.isEstablished)
    }

    @Test func aCorruptedRecordAfterTheHandshakeFails() throws {
        let (client, server) = try Self.pair()
        Self.pump(client, server)
        Array("secret".utf8).withUnsafeBytes { _ = client.write($0) }
        var wire = client.takeCiphertext()
        wire[wire.count - 1] ^= 0xFF  // the AEAD tag
        Self.feed(server, wire, chunk: .max)
        let r = Self.readAll(server)
        #expect(r.bytes.isEmpty)
        #expect(Self.failure(r.status) != nil, "expected a failure, got \(r.status)")
    }

    @Test func aClientWithoutACertificateIsRefused() throws {
        let (client, server) = try Self.pair(client: nil)
        let (_, s) = Self.pump(client, server)
        #expect(Self.failure(s)?.contains("certificate") == true, "expected the server to refuse, got \(s)")
    }

    @Test func aClientCertificateFromAnotherCAIsRefused() throws {
        let (client, server) = try Self.pair(client: "echo", from: TestCertificates.foreign)
        let (_, s) = Self.pump(client, server)
        #expect(Self.failure(s) != nil, "expected the server to refuse, got \(s)")
        #expect(!server.isEstablished)
    }

    @Test func withoutAClientCAAnyClientIsServedWithoutIdentity() throws {
        let (client, server) = try Self.pair(client: nil, clientCA: nil)
        let (c, s) = Self.pump(client, server)
        #expect(c == .established && s == .established)
        #expect(!server.hasPeerCertificate)
        #expect(server.peerURI() == nil)
    }

    @Test func aClientThatDoesNotTrustTheServerFails() throws {
        let server = try #require(TLSEngine(context: try TestCertificates.server()))
        let client = try #require(TLSEngine(context: try TestCertificates.client("echo", trust: TestCertificates.foreign.ca)))
        let (c, _) = Self.pump(client, server)
        #expect(Self.failure(c) != nil, "expected the client to refuse the server, got \(c)")
    }

    @Test func badFilesAreClearErrors() throws {
        let main = TestCertificates.main
        #expect(throws: TLSContext.ConfigError.self) {
            try TLSContext(.init(role: .server, certificatePath: main.serverCert, keyPath: main.key("echo")))
        }
        #expect(throws: TLSContext.ConfigError.self) {
            try TLSContext(.init(role: .server, certificatePath: "/nonexistent.crt", keyPath: main.serverKey))
        }
        #expect(throws: TLSContext.ConfigError.self) {
            try TLSContext(.init(role: .server))
        }
        do {
            _ = try TLSContext(.init(role: .server, certificatePath: main.serverCert, keyPath: main.key("echo")))
        } catch {
            #expect(error.description.contains("echo.key"), "the error names the file")
        }
    }
}
