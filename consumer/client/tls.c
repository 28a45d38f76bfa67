/* The client's TLS: contexts, sessions and the memory-BIO write side; see tls.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include "consumer/client/synclog.h"
#include "consumer/client/tls.h"

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
	/* Read ahead: one recv takes several records instead of two per record (header, then body). 64 KiB is four
	 * records; SSL_has_pending then says whether read data waits inside the session. */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_default_read_buffer_len(ctx, 64 * 1024);
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

struct ssl_st *sl_tls_client_session_new(struct ssl_ctx_st *ctx, int fd, const char *host, char *err, size_t err_bytes)
{
	SSL *ssl = SSL_new(ctx);
	BIO *rbio = BIO_new_socket(fd, BIO_NOCLOSE), *wbio = BIO_new(BIO_s_mem());
	if (ssl == NULL || rbio == NULL || wbio == NULL) {
		tls_error(err, err_bytes, "cannot create a TLS session");
		SSL_free(ssl);
		BIO_free(rbio);
		BIO_free(wbio);
		return NULL;
	}
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
	/* close_notify goes into the memory BIO; the caller sends it if the socket takes it. */
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
		/* The write side is a memory BIO: it takes everything, so this never waits. */
		if (SSL_write_ex(ssl, (const uint8_t *)data + done, n, &written) != 1) {
			ERR_clear_error();
			return -EPROTO;
		}
		done += written;
	}
	return (ssize_t)len;
}

size_t sl_tls_pending(struct ssl_st *ssl)
{
	return BIO_ctrl_pending(SSL_get_wbio(ssl));
}

size_t sl_tls_take(struct ssl_st *ssl, uint8_t *out, size_t cap)
{
	size_t n = 0;
	if (cap == 0 || BIO_read_ex(SSL_get_wbio(ssl), out, cap, &n) != 1)
		return 0;
	return n;
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
