#if canImport(Glibc)
import Glibc
#endif
@testable import FastPush

/// A ServiceEntry JSON object for tests; `spec` is spliced in verbatim.
func serviceEntryJSON(name: String, namespace: String? = "default", spec: String,
                      apiVersion: String = "networking.istio.io/v1") -> String {
    let ns = namespace.map { #", "namespace": "\#($0)""# } ?? ""
    return #"{"apiVersion": "\#(apiVersion)", "kind": "ServiceEntry", "metadata": {"name": "\#(name)"\#(ns)}, "spec": \#(spec)}"#
}

func listJSON(_ items: [String]) -> String {
    #"{"apiVersion": "v1", "kind": "List", "items": [\#(items.joined(separator: ",\n"))]}"#
}

/// The error a parse must fail with; records an issue and returns nil if it succeeds.
func parseError(_ json: String, source: String = "registry.json") -> RegistryError? {
    do {
        _ = try ServiceEntryParser.parse(json: json, source: source)
        return nil
    } catch {
        return error
    }
}

/// A fresh directory under /tmp, removed by `remove()`.
struct TempDir {
    let path: String

    init() {
        var template = Array("/tmp/fastpilot-registry-XXXXXX".utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(p != nil, "mkdtemp failed")
        path = String(cString: p!)
    }

    func file(_ name: String) -> String { "\(path)/\(name)" }

    /// Writes in place (open with O_TRUNC, write, close): one IN_CLOSE_WRITE.
    func write(_ name: String, _ content: String) {
        let fd = open(file(name), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        precondition(fd >= 0, "open \(name) failed")
        writeAll(fd, content)
        close(fd)
    }

    /// Writes a temporary file, then renames it over `name`: the atomic-replace pattern.
    func replace(_ name: String, _ content: String) {
        write(".\(name).tmp", content)
        precondition(rename(file(".\(name).tmp"), file(name)) == 0, "rename failed")
    }

    func remove(_ name: String) { unlink(file(name)) }

    /// Removes the directory tree (test files only, never follows symlinks out of it).
    func removeAll() { Self.removeTree(path) }

    private static func removeTree(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            if let dir = opendir(path) {
                var names: [String] = []
                while let ent = readdir(dir) {
                    let name = withUnsafeBytes(of: ent.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                    if name != "." && name != ".." { names.append(name) }
                }
                closedir(dir)
                for n in names { removeTree("\(path)/\(n)") }
            }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    private func writeAll(_ fd: Int32, _ content: String) {
        var bytes = Array(content.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + off, $0.count - off) }
            precondition(n > 0, "write failed")
            off += n
        }
    }
}
