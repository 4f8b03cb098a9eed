#if canImport(Glibc)
import Glibc
#endif
import CUring
import Synchronization

/// An epoll event loop on a thread of its own: the fallback for machines where io_uring cannot
/// be set up (container seccomp profiles, old kernels), with the same behaviour as `URingLoop`.
///
/// Level-triggered, on purpose:
/// - Reads stay fair without bookkeeping: a connection gets at most `readsPerEvent` reads per
///   iteration, and whatever it still has is reported again by the next `epoll_wait`. With
///   edge triggering we would have to read to EAGAIN (one busy peer starves the rest) or keep
///   our own list of "still readable" sockets.
/// - A listener that is out of descriptors is taken out of the set for a while (EMFILE back-off)
///   and put back; level triggering reports the pending connections again without a lost edge.
/// - EPOLLOUT is in the interest set only while a socket is full (EAGAIN or a short write) or
///   a connection has used its share of an iteration, and leaves it once drained. The common
///   case (the kernel takes everything at once) costs no epoll_ctl at all, and edge triggering
///   would save nothing there.
///
/// Reads go into one 64 KiB buffer per loop, handed to `channelRead` and reused, so an idle
/// connection holds no receive buffer. Writes are one `sendmsg` (MSG_NOSIGNAL) over the iovecs
/// of `OutboundBuffer.fill`, made synchronously in the flush at the end of each iteration.
///
/// `@unchecked Sendable`: all state except `inbox`, `stopRequested` and `threadID` is touched
/// only on the loop thread; those three are Mutex or Atomic inside, and `execute` is the only
/// way in from other threads.
public final class EpollLoop: IOLoop, @unchecked Sendable {
    /// The low bits of `epoll_data.u64`; the rest is the object's address (16-byte aligned).
    enum Tag: UInt64 { case channel = 1, listener = 2, wake = 3 }

    final class Listener {
        let fd: Int32
        let onAccept: (Int32) -> Void
        var closed = false
        /// In the epoll set (false while backing off after EMFILE and the like).
        var armed = false
        init(fd: Int32, onAccept: @escaping (Int32) -> Void) { self.fd = fd; self.onAccept = onAccept }
    }

    /// The one receive buffer of the loop.
    static let readBufferSize = 64 * 1024
    /// Reads per connection per iteration (while each fills the buffer).
    static let readsPerEvent = 4
    /// Accepts per listener per iteration.
    static let acceptsPerEvent = 256
    /// produce + sendmsg rounds per connection per flush, each up to `maxSendBytes`.
    static let writeRoundsPerFlush = 4
    static let iovCapacity = 256
    static let maxEvents: Int32 = 256
    /// SOCK_NONBLOCK | SOCK_CLOEXEC, which Linux defines as O_NONBLOCK | O_CLOEXEC. Spelled with
    /// the O_ names on purpose: naming `__socket_type` in a file that imports CUring, before
    /// Socket.swift in the build order, makes the whole-module (release) build import that enum
    /// as CUring's, and Socket.swift (Glibc only) then cannot see SOCK_STREAM.
    static let acceptFlags = Int32(O_NONBLOCK | O_CLOEXEC)
    /// Pause before accepting again when out of descriptors or memory.
    static let acceptBackoffNanos: UInt64 = 100_000_000

    static let evIn = EPOLLIN.rawValue
    static let evOut = EPOLLOUT.rawValue
    static let evErr = EPOLLERR.rawValue
    static let evHup = EPOLLHUP.rawValue

    public let index: Int
    let config: IOLoopConfig
    private let epfd: Int32
    private let wakeFD: Int32
    private let events: UnsafeMutablePointer<epoll_event>
    private let readBuffer: UnsafeMutableRawPointer
    private let iov: UnsafeMutablePointer<iovec>

    private let inbox = LoopInbox()
    private let stopRequested = Atomic<Bool>(false)
    private let threadID = Atomic<UInt>(0)
    private let thread = Mutex<OSThread?>(nil)

    // Loop-thread state.
    private var dirty: [Channel] = []
    private var channels: [ObjectIdentifier: Channel] = [:]
    private var listeners: [Listener] = []
    /// Closed this iteration: kept alive until the events already returned by epoll_wait
    /// (which point at them) have been looked at.
    private var graveyard: [AnyObject] = []
    private var timers = TimerHeap()
    public private(set) var nowNanos: UInt64 = MonotonicClock.nanos()

    /// Starts the loop thread. Throws if the epoll or eventfd descriptor cannot be made.
    public init(index: Int, config: IOLoopConfig = IOLoopConfig()) throws {
        self.index = index
        self.config = config
        epfd = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epfd >= 0 else { throw SocketError(operation: "epoll_create1", errno: errno) }
        wakeFD = eventfd(0, Int32(EFD_CLOEXEC) | Int32(EFD_NONBLOCK))
        guard wakeFD >= 0 else {
            let e = errno
            Glibc.close(epfd)
            throw SocketError(operation: "eventfd", errno: e)
        }
        events = .allocate(capacity: Int(EpollLoop.maxEvents))
        readBuffer = .allocate(byteCount: EpollLoop.readBufferSize, alignment: 16)
        iov = .allocate(capacity: EpollLoop.iovCapacity)
        var ev = epoll_event()
        ev.events = EpollLoop.evIn
        ev.data.u64 = Tag.wake.rawValue
        guard epoll_ctl(epfd, EPOLL_CTL_ADD, wakeFD, &ev) == 0 else {
            let e = errno
            Glibc.close(epfd)
            Glibc.close(wakeFD)
            events.deallocate(); readBuffer.deallocate(); iov.deallocate()
            throw SocketError(operation: "epoll_ctl", errno: e)
        }
        let bound = UnsafeSendableBox(self)
        let t = OSThread.spawn(name: "\(config.threadName ?? "fp-epoll")-\(index)") { bound.value.run() }
        thread.withLock { $0 = t }
    }

    deinit {
        events.deallocate()
        readBuffer.deallocate()
        iov.deallocate()
        // Closed only here: `execute` after `shutdown` still writes to it.
        Glibc.close(wakeFD)
    }

    public var inEventLoop: Bool { threadID.load(ordering: .relaxed) == UInt(bitPattern: Int(bitPattern: UInt(pthread_self()))) }

    public var channelCount: Int { channels.count }

    // MARK: cross-thread

    public func execute(_ task: @escaping @Sendable () -> Void) {
        if inbox.post(task) { wake() }
    }

    /// Closes every channel and listener, then ends the thread. Blocks until it has.
    public func shutdown() {
        stopRequested.store(true, ordering: .releasing)
        wake()
        thread.withLock { t in defer { t = nil }; return t }?.join()
    }

    private func wake() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    // MARK: loop-thread API

    public func schedule(afterNanos: UInt64, _ task: @escaping () -> Void) {
        assertInLoop()
        timers.insert(deadline: MonotonicClock.nanos() &+ afterNanos, task)
    }

    public func scheduleFlush(_ channel: Channel) {
        dirty.append(channel)
    }

    public func register(fd: Int32, peer: String, handler: any ChannelHandler) -> Channel {
        assertInLoop()
        let ch = Channel(fd: fd, peer: peer, loop: self)
        ch.handler = handler
        channels[ObjectIdentifier(ch)] = ch
        handler.channelActive(ch)
        if ch.state == .active {
            var ev = epoll_event()
            ev.events = EpollLoop.evIn
            ev.data.u64 = tag(ch, .channel)
            if epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0 {
                ch.recvArmed = true
            } else {
                closeChannel(ch, reason: .error(errno))
            }
        }
        ch.flush()
        return ch
    }

    public func listen(fd: Int32, onAccept: @escaping (Int32) -> Void) {
        assertInLoop()
        let l = Listener(fd: fd, onAccept: onAccept)
        listeners.append(l)
        armListener(l)
    }

    /// The listener stays in `listeners` (closed): an event already returned for it points at it.
    public func stopListening(fd: Int32) {
        assertInLoop()
        for l in listeners where l.fd == fd && !l.closed {
            l.closed = true
            disarmListener(l)
            Glibc.shutdown(l.fd, Int32(SHUT_RDWR))
            Glibc.close(l.fd)
        }
    }

    public func forEachChannel(_ body: (Channel) -> Void) {
        for ch in channels.values { body(ch) }
    }

    public func closeChannel(_ ch: Channel, reason: CloseReason) {
        guard ch.state == .active else { return }
        ch.state = .closing
        let handler = ch.handler
        ch.handler = nil
        ch.outbound.fail()
        handler?.channelInactive(ch, reason: reason)
        // Nothing is ever in flight here: the descriptor goes now. Deregistered explicitly, so
        // that a copy of it in a forked child cannot keep reporting events for a dead channel.
        ch.state = .closed
        if ch.recvArmed || ch.sendInFlight {
            _ = epoll_ctl(epfd, EPOLL_CTL_DEL, ch.fd, nil)
            ch.recvArmed = false
            ch.sendInFlight = false
        }
        Glibc.shutdown(ch.fd, Int32(SHUT_RDWR))
        Glibc.close(ch.fd)
        channels.removeValue(forKey: ObjectIdentifier(ch))
        graveyard.append(ch)
    }

    // MARK: the loop

    private func run() {
        threadID.store(UInt(bitPattern: Int(bitPattern: UInt(pthread_self()))), ordering: .relaxed)
        while true {
            let n = epoll_wait(epfd, events, EpollLoop.maxEvents, waitTimeoutMillis())
            nowNanos = MonotonicClock.nanos()
            if n < 0 {
                let e = errno
                if e != EINTR {
                    Log.error("epoll_wait_failed", ["loop": index, "errno": e])
                    usleep(1000)
                }
            }
            for i in 0..<Int(max(n, 0)) {
                dispatch(events[i].events, events[i].data.u64)
            }
            runDueTimers()
            inbox.runAll()
            flushDirty()
            graveyard.removeAll(keepingCapacity: true)
            if stopRequested.load(ordering: .acquiring) {
                // Closes are synchronous here: once they are done, nothing is left to wait for.
                beginShutdown()
                flushDirty()
                graveyard.removeAll()
                break
            }
        }
        for ch in channels.values { Glibc.close(ch.fd) }
        channels.removeAll()
        // As in URingLoop: drop what an ended loop will never run.
        dirty.removeAll()
        timers.removeAll()
        listeners.removeAll()
        inbox.removeAll()
        Glibc.close(epfd)
    }

    /// Milliseconds until the next timer (rounded up, so that it is due when we wake), 0 when
    /// work is waiting, -1 when there is no timer.
    private func waitTimeoutMillis() -> Int32 {
        if !dirty.isEmpty { return 0 }
        guard let next = timers.nextDeadline else { return -1 }
        let now = MonotonicClock.nanos()
        guard next > now else { return 0 }
        let ms = (next - now + 999_999) / 1_000_000
        return ms > UInt64(Int32.max) ? Int32.max : Int32(ms)
    }

    @inline(__always)
    private func tag(_ object: AnyObject, _ t: Tag) -> UInt64 {
        UInt64(UInt(bitPattern: Unmanaged.passUnretained(object).toOpaque())) | t.rawValue
    }

    private func dispatch(_ ev: UInt32, _ data: UInt64) {
        guard let t = Tag(rawValue: data & 0xF) else { return }
        switch t {
        case .wake:
            var v: UInt64 = 0
            _ = read(wakeFD, &v, 8)
        case .listener:
            let raw = UnsafeMutableRawPointer(bitPattern: UInt(data & ~0xF))!
            acceptReady(Unmanaged<Listener>.fromOpaque(raw).takeUnretainedValue())
        case .channel:
            let raw = UnsafeMutableRawPointer(bitPattern: UInt(data & ~0xF))!
            // Alive: `channels` holds it until it closes, then `graveyard` until this batch is done.
            let ch = Unmanaged<Channel>.fromOpaque(raw).takeUnretainedValue()
            guard ch.state == .active else { return }
            if ev & (EpollLoop.evIn | EpollLoop.evErr | EpollLoop.evHup) != 0 {
                // An error or hang-up shows up as the result of the read.
                let drained = readReady(ch)
                if drained && ch.state == .active && ev & (EpollLoop.evErr | EpollLoop.evHup) != 0 {
                    // Nothing to read and still flagged: close rather than be woken forever.
                    closeChannel(ch, reason: .error(socketError(ch.fd)))
                }
            }
            if ch.state == .active && ch.sendInFlight && ev & (EpollLoop.evOut | EpollLoop.evErr | EpollLoop.evHup) != 0 {
                writeOut(ch)
            }
        }
    }

    /// Returns true when the socket had nothing more to read (EAGAIN).
    @discardableResult
    private func readReady(_ ch: Channel) -> Bool {
        var reads = 0
        while reads < EpollLoop.readsPerEvent {
            let n = recv(ch.fd, readBuffer, EpollLoop.readBufferSize, 0)
            if n > 0 {
                reads += 1
                ch.bytesReceived &+= UInt64(n)
                if let h = ch.handler {
                    h.channelRead(ch, UnsafeRawBufferPointer(start: readBuffer, count: n))
                }
                guard ch.state == .active else { return false }
                ch.flush()
                // A short read drained the socket; anything newer is reported again.
                if n < EpollLoop.readBufferSize { return false }
            } else if n == 0 {
                closeChannel(ch, reason: .eof)
                return false
            } else {
                let e = errno
                if e == EINTR { continue }
                if e == EAGAIN { return true }
                closeChannel(ch, reason: .error(e))
                return false
            }
        }
        return false
    }

    private func socketError(_ fd: Int32) -> Int32 {
        var e: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len)
        return e != 0 ? e : EIO
    }

    private func flushDirty() {
        while !dirty.isEmpty {
            let list = dirty
            dirty = []
            for ch in list {
                ch.flushQueued = false
                startSend(ch)
            }
        }
    }

    /// `sendInFlight` means here: the socket is waiting for EPOLLOUT, which resumes the send.
    private func startSend(_ ch: Channel) {
        guard ch.state == .active, !ch.sendInFlight else { return }
        writeOut(ch)
    }

    /// Pulls from the handler and writes until the socket is full, the handler has nothing
    /// more, or the connection has had its share of this iteration.
    private func writeOut(_ ch: Channel) {
        var rounds = 0
        while true {
            if ch.outbound.pendingBytes < config.maxSendBytes, let h = ch.handler {
                // Move the buffer out so that a close inside `produce` cannot overlap this access.
                var out = ch.outbound
                ch.outbound = OutboundBuffer()
                h.produce(ch, into: &out, budget: config.maxSendBytes - out.pendingBytes)
                guard ch.state == .active else { out.fail(); return }
                ch.outbound = out
            }
            guard ch.outbound.pendingBytes > 0 else {
                ch.stalledSinceNanos = 0
                setWaitingForWritable(ch, false)
                if ch.closeWhenFlushed { closeChannel(ch, reason: .local("closed after flush")) }
                return
            }
            if rounds == EpollLoop.writeRoundsPerFlush {
                // Its share of this iteration: the socket is writable, so level-triggered
                // EPOLLOUT brings it back on the next iteration, after the others.
                setWaitingForWritable(ch, true)
                return
            }
            rounds += 1
            let (count, bytes) = ch.outbound.fill(iov, capacity: EpollLoop.iovCapacity, maxBytes: config.maxSendBytes)
            var msg = msghdr()
            msg.msg_iov = iov
            msg.msg_iovlen = count
            let n = sendmsg(ch.fd, &msg, Int32(MSG_NOSIGNAL))
            if n > 0 {
                ch.bytesSent &+= UInt64(n)
                // Completions run inside `consume`; one of them may close the channel.
                var out = ch.outbound
                ch.outbound = OutboundBuffer()
                out.consume(n)
                guard ch.state == .active else { out.fail(); return }
                ch.outbound = out
                ch.stalledSinceNanos = out.isEmpty ? 0 : nowNanos
                if n < bytes {
                    // The kernel took part of it: the socket buffer is full.
                    setWaitingForWritable(ch, true)
                    return
                }
                continue
            }
            let e = n < 0 ? errno : EAGAIN
            if e == EINTR { continue }
            if e == EAGAIN {
                if ch.stalledSinceNanos == 0 { ch.stalledSinceNanos = nowNanos }
                setWaitingForWritable(ch, true)
                return
            }
            closeChannel(ch, reason: .error(e))
            return
        }
    }

    /// Adds EPOLLOUT to the channel's interest set or takes it out; a syscall only on change.
    private func setWaitingForWritable(_ ch: Channel, _ waiting: Bool) {
        guard ch.sendInFlight != waiting, ch.recvArmed else { return }
        var ev = epoll_event()
        ev.events = waiting ? (EpollLoop.evIn | EpollLoop.evOut) : EpollLoop.evIn
        ev.data.u64 = tag(ch, .channel)
        if epoll_ctl(epfd, EPOLL_CTL_MOD, ch.fd, &ev) == 0 {
            ch.sendInFlight = waiting
        } else {
            closeChannel(ch, reason: .error(errno))
        }
    }

    // MARK: accepting

    private func armListener(_ l: Listener) {
        guard !l.closed, !l.armed else { return }
        var ev = epoll_event()
        ev.events = EpollLoop.evIn
        ev.data.u64 = tag(l, .listener)
        if epoll_ctl(epfd, EPOLL_CTL_ADD, l.fd, &ev) == 0 {
            l.armed = true
        } else {
            let e = errno
            l.onAccept(-e)
            backOff(l)
        }
    }

    private func disarmListener(_ l: Listener) {
        guard l.armed else { return }
        _ = epoll_ctl(epfd, EPOLL_CTL_DEL, l.fd, nil)
        l.armed = false
    }

    /// Out of descriptors (or memory): leave the listener out of the set for a while instead
    /// of spinning on a level-triggered event we cannot act on.
    private func backOff(_ l: Listener) {
        disarmListener(l)
        schedule(afterNanos: EpollLoop.acceptBackoffNanos) { [weak self, l] in
            guard let self, !l.closed else { return }
            self.armListener(l)
        }
    }

    private func acceptReady(_ l: Listener) {
        var accepted = 0
        while accepted < EpollLoop.acceptsPerEvent && !l.closed && l.armed {
            let fd = accept4(l.fd, nil, nil, EpollLoop.acceptFlags)
            if fd >= 0 {
                accepted += 1
                l.onAccept(fd)
                continue
            }
            let e = errno
            switch e {
            case EAGAIN:
                return
            case EINTR:
                continue
            case ECONNABORTED, EPROTO, EPERM, ENETDOWN, ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH, EOPNOTSUPP, ENETUNREACH:
                // That connection failed (accept(2) says to treat these like EAGAIN); the
                // next one may not.
                accepted += 1
                l.onAccept(-e)
            default:
                // EMFILE, ENFILE, ENOBUFS, ENOMEM, or a listener gone bad.
                l.onAccept(-e)
                backOff(l)
                return
            }
        }
    }

    // MARK: tasks and timers

    private func runDueTimers() {
        guard !timers.isEmpty else { return }
        for task in timers.popDue(now: nowNanos) { task() }
    }


    private func beginShutdown() {
        for l in listeners where !l.closed {
            l.closed = true
            disarmListener(l)
            Glibc.shutdown(l.fd, Int32(SHUT_RDWR))
            Glibc.close(l.fd)
        }
        listeners.removeAll()
        for ch in Array(channels.values) { closeChannel(ch, reason: .local("shutdown")) }
    }
}
