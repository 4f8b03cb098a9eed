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

    nonisolated(unsafe) static let allocator: UnsafeMutablePointer<nghttp2_mem> = {
        let m = UnsafeMutablePointer<nghttp2_mem>.allocate(capacity: 1)
        m.initialize(to: nghttp2_mem(mem_user_data: nil, malloc: { size, _ in H2Memory.alloc(size, zeroed: false) },
                                     free: { p, _ in H2Memory.release(p) },
                                     calloc: { n, size, _ in H2Memory.alloc(n * size, zeroed: true) },
                                     realloc: { p, size, _ in H2Memory.resize(p, size) }))
        return m
    }()

    /// Header before every block: its usable size, and whether it is mapped (1) or malloc'd (0).
    static func alloc(_ size: Int, zeroed: Bool) -> UnsafeMutableRawPointer? {
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
        return base + header
    }

    static func release(_ p: UnsafeMutableRawPointer?) {
        guard let p else { return }
        let base = p - header
        let size = base.load(as: Int.self)
        if base.load(fromByteOffset: 8, as: Int.self) == 1 {
            munmap(base, (size + header + page - 1) / page * page)
        } else {
            free(base)
        }
    }

    static func resize(_ p: UnsafeMutableRawPointer?, _ size: Int) -> UnsafeMutableRawPointer? {
        guard let p else { return alloc(size, zeroed: false) }
        let old = (p - header).load(as: Int.self)
        guard let n = alloc(size, zeroed: false) else { return nil }
        n.copyMemory(from: p, byteCount: min(old, size))
        release(p)
        return n
    }
}
