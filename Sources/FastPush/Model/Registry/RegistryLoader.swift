#if canImport(Glibc)
import Glibc
#endif

/// Reads and parses a registry file. File problems (missing, permission, a directory, too
/// large) are `RegistryError`s of kind `.unreadable`, like parse errors.
public enum RegistryLoader {
    /// Bigger files are refused rather than read into memory (guards against /dev/zero & co).
    public static let maxFileSize = 256 << 20

    public static func load(path: String) throws(RegistryError) -> RegistrySnapshot {
        let (bytes, _) = try readFile(path: path)
        return try ServiceEntryParser.parse(bytes, source: path)
    }

    /// The file's bytes and the identity of what was read (from the open descriptor, so it
    /// describes exactly these bytes even if the path is replaced meanwhile).
    static func readFile(path: String) throws(RegistryError) -> ([UInt8], FileIdentity) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw unreadable(path, "cannot open", errno) }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw unreadable(path, "cannot stat", errno) }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw unreadable(path, "cannot read", EISDIR) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(st.st_size) + 1)
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw unreadable(path, "cannot read", errno)
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
            if bytes.count > maxFileSize {
                throw RegistryError(kind: .unreadable, file: path,
                                    "file is larger than \(maxFileSize >> 20) MiB; refusing to load it")
            }
        }
        return (bytes, FileIdentity(st))
    }

    private static func unreadable(_ path: String, _ what: String, _ err: Int32) -> RegistryError {
        RegistryError(kind: .unreadable, file: path, "\(what): \(String(cString: strerror(err)))")
    }
}

/// What `stat` says about a file: when all of it is unchanged the content is taken as
/// unchanged by the watcher's periodic poll.
struct FileIdentity: Equatable, Sendable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    var mtimeSec: Int64
    var mtimeNsec: Int64
    var ctimeSec: Int64
    var ctimeNsec: Int64

    init(_ st: stat) {
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
        size = Int64(st.st_size)
        mtimeSec = Int64(st.st_mtim.tv_sec)
        mtimeNsec = Int64(st.st_mtim.tv_nsec)
        ctimeSec = Int64(st.st_ctim.tv_sec)
        ctimeNsec = Int64(st.st_ctim.tv_nsec)
    }

    /// nil when the path does not exist (or cannot be stat'ed); follows symlinks.
    static func of(path: String) -> FileIdentity? {
        var st = stat()
        return stat(path, &st) == 0 ? FileIdentity(st) : nil
    }
}
