#if canImport(Glibc)
import Glibc
#endif
import CUring
import FastPush

/// The kernel floor for a push: `bytes` to each of N loopback TCP sockets with io_uring (one
/// IORING_OP_SEND per socket, submitted in batches), until a sink in another process has read
/// all of it. No HTTP/2, no gRPC, no protobuf: what any push engine pays at least.
enum FloorBench {
    /// Returns the median seconds over `reps` rounds on the same N connected sockets.
    static func measure(sockets n: Int, bytes: Int, reps: Int = 5) throws -> Sample {
        // The sink: this same binary, in another process, reading everything.
        var toSink: [Int32] = [-1, -1], fromSink: [Int32] = [-1, -1]
        pipe(&toSink); pipe(&fromSink)
        let pid = try ScaleBench.spawn("\(ScaleBench.binDir)/fastpilot-bench", ["floor-sink", String(n), String(bytes)],
                                       dups: [(toSink[0], 0), (fromSink[1], 1)])
        close(toSink[0]); close(fromSink[1])
        defer {
            close(toSink[1]); close(fromSink[0])
            var st: Int32 = 0
            waitpid(pid, &st, 0)
        }
        // The sink listens; we connect N sockets to it.
        var sinkPort: UInt16 = 0
        _ = read(fromSink[0], &sinkPort, 2)
        var fds: [Int32] = []
        fds.reserveCapacity(n)
        let sources = n > 2000 ? (2...9).map { "127.0.0.\($0)" } : ["127.0.0.1"]
        for i in 0..<n {
            let fd = try Socket.connect(host: "127.0.0.1", port: sinkPort, sourceHost: n > 2000 ? sources[i % sources.count] : nil)
            Socket.setNoDelay(fd)
            fds.append(fd)
        }
        defer { for fd in fds { close(fd) } }
        var ring = io_uring()
        guard io_uring_queue_init(4096, &ring, 0) == 0 else { throw SocketError(operation: "io_uring_queue_init", errno: errno) }
        defer { io_uring_queue_exit(&ring) }
        let payload = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        memset(payload, 0x5A, bytes)
        defer { payload.deallocate() }
        var ready: UInt8 = 0
        _ = read(fromSink[0], &ready, 1)  // the sink accepted all
        var values: [Double] = []
        for _ in 0..<(reps + 1) {
            var go: UInt8 = 1
            _ = write(toSink[1], &go, 1)
            _ = read(fromSink[0], &ready, 1)  // sink armed for this round
            let t0 = MonotonicClock.nanos()
            var submitted = 0, completed = 0
            while completed < n {
                while submitted < n, let sqe = io_uring_get_sqe(&ring) {
                    io_uring_prep_send(sqe, fds[submitted], payload, bytes, Int32(MSG_NOSIGNAL))
                    submitted += 1
                }
                io_uring_submit_and_wait(&ring, 1)
                var cqe: UnsafeMutablePointer<io_uring_cqe>?
                while io_uring_peek_cqe(&ring, &cqe) == 0, let c = cqe {
                    precondition(c.pointee.res == Int32(bytes), "short send \(c.pointee.res)")
                    io_uring_cqe_seen(&ring, c)
                    completed += 1
                }
            }
            _ = read(fromSink[0], &ready, 1)  // the sink read everything
            values.append(Double(MonotonicClock.nanos() - t0) / 1e9)
        }
        var stop: UInt8 = 0
        _ = write(toSink[1], &stop, 1)
        return Sample(name: "floor", unit: "s", values: Array(values.dropFirst()))
    }

    /// `fastpilot-bench floor-sink N BYTES`: listens on a port of its own (written to stdout),
    /// accepts N sockets, then per round reads N×BYTES with io_uring and reports on stdout.
    static func sink(_ args: [String]) -> Never {
        let n = Int(args[0])!, bytes = Int(args[1])!
        let (lfd, port) = try! Socket.listen(host: "0.0.0.0", port: 0, backlog: 4096)
        var p = port
        _ = write(1, &p, 2)
        var fds: [Int32] = []
        let flags = fcntl(lfd, F_GETFL)
        _ = fcntl(lfd, F_SETFL, flags & ~O_NONBLOCK)
        while fds.count < n {
            let fd = accept(lfd, nil, nil)
            if fd >= 0 { fds.append(fd) }
        }
        var ring = io_uring()
        io_uring_queue_init(4096, &ring, 0)
        let buf = UnsafeMutableRawPointer.allocate(byteCount: 65536 * 64, alignment: 64)
        var one: UInt8 = 1
        _ = write(1, &one, 1)
        while true {
            var cmd: UInt8 = 0
            guard read(0, &cmd, 1) == 1, cmd == 1 else { exit(0) }
            var remaining = [Int](repeating: bytes, count: n)
            var left = n * bytes
            var armed = 0
            func arm(_ i: Int) {
                let sqe = io_uring_get_sqe(&ring)!
                io_uring_prep_recv(sqe, fds[i], buf + (i % 64) * 65536, min(65536, remaining[i]), 0)
                io_uring_sqe_set_data64(sqe, UInt64(i))
            }
            var next = 0
            _ = write(1, &one, 1)
            while left > 0 {
                while next < n && armed < 3000 { arm(next); next += 1; armed += 1 }
                io_uring_submit_and_wait(&ring, 1)
                var cqe: UnsafeMutablePointer<io_uring_cqe>?
                while io_uring_peek_cqe(&ring, &cqe) == 0, let c = cqe {
                    let i = Int(c.pointee.user_data), r = Int(c.pointee.res)
                    io_uring_cqe_seen(&ring, c)
                    armed -= 1
                    if r > 0 { remaining[i] -= r; left -= r }
                    if remaining[i] > 0 { arm(i); armed += 1 }
                }
            }
            _ = write(1, &one, 1)
        }
    }
}
