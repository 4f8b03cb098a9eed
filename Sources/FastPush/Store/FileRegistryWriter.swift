#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Admin writes with `--registry FILE`: the entry is written into the file first (a temporary
/// file beside it, fsync, rename over it, fsync of the directory), then applied, and only then
/// answered; so a write that was answered survives a crash. A file that cannot be written (a
/// read-only ConfigMap mount) refuses the write with 409, and nothing changes. The file watcher
/// then sees content the registry already holds: its diff is empty, nothing is pushed twice.
/// Other items of the file are kept as they are (as JSON values; key order and spacing are
/// rewritten).
///
/// Sendable: one write at a time (read, modify, write, apply) under `lock`.
public final class FileRegistryWriter: RegistryWriter, Sendable {
    public let path: String
    let server: DiscoveryServer
    private let lock = Mutex<Void>(())

    public init(path: String, server: DiscoveryServer) {
        self.path = path
        self.server = server
    }

    public func put(_ entry: EntryWrite, done: @escaping @Sendable (WriteOutcome) -> Void) {
        done(lock.withLock { _ in
            if let refused = server.versionConflict(entry.expectedVersion, namespace: entry.namespace, name: entry.name) { return refused }
            if let owner = server.hostOwner(of: entry.services, except: entry.namespace, entry.name) {
                return .refused(status: 409, message: "host \(owner.hostname) in namespace \(owner.namespace) belongs to ServiceEntry \(owner.namespace)/\(owner.configName)")
            }
            switch rewrite({ items in
                var out = items.filter { !Self.names($0, entry.namespace, entry.name) }
                out.append(entry.object)
                return out
            }) {
            case let .failure(e): return .refused(status: e.status, message: e.message)
            case .success: break
            }
            let (diff, _) = server.replaceEntry(namespace: entry.namespace, name: entry.name, with: entry.services)
            return .applied(body: ServiceEntryAPI.summary(entry.namespace, entry.name, diff))
        })
    }

    public func delete(namespace: String, name: String, expectedVersion: String?, done: @escaping @Sendable (WriteOutcome) -> Void) {
        done(lock.withLock { _ in
            if let refused = server.versionConflict(expectedVersion, namespace: namespace, name: name) { return refused }
            var found = false
            switch rewrite({ items in
                let out = items.filter { !Self.names($0, namespace, name) }
                found = out.count != items.count
                return out
            }, onlyIf: { found }) {
            case let .failure(e): return .refused(status: e.status, message: e.message)
            case .success: break
            }
            guard found else { return .refused(status: 404, message: "no ServiceEntry \(namespace)/\(name) in \(path)") }
            _ = server.replaceEntry(namespace: namespace, name: name, with: [])
            return .applied(body: "{\"deleted\":\(JSONText.quote("\(namespace)/\(name)"))}\n")
        })
    }

    /// The file watcher saw a change: the file is read again under the writers' lock, so that a
    /// change the watcher read before an admin write landed is never applied after it (that
    /// would roll the write back until the next reload, and push it twice).
    public func reload() -> Result<RegistrySnapshot, RegistryError> {
        lock.withLock { _ in
            do throws(RegistryError) {
                let snapshot = try ServiceEntryParser.parse(try RegistryLoader.readFile(path: path).0, source: path)
                server.updateRegistry(snapshot)
                return .success(snapshot)
            } catch {
                return .failure(error)
            }
        }
    }

    public func get(namespace: String, name: String) -> String? { server.versionedEntry(namespace: namespace, name: name) }

    public func list() -> String { server.entryList }

    /// Whether a file item is ServiceEntry `namespace/name`.
    static func names(_ item: JSONValue, _ namespace: String, _ name: String) -> Bool {
        guard case let .string(n)? = item["metadata"]?["name"], n == name else { return false }
        if case let .string(ns)? = item["metadata"]?["namespace"] { return ns == namespace }
        return namespace == "default"
    }

    /// Reads the file, changes its items, and writes it back durably (unless `onlyIf` says no).
    private func rewrite(_ change: ([JSONValue]) -> [JSONValue], onlyIf: () -> Bool = { true }) -> Result<Void, WriteRefusal> {
        let bytes: [UInt8]
        do { bytes = try RegistryLoader.readFile(path: path).0 } catch {
            return .failure(WriteRefusal(409, "cannot read the registry file: \(error.description); nothing changed"))
        }
        let root: JSONValue
        do { root = try JSONReader.parse(bytes) } catch {
            return .failure(WriteRefusal(409, "the registry file \(path) is not valid JSON now (line \(error.line)); fix it first; nothing changed"))
        }
        let updated: JSONValue
        switch root {
        case let .object(o) where o["items"] != nil:
            guard case let .array(items)? = o["items"] else {
                return .failure(WriteRefusal(409, "the registry file \(path): items is not an array; nothing changed"))
            }
            updated = root.setting(["items"], to: .array(change(items)))
        case let .array(items):
            updated = .array(change(items))
        default:
            // One ServiceEntry object: it becomes a List.
            updated = .object(["apiVersion": .string("v1"), "kind": .string("List"), "items": .array(change([root]))])
        }
        guard onlyIf() else { return .success(()) }
        if let e = Self.writeDurably(path, Array((updated.serialized(pretty: true) + "\n").utf8)) {
            Log.warn("registry_write_failed", ["file": path, "error": e])
            return .failure(WriteRefusal(409, "cannot write the registry file \(path): \(e); the write is refused and nothing changed"))
        }
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
