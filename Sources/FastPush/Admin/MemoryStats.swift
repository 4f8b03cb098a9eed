#if canImport(Glibc)
import Glibc
#endif
import CUring

/// /debug/memory: the heap as glibc sees it (in use vs. held free), next to RSS, to tell live
/// data from allocator retention. `?trim=true` returns free heap memory to the system first.
enum MemoryStats {
    static func json(trim: Bool) -> String {
        if trim { malloc_trim(0) }
        let m = mallinfo2()
        let rss = ProcStats.of(pid: getpid())?.rssBytes ?? 0
        return "{\"rss\":\(rss),\"heap_arena\":\(m.arena),\"heap_mmapped\":\(m.hblkhd),\"heap_in_use\":\(m.uordblks),"
            + "\"heap_free\":\(m.fordblks),\"trimmed\":\(trim)}\n"
    }
}
