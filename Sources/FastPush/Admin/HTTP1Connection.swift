/// One admin HTTP/1.1 connection on an I/O loop: reads one request (head and Content-Length
/// body, both size-limited), answers it, closes. Slow or oversized requests get a 4xx.
final class HTTP1Connection: ChannelHandler {
    static let maxHead = 16 * 1024

    let maxBody: Int
    /// Answers through its callback, on any thread, at once or later.
    let route: (HTTPRequest, @escaping @Sendable (HTTPResponse) -> Void) -> Void
    let idleTimeoutNanos: UInt64
    private var buffer: [UInt8] = []
    private var responded = false
    /// A request was read; its answer may still be on its way.
    private var requested = false
    private var response: [UInt8]?

    init(maxBody: Int, idleTimeoutNanos: UInt64, route: @escaping (HTTPRequest, @escaping @Sendable (HTTPResponse) -> Void) -> Void) {
        self.maxBody = maxBody
        self.idleTimeoutNanos = idleTimeoutNanos
        self.route = route
    }

    func channelActive(_ channel: Channel) {
        channel.loop.schedule(afterNanos: idleTimeoutNanos) { [weak self, unowned channel] in
            guard let self, !self.responded, channel.state == .active else { return }
            self.reply(channel, self.requested ? .error(504, "no answer in time (the registry store did not confirm the write)")
                                               : .error(408, "request not received in time"))
        }
    }

    func channelRead(_ channel: Channel, _ bytes: UnsafeRawBufferPointer) {
        guard !responded, !requested else { return }
        buffer.append(contentsOf: bytes)
        guard let headEnd = HTTP1Parser.findHeadEnd(buffer) else {
            if buffer.count > Self.maxHead { reply(channel, .error(431, "request head larger than \(Self.maxHead) bytes")) }
            return
        }
        guard let (request, contentLength) = HTTP1Parser.parseHead(Array(buffer[..<headEnd])) else {
            reply(channel, .error(400, "malformed HTTP/1.1 request"))
            return
        }
        if request.headers["transfer-encoding"] != nil {
            reply(channel, .error(411, "chunked bodies are not supported; send Content-Length"))
            return
        }
        if contentLength > maxBody {
            reply(channel, .error(413, "body larger than \(maxBody) bytes"))
            return
        }
        let bodyStart = headEnd + 4
        guard buffer.count - bodyStart >= contentLength else { return }
        var r = request
        r.body = Array(buffer[bodyStart..<(bodyStart + contentLength)])
        requested = true
        buffer = []
        let loop = channel.loop
        let target = LoopBound((self, channel), loop: loop)
        route(r) { response in
            if loop.inEventLoop {
                let (conn, ch) = target.value
                conn.reply(ch, response)
            } else {
                loop.execute {
                    let (conn, ch) = target.value
                    guard ch.state == .active else { return }
                    conn.reply(ch, response)
                }
            }
        }
    }

    private func reply(_ channel: Channel, _ r: HTTPResponse) {
        guard !responded else { return }
        responded = true
        buffer = []
        response = r.serialized()
        channel.closeAfterFlush()
    }

    func produce(_ channel: Channel, into out: inout OutboundBuffer, budget: Int) {
        if let r = response {
            out.append(copying: r)
            response = nil
        }
    }

    func channelInactive(_ channel: Channel, reason: CloseReason) {}
}

/// The admin server's HTTP/1.1 request head parser: pure functions over bytes, so the fuzzer
/// can reach them without a socket.
package enum HTTP1Parser {
    /// Where the head ends (the offset of its closing "\r\n\r\n"), once it has all arrived.
    package static func findHeadEnd(_ buffer: [UInt8]) -> Int? {
        guard buffer.count >= 4 else { return nil }
        for i in 0...(buffer.count - 4) where buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 {
            return i
        }
        return nil
    }

    /// The request line and headers (without the closing blank line): the request without its
    /// body, and its Content-Length (0 when absent); nil when malformed.
    package static func parseHead(_ head: [UInt8]) -> (HTTPRequest, Int)? {
        let text = String(decoding: head, as: UTF8.self)
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false)
        guard !lines.isEmpty else { return nil }
        let requestLine = lines.removeFirst().split(separator: " ")
        guard requestLine.count == 3, requestLine[2].hasPrefix("HTTP/1.") else { return nil }
        var headers: [String: String] = [:]
        for line in lines where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { return nil }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: " \t")
        }
        let target = String(requestLine[1])
        var path = target
        var query: [String: String] = [:]
        if let q = target.firstIndex(of: "?") {
            path = String(target[..<q])
            for pair in target[target.index(after: q)...].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                query[String(kv[0])] = kv.count > 1 ? String(kv[1]) : ""
            }
        }
        let length: Int
        if let cl = headers["content-length"] {
            guard let n = Int(cl), n >= 0 else { return nil }
            length = n
        } else {
            length = 0
        }
        return (HTTPRequest(method: String(requestLine[0]), path: path, query: query, headers: headers), length)
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> String {
        var s = self[...]
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
