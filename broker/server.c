/* The broker's loop: libuv owns the sockets, the shard's io_uring completions arrive through an eventfd watched
 * by a uv_poll_t, and a uv_prepare_t submits the storage work of each loop pass once, just before the loop
 * sleeps (Redis's beforesleep). Connections are read into one growing buffer, cut into frames, decoded and
 * dispatched; answers are written as whole frames. Bounded: connections, frame size, bytes and requests in
 * flight per connection (past them the socket is not read until answers go out). */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/assert.h"
#include "broker/server_impl.h"
#include "proto/frame.h"
#include "proto/produce_view.h"

/* The shared read buffer of a connection: small frames (requests, acks, small batches) arrive many per read. */
#define READ_BUFFER_BYTES      (64u * 1024)
/* Frames above this are read into a buffer of their own that the request keeps, so a produced batch goes from
 * the socket to the disk without another copy (see dispatch). Half the read buffer: a frame at most this large
 * always fits behind a partial read of the one before it. */
#define FRAME_SHARED_BYTES_MAX (READ_BUFFER_BYTES / 2 - SL_FRAME_HEADER_BYTES)
/* After a large frame, the next read asks for only this much: the next frame is likely large too, and what of it
 * lands in rbuf is copied into its own buffer. Small enough that the copy is a few percent of a 256 KiB batch,
 * large enough to hold a run of small frames. */
#define READ_PROBE_BYTES       (4u * 1024)
_Static_assert(FRAME_SHARED_BYTES_MAX + SL_FRAME_HEADER_BYTES <= READ_BUFFER_BYTES / 2, "small frames fit rbuf");

void sl_server_config_default(struct sl_server_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->data_dir, sizeof(cfg->data_dir), "./data");
	snprintf(cfg->listen_host, sizeof(cfg->listen_host), "127.0.0.1");
	cfg->listen_port = 7070;
	snprintf(cfg->metrics_host, sizeof(cfg->metrics_host), "127.0.0.1");
	cfg->metrics_port = 7071;
	cfg->frame_bytes_max = SL_FRAME_BYTES_MAX_DEFAULT;
	/* 1024 connections: far above what one shard serves well, far below the fd limit. */
	cfg->connections_max = 1024;
	/* Four maximum frames: a producer pipelining large batches keeps the disk busy without one connection
	 * holding more than 64 MiB of the broker's memory. */
	cfg->conn_inflight_bytes_max = 4ull * SL_FRAME_BYTES_MAX_DEFAULT;
	cfg->conn_inflight_requests_max = 4096;
	/* Retention, roll by age and producer-state snapshots: every 30 s. */
	cfg->retention_check_ms = 30 * 1000;
	sl_log_config_default(&cfg->log);
}

Synclog__ErrorCode sl_errno_to_code(int err)
{
	switch (err) {
	case -ENOSPC:
	case -EDQUOT:
	case -EFBIG:
		return SYNCLOG__ERROR_CODE__NOT_ENOUGH_SPACE;
	case -EBADMSG:
		return SYNCLOG__ERROR_CODE__CORRUPT_BATCH;
	case -EAGAIN:
		return SYNCLOG__ERROR_CODE__THROTTLED;
	case -ERANGE:
		return SYNCLOG__ERROR_CODE__OFFSET_OUT_OF_RANGE;
	case -ENOTSUP:
		return SYNCLOG__ERROR_CODE__UNSUPPORTED_CODEC;
	case -EUCLEAN:
		return SYNCLOG__ERROR_CODE__PARTITION_UNAVAILABLE;
	default:
		return SYNCLOG__ERROR_CODE__STORAGE_ERROR;
	}
}

void sl_req_fail(struct sl_req *req, Synclog__ErrorCode code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(req->error_message, sizeof(req->error_message), fmt, ap);
	va_end(ap);
	req->resp.error = code;
	req->resp.error_message = req->error_message;
}

/* ---- connections ---- */

/* The connection's memory, once its handle is closed and no request or write of it is alive. */
static void conn_free_if_done(struct sl_conn *c)
{
	if (c->closing == 2 && c->refs == 0) {
		free(c->rbuf);
		sl_frame_pool_put(&c->srv->frame_pool, c->fbuf);
		free(c);
	}
}

static void conn_free_cb(uv_handle_t *h)
{
	struct sl_conn *c = h->data;
	c->closing = 2; /* handle closed */
	conn_free_if_done(c);
}

static void conn_close(struct sl_conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	struct sl_server *srv = c->srv;
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->conn_count--;
	/* Parked long-polls of this connection will never be read: drop them. */
	while (c->parked)
		sl_fetch_unpark(c->parked, 1);
	uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
}

static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct sl_conn *c = h->data;
	(void)suggested;
	if (c->fbuf != NULL) {
		/* The rest of a large frame, and not a byte more: the next frame starts in rbuf. */
		buf->base = (char *)c->fbuf + c->fbuf_have;
		buf->len = c->fbuf_need - c->fbuf_have;
		return;
	}
	if (c->rbuf == NULL) {
		c->rbuf = malloc(READ_BUFFER_BYTES);
		c->rcap = c->rbuf ? READ_BUFFER_BYTES : 0;
	}
	buf->base = (char *)c->rbuf + c->rlen;
	buf->len = c->rcap - c->rlen;
	if (c->last_frame_owned && c->rlen == 0 && buf->len > READ_PROBE_BYTES)
		buf->len = READ_PROBE_BYTES;
}

static void conn_update_reading(struct sl_conn *c);
static void dispatch(struct sl_conn *c, uint8_t *frame, uint32_t len, uint8_t *owned);

/* A frame too large for rbuf gets a buffer of its own: the part already read is copied there, the rest is read
 * straight into it. Returns 1 when the frame is complete (and dispatched), 0 when more is to be read, -ENOMEM. */
static int conn_own_frame(struct sl_conn *c, size_t at, uint32_t len, size_t *consumed_out)
{
	size_t have = c->rlen - at - SL_FRAME_HEADER_BYTES;
	if (have > len)
		have = len;
	uint8_t *fb = sl_frame_pool_get(&c->srv->frame_pool, len);
	if (fb == NULL)
		return -ENOMEM;
	memcpy(fb, c->rbuf + at + SL_FRAME_HEADER_BYTES, have);
	*consumed_out = SL_FRAME_HEADER_BYTES + have;
	c->last_frame_owned = 1;
	if (have == len) {
		dispatch(c, fb, len, fb);
		return 1;
	}
	c->fbuf = fb;
	c->fbuf_need = len;
	c->fbuf_have = have;
	return 0;
}

/* Cut the buffered bytes into frames and dispatch each. A length prefix that can never be valid ends the
 * connection: there is no way to find the next frame. */
static void conn_process(struct sl_conn *c)
{
	size_t at = 0;
	while (!c->closing && !c->read_paused && c->fbuf == NULL) {
		uint32_t len;
		int rc = sl_frame_length(c->rbuf + at, c->rlen - at, c->srv->cfg.frame_bytes_max, &len);
		if (rc == -EAGAIN)
			break;
		if (rc < 0) {
			c->srv->stats.bad_frames++;
			fprintf(stderr, "synclogd: %s: frame length out of range (1 to %u bytes): closing connection\n",
			        c->peer, c->srv->cfg.frame_bytes_max);
			conn_close(c);
			return;
		}
		if (len > FRAME_SHARED_BYTES_MAX) {
			size_t consumed = 0;
			rc = conn_own_frame(c, at, len, &consumed);
			if (rc < 0) {
				fprintf(stderr,
				        "synclogd: %s: out of memory for a frame of %u bytes: closing connection\n",
				        c->peer, len);
				conn_close(c);
				return;
			}
			at += consumed;
			if (rc == 0)
				break; /* the rest of it is read into c->fbuf */
			conn_update_reading(c);
			continue;
		}
		if (c->rlen - at < SL_FRAME_HEADER_BYTES + (size_t)len)
			break; /* rbuf holds a whole small frame once the bytes before it are dropped */
		c->last_frame_owned = 0;
		dispatch(c, c->rbuf + at + SL_FRAME_HEADER_BYTES, len, NULL);
		at += SL_FRAME_HEADER_BYTES + (size_t)len;
		conn_update_reading(c);
	}
	if (at > 0 && !c->closing) {
		memmove(c->rbuf, c->rbuf + at, c->rlen - at);
		c->rlen -= at;
	}
}

static void conn_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct sl_conn *c = s->data;
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
		dispatch(c, fb, (uint32_t)c->fbuf_need, fb);
		conn_update_reading(c);
		return;
	}
	c->rlen += (size_t)n;
	conn_process(c);
}

/* Backpressure: stop reading while the connection holds too much unanswered work. */
static void conn_update_reading(struct sl_conn *c)
{
	const struct sl_server_config *cfg = &c->srv->cfg;
	int over = c->inflight_bytes >= cfg->conn_inflight_bytes_max || c->refs >= cfg->conn_inflight_requests_max;
	if (c->closing || c->srv->shutting_down)
		return;
	if (over && !c->read_paused) {
		c->read_paused = 1;
		uv_read_stop((uv_stream_t *)&c->tcp);
	} else if (!over && c->read_paused && c->inflight_bytes <= cfg->conn_inflight_bytes_max / 2) {
		c->read_paused = 0;
		uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb);
		/* Frames already buffered while paused go first. */
		conn_process(c);
	}
}

static void on_connection(uv_stream_t *listener, int status)
{
	struct sl_server *srv = listener->data;
	if (status < 0)
		return;
	struct sl_conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return;
	uv_tcp_init(&srv->loop, &c->tcp);
	c->tcp.data = c;
	c->srv = srv;
	if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
		uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
		return;
	}
	if (srv->conn_count >= srv->cfg.connections_max || srv->shutting_down) {
		srv->stats.connections_refused++;
		c->closing = 1;
		uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
		return;
	}
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	snprintf(c->peer, sizeof(c->peer), "client");
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0 && ss.ss_family == AF_INET) {
		char ip[32];
		uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
		snprintf(c->peer, sizeof(c->peer), "%s:%d", ip, ntohs(((struct sockaddr_in *)&ss)->sin_port));
	}
	uv_tcp_nodelay(&c->tcp, 1);
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	srv->conn_count++;
	srv->stats.connections_accepted++;
	uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb);
}

/* ---- requests ---- */

void *sl_req_alloc(struct sl_req *req, size_t bytes)
{
	struct sl_req_chunk *ch = calloc(1, sizeof(*ch) + bytes);
	if (ch == NULL)
		return NULL;
	ch->next = req->chunks;
	req->chunks = ch;
	return ch->data;
}

char *sl_req_strdup(struct sl_req *req, const char *s)
{
	size_t n = strlen(s);
	char *p = sl_req_alloc(req, n + 1);
	if (p)
		memcpy(p, s, n);
	return p;
}

static void req_free(struct sl_req *req)
{
	struct sl_conn *c = req->conn;
	if (req->free_body)
		req->free_body(req);
	free(req->body_mem);
	if (req->msg && !req->msg_borrowed)
		synclog__request__free_unpacked(req->msg, NULL);
	/* After the message: a borrowed one points into it. */
	sl_frame_pool_put(&req->srv->frame_pool, req->frame_mem);
	while (req->chunks) {
		struct sl_req_chunk *ch = req->chunks;
		req->chunks = ch->next;
		free(ch);
	}
	SL_ASSERT(c->refs > 0 && c->inflight_bytes >= req->frame_bytes);
	c->refs--;
	c->inflight_bytes -= req->frame_bytes;
	free(req);
	if (c->closing == 2)
		conn_free_if_done(c);
	else if (!c->closing)
		conn_update_reading(c);
}

void sl_req_release(struct sl_req *req)
{
	if (req->responded && req->pending == 0 && !req->parked)
		req_free(req);
}

struct write_ctx {
	uv_write_t w;
	struct sl_conn *conn;
	uint8_t bytes[];
};

static void write_done_cb(uv_write_t *w, int status)
{
	struct write_ctx *wc = (struct write_ctx *)w;
	struct sl_conn *c = wc->conn;
	free(wc);
	if (status < 0 || c->close_after_write)
		conn_close(c);
	/* The write held a reference so the connection outlives it. */
	SL_ASSERT(c->refs > 0);
	c->refs--;
	conn_free_if_done(c);
}

void sl_req_respond(struct sl_req *req)
{
	SL_ASSERT(!req->responded);
	req->responded = 1;
	struct sl_conn *c = req->conn;
	if (!c->closing) {
		req->resp.correlation_id = req->msg ? req->msg->correlation_id : 0;
		size_t len = synclog__response__get_packed_size(&req->resp);
		struct write_ctx *wc = malloc(sizeof(*wc) + SL_FRAME_HEADER_BYTES + len);
		if (wc == NULL) {
			conn_close(c);
		} else {
			sl_frame_put_length(wc->bytes, (uint32_t)len);
			synclog__response__pack(&req->resp, wc->bytes + SL_FRAME_HEADER_BYTES);
			wc->conn = c;
			c->refs++;
			uv_buf_t b = uv_buf_init((char *)wc->bytes, (unsigned)(SL_FRAME_HEADER_BYTES + len));
			if (uv_write(&wc->w, (uv_stream_t *)&c->tcp, &b, 1, write_done_cb) != 0) {
				c->refs--;
				free(wc);
				conn_close(c);
			}
		}
	}
	sl_req_release(req);
}

static struct sl_req *req_new(struct sl_conn *c, uint32_t frame_bytes)
{
	struct sl_req *req = calloc(1, sizeof(*req));
	if (req == NULL)
		return NULL;
	req->conn = c;
	req->srv = c->srv;
	req->frame_bytes = frame_bytes;
	synclog__response__init(&req->resp);
	c->refs++;
	c->inflight_bytes += frame_bytes;
	return req;
}

/* A Produce request read in place (proto/produce_view.h): the protobuf-c structures the handlers use, built in the
 * request's memory, with every batch pointing into the frame the request owns. NULL when the frame is not a
 * canonical Produce request or memory ran out; protobuf-c then decodes it. */
static Synclog__Request *request_view(struct sl_req *req, uint8_t *frame, uint32_t len)
{
	struct sl_produce_view v;
	if (sl_produce_view_parse(frame, len, &v, NULL, 0) != 1)
		return NULL;
	size_t n = v.part_count;
	struct {
		Synclog__Request request;
		Synclog__ProduceRequest produce;
	} *m = sl_req_alloc(req, sizeof(*m) +
	                                 n * (sizeof(struct sl_produce_view_part) + sizeof(Synclog__ProducePartition) +
	                                      sizeof(Synclog__ProducePartition *)) +
	                                 v.topic_bytes + 1);
	if (m == NULL)
		return NULL;
	struct sl_produce_view_part *parts = (struct sl_produce_view_part *)(m + 1);
	Synclog__ProducePartition *pp = (Synclog__ProducePartition *)(parts + n);
	Synclog__ProducePartition **pps = (Synclog__ProducePartition **)(pp + n);
	char *topic = (char *)(pps + n);
	SL_ASSERT(sl_produce_view_parse(frame, len, &v, parts, n) == 1 && v.part_count == n);
	synclog__request__init(&m->request);
	synclog__produce_request__init(&m->produce);
	if (v.topic_bytes > 0)
		memcpy(topic, v.topic, v.topic_bytes);
	topic[v.topic_bytes] = '\0';
	for (size_t i = 0; i < n; i++) {
		synclog__produce_partition__init(&pp[i]);
		pp[i].partition = parts[i].partition;
		pp[i].batch.data = parts[i].batch;
		pp[i].batch.len = parts[i].batch_bytes;
		pps[i] = &pp[i];
	}
	m->produce.topic = topic;
	m->produce.acks = (Synclog__Acks)v.acks;
	m->produce.n_partitions = n;
	m->produce.partitions = pps;
	m->request.correlation_id = v.correlation_id;
	m->request.body_case = SYNCLOG__REQUEST__BODY_PRODUCE;
	m->request.produce = &m->produce;
	req->msg_borrowed = 1;
	return &m->request;
}

/* Decode one frame and hand it to its handler. owned is the frame's own buffer (large frames, conn_own_frame):
 * the request keeps it, so a Produce request's batches are appended from where they were received. */
static void dispatch(struct sl_conn *c, uint8_t *frame, uint32_t len, uint8_t *owned)
{
	struct sl_server *srv = c->srv;
	struct sl_req *req = req_new(c, len);
	if (req == NULL) {
		sl_frame_pool_put(&srv->frame_pool, owned);
		conn_close(c);
		return;
	}
	req->frame_mem = owned;
	srv->stats.requests++;
	if (sl_frame_check_strings(&synclog__request__descriptor, frame, len) == 0) {
		if (owned != NULL)
			req->msg = request_view(req, frame, len);
		if (req->msg == NULL)
			req->msg = synclog__request__unpack(NULL, len, frame);
	}
	if (req->msg == NULL) {
		srv->stats.bad_frames++;
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INVALID_REQUEST,
		            "frame of %u bytes is not a valid Request message (or a string field holds a NUL byte)",
		            len);
		sl_req_respond(req);
		return;
	}
	if (!c->hello_done && req->msg->body_case != SYNCLOG__REQUEST__BODY_HELLO) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__UNSUPPORTED_VERSION,
		            "the first request on a connection must be Hello (protocol version %d)",
		            SL_PROTOCOL_VERSION);
		c->close_after_write = 1;
		sl_req_respond(req);
		return;
	}
	if (srv->shutting_down) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__BROKER_SHUTTING_DOWN, "broker is shutting down");
		sl_req_respond(req);
		return;
	}
	switch (req->msg->body_case) {
	case SYNCLOG__REQUEST__BODY_HELLO:
		sl_handle_hello(req);
		break;
	case SYNCLOG__REQUEST__BODY_CREATE_TOPIC:
		sl_handle_create_topic(req);
		break;
	case SYNCLOG__REQUEST__BODY_DELETE_TOPIC:
		sl_handle_delete_topic(req);
		break;
	case SYNCLOG__REQUEST__BODY_LIST_TOPICS:
		sl_handle_list_topics(req);
		break;
	case SYNCLOG__REQUEST__BODY_DESCRIBE_TOPIC:
		sl_handle_describe_topic(req);
		break;
	case SYNCLOG__REQUEST__BODY_PRODUCE:
		sl_handle_produce(req);
		break;
	case SYNCLOG__REQUEST__BODY_FETCH:
		sl_handle_fetch(req);
		break;
	case SYNCLOG__REQUEST__BODY_LIST_OFFSETS:
		sl_handle_list_offsets(req);
		break;
	case SYNCLOG__REQUEST__BODY_INIT_PRODUCER:
		sl_handle_init_producer(req);
		break;
	case SYNCLOG__REQUEST__BODY_JOIN_GROUP:
		sl_handle_join_group(req);
		break;
	case SYNCLOG__REQUEST__BODY_HEARTBEAT:
		sl_handle_heartbeat(req);
		break;
	case SYNCLOG__REQUEST__BODY_LEAVE_GROUP:
		sl_handle_leave_group(req);
		break;
	case SYNCLOG__REQUEST__BODY_OFFSET_COMMIT:
		sl_handle_offset_commit(req);
		break;
	case SYNCLOG__REQUEST__BODY_OFFSET_FETCH:
		sl_handle_offset_fetch(req);
		break;
	case SYNCLOG__REQUEST__BODY_LIST_GROUPS:
		sl_handle_list_groups(req);
		break;
	case SYNCLOG__REQUEST__BODY_DESCRIBE_GROUP:
		sl_handle_describe_group(req);
		break;
	case SYNCLOG__REQUEST__BODY_DELETE_GROUP:
		sl_handle_delete_group(req);
		break;
	default:
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INVALID_REQUEST, "request has no known body (case %d)",
		            (int)req->msg->body_case);
		sl_req_respond(req);
		break;
	}
}

/* ---- the loop's storage wiring ---- */

static void ring_poll_cb(uv_poll_t *h, int status, int events)
{
	struct sl_server *srv = h->data;
	int rc = sl_ring_reap(&srv->ring);
	if (rc < 0)
		fprintf(stderr, "synclogd: io_uring submit failed: %s\n", strerror(-rc));
}

static void submit_prepare_cb(uv_prepare_t *h)
{
	struct sl_server *srv = h->data;
	int rc = sl_ring_submit(&srv->ring);
	if (rc < 0)
		fprintf(stderr, "synclogd: io_uring submit failed: %s\n", strerror(-rc));
}

static void retention_cb(uv_timer_t *h)
{
	struct sl_server *srv = h->data;
	int64_t now = sl_now_ms();
	/* Bounds what a restart after a crash replays to rebuild producer state. */
	int rc = sl_topics_snapshot_producers(&srv->topics);
	if (rc < 0)
		fprintf(stderr, "synclogd: saving producer state failed: %s\n", strerror(-rc));
	for (struct sl_topic *t = srv->topics.head; t; t = t->next) {
		for (uint32_t i = 0; i < t->cfg.partitions; i++) {
			struct sl_log *log = t->parts[i].log;
			if (log == NULL)
				continue;
			sl_log_maybe_roll(log, now);
			uint32_t dropped;
			if (t->cfg.retention_ms >= 0 || t->cfg.retention_bytes >= 0) {
				rc = sl_log_retain(log, now, t->cfg.retention_ms, t->cfg.retention_bytes, &dropped);
				if (rc < 0)
					fprintf(stderr, "synclogd: retention of %s/%u failed: %s\n", t->cfg.name, i,
					        strerror(-rc));
			}
		}
	}
}

/* Session expiry is checked this often: a dead member is noticed within its timeout plus this. */
#define GROUPS_TICK_MS 200

static void groups_timer_cb(uv_timer_t *h)
{
	struct sl_server *srv = h->data;
	sl_groups_expire(&srv->groups, sl_now_ms());
}

/* ---- shutdown ---- */

static void close_noop_cb(uv_handle_t *h)
{
}

static void shutdown_check_cb(uv_check_t *h)
{
	struct sl_server *srv = h->data;
	/* Wait until every request's storage work called back and its answer was handed to the socket. */
	for (struct sl_conn *c = srv->conns; c; c = c->next)
		if (c->refs > 0)
			return;
	while (srv->conns)
		conn_close(srv->conns);
	uv_check_stop(h);
	int rc = sl_groups_close(&srv->groups);
	int rc2 = sl_topics_close(&srv->topics);
	if (rc == 0)
		rc = rc2;
	if (rc < 0) {
		fprintf(stderr, "synclogd: closing the logs failed: %s; the next start will recover\n", strerror(-rc));
		srv->exit_code = 1;
	}
	uv_close((uv_handle_t *)&srv->ring_poll, close_noop_cb);
	uv_close((uv_handle_t *)&srv->submit_prepare, close_noop_cb);
	uv_close((uv_handle_t *)&srv->retention_timer, close_noop_cb);
	uv_close((uv_handle_t *)&srv->groups_timer, close_noop_cb);
	uv_close((uv_handle_t *)&srv->sigterm, close_noop_cb);
	uv_close((uv_handle_t *)&srv->sigint, close_noop_cb);
	uv_close((uv_handle_t *)&srv->shutdown_check, close_noop_cb);
	sl_metrics_stop(srv);
}

static void signal_cb(uv_signal_t *h, int signum)
{
	struct sl_server *srv = h->data;
	if (srv->shutting_down)
		return;
	srv->shutting_down = 1;
	uv_close((uv_handle_t *)&srv->listener, close_noop_cb);
	for (struct sl_conn *c = srv->conns; c; c = c->next) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		while (c->parked)
			sl_fetch_unpark(c->parked, 0);
	}
	uv_check_start(&srv->shutdown_check, shutdown_check_cb);
}

/* ---- start and run ---- */

int sl_server_start(const struct sl_server_config *cfg, struct sl_server **out, int *port_out, char *err,
                    size_t err_cap)
{
	struct sl_server *srv = calloc(1, sizeof(*srv));
	if (srv == NULL)
		return -ENOMEM;
	srv->cfg = *cfg;
	int rc = uv_loop_init(&srv->loop);
	if (rc < 0) {
		snprintf(err, err_cap, "cannot start the event loop: %s", uv_strerror(rc));
		free(srv);
		return rc;
	}
	rc = sl_ring_init(&srv->ring, 1);
	if (rc < 0) {
		snprintf(err, err_cap, "cannot create an io_uring: %s (needs Linux 5.6 or later and io_uring enabled)",
		         strerror(-rc));
		uv_loop_close(&srv->loop);
		free(srv);
		return rc;
	}
	rc = sl_topics_open(&srv->topics, cfg->data_dir, &srv->ring, &cfg->log, err, err_cap);
	int groups_open = 0;
	if (rc == 0)
		rc = sl_producer_ids_load(srv);
	if (rc == 0) {
		rc = sl_groups_open(&srv->groups, cfg->data_dir, &srv->ring, &cfg->log, &srv->topics, err, err_cap);
		groups_open = rc == 0;
	}
	if (rc < 0) {
		if (err[0] == '\0')
			snprintf(err, err_cap, "cannot open data directory %s: %s", cfg->data_dir, strerror(-rc));
		if (groups_open)
			sl_groups_close(&srv->groups);
		sl_topics_close(&srv->topics);
		sl_ring_close(&srv->ring);
		uv_loop_close(&srv->loop);
		free(srv);
		return rc;
	}
	uv_poll_init(&srv->loop, &srv->ring_poll, srv->ring.event_fd);
	srv->ring_poll.data = srv;
	uv_poll_start(&srv->ring_poll, UV_READABLE, ring_poll_cb);
	uv_prepare_init(&srv->loop, &srv->submit_prepare);
	srv->submit_prepare.data = srv;
	uv_prepare_start(&srv->submit_prepare, submit_prepare_cb);
	uv_timer_init(&srv->loop, &srv->retention_timer);
	srv->retention_timer.data = srv;
	uv_timer_start(&srv->retention_timer, retention_cb, cfg->retention_check_ms, cfg->retention_check_ms);
	uv_timer_init(&srv->loop, &srv->groups_timer);
	srv->groups_timer.data = srv;
	uv_timer_start(&srv->groups_timer, groups_timer_cb, GROUPS_TICK_MS, GROUPS_TICK_MS);
	uv_signal_init(&srv->loop, &srv->sigterm);
	uv_signal_init(&srv->loop, &srv->sigint);
	srv->sigterm.data = srv->sigint.data = srv;
	uv_signal_start(&srv->sigterm, signal_cb, SIGTERM);
	uv_signal_start(&srv->sigint, signal_cb, SIGINT);
	uv_check_init(&srv->loop, &srv->shutdown_check);
	srv->shutdown_check.data = srv;

	uv_tcp_init(&srv->loop, &srv->listener);
	srv->listener.data = srv;
	struct sockaddr_in addr;
	rc = uv_ip4_addr(cfg->listen_host, cfg->listen_port, &addr);
	if (rc == 0)
		rc = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&addr, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&srv->listener, 511, on_connection);
	if (rc == 0) {
		struct sockaddr_in bound;
		int len = sizeof(bound);
		uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &len);
		*port_out = ntohs(bound.sin_port);
	} else {
		snprintf(err, err_cap, "cannot listen on %s:%d: %s (is another broker running there?)",
		         cfg->listen_host, cfg->listen_port, uv_strerror(rc));
	}
	if (rc == 0)
		rc = sl_metrics_start(srv, err, err_cap);
	if (rc < 0) {
		/* Undo in the loop: handles must be closed through it before it can be freed. */
		uv_close((uv_handle_t *)&srv->listener, close_noop_cb);
		srv->shutting_down = 1;
		uv_check_start(&srv->shutdown_check, shutdown_check_cb);
		uv_run(&srv->loop, UV_RUN_DEFAULT);
		uv_loop_close(&srv->loop);
		sl_ring_close(&srv->ring);
		free(srv);
		return rc;
	}
	*out = srv;
	return 0;
}

int sl_server_run(struct sl_server *srv)
{
	uv_run(&srv->loop, UV_RUN_DEFAULT);
	int rc = uv_loop_close(&srv->loop);
	if (rc < 0)
		fprintf(stderr, "synclogd: event loop closed with handles open: %s\n", uv_strerror(rc));
	sl_ring_close(&srv->ring);
	int code = srv->exit_code;
	free(srv->scratch);
	sl_frame_pool_free(&srv->frame_pool);
	free(srv);
	return code;
}
