#if canImport(Glibc)
import Glibc
#endif
import CNghttp2

/// nghttp2's allocator. nghttp2 mallocs a ~16 KiB frame buffer per session up front and uses
/// only its start; packed between other heap objects, more of its pages end up resident. Large
/// allocations therefore get a mapping of their own: pages never touched cost no memory, which
/// matters at one session per client (the budget per idle stream is a few KiB).
enum H2Memory {
    /// Allocations at least this large are mapped on their own.
    static let mapThreshold = 8192
    static let header = 16
    static let page = Int(sysconf(Int32(_SC_PAGESIZE)))


    /// An allocator whose blocks add their usable size to `*counter` while they live (nil: no
    /// count). nghttp2 copies the struct into the session, so each session can have its own
    /// counter: the session's memory (streams, HPACK tables, queued frames) is then known, and a
    /// peer that makes it grow without bound (frames it never reads the answers to) is cut off.
    static func counting(_ counter: UnsafeMutablePointer<Int>?) -> nghttp2_mem {
        nghttp2_mem(mem_user_data: counter.map { UnsafeMutableRawPointer($0) },
                    malloc: { size, ud in H2Memory.alloc(size, zeroed: false, ud) },
                    free: { p, ud in H2Memory.release(p, ud) },
                    calloc: { n, size, ud in H2Memory.alloc(n * size, zeroed: true, ud) },
                    realloc: { p, size, ud in H2Memory.resize(p, size, ud) })
    }

    @inline(__always)
    static func count(_ ud: UnsafeMutableRawPointer?, _ delta: Int) {
        guard let ud else { return }
        ud.assumingMemoryBound(to: Int.self).pointee += delta
    }

    /// Header before every block: its usable size, and whether it is mapped (1) or malloc'd (0).
    static func alloc(_ size: Int, zeroed: Bool, _ ud: UnsafeMutableRawPointer? = nil) -> UnsafeMutableRawPointer? {
        let total = size + header
        let base: UnsafeMutableRawPointer
        var mapped = 0
        if size >= mapThreshold {
            let len = (total + page - 1) / page * page
            guard let m = mmap(nil, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), m != MAP_FAILED else { return nil }
            base = m
            mapped = 1
        } else {
            guard let m = zeroed ? calloc(1, total) : malloc(total) else { return nil }
            base = m
        }
        base.storeBytes(of: size, as: Int.self)
        base.storeBytes(of: mapped, toByteOffset: 8, as: Int.self)
        count(ud, size)
        return base + header
    }

    static func release(_ p: UnsafeMutableRawPointer?, _ ud: UnsafeMutableRawPointer? = nil) {
        guard let p else { return }
        let base = p - header
        let size = base.load(as: Int.self)
        count(ud, -size)
        if base.load(fromByteOffset: 8, as: Int.self) == 1 {
            munmap(base, (size + header + page - 1) / page * page)
        } else {
            free(base)
        }
    }

    static func resize(_ p: UnsafeMutableRawPointer?, _ size: Int, _ ud: UnsafeMutableRawPointer? = nil) -> UnsafeMutableRawPointer? {
        guard let p else { return alloc(size, zeroed: false, ud) }
        let old = (p - header).load(as: Int.self)
        guard let n = alloc(size, zeroed: false, ud) else { return nil }
        n.copyMemory(from: p, byteCount: min(old, size))
        release(p, ud)
        return n
    }
}
