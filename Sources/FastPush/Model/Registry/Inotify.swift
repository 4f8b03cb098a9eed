#if canImport(Glibc)
import Glibc
#endif

/// A non-blocking inotify instance watching one directory (the parent of the registry file:
/// watching the file itself would lose track of it on the first rename over it).
struct Inotify {
    struct Event {
        var wd: Int32
        var mask: UInt32
        var name: String
    }

    static let directoryMask = UInt32(
        IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF)

    let fd: Int32
    private(set) var wd: Int32 = -1

    /// nil when the kernel refuses (e.g. fs.inotify.max_user_instances reached); errno is kept.
    init?() {
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        if fd < 0 { return nil }
        self.fd = fd
    }

    /// Watches `directory`; false (with errno set) when it does not exist or cannot be watched.
    mutating func watch(_ directory: String) -> Bool {
        wd = inotify_add_watch(fd, directory, Self.directoryMask)
        return wd >= 0
    }

    /// The directory was deleted or moved: the kernel drops (or we drop) the watch.
    mutating func forget() {
        if wd >= 0 { _ = inotify_rm_watch(fd, wd) }  // fails harmlessly when already IN_IGNORED
        wd = -1
    }

    /// Every queued event (until EAGAIN).
    func drain() -> [Event] {
        var out: [Event] = []
        var buf = [UInt8](repeating: 0, count: 16 << 10)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return out }
            buf.withUnsafeBytes { p in
                var off = 0
                let header = MemoryLayout<inotify_event>.size  // wd, mask, cookie, len
                while off + header <= n {
                    let wd = p.loadUnaligned(fromByteOffset: off, as: Int32.self)
                    let mask = p.loadUnaligned(fromByteOffset: off + 4, as: UInt32.self)
                    let len = Int(p.loadUnaligned(fromByteOffset: off + 12, as: UInt32.self))
                    let nameBytes = p[(off + header)..<min(off + header + len, n)].prefix { $0 != 0 }
                    out.append(Event(wd: wd, mask: mask, name: String(decoding: nameBytes, as: UTF8.self)))
                    off += header + len
                }
            }
        }
    }

    func close() { _ = Glibc.close(fd) }
}
