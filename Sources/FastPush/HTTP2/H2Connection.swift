import CNghttp2

/// The pseudo-headers and the few regular headers gRPC needs, from one header block
/// (a request, a response, or trailers). Kept for the stream's life: only what is read.
public struct H2Head: Sendable {
    public var method = ""
    public var path = ""
    public var status = ""
    public var contentType = ""
    public var grpcEncoding = ""
    public var grpcStatus = ""
    public var grpcMessage = ""
    /// Bytes of the header block as RFC 7541 counts them (name + value + 32 per field).
    public var listSize = 0
    public init() {}
}

public protocol H2ConnectionDelegate: AnyObject {
    /// Server: a request arrived. Client: the response headers arrived.
    func h2StreamOpened(_ connection: H2Connection, streamID: Int32, head: H2Head, endStream: Bool)
    /// A later header block on an open stream (trailers).
    func h2StreamHeaders(_ connection: H2Connection, streamID: Int32, head: H2Head, endStream: Bool)
    func h2StreamData(_ connection: H2Connection, streamID: Int32, data: UnsafeRawBufferPointer)
    /// The peer sent END_STREAM.
    func h2StreamRemoteClosed(_ connection: H2Connection, streamID: Int32)
    /// The stream is gone (both sides done, or reset). `errorCode` is the HTTP/2 error code.
    func h2StreamClosed(_ connection: H2Connection, streamID: Int32, errorCode: UInt32)
}

/// One HTTP/2 connection (server, or client for the load generator and tests) over an nghttp2
/// session, without I/O: bytes in through
/// `receive`, bytes out through `produce`. DATA frames are emitted with NO_COPY, so a shared
/// message body goes to the socket as an iovec instead of being copied into nghttp2.
public final class H2Connection {
    public enum Role: Sendable { case server, client }

    final class Stream {
        var head = H2Head()
        var opened = false
        var remoteClosed = false
        var messages: [StreamMessage] = []
        var messageHead = 0
        /// Bytes of messages[messageHead] already handed to nghttp2.
        var offset = 0
        var pendingBytes = 0
        var responseStarted = false
        var deferred = false
        var trailers: [(String, String)]?
        var finishing = false
        var resetAfterTrailers = false
        /// Client: half-close (END_STREAM on DATA) once queued messages are out.
        var endWhenDrained = false
    }

    public let role: Role
    public let settings: H2Settings
    /// Strong: the gRPC connection above and this one live and die together; it is cleared when
    /// the connection closes (a weak reference would make every callback's retain a slow path).
    public var delegate: (any H2ConnectionDelegate)?
    /// Called whenever there is something new to send (the transport schedules a flush).
    public var onNeedsFlush: (() -> Void)?
    public private(set) var lastError: String?
    /// The GOAWAY this side sent (error code and debug data), by nghttp2 or by `goAway`.
    public internal(set) var goAwaySent: (code: UInt32, debug: String)?
    /// The peer's SETTINGS (the end of its connection preface) arrived.
    public internal(set) var peerSettingsReceived = false

    var session: OpaquePointer!
    var streams: [Int32: Stream] = [:]
    /// Message bytes queued on all streams and not yet handed to the socket (flow control or a
    /// slow reader holds them): what the send-timeout sweep watches.
    public internal(set) var queuedBytes = 0
    var out: UnsafeMutablePointer<OutboundBuffer>?
    var budget = 0
    /// Bytes nghttp2 holds for this session (its allocator counts them).
    let memory: UnsafeMutablePointer<Int>
    /// Stream errors the peer may still cause (a token bucket, see H2Settings.streamErrorBurst).
    var streamErrorTokens: Int
    var streamErrorRefill: UInt64
    /// Why the peer is being cut off, when a limit of ours (not nghttp2's) ran out.
    var abuse: String?

    public init(role: Role = .server, settings: H2Settings = H2Settings()) {
        self.role = role
        self.settings = settings
        memory = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        memory.initialize(to: 0)
        streamErrorTokens = settings.streamErrorBurst
        streamErrorRefill = MonotonicClock.nanos()
        var option: OpaquePointer?
        nghttp2_option_new(&option)
        nghttp2_option_set_max_outbound_ack(option, settings.maxOutboundAck)
        nghttp2_option_set_max_settings(option, settings.maxSettingsEntries)
        nghttp2_option_set_stream_reset_rate_limit(option, settings.streamResetBurst, settings.streamResetRate)
        // Our response headers are tiny and repetitive; a small HPACK table saves memory per connection.
        nghttp2_option_set_max_deflate_dynamic_table_size(option, 512)
        var s: OpaquePointer?
        let ud = Unmanaged.passUnretained(self).toOpaque()
        var mem = H2Memory.counting(memory)  // copied into the session
        let rc = role == .server
            ? nghttp2_session_server_new3(&s, H2Callbacks.shared, ud, option, &mem)
            : nghttp2_session_client_new3(&s, H2Callbacks.shared, ud, option, &mem)
        nghttp2_option_del(option)
        precondition(rc == 0, "nghttp2_session_new: \(rc)")
        session = s
        var iv = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: settings.maxConcurrentStreams),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: settings.initialWindowSize),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_FRAME_SIZE.rawValue), value: settings.maxFrameSize),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: settings.maxHeaderListSize),
        ]
        nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &iv, iv.count)
        nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, Int32(settings.connectionWindowSize))
    }

    deinit {
        // Completions still queued belong to streams that never finished: they failed.
        for s in streams.values { H2Connection.failMessages(s, self) }
        nghttp2_session_del(session)
        memory.deallocate()
    }

    /// Bytes nghttp2 currently holds for this session.
    public var sessionMemory: Int { memory.pointee }

    // MARK: I/O side

    /// Feeds received bytes. Returns false when the connection must close (after sending what
    /// is queued, such as a GOAWAY).
    public func receive(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count > 0 else { return true }
        let rv = nghttp2_session_mem_recv(session, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), bytes.count)
        if rv < 0 {
            let code: UInt32
            switch Int32(rv) {
            case _ where abuse != nil, NGHTTP2_ERR_FLOODED.rawValue, NGHTTP2_ERR_TOO_MANY_CONTINUATIONS.rawValue:
                code = NGHTTP2_ENHANCE_YOUR_CALM.rawValue
            default:
                code = NGHTTP2_PROTOCOL_ERROR.rawValue
            }
            lastError = abuse ?? String(cString: nghttp2_strerror(Int32(rv)))
            if rv != Int(NGHTTP2_ERR_BAD_CLIENT_MAGIC.rawValue) {
                nghttp2_session_terminate_session(session, code)
            }
            return false
        }
        if memory.pointee > settings.maxSessionMemory {
            // Frames are queued faster than the peer takes them (or it never does): whatever
            // it sends, nghttp2's memory for it stays bounded.
            lastError = "HTTP/2 session memory \(memory.pointee) bytes over the limit \(settings.maxSessionMemory)"
            nghttp2_session_terminate_session(session, NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
            return false
        }
        return true
    }

    /// Takes one stream-error token; false (and the reason kept) when the peer has none left.
    func spendStreamErrorToken(_ what: @autoclosure () -> String) -> Bool {
        let now = MonotonicClock.nanos()
        let refill = Int((now &- streamErrorRefill) / 1_000_000) * settings.streamErrorRate / 1000
        if refill > 0 {
            streamErrorTokens = min(settings.streamErrorBurst, streamErrorTokens + refill)
            streamErrorRefill = now
        }
        if streamErrorTokens > 0 {
            streamErrorTokens -= 1
            return true
        }
        if abuse == nil {
            abuse = "too many stream errors (\(settings.streamErrorBurst) at once, \(settings.streamErrorRate)/s); last: \(what())"
        }
        return false
    }

    /// Appends frames to `out` until about `budget` bytes are pending there or nothing is left.
    /// Returns false on a fatal session error.
    @discardableResult
    public func produce(into out: inout OutboundBuffer, budget: Int) -> Bool {
        self.budget = budget
        let rv = withUnsafeMutablePointer(to: &out) { p -> Int32 in
            self.out = p
            defer { self.out = nil }
            return nghttp2_session_send(session)
        }
        if rv != 0 {
            lastError = String(cString: nghttp2_strerror(rv))
            return false
        }
        return true
    }

    /// RFC 9113 section 7 names, for logs.
    public static func errorName(_ code: UInt32) -> String {
        let names = ["NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
                     "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR",
                     "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"]
        return Int(code) < names.count ? names[Int(code)] : "0x" + String(code, radix: 16)
    }

    /// Neither side has anything more to say (after GOAWAY, or a fatal error).
    public var isFinished: Bool { nghttp2_session_want_read(session) == 0 && nghttp2_session_want_write(session) == 0 }
    public var openStreamCount: Int { streams.count }

    // MARK: stream side

    /// Sends response headers and keeps the stream open for messages.
    public func startResponse(streamID: Int32, headers: [(String, String)]) {
        guard let s = streams[streamID], !s.responseStarted else { return }
        s.responseStarted = true
        var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: H2Callbacks.readData)
        H2Headers.with(headers) { nva, n in
            _ = nghttp2_submit_response(session, streamID, nva, n, &provider)
        }
        onNeedsFlush?()
    }

    /// A response that is only headers (gRPC "trailers-only"): ends the stream.
    public func respondHeadersOnly(streamID: Int32, headers: [(String, String)]) {
        guard let s = streams[streamID], !s.responseStarted else { return }
        s.responseStarted = true
        s.finishing = true
        H2Headers.with(headers) { nva, n in
            _ = nghttp2_submit_response(session, streamID, nva, n, nil)
        }
        if !s.remoteClosed { s.resetAfterTrailers = true }
        onNeedsFlush?()
    }

    /// Queues a message on a started stream. Returns false if the stream is gone or finishing.
    @discardableResult
    public func send(streamID: Int32, _ message: StreamMessage) -> Bool {
        guard let s = streams[streamID], s.responseStarted, !s.finishing else {
            message.completion?(false)
            return false
        }
        s.messages.append(message)
        s.pendingBytes += message.count
        queuedBytes += message.count
        resume(streamID, s)
        onNeedsFlush?()
        return true
    }

    /// Ends the stream with trailers once its queued messages are out. A stream the client has
    /// not half-closed is then reset with NO_ERROR, as gRPC servers do.
    public func finish(streamID: Int32, trailers: [(String, String)]) {
        guard let s = streams[streamID], !s.finishing else { return }
        guard s.responseStarted else {
            respondHeadersOnly(streamID: streamID, headers: [(":status", "200"), ("content-type", "application/grpc")] + trailers)
            return
        }
        s.finishing = true
        s.trailers = trailers
        if !s.remoteClosed { s.resetAfterTrailers = true }
        resume(streamID, s)
        onNeedsFlush?()
    }

    /// Client: opens a stream with request headers; messages follow with `send`.
    public func submitRequest(headers: [(String, String)]) -> Int32 {
        precondition(role == .client)
        var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: H2Callbacks.readData)
        let id = H2Headers.with(headers) { nva, n in nghttp2_submit_request(session, nil, nva, n, &provider, nil) }
        guard id > 0 else { return id }
        let s = Stream()
        s.opened = false
        s.responseStarted = true
        streams[id] = s
        onNeedsFlush?()
        return id
    }

    /// Client: half-closes the stream after its queued messages.
    public func endRequest(streamID: Int32) {
        guard let s = streams[streamID], !s.finishing else { return }
        s.finishing = true
        s.endWhenDrained = true
        resume(streamID, s)
        onNeedsFlush?()
    }

    public func reset(streamID: Int32, errorCode: UInt32) {
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, errorCode)
        onNeedsFlush?()
    }

    /// GOAWAY with the last stream we processed: no new streams; open ones may finish.
    public func goAway(errorCode: UInt32, debug: String = "") {
        let last = nghttp2_session_get_last_proc_stream_id(session)
        var d = Array(debug.utf8)
        nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), last, errorCode, &d, d.count)
        onNeedsFlush?()
    }

    public func queuedMessages(streamID: Int32) -> Int {
        guard let s = streams[streamID] else { return 0 }
        return s.messages.count - s.messageHead
    }

    private func resume(_ id: Int32, _ s: Stream) {
        if s.deferred {
            s.deferred = false
            nghttp2_session_resume_data(session, id)
        }
    }

    static func failMessages(_ s: Stream, _ c: H2Connection? = nil) {
        c?.queuedBytes -= s.pendingBytes
        guard s.messageHead < s.messages.count else { return }
        let pending = s.messages[s.messageHead...].compactMap(\.completion)
        s.messages = []
        s.messageHead = 0
        s.pendingBytes = 0
        for c in pending { c(false) }
    }
}
