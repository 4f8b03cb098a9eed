/// A unary call on the client connection: one request message, one response message, a status.
/// Loop-thread only.
extension GRPCClientConnection {
    /// Sends `request` on a new call and half-closes. `completion` runs once, on this loop: the
    /// response message, or the status the call ended with (also when no message came, when
    /// the connection went away, or when `timeoutNanos` passed first, as DEADLINE_EXCEEDED).
    @discardableResult
    public func unary(path: String, request: [UInt8], on loop: any IOLoop, timeoutNanos: UInt64,
                      completion: @escaping (Result<[UInt8], GRPCStatus>) -> Void) -> Bool {
        let delegate = UnaryCallDelegate(completion)
        guard let call = startCall(path: path, delegate: delegate) else {
            delegate.finish(.failure(GRPCStatus(.unavailable, "could not start a call (connection going away)")))
            return false
        }
        delegate.call = call
        call.send(bytes: request)
        call.halfClose()
        loop.schedule(afterNanos: timeoutNanos) {
            guard delegate.pending else { return }
            delegate.call?.cancel()
            delegate.finish(.failure(GRPCStatus(.deadlineExceeded, "no answer to \(path) within \(timeoutNanos / 1_000_000) ms")))
        }
        return true
    }
}

/// Collects a unary call's one message; owned by the call (and by its timeout until it fires).
final class UnaryCallDelegate: GRPCClientCallDelegate {
    private var completion: ((Result<[UInt8], GRPCStatus>) -> Void)?
    private var message: [UInt8]?
    weak var call: GRPCClientCall?

    init(_ completion: @escaping (Result<[UInt8], GRPCStatus>) -> Void) { self.completion = completion }

    var pending: Bool { completion != nil }

    func finish(_ result: Result<[UInt8], GRPCStatus>) {
        guard let c = completion else { return }
        completion = nil
        c(result)
    }

    func callReceived(_ call: GRPCClientCall, message m: UnsafeRawBufferPointer) {
        if message == nil { message = Array(m) }
    }

    func callEnded(_ call: GRPCClientCall, status: GRPCStatus) {
        if status.code == .ok, let message {
            finish(.success(message))
        } else {
            finish(.failure(status.code == .ok ? GRPCStatus(.internal, "the call ended without a response") : status))
        }
    }
}
