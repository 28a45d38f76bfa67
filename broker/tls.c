/* The broker's TLS engine: contexts, sessions, and the BIO that lets OpenSSL read from and write to our buffers;
 * see tls.h for the flow and the invariants. */
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/tls.h"
#include "proto/base/assert.h"
#include "proto/tls_suites.h"

/* The output buffer starts at one record's ciphertext and grows to the largest answer in flight. */
#define OUTPUT_BYTES_INITIAL (17u * 1024)

struct sl_tls_server {
	SSL_CTX *ctx;
	struct sl_security_config cfg; /* the file names, for reloads */
};

struct sl_tls_conn {
	SSL *ssl;
	uint8_t in[SL_TLS_INPUT_BYTES]; /* ciphertext in[in_pos .. in_len) not yet consumed */
	size_t in_pos, in_len;
	uint8_t *out; /* ciphertext not yet taken */
	size_t out_len, out_cap;
	int out_failed;
	int cert_refused; /* the session failed on the client's certificate (missing, or not the CA's) */
	char error[256];
};

/* ---- the BIO: reads from in, writes to out (invariant 1) ---- */

static BIO_METHOD *bio_method;

static int bio_read_ex(BIO *b, char *buf, size_t len, size_t *readbytes)
{
	struct sl_tls_conn *c = BIO_get_data(b);
	size_t avail = c->in_len - c->in_pos;
	BIO_clear_retry_flags(b);
	if (avail == 0) {
		BIO_set_retry_read(b);
		*readbytes = 0;
		return 0;
	}
	size_t n = len < avail ? len : avail;
	memcpy(buf, c->in + c->in_pos, n);
	c->in_pos += n;
	if (c->in_pos == c->in_len)
		c->in_pos = c->in_len = 0;
	*readbytes = n;
	return 1;
}

static int bio_write_ex(BIO *b, const char *buf, size_t len, size_t *written)
{
	struct sl_tls_conn *c = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	if (c->out_len + len > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : OUTPUT_BYTES_INITIAL;
		while (cap < c->out_len + len)
			cap *= 2;
		uint8_t *p = realloc(c->out, cap);
		if (p == NULL) {
			c->out_failed = 1;
			return 0;
		}
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, buf, len);
	c->out_len += len;
	*written = len;
	return 1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static BIO_METHOD *method(void)
{
	if (bio_method == NULL) {
		BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "synclog buffers");
		if (m == NULL || BIO_meth_set_read_ex(m, bio_read_ex) != 1 ||
		    BIO_meth_set_write_ex(m, bio_write_ex) != 1 || BIO_meth_set_ctrl(m, bio_ctrl) != 1 ||
		    BIO_meth_set_create(m, bio_create) != 1) {
			BIO_meth_free(m);
			return NULL;
		}
		bio_method = m;
	}
	return bio_method;
}

/* ---- contexts ---- */

static void openssl_error(char *err, size_t cap, const char *what, const char *file)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "";
	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, cap, "%s %s: %s", what, file, e != 0 ? buf : "unknown error");
	ERR_clear_error();
}

static SSL_CTX *context_build(const struct sl_security_config *cfg, char *err, size_t cap)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		openssl_error(err, cap, "cannot create a TLS context", "");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* A client that closes without close_notify has simply gone, as on a plaintext connection: frames carry
	 * their own lengths, so no truncation goes unnoticed. */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* The suites and their order: proto/tls_suites.h (the fastest safe one first, chosen by our order). */
	if (SSL_CTX_set_ciphersuites(ctx, SL_TLS13_CIPHERSUITES) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, SL_TLS12_CIPHERS) != 1) {
		openssl_error(err, cap, "cannot set the TLS cipher suites", "");
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA);
	/* Without it a client certificate could not be checked on a resumed session. */
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"synclogd", 8);
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
		openssl_error(err, cap, "cannot use the certificate (--tls-cert)", cfg->tls_cert);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1) {
		openssl_error(err, cap, "cannot use the private key (--tls-key)", cfg->tls_key);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		openssl_error(err, cap, "the private key does not match the certificate", cfg->tls_cert);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (cfg->tls_ca[0] != '\0') {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->tls_ca);
		if (SSL_CTX_load_verify_locations(ctx, cfg->tls_ca, NULL) != 1 || names == NULL) {
			openssl_error(err, cap, "cannot use the CA certificates (--tls-ca)", cfg->tls_ca);
			sk_X509_NAME_pop_free(names, X509_NAME_free);
			SSL_CTX_free(ctx);
			return NULL;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
	}
	int mode = SSL_VERIFY_NONE;
	if (cfg->tls_client_auth == SL_TLS_CLIENT_AUTH_OPTIONAL)
		mode = SSL_VERIFY_PEER;
	else if (cfg->tls_client_auth == SL_TLS_CLIENT_AUTH_REQUIRED)
		mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	SSL_CTX_set_verify(ctx, mode, NULL);
	return ctx;
}

int sl_tls_server_open(const struct sl_security_config *cfg, struct sl_tls_server **out, char *err, size_t err_cap)
{
	if (method() == NULL) {
		snprintf(err, err_cap, "cannot set up TLS: out of memory");
		return -ENOMEM;
	}
	struct sl_tls_server *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	t->cfg = *cfg;
	t->ctx = context_build(cfg, err, err_cap);
	if (t->ctx == NULL) {
		free(t);
		return -EINVAL;
	}
	*out = t;
	return 0;
}

int sl_tls_server_reload(struct sl_tls_server *t, char *err, size_t err_cap)
{
	SSL_CTX *ctx = context_build(&t->cfg, err, err_cap);
	if (ctx == NULL)
		return -EINVAL;
	SSL_CTX_free(t->ctx); /* sessions still using it keep it alive */
	t->ctx = ctx;
	return 0;
}

void sl_tls_server_free(struct sl_tls_server *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}

/* ---- sessions ---- */

struct sl_tls_conn *sl_tls_conn_new(struct sl_tls_server *t)
{
	struct sl_tls_conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->ssl = SSL_new(t->ctx);
	BIO *b = c->ssl ? BIO_new(method()) : NULL;
	if (b == NULL) {
		SSL_free(c->ssl);
		free(c);
		ERR_clear_error();
		return NULL;
	}
	BIO_set_data(b, c);
	SSL_set_bio(c->ssl, b, b); /* one BIO both ways: SSL_set_bio takes the one reference we hold */
	SSL_set_accept_state(c->ssl);
	SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return c;
}

void sl_tls_conn_free(struct sl_tls_conn *c)
{
	if (c == NULL)
		return;
	SSL_free(c->ssl);
	free(c->out);
	free(c);
}

uint8_t *sl_tls_conn_read_buffer(struct sl_tls_conn *c, size_t *cap_out)
{
	if (c->in_pos > 0 && c->in_len == sizeof(c->in)) {
		memmove(c->in, c->in + c->in_pos, c->in_len - c->in_pos);
		c->in_len -= c->in_pos;
		c->in_pos = 0;
	}
	*cap_out = sizeof(c->in) - c->in_len;
	return c->in + c->in_len;
}

void sl_tls_conn_received(struct sl_tls_conn *c, size_t n)
{
	SL_ASSERT(c->in_len + n <= sizeof(c->in));
	c->in_len += n;
}

static const char *failure(struct sl_tls_conn *c)
{
	long verify = SSL_get_verify_result(c->ssl);
	unsigned long e = ERR_peek_error();
	if (verify != X509_V_OK) {
		c->cert_refused = 1;
		snprintf(c->error, sizeof(c->error), "client certificate refused: %s",
		         X509_verify_cert_error_string(verify));
	} else if (e != 0) {
		c->cert_refused = ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE;
		char buf[200];
		ERR_error_string_n(e, buf, sizeof(buf));
		snprintf(c->error, sizeof(c->error), "%s", buf);
	} else {
		snprintf(c->error, sizeof(c->error), "TLS session failed");
	}
	ERR_clear_error();
	return c->error;
}

ssize_t sl_tls_conn_read(struct sl_tls_conn *c, uint8_t *out, size_t cap, const char **why)
{
	size_t n = 0;
	if (!SSL_is_init_finished(c->ssl)) {
		int rc = SSL_do_handshake(c->ssl);
		if (rc != 1) {
			int e = SSL_get_error(c->ssl, rc);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				return 0;
			*why = failure(c);
			return -EPROTO;
		}
	}
	if (cap == 0)
		return 0;
	if (SSL_read_ex(c->ssl, out, cap, &n) == 1)
		return (ssize_t)n;
	int e = SSL_get_error(c->ssl, 0);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	if (e == SSL_ERROR_ZERO_RETURN) {
		ERR_clear_error();
		return -ECONNRESET;
	}
	*why = failure(c);
	return -EPROTO;
}

size_t sl_tls_conn_buffered(const struct sl_tls_conn *c)
{
	return (size_t)SSL_pending(c->ssl);
}

/* TLS 1.2 and 1.3 add at most this much to a record (header, tag, padding, the inner content type). */
#define RECORD_OVERHEAD_BYTES_MAX 64

int sl_tls_conn_reserve(struct sl_tls_conn *c, size_t plaintext_bytes)
{
	size_t need = c->out_len + plaintext_bytes + (plaintext_bytes / 16384 + 1) * RECORD_OVERHEAD_BYTES_MAX;
	if (need <= c->out_cap)
		return 0;
	uint8_t *p = realloc(c->out, need);
	if (p == NULL)
		return -ENOMEM;
	c->out = p;
	c->out_cap = need;
	return 0;
}

int sl_tls_conn_write(struct sl_tls_conn *c, const void *data, size_t len)
{
	size_t done = 0;
	while (done < len) {
		size_t written = 0;
		if (SSL_write_ex(c->ssl, (const uint8_t *)data + done, len - done, &written) != 1) {
			ERR_clear_error();
			return c->out_failed ? -ENOMEM : -EPROTO;
		}
		done += written;
	}
	return 0;
}

size_t sl_tls_conn_pending(const struct sl_tls_conn *c)
{
	return c->out_len;
}

uint8_t *sl_tls_conn_take_output(struct sl_tls_conn *c, size_t *len_out)
{
	if (c->out_len == 0)
		return NULL;
	uint8_t *p = c->out;
	*len_out = c->out_len;
	c->out = NULL;
	c->out_len = c->out_cap = 0;
	return p;
}

int sl_tls_conn_cert_refused(const struct sl_tls_conn *c)
{
	return c->cert_refused;
}

int sl_tls_conn_handshake_done(const struct sl_tls_conn *c)
{
	return SSL_is_init_finished(c->ssl);
}

int sl_tls_conn_peer_cn(const struct sl_tls_conn *c, char *out, size_t cap)
{
	X509 *cert = SSL_get0_peer_certificate(c->ssl);
	if (cert == NULL || SSL_get_verify_result(c->ssl) != X509_V_OK)
		return 0;
	int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, out, (int)cap);
	return n > 0 && (size_t)n < cap;
}

const char *sl_tls_conn_version(const struct sl_tls_conn *c)
{
	return SSL_get_version(c->ssl);
}
