#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Admin writes with `--registry FILE`: the entry is written into the file first (a temporary
/// file beside it, fsync, rename over it, fsync of the directory), then applied, and only then
/// answered; so a write that was answered survives a crash. A file that cannot be written (a
/// read-only ConfigMap mount) refuses the write with 409, and nothing changes. The file watcher
/// then sees content the registry already holds and skips it: nothing is pushed twice.
/// Other items of the file are kept as they are (as JSON values; key order and spacing are
/// rewritten).
///
/// The file as last read or written is kept (`RegistryFileDocument`): a write to a file that is
/// still those bytes parses nothing and serializes only its own item, and the watcher's read of
/// a file the registry already reflects is not parsed or applied again.
///
/// Sendable: one write at a time (read, modify, write, apply) under `lock`, which also guards
/// the kept file.
public final class FileRegistryWriter: RegistryWriter, Sendable {
    public let path: String
    let server: DiscoveryServer
    private let lock = Mutex<Kept?>(nil)
    private let writeCount = Atomic<Int>(0)

    /// The file's bytes as last read or written, its parsed document (built on the first write
    /// after a read), and whether the registry reflects exactly these bytes.
    private struct Kept {
        var bytes: [UInt8]
        var document: RegistryFileDocument?
        var applied: Bool
    }

    /// `applied`: the file's bytes the server's registry was loaded from, if known.
    public init(path: String, server: DiscoveryServer, applied: [UInt8]? = nil) {
        self.path = path
        self.server = server
        if let applied { lock.withLock { $0 = Kept(bytes: applied, document: nil, applied: true) } }
    }

    public func put(_ entry: EntryWrite, done: @escaping @Sendable (WriteOutcome) -> Void) {
        done(lock.withLock { kept in
            if let refused = server.versionConflict(entry.expectedVersion, namespace: entry.namespace, name: entry.name) { return refused }
            if let owner = server.hostOwner(of: entry.services, except: entry.namespace, entry.name) {
                return .refused(status: 409, message: "host \(owner.hostname) in namespace \(owner.namespace) belongs to ServiceEntry \(owner.namespace)/\(owner.configName)")
            }
            var shared = false
            switch rewrite(&kept, { doc in
                shared = doc.sharesHost(namespace: entry.namespace, name: entry.name)
                doc.remove(namespace: entry.namespace, name: entry.name)
                doc.append(entry.object)
                shared = shared || doc.sharesHost(namespace: entry.namespace, name: entry.name)
                return true
            }) {
            case let .failure(e): return .refused(status: e.status, message: e.message)
            case .success: break
            }
            let (diff, conflict) = server.replaceEntry(namespace: entry.namespace, name: entry.name, with: entry.services)
            // The registry then differs from a parse of the file: the watcher must apply it.
            if conflict != nil || shared { kept?.applied = false }
            return .applied(body: ServiceEntryAPI.summary(entry.namespace, entry.name, diff))
        })
    }

    public func delete(namespace: String, name: String, expectedVersion: String?, done: @escaping @Sendable (WriteOutcome) -> Void) {
        done(lock.withLock { kept in
            if let refused = server.versionConflict(expectedVersion, namespace: namespace, name: name) { return refused }
            var found = false, shared = false
            switch rewrite(&kept, { doc in
                shared = doc.sharesHost(namespace: namespace, name: name)
                found = doc.remove(namespace: namespace, name: name)
                return found
            }) {
            case let .failure(e): return .refused(status: e.status, message: e.message)
            case .success: break
            }
            if shared { kept?.applied = false }
            guard found else { return .refused(status: 404, message: "no ServiceEntry \(namespace)/\(name) in \(path)") }
            _ = server.replaceEntry(namespace: namespace, name: name, with: [])
            return .applied(body: "{\"deleted\":\(JSONText.quote("\(namespace)/\(name)"))}\n")
        })
    }

    /// The file watcher saw a change: the file is read again under the writers' lock, so that a
    /// change the watcher read before an admin write landed is never applied after it (that
    /// would roll the write back until the next reload, and push it twice).
    public func reload() -> Result<RegistrySnapshot, RegistryError> {
        lock.withLock { kept in
            do throws(RegistryError) {
                let bytes = try RegistryLoader.readFile(path: path).0
                if let k = kept, k.applied, Self.same(k.bytes, bytes) { return .success(server.registry) }
                let snapshot = try ServiceEntryParser.parse(bytes, source: path)
                server.updateRegistry(snapshot)
                kept = Kept(bytes: bytes, document: nil, applied: true)
                return .success(snapshot)
            } catch {
                return .failure(error)
            }
        }
    }

    /// Whether the registry already reflects exactly `bytes` (the watcher skips such a read:
    /// the file this writer just wrote).
    public func alreadyApplied(_ bytes: [UInt8]) -> Bool {
        lock.withLock { kept in kept.map { $0.applied && Self.same($0.bytes, bytes) } ?? false }
    }

    /// How many times this writer has written the file.
    public var writes: Int { writeCount.load(ordering: .acquiring) }

    static func same(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        a.count == b.count && a.withUnsafeBytes { x in b.withUnsafeBytes { y in a.isEmpty || memcmp(x.baseAddress!, y.baseAddress!, a.count) == 0 } }
    }

    public func get(namespace: String, name: String) -> String? { server.versionedEntry(namespace: namespace, name: name) }

    public func list() -> String { server.entryList }

    /// Reads the file, changes its document (`change` says whether anything changed), and
    /// writes it back durably. A file that is still the bytes in `kept` is not parsed again.
    private func rewrite(_ kept: inout Kept?, _ change: (inout RegistryFileDocument) -> Bool) -> Result<Void, WriteRefusal> {
        let bytes: [UInt8]
        do { bytes = try RegistryLoader.readFile(path: path).0 } catch {
            return .failure(WriteRefusal(409, "cannot read the registry file: \(error.description); nothing changed"))
        }
        let unchanged = kept.map { Self.same($0.bytes, bytes) } ?? false
        var doc: RegistryFileDocument
        if unchanged, let d = kept?.document {
            doc = d
        } else {
            let root: JSONValue
            do { root = try JSONReader.parse(bytes) } catch {
                return .failure(WriteRefusal(409, "the registry file \(path) is not valid JSON now (line \(error.line)); fix it first; nothing changed"))
            }
            guard let d = RegistryFileDocument(root: root) else {
                return .failure(WriteRefusal(409, "the registry file \(path): items is not an array; nothing changed"))
            }
            doc = d
        }
        // The registry reflects the new file only if it reflected the old one (a change made
        // by hand and not yet read by the watcher is applied when the watcher reads it).
        let applied = unchanged && kept?.applied == true
        let before = doc
        guard change(&doc) else {
            kept = Kept(bytes: bytes, document: before, applied: applied)
            return .success(())
        }
        let out = Array(doc.text().utf8)
        if let e = Self.writeDurably(path, out) {
            Log.warn("registry_write_failed", ["file": path, "error": e])
            return .failure(WriteRefusal(409, "cannot write the registry file \(path): \(e); the write is refused and nothing changed"))
        }
        kept = Kept(bytes: out, document: doc, applied: applied)
        writeCount.add(1, ordering: .releasing)
        return .success(())
    }

    /// temp file in the same directory, write, fsync, rename over `path`, fsync the directory.
    /// nil when done; else what failed (the temporary file is removed).
    static func writeDurably(_ path: String, _ bytes: [UInt8]) -> String? {
        let dir = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let base = path.lastIndex(of: "/").map { String(path[path.index(after: $0)...]) } ?? path
        let tmp = "\(dir.isEmpty ? "/" : dir)/.\(base).fastpilot-\(getpid()).tmp"
        func failed(_ what: String) -> String { "\(what): \(String(cString: strerror(errno)))" }
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return failed("create \(tmp)") }
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                let e = failed("write \(tmp)")
                close(fd); unlink(tmp)
                return e
            }
            off += n
        }
        if fsync(fd) != 0 { let e = failed("fsync \(tmp)"); close(fd); unlink(tmp); return e }
        close(fd)
        if rename(tmp, path) != 0 { let e = failed("rename over \(path)"); unlink(tmp); return e }
        let dfd = open(dir.isEmpty ? "/" : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); close(dfd) }
        return nil
    }
}
