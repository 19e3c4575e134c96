/* tls.h - the OpenSSL wrapper both programs use.
 *
 * Contexts are TLS 1.2/1.3 only, no compression, no renegotiation, the
 * system's default cipher list. The server context caches sessions (and
 * issues tickets) so data connections can resume the control connection's
 * session; kernel TLS is requested where the kernel offers it. Errors are
 * returned as NULL/negative with a one-line cause in err. */
#ifndef FERRY_TLS_H
#define FERRY_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file, char *err, size_t errlen);
/* verify: check the peer's certificate against cafile (or the system store). */
SSL_CTX *tls_client_ctx(bool verify, const char *cafile, char *err, size_t errlen);
/* Writes DIR/cert.pem and DIR/key.pem: a self-signed certificate for
 * localhost, 127.0.0.1 and ::1, valid for ten years. */
int tls_make_self_signed(const char *dir, char *err, size_t errlen);
/* The text of the last OpenSSL error (or fallback). */
const char *tls_error_text(const char *fallback, char *buf, size_t len);

#endif
