import CNghttp2
#if canImport(Glibc)
import Glibc
#endif

/// The nghttp2 server-session callbacks (see nghttp2's examples/libevent-server.c). They are
/// C functions; `user_data` is the unretained H2Connection.
enum H2Callbacks {
    /// Built once and shared: nghttp2 copies the callback table into each session.
    nonisolated(unsafe) static let shared: OpaquePointer = {
        var cbs: OpaquePointer?
        nghttp2_session_callbacks_new(&cbs)
        nghttp2_session_callbacks_set_send_callback(cbs, send)
        nghttp2_session_callbacks_set_send_data_callback(cbs, sendData)
        nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, beginHeaders)
        nghttp2_session_callbacks_set_on_header_callback(cbs, header)
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, frameRecv)
        nghttp2_session_callbacks_set_on_frame_send_callback(cbs, frameSend)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, dataChunk)
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, streamClose)
        nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, invalidFrame)
        return cbs!
    }()

    @inline(__always)
    static func conn(_ ud: UnsafeMutableRawPointer?) -> H2Connection {
        Unmanaged<H2Connection>.fromOpaque(ud!).takeUnretainedValue()
    }

    static let wouldBlock = Int(NGHTTP2_ERR_WOULDBLOCK.rawValue)

    // Control frames: copied into the outbound buffer.
    static let send: nghttp2_send_callback = { _, data, length, _, ud in
        let c = conn(ud)
        guard let out = c.out else { return wouldBlock }
        if out.pointee.pendingBytes >= c.budget { return wouldBlock }
        out.pointee.append(copying: UnsafeRawBufferPointer(start: data, count: length))
        return length
    }

    // DATA frames: copy the 9-byte header, reference the message bodies.
    static let sendData: nghttp2_send_data_callback = { _, frame, framehd, length, _, ud in
        let c = conn(ud)
        guard let out = c.out else { return Int32(wouldBlock) }
        if out.pointee.pendingBytes >= c.budget { return Int32(wouldBlock) }
        let id = frame!.pointee.hd.stream_id
        guard let s = c.streams[id] else { return Int32(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
        out.pointee.append(copying: UnsafeRawBufferPointer(start: framehd, count: 9))
        var left = length
        while left > 0 && s.messageHead < s.messages.count {
            let m = s.messages[s.messageHead]
            let take = min(left, m.count - s.offset)
            emit(m, from: s.offset, count: take, into: &out.pointee)
            s.offset += take
            left -= take
            if s.offset == m.count {
                if let done = m.completion { out.pointee.onSent(done) }
                s.messages[s.messageHead].completion = nil
                s.messages[s.messageHead].body = nil
                s.messageHead += 1
                s.offset = 0
            }
        }
        s.pendingBytes -= length
        c.queuedBytes -= length
        if s.messageHead == s.messages.count {
            s.messages = []
            s.messageHead = 0
        }
        return 0
    }

    /// Appends bytes [from, from+count) of the message's head | body | tail.
    static func emit(_ m: StreamMessage, from: Int, count: Int, into out: inout OutboundBuffer) {
        var pos = from
        var left = count
        let h = m.head.count
        if pos < h && left > 0 {
            let n = min(left, h - pos)
            let p = pos
            m.head.withUnsafeBytes { out.append(copying: UnsafeRawBufferPointer(rebasing: $0[p..<p + n])) }
            pos += n; left -= n
        }
        let b = m.body?.count ?? 0
        if pos < h + b && left > 0, let body = m.body {
            let n = min(left, h + b - pos)
            out.append(ByteSlice(body.storage, offset: body.offset + pos - h, count: n))
            pos += n; left -= n
        }
        if left > 0 {
            let t = pos - h - b
            m.tail.withUnsafeBytes { out.append(copying: UnsafeRawBufferPointer(rebasing: $0[t..<t + left])) }
        }
    }

    static let readData: nghttp2_data_source_read_callback = { session, id, _, length, flags, _, ud in
        let c = conn(ud)
        guard let s = c.streams[id] else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
        if s.pendingBytes > 0 {
            flags!.pointee |= UInt32(NGHTTP2_DATA_FLAG_NO_COPY.rawValue)
            return min(length, s.pendingBytes)
        }
        if s.endWhenDrained {
            s.endWhenDrained = false
            flags!.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue)
            return 0
        }
        if let trailers = s.trailers {
            s.trailers = nil
            flags!.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue) | UInt32(NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue)
            H2Headers.with(trailers) { nva, n in _ = nghttp2_submit_trailer(session, id, nva, n) }
            return 0
        }
        s.deferred = true
        return Int(NGHTTP2_ERR_DEFERRED.rawValue)
    }

    static let beginHeaders: nghttp2_on_begin_headers_callback = { _, frame, ud in
        let c = conn(ud)
        let f = frame!.pointee
        guard f.hd.type == UInt8(NGHTTP2_HEADERS.rawValue) else { return 0 }
        if f.headers.cat == NGHTTP2_HCAT_REQUEST {
            c.streams[f.hd.stream_id] = H2Connection.Stream()
        } else if let s = c.streams[f.hd.stream_id] {
            s.head = H2Head()
        }
        return 0
    }

    static let header: nghttp2_on_header_callback = { _, frame, name, namelen, value, valuelen, _, ud in
        let c = conn(ud)
        let f = frame!.pointee
        guard f.hd.type == UInt8(NGHTTP2_HEADERS.rawValue), let s = c.streams[f.hd.stream_id] else { return 0 }
        s.head.listSize += namelen + valuelen + 32
        if s.head.listSize > Int(c.settings.maxHeaderListSize) {
            // Resets the stream; nghttp2 keeps the connection (HPACK state stays consistent) and
            // calls this no more for the block. A peer that keeps doing it is cut off.
            guard c.spendStreamErrorToken("header list over \(c.settings.maxHeaderListSize) bytes on stream \(f.hd.stream_id)") else {
                return Int32(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue)
            }
            return Int32(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
        }
        let n = UnsafeRawBufferPointer(start: name, count: namelen)
        func v() -> String { String(decoding: UnsafeRawBufferPointer(start: value, count: valuelen), as: UTF8.self) }
        switch namelen {
        case 5 where equal(n, ":path"): s.head.path = v()
        case 7 where equal(n, ":method"): s.head.method = v()
        case 7 where equal(n, ":status"): s.head.status = v()
        case 11 where equal(n, "grpc-status"): s.head.grpcStatus = v()
        case 12 where equal(n, "content-type"): s.head.contentType = v()
        case 12 where equal(n, "grpc-message"): s.head.grpcMessage = v()
        case 13 where equal(n, "grpc-encoding"): s.head.grpcEncoding = v()
        default: break
        }
        return 0
    }

    static func equal(_ a: UnsafeRawBufferPointer, _ b: StaticString) -> Bool {
        a.count == b.utf8CodeUnitCount && memcmp(a.baseAddress!, b.utf8Start, a.count) == 0
    }

    static let frameRecv: nghttp2_on_frame_recv_callback = { _, frame, ud in
        let c = conn(ud)
        let f = frame!.pointee
        let id = f.hd.stream_id
        let endStream = f.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
        switch UInt32(f.hd.type) {
        case NGHTTP2_SETTINGS.rawValue:
            if f.hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0 { c.peerSettingsReceived = true }
        case NGHTTP2_HEADERS.rawValue:
            guard let s = c.streams[id] else { return 0 }
            if !s.opened {
                s.opened = true
                s.remoteClosed = endStream
                let head = s.head
                s.head = H2Head()  // the delegate keeps what it needs
                c.delegate?.h2StreamOpened(c, streamID: id, head: head, endStream: endStream)
            } else {
                c.delegate?.h2StreamHeaders(c, streamID: id, head: s.head, endStream: endStream)
                if endStream && !s.remoteClosed {
                    s.remoteClosed = true
                    c.delegate?.h2StreamRemoteClosed(c, streamID: id)
                }
            }
        case NGHTTP2_DATA.rawValue:
            if endStream, let s = c.streams[id], !s.remoteClosed {
                s.remoteClosed = true
                c.delegate?.h2StreamRemoteClosed(c, streamID: id)
            }
        default:
            break
        }
        return 0
    }

    static let frameSend: nghttp2_on_frame_send_callback = { session, frame, ud in
        let c = conn(ud)
        let f = frame!.pointee
        if f.hd.type == UInt8(NGHTTP2_GOAWAY.rawValue), c.goAwaySent == nil {
            let g = f.goaway
            let debug = g.opaque_data_len > 0 ? String(decoding: UnsafeRawBufferPointer(start: g.opaque_data, count: g.opaque_data_len), as: UTF8.self) : ""
            c.goAwaySent = (g.error_code, debug)
            return 0
        }
        guard f.hd.type == UInt8(NGHTTP2_HEADERS.rawValue),
              f.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0,
              let s = c.streams[f.hd.stream_id], s.resetAfterTrailers, !s.remoteClosed else { return 0 }
        s.resetAfterTrailers = false
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), f.hd.stream_id, NGHTTP2_NO_ERROR.rawValue)
        return 0
    }

    static let dataChunk: nghttp2_on_data_chunk_recv_callback = { _, _, id, data, len, ud in
        let c = conn(ud)
        guard let s = c.streams[id], s.opened else { return 0 }
        c.delegate?.h2StreamData(c, streamID: id, data: UnsafeRawBufferPointer(start: data, count: len))
        return 0
    }

    /// nghttp2 found a frame invalid: for a stream error it has queued RST_STREAM (a stream over
    /// the concurrency limit: REFUSED_STREAM; a malformed request: PROTOCOL_ERROR), for a
    /// connection error GOAWAY. Stream errors cost a token each; none left ends the session.
    static let invalidFrame: nghttp2_on_invalid_frame_recv_callback = { _, frame, code, ud in
        let c = conn(ud)
        let f = frame!.pointee
        guard f.hd.stream_id != 0 else { return 0 }
        return c.spendStreamErrorToken("\(String(cString: nghttp2_strerror(code))) on stream \(f.hd.stream_id)")
            ? 0 : Int32(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue)
    }

    static let streamClose: nghttp2_on_stream_close_callback = { _, id, code, ud in
        let c = conn(ud)
        guard let s = c.streams.removeValue(forKey: id) else { return 0 }
        H2Connection.failMessages(s, c)
        if s.opened || c.role == .client { c.delegate?.h2StreamClosed(c, streamID: id, errorCode: code) }
        return 0
    }
}

/// Header lists as nghttp2_nv arrays, built in one allocation for the duration of a call.
enum H2Headers {
    static func with<R>(_ headers: [(String, String)], _ body: (UnsafePointer<nghttp2_nv>, Int) -> R) -> R {
        var total = 0
        for (n, v) in headers { total += n.utf8.count + v.utf8.count }
        let bytes = UnsafeMutablePointer<UInt8>.allocate(capacity: max(total, 1))
        let nva = UnsafeMutablePointer<nghttp2_nv>.allocate(capacity: max(headers.count, 1))
        defer { bytes.deallocate(); nva.deallocate() }
        var off = 0
        for (i, (n, v)) in headers.enumerated() {
            let np = bytes + off
            for u in n.utf8 { bytes[off] = u; off += 1 }
            let vp = bytes + off
            for u in v.utf8 { bytes[off] = u; off += 1 }
            nva[i] = nghttp2_nv(name: np, value: vp, namelen: n.utf8.count, valuelen: v.utf8.count,
                                flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
        }
        return body(nva, headers.count)
    }
}
