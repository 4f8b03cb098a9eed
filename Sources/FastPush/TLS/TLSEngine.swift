import COpenSSL

/// One TLS session over memory BIOs, without I/O: ciphertext from the socket goes in with
/// `receive`, plaintext comes out of `read`; plaintext goes in with `write`, ciphertext comes out
/// of `takeCiphertext`. The loop thread that owns the connection owns its engine.
public final class TLSEngine {
    public enum Status: Equatable {
        /// Needs more bytes from the peer (or only has bytes to send).
        case wantRead
        /// Handshake done: application data flows.
        case established
        /// The peer sent close_notify.
        case closed
        case failed(String)
    }

    private let ssl: OpaquePointer
    /// The session's memory BIOs (replaced by `releaseIdleBuffers`, so not kept here).
    private var rbio: OpaquePointer { SSL_get_rbio(ssl) }
    private var wbio: OpaquePointer { SSL_get_wbio(ssl) }
    public let context: TLSContext
    public private(set) var status = Status.wantRead

    /// Nil when OpenSSL cannot make a session (out of memory).
    public init?(context: TLSContext) {
        guard let ssl = context.makeSession() else { return nil }
        guard let r = fp_bio_new_mem() else {
            SSL_free(ssl)
            return nil
        }
        guard let w = fp_bio_new_mem() else {
            BIO_free(r)
            SSL_free(ssl)
            return nil
        }
        SSL_set_bio(ssl, r, w)  // the session owns both BIOs now
        self.ssl = ssl
        self.context = context
        switch context.configuration.role {
        case .server:
            SSL_set_accept_state(ssl)
        case .client:
            SSL_set_connect_state(ssl)
            if let name = context.configuration.serverName { _ = fp_ssl_set_sni(ssl, name) }
            // The ClientHello is ready to send before anything is received.
            _ = advanceHandshake()
        }
    }

    deinit { SSL_free(ssl) }

    public var isEstablished: Bool { status == .established }

    /// Ciphertext from the peer. Returns the status after the handshake made what progress it
    /// could; plaintext waits for `read`.
    @discardableResult
    public func receive(_ bytes: UnsafeRawBufferPointer) -> Status {
        guard case .wantRead = status else {
            if status == .established { feed(bytes) }
            return status
        }
        feed(bytes)
        return advanceHandshake()
    }

    private func feed(_ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count {
            let n = BIO_write(rbio, bytes.baseAddress! + offset, Int32(min(bytes.count - offset, Int(Int32.max))))
            if n <= 0 { break }
            offset += Int(n)
        }
    }

    @discardableResult
    private func advanceHandshake() -> Status {
        ERR_clear_error()
        let rc = SSL_do_handshake(ssl)
        if rc == 1 {
            status = .established
            return status
        }
        return settle(rc, waiting: .wantRead)
    }

    /// After a call that did not complete (`rc`): wanting bytes leaves the session `waiting`,
    /// the peer's close_notify closes it, anything else fails it.
    private func settle(_ rc: Int32, waiting: Status) -> Status {
        switch SSL_get_error(ssl, rc) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: status = waiting
        case SSL_ERROR_ZERO_RETURN: status = .closed
        case let err: status = .failed(describe(err))
        }
        return status
    }

    /// Decrypts what has arrived, in pieces of up to 16 KB, each handed to `deliver` before the
    /// next is read (no buffer per connection: the pieces live on the stack).
    /// Returns `.closed` after the peer's close_notify, `.failed` on a bad record.
    @discardableResult
    public func read(_ deliver: (UnsafeRawBufferPointer) -> Void) -> Status {
        guard status == .established else { return status }
        return withUnsafeTemporaryAllocation(byteCount: 16_384, alignment: 16) { buf in
            while true {
                var got = 0
                ERR_clear_error()
                let rc = SSL_read_ex(ssl, buf.baseAddress, buf.count, &got)
                if rc == 1 {
                    deliver(UnsafeRawBufferPointer(start: buf.baseAddress, count: got))
                    if status != .established { return status }
                    continue
                }
                return settle(rc, waiting: status)
            }
        }
    }

    /// Encrypts `bytes` as application data (records of up to 16 KB). False once the session
    /// has failed or closed.
    @discardableResult
    public func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard status == .established else { return false }
        var offset = 0
        while offset < bytes.count {
            var written = 0
            ERR_clear_error()
            if SSL_write_ex(ssl, bytes.baseAddress! + offset, bytes.count - offset, &written) != 1 {
                status = .failed(describe(SSL_get_error(ssl, 0)))
                return false
            }
            offset += written
        }
        return true
    }

    /// Drops the BIOs' buffers once they are drained, if a burst grew them past a few KB: an
    /// idle connection keeps no record-sized buffer (OpenSSL's own are released while idle).
    public func releaseIdleBuffers() { fp_ssl_shrink_bios(ssl, 4096) }

    /// Queues close_notify (sent with the next `takeCiphertext`).
    public func shutdown() {
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
        ERR_clear_error()
    }

    /// Bytes waiting to go to the peer (handshake messages, records, alerts).
    public var pendingCiphertext: Int { Int(BIO_ctrl_pending(wbio)) }

    /// Moves the ciphertext waiting to go to the peer into `out`.
    public func takeCiphertext(into out: inout OutboundBuffer) {
        while true {
            let n = pendingCiphertext
            if n == 0 { return }
            var got: Int32 = 0
            out.appendBytes(count: n) { dst in got = BIO_read(wbio, dst.baseAddress, Int32(dst.count)) }
            if got != Int32(n) { return }  // cannot happen with a memory BIO
        }
    }

    /// The ciphertext waiting to go to the peer, as an array (tests).
    public func takeCiphertext() -> [UInt8] {
        var out = OutboundBuffer()
        takeCiphertext(into: &out)
        return out.drain()
    }

    // MARK: the session, once established

    /// The first URI SAN of the peer's certificate that starts with `prefix` ("spiffe://").
    public func peerURI(prefix: String = "spiffe://") -> String? {
        var buf = [CChar](repeating: 0, count: 2048)
        let n = fp_ssl_peer_uri_san(ssl, prefix, &buf, buf.count)
        guard n > 0 else { return nil }
        return String(decoding: buf[0..<Int(n)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public var hasPeerCertificate: Bool { fp_ssl_has_peer_certificate(ssl) == 1 }

    /// The protocol ALPN settled on ("h2"), nil when none.
    public var alpn: String? {
        var data: UnsafePointer<UInt8>?
        var len: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &len)
        guard let data, len > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(len)), as: UTF8.self)
    }

    /// "TLSv1.3", "TLSv1.2".
    public var protocolVersion: String { String(cString: SSL_get_version(ssl)) }

    private func describe(_ err: Int32) -> String {
        let queued = TLSContext.takeErrors()
        let verify = SSL_get_verify_result(ssl)
        var text: String
        switch err {
        case SSL_ERROR_SSL: text = queued
        case SSL_ERROR_SYSCALL: text = queued == "unknown error" ? "unexpected end of stream" : queued
        default: text = "SSL error \(err): \(queued)"
        }
        if verify != X509_V_OK {
            text += " (certificate: " + String(cString: X509_verify_cert_error_string(verify)) + ")"
        }
        return text
    }
}
