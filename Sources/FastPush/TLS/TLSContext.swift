import COpenSSL
import Synchronization

/// An OpenSSL context (SSL_CTX): the certificate, key and trust for new handshakes, TLS 1.2 and
/// 1.3, ALPN h2, no renegotiation. Immutable once built; a rotation builds a new one
/// (`TLSContextHolder`). Its pointer stays in this layer.
///
/// `@unchecked Sendable`: OpenSSL's SSL_CTX is safe to share between threads once configured
/// (SSL_new only takes a reference), and nothing here changes it after `init`.
public final class TLSContext: @unchecked Sendable {
    public enum Role: Sendable { case server, client }

    public struct Configuration: Sendable {
        public var role: Role
        /// PEM certificate chain and private key (a client without them presents no certificate).
        public var certificatePath: String?
        public var keyPath: String?
        /// PEM CAs that the peer's certificate must chain to. Server: clients must present one.
        /// Client: the server's certificate is verified against them.
        public var trustPath: String?
        /// Client: the server name sent (SNI).
        public var serverName: String?
        /// Speak TLS 1.2 at most (tests and benchmarks of the older protocol).
        public var maxTLS12 = false

        public init(role: Role, certificatePath: String? = nil, keyPath: String? = nil, trustPath: String? = nil,
                    serverName: String? = nil) {
            self.role = role
            self.certificatePath = certificatePath
            self.keyPath = keyPath
            self.trustPath = trustPath
            self.serverName = serverName
        }
    }

    public struct ConfigError: Error, CustomStringConvertible {
        public let description: String
    }

    let ctx: OpaquePointer
    public let configuration: Configuration

    public init(_ configuration: Configuration) throws(ConfigError) {
        guard let ctx = SSL_CTX_new(configuration.role == .server ? TLS_server_method() : TLS_client_method()) else {
            throw ConfigError(description: "SSL_CTX_new: " + TLSContext.takeErrors())
        }
        self.ctx = ctx
        self.configuration = configuration
        _ = fp_ssl_ctx_set_min_tls12(ctx)
        if configuration.maxTLS12 { _ = fp_ssl_ctx_set_max_tls12(ctx) }
        fp_ssl_ctx_harden(ctx)
        if let cert = configuration.certificatePath {
            guard let key = configuration.keyPath else { throw ConfigError(description: "a certificate needs its key") }
            guard SSL_CTX_use_certificate_chain_file(ctx, cert) == 1 else {
                throw ConfigError(description: "certificate \(cert): " + TLSContext.takeErrors())
            }
            guard SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1 else {
                throw ConfigError(description: "key \(key): " + TLSContext.takeErrors())
            }
            guard SSL_CTX_check_private_key(ctx) == 1 else {
                throw ConfigError(description: "key \(key) does not match certificate \(cert): " + TLSContext.takeErrors())
            }
        } else if configuration.role == .server {
            throw ConfigError(description: "a TLS server needs a certificate and a key")
        }
        if let trust = configuration.trustPath {
            guard SSL_CTX_load_verify_locations(ctx, trust, nil) == 1 else {
                throw ConfigError(description: "CA file \(trust): " + TLSContext.takeErrors())
            }
            fp_ssl_ctx_verify_peer(ctx, configuration.role == .server ? 1 : 0)
            if configuration.role == .server, let names = SSL_load_client_CA_file(trust) {
                SSL_CTX_set_client_CA_list(ctx, names)
            }
        }
        switch configuration.role {
        case .server: fp_ssl_ctx_select_h2(ctx)
        case .client: _ = fp_ssl_ctx_offer_h2(ctx)
        }
        ERR_clear_error()
    }

    deinit { SSL_CTX_free(ctx) }

    /// A new session on this context (its own reference to the context).
    func makeSession() -> OpaquePointer? { SSL_new(ctx) }

    /// OpenSSL's error queue of this thread as one line, emptied.
    static func takeErrors() -> String {
        var parts: [String] = []
        while true {
            let e = ERR_get_error()
            if e == 0 { break }
            var buf = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(e, &buf, buf.count)
            let end = buf.firstIndex(of: 0) ?? buf.count
            parts.append(String(decoding: buf[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return parts.isEmpty ? "unknown error" : parts.joined(separator: "; ")
    }
}

/// The context new handshakes use. A rotation swaps it; a connection keeps the context its
/// session was made from (OpenSSL counts the session's reference).
public final class TLSContextHolder: Sendable {
    private let current: Mutex<TLSContext>

    public init(_ context: TLSContext) { current = Mutex(context) }

    public var context: TLSContext { current.withLock { $0 } }

    public func replace(_ context: TLSContext) { current.withLock { $0 = context } }
}
