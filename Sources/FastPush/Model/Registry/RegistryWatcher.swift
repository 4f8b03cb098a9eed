#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Watches the registry file and reports every content change on its own thread (except
/// content its owner says it already applied: `alreadyApplied`):
/// `.success(snapshot)` for new valid content, `.failure(error)` for new invalid or unreadable
/// content, and once `.removed` when the file disappears. The same content is never reported
/// twice in a row, so an invalid file is reported once, not on every event or poll.
///
/// Sees in-place rewrites, truncate + write, a temporary file renamed over the path, delete +
/// recreate, and Kubernetes ConfigMap volume updates (a `..data` symlink swap). Uses inotify on
/// the parent directory, waits for `quietPeriod` without events before reading so a write in
/// progress is not parsed half-done, and polls `stat` every `pollInterval` as a safety net
/// (missed or overflowed events, a symlink target changing elsewhere, filesystems without
/// inotify). Plain thread, no async: the callback runs on the watcher thread and should hand
/// work off quickly.
///
/// Sendable: all mutable state is in `state` and `initial` (Mutexes); the reload bookkeeping lives in a
/// `RegistryWatchLoop` owned by the watcher thread alone.
public final class RegistryWatcher: Sendable {
    public typealias Callback = @Sendable (Result<RegistrySnapshot, RegistryError>) -> Void

    public struct Options: Sendable {
        /// Quiet time after a write/rename/delete event before the file is read.
        public var quietPeriod: Duration = .milliseconds(30)
        /// Quiet time after a bare create: a writer usually follows with a close-write event.
        public var createDelay: Duration = .milliseconds(250)
        /// A stream of events delays a reload at most this long after its first event.
        public var maxDelay: Duration = .seconds(1)
        /// The fallback `stat` poll.
        public var pollInterval: Duration = .seconds(1)
        /// false: poll only (NFS, some FUSE filesystems never deliver inotify events).
        public var useInotify = true

        public init() {}
    }

    public let path: String
    let options: Options
    let callback: Callback
    /// Content its owner already applied (the file it just wrote itself): not parsed, not reported.
    let alreadyApplied: @Sendable ([UInt8]) -> Bool
    /// How many times its owner has written the file: content that equals what was last
    /// reported is reported again if the owner wrote in between (the registry holds that write).
    let ownerWrites: @Sendable () -> Int

    private enum State {
        case idle
        case running(thread: OSThread, wakeFd: Int32)
        case stopping(thread: OSThread)
        case exited(thread: OSThread)
        case stopped
    }
    private let state = Mutex<State>(.idle)
    private let initial = Mutex<[UInt8]?>(nil)

    public init(path: String, options: Options = Options(), alreadyApplied: @escaping @Sendable ([UInt8]) -> Bool = { _ in false },
                ownerWrites: @escaping @Sendable () -> Int = { 0 }, onChange: @escaping Callback) {
        self.path = path
        self.options = options
        self.alreadyApplied = alreadyApplied
        self.ownerWrites = ownerWrites
        self.callback = onChange
    }

    /// Starts watching, then reads the file once and returns what it holds; changes after
    /// that read are reported to the callback (starting the watch first means none is lost).
    /// The watcher runs whatever the result: call `stop()` to give up. Call at most once.
    public func start() -> Result<RegistrySnapshot, RegistryError> {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            let e = RegistryError(kind: .unreadable, file: path, "cannot create the watcher's wake-up pipe: "
                                  + String(cString: strerror(errno)))
            return .failure(e)
        }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        _ = fcntl(fds[0], F_SETFL, O_NONBLOCK)

        let loop = RegistryWatchLoop(watcher: self, wakeFd: fds[0])
        let initial = loop.prepare()
        self.initial.withLock { $0 = loop.initialBytes }
        loop.initialBytes = nil

        let box = UnsafeSendableBox(loop)
        state.withLock { s in
            guard case .idle = s else { preconditionFailure("RegistryWatcher.start() called twice or after stop()") }
            let thread = OSThread.spawn(name: "fp-registry") { box.value.run() }
            s = .running(thread: thread, wakeFd: fds[1])
        }
        return initial
    }

    /// The bytes `start()` parsed into the snapshot it returned, once (nil after a failure).
    public func takeInitialContent() -> [UInt8]? {
        initial.withLock { b in defer { b = nil }; return b }
    }

    /// Makes the watcher thread exit and waits for it (unless called from the callback, on that
    /// thread itself). No callback runs after `stop()` returns. Safe to call more than once;
    /// only the first call waits.
    public func stop() {
        let toJoin: OSThread? = state.withLock { s in
            switch s {
            case .running(let t, let w):
                var one: UInt8 = 1
                _ = write(w, &one, 1)
                close(w)
                s = .stopping(thread: t)
                return t
            case .exited(let t):
                s = .stopped
                return t
            case .idle:
                s = .stopped
                return nil
            case .stopping, .stopped:
                return nil
            }
        }
        guard let t = toJoin else { return }
        if t.isCurrent {
            t.detach()  // stop() from the callback: the loop exits when the callback returns
        } else {
            t.join()
        }
        state.withLock { s in s = .stopped }
    }

    /// Called by the loop as its thread ends (on its own, e.g. a poll error).
    func threadExited() {
        state.withLock { s in
            if case .running(let t, let w) = s {
                close(w)
                s = .exited(thread: t)
            }
        }
    }
}
