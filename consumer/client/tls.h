/* TLS for the client library's connections (OpenSSL 3), as conn.c uses it. Not installed.
 *
 * The session reads ciphertext straight from the socket but writes it into a memory BIO, which the connection
 * drains into its own buffer and sends with the same non-blocking writes as plaintext: encrypting never blocks,
 * the requests queued in one pass (many segments) leave in few system calls, and poll() decides when the socket
 * takes more, as without TLS.
 *
 *   segments --SSL_write--> memory BIO --sl_tls_take--> out buffer --send()--> socket
 *   socket --SSL_read (socket BIO)--> rbuf
 *
 * Which thread may call: the connection's. */
#ifndef SL_CONSUMER_CLIENT_TLS_H
#define SL_CONSUMER_CLIENT_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ssl_st;
struct ssl_ctx_st;
struct sl_security_options;

/* A context that verifies the broker's certificate (against o->tls_ca, else the system's CA certificates) and
 * presents o->tls_cert and o->tls_key when set. TLS 1.2 at least. NULL with err set when a file cannot be used. */
struct ssl_ctx_st *sl_tls_client_ctx_new(const struct sl_security_options *o, char *err, size_t err_bytes);
void sl_tls_client_ctx_free(struct ssl_ctx_st *ctx);

/* A session on the connected non-blocking socket fd, for a broker named host (its certificate must name it: a
 * DNS name, or an IP address for a literal). Returns NULL with err set. */
struct ssl_st *sl_tls_client_session_new(struct ssl_ctx_st *ctx, int fd, const char *host, char *err, size_t err_bytes);
void sl_tls_session_free(struct ssl_st *ssl);
/* Write close_notify into the memory BIO (sl_tls_take gives it). */
void sl_tls_session_close(struct ssl_st *ssl);

/* One step of the handshake: 0 done, -EAGAIN with *want_write set (1: flush what sl_tls_take gives and wait for
 * POLLOUT, 0: wait for POLLIN), or -EPROTO with err set (a certificate the CA does not vouch for, a name that
 * does not match, no common protocol version). */
int sl_tls_handshake_step(struct ssl_st *ssl, int *want_write, char *err, size_t err_bytes);

/* Encrypt len bytes into the session's memory BIO. Returns len, or -EPROTO. */
ssize_t sl_tls_encrypt(struct ssl_st *ssl, const void *data, size_t len);
/* Ciphertext waiting in the memory BIO. */
size_t sl_tls_pending(struct ssl_st *ssl);
/* Move up to cap bytes of ciphertext out of the memory BIO. Returns the count. */
size_t sl_tls_take(struct ssl_st *ssl, uint8_t *out, size_t cap);

/* Read plaintext: > 0 bytes, -EAGAIN (nothing more for now), -ECONNRESET (the broker closed the session),
 * -EPROTO (a TLS error; err says which). */
ssize_t sl_tls_read(struct ssl_st *ssl, void *buf, size_t len, char *err, size_t err_bytes);

#endif
