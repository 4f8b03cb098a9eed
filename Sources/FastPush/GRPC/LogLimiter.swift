import Synchronization

/// Per-event log budget shared by all connections: at most `perSecond` lines a second, the
/// rest counted and reported on the next line that goes out. A client that opens streams only
/// to have them rejected must not turn each one into a log line.
public final class LogLimiter: Sendable {
    let perSecond: Int
    private let state = Mutex<(second: UInt64, lines: Int, suppressed: Int)>((0, 0, 0))

    public init(perSecond: Int) { self.perSecond = perSecond }

    /// Nil when the line is to be dropped; otherwise how many were dropped before it.
    public func admit(now: UInt64 = MonotonicClock.nanos()) -> Int? {
        let second = now / 1_000_000_000
        return state.withLock { s -> Int? in
            if s.second != second {
                s.second = second
                s.lines = 0
            }
            guard s.lines < perSecond else {
                s.suppressed += 1
                return nil
            }
            s.lines += 1
            let dropped = s.suppressed
            s.suppressed = 0
            return dropped
        }
    }

    static let unimplemented = LogLimiter(perSecond: 10)
    static let streamRejected = LogLimiter(perSecond: 10)
    static let sendTimeout = LogLimiter(perSecond: 10)
    static let unknownType = LogLimiter(perSecond: 10)
    static let acceptFailed = LogLimiter(perSecond: 1)
    static let connectionRefused = LogLimiter(perSecond: 1)
    /// A fleet's connections reach their age limit spread over ±10%: a few lines a second.
    static let connectionMaxAge = LogLimiter(perSecond: 5)
    static let identityDenied = LogLimiter(perSecond: 10)
    /// A handshake flood is many failures: ten lines a second, the counter has them all.
    static let tlsHandshakeFailed = LogLimiter(perSecond: 10)

    /// A client-supplied string as we repeat it: at most `limit` characters.
    static func clip(_ s: String, limit: Int = 200) -> String {
        s.utf8.count <= limit ? s : String(s.prefix(limit)) + "…"
    }
}
