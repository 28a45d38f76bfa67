/* A connection to the broker: TCP with TCP_NODELAY, frames (proto/frame.h) written from and read into buffers
 * that are reused, waits bounded by poll() timeouts, and the Hello every connection starts with. The socket is
 * non-blocking so that writing and reading can interleave when requests are pipelined; every call that waits
 * does so in poll(). */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "proto/base/addr.h"
#include "proto/base/clock.h"
#include "consumer/client/client_impl.h"
#include "consumer/client/tls.h"
#include "proto/frame.h"
#include "proto/scram.h"

/* The buffers start at this size and grow to the largest frame seen. */
#define BUF_BYTES_INITIAL        (64 * 1024)
/* Read at most this much per recv: big enough to take a large fetch in a few calls. */
#define READ_CHUNK_BYTES         (256 * 1024)
/* Segments per sendmsg: 64 cover 31 referenced batches (about 8 MiB at 256 KiB each), far more than a socket takes in
 * one call, while the iovec stays a 1 KiB array on the stack. The kernel allows 1024 (IOV_MAX). */
#define WRITE_IOVECS_MAX         64
/* TLS: plaintext is encrypted this much at a time into tls_out, which holds a few such pieces so that one send()
 * carries many records; 64 KiB is four TLS records, the ciphertext of one piece is that plus at most 29 bytes a
 * record (TLS 1.2 GCM: header, explicit nonce, tag; TLS 1.3: header, content type, tag), and a piece is encrypted
 * only with room for all of it (tls.h invariant 2). */
#define TLS_PIECE_BYTES          (64 * 1024)
#define TLS_PIECE_OVERHEAD_BYTES 1024
#define TLS_OUT_BYTES            (4 * TLS_PIECE_BYTES + 4096)
_Static_assert(TLS_PIECE_OVERHEAD_BYTES >= (TLS_PIECE_BYTES / 16384 + 1) * 29, "a piece's records fit its room");

_Static_assert(WRITE_IOVECS_MAX <= 1024, "sendmsg takes at most IOV_MAX (1024) iovecs");
_Static_assert(SL_CONN_SEGMENTS_MAX >= 3, "a referenced field needs room for itself and the run after it");

_Static_assert(SL_FRAME_HEADER_BYTES == 4, "frame length prefix is 4 bytes");

void sl_error_set(char *buf, size_t bytes, const char *fmt, ...)
{
	va_list ap;

	if (buf == NULL || bytes == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, bytes, fmt, ap);
	va_end(ap);
}

void sl_conn_set_error(struct sl_conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->error, sizeof(c->error), fmt, ap);
	va_end(ap);
}

int sl_errno_of_code(int code)
{
	switch (code) {
	case SYNCLOG__ERROR_CODE__NONE:
		return 0;
	case SYNCLOG__ERROR_CODE__UNKNOWN_TOPIC:
	case SYNCLOG__ERROR_CODE__UNKNOWN_PARTITION:
		return -ENOENT;
	case SYNCLOG__ERROR_CODE__TOPIC_EXISTS:
		return -EEXIST;
	case SYNCLOG__ERROR_CODE__INVALID_REQUEST:
	case SYNCLOG__ERROR_CODE__INVALID_TOPIC_NAME:
	case SYNCLOG__ERROR_CODE__INVALID_PARTITIONS:
		return -EINVAL;
	case SYNCLOG__ERROR_CODE__THROTTLED:
		return -EAGAIN;
	case SYNCLOG__ERROR_CODE__NOT_ENOUGH_SPACE:
		return -ENOSPC;
	case SYNCLOG__ERROR_CODE__STORAGE_ERROR:
		return -EIO;
	case SYNCLOG__ERROR_CODE__BROKER_SHUTTING_DOWN:
		return -ESHUTDOWN;
	case SYNCLOG__ERROR_CODE__UNSUPPORTED_FEATURE:
		return -EOPNOTSUPP;
	case SYNCLOG__ERROR_CODE__OFFSET_OUT_OF_RANGE:
		return -ERANGE;
	case SYNCLOG__ERROR_CODE__BATCH_TOO_LARGE:
		return -EMSGSIZE;
	case SYNCLOG__ERROR_CODE__CORRUPT_BATCH:
		return -EBADMSG;
	case SYNCLOG__ERROR_CODE__UNKNOWN_GROUP:
		return -ENOENT;
	case SYNCLOG__ERROR_CODE__UNKNOWN_MEMBER:
		return -EIDRM;
	case SYNCLOG__ERROR_CODE__ILLEGAL_GENERATION:
	case SYNCLOG__ERROR_CODE__REBALANCE_IN_PROGRESS:
		return -ESTALE;
	case SYNCLOG__ERROR_CODE__GROUP_NOT_EMPTY:
		return -EBUSY;
	case SYNCLOG__ERROR_CODE__INVALID_GROUP_NAME:
	case SYNCLOG__ERROR_CODE__INVALID_CONFIG:
	case SYNCLOG__ERROR_CODE__UNSUPPORTED_BATCH:
		return -EINVAL;
	case SYNCLOG__ERROR_CODE__AUTHENTICATION_FAILED:
		return -EACCES;
	case SYNCLOG__ERROR_CODE__TOPIC_AUTHORIZATION_FAILED:
	case SYNCLOG__ERROR_CODE__GROUP_AUTHORIZATION_FAILED:
	case SYNCLOG__ERROR_CODE__CLUSTER_AUTHORIZATION_FAILED:
		return -EPERM;
	case SYNCLOG__ERROR_CODE__UNKNOWN_USER:
		return -ENOENT;
	case SYNCLOG__ERROR_CODE__RECORDS_LOST:
		return -ENODATA;
	case SYNCLOG__ERROR_CODE__GROUP_LIMIT:
		return -EUSERS;
	case SYNCLOG__ERROR_CODE__CLEANER_FAILED:
		return -EIO;
	case SYNCLOG__ERROR_CODE__CONTRACT_INVALID:
		return -EINVAL;
	case SYNCLOG__ERROR_CODE__IDEMPOTENCY_KEY_REQUIRED:
		return -EPERM;
	case SYNCLOG__ERROR_CODE__NO_CONTRACT:
		return -ENODATA;
	default:
		return -EPROTO;
	}
}

int sl_conn_fail_response(struct sl_conn *c, const char *what, int code, const char *broker_message)
{
	const char *detail =
	        broker_message != NULL && broker_message[0] != '\0' ? broker_message : sl_error_message(code);

	c->broker_error = code;
	sl_conn_set_error(c, "%s: %s: %s", what, sl_error_name(code), detail);
	return sl_errno_of_code(code);
}

int sl_broker_parse(const char *s, struct sl_broker_addr *out, char *err, size_t err_bytes)
{
	char why[SL_ERROR_BYTES];
	int port;

	if (sl_broker_is_kafka(s))
		return sl_kafka_broker_parse(s, out, err, err_bytes);
	/* The one HOST:PORT parser (proto/base/addr.h); a client needs a real port, 0 only means "any" to a
	 * listener. */
	if (sl_addr_split(s, out->host, sizeof(out->host), &port, why, sizeof(why)) != 0) {
		sl_error_set(err, err_bytes, "broker %s", why);
		return -EINVAL;
	}
	if (port == 0) {
		sl_error_set(err, err_bytes, "broker address '%s': the port must be a number from 1 to 65535", s);
		return -EINVAL;
	}
	if (port < 0)
		snprintf(out->port, sizeof(out->port), "%s", SL_BROKER_PORT_DEFAULT);
	else
		snprintf(out->port, sizeof(out->port), "%d", port);
	return 0;
}

int sl_conn_new(struct sl_conn **out, const char *broker, const char *client_id)
{
	struct sl_conn *c;
	char err[SL_ERROR_BYTES];

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	if (sl_broker_parse(broker, &c->addr, err, sizeof(err)) != 0) {
		free(c);
		return -EINVAL;
	}
	c->fd = -1;
	snprintf(c->client_id, sizeof(c->client_id), "%s", client_id != NULL ? client_id : "synclog-client");
	c->io_timeout_ms = SL_IO_TIMEOUT_MS_DEFAULT;
	if (sl_broker_is_kafka(broker)) {
		int rc = sl_kafka_conn_new(c, broker);

		if (rc != 0) {
			free(c);
			return rc;
		}
		*out = c;
		return 0;
	}
	c->frame_bytes_max = SL_FRAME_BYTES_MAX_DEFAULT;
	/* A response unpacks into at most its own bytes plus the structs around them; four times the frame limit
	 * leaves room for that while refusing a frame crafted to expand without bound. */
	sl_arena_init(&c->arena, (size_t)4 * SL_FRAME_BYTES_MAX_DEFAULT + (1u << 20));
	*out = c;
	return 0;
}

void sl_conn_close(struct sl_conn *c)
{
	if (c->kafka != NULL) {
		sl_kafka_conn_close(c);
		return;
	}
	if (c->ssl != NULL && c->fd >= 0) {
		/* Tell the broker the session ends (a best effort: whatever the socket takes now). */
		c->tls_out.pos = c->tls_out.len = 0;
		sl_tls_session_close(c->ssl);
		if (c->tls_out.len > 0 &&
		    send(c->fd, c->tls_out.bytes, c->tls_out.len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			(void)0; /* the connection is going away either way */
	}
	sl_tls_session_free(c->ssl);
	c->ssl = NULL;
	c->tls_out.pos = c->tls_out.len = 0;
	c->principal[0] = '\0';
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->wpos = c->wlen = 0;
	c->segment_head = c->segment_count = 0;
	c->ref_bytes = 0;
	c->rpos = c->rlen = 0;
}

static void security_clear(struct sl_conn *c)
{
	if (c->password != NULL)
		OPENSSL_cleanse(c->password, strlen(c->password));
	free(c->password);
	free(c->user);
	sl_tls_client_ctx_free(c->tls_ctx);
	free(c->tls_out.bytes);
	c->user = c->password = NULL;
	c->tls_ctx = NULL;
	c->tls_out = (struct sl_tls_out){0};
}

void sl_security_options_from_env(struct sl_security_options *o)
{
	const char *tls = getenv("SYNCLOG_TLS");

	memset(o, 0, sizeof(*o));
	o->user = getenv("SYNCLOG_USER");
	o->password = getenv("SYNCLOG_PASSWORD");
	o->tls_ca = getenv("SYNCLOG_TLS_CA");
	o->tls_cert = getenv("SYNCLOG_TLS_CERT");
	o->tls_key = getenv("SYNCLOG_TLS_KEY");
	o->tls = tls != NULL && (strcmp(tls, "1") == 0 || strcasecmp(tls, "true") == 0 || strcasecmp(tls, "yes") == 0);
	if (o->user != NULL && o->user[0] == '\0')
		o->user = NULL;
}

static bool set(const char *s)
{
	return s != NULL && s[0] != '\0';
}

int sl_conn_set_security(struct sl_conn *c, const struct sl_security_options *o)
{
	char err[SL_ERROR_BYTES];

	if (c->kafka != NULL)
		return sl_kafka_conn_set_security(c, o);
	sl_conn_close(c);
	security_clear(c);
	if (o == NULL)
		return 0;
	if (set(o->tls_cert) != set(o->tls_key)) {
		sl_conn_set_error(c, "a client certificate needs its key: give both --tls-cert and --tls-key");
		return -EINVAL;
	}
	if (set(o->user) && o->password == NULL) {
		sl_conn_set_error(c, "user '%s' needs a password: set SYNCLOG_PASSWORD or --password-file", o->user);
		return -EINVAL;
	}
	if (set(o->user)) {
		c->user = strdup(o->user);
		c->password = strdup(o->password);
		if (c->user == NULL || c->password == NULL) {
			security_clear(c);
			return -ENOMEM;
		}
	}
	if (o->tls || set(o->tls_ca) || set(o->tls_cert)) {
		c->tls_out = (struct sl_tls_out){.bytes = malloc(TLS_OUT_BYTES), .cap = TLS_OUT_BYTES};
		c->tls_ctx = c->tls_out.bytes ? sl_tls_client_ctx_new(o, err, sizeof(err)) : NULL;
		if (c->tls_ctx == NULL) {
			sl_conn_set_error(c, "%s", c->tls_out.bytes ? err : "out of memory");
			security_clear(c);
			return c->tls_out.bytes ? -EIO : -ENOMEM;
		}
	}
	return 0;
}

int sl_conn_security_copy(struct sl_conn *to, const struct sl_conn *from)
{
	sl_conn_close(to);
	security_clear(to);
	if (from->user != NULL) {
		to->user = strdup(from->user);
		to->password = strdup(from->password);
	}
	if (from->tls_ctx != NULL) {
		to->tls_out = (struct sl_tls_out){.bytes = malloc(TLS_OUT_BYTES), .cap = TLS_OUT_BYTES};
		if (to->tls_out.bytes != NULL && SSL_CTX_up_ref(from->tls_ctx) == 1)
			to->tls_ctx = from->tls_ctx;
	}
	if ((from->user != NULL && (to->user == NULL || to->password == NULL)) ||
	    (from->tls_ctx != NULL && to->tls_ctx == NULL)) {
		security_clear(to);
		return -ENOMEM;
	}
	return 0;
}

const char *sl_conn_principal(const struct sl_conn *c)
{
	return c->principal;
}

void sl_conn_free(struct sl_conn *c)
{
	if (c == NULL)
		return;
	if (c->kafka != NULL)
		sl_kafka_conn_free(c);
	sl_conn_close(c);
	free(c->wbuf);
	free(c->rbuf);
	sl_arena_free(&c->arena);
	security_clear(c);
	free(c);
}

void sl_conn_set_timeout(struct sl_conn *c, uint32_t io_timeout_ms)
{
	c->io_timeout_ms = io_timeout_ms;
}

int sl_conn_set_kafka_config(struct sl_conn *c, const struct sl_kafka_config *cfg)
{
	return c->kafka != NULL ? sl_kafka_conn_set_config(c, cfg) : 0;
}

int sl_conn_set_stall_after(struct sl_conn *c, int64_t stall_after_ms)
{
	if (c->kafka != NULL)
		return sl_kafka_conn_set_stall_after(c, stall_after_ms);
	sl_conn_set_error(c, "synclogd judges its groups' health itself: set a group's stall-after with `synclog group "
	                     "alter GROUP --stall-after D`, or the broker's with synclogd --stall-after");
	return -EOPNOTSUPP;
}

bool sl_conn_is_kafka(const struct sl_conn *c)
{
	return c->kafka != NULL;
}

const char *sl_conn_error(const struct sl_conn *c)
{
	return c->error;
}

int sl_conn_broker_error(const struct sl_conn *c)
{
	return c->broker_error;
}

uint32_t sl_conn_frame_bytes_max(const struct sl_conn *c)
{
	return c->frame_bytes_max;
}

size_t sl_conn_unsent(const struct sl_conn *c)
{
	return c->wlen - c->wpos + c->ref_bytes + (c->tls_out.len - c->tls_out.pos);
}

/* Milliseconds left until deadline_ms (monotonic), never negative. */
static int remaining_ms(int64_t deadline_ms)
{
	int64_t left = deadline_ms - sl_clock_mono_ms();

	return left < 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

static int connect_one(struct sl_conn *c, const struct addrinfo *ai, int64_t deadline_ms)
{
	int fd, one = 1, so_error = 0;
	socklen_t len = sizeof(so_error);

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return -errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		int rc;

		if (errno != EINPROGRESS) {
			rc = -errno;
			close(fd);
			return rc;
		}
		rc = poll(&pfd, 1, remaining_ms(deadline_ms));
		if (rc <= 0) {
			rc = rc == 0 ? -ETIMEDOUT : -errno;
			close(fd);
			return rc;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0 || so_error != 0) {
			close(fd);
			return so_error != 0 ? -so_error : -EIO;
		}
	}
	/* Requests are whole frames written at once; Nagle would only hold the last segment of each back. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	return 0;
}

/* One SCRAM message to the broker and its answer's message (valid until the next call on c). */
static int auth_step(struct sl_conn *c, const char *msg, size_t len, const Synclog__AuthenticateResponse **out)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__AuthenticateRequest body = SYNCLOG__AUTHENTICATE_REQUEST__INIT;
	Synclog__Response *resp;
	int rc;

	body.mechanism = SL_SCRAM_MECHANISM;
	body.message.data = (uint8_t *)msg;
	body.message.len = len;
	req.body_case = SYNCLOG__REQUEST__BODY_AUTHENTICATE;
	req.authenticate = &body;
	rc = sl_conn_call(c, &req, &resp);
	if (rc != 0)
		return rc;
	if (resp->error != SYNCLOG__ERROR_CODE__NONE) {
		char what[SL_HOST_BYTES_MAX + 128];

		snprintf(what, sizeof(what), "authenticating as '%s' to broker %s:%s", c->user, c->addr.host,
		         c->addr.port);
		rc = sl_conn_fail_response(c, what, resp->error, resp->error_message);
		sl_conn_close(c);
		return rc;
	}
	if (resp->body_case != SYNCLOG__RESPONSE__BODY_AUTHENTICATE || resp->authenticate->message.len == 0 ||
	    resp->authenticate->message.len > SL_SCRAM_MESSAGE_BYTES_MAX) {
		sl_conn_set_error(c, "broker %s:%s answered Authenticate with something else", c->addr.host,
		                  c->addr.port);
		sl_conn_close(c);
		return -EPROTO;
	}
	*out = resp->authenticate;
	return 0;
}

/* SCRAM-SHA-256 (proto/scram.h): client-first, client-final, and the server's proof checked. */
static int authenticate(struct sl_conn *c)
{
	struct sl_scram_client sc;
	char msg[SL_SCRAM_MESSAGE_BYTES_MAX], server_msg[SL_SCRAM_MESSAGE_BYTES_MAX + 1];
	const Synclog__AuthenticateResponse *r;
	const char *why = NULL;
	size_t len;
	int rc;

	rc = sl_scram_client_first(&sc, c->user, NULL, msg, sizeof(msg), &len);
	if (rc != 0) {
		sl_conn_set_error(c, "user name '%s' cannot be sent: 1 to 255 bytes", c->user);
		sl_conn_close(c);
		return -EINVAL;
	}
	rc = auth_step(c, msg, len, &r);
	if (rc != 0)
		return rc;
	memcpy(server_msg, r->message.data, r->message.len);
	rc = sl_scram_client_final(&sc, c->password, strlen(c->password), server_msg, r->message.len, msg, sizeof(msg),
	                           &len, &why);
	if (rc == 0)
		rc = auth_step(c, msg, len, &r);
	else
		sl_conn_set_error(c, "broker %s:%s sent a SCRAM message this client refuses: %s", c->addr.host,
		                  c->addr.port, why);
	if (rc == 0) {
		memcpy(server_msg, r->message.data, r->message.len);
		rc = r->done ? sl_scram_client_verify(&sc, server_msg, r->message.len, &why) : -EPROTO;
		if (rc != 0)
			sl_conn_set_error(c, "broker %s:%s did not prove it knows user '%s': %s", c->addr.host,
			                  c->addr.port, c->user, why ? why : "the exchange did not end");
		else
			snprintf(c->principal, sizeof(c->principal), "%s", r->principal ? r->principal : c->user);
	}
	OPENSSL_cleanse(&sc, sizeof(sc));
	if (rc != 0 && c->fd >= 0) {
		sl_conn_close(c);
		return rc == -EBADMSG ? -EPROTO : rc;
	}
	return rc;
}

static int hello(struct sl_conn *c)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__HelloRequest body = SYNCLOG__HELLO_REQUEST__INIT;
	Synclog__Response *resp;
	int rc;

	body.protocol_version = SL_PROTOCOL_VERSION;
	body.client_id = c->client_id;
	req.body_case = SYNCLOG__REQUEST__BODY_HELLO;
	req.hello = &body;
	rc = sl_conn_call(c, &req, &resp);
	if (rc != 0)
		return rc;
	if (resp->error != SYNCLOG__ERROR_CODE__NONE) {
		char what[SL_HOST_BYTES_MAX + 64];

		snprintf(what, sizeof(what), "hello to broker %s:%s", c->addr.host, c->addr.port);
		rc = sl_conn_fail_response(c, what, resp->error, resp->error_message);
		sl_conn_close(c);
		return rc;
	}
	if (resp->body_case != SYNCLOG__RESPONSE__BODY_HELLO) {
		sl_conn_set_error(c, "broker %s:%s answered Hello with something else: is it a synclog broker?",
		                  c->addr.host, c->addr.port);
		sl_conn_close(c);
		return -EPROTO;
	}
	if (resp->hello->max_frame_bytes >= 1024)
		c->frame_bytes_max = resp->hello->max_frame_bytes;
	if (resp->hello->principal != NULL)
		snprintf(c->principal, sizeof(c->principal), "%s", resp->hello->principal);
	if (c->user != NULL)
		return authenticate(c);
	if (resp->hello->authentication_required && c->principal[0] == '\0') {
		sl_conn_set_error(c,
		                  "broker %s:%s requires authentication: give --user NAME (or SYNCLOG_USER) and the "
		                  "password in SYNCLOG_PASSWORD or --password-file",
		                  c->addr.host, c->addr.port);
		c->broker_error = SYNCLOG__ERROR_CODE__AUTHENTICATION_FAILED;
		sl_conn_close(c);
		return -EACCES;
	}
	return 0;
}

/* Send what tls_out holds until the socket is full: 0 (sent or would block), or a connection error. */
static int tls_send(struct sl_conn *c)
{
	while (c->tls_out.pos < c->tls_out.len) {
		ssize_t n = send(c->fd, c->tls_out.bytes + c->tls_out.pos, c->tls_out.len - c->tls_out.pos,
		                 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c->tls_out.pos += (size_t)n;
	}
	c->tls_out.pos = c->tls_out.len = 0;
	return 0;
}

/* The TLS handshake on the connected socket, within deadline_ms. */
static int tls_start(struct sl_conn *c, int64_t deadline_ms)
{
	char err[SL_ERROR_BYTES];
	int want_write = 0, rc;

	c->ssl = sl_tls_client_session_new(c->tls_ctx, c->fd, c->addr.host, &c->tls_out, err, sizeof(err));
	if (c->ssl == NULL) {
		sl_conn_set_error(c, "%s", err);
		sl_conn_close(c);
		return -EPROTO;
	}
	for (;;) {
		struct pollfd pfd = {.fd = c->fd};

		rc = sl_tls_handshake_step(c->ssl, &want_write, err, sizeof(err));
		if (tls_send(c) != 0) {
			sl_conn_set_error(c, "connection to broker %s:%s lost during the TLS handshake", c->addr.host,
			                  c->addr.port);
			sl_conn_close(c);
			return -ECONNRESET;
		}
		if (rc == 0 && c->tls_out.len == 0)
			return 0;
		if (rc != 0 && rc != -EAGAIN) {
			sl_conn_set_error(c, "TLS with broker %s:%s: %s", c->addr.host, c->addr.port, err);
			sl_conn_close(c);
			return rc;
		}
		pfd.events = (short)(c->tls_out.len > 0 || want_write ? POLLOUT : POLLIN);
		rc = poll(&pfd, 1, remaining_ms(deadline_ms));
		if (rc == 0) {
			sl_conn_set_error(c,
			                  "broker %s:%s did not finish the TLS handshake within %u ms: does it speak "
			                  "TLS there?",
			                  c->addr.host, c->addr.port, c->io_timeout_ms);
			sl_conn_close(c);
			return -ETIMEDOUT;
		}
		if (rc < 0 && errno != EINTR) {
			rc = -errno;
			sl_conn_close(c);
			return rc;
		}
	}
}

int sl_conn_connect(struct sl_conn *c)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *list, *ai;
	int64_t deadline_ms = sl_clock_mono_ms() + c->io_timeout_ms;
	int rc;

	if (c->kafka != NULL)
		return sl_kafka_conn_connect(c);
	sl_conn_close(c);
	c->broker_error = 0;
	rc = getaddrinfo(c->addr.host, c->addr.port, &hints, &list);
	if (rc != 0) {
		sl_conn_set_error(c, "cannot resolve broker host '%s': %s: check --broker or SYNCLOG_BROKER",
		                  c->addr.host, gai_strerror(rc));
		return -EHOSTUNREACH;
	}
	rc = -EHOSTUNREACH;
	for (ai = list; ai != NULL && c->fd < 0; ai = ai->ai_next)
		rc = connect_one(c, ai, deadline_ms);
	freeaddrinfo(list);
	if (c->fd < 0) {
		sl_conn_set_error(c,
		                  "cannot connect to broker %s:%s: %s: is synclogd running there? (set --broker or "
		                  "SYNCLOG_BROKER)",
		                  c->addr.host, c->addr.port, strerror(-rc));
		return rc;
	}
	c->correlation_next = 1;
	c->frame_bytes_max = SL_FRAME_BYTES_MAX_DEFAULT;
	if (c->tls_ctx != NULL) {
		rc = tls_start(c, deadline_ms);
		if (rc != 0)
			return rc;
	}
	return hello(c);
}

/* Make room for need more bytes at the end of *buf (len used, *cap allocated), first dropping the consumed
 * prefix [0, *pos). */
static int buf_reserve(uint8_t **buf, size_t *pos, size_t *len, size_t *cap, size_t need)
{
	if (*pos > 0 && *len + need > *cap) {
		memmove(*buf, *buf + *pos, *len - *pos);
		*len -= *pos;
		*pos = 0;
	}
	if (*len + need > *cap) {
		size_t new_cap = *cap ? *cap : BUF_BYTES_INITIAL;
		uint8_t *p;

		while (new_cap < *len + need)
			new_cap *= 2;
		p = realloc(*buf, new_cap);
		if (p == NULL)
			return -ENOMEM;
		*buf = p;
		*cap = new_cap;
	}
	return 0;
}

/* ---- the queue of unsent segments (client_impl.h, invariants 1 to 4) ---- */

static struct sl_conn_segment *segment_at(struct sl_conn *c, uint32_t index)
{
	SL_ASSERT(index < c->segment_count);
	return &c->segments[(c->segment_head + index) % SL_CONN_SEGMENTS_MAX];
}

static struct sl_conn_segment *segment_push(struct sl_conn *c, const uint8_t *ref, size_t len)
{
	struct sl_conn_segment *s;

	SL_ASSERT(c->segment_count < SL_CONN_SEGMENTS_MAX && len > 0);
	c->segment_count++;
	s = segment_at(c, c->segment_count - 1);
	s->ref = ref;
	s->len = len;
	return s;
}

/* The len bytes just written at wbuf + wlen join the queue: the last run of wbuf grows, or a new one starts.
 * A new one always has room: a reference is only queued with a slot left after it (segment_ref). */
static void own_commit(struct sl_conn *c, size_t len)
{
	struct sl_conn_segment *tail = c->segment_count > 0 ? segment_at(c, c->segment_count - 1) : NULL;

	if (len == 0)
		return;
	if (tail != NULL && tail->ref == NULL)
		tail->len += len;
	else
		segment_push(c, NULL, len);
	c->wlen += len;
}

static int own_append(struct sl_conn *c, const void *data, size_t len)
{
	int rc = buf_reserve(&c->wbuf, &c->wpos, &c->wlen, &c->wcap, len);

	if (rc != 0)
		return rc;
	memcpy(c->wbuf + c->wlen, data, len);
	own_commit(c, len);
	return 0;
}

/* Queue a reference to len bytes of the caller's, or copy them when the ring has no room for the reference and
 * a run after it. */
static int segment_ref(struct sl_conn *c, const uint8_t *data, size_t len)
{
	if (c->segment_count + 2 > SL_CONN_SEGMENTS_MAX)
		return own_append(c, data, len);
	segment_push(c, data, len);
	c->ref_bytes += len;
	return 0;
}

/* n bytes were written: drop them from the front of the queue. */
static void segments_consume(struct sl_conn *c, size_t n)
{
	while (n > 0) {
		struct sl_conn_segment *s = segment_at(c, 0);
		size_t k = n < s->len ? n : s->len;

		if (s->ref != NULL) {
			s->ref += k;
			c->ref_bytes -= k;
		} else {
			c->wpos += k;
		}
		s->len -= k;
		n -= k;
		if (s->len == 0) {
			c->segment_head = (c->segment_head + 1) % SL_CONN_SEGMENTS_MAX;
			c->segment_count--;
		}
	}
	SL_ASSERT(c->wpos <= c->wlen);
}

int sl_conn_queue(struct sl_conn *c, Synclog__Request *req, uint64_t *cid_out)
{
	size_t size;
	int rc;

	if (c->fd < 0) {
		sl_conn_set_error(c, "not connected to broker %s:%s", c->addr.host, c->addr.port);
		return -ENOTCONN;
	}
	req->correlation_id = c->correlation_next++;
	size = synclog__request__get_packed_size(req);
	if (size == 0 || size > c->frame_bytes_max) {
		sl_conn_set_error(c, "request of %zu bytes is larger than the broker's frame limit of %u bytes", size,
		                  c->frame_bytes_max);
		return -EMSGSIZE;
	}
	rc = buf_reserve(&c->wbuf, &c->wpos, &c->wlen, &c->wcap, SL_FRAME_HEADER_BYTES + size);
	if (rc != 0) {
		sl_conn_set_error(c, "out of memory queueing a request of %zu bytes", size);
		return rc;
	}
	sl_frame_put_length(c->wbuf + c->wlen, (uint32_t)size);
	SL_ASSERT(synclog__request__pack(req, c->wbuf + c->wlen + SL_FRAME_HEADER_BYTES) == size);
	own_commit(c, SL_FRAME_HEADER_BYTES + size);
	if (cid_out != NULL)
		*cid_out = req->correlation_id;
	return 0;
}

/* The ProtobufCBuffer sl_conn_queue_ref packs through: protobuf-c hands each bytes field's data to append with
 * the caller's own pointer (after its tag and length, appended separately), so a large append is a field to
 * reference. The queue's state before the request lets a failed append (out of memory) take the whole frame back
 * out: protobuf-c's append cannot fail, so the error waits in rc until the packing ends. */
struct ref_packer {
	ProtobufCBuffer base;
	struct sl_conn *c;
	size_t appended_bytes;
	size_t own_bytes;
	size_t ref_bytes;
	uint32_t segment_count_before;
	size_t tail_len_before;
	int rc;
};

static void ref_packer_append(ProtobufCBuffer *buffer, size_t len, const uint8_t *data)
{
	struct ref_packer *pk = (struct ref_packer *)buffer;
	size_t refs_before = pk->c->ref_bytes;

	if (pk->rc != 0 || len == 0)
		return;
	if (len >= SL_CONN_REF_BYTES_MIN)
		pk->rc = segment_ref(pk->c, data, len);
	else
		pk->rc = own_append(pk->c, data, len);
	if (pk->rc != 0)
		return;
	pk->appended_bytes += len;
	pk->ref_bytes += pk->c->ref_bytes - refs_before;
	pk->own_bytes += len - (pk->c->ref_bytes - refs_before);
}

/* Take back everything the packer queued. Nothing was written meanwhile, so the segments it added are still the
 * last ones and its bytes the last of wbuf (buf_reserve may have moved them to the front, not reordered them). */
static void ref_packer_undo(struct ref_packer *pk)
{
	struct sl_conn *c = pk->c;

	c->segment_count = pk->segment_count_before;
	if (c->segment_count > 0)
		segment_at(c, c->segment_count - 1)->len = pk->tail_len_before;
	c->wlen -= pk->own_bytes;
	c->ref_bytes -= pk->ref_bytes;
}

int sl_conn_queue_ref(struct sl_conn *c, Synclog__Request *req, uint64_t *cid_out)
{
	struct ref_packer pk = {.base.append = ref_packer_append, .c = c};
	uint8_t header[SL_FRAME_HEADER_BYTES];
	size_t size;

	if (c->fd < 0) {
		sl_conn_set_error(c, "not connected to broker %s:%s", c->addr.host, c->addr.port);
		return -ENOTCONN;
	}
	req->correlation_id = c->correlation_next++;
	size = synclog__request__get_packed_size(req);
	if (size == 0 || size > c->frame_bytes_max) {
		sl_conn_set_error(c, "request of %zu bytes is larger than the broker's frame limit of %u bytes", size,
		                  c->frame_bytes_max);
		return -EMSGSIZE;
	}
	pk.segment_count_before = c->segment_count;
	pk.tail_len_before = c->segment_count > 0 ? segment_at(c, c->segment_count - 1)->len : 0;
	sl_frame_put_length(header, (uint32_t)size);
	ref_packer_append(&pk.base, sizeof(header), header);
	SL_ASSERT(synclog__request__pack_to_buffer(req, &pk.base) == size);
	if (pk.rc != 0) {
		ref_packer_undo(&pk);
		sl_conn_set_error(c, "out of memory queueing a request of %zu bytes", size);
		return pk.rc;
	}
	SL_ASSERT(pk.appended_bytes == SL_FRAME_HEADER_BYTES + size);
	if (cid_out != NULL)
		*cid_out = req->correlation_id;
	return 0;
}

int sl_conn_own_unsent(struct sl_conn *c)
{
	size_t total = sl_conn_unsent(c), at = 0, own_at = c->wpos, cap = c->wcap ? c->wcap : BUF_BYTES_INITIAL;
	uint8_t *buf;

	if (c->ref_bytes == 0)
		return 0;
	/* A fresh buffer rather than wbuf grown in place: the runs of wbuf and the references interleave, and
	 * laying them out in order in a second buffer is one pass with no overlapping moves. */
	while (cap < total)
		cap *= 2;
	buf = malloc(cap);
	if (buf == NULL) {
		sl_conn_set_error(c, "out of memory copying %zu unsent bytes: closing the connection to broker %s:%s",
		                  total, c->addr.host, c->addr.port);
		sl_conn_close(c);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < c->segment_count; i++) {
		const struct sl_conn_segment *s = segment_at(c, i);

		if (s->ref != NULL) {
			memcpy(buf + at, s->ref, s->len);
		} else {
			memcpy(buf + at, c->wbuf + own_at, s->len);
			own_at += s->len;
		}
		at += s->len;
	}
	SL_ASSERT(at == total && own_at == c->wlen);
	free(c->wbuf);
	c->wbuf = buf;
	c->wcap = cap;
	c->wpos = 0;
	c->wlen = 0;
	c->segment_head = c->segment_count = 0;
	c->ref_bytes = 0;
	own_commit(c, total);
	return 0;
}

int sl_conn_release(struct sl_conn *c, const void *data, size_t len)
{
	uintptr_t lo = (uintptr_t)data, hi = lo + len;

	for (uint32_t i = 0; i < c->segment_count && c->ref_bytes > 0; i++) {
		const struct sl_conn_segment *s = segment_at(c, i);
		uintptr_t ref = (uintptr_t)s->ref;

		if (s->ref != NULL && ref < hi && ref + s->len > lo)
			return sl_conn_own_unsent(c);
	}
	return 0;
}

static int conn_lost(struct sl_conn *c, int err, const char *doing)
{
	sl_conn_set_error(c, "connection to broker %s:%s lost while %s: %s", c->addr.host, c->addr.port, doing,
	                  err == 0 ? "closed by the broker" : strerror(err));
	sl_conn_close(c);
	return err == 0 ? -ECONNRESET : -err;
}

/* TLS: encrypt the queue's segments a piece at a time into tls_out and send it, until the queue is empty or the
 * socket is full. */
static int write_some_tls(struct sl_conn *c)
{
	for (;;) {
		int rc = tls_send(c);

		if (rc != 0)
			return conn_lost(c, -rc, "sending");
		if (c->tls_out.len > 0)
			return 0; /* the socket is full */
		while (c->segment_count > 0 &&
		       c->tls_out.cap - c->tls_out.len >= TLS_PIECE_BYTES + TLS_PIECE_OVERHEAD_BYTES) {
			const struct sl_conn_segment *s = segment_at(c, 0);
			const uint8_t *p = s->ref != NULL ? s->ref : c->wbuf + c->wpos;
			size_t n = s->len < TLS_PIECE_BYTES ? s->len : TLS_PIECE_BYTES;

			if (sl_tls_encrypt(c->ssl, p, n) < 0) {
				sl_conn_set_error(c, "TLS encryption failed on the connection to broker %s:%s",
				                  c->addr.host, c->addr.port);
				sl_conn_close(c);
				return -EPROTO;
			}
			segments_consume(c, n);
		}
		if (c->tls_out.len == 0)
			break;
	}
	if (c->wpos == c->wlen)
		c->wpos = c->wlen = 0;
	return 0;
}

/* Write the queue's segments, up to WRITE_IOVECS_MAX per sendmsg, until it is empty or the socket is full. */
static int write_some(struct sl_conn *c)
{
	if (c->ssl != NULL)
		return write_some_tls(c);
	while (c->segment_count > 0) {
		struct iovec iov[WRITE_IOVECS_MAX];
		struct msghdr msg = {.msg_iov = iov};
		size_t own_at = c->wpos;
		ssize_t n;

		while (msg.msg_iovlen < c->segment_count && msg.msg_iovlen < WRITE_IOVECS_MAX) {
			const struct sl_conn_segment *s = segment_at(c, (uint32_t)msg.msg_iovlen);

			if (s->ref != NULL) {
				iov[msg.msg_iovlen].iov_base = (void *)s->ref;
			} else {
				iov[msg.msg_iovlen].iov_base = c->wbuf + own_at;
				own_at += s->len;
			}
			iov[msg.msg_iovlen].iov_len = s->len;
			msg.msg_iovlen++;
		}
		n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINTR)
				continue;
			return conn_lost(c, errno, "sending");
		}
		segments_consume(c, (size_t)n);
	}
	if (c->wpos == c->wlen)
		c->wpos = c->wlen = 0;
	return 0;
}

/* TLS: decrypt what arrived into rbuf, until the session has nothing more for now. */
static int read_some_tls(struct sl_conn *c)
{
	size_t got = 0;

	for (;;) {
		char err[SL_ERROR_BYTES];
		uint32_t frame_len;
		size_t want = READ_CHUNK_BYTES;
		ssize_t n;
		int rc;

		if (sl_frame_length(c->rbuf + c->rpos, c->rlen - c->rpos, c->frame_bytes_max, &frame_len) == 0 &&
		    SL_FRAME_HEADER_BYTES + (size_t)frame_len > c->rlen - c->rpos + want)
			want = SL_FRAME_HEADER_BYTES + (size_t)frame_len - (c->rlen - c->rpos);
		rc = buf_reserve(&c->rbuf, &c->rpos, &c->rlen, &c->rcap, want);
		if (rc != 0) {
			sl_conn_set_error(c, "out of memory reading a response");
			sl_conn_close(c);
			return rc;
		}
		n = sl_tls_read(c->ssl, c->rbuf + c->rlen, c->rcap - c->rlen, err, sizeof(err));
		if (n < 0 && n != -EAGAIN && got > 0)
			return 0; /* hand over what arrived first (an answer just before the close); the end comes next
			             call */
		if (n == -EAGAIN) {
			/* A read may have made the session answer (a key update): send that too. */
			rc = tls_send(c);
			return rc == 0 ? 0 : conn_lost(c, -rc, "sending");
		}
		if (n == -ECONNRESET)
			return conn_lost(c, 0, "receiving");
		if (n < 0) {
			sl_conn_set_error(c, "connection to broker %s:%s: %s", c->addr.host, c->addr.port, err);
			sl_conn_close(c);
			return -EPROTO;
		}
		c->rlen += (size_t)n;
		got += (size_t)n;
		if (c->rlen - c->rpos >= READ_CHUNK_BYTES * 4)
			return 0; /* enough for now: the caller takes frames; sl_tls_has_pending brings us back */
	}
}

static int read_some(struct sl_conn *c)
{
	if (c->ssl != NULL)
		return read_some_tls(c);
	for (;;) {
		uint32_t frame_len;
		size_t want = READ_CHUNK_BYTES;
		ssize_t n;
		int rc;

		/* Room for the rest of the frame being received, at least. */
		if (sl_frame_length(c->rbuf + c->rpos, c->rlen - c->rpos, c->frame_bytes_max, &frame_len) == 0 &&
		    SL_FRAME_HEADER_BYTES + (size_t)frame_len > c->rlen - c->rpos + want)
			want = SL_FRAME_HEADER_BYTES + (size_t)frame_len - (c->rlen - c->rpos);
		rc = buf_reserve(&c->rbuf, &c->rpos, &c->rlen, &c->rcap, want);
		if (rc != 0) {
			sl_conn_set_error(c, "out of memory reading a response");
			sl_conn_close(c);
			return rc;
		}
		n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			return conn_lost(c, errno, "receiving");
		}
		if (n == 0)
			return conn_lost(c, 0, "receiving");
		c->rlen += (size_t)n;
		if (c->rlen < c->rcap)
			return 0; /* the socket had less than the room: it is drained */
	}
}

int sl_conn_pump(struct sl_conn *c, int timeout_ms, int want_read)
{
	struct pollfd pfd;
	int rc;

	if (c->fd < 0)
		return -ENOTCONN;
	/* What the TLS session already received or decrypted is not on the socket: poll would not see it. */
	if (want_read && c->ssl != NULL && sl_tls_has_pending(c->ssl))
		return read_some(c);
	pfd.fd = c->fd;
	pfd.events = (short)((want_read ? POLLIN : 0) | (sl_conn_unsent(c) > 0 ? POLLOUT : 0));
	pfd.revents = 0;
	if (pfd.events == 0)
		return 0;
	rc = poll(&pfd, 1, timeout_ms);
	if (rc < 0)
		return errno == EINTR ? -EINTR : conn_lost(c, errno, "waiting");
	if (rc == 0)
		return 0;
	if (pfd.revents & POLLOUT) {
		rc = write_some(c);
		if (rc != 0)
			return rc;
	}
	if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
		return read_some(c);
	return 0;
}

int sl_conn_take(struct sl_conn *c, Synclog__Response **out)
{
	uint32_t len;
	int rc;

	if (c->fd < 0)
		return 0;
	rc = sl_frame_length(c->rbuf + c->rpos, c->rlen - c->rpos, c->frame_bytes_max, &len);
	if (rc == -EAGAIN)
		return 0;
	if (rc != 0) {
		sl_conn_set_error(c, "broker %s:%s sent a frame of invalid length (over %u bytes): closing",
		                  c->addr.host, c->addr.port, c->frame_bytes_max);
		sl_conn_close(c);
		return -EMSGSIZE;
	}
	if (c->rlen - c->rpos < SL_FRAME_HEADER_BYTES + (size_t)len)
		return 0;
	sl_arena_reset(&c->arena);
	*out = synclog__response__unpack(&c->arena.allocator, len, c->rbuf + c->rpos + SL_FRAME_HEADER_BYTES);
	c->rpos += SL_FRAME_HEADER_BYTES + (size_t)len;
	if (c->rpos == c->rlen)
		c->rpos = c->rlen = 0;
	if (*out == NULL) {
		sl_conn_set_error(c, "broker %s:%s sent a response that does not decode: closing", c->addr.host,
		                  c->addr.port);
		sl_conn_close(c);
		return -EPROTO;
	}
	return 1;
}

int sl_conn_call(struct sl_conn *c, Synclog__Request *req, Synclog__Response **out)
{
	uint64_t cid;
	int64_t deadline_ms;
	int rc;

	c->broker_error = 0;
	if (c->kafka != NULL)
		return sl_kafka_unsupported(c, "a synclog protocol request", "the call has no Kafka equivalent");
	if (c->fd < 0 && req->body_case != SYNCLOG__REQUEST__BODY_HELLO) {
		rc = sl_conn_connect(c);
		if (rc != 0)
			return rc;
	}
	rc = sl_conn_queue(c, req, &cid);
	if (rc != 0)
		return rc;
	deadline_ms = sl_clock_mono_ms() + c->io_timeout_ms;
	for (;;) {
		Synclog__Response *resp;

		while ((rc = sl_conn_take(c, &resp)) == 1) {
			if (resp->correlation_id == cid) {
				*out = resp;
				return 0;
			}
		}
		if (rc < 0)
			return rc;
		if (sl_clock_mono_ms() >= deadline_ms) {
			sl_conn_set_error(c, "broker %s:%s did not answer within %u ms: is it overloaded or stuck?",
			                  c->addr.host, c->addr.port, c->io_timeout_ms);
			sl_conn_close(c);
			return -ETIMEDOUT;
		}
		rc = sl_conn_pump(c, remaining_ms(deadline_ms), 1);
		if (rc != 0)
			return rc;
	}
}
