/* TLS for the client library's connections (OpenSSL 3), as conn.c uses it. Not installed.
 *
 * The session reads ciphertext straight from the socket, and writes it through a BIO of ours straight into the
 * connection's out buffer (struct sl_tls_out), which the connection sends with the same non-blocking writes as
 * plaintext: encrypting never blocks, the requests queued in one pass (many segments) leave in few system calls,
 * and poll() decides when the socket takes more, as without TLS.
 *
 *   segments --SSL_write--> [record buffer] --BIO--> out buffer --send()--> socket
 *   socket --recv()--> in buffer --BIO--> [record buffer] --SSL_read--> rbuf
 *
 * Invariants:
 *   1. One user-space copy each way besides OpenSSL's own: the record layer copies plaintext into its record
 *      buffer and encrypts it there, and the BIO copies the record into the out buffer (a memory BIO would copy it
 *      twice more, in and out); on reads, the BIO copies each record into the record buffer, where OpenSSL
 *      decrypts it and copies the plaintext into rbuf.
 *   2. The out buffer is bounded (cap). When it is full the session returns SSL_ERROR_WANT_WRITE and takes the
 *      rest on the next call, after send() has made room: the handshake and reads wait for POLLOUT then. Data is
 *      encrypted only when the buffer has room for all of it plus its records' overhead, so sl_tls_encrypt never
 *      meets a full buffer.
 *   3. Reads go through a buffer of SL_TLS_READ_BYTES per session: one recv() takes many records, and the session
 *      reads each record from it exactly (header, then body). OpenSSL's own read ahead would take as many, but
 *      with its payload alignment it moves everything still buffered to the front of its buffer after each
 *      record, copying a full 64 KiB read ahead up to one and a half times more. So ciphertext may wait in the
 *      session where poll() does not see it: sl_tls_has_pending says so.
 *
 * Which thread may call: the connection's. */
#ifndef SL_CONSUMER_CLIENT_TLS_H
#define SL_CONSUMER_CLIENT_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The read buffer (invariant 3): eight TLS records, one recv() where a record at a time would take sixteen. */
#define SL_TLS_READ_BYTES (128u * 1024)

struct ssl_st;
struct ssl_ctx_st;
struct sl_security_options;

/* A context that verifies the broker's certificate (against o->tls_ca, else the system's CA certificates) and
 * presents o->tls_cert and o->tls_key when set. TLS 1.2 at least. NULL with err set when a file cannot be used. */
struct ssl_ctx_st *sl_tls_client_ctx_new(const struct sl_security_options *o, char *err, size_t err_bytes);
void sl_tls_client_ctx_free(struct ssl_ctx_st *ctx);

/* The ciphertext the session has written and the connection has not yet sent: bytes[pos .. len) of cap. */
struct sl_tls_out {
	uint8_t *bytes;
	size_t pos, len, cap;
};

/* A session on the connected non-blocking socket fd, for a broker named host (its certificate must name it: a
 * DNS name, or an IP address for a literal), writing its ciphertext into out (invariant 2), which must outlive
 * the session. Returns NULL with err set. */
struct ssl_st *sl_tls_client_session_new(struct ssl_ctx_st *ctx, int fd, const char *host, struct sl_tls_out *out,
                                         char *err, size_t err_bytes);
void sl_tls_session_free(struct ssl_st *ssl);
/* Write close_notify into the out buffer. */
void sl_tls_session_close(struct ssl_st *ssl);

/* One step of the handshake: 0 done, -EAGAIN with *want_write set (1: send the out buffer and wait for POLLOUT,
 * 0: wait for POLLIN), or -EPROTO with err set (a certificate the CA does not vouch for, a name that
 * does not match, no common protocol version). */
int sl_tls_handshake_step(struct ssl_st *ssl, int *want_write, char *err, size_t err_bytes);

/* Encrypt len bytes into the out buffer, which has room for them and their records' overhead (invariant 2).
 * Returns len, or -EPROTO. */
ssize_t sl_tls_encrypt(struct ssl_st *ssl, const void *data, size_t len);

/* 1 when data waits inside the session (received ciphertext, or decrypted plaintext not yet read), which poll()
 * on the socket would not show. */
int sl_tls_has_pending(const struct ssl_st *ssl);
/* Read plaintext: > 0 bytes, -EAGAIN (nothing more for now), -ECONNRESET (the broker closed the session),
 * -EPROTO (a TLS error; err says which). */
ssize_t sl_tls_read(struct ssl_st *ssl, void *buf, size_t len, char *err, size_t err_bytes);

#endif
