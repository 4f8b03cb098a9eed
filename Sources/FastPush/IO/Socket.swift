#if canImport(Glibc)
import Glibc
#endif

public struct SocketError: Error, CustomStringConvertible {
    public let operation: String
    public let errno: Int32
    public init(operation: String, errno: Int32) { self.operation = operation; self.errno = errno }
    public var description: String { "\(operation): \(String(cString: strerror(errno)))" }
}

/// Address helpers and the few socket syscalls made outside the ring (setup only).
public enum Socket {
    /// Parses "host:port", "[v6]:port" or ":port" (all interfaces).
    public static func parseHostPort(_ s: String) -> (host: String, port: UInt16)? {
        if s.hasPrefix("["), let close = s.firstIndex(of: "]") {
            let host = String(s[s.index(after: s.startIndex)..<close])
            let rest = s[s.index(after: close)...]
            guard rest.hasPrefix(":"), let p = UInt16(rest.dropFirst()) else { return nil }
            return (host, p)
        }
        guard let colon = s.lastIndex(of: ":"), let p = UInt16(s[s.index(after: colon)...]) else { return nil }
        let host = String(s[..<colon])
        return (host.isEmpty ? "0.0.0.0" : host, p)
    }

    /// A non-blocking listening TCP socket. Port 0 picks a free port; `boundPort` tells which.
    public static func listen(host: String, port: UInt16, backlog: Int32 = 4096) throws -> (fd: Int32, port: UInt16) {
        var storage = sockaddr_storage()
        let len = try fill(&storage, host: host, port: port)
        let family = Int32(storage.ss_family)
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError(operation: "socket", errno: errno) }
        var one: Int32 = 1
        // SO_REUSEADDR only (not SO_REUSEPORT): a port taken by another process must fail loudly.
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let rc = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) }
        }
        guard rc == 0 else {
            let e = errno; Glibc.close(fd)
            throw SocketError(operation: "bind \(host):\(port)", errno: e)
        }
        guard Glibc.listen(fd, backlog) == 0 else {
            let e = errno; Glibc.close(fd)
            throw SocketError(operation: "listen", errno: e)
        }
        return (fd, boundPort(fd))
    }

    public static func boundPort(_ fd: Int32) -> UInt16 {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        return port(of: storage)
    }

    static func port(of storage: sockaddr_storage) -> UInt16 {
        var s = storage
        switch Int32(s.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &s) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) } }
        case AF_INET6:
            return withUnsafePointer(to: &s) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) } }
        default: return 0
        }
    }

    public static func fill(_ storage: inout sockaddr_storage, host: String, port: UInt16) throws -> socklen_t {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = port.bigEndian
            sa.sin_addr = v4
            withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee = sa } }
            return socklen_t(MemoryLayout<sockaddr_in>.size)
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 {
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            sa.sin6_port = port.bigEndian
            sa.sin6_addr = v6
            withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee = sa } }
            return socklen_t(MemoryLayout<sockaddr_in6>.size)
        }
        if host == "localhost" { return try fill(&storage, host: "127.0.0.1", port: port) }
        throw SocketError(operation: "address \(host)", errno: EINVAL)
    }

    /// "ip:port" of the peer, for logs.
    public static func peerName(_ fd: Int32) -> String {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &len) }
        }
        guard rc == 0 else { return "?" }
        return format(storage)
    }

    public static func format(_ storage: sockaddr_storage) -> String {
        var s = storage
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch Int32(s.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &s) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { p in
                    var a = p.pointee.sin_addr
                    inet_ntop(AF_INET, &a, &buf, socklen_t(buf.count))
                    return "\(String(cString: buf)):\(UInt16(bigEndian: p.pointee.sin_port))"
                }
            }
        case AF_INET6:
            return withUnsafePointer(to: &s) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { p in
                    var a = p.pointee.sin6_addr
                    inet_ntop(AF_INET6, &a, &buf, socklen_t(buf.count))
                    return "[\(String(cString: buf))]:\(UInt16(bigEndian: p.pointee.sin6_port))"
                }
            }
        default: return "?"
        }
    }

    public static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// TCP keepalive: a peer that vanished without a FIN (a dead host, a partition) is noticed
    /// after `idle + interval * count` seconds instead of never.
    public static func setKeepAlive(_ fd: Int32, idleSeconds: Int32, intervalSeconds: Int32, count: Int32) {
        var one: Int32 = 1, idle = idleSeconds, intvl = intervalSeconds, cnt = count
        let len = socklen_t(MemoryLayout<Int32>.size)
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, len)
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPIDLE, &idle, len)
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPINTVL, &intvl, len)
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPCNT, &cnt, len)
    }

    /// Caps what the kernel buffers for a peer that does not read (tcp_mem is shared by the machine).
    public static func setSendBuffer(_ fd: Int32, bytes: Int32) {
        var v = bytes
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, socklen_t(MemoryLayout<Int32>.size))
    }

    public static func setReceiveBuffer(_ fd: Int32, bytes: Int32) {
        var v = bytes
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, socklen_t(MemoryLayout<Int32>.size))
    }

    /// A connected socket, non-blocking for a loop unless `nonBlocking` is false (plain
    /// request/response clients). The connect itself blocks: on loopback it is quick.
    /// `timeoutMillis`: the longest the (blocking) connect may take (SO_SNDTIMEO bounds it).
    public static func connect(host: String, port: UInt16, sourceHost: String? = nil, nonBlocking: Bool = true,
                               timeoutMillis: Int? = nil) throws -> Int32 {
        var storage = sockaddr_storage()
        let len = try fill(&storage, host: host, port: port)
        let fd = socket(Int32(storage.ss_family), Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError(operation: "socket", errno: errno) }
        if let ms = timeoutMillis {
            var tv = timeval(tv_sec: ms / 1000, tv_usec: (ms % 1000) * 1000)
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        }
        if let src = sourceHost {
            var s = sockaddr_storage()
            let sl = try fill(&s, host: src, port: 0)
            var one: Int32 = 1
            // Lets many source addresses share the ephemeral port range.
            setsockopt(fd, Int32(IPPROTO_IP), IP_BIND_ADDRESS_NO_PORT, &one, socklen_t(MemoryLayout<Int32>.size))
            let rc = withUnsafePointer(to: &s) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, sl) } }
            guard rc == 0 else { let e = errno; Glibc.close(fd); throw SocketError(operation: "bind \(src)", errno: e) }
        }
        let rc = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, len) } }
        guard rc == 0 else { let e = errno; Glibc.close(fd); throw SocketError(operation: "connect \(host):\(port)", errno: e) }
        if timeoutMillis != nil {
            var none = timeval(tv_sec: 0, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &none, socklen_t(MemoryLayout<timeval>.size))
        }
        if nonBlocking { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        return fd
    }
}
