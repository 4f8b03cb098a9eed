/// Events of one client call. Loop-thread only.
public protocol GRPCClientCallDelegate: AnyObject {
    func callReceived(_ call: GRPCClientCall, message: UnsafeRawBufferPointer)
    /// The call ended: trailers (status), reset or connection loss.
    func callEnded(_ call: GRPCClientCall, status: GRPCStatus)
}

/// The client side of one gRPC call (a long-lived ADS stream for the load generator).
public final class GRPCClientCall {
    public let id: Int32
    unowned(unsafe) let connection: GRPCClientConnection  // it owns its calls
    /// Owned by the call (the delegate must not hold the call strongly).
    public var delegate: (any GRPCClientCallDelegate)?
    var deframer: GRPCDeframer
    public internal(set) var ended = false
    var status: GRPCStatus?

    init(id: Int32, connection: GRPCClientConnection, maxMessageSize: Int) {
        self.id = id
        self.connection = connection
        self.deframer = GRPCDeframer(maxMessageSize: maxMessageSize)
    }

    @discardableResult
    public func send(bytes: [UInt8], completion: WriteCompletion? = nil) -> Bool {
        send(body: ByteSlice(SharedBytes(bytes)), tail: SmallBytes(), completion: completion)
    }

    /// A shared body and a small tail as one message: the body is not copied.
    @discardableResult
    public func send(body: ByteSlice, tail: SmallBytes, completion: WriteCompletion? = nil) -> Bool {
        guard !ended else { completion?(false); return false }
        let m = StreamMessage(head: GRPCDeframer.prefix(length: body.count + tail.count), body: body, tail: tail, completion: completion)
        return connection.h2.send(streamID: id, m)
    }

    public func halfClose() { connection.h2.endRequest(streamID: id) }
    public func cancel() { connection.h2.reset(streamID: id, errorCode: 8) }  // CANCEL
}

/// Lets a call's own delegate reach the call without a reference cycle (the call owns its
/// delegate; a strong reference back would keep both alive forever).
public final class GRPCClientCallRef {
    public unowned(unsafe) var call: GRPCClientCall?
    public init() {}
}

/// gRPC client calls over one HTTP/2 connection (prior-knowledge h2c). Loop-thread only.
public final class GRPCClientConnection: H2ConnectionDelegate {
    public let h2: H2Connection
    let maxMessageSize: Int
    public let authority: String
    private var calls: [Int32: GRPCClientCall] = [:]

    public init(h2: H2Connection, authority: String, maxMessageSize: Int = 64 << 20) {
        precondition(h2.role == .client)
        self.h2 = h2
        self.authority = authority
        self.maxMessageSize = maxMessageSize
        h2.delegate = self
    }

    /// `metadata`: extra request headers (gRPC metadata, lower-case names).
    public func startCall(path: String, delegate: any GRPCClientCallDelegate, metadata: [(String, String)] = []) -> GRPCClientCall? {
        let id = h2.submitRequest(headers: [
            (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", authority),
            ("content-type", "application/grpc"), ("te", "trailers"), ("user-agent", "fastpilot"),
        ] + metadata)
        guard id > 0 else { return nil }
        let call = GRPCClientCall(id: id, connection: self, maxMessageSize: maxMessageSize)
        call.delegate = delegate
        calls[id] = call
        return call
    }

    public func h2StreamOpened(_ c: H2Connection, streamID: Int32, head: H2Head, endStream: Bool) {
        guard let call = calls[streamID] else { return }
        if !head.grpcStatus.isEmpty { call.status = Self.status(head) }
        else if head.status != "200" { call.status = GRPCStatus(.unknown, "HTTP status \(head.status)") }
    }

    public func h2StreamHeaders(_ c: H2Connection, streamID: Int32, head: H2Head, endStream: Bool) {
        guard let call = calls[streamID] else { return }
        call.status = Self.status(head)
    }

    static func status(_ head: H2Head) -> GRPCStatus {
        let code = GRPCStatusCode(rawValue: Int(head.grpcStatus) ?? 2) ?? .unknown
        return GRPCStatus(code, head.grpcMessage.removingPercentEncodingLite)
    }

    public func h2StreamData(_ c: H2Connection, streamID: Int32, data: UnsafeRawBufferPointer) {
        guard let call = calls[streamID] else { return }
        do {
            try call.deframer.feed(data) { m in
                call.delegate?.callReceived(call, message: m)
                return !call.ended
            }
        } catch {
            call.cancel()
            end(call, GRPCStatus(.resourceExhausted, "client deframer: \(error)"))
        }
    }

    public func h2StreamRemoteClosed(_ c: H2Connection, streamID: Int32) {}

    public func h2StreamClosed(_ c: H2Connection, streamID: Int32, errorCode: UInt32) {
        guard let call = calls.removeValue(forKey: streamID) else { return }
        end(call, call.status ?? GRPCStatus(.unavailable, "stream reset (HTTP/2 error \(errorCode))"))
    }

    public func connectionClosed(reason: String) {
        h2.delegate = nil
        let all = calls.values
        calls = [:]
        for call in all { end(call, call.status ?? GRPCStatus(.unavailable, "connection closed: \(reason)")) }
    }

    private func end(_ call: GRPCClientCall, _ status: GRPCStatus) {
        guard !call.ended else { return }
        call.ended = true
        call.delegate?.callEnded(call, status: status)
    }
}

extension String {
    /// Decodes %XX escapes (grpc-message); leaves malformed escapes as they are.
    var removingPercentEncodingLite: String {
        guard contains("%") else { return self }
        var bytes: [UInt8] = []
        let u = Array(utf8)
        var i = 0
        while i < u.count {
            if u[i] == 0x25, i + 2 < u.count, let h = UInt8(String(decoding: u[(i + 1)...(i + 2)], as: UTF8.self), radix: 16) {
                bytes.append(h); i += 3
            } else {
                bytes.append(u[i]); i += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
