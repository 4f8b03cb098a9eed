#ifndef FASTPILOT_COPENSSL_SHIM_H
#define FASTPILOT_COPENSSL_SHIM_H
// OpenSSL for the TLS layer. Swift cannot call OpenSSL's function-like macros or hand it C
// callbacks without closures, so the few it needs are wrapped here as static inline functions.
#include <string.h>
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

static inline int fp_ssl_ctx_set_min_tls12(SSL_CTX *ctx) {
    return (int)SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
}

static inline int fp_ssl_ctx_set_max_tls12(SSL_CTX *ctx) {
    return (int)SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
}

// No renegotiation (a CPU cost an attacker chooses), no compression; small idle buffers.
// No session cache and no tickets: a fleet's proxies hold long-lived streams, and a cache entry
// (with the peer's certificate) per connection would outlive every one of them.
static inline void fp_ssl_ctx_harden(SSL_CTX *ctx) {
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE
                        | SSL_OP_NO_TICKET);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
}

// A memory BIO on which "empty" means "no data yet" (retry), not end of file.
static inline BIO *fp_bio_new_mem(void) {
    BIO *b = BIO_new(BIO_s_mem());
    if (b) BIO_set_mem_eof_return(b, -1);
    return b;
}

// A memory BIO keeps the largest buffer it ever held. Once drained, one that grew past
// `threshold` is replaced by a new, empty one, so an idle connection holds no record-sized buffer.
static inline void fp_ssl_shrink_bios(SSL *ssl, size_t threshold) {
    BUF_MEM *bm = NULL;
    BIO *r = SSL_get_rbio(ssl), *w = SSL_get_wbio(ssl);
    if (r && BIO_ctrl_pending(r) == 0 && BIO_get_mem_ptr(r, &bm) == 1 && bm && bm->max > threshold) {
        BIO *n = fp_bio_new_mem();
        if (n) SSL_set0_rbio(ssl, n);
    }
    bm = NULL;
    if (w && BIO_ctrl_pending(w) == 0 && BIO_get_mem_ptr(w, &bm) == 1 && bm && bm->max > threshold) {
        BIO *n = fp_bio_new_mem();
        if (n) SSL_set0_wbio(ssl, n);
    }
}

// ALPN on the server: h2 or nothing (a client that offers only http/1.1 fails the handshake).
static inline int fp_alpn_select_h2(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                                    const unsigned char *in, unsigned int inlen, void *arg) {
    (void)ssl; (void)arg;
    static const unsigned char h2[] = {2, 'h', '2'};
    unsigned char *selected = NULL;
    if (SSL_select_next_proto(&selected, outlen, h2, sizeof h2, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

static inline void fp_ssl_ctx_select_h2(SSL_CTX *ctx) {
    SSL_CTX_set_alpn_select_cb(ctx, fp_alpn_select_h2, NULL);
}

static inline int fp_ssl_ctx_offer_h2(SSL_CTX *ctx) {
    static const unsigned char h2[] = {2, 'h', '2'};
    return SSL_CTX_set_alpn_protos(ctx, h2, sizeof h2);
}

// Verify the peer's chain; with require, a peer without a certificate fails the handshake.
static inline void fp_ssl_ctx_verify_peer(SSL_CTX *ctx, int require) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (require ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
}

static inline int fp_ssl_set_sni(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}

// The first URI subjectAltName of the peer's certificate that starts with `prefix`, copied
// into buf (NUL-terminated). Returns its length, 0 when there is none, -1 when it does not fit.
static inline int fp_ssl_peer_uri_san(SSL *ssl, const char *prefix, char *buf, size_t cap) {
    X509 *cert = SSL_get1_peer_certificate(ssl);
    if (!cert) return 0;
    int result = 0;
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    if (names) {
        size_t plen = strlen(prefix);
        for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
            const GENERAL_NAME *n = sk_GENERAL_NAME_value(names, i);
            if (n->type != GEN_URI) continue;
            const unsigned char *data = ASN1_STRING_get0_data(n->d.uniformResourceIdentifier);
            int len = ASN1_STRING_length(n->d.uniformResourceIdentifier);
            if (len < 0 || (size_t)len < plen || memcmp(data, prefix, plen) != 0) continue;
            if ((size_t)len + 1 > cap) { result = -1; break; }
            memcpy(buf, data, (size_t)len);
            buf[len] = 0;
            result = len;
            break;
        }
        GENERAL_NAMES_free(names);
    }
    X509_free(cert);
    return result;
}

// Whether the peer presented a certificate at all.
static inline int fp_ssl_has_peer_certificate(SSL *ssl) {
    X509 *cert = SSL_get1_peer_certificate(ssl);
    if (!cert) return 0;
    X509_free(cert);
    return 1;
}
#endif
