/* TLS for the broker's listeners (native, Kafka, metrics), as an engine that never touches a socket: the front
 * end reads ciphertext into the buffer the engine lends it, the engine decrypts into the front end's own buffers
 * (so large frames still land in their own buffer, as without TLS), and what the engine encrypts is handed back
 * as a buffer to write. The loop, libuv and the io_uring storage path stay as they are; only bytes pass through.
 *
 *   socket --uv read--> sl_tls_conn_read_buffer / _received --> [engine] --sl_tls_conn_read--> frames
 *   answers --sl_tls_conn_write--> [engine] --sl_tls_conn_take_output--> uv_write --> socket
 *
 * The handshake runs inside sl_tls_conn_read: after each call the front end sends what take_output gives (the
 * handshake's own messages too). Once sl_tls_conn_handshake_done, sl_tls_conn_peer_cn names a client certificate
 * the CA vouched for (mutual TLS): its CN is the connection's principal (broker/security.h).
 *
 * Invariants:
 *   1. One copy each way, the one OpenSSL's record layer makes: it reads ciphertext from the lent buffer and
 *      writes ciphertext into the output buffer through a BIO of our own (a memory BIO would add a second copy
 *      on each side).
 *   2. The lent input buffer is SL_TLS_INPUT_BYTES; ciphertext not yet consumed stays in it (the front end does
 *      not read the socket while the buffer is full, so a client cannot make it grow). Like the plain read
 *      buffer, it and the session's own state are bounded per connection and not charged to the memory budget
 *      (broker/limits.h); ciphertext waiting to be written is charged like any answer.
 *   3. A reload (SIGHUP) builds a new context and swaps it in only if the certificate, key and CA all load: new
 *      connections use it, open ones keep the one they started with (OpenSSL counts its references).
 *
 * Which thread may call: the shard's loop thread only. */
#ifndef SL_BROKER_TLS_H
#define SL_BROKER_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "broker/security.h"

/* Two TLS records (16 KiB each plus their overhead): a read always has room for a whole record after a partial
 * one, and one read takes several. */
#define SL_TLS_INPUT_BYTES (64u * 1024)

struct sl_tls_server;
struct sl_tls_conn;

/* A server context from cfg's certificate, key and CA (TLS 1.2 at least; client certificates as
 * cfg->tls_client_auth says). Returns 0, or -EINVAL with err naming the file that failed and why. */
int sl_tls_server_open(const struct sl_security_config *cfg, struct sl_tls_server **out, char *err, size_t err_cap);
/* Invariant 3. Returns 0, or -EINVAL with err set (the old context stays in use). */
int sl_tls_server_reload(struct sl_tls_server *t, char *err, size_t err_cap);
void sl_tls_server_free(struct sl_tls_server *t);

/* A session for a new connection. NULL when out of memory. */
struct sl_tls_conn *sl_tls_conn_new(struct sl_tls_server *t);
void sl_tls_conn_free(struct sl_tls_conn *c);

/* Where the next socket read goes (invariant 2): *cap_out bytes at the returned pointer; 0 when full. */
uint8_t *sl_tls_conn_read_buffer(struct sl_tls_conn *c, size_t *cap_out);
/* n bytes were read into that buffer. */
void sl_tls_conn_received(struct sl_tls_conn *c, size_t n);
/* Decrypt into out (advancing the handshake first): > 0 bytes, 0 when more ciphertext is needed, -ECONNRESET when
 * the client closed the session, -EPROTO on a TLS error (*why says which: a certificate the CA does not vouch
 * for, no certificate where one is required, no common version). */
ssize_t sl_tls_conn_read(struct sl_tls_conn *c, uint8_t *out, size_t cap, const char **why);
/* Plaintext buffered inside the session, decrypted but not yet read (a record larger than the last out). */
size_t sl_tls_conn_buffered(const struct sl_tls_conn *c);
/* Make room for the ciphertext of plaintext_bytes more, so that a large answer is encrypted into one buffer
 * without growing it on the way. Returns 0 or -ENOMEM. */
int sl_tls_conn_reserve(struct sl_tls_conn *c, size_t plaintext_bytes);
/* Encrypt len bytes. Returns 0, or -EPROTO (the session failed) / -ENOMEM. */
int sl_tls_conn_write(struct sl_tls_conn *c, const void *data, size_t len);
/* Ciphertext waiting to be taken. */
size_t sl_tls_conn_pending(const struct sl_tls_conn *c);
/* The ciphertext to send, as a malloc'ed buffer the caller now owns (free() after the write), or NULL when there
 * is none. */
uint8_t *sl_tls_conn_take_output(struct sl_tls_conn *c, size_t *len_out);
int sl_tls_conn_handshake_done(const struct sl_tls_conn *c);
/* 1 when the session failed because of the client's certificate (none where one is required, or not the CA's):
 * a failed authentication, for the audit log. */
int sl_tls_conn_cert_refused(const struct sl_tls_conn *c);
/* The CN of a client certificate the CA vouched for: 1 with it in out, 0 when there is none. */
int sl_tls_conn_peer_cn(const struct sl_tls_conn *c, char *out, size_t cap);
/* "TLSv1.3" and the cipher, for logs. */
const char *sl_tls_conn_version(const struct sl_tls_conn *c);

#endif
