/* The client's TLS: contexts, sessions, the write BIO that puts ciphertext straight into the connection's out
 * buffer and the read BIO that receives many records at a time; see tls.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "consumer/client/synclog.h"
#include "consumer/client/tls.h"
#include "proto/tls_suites.h"

/* The last OpenSSL error, or what, into err. */
static void tls_error(char *err, size_t cap, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];
	if (e == 0) {
		snprintf(err, cap, "%s", what);
		return;
	}
	ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, cap, "%s: %s", what, buf);
	ERR_clear_error();
}

struct ssl_ctx_st *sl_tls_client_ctx_new(const struct sl_security_options *o, char *err, size_t err_bytes)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL) {
		tls_error(err, err_bytes, "cannot create a TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* A broker that closes without close_notify has closed the connection, as without TLS (frames carry their
	 * own lengths). */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* The suites and their order: proto/tls_suites.h (the fastest safe one first). */
	if (SSL_CTX_set_ciphersuites(ctx, SL_TLS13_CIPHERSUITES) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, SL_TLS12_CIPHERS) != 1) {
		tls_error(err, err_bytes, "cannot set the TLS cipher suites");
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* No read ahead: the read BIO below batches the receives (tls.h invariant 3). */
	int ok = o->tls_ca != NULL && o->tls_ca[0] != '\0' ? SSL_CTX_load_verify_locations(ctx, o->tls_ca, NULL)
	                                                   : SSL_CTX_set_default_verify_paths(ctx);
	if (ok != 1) {
		char what[SL_ERROR_BYTES];
		snprintf(what, sizeof(what), "cannot load the CA certificates %s (--tls-ca)",
		         o->tls_ca ? o->tls_ca : "of the system");
		tls_error(err, err_bytes, what);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (o->tls_cert != NULL && o->tls_cert[0] != '\0') {
		char what[SL_ERROR_BYTES];
		if (SSL_CTX_use_certificate_chain_file(ctx, o->tls_cert) != 1) {
			snprintf(what, sizeof(what), "cannot use the client certificate %s (--tls-cert)", o->tls_cert);
			tls_error(err, err_bytes, what);
			SSL_CTX_free(ctx);
			return NULL;
		}
		if (SSL_CTX_use_PrivateKey_file(ctx, o->tls_key ? o->tls_key : "", SSL_FILETYPE_PEM) != 1 ||
		    SSL_CTX_check_private_key(ctx) != 1) {
			snprintf(what, sizeof(what), "cannot use the private key %s for %s (--tls-key)",
			         o->tls_key ? o->tls_key : "(none given)", o->tls_cert);
			tls_error(err, err_bytes, what);
			SSL_CTX_free(ctx);
			return NULL;
		}
	}
	return ctx;
}

void sl_tls_client_ctx_free(struct ssl_ctx_st *ctx)
{
	SSL_CTX_free(ctx);
}

/* ---- the read BIO: the socket through a buffer of ours (tls.h, invariant 3) ---- */

struct tls_in {
	int fd;
	int eof; /* the broker closed the socket */
	size_t pos, len;
	uint8_t bytes[SL_TLS_READ_BYTES]; /* ciphertext bytes[pos .. len) received, not yet taken by the session */
};

static int in_read_ex(BIO *b, char *data, size_t n, size_t *readbytes)
{
	struct tls_in *in = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	*readbytes = 0;
	if (in->pos == in->len) {
		ssize_t got;
		in->pos = in->len = 0;
		do
			got = recv(in->fd, in->bytes, sizeof(in->bytes), MSG_DONTWAIT);
		while (got < 0 && errno == EINTR);
		if (got < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				BIO_set_retry_read(b);
			return 0; /* otherwise errno says why (SSL_ERROR_SYSCALL) */
		}
		if (got == 0) {
			in->eof = 1;
			return 0;
		}
		in->len = (size_t)got;
	}
	size_t k = n < in->len - in->pos ? n : in->len - in->pos;
	memcpy(data, in->bytes + in->pos, k);
	in->pos += k;
	*readbytes = k;
	return 1;
}

static long in_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	const struct tls_in *in = BIO_get_data(b);
	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_PENDING:
		return (long)(in->len - in->pos);
	case BIO_CTRL_EOF:
		return in->eof; /* with SSL_OP_IGNORE_UNEXPECTED_EOF: the session ends as after close_notify */
	case BIO_CTRL_FLUSH:
		return 1;
	default:
		return 0;
	}
}

static int in_destroy(BIO *b)
{
	free(BIO_get_data(b));
	BIO_set_data(b, NULL);
	return 1;
}

/* ---- the write BIO: ciphertext into struct sl_tls_out (tls.h, invariant 1) ---- */

static int out_write_ex(BIO *b, const char *data, size_t n, size_t *written)
{
	struct sl_tls_out *o = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	if (o->pos == o->len) {
		o->pos = o->len = 0;
	} else if (o->cap - o->len < n && o->pos > 0) {
		memmove(o->bytes, o->bytes + o->pos, o->len - o->pos);
		o->len -= o->pos;
		o->pos = 0;
	}
	size_t room = o->cap - o->len, k = n < room ? n : room;
	if (k == 0) {
		BIO_set_retry_write(b); /* invariant 2: the session waits for send() to make room */
		*written = 0;
		return 0;
	}
	memcpy(o->bytes + o->len, data, k);
	o->len += k;
	*written = k;
	return 1;
}

static long out_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)num;
	(void)ptr;
	if (cmd == BIO_CTRL_FLUSH)
		return 1; /* the connection sends: nothing to do here */
	if (cmd == BIO_CTRL_WPENDING) {
		const struct sl_tls_out *o = BIO_get_data(b);
		return (long)(o->len - o->pos);
	}
	return 0;
}

/* ---- sessions ---- */

/* Made once per process, the first time a session is (the library's callers may start on any thread). */
static BIO_METHOD *in_method, *out_method;
static pthread_once_t methods_once = PTHREAD_ONCE_INIT;

static int bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static void methods_make(void)
{
	BIO_METHOD *in = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "synclog client in");
	BIO_METHOD *out = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "synclog client out");
	if (in == NULL || out == NULL || BIO_meth_set_read_ex(in, in_read_ex) != 1 ||
	    BIO_meth_set_ctrl(in, in_ctrl) != 1 || BIO_meth_set_create(in, bio_create) != 1 ||
	    BIO_meth_set_destroy(in, in_destroy) != 1 || BIO_meth_set_write_ex(out, out_write_ex) != 1 ||
	    BIO_meth_set_ctrl(out, out_ctrl) != 1 || BIO_meth_set_create(out, bio_create) != 1) {
		BIO_meth_free(in);
		BIO_meth_free(out);
		return;
	}
	in_method = in;
	out_method = out;
}

struct ssl_st *sl_tls_client_session_new(struct ssl_ctx_st *ctx, int fd, const char *host, struct sl_tls_out *out,
                                         char *err, size_t err_bytes)
{
	pthread_once(&methods_once, methods_make);
	SSL *ssl = SSL_new(ctx);
	struct tls_in *in = malloc(sizeof(*in));
	BIO *rbio = in_method ? BIO_new(in_method) : NULL, *wbio = out_method ? BIO_new(out_method) : NULL;
	if (ssl == NULL || in == NULL || rbio == NULL || wbio == NULL) {
		tls_error(err, err_bytes, "cannot create a TLS session");
		SSL_free(ssl);
		free(in);
		BIO_free(rbio);
		BIO_free(wbio);
		return NULL;
	}
	in->fd = fd;
	in->eof = 0;
	in->pos = in->len = 0;
	BIO_set_data(rbio, in); /* the BIO owns it from here: in_destroy frees it */
	BIO_set_data(wbio, out);
	SSL_set_bio(ssl, rbio, wbio);
	SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	unsigned char ip[16];
	int literal = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
	int ok = literal ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host)
	                 : SSL_set_tlsext_host_name(ssl, host) == 1 && SSL_set1_host(ssl, host) == 1;
	if (!ok) {
		tls_error(err, err_bytes, "cannot set the broker's name to verify");
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_connect_state(ssl);
	return ssl;
}

void sl_tls_session_free(struct ssl_st *ssl)
{
	SSL_free(ssl);
}

void sl_tls_session_close(struct ssl_st *ssl)
{
	/* close_notify goes into the out buffer; the caller sends it if the socket takes it. */
	if (ssl != NULL && SSL_is_init_finished(ssl))
		SSL_shutdown(ssl);
	ERR_clear_error();
}

int sl_tls_handshake_step(struct ssl_st *ssl, int *want_write, char *err, size_t err_bytes)
{
	int rc = SSL_do_handshake(ssl);
	if (rc == 1)
		return 0;
	int e = SSL_get_error(ssl, rc);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		*want_write = e == SSL_ERROR_WANT_WRITE;
		return -EAGAIN;
	}
	long verify = SSL_get_verify_result(ssl);
	if (verify != X509_V_OK) {
		snprintf(err, err_bytes,
		         "the broker's TLS certificate is not trusted: %s (check --tls-ca, and that the certificate "
		         "names "
		         "the host in --broker)",
		         X509_verify_cert_error_string(verify));
		ERR_clear_error();
	} else if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
		snprintf(err, err_bytes,
		         "the broker closed the connection during the TLS handshake: does it speak TLS "
		         "here, and does it want a client certificate (--tls-cert)?");
	} else {
		tls_error(err, err_bytes, "TLS handshake failed");
	}
	return -EPROTO;
}

ssize_t sl_tls_encrypt(struct ssl_st *ssl, const void *data, size_t len)
{
	size_t done = 0;
	while (done < len) {
		size_t n = len - done > (1u << 30) ? (1u << 30) : len - done;
		size_t written = 0;
		/* The caller leaves room in the out buffer for all of it (tls.h): a full buffer is a failure here. */
		if (SSL_write_ex(ssl, (const uint8_t *)data + done, n, &written) != 1) {
			ERR_clear_error();
			return -EPROTO;
		}
		done += written;
	}
	return (ssize_t)len;
}

int sl_tls_has_pending(const struct ssl_st *ssl)
{
	return SSL_has_pending(ssl) || BIO_pending(SSL_get_rbio(ssl)) > 0;
}

ssize_t sl_tls_read(struct ssl_st *ssl, void *buf, size_t len, char *err, size_t err_bytes)
{
	size_t n = 0;
	if (SSL_read_ex(ssl, buf, len, &n) == 1)
		return (ssize_t)n;
	int e = SSL_get_error(ssl, 0);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return -EAGAIN;
	if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) {
		ERR_clear_error();
		return -ECONNRESET;
	}
	tls_error(err, err_bytes, "TLS error reading from the broker");
	return -EPROTO;
}
