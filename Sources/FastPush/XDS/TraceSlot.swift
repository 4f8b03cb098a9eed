/// What a worker measured of one traced push to one connection, handed to the stream's thread
/// with the responses.
public struct TraceStamp: Sendable {
    let seq: UInt64
    let version: UInt64
    let dequeued: UInt64
    let generated: UInt64
}

/// A connection's record of the traced push in flight, kept in its state (no allocation: it
/// is part of every connection), filled as the push moves on, and folded into the push's
/// PushTrace once the client ACKs or NACKs it, a newer push replaces it, or the stream ends.
struct TraceSlot {
    var seq: UInt64 = 0
    var version: UInt64 = 0
    var dequeued: UInt64 = 0
    var generated: UInt64 = 0
    var submitted: UInt64 = 0
    var completed: UInt64 = 0
    /// One bit per type: a response of this push that the client has not ACKed yet.
    var pendingTypes: UInt8 = 0
    var nacked = false
}

extension XdsConnection {
    /// The slot as a closed record.
    func record(_ t: TraceSlot, _ outcome: TraceOutcome, acked: UInt64 = 0, proxy: Proxy?) -> TraceRecord {
        var r = TraceRecord()
        r.seq = t.seq
        r.dequeued = t.dequeued
        r.generated = t.generated
        r.submitted = t.submitted
        r.completed = t.completed
        r.acked = acked
        r.outcome = outcome
        r.peer = peer
        r.node = proxy?.id ?? ""
        return r
    }

    /// A traced push starts on this stream (its thread).
    func traceBegin(_ s: TraceStamp) {
        let old = state.withLock { st -> TraceRecord? in
            let previous = st.trace.seq != 0 ? record(st.trace, .superseded, proxy: st.proxy) : nil
            st.trace = TraceSlot(seq: s.seq, version: s.version, dequeued: s.dequeued, generated: s.generated)
            return previous
        }
        if let old { traces?.fold(old) }
    }

    /// The open record ends now, as `outcome`.
    func traceEnd(_ outcome: TraceOutcome) {
        let r = state.withLock { st -> TraceRecord? in
            guard st.trace.seq != 0 else { return nil }
            defer { st.trace = TraceSlot() }
            return record(st.trace, outcome, proxy: st.proxy)
        }
        if let r { traces?.fold(r) }
    }

    func traceClosed() { if traces != nil { traceEnd(.closed) } }

    /// Under the state lock, when the push's last write completed: the record if nothing is
    /// left to ACK (every response of it was skipped or already ACKed).
    func completed(_ st: inout State) -> TraceRecord? {
        guard st.trace.seq != 0 else { return nil }
        st.trace.completed = MonotonicClock.nanos()
        guard st.trace.pendingTypes == 0 else { return nil }
        defer { st.trace = TraceSlot() }
        return record(st.trace, st.trace.nacked ? .nacked : .acked, acked: st.trace.completed, proxy: st.proxy)
    }

    /// Under the state lock, in `stamp`: a response of the traced push goes out.
    static func traceSent(_ st: inout State, _ r: XdsResponse) {
        guard st.trace.seq != 0, r.version == st.trace.version, !r.forced else { return }
        st.trace.pendingTypes |= 1 << UInt8(r.type.rawValue)
    }

    /// The client answered the last response of `type` (`nonce`, already checked against what
    /// was sent): ACK, or NACK when `nack`. The record closes with the push's last answer.
    func traceAnswered(_ type: XdsType, nonce: String, nack: Bool) {
        guard traces != nil else { return }
        let bit = UInt8(1) << UInt8(type.rawValue)
        let r = state.withLock { st -> TraceRecord? in
            guard st.trace.seq != 0, st.trace.pendingTypes & bit != 0, st.watched[type]?.nonceSent == nonce else { return nil }
            st.trace.pendingTypes &= ~bit
            if nack { st.trace.nacked = true }
            guard st.trace.pendingTypes == 0 else { return nil }
            let now = MonotonicClock.nanos()
            // An ACK read before its write's completion in the same loop turn: written by now.
            if st.trace.completed == 0 { st.trace.completed = now }
            if st.trace.submitted == 0 { st.trace.submitted = st.trace.completed }
            defer { st.trace = TraceSlot() }
            return record(st.trace, st.trace.nacked ? .nacked : .acked, acked: now, proxy: st.proxy)
        }
        if let r { traces?.fold(r) }
    }

    /// For /debug/pushz: the open record (which push, written yet, waiting since when).
    var traceState: (seq: UInt64, completed: UInt64, pending: Bool) {
        state.withLock { ($0.trace.seq, $0.trace.completed, $0.trace.pendingTypes != 0) }
    }
}
