/* The Kafka listener's connections: libuv owns the sockets; each connection is read into a buffer and cut into
 * frames (a 4-byte big-endian size, as the native protocol), each frame is decoded (decode.h) and served
 * (apis.c), and responses are written in the order the requests arrived (kafka_impl.h, invariant 1). It shares
 * the native listener's limits: frame size, bytes and requests in flight per connection (past them the socket is
 * not read until responses go out), and the number of connections (one count for both listeners). Security is
 * the native listener's (broker/security.h, broker/tls.h): TLS decrypts into the same buffers, the connection has
 * a session of its own whose principal SASL (sasl.c) or a client certificate sets and every request's session
 * copies, and a quota's throttle time holds the responses back in their order. A Fetch answer to a plaintext
 * connection sends its records from the segment files through a pipe by splices (broker/sendfile.h), in its turn
 * (kafka_impl.h invariant 5); TLS keeps the copy. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/dispatch.h"
#include "broker/kafka/kafka_impl.h"
#include "broker/tls.h"
#include "proto/base/assert.h"
#include "proto/base/clock.h"
#include "proto/base/slog.h"
#include "proto/frame.h"

/* The shared read buffer of a connection: small requests (metadata, heartbeats, fetches) arrive many per read. */
#define READ_BUFFER_BYTES            (64u * 1024)
/* Frames above this are read into a buffer of their own, so a produced batch goes from the socket to the disk
 * without another copy; smaller ones are copied out of the read buffer (the request keeps its frame). Half the
 * read buffer, so such a frame always fits behind a partial read of the one before it. */
#define FRAME_SHARED_BYTES_MAX       (READ_BUFFER_BYTES / 2 - SL_FRAME_HEADER_BYTES)
/* After a large frame, the next read asks for only this much, as the native listener does: a producer's next
 * frame is likely large too, and what of it lands in rbuf is copied into its own buffer. A full 64 KiB read there
 * copied up to 64 KiB of every produce request of librdkafka (about 50 to 150 KiB each at 100-byte records, where
 * the copy was 2.7% of the broker's CPU samples); 4 KiB still holds a run of small requests (heartbeats, metadata,
 * fetches). */
#define READ_PROBE_BYTES             (4u * 1024)
/* Decoded structures of one request may take this much: four times its frame (a frame of names decodes to
 * pointers and copies of about its size; decode.c invariant 2) plus a little for tiny frames. Past it the
 * request is refused, so a hostile frame of empty strings cannot multiply its size in the broker's memory. */
#define ARENA_BYTES_MAX(frame_bytes) (4 * (size_t)(frame_bytes) + 64 * 1024)
_Static_assert(FRAME_SHARED_BYTES_MAX + SL_FRAME_HEADER_BYTES <= READ_BUFFER_BYTES / 2, "small frames fit rbuf");

struct sl_kafka_conn {
	uv_tcp_t tcp;
	struct sl_kafka *k;
	struct sl_server *srv;
	struct sl_kafka_conn *prev, *next;
	char peer[64];
	uint8_t *rbuf; /* READ_BUFFER_BYTES */
	size_t rlen;
	uint8_t *fbuf; /* a large frame being read into its own buffer */
	size_t fbuf_need;
	size_t fbuf_have;
	struct sl_kafka_req *qhead, *qtail; /* not yet written, in arrival order */
	int closing;                        /* 1: uv_close called; 2: handle closed */
	int read_paused;
	int processing;       /* inside conn_process: a resume must not cut frames under it */
	int last_frame_large; /* the previous frame had its own buffer: probe the next with a short read */
	uint32_t refs;        /* requests alive */
	uint64_t inflight_bytes;
	/* Security (kafka_impl.h). */
	struct sl_session session;
	enum sl_kafka_sasl sasl;
	int sasl_unframed;       /* SaslHandshake v0: frames are SASL tokens while sasl is SCRAM or PLAIN */
	struct sl_tls_conn *tls; /* NULL: plaintext */
	int tls_checked;
	uint32_t tls_writes;                /* handshake writes in flight, each holding the connection */
	uv_timer_t *throttle_timer;         /* a quota holds the responses back; freed in its close callback */
	uint32_t writes_pending;            /* responses handed to uv_write and not yet called back */
	struct sl_kafka_req *files_sending; /* the answer on its way from files, at most one (invariant 5) */
	uint32_t files_answers;             /* requests holding a reservation of the pool, or sending from files */
};

/* A write of TLS output that belongs to no response (the handshake's messages). */
struct tls_write {
	uv_write_t w;
	struct sl_kafka_conn *c;
	uint8_t *bytes;
};

/* A handler request of this front end: the handlers' part first. */
struct kafka_sub {
	struct sl_req req;
	struct sl_kafka_req *kr;
	uint32_t index;
};

static void conn_update_reading(struct sl_kafka_conn *c);
static void conn_flush(struct sl_kafka_conn *c);

void sl_kafka_log(const struct sl_kafka_req *kr, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "synclogd: kafka %s: %s v%d (client '%s'): %s\n", kr->conn->peer,
	        sl_kafka_api_name(kr->rq.api_key), kr->rq.api_version, kr->rq.client_id ? kr->rq.client_id : "", msg);
}

/* ---- connections ---- */

static void conn_free_if_done(struct sl_kafka_conn *c)
{
	if (c->closing == 2 && c->refs == 0 && c->tls_writes == 0 && c->throttle_timer == NULL) {
		sl_tls_conn_free(c->tls);
		free(c->rbuf);
		sl_frame_pool_put(&c->k->frame_pool, c->fbuf);
		free(c);
	}
}

static void conn_free_cb(uv_handle_t *h)
{
	struct sl_kafka_conn *c = h->data;
	c->closing = 2;
	conn_free_if_done(c);
}

static void req_maybe_free(struct sl_kafka_req *kr);

static void throttle_timer_free_cb(uv_handle_t *h)
{
	struct sl_kafka_conn *c = h->data;
	free(h);
	c->throttle_timer = NULL;
	conn_free_if_done(c);
}

static void conn_close(struct sl_kafka_conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	struct sl_server *srv = c->srv;
	if (c->prev)
		c->prev->next = c->next;
	else
		c->k->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->stats.connections_open--;
	sl_limits_connection_closed(&srv->limits);
	/* Nothing more is written: every queued request is dropped, its parked subs answered into nothing. */
	for (struct sl_kafka_req *kr = c->qhead; kr; kr = kr->next) {
		kr->dropped = 1;
		sl_req_cancel_all(&kr->session, 1);
	}
	while (c->qhead) {
		struct sl_kafka_req *kr = c->qhead;
		c->qhead = kr->next;
		kr->popped = 1;
		req_maybe_free(kr);
	}
	c->qtail = NULL;
	/* The answer on its way from files stops at its next step; its done callback still runs. */
	if (c->files_sending != NULL)
		sl_sendfile_abort(c->files_sending->sf);
	sl_security_session_end(srv, &c->session);
	if (c->throttle_timer != NULL)
		uv_close((uv_handle_t *)c->throttle_timer, throttle_timer_free_cb);
	uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
}

static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct sl_kafka_conn *c = h->data;
	(void)suggested;
	if (c->tls != NULL) {
		size_t cap;
		buf->base = (char *)sl_tls_conn_read_buffer(c->tls, &cap);
		buf->len = cap;
		return;
	}
	if (c->fbuf != NULL) {
		/* The rest of a large frame and not a byte more: the next frame starts in rbuf. */
		buf->base = (char *)c->fbuf + c->fbuf_have;
		buf->len = c->fbuf_need - c->fbuf_have;
		return;
	}
	if (c->rbuf == NULL)
		c->rbuf = malloc(READ_BUFFER_BYTES);
	buf->base = (char *)c->rbuf + c->rlen;
	buf->len = c->rbuf ? READ_BUFFER_BYTES - c->rlen : 0;
	if (c->last_frame_large && c->rlen == 0 && buf->len > READ_PROBE_BYTES)
		buf->len = READ_PROBE_BYTES;
}

static void dispatch(struct sl_kafka_conn *c, uint8_t *frame, uint32_t len, int pooled);

/* Cut the buffered bytes into frames. A size that can never be valid ends the connection: there is no way to
 * find the next frame. */
static void conn_process(struct sl_kafka_conn *c)
{
	size_t at = 0;
	c->processing = 1;
	while (!c->closing && !c->read_paused && c->fbuf == NULL) {
		uint32_t len;
		int rc = sl_frame_length(c->rbuf + at, c->rlen - at, c->srv->cfg.frame_bytes_max, &len);
		if (rc == -EAGAIN)
			break;
		if (rc < 0) {
			c->srv->stats.bad_frames++;
			fprintf(stderr,
			        "synclogd: kafka %s: request size out of range (1 to %u bytes, --frame-bytes-max): "
			        "closing connection\n",
			        c->peer, c->srv->cfg.frame_bytes_max);
			conn_close(c);
			return;
		}
		size_t have = c->rlen - at - SL_FRAME_HEADER_BYTES;
		if (len <= FRAME_SHARED_BYTES_MAX && have < len)
			break; /* rbuf will hold it whole once the bytes before it are dropped */
		/* Large frames (a produced batch) come from the pool: a fresh buffer above glibc's mmap threshold
		 * would fault in and clear every page (frame_pool.c). */
		int pooled = len > FRAME_SHARED_BYTES_MAX;
		c->last_frame_large = pooled;
		uint8_t *fb = pooled ? sl_frame_pool_get(&c->k->frame_pool, len) : malloc(len);
		if (fb == NULL) {
			fprintf(stderr, "synclogd: kafka %s: out of memory for a request of %u bytes: closing\n",
			        c->peer, len);
			conn_close(c);
			return;
		}
		if (have > len)
			have = len;
		memcpy(fb, c->rbuf + at + SL_FRAME_HEADER_BYTES, have);
		at += SL_FRAME_HEADER_BYTES + have;
		if (have < len) {
			/* The rest is read straight into the frame's own buffer. */
			c->fbuf = fb;
			c->fbuf_need = len;
			c->fbuf_have = have;
			break;
		}
		dispatch(c, fb, len, pooled);
		conn_update_reading(c);
	}
	if (at > 0 && !c->closing) {
		memmove(c->rbuf, c->rbuf + at, c->rlen - at);
		c->rlen -= at;
	}
	c->processing = 0;
}

/* n plaintext bytes arrived where conn_alloc_cb (or conn_tls_pump) put them. */
static void conn_received(struct sl_kafka_conn *c, size_t n)
{
	if (c->fbuf != NULL) {
		c->fbuf_have += n;
		SL_ASSERT(c->fbuf_have <= c->fbuf_need);
		if (c->fbuf_have < c->fbuf_need)
			return;
		uint8_t *fb = c->fbuf;
		c->fbuf = NULL;
		dispatch(c, fb, (uint32_t)c->fbuf_need, 1); /* only large frames are read into their own buffer */
		conn_update_reading(c);
		if (!c->closing && !c->read_paused && !c->processing)
			conn_process(c);
		return;
	}
	c->rlen += n;
	conn_process(c);
}

static void tls_write_cb(uv_write_t *w, int status)
{
	struct tls_write *tw = (struct tls_write *)w;
	struct sl_kafka_conn *c = tw->c;
	free(tw->bytes);
	free(tw);
	SL_ASSERT(c->tls_writes > 0);
	c->tls_writes--;
	if (status < 0)
		conn_close(c);
	conn_free_if_done(c);
}

/* Send the TLS output no response owns (handshake messages, alerts, session tickets), before anything later. */
static void conn_tls_flush(struct sl_kafka_conn *c)
{
	size_t len;
	uint8_t *p = sl_tls_conn_take_output(c->tls, &len);
	if (p == NULL)
		return;
	struct tls_write *tw = c->closing ? NULL : malloc(sizeof(*tw));
	if (tw == NULL) {
		free(p);
		conn_close(c);
		return;
	}
	tw->c = c;
	tw->bytes = p;
	c->tls_writes++;
	uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
	if (uv_write(&tw->w, (uv_stream_t *)&c->tcp, &b, 1, tls_write_cb) != 0) {
		c->tls_writes--;
		free(p);
		free(tw);
		conn_close(c);
	}
}

/* The handshake just finished: a client certificate the CA vouched for names the principal (security.h). */
static int conn_tls_established(struct sl_kafka_conn *c)
{
	char cn[256], err[256];
	c->tls_checked = 1;
	if (!sl_tls_conn_peer_cn(c->tls, cn, sizeof(cn)))
		return 0;
	if (sl_user_name_check(cn) != 0) {
		sl_slog_msg(SL_SLOG_WARN, "certificate_principal_invalid",
		            "kafka %s: client certificate CN '%.64s' is not a valid principal name; the connection "
		            "must authenticate with SASL",
		            c->peer, cn);
		return 0;
	}
	if (sl_security_session_authenticated(c->srv, &c->session, cn, "TLS", err, sizeof(err)) < 0) {
		sl_security_auth_failed(c->srv, &c->session, cn, err);
		return -1;
	}
	return 0;
}

/* TLS: decrypt into rbuf or the large frame's buffer, as the plaintext path reads, until the engine needs more
 * ciphertext or the connection pushes back. */
static void conn_tls_pump(struct sl_kafka_conn *c)
{
	while (!c->closing && !c->read_paused && !c->processing) {
		uint8_t *dst;
		size_t cap;
		if (c->fbuf != NULL) {
			dst = c->fbuf + c->fbuf_have;
			cap = c->fbuf_need - c->fbuf_have;
		} else {
			if (c->rbuf == NULL && (c->rbuf = malloc(READ_BUFFER_BYTES)) == NULL) {
				conn_close(c);
				return;
			}
			dst = c->rbuf + c->rlen;
			cap = READ_BUFFER_BYTES - c->rlen;
		}
		const char *why = "";
		ssize_t n = cap > 0 ? sl_tls_conn_read(c->tls, dst, cap, &why) : 0;
		conn_tls_flush(c);
		if (n < 0) {
			if (n != -ECONNRESET)
				sl_slog_msg(SL_SLOG_WARN, "tls_failed", "kafka %s: %s: closing connection", c->peer,
				            why);
			conn_close(c);
			return;
		}
		if (!c->tls_checked && sl_tls_conn_handshake_done(c->tls) && conn_tls_established(c) < 0) {
			conn_close(c);
			return;
		}
		if (n == 0)
			return;
		conn_received(c, (size_t)n);
	}
}

static void conn_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct sl_kafka_conn *c = s->data;
	(void)buf;
	if (n == UV_ENOBUFS && c->tls != NULL) {
		conn_tls_pump(c); /* the engine's buffer was full: decrypt some before reading more */
		return;
	}
	if (n < 0) {
		conn_close(c);
		return;
	}
	if (c->tls != NULL) {
		sl_tls_conn_received(c->tls, (size_t)n);
		conn_tls_pump(c);
		return;
	}
	conn_received(c, (size_t)n);
}

/* Backpressure: stop reading while the connection holds too much unanswered work or unsent responses. */
static void conn_update_reading(struct sl_kafka_conn *c)
{
	const struct sl_server_config *cfg = &c->srv->cfg;
	if (c->closing || c->srv->shutting_down)
		return;
	int over = c->inflight_bytes >= cfg->conn_inflight_bytes_max || c->refs >= cfg->conn_inflight_requests_max ||
	           sl_security_inflight_over(c->srv, &c->session);
	if (over && !c->read_paused) {
		c->read_paused = 1;
		uv_read_stop((uv_stream_t *)&c->tcp);
	} else if (!over && c->read_paused && c->inflight_bytes <= cfg->conn_inflight_bytes_max / 2) {
		c->read_paused = 0;
		uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb);
		if (!c->processing) {
			conn_process(c); /* frames buffered while paused go first */
			if (c->tls != NULL)
				conn_tls_pump(c);
		}
	}
}

/* The principal fell back under its bound of bytes in flight (security.h rule 5). */
static void conn_wake_cb(struct sl_session *s)
{
	struct sl_kafka_conn *c = (struct sl_kafka_conn *)((char *)s - offsetof(struct sl_kafka_conn, session));
	conn_update_reading(c);
}

static void on_connection(uv_stream_t *listener, int status)
{
	struct sl_kafka *k = listener->data;
	struct sl_server *srv = k->srv;
	if (status < 0)
		return;
	struct sl_kafka_conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return;
	uv_tcp_init(&srv->loop, &c->tcp);
	c->tcp.data = c;
	c->k = k;
	c->srv = srv;
	c->closing = 1; /* not on the list until accepted */
	if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
		uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
		return;
	}
	/* One limit for both listeners: connections_max counts native and Kafka connections together
	 * (broker/limits.h, which may have lowered it to fit the descriptor limit). */
	if (sl_limits_connections_full(&srv->limits) || srv->shutting_down) {
		srv->stats.connections_refused++;
		fprintf(stderr, "synclogd: kafka: connection refused: %u connections open (--connections-max)\n",
		        srv->stats.connections_open);
		uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
		return;
	}
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	int have_peer = uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0;
	/* The same rate limit of attempts per address as the native listener (security.h); a TLS session. */
	if (sl_security_connection_allowed(srv, have_peer ? (struct sockaddr *)&ss : NULL) < 0 ||
	    (srv->tls != NULL && (c->tls = sl_tls_conn_new(srv->tls)) == NULL)) {
		srv->stats.connections_refused++;
		uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
		return;
	}
	c->closing = 0;
	snprintf(c->peer, sizeof(c->peer), "client");
	if (have_peer && (ss.ss_family == AF_INET || ss.ss_family == AF_INET6))
		sl_addr_format((struct sockaddr *)&ss, c->peer, sizeof(c->peer));
	snprintf(c->session.peer, sizeof(c->session.peer), "%s", c->peer);
	c->session.hello_done = 1;
	c->session.wake_cb = conn_wake_cb;
	uv_tcp_nodelay(&c->tcp, 1);
	c->next = k->conns;
	if (k->conns)
		k->conns->prev = c;
	k->conns = c;
	srv->stats.connections_open++;
	srv->stats.connections_accepted++;
	sl_limits_connection_opened(&srv->limits);
	uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb);
}

/* ---- requests ---- */

/* ---- answers from files (kafka_impl.h invariant 5, broker/sendfile.h) ---- */

/* request.h: may this sub's answer carry file_count spans by reference? Only a Fetch on a plaintext connection
 * with --fetch-zero-copy on; the first sub to say yes takes the request's answer of the shard's pool, the others
 * add their files to it. Past the pool's pipes and descriptors (sendfile.h invariant 3) or past
 * SL_SENDFILE_CONN_ANSWERS_MAX of its connection the sub's records are read into memory, as with TLS. */
static int sub_files_reserve(struct sl_req *req, uint32_t file_count)
{
	struct sl_kafka_req *kr = ((struct kafka_sub *)req)->kr;
	struct sl_kafka_conn *c = kr->conn;
	struct sl_sendfile_pool *pool = &kr->srv->sendfile_pool;
	if (!kr->srv->cfg.fetch_zero_copy || c->tls != NULL || c->closing || kr->dropped ||
	    kr->rq.api_key != SL_KAFKA_FETCH)
		return -EOPNOTSUPP;
	if (!kr->files_reserved && c->files_answers >= SL_SENDFILE_CONN_ANSWERS_MAX)
		return -EAGAIN;
	/* Room for every file reserved, so that part_cb never fails to take one. */
	uint32_t cap = kr->files_reserved_count + file_count;
	if (cap > kr->file_cap) {
		struct sl_kafka_file *files = realloc(kr->files, cap * sizeof(*files));
		if (files == NULL)
			return -ENOMEM;
		kr->files = files;
		kr->file_cap = cap;
	}
	int rc =
	        kr->files_reserved ? sl_sendfile_reserve_more(pool, file_count) : sl_sendfile_reserve(pool, file_count);
	if (rc < 0)
		return rc;
	if (!kr->files_reserved)
		c->files_answers++;
	kr->files_reserved = 1;
	kr->files_reserved_count += file_count;
	return 0;
}

void sl_kafka_req_file_add(struct sl_kafka_req *kr, uint32_t part, struct sl_req_file *f)
{
	SL_ASSERT(kr->files_reserved && kr->file_count < kr->file_cap && part < kr->part_count && f->fd >= 0);
	kr->files[kr->file_count++] = (struct sl_kafka_file){part, kr->parts[part].len, f->fd, f->pos, f->len};
	f->fd = -1;
}

/* The reservation kr holds, given back: no send took it (dropped, or every span was left out). */
static void files_unreserve(struct sl_kafka_req *kr)
{
	if (!kr->files_reserved)
		return;
	kr->files_reserved = 0;
	sl_sendfile_unreserve(&kr->srv->sendfile_pool, kr->files_reserved_count);
	SL_ASSERT(kr->conn->files_answers > 0);
	kr->conn->files_answers--;
}

static void files_close(struct sl_kafka_req *kr)
{
	for (uint32_t i = 0; i < kr->file_count; i++) {
		if (kr->files[i].fd >= 0) {
			close(kr->files[i].fd);
			kr->files[i].fd = -1;
		}
	}
}

static void files_done_cb(struct sl_sendfile *sf, int status)
{
	struct sl_kafka_req *kr = sf->data;
	struct sl_kafka_conn *c = kr->conn;
	SL_ASSERT(c->files_sending == kr && c->files_answers > 0);
	c->files_sending = NULL;
	c->files_answers--;
	sl_sendfile_count(sf, status, &kr->srv->stats);
	if (status < 0) {
		/* A client that goes away mid-answer is no news (the read side usually sees it first: closing). */
		if (!c->closing && status != -EPIPE && status != -ECONNRESET)
			sl_kafka_log(kr,
			             "sending the answer from the segment files failed (%s): closing the connection",
			             strerror(-status));
	}
	free(sf);
	kr->sf = NULL;
	kr->writing = 0;
	if (status < 0 || kr->close_after)
		conn_close(c);
	else
		conn_flush(c); /* the answers behind it */
	req_maybe_free(kr);
}

static int file_order(const void *a, const void *b)
{
	const struct sl_kafka_file *x = a, *y = b;
	if (x->part != y->part)
		return x->part < y->part ? -1 : 1;
	return x->at < y->at ? -1 : x->at > y->at;
}

static void sf_add_mem(struct sl_sendfile *sf, const uint8_t *mem, size_t len)
{
	if (len > 0)
		sf->parts[sf->part_count++] = (struct sl_sendfile_part){mem, -1, 0, len};
}

/* Send kr's response (its size patched in) as parts: head, each part cut where its spans go, tail. The memory
 * parts are kr's own buffers, which live until kr is freed, after the send. Nothing is in flight on the socket
 * (conn_flush waited). A start that fails sent nothing, but the records are not in memory to send otherwise: the
 * connection closes and the client asks again. */
static void req_write_files(struct sl_kafka_req *kr)
{
	struct sl_kafka_conn *c = kr->conn;
	SL_ASSERT(c->tls == NULL && c->writes_pending == 0 && c->files_sending == NULL && kr->files_reserved);
	/* Subs answer in any order: their spans are put in the order of the parts. */
	qsort(kr->files, kr->file_count, sizeof(*kr->files), file_order);
	uint32_t parts_max = 2 + kr->part_count + 2 * kr->file_count;
	struct sl_sendfile *sf = calloc(1, sizeof(*sf) + parts_max * sizeof(struct sl_sendfile_part));
	uv_os_fd_t fd = -1;
	if (sf == NULL || uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0) {
		free(sf);
		kr->srv->stats.fetch_sendfile_failed++;
		sl_kafka_log(kr, "cannot send the answer from the segment files (%s): closing the connection",
		             sf == NULL ? "out of memory" : "no socket");
		conn_close(c); /* kr's files and reservation go back when it is freed */
		return;
	}
	sf->parts = (struct sl_sendfile_part *)(sf + 1);
	sf->data = kr;
	sf_add_mem(sf, kr->head.buf, kr->head.len);
	uint32_t f = 0;
	for (uint32_t i = 0; i < kr->part_count; i++) {
		size_t from = 0;
		for (; f < kr->file_count && kr->files[f].part == i; f++) {
			struct sl_kafka_file *kf = &kr->files[f];
			SL_ASSERT(kf->at >= from && kf->at <= kr->parts[i].len);
			sf_add_mem(sf, kr->parts[i].buf + from, kf->at - from);
			sf->parts[sf->part_count++] = (struct sl_sendfile_part){NULL, kf->fd, kf->pos, kf->len};
			kf->fd = -1; /* the send's to close now */
			from = kf->at;
		}
		sf_add_mem(sf, kr->parts[i].buf + from, kr->parts[i].len - from);
	}
	sf_add_mem(sf, kr->tail.buf, kr->tail.len);
	SL_ASSERT(f == kr->file_count && sf->part_count <= parts_max);
	uint32_t files = kr->files_reserved_count;
	kr->files_reserved = 0; /* the send's now: given back when it ends */
	kr->sf = sf;
	kr->writing = 1;
	c->files_sending = kr;
	int rc = sl_sendfile_start(sf, &kr->srv->sendfile_pool, &kr->srv->ring, fd, files, files_done_cb);
	if (rc < 0) {
		/* The start closed the files and gave the reservation back. */
		c->files_sending = NULL;
		c->files_answers--;
		kr->sf = NULL;
		kr->writing = 0;
		free(sf);
		kr->srv->stats.fetch_sendfile_failed++;
		sl_kafka_log(kr, "cannot send the answer from the segment files (%s): closing the connection",
		             strerror(-rc));
		conn_close(c);
	}
}

static void req_free(struct sl_kafka_req *kr)
{
	struct sl_kafka_conn *c = kr->conn;
	uint64_t bytes = kr->frame_bytes + kr->head.len + kr->tail.len;
	for (uint32_t i = 0; i < kr->part_count; i++) {
		bytes += kr->parts[i].len;
		sl_kwrite_free(&kr->parts[i]);
	}
	free(kr->parts);
	SL_ASSERT(kr->sf == NULL);
	files_close(kr);
	files_unreserve(kr);
	free(kr->files);
	sl_kwrite_free(&kr->head);
	sl_kwrite_free(&kr->tail);
	sl_kafka_arena_free(&kr->arena);
	free(kr->tls_out);
	sl_security_inflight_release(kr->srv, kr->charged, kr->frame_bytes);
	if (kr->frame_pooled)
		sl_frame_pool_put(&c->k->frame_pool, kr->frame);
	else
		free(kr->frame);
	free(kr);
	SL_ASSERT(c->refs > 0);
	c->refs--;
	/* Response bytes were added when the request was answered; frame bytes when it was read. */
	c->inflight_bytes = c->inflight_bytes > bytes ? c->inflight_bytes - bytes : 0;
	if (c->closing == 2)
		conn_free_if_done(c);
	else if (!c->closing)
		conn_update_reading(c);
}

/* Invariant 2. */
static void req_maybe_free(struct sl_kafka_req *kr)
{
	if (kr->popped && !kr->writing && kr->subs_alive == 0)
		req_free(kr);
}

static void write_cb(uv_write_t *w, int status)
{
	struct sl_kafka_req *kr = w->data;
	struct sl_kafka_conn *c = kr->conn;
	kr->writing = 0;
	SL_ASSERT(c->writes_pending > 0);
	c->writes_pending--;
	if (status < 0 || kr->close_after)
		conn_close(c);
	else if (c->writes_pending == 0)
		conn_flush(c); /* an answer from files waits for the writes before it */
	req_maybe_free(kr);
}

/* TLS: the response's pieces go through the engine, and the ciphertext out as one buffer. Returns 0, or -1 after
 * closing the connection. */
static int req_write_tls(struct sl_kafka_req *kr, const uv_buf_t *bufs, size_t n, size_t total)
{
	struct sl_kafka_conn *c = kr->conn;
	conn_tls_flush(c); /* whatever the engine wrote before goes first */
	int rc = sl_tls_conn_reserve(c->tls, total);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = sl_tls_conn_write(c->tls, bufs[i].base, bufs[i].len);
	size_t len = 0;
	kr->tls_out = rc == 0 ? sl_tls_conn_take_output(c->tls, &len) : NULL;
	if (kr->tls_out == NULL) {
		conn_close(c);
		return -1;
	}
	kr->write.data = kr;
	kr->writing = 1;
	uv_buf_t b = uv_buf_init((char *)kr->tls_out, (unsigned)len);
	if (uv_write(&kr->write, (uv_stream_t *)&c->tcp, &b, 1, write_cb) != 0) {
		kr->writing = 0;
		conn_close(c);
		return -1;
	}
	c->writes_pending++;
	return 0;
}

/* Queue the response of kr to the socket: head (with the frame size patched in), parts, tail. */
static void req_write(struct sl_kafka_req *kr)
{
	struct sl_kafka_conn *c = kr->conn;
	int err = kr->head.err || kr->tail.err;
	size_t total = kr->head.len + kr->tail.len;
	for (uint32_t i = 0; i < kr->part_count; i++) {
		err |= kr->parts[i].err;
		total += kr->parts[i].len;
	}
	for (uint32_t i = 0; i < kr->file_count; i++)
		total += kr->files[i].len;
	/* The head holds at least the size and the correlation id; an unframed SASL token has only the size. */
	size_t head_min = kr->sasl_unframed ? SL_FRAME_HEADER_BYTES : 8;
	if (err || kr->head.len < head_min || total - SL_FRAME_HEADER_BYTES > INT32_MAX) {
		sl_kafka_log(kr, "out of memory encoding the response: closing the connection");
		conn_close(c);
		return;
	}
	sl_kwrite_put_i32(&kr->head, 0, (int32_t)(total - SL_FRAME_HEADER_BYTES));
	if (kr->file_count > 0) {
		req_write_files(kr);
		return;
	}
	files_unreserve(kr); /* every span it reserved for was left out (max_bytes): a plain write */
	uv_buf_t stack_bufs[8];
	uv_buf_t *bufs = stack_bufs;
	size_t n = 0, cap = kr->part_count + 2;
	if (cap > 8 && (bufs = malloc(cap * sizeof(*bufs))) == NULL) {
		conn_close(c);
		return;
	}
	bufs[n++] = uv_buf_init((char *)kr->head.buf, (unsigned)kr->head.len);
	for (uint32_t i = 0; i < kr->part_count; i++)
		if (kr->parts[i].len > 0)
			bufs[n++] = uv_buf_init((char *)kr->parts[i].buf, (unsigned)kr->parts[i].len);
	if (kr->tail.len > 0)
		bufs[n++] = uv_buf_init((char *)kr->tail.buf, (unsigned)kr->tail.len);
	if (c->tls != NULL) {
		req_write_tls(kr, bufs, n, total);
		if (bufs != stack_bufs)
			free(bufs);
		return;
	}
	kr->write.data = kr;
	kr->writing = 1;
	/* libuv copies the array of buffers, not the bytes: those stay with kr until write_cb. */
	int rc = uv_write(&kr->write, (uv_stream_t *)&c->tcp, bufs, (unsigned)n, write_cb);
	if (bufs != stack_bufs)
		free(bufs);
	if (rc != 0) {
		kr->writing = 0;
		conn_close(c);
		return;
	}
	c->writes_pending++;
}

static void throttle_timer_cb(uv_timer_t *t)
{
	conn_flush(t->data);
}

/* A quota's throttle time (security.h rule 4): 1 while responses must wait, with a timer set for its end. */
static int conn_throttled(struct sl_kafka_conn *c)
{
	if (c->session.sec.throttle_until_ms == 0)
		return 0; /* never throttled, or the last throttle ended: no clock read per request */
	int64_t left = c->session.sec.throttle_until_ms - sl_clock_mono_ms();
	if (left <= 0 || c->srv->shutting_down) {
		if (left <= 0)
			c->session.sec.throttle_until_ms = 0;
		return 0;
	}
	if (c->throttle_timer == NULL) {
		c->throttle_timer = malloc(sizeof(*c->throttle_timer));
		if (c->throttle_timer == NULL)
			return 0; /* no timer: the response goes now rather than never */
		uv_timer_init(&c->srv->loop, c->throttle_timer);
		c->throttle_timer->data = c;
	}
	uv_timer_start(c->throttle_timer, throttle_timer_cb, (uint64_t)left, 0);
	return 1;
}

/* Send every answered request at the front of the queue (invariant 1), unless a quota holds them back. */
static void conn_flush(struct sl_kafka_conn *c)
{
	if (c->closing || conn_throttled(c))
		return;
	while (!c->closing && c->qhead && c->qhead->answered && c->files_sending == NULL) {
		struct sl_kafka_req *kr = c->qhead;
		/* Invariant 5: an answer from files waits for the writes before it (write_cb flushes again). */
		if (kr->file_count > 0 && c->writes_pending > 0)
			break;
		c->qhead = kr->next;
		if (c->qhead == NULL)
			c->qtail = NULL;
		kr->popped = 1;
		if (!kr->no_response)
			req_write(kr);
		req_maybe_free(kr);
	}
}

void sl_kafka_req_answer(struct sl_kafka_req *kr)
{
	SL_ASSERT(!kr->answered);
	kr->answered = 1;
	if (kr->popped) {
		req_maybe_free(kr); /* dropped with its connection */
		return;
	}
	struct sl_kafka_conn *c = kr->conn;
	c->inflight_bytes += kr->head.len + kr->tail.len;
	for (uint32_t i = 0; i < kr->part_count; i++)
		c->inflight_bytes += kr->parts[i].len;
	/* The quota charged this request's subs on its own session: the connection holds its responses. */
	if (kr->session.sec.throttle_until_ms > c->session.sec.throttle_until_ms)
		c->session.sec.throttle_until_ms = kr->session.sec.throttle_until_ms;
	conn_flush(c);
}

void sl_kafka_req_close_after(struct sl_kafka_req *kr)
{
	kr->close_after = 1;
}

struct sl_session *sl_kafka_conn_session(struct sl_kafka_conn *c)
{
	return &c->session;
}

int sl_kafka_conn_tls(const struct sl_kafka_conn *c)
{
	return c->tls != NULL;
}

enum sl_kafka_sasl sl_kafka_conn_sasl(const struct sl_kafka_conn *c)
{
	return c->sasl;
}

void sl_kafka_conn_sasl_unframed_set(struct sl_kafka_conn *c)
{
	c->sasl_unframed = 1;
}

void sl_kafka_conn_sasl_set(struct sl_kafka_conn *c, enum sl_kafka_sasl state)
{
	c->sasl = state;
}

int sl_kafka_allows(struct sl_kafka_req *kr, enum sl_acl_resource r, const char *name, enum sl_acl_op op)
{
	return sl_security_session_allows(kr->srv, &kr->session, r, name, op);
}

void sl_kafka_req_close_conn(struct sl_kafka_req *kr)
{
	conn_close(kr->conn);
}

void sl_kafka_head_begin(struct sl_kafka_req *kr, int tagged)
{
	sl_kwrite_i32(&kr->head, 0); /* size, patched in req_write */
	sl_kwrite_i32(&kr->head, kr->rq.correlation_id);
	if (tagged)
		sl_kwrite_uvarint(&kr->head, 0);
}

/* ---- subs: this front end's side of request.h ---- */

static void subs_done(struct sl_kafka_req *kr)
{
	if (!kr->dropped && kr->done_cb)
		kr->done_cb(kr);
	sl_kafka_req_answer(kr);
}

static void sub_send(struct sl_req *req)
{
	struct kafka_sub *s = (struct kafka_sub *)req;
	struct sl_kafka_req *kr = s->kr;
	if (req->resp.throttle_time_ms > kr->throttle_ms)
		kr->throttle_ms = req->resp.throttle_time_ms;
	if (!kr->dropped && kr->part_cb)
		kr->part_cb(kr, s->index, req);
	SL_ASSERT(kr->subs_open > 0);
	if (--kr->subs_open == 0)
		subs_done(kr);
}

static void sub_finish(struct sl_req *req)
{
	struct kafka_sub *s = (struct kafka_sub *)req;
	struct sl_kafka_req *kr = s->kr;
	free(s);
	SL_ASSERT(kr->subs_alive > 0);
	kr->subs_alive--;
	req_maybe_free(kr);
}

static const struct sl_req_frontend kafka_frontend = {
        .name = "kafka",
        .send = sub_send,
        .finish = sub_finish,
        .files_reserve = sub_files_reserve,
};

struct sl_req *sl_kafka_sub_new(struct sl_kafka_req *kr, uint32_t index)
{
	SL_ASSERT(index < kr->part_count);
	struct kafka_sub *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	sl_req_init(&s->req, kr->srv, &kafka_frontend, s, &kr->session);
	s->req.msg_borrowed = 1;
	s->kr = kr;
	s->index = index;
	kr->subs_alive++;
	return &s->req;
}

void sl_kafka_sub_dispatch(struct sl_req *sub)
{
	struct sl_kafka_req *kr = ((struct kafka_sub *)sub)->kr;
	kr->subs_open++;
	sl_dispatch(sub);
}

void sl_kafka_req_hold(struct sl_kafka_req *kr)
{
	kr->subs_alive++;
}

void sl_kafka_req_unhold(struct sl_kafka_req *kr)
{
	SL_ASSERT(kr->subs_alive > 0);
	kr->subs_alive--;
	req_maybe_free(kr);
}

void sl_kafka_sub_fail(struct sl_req *sub)
{
	sl_req_fail(sub, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory building the request");
	((struct kafka_sub *)sub)->kr->subs_open++;
	sl_req_respond(sub);
}

int sl_kafka_subs_check(struct sl_kafka_req *kr, uint64_t subs)
{
	if (subs <= SL_KAFKA_SUBS_MAX)
		return 0;
	sl_kafka_log(kr, "request names %llu topics or partitions, more than %d: closing the connection",
	             (unsigned long long)subs, SL_KAFKA_SUBS_MAX);
	conn_close(kr->conn);
	return -E2BIG;
}

int sl_kafka_req_begin_subs(struct sl_kafka_req *kr, uint32_t part_count)
{
	kr->parts = calloc(part_count ? part_count : 1, sizeof(*kr->parts));
	if (kr->parts == NULL)
		return -ENOMEM;
	kr->part_count = part_count;
	kr->subs_open++; /* invariant 4 */
	return 0;
}

void sl_kafka_req_end_subs(struct sl_kafka_req *kr)
{
	SL_ASSERT(kr->subs_open > 0);
	if (--kr->subs_open == 0)
		subs_done(kr);
}

/* Decode one frame (owned: the request keeps it) and serve it. */
static void dispatch(struct sl_kafka_conn *c, uint8_t *frame, uint32_t len, int pooled)
{
	struct sl_server *srv = c->srv;
	struct sl_kafka_req *kr = calloc(1, sizeof(*kr));
	if (kr == NULL) {
		if (pooled)
			sl_frame_pool_put(&c->k->frame_pool, frame);
		else
			free(frame);
		conn_close(c);
		return;
	}
	kr->conn = c;
	kr->srv = srv;
	kr->frame = frame;
	kr->frame_pooled = pooled;
	kr->frame_bytes = len;
	kr->arena.bytes_max = ARENA_BYTES_MAX(len);
	/* The Hello of the native protocol has no Kafka twin: a Kafka connection is ready from its first byte. */
	kr->session.hello_done = 1;
	/* Copied, not formatted: a snprintf here was 0.5% of the broker's CPU on librdkafka's produce path. */
	_Static_assert(sizeof(kr->session.peer) == sizeof(c->peer), "the peer's text fits as it is");
	memcpy(kr->session.peer, c->peer, sizeof(c->peer));
	/* Who is asking: the connection's identity, without its exchange or its cache (kafka_impl.h). */
	const struct sl_session_security *id = &c->session.sec;
	memcpy(kr->session.sec.principal, id->principal, sizeof(id->principal));
	kr->session.sec.authenticated = id->authenticated;
	kr->session.sec.super_user = id->super_user;
	kr->session.sec.mechanism = id->mechanism;
	kr->session.sec.state = id->state;
	sl_security_inflight_charge(&c->session, len, &kr->charged);
	c->refs++;
	c->inflight_bytes += len;
	if (c->qtail)
		c->qtail->next = kr;
	else
		c->qhead = kr;
	c->qtail = kr;
	srv->stats.requests++;

	/* After SaslHandshake v0 the frames of the exchange are its tokens, with no Kafka header (sasl.c). */
	if (c->sasl_unframed && (c->sasl == SL_KAFKA_SASL_SCRAM || c->sasl == SL_KAFKA_SASL_PLAIN)) {
		kr->sasl_unframed = 1;
		kr->rq.api_key = SL_KAFKA_SASL_AUTHENTICATE;
		kr->rq.u.sasl_authenticate.auth_bytes.data = frame;
		kr->rq.u.sasl_authenticate.auth_bytes.len = (int32_t)len;
		sl_kafka_sasl_authenticate(kr);
		return;
	}
	const char *why = NULL;
	int rc = sl_kafka_decode(frame, len, &kr->arena, &kr->rq, &why);
	if (rc == -ENOTSUP && kr->rq.api_key == SL_KAFKA_API_VERSIONS) {
		sl_kafka_api_versions(kr); /* error 35 and the ranges, in the v0 layout every client reads */
		return;
	}
	if (rc < 0) {
		srv->stats.bad_frames++;
		if (rc == -ENOTSUP)
			sl_kafka_log(kr,
			             "API key %d version %d is not served (ApiVersions lists what is): closing "
			             "the connection",
			             kr->rq.api_key, kr->rq.api_version);
		else if (rc == -ENOMEM)
			sl_kafka_log(kr, "request of %u bytes decodes to more than %zu bytes: closing the connection",
			             len, kr->arena.bytes_max);
		else
			sl_kafka_log(kr, "malformed request of %u bytes (%s): closing the connection", len, why);
		conn_close(c);
		return;
	}
	/* Authentication on: until the connection authenticated it may only negotiate (sasl.c rule 3). */
	int16_t key = kr->rq.api_key;
	if (srv->security->auth_enabled && !c->session.sec.authenticated && key != SL_KAFKA_API_VERSIONS &&
	    key != SL_KAFKA_SASL_HANDSHAKE && key != SL_KAFKA_SASL_AUTHENTICATE) {
		sl_kafka_log(kr,
		             "request before authentication on a broker that requires it (SASL: SCRAM-SHA-256%s): "
		             "closing the connection",
		             c->tls ? " or PLAIN" : "");
		conn_close(c);
		return;
	}
	sl_kafka_serve(kr);
}

/* ---- start and stop (shard.c drives them) ---- */

int sl_kafka_port(const struct sl_server *srv)
{
	return srv->kafka && srv->kafka->port > 0 ? srv->kafka->port : -1;
}

int sl_kafka_start(struct sl_server *srv, char *err, size_t err_cap)
{
	if (srv->cfg.kafka_listen_port < 0)
		return 0;
	struct sl_kafka *k = calloc(1, sizeof(*k));
	if (k == NULL)
		return -ENOMEM;
	srv->kafka = k;
	k->srv = srv;
	uv_tcp_init(&srv->loop, &k->listener);
	k->listener.data = k;
	struct sockaddr_in addr;
	int rc = uv_ip4_addr(srv->cfg.kafka_listen_host, srv->cfg.kafka_listen_port, &addr);
	if (rc == 0)
		rc = uv_tcp_bind(&k->listener, (const struct sockaddr *)&addr, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&k->listener, 511, on_connection);
	if (rc < 0) {
		snprintf(err, err_cap,
		         "cannot listen for Kafka clients on %s:%d: %s (is a Kafka broker running there?)",
		         srv->cfg.kafka_listen_host, srv->cfg.kafka_listen_port, uv_strerror(rc));
		return rc;
	}
	struct sockaddr_in bound;
	int len = sizeof(bound);
	uv_tcp_getsockname(&k->listener, (struct sockaddr *)&bound, &len);
	k->port = ntohs(bound.sin_port);
	snprintf(k->host, sizeof(k->host), "%s", srv->cfg.kafka_listen_host);
	sl_kafka_groups_start(k);
	return 0;
}

static void close_noop_cb(uv_handle_t *h)
{
}

void sl_kafka_stop_accepting(struct sl_server *srv)
{
	struct sl_kafka *k = srv->kafka;
	if (k == NULL)
		return;
	if (!uv_is_closing((uv_handle_t *)&k->listener))
		uv_close((uv_handle_t *)&k->listener, close_noop_cb);
	sl_kafka_groups_stop(k);
	for (struct sl_kafka_conn *c = k->conns; c; c = c->next) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		for (struct sl_kafka_req *kr = c->qhead; kr; kr = kr->next)
			sl_req_cancel_all(&kr->session, 0);
		conn_flush(c); /* responses a quota held go now: the throttle time ends with the broker */
	}
}

int sl_kafka_drained(const struct sl_server *srv)
{
	for (struct sl_kafka_conn *c = srv->kafka ? srv->kafka->conns : NULL; c; c = c->next)
		if (c->refs > 0)
			return 0;
	return 1;
}

void sl_kafka_close(struct sl_server *srv)
{
	while (srv->kafka && srv->kafka->conns)
		conn_close(srv->kafka->conns);
	if (srv->kafka)
		sl_kafka_groups_close(srv->kafka);
}

void sl_kafka_free(struct sl_server *srv)
{
	if (srv->kafka)
		sl_frame_pool_free(&srv->kafka->frame_pool);
	free(srv->kafka);
	srv->kafka = NULL;
}
