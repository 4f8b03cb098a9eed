#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
@testable import FastPush

/// Admin writes with `--registry FILE`: through AdminHandlers into a registry file in a temporary
/// directory, then read back. Every wait is bounded; nothing asserts how fast anything happens.
@Suite struct StoreFileWriterTests {
    static let echo = serviceEntryJSON(name: "echo", namespace: "demo", spec: #"""
        {"hosts": ["echo.demo.svc.cluster.local"], "ports": [{"number": 8080, "name": "grpc", "protocol": "GRPC"}],
         "resolution": "STATIC", "endpoints": [{"address": "10.0.0.1", "locality": "r/z"}]}
        """#)
    /// Fields fastpilot ignores (labels, status, spec.location): kept as they are.
    static let ledger = #"""
        {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
         "metadata": {"name": "ledger", "namespace": "payments", "labels": {"team": "päyments"}, "generation": 3},
         "spec": {"hosts": ["ledger.payments.svc.cluster.local"], "location": "MESH_INTERNAL",
                  "ports": [{"number": 7070, "name": "grpc", "protocol": "GRPC"}], "resolution": "STATIC",
                  "endpoints": [{"address": "10.2.0.1", "weight": 2}]},
         "status": {"conditions": [{"type": "Reconciled", "status": "True"}], "ratio": 0.5}}
        """#

    static func body(_ name: String = "shop", ns: String = "demo", addresses: [String] = ["10.1.0.1"],
                     metadataExtra: String = "") -> [UInt8] {
        let eps = addresses.map { "{\"address\":\"\($0)\"}" }.joined(separator: ",")
        return Array("""
        {"apiVersion":"networking.istio.io/v1","kind":"ServiceEntry","metadata":{"name":"\(name)","namespace":"\(ns)"\(metadataExtra)},
         "spec":{"hosts":["\(name).\(ns).svc.cluster.local"],"ports":[{"number":8080,"name":"grpc","protocol":"GRPC"}],
                 "resolution":"STATIC","endpoints":[\(eps)]}}
        """.utf8)
    }

    /// A registry file, the server loaded from it, and the admin API writing into it.
    struct Fixture {
        let dir: TempDir
        let path: String
        let server: DiscoveryServer
        let writer: FileRegistryWriter
        let handlers: AdminHandlers

        /// `knowsTheFile`: the writer is told the bytes the registry was loaded from (as the
        /// server does); otherwise its first write reads and parses the file.
        init(content: String = listJSON([StoreFileWriterTests.echo, StoreFileWriterTests.ledger]), subdir: String? = nil,
             knowsTheFile: Bool = false) throws {
            dir = TempDir()
            if let subdir {
                precondition(mkdir(dir.file(subdir), 0o755) == 0)
                path = dir.file("\(subdir)/registry.json")
            } else {
                path = dir.file("registry.json")
            }
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            precondition(fd >= 0)
            let bytes = Array(content.utf8)
            precondition(bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count)
            close(fd)
            server = DiscoveryServer(registry: try ServiceEntryParser.parse(json: content, source: path))
            writer = FileRegistryWriter(path: path, server: server, applied: knowsTheFile ? bytes : nil)
            handlers = AdminHandlers(server: server, writer: writer)
        }

        func call(_ method: String, _ name: String, _ body: [UInt8] = [], ns: String = "demo") -> (Int, String) {
            let r = handlers.handle(HTTPRequest(method: method, path: "/v1/serviceentries/\(ns)/\(name)", body: body))
            return (r.status, String(decoding: r.body, as: UTF8.self))
        }

        func fileBytes(_ p: String? = nil) -> [UInt8]? { try? RegistryLoader.readFile(path: p ?? path).0 }

        func fileJSON() throws -> JSONValue { try JSONReader.parse(#require(fileBytes())) }

        /// The file's items by namespace/name.
        func items() throws -> [String: JSONValue] {
            let root = try fileJSON()
            guard case let .array(items)? = root["items"] else {
                Issue.record("the file is not a List: \(root.serialized())")
                return [:]
            }
            var out: [String: JSONValue] = [:]
            for item in items {
                guard case let .string(name)? = item["metadata"]?["name"] else { continue }
                var ns = "default"
                if case let .string(n)? = item["metadata"]?["namespace"] { ns = n }
                out["\(ns)/\(name)"] = item
            }
            #expect(out.count == items.count, "items with the same name")
            return out
        }

        /// The file parses, and to exactly the server's registry.
        func expectFileIsTheRegistry(sourceLocation: SourceLocation = #_sourceLocation) throws {
            let parsed = try ServiceEntryParser.parse(#require(fileBytes()), source: path)
            #expect(parsed == server.registry, sourceLocation: sourceLocation)
        }

        /// Every file in the registry's directory (a failed write leaves no temporary file).
        func directoryNames() -> [String] {
            let d = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
            guard let dp = opendir(d) else { return [] }
            defer { closedir(dp) }
            var names: [String] = []
            while let ent = readdir(dp) {
                let name = withUnsafeBytes(of: ent.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                if name != "." && name != ".." { names.append(name) }
            }
            return names.sorted()
        }
    }

    static func original(_ json: String) throws -> JSONValue { try JSONReader.parse(Array(json.utf8)) }

    @Test func putAddsAnItemAndKeepsTheOthers() throws {
        let f = try Fixture()
        defer { f.dir.removeAll() }
        let (status, body) = f.call("PUT", "shop", Self.body())
        #expect(status == 200 && body.contains("\"push\":\"full\""), "\(body)")
        let items = try f.items()
        #expect(Set(items.keys) == ["demo/echo", "payments/ledger", "demo/shop"])
        // The others exactly as they were, fields fastpilot does not read included.
        #expect(items["payments/ledger"] == (try Self.original(Self.ledger)))
        #expect(items["demo/echo"] == (try Self.original(Self.echo)))
        #expect(items["demo/shop"] == (try JSONReader.parse(Self.body())))
        #expect(f.server.registry.service(namespace: "demo", hostname: "shop.demo.svc.cluster.local") != nil)
        try f.expectFileIsTheRegistry()
        // Still a List; written for people (indented, one member per line, a final newline).
        #expect(try f.fileJSON()["kind"] == .string("List"))
        let text = f.fileBytes().map { String(decoding: $0, as: UTF8.self) } ?? ""
        #expect(text.hasPrefix("{\n  \"apiVersion\": \"v1\",\n") && text.hasSuffix("}\n"), "\(text.prefix(80))")
    }

    @Test func putReplacesTheItem() throws {
        let f = try Fixture()
        defer { f.dir.removeAll() }
        #expect(f.call("PUT", "echo", Self.body("echo", addresses: ["10.0.0.1", "10.0.0.9"])).0 == 200)
        let items = try f.items()
        #expect(items.count == 2)
        #expect(items["demo/echo"] == (try JSONReader.parse(Self.body("echo", addresses: ["10.0.0.1", "10.0.0.9"]))))
        #expect(items["payments/ledger"] == (try Self.original(Self.ledger)))
        #expect(f.server.registry.service(namespace: "demo", hostname: "echo.demo.svc.cluster.local")?.endpoints.map(\.address)
                == ["10.0.0.1", "10.0.0.9"])
        try f.expectFileIsTheRegistry()
        // The same content again: the file is rewritten, the registry does not change.
        let (status, body) = f.call("PUT", "echo", Self.body("echo", addresses: ["10.0.0.1", "10.0.0.9"]))
        #expect(status == 200 && body.contains("\"push\":\"unchanged\""))
        #expect(try f.items().count == 2)
    }

    @Test func deleteRemovesTheItem() throws {
        let f = try Fixture()
        defer { f.dir.removeAll() }
        let (status, body) = f.call("DELETE", "echo")
        #expect(status == 200 && body == "{\"deleted\":\"demo/echo\"}\n")
        #expect(Set(try f.items().keys) == ["payments/ledger"])
        #expect(f.server.registry.service(namespace: "demo", hostname: "echo.demo.svc.cluster.local") == nil)
        try f.expectFileIsTheRegistry()
        // Nothing to delete: 404, and the file is not touched.
        let before = f.fileBytes()
        #expect(f.call("DELETE", "echo").0 == 404)
        #expect(f.call("DELETE", "ledger", ns: "demo").0 == 404)
        #expect(f.fileBytes() == before)
        #expect(f.call("DELETE", "ledger", ns: "payments").0 == 200)
        #expect(try f.items().isEmpty)
        #expect(f.server.registry.isEmpty)
        try f.expectFileIsTheRegistry()
    }

    /// The file keeps no versions: an entry's resourceVersion is a hash of what fastpilot
    /// serves of it. GET gives it; a write with it succeeds, one with another is 409 ("0": only
    /// if the entry does not exist); it is never written into the file.
    @Test func theResourceVersionIsAContentVersionAndIsNotWrittenToTheFile() throws {
        let f = try Fixture()
        defer { f.dir.removeAll() }
        #expect(f.call("PUT", "shop", Self.body(metadataExtra: #","resourceVersion":"42""#)).0 == 409, "no entry has version 42")
        #expect(f.call("PUT", "shop", Self.body(metadataExtra: #","resourceVersion":"0","labels":{"app":"shop"}"#)).0 == 200)
        let meta = try f.items()["demo/shop"]?["metadata"]
        #expect(meta?["resourceVersion"] == nil)
        #expect(meta?["labels"] == .object(["app": .string("shop")]))
        let (status, got) = f.call("GET", "shop")
        #expect(status == 200)
        let version = try #require(try JSONReader.parse(Array(got.utf8))["metadata"]?["resourceVersion"])
        guard case let .string(v) = version else { Issue.record("resourceVersion \(version)"); return }
        #expect(v.count == 16)
        #expect(f.call("PUT", "shop", Self.body(metadataExtra: #","resourceVersion":"0""#)).0 == 409, "it exists now")
        #expect(f.call("PUT", "shop", Self.body(addresses: [Self.address(7)], metadataExtra: ",\"resourceVersion\":\"\(v)\"")).0 == 200)
        #expect(f.call("PUT", "shop", Self.body(metadataExtra: ",\"resourceVersion\":\"\(v)\"")).0 == 409, "the entry changed since")
        #expect(try f.items()["demo/shop"]?["metadata"]?["resourceVersion"] == nil)
    }

    @Test func aBareArrayStaysAnArrayAndOneObjectBecomesAList() throws {
        let array = try Fixture(content: "[\(Self.echo)]")
        defer { array.dir.removeAll() }
        #expect(array.call("PUT", "shop", Self.body()).0 == 200)
        guard case let .array(items) = try array.fileJSON() else {
            Issue.record("no longer an array")
            return
        }
        #expect(items.count == 2)
        try array.expectFileIsTheRegistry()

        let one = try Fixture(content: Self.echo)
        defer { one.dir.removeAll() }
        #expect(one.call("PUT", "shop", Self.body()).0 == 200)
        #expect(Set(try one.items().keys) == ["demo/echo", "demo/shop"])
        try one.expectFileIsTheRegistry()
    }

    @Test func aHostOfAnotherEntryIsAConflictAndTheFileStaysAsItWas() throws {
        let f = try Fixture()
        defer { f.dir.removeAll() }
        let before = f.fileBytes()
        // shop2 claims echo's host.
        let body = Array(String(decoding: Self.body("echo"), as: UTF8.self).replacingFirst("\"name\":\"echo\"", with: "\"name\":\"echo2\"").utf8)
        let (status, message) = f.call("PUT", "echo2", body)
        #expect(status == 409 && message.contains("belongs to ServiceEntry demo/echo"), "\(message)")
        #expect(f.fileBytes() == before)
    }

    /// The temporary file cannot be created (a directory has its name): 409, the file and the
    /// registry are as they were, and nothing is left behind.
    @Test func aFileThatCannotBeWrittenRefusesTheWrite() throws {
        let f = try Fixture()
        defer { f.dir.removeAll() }
        let blocker = f.dir.file(".registry.json.fastpilot-\(getpid()).tmp")
        #expect(mkdir(blocker, 0o755) == 0)
        let before = f.fileBytes()
        let registry = f.server.registry
        let names = f.directoryNames()
        var (status, body) = f.call("PUT", "shop", Self.body())
        #expect(status == 409 && body.contains("cannot write the registry file") && body.contains("nothing changed"), "\(body)")
        (status, body) = f.call("DELETE", "echo")
        #expect(status == 409, "\(body)")
        (status, body) = f.call("PUT", "echo", Self.body("echo", addresses: ["10.0.0.7"]))
        #expect(status == 409, "\(body)")
        #expect(f.fileBytes() == before)
        #expect(f.server.registry == registry)
        #expect(f.server.registry.service(namespace: "demo", hostname: "shop.demo.svc.cluster.local") == nil)
        #expect(f.directoryNames() == names)
        // Once it can be written again, writes work.
        #expect(rmdir(blocker) == 0)
        #expect(f.call("PUT", "shop", Self.body()).0 == 200)
        try f.expectFileIsTheRegistry()
    }

    /// The registry's directory is replaced by a regular file after start (a mount gone away):
    /// 409, and the registry is as it was.
    @Test func aDirectoryReplacedByAFileRefusesTheWrite() throws {
        let f = try Fixture(subdir: "conf")
        defer { f.dir.removeAll() }
        let registry = f.server.registry
        #expect(rename(f.dir.file("conf"), f.dir.file("conf.old")) == 0)
        f.dir.write("conf", "not a directory\n")
        let (status, body) = f.call("PUT", "shop", Self.body())
        #expect(status == 409 && body.contains("nothing changed"), "\(body)")
        #expect(f.call("DELETE", "echo").0 == 409)
        #expect(f.server.registry == registry)
        // The old file is untouched.
        let old = f.fileBytes(f.dir.file("conf.old/registry.json"))
        #expect(old.map { String(decoding: $0, as: UTF8.self) } == listJSON([Self.echo, Self.ledger]))
    }

    @Test func aFileThatIsNotValidJSONNowRefusesTheWrite() throws {
        let f = try Fixture()
        defer { f.dir.removeAll() }
        let registry = f.server.registry
        f.dir.write("registry.json", "{\"items\": [")
        let (status, body) = f.call("PUT", "shop", Self.body())
        #expect(status == 409 && body.contains("not valid JSON"), "\(body)")
        #expect(f.fileBytes() == Array("{\"items\": [".utf8))
        #expect(f.server.registry == registry)
        f.dir.write("registry.json", "{\"kind\": \"List\", \"items\": {}}")
        #expect(f.call("PUT", "shop", Self.body()).0 == 409)
        #expect(f.server.registry == registry)
    }

    /// A List is an object: a PUT body that is a List naming the entry must be refused like any
    /// other body that is not one ServiceEntry, or the List itself becomes an item of the file and
    /// the file no longer parses (the next start fails on it).
    @Test func aListBodyIsNotWrittenAsAnItem() throws {
        let f = try Fixture()
        defer { f.dir.removeAll() }
        let list = Array(listJSON([String(decoding: Self.body(), as: UTF8.self)]).utf8)
        let (status, body) = f.call("PUT", "shop", list)
        #expect(status == 400, "\(body)")
        try f.expectFileIsTheRegistry()
    }

    /// The writer keeps the file it wrote; an edit by hand between two writes is not lost
    /// (it is in the next write's file) and not taken as applied (the next reload applies it).
    @Test(arguments: [false, true]) func aHandEditBetweenWritesIsKeptAndThenApplied(_ knowsTheFile: Bool) throws {
        let f = try Fixture(knowsTheFile: knowsTheFile)
        defer { f.dir.removeAll() }
        #expect(f.call("PUT", "shop", Self.body()).0 == 200)
        #expect(f.writer.alreadyApplied(try #require(f.fileBytes())) == knowsTheFile,
                "the registry reflects the written file exactly when it reflected the file before")
        // Someone edits the file: ledger's endpoint moves, and an entry is added.
        let moved = Self.ledger.replacingFirst("10.2.0.1", with: "10.2.0.99")
        f.dir.replace("registry.json", listJSON([Self.echo, moved, String(decoding: Self.body(), as: UTF8.self),
                                                 String(decoding: Self.body("extra"), as: UTF8.self)]))
        #expect(!f.writer.alreadyApplied(try #require(f.fileBytes())))
        #expect(f.call("PUT", "cart", Self.body("cart")).0 == 200)
        let items = try f.items()
        #expect(Set(items.keys) == ["demo/echo", "payments/ledger", "demo/shop", "demo/extra", "demo/cart"])
        #expect(items["payments/ledger"] == (try Self.original(moved)))
        // The write applied only its own entry; the edit waits for the reload.
        #expect(f.server.registry.service(namespace: "demo", hostname: "extra.demo.svc.cluster.local") == nil)
        #expect(!f.writer.alreadyApplied(try #require(f.fileBytes())))
        guard case .success = f.writer.reload() else {
            Issue.record("reload failed")
            return
        }
        #expect(f.server.registry.service(namespace: "demo", hostname: "extra.demo.svc.cluster.local") != nil)
        #expect(f.writer.alreadyApplied(try #require(f.fileBytes())))
        try f.expectFileIsTheRegistry()
        // A reload of the same bytes changes nothing and pushes nothing more.
        let pushes = Self.pushes(f.server)
        _ = f.writer.reload()
        #expect(Self.pushes(f.server) == pushes)
    }

    /// Two entries of a namespace claim one host: the first in the file owns it. A write to
    /// either changes which one a parse of the file picks (a delete of the owner, a put that
    /// moves the owner behind the other), so the registry is no longer taken as the file's, and
    /// the reload that follows applies the file as a restart would read it.
    @Test(arguments: ["DELETE", "PUT"]) func aHostClaimedTwiceIsLeftToTheReload(_ method: String) throws {
        let twin = Self.echo.replacingFirst("\"name\": \"echo\"", with: "\"name\": \"echo-twin\"")
            .replacingFirst("10.0.0.1", with: "10.0.0.77")
        let f = try Fixture(content: listJSON([Self.echo, Self.ledger, twin]), knowsTheFile: true)
        defer { f.dir.removeAll() }
        func owner() -> String? { f.server.registry.service(namespace: "demo", hostname: "echo.demo.svc.cluster.local")?.configName }
        #expect(owner() == "echo")
        let body = method == "PUT" ? Self.body("echo", addresses: ["10.0.0.2"]) : []
        #expect(f.call(method, "echo", body).0 == 200)
        #expect(!f.writer.alreadyApplied(try #require(f.fileBytes())), "the registry is taken as the file's")
        guard case .success = f.writer.reload() else {
            Issue.record("reload failed")
            return
        }
        #expect(owner() == "echo-twin")
        #expect(f.server.registry.service(namespace: "demo", hostname: "echo.demo.svc.cluster.local")?.endpoints.first?.address == "10.0.0.77")
        try f.expectFileIsTheRegistry()
        #expect(f.writer.alreadyApplied(try #require(f.fileBytes())))
    }

    /// The server's slot for the writer: a change the watcher reports before the writer exists
    /// is remembered, so the server applies it once started instead of dropping it.
    @Test func aChangeBeforeTheWriterExistsIsRemembered() throws {
        let f = try Fixture()
        defer { f.dir.removeAll() }
        let slot = WriterSlot()
        #expect(slot.writerOrMiss() == nil)
        #expect(slot.install(f.writer), "the missed change was forgotten")
        #expect(slot.writerOrMiss() === f.writer)
        let quiet = WriterSlot()
        #expect(!quiet.install(f.writer))
    }

    /// A delete of an entry the file does not hold: 404, the file untouched and still applied.
    @Test func aDeleteOfAMissingEntryWritesNothing() throws {
        let f = try Fixture(knowsTheFile: true)
        defer { f.dir.removeAll() }
        let before = try #require(f.fileBytes())
        #expect(f.call("DELETE", "nothere").0 == 404)
        #expect(f.fileBytes() == before)
        #expect(f.writer.alreadyApplied(before))
    }

    // MARK: with the file watcher running

    /// What the watcher's callback did. withWatcher wires the watcher as FastPilotServer.init
    /// does (a change the watcher reports makes the file writer reload the file under its lock);
    /// it copies that closure, so a change there belongs here too. The real wiring is checked
    /// end to end in theServersWatcherAndAdminWritesAgree.
    final class WatcherLog: Sendable {
        struct Entry: Sendable {
            /// What the watcher read and reported.
            let read: RegistrySnapshot
            /// What was applied (the reload's result), nil if the reload failed.
            let applied: RegistrySnapshot?
            /// The server's registry before and after.
            let diff: RegistryDiff
            /// `writesDone` when the watcher was about to apply it.
            let writesDoneBefore: Int
        }
        private let seen = Mutex<[Entry]>([])
        /// Set by the test: how many admin writes have been answered.
        let writesDone = Atomic<Int>(0)
        func record(_ e: Entry) { seen.withLock { $0.append(e) } }
        var entries: [Entry] { seen.withLock { $0 } }

        /// Waits (bounded) until the watcher's callback has applied `snapshot`.
        func waitFor(_ snapshot: RegistrySnapshot, timeout: Duration = .seconds(5)) -> Bool {
            let deadline = ContinuousClock.now.advanced(by: timeout)
            while ContinuousClock.now < deadline {
                if entries.contains(where: { $0.applied == snapshot }) { return true }
                usleep(5_000)
            }
            return entries.contains { $0.applied == snapshot }
        }
    }

    /// What the watcher skipped.
    final class Skipped: Sendable {
        let bytes = Mutex<[[UInt8]]>([])
    }

    static func pushes(_ s: DiscoveryServer) -> Int { s.metrics.inboundConfig.count + s.metrics.inboundEDS.count }

    /// Holds the watcher between reading the file and applying it, once: the first time it
    /// delivers a registry with demo/shop in it.
    final class Gate: Sendable {
        let armed = Atomic<Bool>(true)
        /// The watcher has read the file and waits.
        let arrived = Semaphore()
        let proceed = Semaphore()

        func pass(_ snapshot: RegistrySnapshot) {
            guard snapshot.service(namespace: "demo", hostname: "shop.demo.svc.cluster.local") != nil,
                  armed.exchange(false, ordering: .sequentiallyConsistent) else { return }
            arrived.signal()
            _ = proceed.wait(timeoutNanos: 10_000_000_000)
        }
    }

    /// `skipApplied`: the watcher asks the writer, as the server wires it, whether it already
    /// applied what it read (kept in `skipped`); otherwise it reports every read.
    static func withWatcher(options: RegistryWatcher.Options = RegistryWatcher.Options(), gate: Gate? = nil,
                            skipApplied: Bool = false, skipped: Skipped? = nil,
                            _ body: (Fixture, WatcherLog) throws -> Void) throws {
        let f = try Fixture(knowsTheFile: skipApplied)
        defer { f.dir.removeAll() }
        let log = WatcherLog()
        let server = f.server
        let writer = f.writer
        let skip: @Sendable ([UInt8]) -> Bool = { bytes in
            guard skipApplied, writer.alreadyApplied(bytes) else { return false }
            skipped?.bytes.withLock { $0.append(bytes) }
            return true
        }
        let w = RegistryWatcher(path: f.path, options: options, alreadyApplied: skip,
                                ownerWrites: { skipApplied ? writer.writes : 0 }) { result in
            guard case let .success(read) = result else { return }
            gate?.pass(read)
            let done = log.writesDone.load(ordering: .sequentiallyConsistent)
            let before = server.registry
            let applied = try? writer.reload().get()
            log.record(.init(read: read, applied: applied, diff: RegistryDiff(from: before, to: server.registry), writesDoneBefore: done))
        }
        guard case .success = w.start() else {
            Issue.record("the watcher did not start")
            return
        }
        defer { w.stop() }
        try body(f, log)
    }

    @Test(.timeLimit(.minutes(1))) func theWatcherDoesNotPushAWriteAgain() throws {
        try Self.withWatcher { f, log in
            let version = f.server.pushContext.version
            #expect(f.call("PUT", "shop", Self.body()).0 == 200)
            #expect(log.waitFor(f.server.registry), "the watcher never saw the write")
            // One write, one push: the watcher read what the registry already held.
            #expect(Self.pushes(f.server) == 1)
            #expect(f.server.pushContext.version == version + 1)

            #expect(f.call("PUT", "shop", Self.body(addresses: ["10.1.0.1", "10.1.0.2"])).0 == 200)
            #expect(log.waitFor(f.server.registry))
            #expect(f.call("DELETE", "echo").0 == 200)
            #expect(log.waitFor(f.server.registry))
            #expect(Self.pushes(f.server) == 3)
            #expect(f.server.metrics.inboundEDS.count == 1)
            #expect(f.server.pushContext.version == version + 3)
            try f.expectFileIsTheRegistry()
        }
    }

    /// As the server wires it: the watcher does not even parse a file the writer just wrote and
    /// applied; an edit by hand after it is read and applied as before.
    @Test(.timeLimit(.minutes(1))) func theWatcherSkipsTheWritersOwnFile() throws {
        let skipped = Skipped()
        try Self.withWatcher(skipApplied: true, skipped: skipped) { f, log in
            #expect(f.call("PUT", "shop", Self.body()).0 == 200)
            let written = try #require(f.fileBytes())
            // The watcher may also re-read the first file (a poll within a second of its write).
            func sawWritten() -> Bool { skipped.bytes.withLock { $0.contains(written) } }
            let deadline = ContinuousClock.now.advanced(by: .seconds(5))
            while ContinuousClock.now < deadline && !sawWritten() { usleep(5_000) }
            #expect(sawWritten(), "the watcher did not skip the written file")
            #expect(log.entries.isEmpty, "the watcher reported the writer's own file")
            #expect(Self.pushes(f.server) == 1)
            let moved = Self.ledger.replacingFirst("10.2.0.1", with: "10.2.0.99")
            f.dir.replace("registry.json", listJSON([Self.echo, moved, String(decoding: Self.body(), as: UTF8.self)]))
            let edited = try ServiceEntryParser.parse(json: listJSON([Self.echo, moved, String(decoding: Self.body(), as: UTF8.self)]),
                                                      source: f.path)
            #expect(log.waitFor(edited), "the watcher never applied the edit")
            #expect(log.entries.count == 1)
            #expect(Self.pushes(f.server) == 2)
            try f.expectFileIsTheRegistry()
        }
    }

    /// The file goes back to content the watcher last reported, after an admin write the
    /// watcher never read (both inside its quiet period): that content is applied again, and
    /// the write, which the file no longer holds, is rolled back as a restart would.
    @Test(.timeLimit(.minutes(1))) func contentReportedBeforeAWriteIsAppliedAgainAfterIt() throws {
        var options = RegistryWatcher.Options()
        options.quietPeriod = .milliseconds(300)
        try Self.withWatcher(options: options, skipApplied: true) { f, log in
            let moved = listJSON([Self.echo, Self.ledger.replacingFirst("10.2.0.1", with: "10.2.0.99")])
            let b = try ServiceEntryParser.parse(json: moved, source: f.path)
            f.dir.replace("registry.json", moved)
            #expect(log.waitFor(b), "the watcher never applied the edit")
            #expect(f.call("PUT", "shop", Self.body()).0 == 200)
            f.dir.replace("registry.json", moved)
            let deadline = ContinuousClock.now.advanced(by: .seconds(5))
            while ContinuousClock.now < deadline && f.server.registry != b { usleep(5_000) }
            #expect(f.server.registry == b, "the registry kept a write the file no longer holds")
            try f.expectFileIsTheRegistry()
        }
    }

    /// Many writes in a row while the watcher follows the file: every write is pushed once, and
    /// the watcher never brings back an older content of the file.
    @Test(.timeLimit(.minutes(1))) func writesInARowArePushedOnceEach() throws {
        try Self.withWatcher { f, log in
            let n = 300
            for i in 0..<n {
                let (status, body) = f.call("PUT", "shop", Self.body(addresses: [Self.address(i)]))
                #expect(status == 200, "\(body)")
                log.writesDone.store(i + 1, ordering: .sequentiallyConsistent)
            }
            let final = f.server.registry
            #expect(Self.writeIndex(final) == n - 1)
            #expect(log.waitFor(final), "the watcher never saw the last write")
            #expect(Self.rollbacks(log) == [])
            #expect(Self.pushes(f.server) == n)
            #expect(f.server.registry == final)
            try f.expectFileIsTheRegistry()
        }
    }

    /// The watcher reads the file (write 1), an admin write (write 2) is applied and answered,
    /// then the watcher applies what it read. It must not put write 1's content back: that
    /// serves and pushes endpoints the answered write 2 had replaced, until the watcher reads
    /// the file again (and pushes once more). The gate only widens the window between the
    /// watcher's read and its apply (parsing a large file, a busy CPU): without it, a watcher
    /// reading every few milliseconds during 500 writes in a row hit that window in most runs.
    @Test(.timeLimit(.minutes(1))) func aWatcherReadFromBeforeAWriteDoesNotRollItBack() throws {
        let gate = Gate()
        try Self.withWatcher(gate: gate) { f, log in
            #expect(f.call("PUT", "shop", Self.body(addresses: [Self.address(0)])).0 == 200)
            log.writesDone.store(1, ordering: .sequentiallyConsistent)
            // The watcher has read write 1 and is about to apply it.
            guard gate.arrived.wait(timeoutNanos: 5_000_000_000) else {
                Issue.record("the watcher never read write 1")
                return
            }
            #expect(f.call("PUT", "shop", Self.body(addresses: [Self.address(1)])).0 == 200)
            log.writesDone.store(2, ordering: .sequentiallyConsistent)
            let answered = f.server.registry
            #expect(Self.writeIndex(answered) == 1)
            gate.proceed.signal()
            #expect(log.waitFor(answered), "the watcher never saw write 2")
            let first = log.entries.first
            #expect(first.map { Self.writeIndex($0.read) } == 0)
            #expect(first?.diff.isEmpty == true, "applying write 1's content after write 2 changed the registry")
            #expect(Self.rollbacks(log) == [])
            #expect(Self.pushes(f.server) == 2)
            #expect(f.server.registry == answered)
        }
    }

    /// The real wiring (FastPilotServer with --registry): an admin write is pushed once, and an
    /// edit of the file by someone else after it is applied (and pushed) once too. The edit is
    /// what tells that the watcher has caught up.
    @Test(.timeLimit(.minutes(1))) func theServersWatcherAndAdminWritesAgree() throws {
        let dir = TempDir()
        defer { dir.removeAll() }
        dir.write("registry.json", listJSON([Self.echo, Self.ledger]))
        var o = ServeOptions()
        o.xdsHost = "127.0.0.1"
        o.xdsPort = 0
        o.adminPort = 0
        o.ioThreads = 1
        o.pushWorkers = 1
        o.logLevel = .error
        o.registryPath = dir.file("registry.json")
        let server = try FastPilotServer(options: o)
        defer { server.stop() }
        let d = server.discovery
        let r = server.admin.handlers.handle(HTTPRequest(method: "PUT", path: "/v1/serviceentries/demo/shop", body: Self.body()))
        #expect(r.status == 200)
        #expect(Self.pushes(d) == 1)
        // Someone edits the file: ledger's endpoint moves.
        let moved = Self.ledger.replacingFirst("10.2.0.1", with: "10.2.0.99")
        dir.replace("registry.json", listJSON([Self.echo, moved, String(decoding: Self.body(), as: UTF8.self)]))
        let deadline = ContinuousClock.now.advanced(by: .seconds(5))
        func ledgerAddress() -> String? {
            d.registry.service(namespace: "payments", hostname: "ledger.payments.svc.cluster.local")?.endpoints.first?.address
        }
        while ContinuousClock.now < deadline && ledgerAddress() != "10.2.0.99" { usleep(5_000) }
        #expect(ledgerAddress() == "10.2.0.99", "the watcher never applied the edit")
        #expect(d.registry.service(namespace: "demo", hostname: "shop.demo.svc.cluster.local") != nil)
        #expect(Self.pushes(d) == 2)
        #expect(d.metrics.inboundEDS.count == 1)
        #expect(try ServiceEntryParser.parse(RegistryLoader.readFile(path: o.registryPath!).0, source: "file") == d.registry)
    }

    static func address(_ i: Int) -> String { "10.1.\(i / 250).\(i % 250 + 1)" }

    /// Which write (0-based) a registry holds: demo/shop's endpoint address.
    static func writeIndex(_ s: RegistrySnapshot) -> Int? {
        guard let a = s.service(namespace: "demo", hostname: "shop.demo.svc.cluster.local")?.endpoints.first?.address else { return nil }
        let p = a.split(separator: ".").compactMap { Int($0) }
        return p.count == 4 ? p[2] * 250 + p[3] - 1 : nil
    }

    /// Watcher updates that changed the registry to the content of write k (1-based) after
    /// write j > k had been applied and answered.
    static func rollbacks(_ log: WatcherLog) -> [String] {
        log.entries.compactMap { e -> String? in
            guard !e.diff.isEmpty, let applied = e.applied, let k = writeIndex(applied), k + 1 < e.writesDoneBefore else { return nil }
            return "the content of write \(k + 1) applied again after write \(e.writesDoneBefore)"
        }
    }
}
