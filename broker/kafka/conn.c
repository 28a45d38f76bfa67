/* The Kafka listener's connections: libuv owns the sockets; each connection is read into a buffer and cut into
 * frames (a 4-byte big-endian size, as the native protocol), each frame is decoded (decode.h) and served
 * (apis.c), and responses are written in the order the requests arrived (kafka_impl.h, invariant 1). It shares
 * the native listener's limits: frame size, bytes and requests in flight per connection (past them the socket is
 * not read until responses go out), and the number of connections (one count for both listeners). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/dispatch.h"
#include "broker/kafka/kafka_impl.h"
#include "proto/base/assert.h"
#include "proto/frame.h"

/* The shared read buffer of a connection: small requests (metadata, heartbeats, fetches) arrive many per read. */
#define READ_BUFFER_BYTES            (64u * 1024)
/* Frames above this are read into a buffer of their own, so a produced batch goes from the socket to the disk
 * without another copy; smaller ones are copied out of the read buffer (the request keeps its frame). Half the
 * read buffer, so such a frame always fits behind a partial read of the one before it. */
#define FRAME_SHARED_BYTES_MAX       (READ_BUFFER_BYTES / 2 - SL_FRAME_HEADER_BYTES)
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
	uint32_t refs; /* requests alive */
	uint64_t inflight_bytes;
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
	if (c->closing == 2 && c->refs == 0) {
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
	uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
}

static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct sl_kafka_conn *c = h->data;
	(void)suggested;
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
}

static void dispatch(struct sl_kafka_conn *c, uint8_t *frame, uint32_t len, int pooled);

/* Cut the buffered bytes into frames. A size that can never be valid ends the connection: there is no way to
 * find the next frame. */
static void conn_process(struct sl_kafka_conn *c)
{
	size_t at = 0;
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
}

static void conn_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct sl_kafka_conn *c = s->data;
	(void)buf;
	if (n < 0) {
		conn_close(c);
		return;
	}
	if (c->fbuf != NULL) {
		c->fbuf_have += (size_t)n;
		SL_ASSERT(c->fbuf_have <= c->fbuf_need);
		if (c->fbuf_have < c->fbuf_need)
			return;
		uint8_t *fb = c->fbuf;
		c->fbuf = NULL;
		dispatch(c, fb, (uint32_t)c->fbuf_need, 1); /* only large frames are read into their own buffer */
		conn_update_reading(c);
		if (!c->closing && !c->read_paused)
			conn_process(c);
		return;
	}
	c->rlen += (size_t)n;
	conn_process(c);
}

/* Backpressure: stop reading while the connection holds too much unanswered work or unsent responses. */
static void conn_update_reading(struct sl_kafka_conn *c)
{
	const struct sl_server_config *cfg = &c->srv->cfg;
	if (c->closing || c->srv->shutting_down)
		return;
	int over = c->inflight_bytes >= cfg->conn_inflight_bytes_max || c->refs >= cfg->conn_inflight_requests_max;
	if (over && !c->read_paused) {
		c->read_paused = 1;
		uv_read_stop((uv_stream_t *)&c->tcp);
	} else if (!over && c->read_paused && c->inflight_bytes <= cfg->conn_inflight_bytes_max / 2) {
		c->read_paused = 0;
		uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb);
		conn_process(c); /* frames buffered while paused go first */
	}
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
	c->closing = 0;
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	snprintf(c->peer, sizeof(c->peer), "client");
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0 && ss.ss_family == AF_INET) {
		char ip[32];
		uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
		snprintf(c->peer, sizeof(c->peer), "%s:%d", ip, ntohs(((struct sockaddr_in *)&ss)->sin_port));
	}
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

static void req_free(struct sl_kafka_req *kr)
{
	struct sl_kafka_conn *c = kr->conn;
	uint64_t bytes = kr->frame_bytes + kr->head.len + kr->tail.len;
	for (uint32_t i = 0; i < kr->part_count; i++) {
		bytes += kr->parts[i].len;
		sl_kwrite_free(&kr->parts[i]);
	}
	free(kr->parts);
	sl_kwrite_free(&kr->head);
	sl_kwrite_free(&kr->tail);
	sl_kafka_arena_free(&kr->arena);
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
	if (status < 0)
		conn_close(c);
	req_maybe_free(kr);
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
	if (err || kr->head.len < 8 || total - SL_FRAME_HEADER_BYTES > INT32_MAX) {
		sl_kafka_log(kr, "out of memory encoding the response: closing the connection");
		conn_close(c);
		return;
	}
	sl_kwrite_put_i32(&kr->head, 0, (int32_t)(total - SL_FRAME_HEADER_BYTES));
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
	kr->write.data = kr;
	kr->writing = 1;
	/* libuv copies the array of buffers, not the bytes: those stay with kr until write_cb. */
	int rc = uv_write(&kr->write, (uv_stream_t *)&c->tcp, bufs, (unsigned)n, write_cb);
	if (bufs != stack_bufs)
		free(bufs);
	if (rc != 0) {
		kr->writing = 0;
		conn_close(c);
	}
}

/* Send every answered request at the front of the queue (invariant 1). */
static void conn_flush(struct sl_kafka_conn *c)
{
	while (!c->closing && c->qhead && c->qhead->answered) {
		struct sl_kafka_req *kr = c->qhead;
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
	conn_flush(c);
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
	snprintf(kr->session.peer, sizeof(kr->session.peer), "%s", c->peer);
	c->refs++;
	c->inflight_bytes += len;
	if (c->qtail)
		c->qtail->next = kr;
	else
		c->qhead = kr;
	c->qtail = kr;
	srv->stats.requests++;

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
