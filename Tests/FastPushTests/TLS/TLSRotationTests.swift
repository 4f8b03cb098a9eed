import Testing
import Foundation
import Synchronization
@testable import FastPush

/// Rotation: the watcher swaps the context for new handshakes when the files change, and keeps
/// the last good one when they do not load.
@Suite(.timeLimit(.minutes(1))) struct TLSRotationTests {
    static func copy(_ from: String, _ to: String) throws {
        let tmp = to + ".tmp"
        try? FileManager.default.removeItem(atPath: tmp)
        try FileManager.default.copyItem(atPath: from, toPath: tmp)
        _ = rename(tmp, to)  // atomic, as a Secret volume or cert-manager does
    }

    /// Which CA a client must trust to complete a handshake with `holder`'s current context.
    static func servedBy(_ holder: TLSContextHolder) throws -> String? {
        for (name, set) in [("main", TestCertificates.main), ("foreign", TestCertificates.foreign)] {
            let server = try #require(TLSEngine(context: holder.context))
            let client = try #require(TLSEngine(context: try TestCertificates.client(nil, trust: set.ca)))
            let (c, s) = TLSEngineTests.pump(client, server)
            if c == .established && s == .established { return name }
        }
        return nil
    }

    @Test func newHandshakesUseTheNewPairAndABadFileKeepsTheLastGoodOne() throws {
        let dir = NSTemporaryDirectory() + "fastpilot-rotation-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cert = dir + "/tls.crt", key = dir + "/tls.key"
        try Self.copy(TestCertificates.main.serverCert, cert)
        try Self.copy(TestCertificates.main.serverKey, key)
        let config = TLSContext.Configuration(role: .server, certificatePath: cert, keyPath: key)
        let holder = TLSContextHolder(try TLSContext(config))
        let reloads = Mutex<[Bool]>([])
        let watcher = TLSCertificateWatcher(holder: holder, configuration: config, intervalNanos: 20_000_000) { r in
            reloads.withLock { $0.append((try? r.get()) != nil) }
        }
        watcher.start()
        defer { watcher.stop() }
        #expect(try Self.servedBy(holder) == "main")
        // An established session keeps its context through a rotation.
        let before = try #require(TLSEngine(context: holder.context))

        try Self.copy(TestCertificates.foreign.serverCert, cert)
        try Self.copy(TestCertificates.foreign.serverKey, key)
        #expect(TLSSocketTests.eventually { (try? Self.servedBy(holder)) == "foreign" })
        #expect(reloads.withLock { $0 }.last == true)
        let client = try #require(TLSEngine(context: try TestCertificates.client(nil, trust: TestCertificates.main.ca)))
        let (c, s) = TLSEngineTests.pump(client, before)
        #expect(c == .established && s == .established, "a session made before the rotation keeps the old certificate")

        // A key that does not match: reported, the last good pair stays.
        try Self.copy(TestCertificates.main.key("echo"), key)
        #expect(TLSSocketTests.eventually { reloads.withLock { $0 }.last == false })
        #expect(try Self.servedBy(holder) == "foreign")
        // Garbage in the certificate: the same.
        let n = reloads.withLock { $0.count }
        try Data("not a certificate".utf8).write(to: URL(fileURLWithPath: cert + ".tmp"))
        _ = rename(cert + ".tmp", cert)
        #expect(TLSSocketTests.eventually { reloads.withLock { $0.count } > n })
        #expect(reloads.withLock { $0 }.last == false)
        #expect(try Self.servedBy(holder) == "foreign")
        // Fixed: picked up again.
        try Self.copy(TestCertificates.main.serverCert, cert)
        try Self.copy(TestCertificates.main.serverKey, key)
        #expect(TLSSocketTests.eventually { (try? Self.servedBy(holder)) == "main" })
    }
}
