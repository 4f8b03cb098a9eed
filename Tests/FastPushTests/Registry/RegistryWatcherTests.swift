#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
@testable import FastPush

/// Every wait is bounded (5 s); nothing asserts how fast a change arrives.
@Suite struct RegistryWatcherTests {
    /// Collects callbacks from the watcher thread.
    final class Recorder: Sendable {
        private let results = Mutex<[Result<RegistrySnapshot, RegistryError>]>([])

        func record(_ r: Result<RegistrySnapshot, RegistryError>) { results.withLock { $0.append(r) } }
        var all: [Result<RegistrySnapshot, RegistryError>] { results.withLock { $0 } }
        var count: Int { results.withLock { $0.count } }

        /// Waits up to `timeout` for at least `n` results.
        func waitFor(_ n: Int, timeout: Duration = .seconds(5)) -> Bool {
            let deadline = ContinuousClock.now.advanced(by: timeout)
            while ContinuousClock.now < deadline {
                if count >= n { return true }
                usleep(10_000)
            }
            return count >= n
        }
    }

    /// A valid registry whose only endpoint address tells versions apart.
    static func registry(_ address: String) -> String {
        listJSON([serviceEntryJSON(name: "echo", namespace: "demo", spec: #"""
            {"hosts": ["echo.demo"], "ports": [{"name": "grpc", "number": 8080}], "resolution": "STATIC",
             "endpoints": [{"address": "\#(address)"}]}
            """#)])
    }

    /// The endpoint address of a snapshot result, or the error kind.
    static func summary(_ r: Result<RegistrySnapshot, RegistryError>) -> String {
        switch r {
        case .success(let s): s.services.first?.endpoints.first?.address ?? "empty"
        case .failure(let e): "error:\(e.kind)"
        }
    }

    /// inotify only in practice: the fallback poll is too slow to be what passes these tests.
    static var inotifyOnly: RegistryWatcher.Options {
        var o = RegistryWatcher.Options()
        o.pollInterval = .seconds(60)
        return o
    }

    private func withWatcher(options: RegistryWatcher.Options = inotifyOnly, initial: String? = registry("10.0.0.1"),
                             _ body: (TempDir, String, RegistryWatcher, Recorder) throws -> Void) rethrows {
        let dir = TempDir()
        defer { dir.removeAll() }
        if let initial { dir.write("registry.json", initial) }
        let rec = Recorder()
        let path = dir.file("registry.json")
        let w = RegistryWatcher(path: path, options: options) { rec.record($0) }
        defer { w.stop() }
        try body(dir, path, w, rec)
    }

    @Test func startReturnsTheCurrentContent() {
        withWatcher { _, _, w, rec in
            let first = w.start()
            #expect(Self.summary(first) == "10.0.0.1")
            usleep(100_000)
            #expect(rec.count == 0)  // the initial content is returned, not also called back
        }
    }

    @Test func seesAnInPlaceRewrite() {
        withWatcher { dir, _, w, rec in
            _ = w.start()
            dir.write("registry.json", Self.registry("10.0.0.2"))
            #expect(rec.waitFor(1))
            #expect(rec.all.map(Self.summary) == ["10.0.0.2"])
        }
    }

    @Test func seesARenameOverTheFile() {
        withWatcher { dir, _, w, rec in
            _ = w.start()
            dir.replace("registry.json", Self.registry("10.0.0.3"))
            #expect(rec.waitFor(1))
            dir.replace("registry.json", Self.registry("10.0.0.4"))
            #expect(rec.waitFor(2))
            #expect(rec.all.map(Self.summary) == ["10.0.0.3", "10.0.0.4"])
        }
    }

    @Test func seesTruncateThenWrite() {
        withWatcher { dir, path, w, rec in
            _ = w.start()
            let fd = open(path, O_WRONLY | O_CLOEXEC)
            #expect(ftruncate(fd, 0) == 0)
            let text = Array(Self.registry("10.0.0.5").utf8)
            #expect(text.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } == text.count)
            close(fd)
            #expect(rec.waitFor(1))
            #expect(rec.all.map(Self.summary) == ["10.0.0.5"])
        }
    }

    @Test func invalidContentIsReportedOnceThenTheNextValidWriteIsASnapshot() {
        withWatcher { dir, path, w, rec in
            _ = w.start()
            dir.write("registry.json", "{\"items\": [")
            #expect(rec.waitFor(1))
            guard case .failure(let e)? = rec.all.first else {
                Issue.record("expected an error, got \(rec.all)"); return
            }
            #expect(e.kind == .malformedJSON)
            #expect(e.description.hasPrefix(path))

            // The same invalid bytes again (a no-op save): not reported a second time.
            dir.write("registry.json", "{\"items\": [")
            usleep(300_000)
            #expect(rec.count == 1)

            dir.write("registry.json", Self.registry("10.0.0.6"))
            #expect(rec.waitFor(2))
            #expect(rec.all.map(Self.summary) == ["error:malformedJSON", "10.0.0.6"])
        }
    }

    @Test func deleteIsReportedOnceAndRecreateIsSeen() {
        withWatcher { dir, path, w, rec in
            _ = w.start()
            dir.remove("registry.json")
            #expect(rec.waitFor(1))
            guard case .failure(let e)? = rec.all.first else {
                Issue.record("expected an error, got \(rec.all)"); return
            }
            #expect(e.kind == .removed)
            #expect(e.description == "\(path): registry file was removed; keeping the last good registry")
            usleep(300_000)
            #expect(rec.count == 1)

            dir.write("registry.json", Self.registry("10.0.0.7"))
            #expect(rec.waitFor(2))
            #expect(rec.all.map(Self.summary) == ["error:removed", "10.0.0.7"])
        }
    }

    @Test func fastDeleteAndRecreateIsOneSnapshot() {
        withWatcher { dir, _, w, rec in
            _ = w.start()
            dir.remove("registry.json")
            dir.write("registry.json", Self.registry("10.0.0.8"))
            #expect(rec.waitFor(1))
            usleep(200_000)
            // Usually coalesced into the new content alone; a slow machine may report the removal first.
            let seen = rec.all.map(Self.summary)
            #expect(seen == ["10.0.0.8"] || seen == ["error:removed", "10.0.0.8"])
        }
    }

    @Test func otherFilesInTheDirectoryAreIgnored() {
        withWatcher { dir, _, w, rec in
            _ = w.start()
            dir.write("other.json", "garbage")
            dir.remove("other.json")
            usleep(300_000)
            #expect(rec.count == 0)
        }
    }

    @Test func seesAConfigMapStyleSymlinkSwap() {
        withWatcher(initial: nil) { dir, path, w, rec in
            // Kubernetes' atomic writer: registry.json -> ..data/registry.json, ..data -> ..v1
            mkdir(dir.file("..v1"), 0o755)
            dir.write("..v1/registry.json", Self.registry("10.0.1.1"))
            symlink("..v1", dir.file("..data"))
            symlink("..data/registry.json", path)
            #expect(Self.summary(w.start()) == "10.0.1.1")

            mkdir(dir.file("..v2"), 0o755)
            dir.write("..v2/registry.json", Self.registry("10.0.1.2"))
            symlink("..v2", dir.file("..data_tmp"))
            #expect(rename(dir.file("..data_tmp"), dir.file("..data")) == 0)
            #expect(rec.waitFor(1))
            #expect(rec.all.map(Self.summary) == ["10.0.1.2"])
        }
    }

    @Test func pollOnlyModeSeesChanges() {
        var o = RegistryWatcher.Options()
        o.useInotify = false
        o.pollInterval = .milliseconds(50)
        withWatcher(options: o) { dir, _, w, rec in
            _ = w.start()
            dir.replace("registry.json", Self.registry("10.0.2.1"))
            #expect(rec.waitFor(1))
            dir.remove("registry.json")
            #expect(rec.waitFor(2))
            #expect(rec.all.map(Self.summary) == ["10.0.2.1", "error:removed"])
        }
    }

    @Test func missingFileAtStartIsAnErrorAndItsCreationIsSeen() {
        withWatcher(initial: nil) { dir, _, w, rec in
            guard case .failure(let e) = w.start() else {
                Issue.record("expected an error"); return
            }
            #expect(e.kind == .unreadable)
            dir.write("registry.json", Self.registry("10.0.3.1"))
            #expect(rec.waitFor(1))
            #expect(rec.all.map(Self.summary) == ["10.0.3.1"])
        }
    }

    @Test func noCallbacksAfterStop() {
        withWatcher { dir, _, w, rec in
            _ = w.start()
            w.stop()
            w.stop()  // idempotent
            dir.write("registry.json", Self.registry("10.0.4.1"))
            usleep(300_000)
            #expect(rec.count == 0)
        }
    }

    @Test func stopFromTheCallbackDoesNotDeadlock() {
        let dir = TempDir()
        defer { dir.removeAll() }
        dir.write("registry.json", Self.registry("10.0.5.1"))
        let rec = Recorder()
        let box = Mutex<RegistryWatcher?>(nil)
        let w = RegistryWatcher(path: dir.file("registry.json"), options: Self.inotifyOnly) { r in
            rec.record(r)
            box.withLock { $0 }?.stop()
        }
        box.withLock { $0 = w }
        _ = w.start()
        dir.write("registry.json", Self.registry("10.0.5.2"))
        #expect(rec.waitFor(1))
        dir.write("registry.json", Self.registry("10.0.5.3"))
        usleep(300_000)
        #expect(rec.all.map(Self.summary) == ["10.0.5.2"])
        w.stop()
        box.withLock { $0 = nil }
    }
}
