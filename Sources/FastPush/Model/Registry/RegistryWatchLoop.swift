#if canImport(Glibc)
import Glibc
#endif

/// The watcher thread's body and its bookkeeping. Confined to that thread (after `prepare()`,
/// which runs before the thread starts), so none of it needs a lock.
final class RegistryWatchLoop {
    /// What was last reported, so the same content (or the same absence) is reported once.
    private enum Reported: Equatable {
        case nothing
        case content(count: Int, hash: Int)
        case unreadable(String)
        case removed
        /// Content its owner had already applied (not parsed, not reported).
        case applied
    }

    private let watcher: RegistryWatcher
    private let path: String
    private let directory: String
    private let name: String
    private let options: RegistryWatcher.Options
    private let wakeFd: Int32
    private let clock = ContinuousClock()

    private var inotify: Inotify?
    private var reported = Reported.nothing
    /// The owner's write count when `reported` was last set.
    private var reportedWrites = 0
    /// The bytes the first read parsed (kept only until `start()` hands them over).
    var initialBytes: [UInt8]?
    /// `stat` of what was last read, and the wall-clock time just before that read.
    private var lastIdentity: FileIdentity?
    private var lastReadAt = timespec()
    /// When the pending reload is due, and when the burst that scheduled it began.
    private var due: ContinuousClock.Instant?
    private var burstStart: ContinuousClock.Instant?

    init(watcher: RegistryWatcher, wakeFd: Int32) {
        self.watcher = watcher
        self.path = watcher.path
        self.options = watcher.options
        self.wakeFd = wakeFd
        if let slash = path.lastIndex(of: "/") {
            let dir = String(path[..<slash])
            directory = dir.isEmpty ? "/" : dir
            name = String(path[path.index(after: slash)...])
        } else {
            directory = "."
            name = path
        }
    }

    /// Installs the watch, then does the initial read (in that order, so no change is lost).
    func prepare() -> Result<RegistrySnapshot, RegistryError> {
        if options.useInotify {
            inotify = Inotify()
            if inotify == nil {
                Log.warn("registry_watch_degraded", ["path": path, "reason": "inotify_init1: " + String(cString: strerror(errno)),
                                                     "fallback": "poll"])
            } else if !inotify!.watch(directory) {
                Log.warn("registry_watch_degraded", ["path": path, "reason": "inotify_add_watch \(directory): "
                                                     + String(cString: strerror(errno)), "fallback": "poll, retrying the watch"])
            }
        }
        return reload(keepBytes: true) ?? .failure(RegistryError(kind: .unreadable, file: path, "no content"))
    }

    func run() {
        defer {
            inotify?.close()
            close(wakeFd)
            watcher.threadExited()
        }
        var nextPoll = clock.now.advanced(by: options.pollInterval)
        while true {
            let deadline = min(due ?? nextPoll, nextPoll)
            var fds = [pollfd(fd: wakeFd, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: inotify?.fd ?? -1, events: Int16(POLLIN), revents: 0)]
            let rc = poll(&fds, 2, Self.milliseconds(until: deadline, clock.now))
            if rc < 0 && errno != EINTR {
                Log.error("registry_watch_failed", ["path": path, "reason": "poll: " + String(cString: strerror(errno))])
                return
            }
            if rc > 0 && fds[0].revents != 0 { return }  // stop() wrote or closed the pipe
            if rc > 0 && fds[1].revents & Int16(POLLERR | POLLNVAL) != 0 {
                Log.warn("registry_watch_degraded", ["path": path, "reason": "inotify descriptor failed", "fallback": "poll"])
                inotify?.close()
                inotify = nil
            } else if rc > 0 && fds[1].revents != 0 {
                handleEvents()
            }

            let now = clock.now
            if now >= nextPoll {
                nextPoll = now.advanced(by: options.pollInterval)
                pollTick()
            }
            if let d = due, clock.now >= d {
                due = nil
                burstStart = nil
                if let result = reload() { watcher.callback(result) }
            }
        }
    }

    private func handleEvents() {
        guard var ino = inotify else { return }
        for ev in ino.drain() {
            if ev.mask & UInt32(IN_Q_OVERFLOW) != 0 {
                schedule(options.quietPeriod)  // events were lost: check the file
            } else if ev.wd == ino.wd && ev.mask & UInt32(IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF) != 0 {
                ino.forget()  // the directory went away or moved; pollTick re-adds the watch
                schedule(options.quietPeriod)
            } else if ev.name == name || ev.name == "..data" {  // "..data": ConfigMap symlink swap
                let bareCreate = ev.mask & UInt32(IN_CREATE) != 0
                schedule(bareCreate ? options.createDelay : options.quietPeriod)
            }
        }
        inotify = ino
    }

    private func pollTick() {
        if var ino = inotify, ino.wd < 0, ino.watch(directory) {
            inotify = ino
            schedule(options.quietPeriod)  // the directory is back; its file may be new
        }
        let id = FileIdentity.of(path: path)
        if id != lastIdentity || (id.map { $0.mayHaveChanged(after: lastReadAt) } ?? false) {
            schedule(options.quietPeriod)
        }
    }

    /// Debounce: the latest event decides the delay, but a burst never defers past `maxDelay`.
    private func schedule(_ delay: Duration) {
        let now = clock.now
        let start = burstStart ?? now
        burstStart = start
        due = min(now.advanced(by: delay), start.advanced(by: options.maxDelay))
    }

    /// Reads and parses the file; nil when there is nothing new to report.
    private func reload(keepBytes: Bool = false) -> Result<RegistrySnapshot, RegistryError>? {
        guard let id = FileIdentity.of(path: path) else { return removed() }
        if reported != .nothing, id == lastIdentity, !id.mayHaveChanged(after: lastReadAt) {
            return nil  // a no-op event (same inode, size and times, not written since the read)
        }
        let writes = watcher.ownerWrites()  // before the read: a write after it brings its own event
        var readAt = timespec()
        clock_gettime(CLOCK_REALTIME, &readAt)
        let bytes: [UInt8]
        do {
            (bytes, lastIdentity) = try RegistryLoader.readFile(path: path)
            lastReadAt = readAt
        } catch {
            if FileIdentity.of(path: path) == nil { return removed() }  // deleted between stat and open
            lastIdentity = nil
            return report(.unreadable(error.description), .failure(error))
        }
        // The owner's own write: asked before hashing (a compare is cheaper than SipHash over a
        // large file). The first read always yields its snapshot: it is what start() returns.
        if !keepBytes && watcher.alreadyApplied(bytes) {
            reported = .applied
            reportedWrites = writes
            return nil
        }
        var h = Hasher()
        bytes.withUnsafeBytes { h.combine(bytes: $0) }
        let key = Reported.content(count: bytes.count, hash: h.finalize())
        guard key != reported || writes != reportedWrites else { return nil }
        reported = key
        reportedWrites = writes
        do {
            let snapshot = try ServiceEntryParser.parse(bytes, source: path)
            if keepBytes { initialBytes = bytes }
            return .success(snapshot)
        } catch {
            return .failure(error)
        }
    }

    private func removed() -> Result<RegistrySnapshot, RegistryError>? {
        lastIdentity = nil
        let wasThere = reported != .nothing
        let e = RegistryError(kind: wasThere ? .removed : .unreadable, file: path,
                              wasThere ? "registry file was removed; keeping the last good registry"
                                       : "cannot open: \(String(cString: strerror(ENOENT)))")
        return report(wasThere ? .removed : .unreadable(e.description), .failure(e))
    }

    private func report(_ key: Reported, _ result: Result<RegistrySnapshot, RegistryError>)
        -> Result<RegistrySnapshot, RegistryError>?
    {
        guard key != reported else { return nil }
        reported = key
        return result
    }

    private static func milliseconds(until deadline: ContinuousClock.Instant, _ now: ContinuousClock.Instant) -> Int32 {
        guard deadline > now else { return 0 }
        let (s, atto) = (deadline - now).components
        let ms = s * 1000 + (atto + 999_999_999_999_999) / 1_000_000_000_000_000  // round up
        return Int32(clamping: ms)
    }
}

extension FileIdentity {
    /// "Racy" as git calls it: written within a second of `readAt` (or after it), so a later
    /// write may have left size and timestamps unchanged (timestamps are coarse). Such a file
    /// is re-read instead of trusting its unchanged `stat`.
    func mayHaveChanged(after readAt: timespec) -> Bool {
        let limit = Int64(readAt.tv_sec) - 1
        return mtimeSec >= limit || ctimeSec >= limit
    }
}
