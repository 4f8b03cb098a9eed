#if canImport(Glibc)
import Glibc
#endif
import CUring
import Synchronization

public struct IOLoopConfig: Sendable {
    /// Submission queue entries per ring.
    public var ringEntries: UInt32 = 4096
    /// Provided receive buffers per loop (a power of two) and their size. They are shared by
    /// every connection of the loop, so an idle connection holds no receive buffer.
    public var receiveBufferCount: Int = 256
    public var receiveBufferSize: Int = 16 * 1024
    /// Bytes taken into one sendmsg, and produced ahead of the socket per connection.
    public var maxSendBytes: Int = 256 * 1024
    /// The loop threads' name, before their index (default: `fp-uring`, `fp-epoll`).
    public var threadName: String?

    public init() {}
}

/// An io_uring event loop on a thread of its own: one ring per thread, multishot accept,
/// multishot recv into a provided-buffer ring, and one vectored sendmsg in flight per socket.
///
/// `@unchecked Sendable`: all state except `inbox`, `stopRequested` and `threadID` is touched
/// only on the loop thread; those three are Mutex or Atomic inside, and `execute` is the only
/// way in from other threads.
public final class URingLoop: IOLoop, @unchecked Sendable {
    enum Op: UInt64 {
        case recv = 1, send = 2, accept = 3, wake = 4, timer = 5, ignore = 6
    }

    /// Keeps the iovecs and msghdr of an in-flight sendmsg alive.
    final class SendContext {
        static let iovCapacity = 256
        let msg = UnsafeMutablePointer<msghdr>.allocate(capacity: 1)
        let iov = UnsafeMutablePointer<iovec>.allocate(capacity: iovCapacity)
        init() { msg.initialize(to: msghdr()) }
        deinit { msg.deallocate(); iov.deallocate() }
    }

    final class Listener {
        let fd: Int32
        let onAccept: (Int32) -> Void
        var closed = false
        init(fd: Int32, onAccept: @escaping (Int32) -> Void) { self.fd = fd; self.onAccept = onAccept }
    }

    // Constants that liburing 2.3 exposes only as macros.
    static let sqeBufferSelect: UInt8 = 1 << 5
    static let cqeFlagBuffer: UInt32 = 1 << 0
    static let cqeFlagMore: UInt32 = 1 << 1
    static let cqeBufferShift: UInt32 = 16

    public let index: Int
    let config: IOLoopConfig
    private let ring = UnsafeMutablePointer<io_uring>.allocate(capacity: 1)
    private let cqes: UnsafeMutablePointer<UnsafeMutablePointer<io_uring_cqe>?>
    private let wakeFD: Int32
    private let wakeBuffer = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
    private let timerSpec = UnsafeMutablePointer<__kernel_timespec>.allocate(capacity: 1)

    private let inbox = LoopInbox()
    private let stopRequested = Atomic<Bool>(false)
    private let threadID = Atomic<UInt>(0)
    private let started = Semaphore()
    private let thread = Mutex<OSThread?>(nil)
    private var setupError: Int32 = 0

    // Loop-thread state.
    private var bufferRing: UnsafeMutablePointer<io_uring_buf_ring>?
    private var bufferRingBytes = 0
    private var buffers: UnsafeMutableRawPointer?
    private let bufferGroup: UInt16 = 1
    private var localTasks: [() -> Void] = []
    private var dirty: [Channel] = []
    private var channels: [ObjectIdentifier: Channel] = [:]
    private var listeners: [Listener] = []
    private var sendContexts: [SendContext] = []
    private var timers = TimerHeap()
    private var armedTimerDeadline: UInt64 = .max
    private var timersArmed = 0
    public private(set) var nowNanos: UInt64 = MonotonicClock.nanos()

    /// Starts the loop thread. Throws if io_uring cannot be set up here (seccomp, old kernel).
    public init(index: Int, config: IOLoopConfig = IOLoopConfig()) throws {
        self.index = index
        self.config = config
        cqes = .allocate(capacity: 256)
        wakeFD = eventfd(0, Int32(EFD_CLOEXEC))
        guard wakeFD >= 0 else { throw SocketError(operation: "eventfd", errno: errno) }
        let bound = UnsafeSendableBox(self)
        let t = OSThread.spawn(name: "\(config.threadName ?? "fp-uring")-\(index)") { bound.value.run() }
        started.wait()
        if setupError != 0 {
            t.join()
            throw SocketError(operation: "io_uring_queue_init", errno: setupError)
        }
        thread.withLock { $0 = t }
    }

    deinit {
        ring.deallocate()
        cqes.deallocate()
        wakeBuffer.deallocate()
        timerSpec.deallocate()
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
        if ch.state == .active { armRecv(ch) }
        ch.flush()
        return ch
    }

    public func listen(fd: Int32, onAccept: @escaping (Int32) -> Void) {
        assertInLoop()
        let l = Listener(fd: fd, onAccept: onAccept)
        listeners.append(l)
        armAccept(l)
    }

    public func stopListening(fd: Int32) {
        assertInLoop()
        for l in listeners where l.fd == fd && !l.closed {
            l.closed = true
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
        Glibc.shutdown(ch.fd, Int32(SHUT_RDWR))
        let handler = ch.handler
        ch.handler = nil
        ch.outbound.fail()
        handler?.channelInactive(ch, reason: reason)
        finalizeIfIdle(ch)
    }

    // MARK: the loop

    private func run() {
        threadID.store(UInt(bitPattern: Int(bitPattern: UInt(pthread_self()))), ordering: .relaxed)
        let rc = setUpRing()
        if rc != 0 {
            setupError = -rc
            started.signal()
            return
        }
        started.signal()
        armWake()
        var stopping = false
        var stopDeadline: UInt64 = 0
        while true {
            let waitFor: UInt32 = (localTasks.isEmpty && dirty.isEmpty) ? 1 : 0
            let r = io_uring_submit_and_wait(ring, waitFor)
            if r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY {
                Log.error("io_uring_submit_failed", ["loop": index, "errno": -r])
            }
            nowNanos = MonotonicClock.nanos()
            reapCompletions()
            runDueTimers()
            inbox.runAll()
            runLocalTasks()
            flushDirty()
            if !stopping && stopRequested.load(ordering: .acquiring) {
                stopping = true
                stopDeadline = nowNanos &+ 2_000_000_000
                beginShutdown()
            }
            if stopping {
                flushDirty()
                if (channels.isEmpty && listeners.isEmpty) || nowNanos > stopDeadline { break }
                // Poll until the closes complete.
                schedule(afterNanos: 10_000_000) {}
            }
            armTimerIfNeeded()
        }
        for ch in channels.values { Glibc.close(ch.fd) }
        channels.removeAll()
        dropPendingWork()
        io_uring_queue_exit(ring)
        if let br = bufferRing { munmap(br, bufferRingBytes) }
        free(buffers)
    }

    private func setUpRing() -> Int32 {
        var params = io_uring_params()
        // One thread submits and reaps: let the kernel defer completion work to our waits.
        params.flags = UInt32(IORING_SETUP_SINGLE_ISSUER) | UInt32(IORING_SETUP_DEFER_TASKRUN)
        var rc = io_uring_queue_init_params(config.ringEntries, ring, &params)
        if rc == -EINVAL {
            params = io_uring_params()
            rc = io_uring_queue_init_params(config.ringEntries, ring, &params)
        }
        if rc != 0 { return rc }
        return setUpBufferRing()
    }

    /// liburing 2.3 has no io_uring_setup_buf_ring: map the ring memory ourselves and register it.
    private func setUpBufferRing() -> Int32 {
        let count = config.receiveBufferCount
        precondition(count > 0 && count & (count - 1) == 0, "receiveBufferCount must be a power of two")
        bufferRingBytes = count * MemoryLayout<io_uring_buf>.stride
        guard let mem = mmap(nil, bufferRingBytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0),
              mem != MAP_FAILED else { return -errno }
        let br = mem.bindMemory(to: io_uring_buf_ring.self, capacity: 1)
        var reg = io_uring_buf_reg()
        reg.ring_addr = UInt64(UInt(bitPattern: mem))
        reg.ring_entries = UInt32(count)
        reg.bgid = bufferGroup
        let rc = io_uring_register_buf_ring(ring, &reg, 0)
        if rc != 0 { munmap(mem, bufferRingBytes); return rc }
        bufferRing = br
        buffers = malloc(count * config.receiveBufferSize)
        io_uring_buf_ring_init(br)
        let mask = io_uring_buf_ring_mask(UInt32(count))
        for i in 0..<count {
            io_uring_buf_ring_add(br, buffers! + i * config.receiveBufferSize, UInt32(config.receiveBufferSize),
                                  UInt16(i), mask, Int32(i))
        }
        io_uring_buf_ring_advance(br, Int32(count))
        return 0
    }

    private func recycleBuffer(_ bid: UInt16) {
        let br = bufferRing!
        io_uring_buf_ring_add(br, buffers! + Int(bid) * config.receiveBufferSize, UInt32(config.receiveBufferSize),
                              bid, io_uring_buf_ring_mask(UInt32(config.receiveBufferCount)), 0)
        io_uring_buf_ring_advance(br, 1)
    }

    private func sqe() -> UnsafeMutablePointer<io_uring_sqe> {
        if let s = io_uring_get_sqe(ring) { return s }
        io_uring_submit(ring)
        if let s = io_uring_get_sqe(ring) { return s }
        fatalError("io_uring submission queue stuck")
    }

    @inline(__always)
    private func tag(_ object: AnyObject?, _ op: Op, retain: Bool) -> UInt64 {
        guard let object else { return op.rawValue }
        let raw = retain ? Unmanaged.passRetained(object).toOpaque() : Unmanaged.passUnretained(object).toOpaque()
        return UInt64(UInt(bitPattern: raw)) | op.rawValue
    }

    private func armWake() {
        let s = sqe()
        io_uring_prep_read(s, wakeFD, wakeBuffer, 8, 0)
        io_uring_sqe_set_data64(s, Op.wake.rawValue)
    }

    private func armAccept(_ l: Listener) {
        let s = sqe()
        io_uring_prep_multishot_accept(s, l.fd, nil, nil, Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue))
        io_uring_sqe_set_data64(s, tag(l, .accept, retain: true))
    }

    private func armRecv(_ ch: Channel) {
        let s = sqe()
        io_uring_prep_recv_multishot(s, ch.fd, nil, 0, 0)
        s.pointee.flags |= URingLoop.sqeBufferSelect
        s.pointee.buf_group = bufferGroup
        io_uring_sqe_set_data64(s, tag(ch, .recv, retain: true))
        ch.recvArmed = true
    }

    private func armTimerIfNeeded() {
        guard let next = timers.nextDeadline, next < armedTimerDeadline else { return }
        let delta = next > nowNanos ? next - nowNanos : 0
        timerSpec.pointee.tv_sec = Int64(delta / 1_000_000_000)
        timerSpec.pointee.tv_nsec = Int64(delta % 1_000_000_000)
        let s = sqe()
        io_uring_prep_timeout(s, timerSpec, 0, 0)
        io_uring_sqe_set_data64(s, Op.timer.rawValue)
        armedTimerDeadline = next
        timersArmed += 1
        // The kernel copies the timespec when it takes the entry; submit before reusing it.
        io_uring_submit(ring)
    }

    private func reapCompletions() {
        while true {
            let n = Int(io_uring_peek_batch_cqe(ring, cqes, 256))
            if n == 0 { return }
            for i in 0..<n {
                let c = cqes[i]!.pointee
                handle(userData: c.user_data, res: c.res, flags: c.flags)
            }
            io_uring_cq_advance(ring, UInt32(n))
        }
    }

    private func handle(userData: UInt64, res: Int32, flags: UInt32) {
        guard let op = Op(rawValue: userData & 0xF) else { return }
        let raw = UnsafeMutableRawPointer(bitPattern: UInt(userData & ~0xF))
        switch op {
        case .recv:
            let unmanaged = Unmanaged<Channel>.fromOpaque(raw!)
            onRecv(unmanaged.takeUnretainedValue(), res: res, flags: flags)
            if flags & URingLoop.cqeFlagMore == 0 { unmanaged.release() }
        case .send:
            onSend(Unmanaged<Channel>.fromOpaque(raw!).takeRetainedValue(), res: res)
        case .accept:
            let unmanaged = Unmanaged<Listener>.fromOpaque(raw!)
            onAccept(unmanaged.takeUnretainedValue(), res: res, more: flags & URingLoop.cqeFlagMore != 0)
            if flags & URingLoop.cqeFlagMore == 0 { unmanaged.release() }
        case .wake:
            if !stopRequested.load(ordering: .relaxed) || res > 0 { armWake() }
        case .timer:
            timersArmed -= 1
            if timersArmed == 0 { armedTimerDeadline = .max }
        case .ignore:
            break
        }
    }

    private func onRecv(_ ch: Channel, res: Int32, flags: UInt32) {
        let more = flags & URingLoop.cqeFlagMore != 0
        if res > 0 {
            let bid = UInt16(truncatingIfNeeded: flags >> URingLoop.cqeBufferShift)
            if ch.state == .active, let h = ch.handler {
                ch.bytesReceived &+= UInt64(res)
                h.channelRead(ch, UnsafeRawBufferPointer(start: buffers! + Int(bid) * config.receiveBufferSize, count: Int(res)))
                ch.flush()
            }
            recycleBuffer(bid)
        }
        guard !more else { return }
        ch.recvArmed = false
        if ch.state != .active {
            finalizeIfIdle(ch)
        } else if res == 0 {
            closeChannel(ch, reason: .eof)
        } else if res == -ENOBUFS || res > 0 {
            // Out of provided buffers for a moment (they are recycled above) or the kernel ended
            // the multishot: keep reading.
            armRecv(ch)
        } else {
            closeChannel(ch, reason: .error(-res))
        }
    }

    private func onSend(_ ch: Channel, res: Int32) {
        ch.sendInFlight = false
        if let ctx = ch.sendContext as? SendContext {
            ch.sendContext = nil
            if sendContexts.count < 64 { sendContexts.append(ctx) }
        }
        guard ch.state == .active else { finalizeIfIdle(ch); return }
        if res >= 0 {
            ch.bytesSent &+= UInt64(res)
            // Completions run inside `consume`; one of them may close the channel.
            var out = ch.outbound
            ch.outbound = OutboundBuffer()
            out.consume(Int(res))
            guard ch.state == .active else { out.fail(); finalizeIfIdle(ch); return }
            ch.outbound = out
            ch.stalledSinceNanos = out.isEmpty ? 0 : nowNanos
            ch.flush()
        } else if res == -EAGAIN || res == -EINTR {
            ch.flush()
        } else {
            closeChannel(ch, reason: .error(-res))
        }
    }

    private func onAccept(_ l: Listener, res: Int32, more: Bool) {
        if res >= 0 {
            if l.closed { Glibc.close(res) } else { l.onAccept(res) }
        } else if !l.closed {
            l.onAccept(res)
        }
        if !more && !l.closed {
            if res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM {
                // Out of descriptors: retry later instead of spinning on the error.
                schedule(afterNanos: 100_000_000) { [weak self, l] in
                    guard let self, !l.closed else { return }
                    self.armAccept(l)
                }
            } else {
                armAccept(l)
            }
        }
        if !more && l.closed {
            listeners.removeAll { $0 === l }
        }
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

    private func startSend(_ ch: Channel) {
        guard ch.state == .active, !ch.sendInFlight else { return }
        if ch.outbound.pendingBytes < config.maxSendBytes, let h = ch.handler {
            // Move the buffer out so that a close inside `produce` cannot overlap this access.
            var out = ch.outbound
            ch.outbound = OutboundBuffer()
            h.produce(ch, into: &out, budget: config.maxSendBytes - out.pendingBytes)
            ch.outbound = out
            if ch.state != .active {
                ch.outbound.fail()
                finalizeIfIdle(ch)
                return
            }
        }
        guard ch.outbound.pendingBytes > 0 else {
            ch.stalledSinceNanos = 0
            if ch.closeWhenFlushed { closeChannel(ch, reason: .local("closed after flush")) }
            return
        }
        let ctx = sendContexts.popLast() ?? SendContext()
        let (n, _) = ch.outbound.fill(ctx.iov, capacity: SendContext.iovCapacity, maxBytes: config.maxSendBytes)
        ctx.msg.pointee = msghdr()
        ctx.msg.pointee.msg_iov = ctx.iov
        ctx.msg.pointee.msg_iovlen = n
        let s = sqe()
        io_uring_prep_sendmsg(s, ch.fd, ctx.msg, UInt32(MSG_NOSIGNAL))
        io_uring_sqe_set_data64(s, tag(ch, .send, retain: true))
        ch.sendContext = ctx
        ch.sendInFlight = true
        if ch.stalledSinceNanos == 0 { ch.stalledSinceNanos = nowNanos }
    }

    private func finalizeIfIdle(_ ch: Channel) {
        guard ch.state == .closing, !ch.recvArmed, !ch.sendInFlight else { return }
        ch.state = .closed
        Glibc.close(ch.fd)
        channels.removeValue(forKey: ObjectIdentifier(ch))
    }

    private func runDueTimers() {
        guard !timers.isEmpty else { return }
        for task in timers.popDue(now: nowNanos) { task() }
    }


    private func runLocalTasks() {
        while !localTasks.isEmpty {
            let tasks = localTasks
            localTasks = []
            for t in tasks { t() }
        }
    }

    /// An ended loop runs nothing more; what it still holds (timers that reschedule themselves,
    /// tasks, listeners) would otherwise keep their owners alive in a cycle through the loop.
    private func dropPendingWork() {
        timers.removeAll()
        localTasks.removeAll()
        dirty.removeAll()
        listeners.removeAll()
        inbox.removeAll()
    }

    private func beginShutdown() {
        for l in listeners where !l.closed {
            l.closed = true
            Glibc.shutdown(l.fd, Int32(SHUT_RDWR))
            Glibc.close(l.fd)
        }
        for ch in Array(channels.values) { closeChannel(ch, reason: .local("shutdown")) }
    }
}

/// Hands a value to a thread we start ourselves. Used only at thread creation.
struct UnsafeSendableBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
