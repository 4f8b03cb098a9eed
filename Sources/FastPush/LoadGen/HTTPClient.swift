#if canImport(Glibc)
import Glibc
#endif

/// A blocking HTTP/1.1 client for the load generator's triggers (fastpilot's admin API). One
/// request per connection, bounded by a timeout.
public enum HTTPClient {
    public struct Response: Sendable {
        public let status: Int
        public let body: [UInt8]
        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    public static func request(_ method: String, host: String, port: UInt16, path: String, body: [UInt8] = [],
                               timeoutSeconds: Int = 10) throws -> Response {
        let fd = try Socket.connect(host: host, port: port, nonBlocking: false)
        defer { close(fd) }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let head = "\(method) \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        try writeAll(fd, Array(head.utf8) + body)
        var got: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &buf, buf.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw SocketError(operation: "read \(path)", errno: errno)
            }
            if n == 0 { break }
            got += buf[0..<n]
        }
        guard let split = find(got, [13, 10, 13, 10]) else { throw SocketError(operation: "malformed HTTP response", errno: EPROTO) }
        let statusLine = String(decoding: got[..<(got.firstIndex(of: 13) ?? split)], as: UTF8.self)
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { throw SocketError(operation: "malformed status line", errno: EPROTO) }
        return Response(status: status, body: Array(got[(split + 4)...]))
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SocketError(operation: "write", errno: errno)
            }
            off += n
        }
    }

    static func find(_ hay: [UInt8], _ needle: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        for i in 0...(hay.count - needle.count) where Array(hay[i..<(i + needle.count)]) == needle { return i }
        return nil
    }
}
