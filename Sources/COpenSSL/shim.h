// The system OpenSSL (libssl, libcrypto) for DispatchWebSocket's TLS layer.
// Many OpenSSL calls are macros Swift cannot import; the static inline wrappers below give
// them function form. Nothing here holds state.
#ifndef DWS_COPENSSL_SHIM_H
#define DWS_COPENSSL_SHIM_H

#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/bio.h>
#include <openssl/evp.h>

static inline long dws_SSL_CTX_set_options(SSL_CTX *ctx, uint64_t options) { return (long)SSL_CTX_set_options(ctx, options); }
static inline long dws_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
static inline long dws_SSL_set_mode(SSL *ssl, long mode) { return SSL_set_mode(ssl, mode); }
static inline long dws_SSL_get_mode(SSL *ssl) { return SSL_get_mode(ssl); }
static inline int dws_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) { return (int)SSL_CTX_set_min_proto_version(ctx, version); }
static inline int dws_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version) { return (int)SSL_CTX_set_max_proto_version(ctx, version); }
static inline int dws_SSL_set_tlsext_host_name(SSL *ssl, const char *name) { return (int)SSL_set_tlsext_host_name(ssl, name); }
static inline long dws_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_session_cache_mode(ctx, mode); }
static inline int dws_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *list) { return (int)SSL_CTX_set1_groups_list(ctx, list); }
static inline int dws_SSL_CTX_add_extra_chain_cert(SSL_CTX *ctx, X509 *x509) { return (int)SSL_CTX_add_extra_chain_cert(ctx, x509); }
static inline int dws_SSL_CTX_set_tlsext_servername_callback(SSL_CTX *ctx, int (*cb)(SSL *, int *, void *)) {
    return (int)SSL_CTX_set_tlsext_servername_callback(ctx, cb);
}
static inline int dws_SSL_CTX_set_tlsext_servername_arg(SSL_CTX *ctx, void *arg) { return (int)SSL_CTX_set_tlsext_servername_arg(ctx, arg); }
static inline int dws_SSL_CTX_set_num_tickets(SSL_CTX *ctx, size_t n) { return SSL_CTX_set_num_tickets(ctx, n); }
static inline void dws_SSL_CTX_set_read_ahead(SSL_CTX *ctx, int yes) { SSL_CTX_set_read_ahead(ctx, yes); }

static inline long dws_SSL_CTX_add1_chain_cert(SSL_CTX *ctx, X509 *x509) { return SSL_CTX_add1_chain_cert(ctx, x509); }
static inline int dws_SSL_CTX_set_session_id_context(SSL_CTX *ctx, const unsigned char *sid, unsigned int len) { return SSL_CTX_set_session_id_context(ctx, sid, len); }

// SSL_OP_* are built with SSL_OP_BIT(n), which Swift cannot import.
/// No renegotiation, no TLS compression (CRIME), the server's cipher order, and a peer's EOF
/// without close_notify reported as an EOF (SSL_ERROR_ZERO_RETURN) rather than a protocol error:
/// the WebSocket layer decides whether such an end was clean (after the closing handshake) or not.
static inline uint64_t dws_ssl_default_options(void) {
    return SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE
        | SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_SSLv2 | SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1;
}
/// No TLS 1.2 session tickets (TLS 1.3's are counted by SSL_CTX_set_num_tickets).
static inline uint64_t dws_ssl_no_ticket_option(void) { return SSL_OP_NO_TICKET; }

// BIO retry flags are macros.
static inline void dws_BIO_set_retry_read(BIO *bio) { BIO_set_retry_read(bio); }
static inline void dws_BIO_clear_retry_flags(BIO *bio) { BIO_clear_retry_flags(bio); }

static inline int dws_BIO_get_close(BIO *bio) { return (int)BIO_get_close(bio); }

static inline int dws_sk_X509_num(const STACK_OF(X509) *stack) { return sk_X509_num(stack); }
static inline X509 *dws_sk_X509_value(const STACK_OF(X509) *stack, int i) { return sk_X509_value(stack, i); }
static inline int dws_sk_GENERAL_NAME_num(const GENERAL_NAMES *names) { return sk_GENERAL_NAME_num(names); }
static inline GENERAL_NAME *dws_sk_GENERAL_NAME_value(const GENERAL_NAMES *names, int i) { return sk_GENERAL_NAME_value(names, i); }
static inline void dws_GENERAL_NAMES_free(GENERAL_NAMES *names) { GENERAL_NAMES_free(names); }
static inline void dws_OPENSSL_free(void *p) { OPENSSL_free(p); }

// Certificate inspection and error-queue helpers (WebSocketPeerCertificate, TLSErrorMapping).
static inline unsigned long dws_XN_FLAG_RFC2253(void) { return XN_FLAG_RFC2253; }
static inline unsigned long dws_ERR_PACK(int lib, int reason) { return ERR_PACK(lib, 0, reason); }
static inline void dws_ERR_raise(int lib, int reason) { ERR_raise(lib, reason); }
static inline GENERAL_NAMES *dws_X509_get_subject_alt_names(const X509 *x509) {
    return (GENERAL_NAMES *)X509_get_ext_d2i(x509, NID_subject_alt_name, NULL, NULL);
}

#endif
