/* The native front end's connections: libuv owns the sockets; each connection is read into a buffer, cut into
 * frames, decoded into requests and handed to broker/dispatch.h; answers are written as whole frames. Bounded:
 * connections, frame size, bytes and requests in flight per connection (past them the socket is not read until
 * answers go out), and the broker-wide memory budget of broker/limits.h.
 *
 * A connection's bytes in flight (inflight_bytes, charged to the shared budget) are: the frames of its live
 * requests, its responses queued and not yet written, and the buffer of a large frame being read. A large frame's
 * buffer is taken only once the budget admits it; until then its length prefix waits in rbuf, unread past.
 *
 * Connections are kept in order of last activity (a whole request read, or a response written), most recent
 * first. A sweep closes, from the least recent end, connections that did not finish Hello within
 * handshake_timeout_ms and connections with no request in flight idle past idle_timeout_ms. At connections_max a
 * new connection takes the place of the least recently active idle one (limits.h, "Connections").
 *
 * With TLS (broker/tls.h) the socket is read into the engine's buffer and decrypted into the same buffers the
 * plaintext path reads into, so framing, large frames, the budget and backpressure work the same way; a client
 * certificate's CN becomes the connection's principal. The security checks at accept (connection rate per address)
 * and after each answer (a quota's throttle time holds the answers back and mutes the socket) are
 * broker/security.h's rules.
 *
 * A fetch answer to a plaintext connection may carry its records by reference (request.h, files_reserve): its
 * memory parts are serialized here and the stored bytes go from the segment files to the socket through a pipe,
 * by the kernel (broker/sendfile.h). Such an answer starts only once the writes before it are done, and the
 * answers after it wait in the delayed list until it is sent, so the frames of a connection stay in order. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "broker/dispatch.h"
#include "broker/frame_pool.h"
#include "broker/net/net.h"
#include "broker/sendfile.h"
#include "broker/tls.h"
#include "proto/base/clock.h"
#include "proto/base/assert.h"
#include "proto/base/slog.h"
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
/* At connections_max, this many of the least recently active connections are looked at for an idle one to close;
 * a connection that finished Hello counts as idle only after this long without activity, so a client between
 * two requests is not dropped for a newcomer. */
#define EVICT_SCAN_MAX    64
#define EVICT_IDLE_MIN_MS 1000
/* Timeouts are checked this often: a connection is closed at most this long after its timeout. */
#define SWEEP_INTERVAL_MS 500

struct sl_conn {
	uv_tcp_t tcp;
	struct sl_server *srv;
	struct sl_conn *prev, *next; /* net->conns, most recently active first */
	struct sl_session session;
	struct sl_limits_waiter memory_wait; /* waiting for the broker's memory budget */
	uint8_t *rbuf;                       /* small frames, several per read; READ_BUFFER_BYTES */
	size_t rlen;
	size_t rcap;
	/* A large frame being read into a buffer of its own, which its request then keeps. */
	uint8_t *fbuf;
	size_t fbuf_need; /* the frame's length without its header */
	size_t fbuf_have;
	int last_frame_owned; /* the previous frame was large: probe the next with a short read */
	int closing;          /* uv_close called; 2 once the handle is closed */
	int read_paused;      /* backpressure */
	int processing;       /* inside conn_process: a nested call would dispatch the same bytes twice */
	uint32_t refs;        /* requests and writes alive */
	uint32_t requests;    /* requests alive (handled, parked or waiting for storage) */
	uint64_t inflight_bytes;
	uint64_t memory_need_bytes; /* a large frame waits for the budget to admit this many bytes */
	uint64_t active_ms;         /* uv_now of the last activity (accept, a whole request read, a response written) */
	struct sl_tls_conn *tls;    /* NULL: plaintext */
	int tls_checked;            /* the handshake's client certificate was looked at */
	uv_timer_t *throttle_timer; /* a quota holds the answers back (security.h rule 4); freed in its close cb */
	/* Answers held back while the quota's throttle time runs, or behind an answer sent from files (or one sent
	 * from files behind writes), in order (each holds a reference and its charge). */
	struct write_ctx *delayed_head, *delayed_tail;
	uint32_t writes_pending;         /* uv_writes not yet called back */
	struct write_ctx *files_sending; /* the answer being sent from files (sendfile.h), at most one at a time */
	uint32_t files_answers;          /* answers reserved to go from files, sending or queued */
};

struct sl_net {
	uv_tcp_t listener;
	uv_timer_t sweep;
	struct sl_conn *conns, *conns_tail;
	struct sl_frame_pool frame_pool;
};

/* A request of this front end: the handlers' part first, then the frame it keeps (large frames). */
struct native_req {
	struct sl_req req;
	uint8_t *frame_mem;
	size_t frame_bytes;
	struct sl_principal *charged; /* whose bytes in flight these are (security.h rule 5) */
	int files_reserved;           /* files_reserve said yes and no answer took the reservation yet */
	uint32_t files_reserved_count;
};

/* ---- connections ---- */

static void conn_charge(struct sl_conn *c, uint64_t bytes)
{
	c->inflight_bytes += bytes;
	sl_limits_charge(&c->srv->limits, bytes);
}

static void conn_uncharge(struct sl_conn *c, uint64_t bytes)
{
	SL_ASSERT(c->inflight_bytes >= bytes);
	c->inflight_bytes -= bytes;
	sl_limits_release(&c->srv->limits, bytes);
}

static void conns_unlink(struct sl_net *net, struct sl_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		net->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		net->conns_tail = c->prev;
	c->prev = c->next = NULL;
}

static void conns_push_head(struct sl_net *net, struct sl_conn *c)
{
	c->prev = NULL;
	c->next = net->conns;
	if (net->conns)
		net->conns->prev = c;
	else
		net->conns_tail = c;
	net->conns = c;
}

/* Activity: the connection moves to the most recent end. */
static void conn_touch(struct sl_conn *c)
{
	struct sl_net *net = c->srv->net;
	c->active_ms = uv_now(&c->srv->loop);
	if (net->conns != c) {
		conns_unlink(net, c);
		conns_push_head(net, c);
	}
}

/* The connection's memory, once its handle is closed and no request or write of it is alive. */
static void conn_free_if_done(struct sl_conn *c)
{
	if (c->closing == 2 && c->refs == 0 && c->throttle_timer == NULL) {
		SL_ASSERT(c->inflight_bytes == 0);
		sl_tls_conn_free(c->tls);
		free(c->rbuf);
		sl_frame_pool_put(&c->srv->net->frame_pool, c->fbuf);
		free(c);
	}
}

static void conn_free_cb(uv_handle_t *h)
{
	struct sl_conn *c = h->data;
	c->closing = 2; /* handle closed */
	conn_free_if_done(c);
}

static void delayed_drop(struct sl_conn *c);
static void files_abort(struct sl_conn *c);

static void throttle_timer_free_cb(uv_handle_t *h)
{
	struct sl_conn *c = h->data;
	free(h);
	c->throttle_timer = NULL;
	conn_free_if_done(c);
}

static void conn_close(struct sl_conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	struct sl_server *srv = c->srv;
	conns_unlink(srv->net, c);
	srv->stats.connections_open--;
	sl_limits_connection_closed(&srv->limits);
	sl_limits_unwait(&srv->limits, &c->memory_wait);
	if (c->fbuf != NULL)
		conn_uncharge(c, c->fbuf_need); /* a large frame half read: never dispatched */
	/* Parked requests of this connection will never be read: drop them. */
	sl_req_cancel_all(&c->session, 1);
	sl_security_session_end(srv, &c->session);
	delayed_drop(c);
	files_abort(c);
	if (c->throttle_timer != NULL)
		uv_close((uv_handle_t *)c->throttle_timer, throttle_timer_free_cb);
	uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
}

static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct sl_conn *c = h->data;
	(void)suggested;
	if (c->tls != NULL) {
		/* Ciphertext goes to the engine; the plaintext lands where it would below (conn_tls_pump). */
		size_t cap;
		buf->base = (char *)sl_tls_conn_read_buffer(c->tls, &cap);
		buf->len = cap;
		return;
	}
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
	uint8_t *fb = sl_frame_pool_get(&c->srv->net->frame_pool, len);
	if (fb == NULL)
		return -ENOMEM;
	/* Charged from now on; dispatch hands the charge over to the request. */
	conn_charge(c, len);
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
	if (c->processing)
		return; /* the outer call goes on with what this one would have read */
	c->processing = 1;
	size_t at = 0;
	while (!c->closing && !c->read_paused && c->fbuf == NULL) {
		uint32_t len;
		int rc = sl_frame_length(c->rbuf + at, c->rlen - at, c->srv->cfg.frame_bytes_max, &len);
		if (rc == -EAGAIN)
			break;
		if (rc < 0) {
			c->srv->stats.bad_frames++;
			sl_slog_msg(SL_SLOG_WARN, "bad_frame",
			            "%s: frame length out of range (1 to %u bytes): closing "
			            "connection",
			            c->session.peer, c->srv->cfg.frame_bytes_max);
			conn_close(c);
			break;
		}
		if (len > FRAME_SHARED_BYTES_MAX) {
			if (!sl_limits_memory_admit(&c->srv->limits, c->inflight_bytes, len)) {
				/* Its buffer waits for the budget: the length prefix stays in rbuf until then. */
				c->memory_need_bytes = len;
				conn_update_reading(c);
				break;
			}
			c->memory_need_bytes = 0;
			size_t consumed = 0;
			rc = conn_own_frame(c, at, len, &consumed);
			if (rc < 0) {
				sl_slog_msg(SL_SLOG_ERROR, "frame_alloc_failed",
				            "%s: out of memory for a frame of %u bytes: closing connection",
				            c->session.peer, len);
				conn_close(c);
				break;
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
	c->processing = 0;
}

/* n plaintext bytes arrived where conn_alloc_cb (or conn_tls_pump) put them: finish a large frame or cut
 * frames out of rbuf. */
static void conn_received(struct sl_conn *c, size_t n)
{
	if (c->fbuf != NULL) {
		c->fbuf_have += n;
		SL_ASSERT(c->fbuf_have <= c->fbuf_need);
		if (c->fbuf_have < c->fbuf_need)
			return;
		uint8_t *fb = c->fbuf;
		c->fbuf = NULL;
		dispatch(c, fb, (uint32_t)c->fbuf_need, fb);
		conn_update_reading(c);
		return;
	}
	c->rlen += n;
	conn_process(c);
}

/* Send what the TLS engine encrypted (answers, and the handshake's own messages). */
static void conn_tls_flush(struct sl_conn *c);

/* The handshake just finished: a client certificate the CA vouched for names the principal (security.h). */
static int conn_tls_established(struct sl_conn *c)
{
	char cn[256], err[256];
	c->tls_checked = 1;
	if (!sl_tls_conn_peer_cn(c->tls, cn, sizeof(cn)))
		return 0;
	if (sl_user_name_check(cn) != 0) {
		sl_slog_msg(SL_SLOG_WARN, "certificate_principal_invalid",
		            "%s: client certificate CN '%.64s' is not a valid principal name (1 to 64 of "
		            "[A-Za-z0-9._@-]); the connection must authenticate with SCRAM",
		            c->session.peer, cn);
		return 0;
	}
	if (sl_security_session_authenticated(c->srv, &c->session, cn, "TLS", err, sizeof(err)) < 0) {
		sl_security_auth_failed(c->srv, &c->session, cn, err);
		return -1;
	}
	return 0;
}

/* TLS: decrypt what the engine holds into rbuf or the large frame's buffer, as the plaintext path reads, until
 * the engine needs more ciphertext or the connection pushes back. */
static void conn_tls_pump(struct sl_conn *c)
{
	while (!c->closing && !c->read_paused && !c->processing) {
		uint8_t *dst;
		size_t cap;
		if (c->fbuf != NULL) {
			dst = c->fbuf + c->fbuf_have;
			cap = c->fbuf_need - c->fbuf_have;
		} else {
			if (c->rbuf == NULL) {
				c->rbuf = malloc(READ_BUFFER_BYTES);
				c->rcap = c->rbuf ? READ_BUFFER_BYTES : 0;
			}
			dst = c->rbuf + c->rlen;
			cap = c->rcap - c->rlen;
		}
		const char *why = "";
		ssize_t n = cap > 0 ? sl_tls_conn_read(c->tls, dst, cap, &why) : 0;
		conn_tls_flush(c);
		if (n < 0) {
			if (n != -ECONNRESET)
				sl_slog_msg(SL_SLOG_WARN, "tls_failed", "%s: %s: closing connection", c->session.peer,
				            why);
			if (n != -ECONNRESET && sl_tls_conn_cert_refused(c->tls))
				sl_security_auth_failed(c->srv, &c->session, "", why); /* audited: security.h rule 3 */
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
	struct sl_conn *c = s->data;
	(void)buf;
	if (n == UV_ENOBUFS && c->tls != NULL) {
		/* The engine's buffer was full (tls.h invariant 2): decrypt some before reading more. */
		conn_tls_pump(c);
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

static void delayed_flush(struct sl_conn *c);

static void throttle_timer_cb(uv_timer_t *t)
{
	struct sl_conn *c = t->data;
	delayed_flush(c);
	conn_update_reading(c);
}

/* A quota's throttle time (security.h rule 4): 1 while the socket must stay muted, with a timer set to look again
 * when it ends. */
static int conn_throttled(struct sl_conn *c)
{
	if (c->session.sec.throttle_until_ms == 0)
		return 0; /* never throttled, or the last throttle ended: no clock read per request */
	int64_t left = c->session.sec.throttle_until_ms - sl_clock_mono_ms();
	if (left <= 0) {
		c->session.sec.throttle_until_ms = 0;
		return 0;
	}
	if (c->throttle_timer == NULL) {
		c->throttle_timer = malloc(sizeof(*c->throttle_timer));
		if (c->throttle_timer == NULL)
			return 0; /* no timer: the quota is not enforced on this connection rather than muting it
			             forever */
		uv_timer_init(&c->srv->loop, c->throttle_timer);
		c->throttle_timer->data = c;
	}
	uv_timer_start(c->throttle_timer, throttle_timer_cb, (uint64_t)left, 0);
	return 1;
}

/* Backpressure: stop reading while the connection holds too much unanswered work (its own bounds, read again
 * below half of them), while the broker's memory budget does not admit it (broker/limits.h, rules 2 and 3), while
 * a quota mutes it or its principal is at its bound of bytes in flight (broker/security.h, rules 4 and 5). */
static void conn_update_reading(struct sl_conn *c)
{
	struct sl_server *srv = c->srv;
	const struct sl_server_config *cfg = &srv->cfg;
	if (c->closing || srv->shutting_down)
		return;
	int over = c->inflight_bytes >= cfg->conn_inflight_bytes_max || c->refs >= cfg->conn_inflight_requests_max ||
	           (c->read_paused && c->inflight_bytes > cfg->conn_inflight_bytes_max / 2) || conn_throttled(c) ||
	           sl_security_inflight_over(srv, &c->session);
	int memory = !over && !sl_limits_memory_admit(&srv->limits, c->inflight_bytes, c->memory_need_bytes);
	if (memory)
		sl_limits_wait(&srv->limits, &c->memory_wait, c->inflight_bytes, c->memory_need_bytes);
	else
		sl_limits_unwait(&srv->limits, &c->memory_wait);
	if ((over || memory) && !c->read_paused) {
		c->read_paused = 1;
		uv_read_stop((uv_stream_t *)&c->tcp);
	} else if (!over && !memory && c->read_paused) {
		c->read_paused = 0;
		uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb);
		/* Frames already buffered while paused go first, then what the TLS engine holds. */
		conn_process(c);
		if (c->tls != NULL)
			conn_tls_pump(c);
	}
}

/* The connection's principal fell back under its bound of bytes in flight (security.h rule 5). */
static void conn_wake_cb(struct sl_session *s)
{
	struct sl_conn *c = (struct sl_conn *)((char *)s - offsetof(struct sl_conn, session));
	conn_update_reading(c);
}

static void conn_memory_resume_cb(struct sl_limits_waiter *w)
{
	struct sl_conn *c = (struct sl_conn *)((char *)w - offsetof(struct sl_conn, memory_wait));
	conn_update_reading(c);
}

/* At connections_max: close the least recently active idle connection to make room. Returns 1 if one was closed. */
static int evict_idle(struct sl_server *srv)
{
	uint64_t now = uv_now(&srv->loop);
	struct sl_conn *c = srv->net->conns_tail;
	for (int i = 0; c != NULL && i < EVICT_SCAN_MAX; i++, c = c->prev) {
		if (c->requests > 0)
			continue;
		if (c->session.hello_done && now - c->active_ms < EVICT_IDLE_MIN_MS)
			continue;
		struct sl_slog *e = sl_slog_begin(SL_SLOG_INFO, "connection_evicted");
		sl_slog_str(e, "peer", c->session.peer);
		sl_slog_uint(e, "idle_ms", now - c->active_ms);
		sl_slog_end(e);
		srv->limits.connections_evicted++;
		conn_close(c);
		return 1;
	}
	return 0;
}

/* The timeouts: walk from the least recently active end while connections are old enough to have timed out. */
static void sweep_cb(uv_timer_t *t)
{
	struct sl_server *srv = t->data;
	const struct sl_server_config *cfg = &srv->cfg;
	uint64_t now = uv_now(&srv->loop);
	uint64_t youngest = cfg->handshake_timeout_ms;
	if (cfg->idle_timeout_ms > 0 && cfg->idle_timeout_ms < youngest)
		youngest = cfg->idle_timeout_ms;
	struct sl_conn *prev;
	for (struct sl_conn *c = srv->net->conns_tail; c != NULL; c = prev) {
		prev = c->prev;
		uint64_t idle_ms = now - c->active_ms;
		if (idle_ms < youngest)
			break; /* the rest were active more recently */
		const char *why = NULL;
		if (!c->session.hello_done && idle_ms >= cfg->handshake_timeout_ms)
			why = "no Hello within the handshake timeout";
		else if (cfg->idle_timeout_ms > 0 && idle_ms >= cfg->idle_timeout_ms && c->requests == 0)
			why = "idle past --idle-timeout";
		if (why == NULL)
			continue;
		struct sl_slog *e = sl_slog_begin(SL_SLOG_DEBUG, "connection_timed_out");
		sl_slog_str(e, "peer", c->session.peer);
		sl_slog_str(e, "reason", why);
		sl_slog_uint(e, "idle_ms", idle_ms);
		sl_slog_end(e);
		srv->limits.connections_timed_out++;
		conn_close(c);
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
	c->memory_wait.resume_cb = conn_memory_resume_cb;
	if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
		c->closing = 1;
		uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
		return;
	}
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	int have_peer = uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0;
	/* The rate limit of attempts per address (security.h) before anything else is spent on it. */
	if (srv->shutting_down || sl_security_connection_allowed(srv, have_peer ? (struct sockaddr *)&ss : NULL) < 0 ||
	    (sl_limits_connections_full(&srv->limits) && !evict_idle(srv)) ||
	    (srv->tls != NULL && (c->tls = sl_tls_conn_new(srv->tls)) == NULL)) {
		srv->stats.connections_refused++;
		c->closing = 1;
		uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
		return;
	}
	char *peer = c->session.peer;
	snprintf(peer, sizeof(c->session.peer), "client");
	if (have_peer && (ss.ss_family == AF_INET || ss.ss_family == AF_INET6))
		sl_addr_format((struct sockaddr *)&ss, peer, sizeof(c->session.peer));
	c->session.wake_cb = conn_wake_cb;
	uv_tcp_nodelay(&c->tcp, 1);
	c->active_ms = uv_now(&srv->loop);
	conns_push_head(srv->net, c);
	srv->stats.connections_open++;
	srv->stats.connections_accepted++;
	sl_limits_connection_opened(&srv->limits);
	uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb);
}

/* ---- requests: this front end's side of request.h ---- */

/* A reservation of answers from files (native_files_reserve) that no answer took, or whose answer is dropped. */
static void files_unreserve(struct sl_conn *c, uint32_t file_count)
{
	sl_sendfile_unreserve(&c->srv->sendfile_pool, file_count);
	SL_ASSERT(c->files_answers > 0);
	c->files_answers--;
}

static void native_finish(struct sl_req *req)
{
	struct native_req *nr = (struct native_req *)req;
	struct sl_conn *c = req->fe_data;
	sl_frame_pool_put(&c->srv->net->frame_pool, nr->frame_mem);
	SL_ASSERT(c->refs > 0 && c->requests > 0);
	c->refs--;
	c->requests--;
	conn_uncharge(c, nr->frame_bytes + req->held_bytes);
	sl_security_inflight_release(c->srv, nr->charged, nr->frame_bytes);
	if (nr->files_reserved)
		files_unreserve(c, nr->files_reserved_count);
	free(nr);
	if (c->closing == 2)
		conn_free_if_done(c);
	else if (!c->closing)
		conn_update_reading(c);
}

struct write_ctx {
	uv_write_t w;
	struct sl_conn *conn;
	struct write_ctx *next; /* in the connection's delayed list */
	const uint8_t *base;    /* what is written: bytes below, or owned */
	size_t len;             /* charged to the connection until written */
	uint8_t *owned;         /* TLS: the ciphertext, from the engine; NULL: bytes below */
	/* An answer sent from files (sendfile.h): its parts, the memory ones in bytes below; NULL: a plain write. */
	struct sl_sendfile *sf;
	uint32_t files; /* its reservation: the files it holds */
	uint8_t bytes[];
};

static void write_free(struct write_ctx *wc)
{
	free(wc->owned);
	free(wc->sf);
	free(wc);
}

/* A write or an answer from files is over (status < 0: failed, the stream is cut). */
static void write_finished(struct write_ctx *wc, int status)
{
	struct sl_conn *c = wc->conn;
	conn_uncharge(c, wc->len);
	write_free(wc);
	if (status < 0 || c->session.close_after_write)
		conn_close(c);
	/* The write held a reference so the connection outlives it. */
	SL_ASSERT(c->refs > 0);
	c->refs--;
	if (!c->closing) {
		conn_touch(c);
		delayed_flush(c);       /* an answer from files waits for the writes before it, and the rest for it */
		conn_update_reading(c); /* its answer is out: it may read again */
	}
	conn_free_if_done(c);
}

static void write_done_cb(uv_write_t *w, int status)
{
	struct write_ctx *wc = (struct write_ctx *)w;
	SL_ASSERT(wc->conn->writes_pending > 0);
	wc->conn->writes_pending--;
	write_finished(wc, status);
}

static void write_now(struct sl_conn *c, struct write_ctx *wc)
{
	uv_buf_t b = uv_buf_init((char *)wc->base, (unsigned)wc->len);
	if (uv_write(&wc->w, (uv_stream_t *)&c->tcp, &b, 1, write_done_cb) != 0) {
		c->refs--;
		conn_uncharge(c, wc->len);
		write_free(wc);
		conn_close(c);
		return;
	}
	c->writes_pending++;
}

static void files_done_cb(struct sl_sendfile *sf, int status)
{
	struct write_ctx *wc = sf->data;
	struct sl_conn *c = wc->conn;
	SL_ASSERT(c->files_sending == wc && c->files_answers > 0);
	c->files_sending = NULL;
	c->files_answers--;
	sl_sendfile_count(sf, status, &c->srv->stats);
	if (status < 0) {
		/* A client that goes away mid-answer is no news (the read side usually sees it first: closing). */
		int gone = status == -EPIPE || status == -ECONNRESET;
		if (!c->closing)
			sl_slog_msg(gone ? SL_SLOG_DEBUG : SL_SLOG_WARN, "fetch_sendfile_failed",
			            "%s: sending a fetch answer from the segment files failed (%s): closing connection",
			            c->session.peer, strerror(-status));
	}
	write_finished(wc, status);
}

static void files_drop(struct sl_conn *c, struct write_ctx *wc);

/* Its turn has come (no write before it in flight): hand the answer to the ring. Nothing was sent when the start
 * fails, but the answer's bytes are not in memory to send otherwise: the connection closes and the client asks
 * again. */
static void files_start(struct sl_conn *c, struct write_ctx *wc)
{
	uv_os_fd_t fd = -1;
	int rc = uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0 ? 0 : -EBADF;
	if (rc == 0) {
		c->files_sending = wc;
		rc = sl_sendfile_start(wc->sf, &c->srv->sendfile_pool, &c->srv->ring, fd, wc->files, files_done_cb);
		if (rc < 0) {
			/* The start closed the files and gave the reservation back. */
			c->files_sending = NULL;
			SL_ASSERT(c->files_answers > 0);
			c->files_answers--;
		}
	} else {
		files_drop(c, wc);
	}
	if (rc < 0) {
		c->srv->stats.fetch_sendfile_failed++;
		sl_slog_msg(SL_SLOG_ERROR, "fetch_sendfile_failed", "%s: cannot send a fetch answer from files: %s",
		            c->session.peer, strerror(-rc));
		c->refs--;
		conn_uncharge(c, wc->len);
		write_free(wc);
		conn_close(c);
	}
}

/* The connection closes: the answer on its way stops (files_done_cb still runs). */
static void files_abort(struct sl_conn *c)
{
	if (c->files_sending != NULL)
		sl_sendfile_abort(c->files_sending->sf);
}

/* An answer from files that never started: its files and its reservation go back. */
static void files_drop(struct sl_conn *c, struct write_ctx *wc)
{
	for (uint32_t i = 0; i < wc->sf->part_count; i++)
		if (wc->sf->parts[i].mem == NULL)
			close(wc->sf->parts[i].fd);
	files_unreserve(c, wc->files);
}

/* Write len bytes at base (inside wc), charged to the connection until written, or, while a quota's throttle time
 * runs (security.h rule 4), hold them in order behind the answers already held: the client waits for its
 * answers, which is what slows it down. */
static void conn_write(struct sl_conn *c, struct write_ctx *wc, const uint8_t *base, size_t len)
{
	wc->conn = c;
	wc->base = base;
	wc->len = len;
	wc->next = NULL;
	c->refs++;
	conn_charge(c, len);
	if (c->delayed_head != NULL || c->files_sending != NULL || (wc->sf != NULL && c->writes_pending > 0) ||
	    (!c->srv->shutting_down && conn_throttled(c))) {
		if (c->delayed_tail)
			c->delayed_tail->next = wc;
		else
			c->delayed_head = wc;
		c->delayed_tail = wc;
		return;
	}
	if (wc->sf != NULL)
		files_start(c, wc);
	else
		write_now(c, wc);
}

/* The throttle time is over (or the broker is stopping): send what was held, in order. */
static void delayed_flush(struct sl_conn *c)
{
	if (c->delayed_head == NULL || c->closing || (!c->srv->shutting_down && conn_throttled(c)))
		return;
	while (c->delayed_head != NULL && !c->closing && c->files_sending == NULL) {
		struct write_ctx *wc = c->delayed_head;
		if (wc->sf != NULL && c->writes_pending > 0)
			break; /* the writes before it go out first */
		c->delayed_head = wc->next;
		if (c->delayed_head == NULL)
			c->delayed_tail = NULL;
		if (wc->sf != NULL)
			files_start(c, wc);
		else
			write_now(c, wc);
	}
}

/* The connection closes: held answers are dropped, as answers to a gone client are. */
static void delayed_drop(struct sl_conn *c)
{
	while (c->delayed_head != NULL) {
		struct write_ctx *wc = c->delayed_head;
		c->delayed_head = wc->next;
		SL_ASSERT(c->refs > 0);
		c->refs--;
		conn_uncharge(c, wc->len);
		if (wc->sf != NULL)
			files_drop(c, wc);
		write_free(wc);
	}
	c->delayed_tail = NULL;
}

static void conn_tls_flush(struct sl_conn *c)
{
	size_t len;
	uint8_t *p = sl_tls_conn_take_output(c->tls, &len);
	if (p == NULL)
		return;
	struct write_ctx *wc = c->closing ? NULL : malloc(sizeof(*wc));
	if (wc == NULL) {
		free(p);
		conn_close(c);
		return;
	}
	wc->owned = p;
	wc->sf = NULL;
	conn_write(c, wc, p, len);
}

/* TLS: the answer is encrypted as protobuf-c serializes it, so the records of a fetch go from the fetch buffer
 * into the TLS engine without first being copied into a frame. Small pieces gather in stage and go in as one
 * TLS record; a piece of at least TLS_DIRECT_BYTES (a fetch's records, a large batch) is encrypted from where it
 * lies. */
#define TLS_STAGE_BYTES  16384 /* one TLS record */
#define TLS_DIRECT_BYTES 4096
/* A large answer leaves in slices of this much ciphertext, each written as soon as it is encrypted: the client
 * decrypts the first while the broker encrypts the next, instead of both waiting for the whole (a 1 MiB fetch is
 * four slices). */
#define TLS_SLICE_BYTES  (256u * 1024)
struct tls_packer {
	ProtobufCBuffer base;
	struct sl_conn *c;
	size_t len;
	size_t left; /* plaintext still to encrypt, for reserving each slice's room */
	int rc;
	uint8_t stage[TLS_STAGE_BYTES];
};

/* Encrypt n bytes; past a slice of ciphertext, send it. */
static void tls_packer_write(struct tls_packer *pk, const uint8_t *data, size_t n)
{
	while (pk->rc == 0 && n > 0) {
		size_t k = n < TLS_SLICE_BYTES ? n : TLS_SLICE_BYTES;
		pk->rc = sl_tls_conn_write(pk->c->tls, data, k);
		data += k;
		n -= k;
		pk->left = pk->left > k ? pk->left - k : 0;
		if (pk->rc == 0 && sl_tls_conn_pending(pk->c->tls) >= TLS_SLICE_BYTES) {
			conn_tls_flush(pk->c);
			size_t next = pk->left < TLS_SLICE_BYTES * 2 ? pk->left : TLS_SLICE_BYTES * 2;
			pk->rc = pk->c->closing ? -EPIPE : sl_tls_conn_reserve(pk->c->tls, next);
		}
	}
}

static void tls_packer_flush(struct tls_packer *pk)
{
	if (pk->len > 0)
		tls_packer_write(pk, pk->stage, pk->len);
	pk->len = 0;
}

static void tls_packer_append(ProtobufCBuffer *buffer, size_t len, const uint8_t *data)
{
	struct tls_packer *pk = (struct tls_packer *)buffer;
	if (len >= TLS_DIRECT_BYTES) {
		tls_packer_flush(pk);
		tls_packer_write(pk, data, len);
		return;
	}
	if (pk->len + len > sizeof(pk->stage))
		tls_packer_flush(pk);
	memcpy(pk->stage + pk->len, data, len);
	pk->len += len;
}

static void native_send_tls(struct sl_conn *c, struct sl_req *req, size_t len)
{
	static struct tls_packer pk; /* the loop's thread only, one answer at a time */
	pk.base.append = tls_packer_append;
	pk.c = c;
	pk.len = 0;
	pk.left = SL_FRAME_HEADER_BYTES + len;
	pk.rc = sl_tls_conn_reserve(c->tls, pk.left < TLS_SLICE_BYTES * 2 ? pk.left : TLS_SLICE_BYTES * 2);
	sl_frame_put_length(pk.stage, (uint32_t)len);
	pk.len = SL_FRAME_HEADER_BYTES;
	size_t packed = synclog__response__pack_to_buffer(&req->resp, &pk.base);
	SL_ASSERT(packed == len);
	tls_packer_flush(&pk);
	if (pk.rc < 0)
		conn_close(c);
	else
		conn_tls_flush(c);
}

/* An answer carrying stored spans by reference (request.h, sl_req_file) is serialized into its memory parts, cut
 * where each span's bytes go: protobuf-c hands a bytes field's data to append as it lies, so a span shows up as
 * its marker (the address of its sl_req_file) with its length, and becomes a file part. */
struct files_packer {
	ProtobufCBuffer base;
	struct sl_req *req;
	struct sl_sendfile *sf;
	uint32_t parts_max;
	uint32_t files_seen;
	uint8_t *mem;
	size_t mem_len, mem_cap;
};

static void files_packer_append(ProtobufCBuffer *buffer, size_t len, const uint8_t *data)
{
	struct files_packer *pk = (struct files_packer *)buffer;
	struct sl_req *req = pk->req;
	struct sl_sendfile *sf = pk->sf;
	struct sl_req_file *mine = sl_req_file_of(req, data, len);
	if (mine != NULL) {
		SL_ASSERT(sf->part_count < pk->parts_max && mine->fd >= 0);
		sf->parts[sf->part_count++] = (struct sl_sendfile_part){NULL, mine->fd, mine->pos, mine->len};
		mine->fd = -1; /* the answer's to close now */
		pk->files_seen++;
		return;
	}
	if (len == 0)
		return;
	SL_ASSERT(pk->mem_len + len <= pk->mem_cap);
	memcpy(pk->mem + pk->mem_len, data, len);
	struct sl_sendfile_part *last = sf->part_count > 0 ? &sf->parts[sf->part_count - 1] : NULL;
	if (last != NULL && last->mem != NULL && last->mem + last->len == pk->mem + pk->mem_len) {
		last->len += len;
	} else {
		SL_ASSERT(sf->part_count < pk->parts_max);
		sf->parts[sf->part_count++] = (struct sl_sendfile_part){pk->mem + pk->mem_len, -1, 0, len};
	}
	pk->mem_len += len;
}

/* The answer of req, whose spans go from their files: only its memory parts are written here; they are charged to
 * the connection like any answer, the spans' bytes never are in memory. Returns 0, or -ENOMEM with nothing taken
 * from req (the caller closes the connection). */
static int native_send_files(struct sl_conn *c, struct native_req *nr, size_t len)
{
	struct sl_req *req = &nr->req;
	uint64_t file_bytes = 0;
	for (uint32_t i = 0; i < req->file_count; i++)
		file_bytes += req->files[i].len;
	SL_ASSERT(file_bytes <= len);
	size_t mem_cap = SL_FRAME_HEADER_BYTES + len - (size_t)file_bytes;
	uint32_t parts_max = 2 * req->file_count + 1; /* memory, then each span followed by memory */
	struct write_ctx *wc = malloc(sizeof(*wc) + mem_cap);
	struct sl_sendfile *sf = calloc(1, sizeof(*sf) + parts_max * sizeof(struct sl_sendfile_part));
	if (wc == NULL || sf == NULL) {
		free(wc);
		free(sf);
		return -ENOMEM;
	}
	sf->parts = (struct sl_sendfile_part *)(sf + 1);
	sf->data = wc;
	struct files_packer pk = {.base.append = files_packer_append,
	                          .req = req,
	                          .sf = sf,
	                          .parts_max = parts_max,
	                          .mem = wc->bytes,
	                          .mem_cap = mem_cap};
	uint8_t header[SL_FRAME_HEADER_BYTES];
	sl_frame_put_length(header, (uint32_t)len);
	files_packer_append(&pk.base, sizeof(header), header);
	size_t packed = synclog__response__pack_to_buffer(&req->resp, &pk.base);
	SL_ASSERT(packed == len && pk.files_seen == req->file_count && pk.mem_len == mem_cap);
	wc->owned = NULL;
	wc->sf = sf;
	wc->files = nr->files_reserved_count;
	nr->files_reserved = 0; /* the answer's now, given back when it is sent or dropped */
	conn_write(c, wc, wc->bytes, pk.mem_len);
	return 0;
}

/* request.h: may a fetch answer go from its files? Only on a plaintext connection with --fetch-zero-copy on: TLS
 * encrypts the bytes in user space, so TLS connections take the copy path, as does any answer past the pool's
 * pipes and descriptors (sendfile.h invariant 3) or past SL_SENDFILE_CONN_ANSWERS_MAX of its connection. */
static int native_files_reserve(struct sl_req *req, uint32_t file_count)
{
	struct native_req *nr = (struct native_req *)req;
	struct sl_conn *c = req->fe_data;
	if (!c->srv->cfg.fetch_zero_copy || c->tls != NULL || c->closing || nr->files_reserved)
		return -EOPNOTSUPP;
	if (c->files_answers >= SL_SENDFILE_CONN_ANSWERS_MAX)
		return -EAGAIN;
	int rc = sl_sendfile_reserve(&c->srv->sendfile_pool, file_count);
	if (rc < 0)
		return rc;
	c->files_answers++;
	nr->files_reserved = 1;
	nr->files_reserved_count = file_count;
	return 0;
}

static void native_send(struct sl_req *req)
{
	struct sl_conn *c = req->fe_data;
	struct native_req *nr = (struct native_req *)req;
	if (c->closing)
		return; /* the client is gone: the answer is dropped */
	size_t len = synclog__response__get_packed_size(&req->resp);
	if (nr->files_reserved && req->file_count > 0) {
		if (native_send_files(c, nr, len) < 0)
			conn_close(c);
		return;
	}
	if (c->tls != NULL) {
		native_send_tls(c, req, len);
		return;
	}
	struct write_ctx *wc = malloc(sizeof(*wc) + SL_FRAME_HEADER_BYTES + len);
	if (wc == NULL) {
		conn_close(c);
		return;
	}
	sl_frame_put_length(wc->bytes, (uint32_t)len);
	synclog__response__pack(&req->resp, wc->bytes + SL_FRAME_HEADER_BYTES);
	wc->owned = NULL;
	wc->sf = NULL;
	conn_write(c, wc, wc->bytes, SL_FRAME_HEADER_BYTES + len);
}

static void native_hold(struct sl_req *req, uint64_t bytes)
{
	conn_charge(req->fe_data, bytes);
}

static const struct sl_req_frontend native_frontend = {
        .name = "native",
        .send = native_send,
        .finish = native_finish,
        .hold = native_hold,
        .files_reserve = native_files_reserve,
};

static struct sl_req *req_new(struct sl_conn *c, uint32_t frame_bytes)
{
	struct native_req *nr = calloc(1, sizeof(*nr));
	if (nr == NULL)
		return NULL;
	sl_req_init(&nr->req, c->srv, &native_frontend, c, &c->session);
	nr->frame_bytes = frame_bytes;
	sl_security_inflight_charge(&c->session, frame_bytes, &nr->charged);
	c->refs++;
	c->requests++;
	conn_charge(c, frame_bytes);
	return &nr->req;
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
	int parsed = sl_produce_view_parse(frame, len, &v, parts, n);
	SL_ASSERT(parsed == 1 && v.part_count == n);
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
	m->produce.backfill = v.backfill;
	m->produce.n_partitions = n;
	m->produce.partitions = pps;
	m->request.correlation_id = v.correlation_id;
	m->request.body_case = SYNCLOG__REQUEST__BODY_PRODUCE;
	m->request.produce = &m->produce;
	req->msg_borrowed = 1;
	return &m->request;
}

/* Decode one frame and hand it to broker/dispatch.h. owned is the frame's own buffer (large frames,
 * conn_own_frame): the request keeps it, so a Produce request's batches are appended from where they were
 * received. */
static void dispatch(struct sl_conn *c, uint8_t *frame, uint32_t len, uint8_t *owned)
{
	struct sl_server *srv = c->srv;
	if (owned != NULL)
		conn_uncharge(c, len); /* the buffer's charge (conn_own_frame) becomes the request's */
	conn_touch(c);
	struct sl_req *req = req_new(c, len);
	if (req == NULL) {
		sl_frame_pool_put(&srv->net->frame_pool, owned);
		conn_close(c);
		return;
	}
	((struct native_req *)req)->frame_mem = owned;
	srv->stats.requests++;
	const char *why = NULL;
	if (sl_frame_check(&synclog__request__descriptor, frame, len, &why) == 0) {
		if (owned != NULL)
			req->msg = request_view(req, frame, len);
		if (req->msg == NULL)
			req->msg = synclog__request__unpack(NULL, len, frame);
		if (req->msg == NULL)
			why = "not a valid Request message";
	}
	if (req->msg == NULL) {
		srv->stats.bad_frames++;
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INVALID_REQUEST, "frame of %u bytes refused: %s", len, why);
		sl_req_respond(req);
		return;
	}
	sl_dispatch(req);
}

/* ---- start and stop (shard.c drives them) ---- */

int sl_net_start(struct sl_server *srv, int *port_out, char *err, size_t err_cap)
{
	struct sl_net *net = calloc(1, sizeof(*net));
	if (net == NULL)
		return -ENOMEM;
	srv->net = net;
	uv_tcp_init(&srv->loop, &net->listener);
	net->listener.data = srv;
	uv_timer_init(&srv->loop, &net->sweep);
	net->sweep.data = srv;
	uv_timer_start(&net->sweep, sweep_cb, SWEEP_INTERVAL_MS, SWEEP_INTERVAL_MS);
	/* Names and IPv6 too (proto/base/addr.h); resolved once, before the loop serves. */
	struct sockaddr_storage addr;
	socklen_t addr_len;
	char what[SL_ADDR_TEXT_BYTES], why[512];
	sl_addr_join(srv->cfg.listen_host, srv->cfg.listen_port, what, sizeof(what));
	int rc = sl_addr_resolve(srv->cfg.listen_host, srv->cfg.listen_port, 1, &addr, &addr_len, why, sizeof(why));
	if (rc < 0) {
		snprintf(err, err_cap, "cannot listen on %s: %s (check --listen)", what, why);
		return rc;
	}
	rc = uv_tcp_bind(&net->listener, (const struct sockaddr *)&addr, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&net->listener, 511, on_connection);
	if (rc == 0) {
		struct sockaddr_storage bound;
		int len = sizeof(bound);
		uv_tcp_getsockname(&net->listener, (struct sockaddr *)&bound, &len);
		sl_addr_format((struct sockaddr *)&bound, srv->listen_addr, sizeof(srv->listen_addr));
		*port_out = ntohs(((struct sockaddr_in *)&bound)->sin_port); /* same offset in sockaddr_in6 */
	} else {
		snprintf(err, err_cap, "cannot listen on %s: %s%s", what, uv_strerror(rc),
		         rc == UV_EADDRINUSE      ? " (is another broker running there? pick another --listen port)"
		         : rc == UV_EADDRNOTAVAIL ? " (no interface of this machine has that address)"
		         : rc == UV_EACCES        ? " (ports below 1024 need privileges)"
		                                  : "");
	}
	return rc;
}

static void close_noop_cb(uv_handle_t *h)
{
}

void sl_net_stop_accepting(struct sl_server *srv)
{
	if (srv->net == NULL)
		return;
	if (!uv_is_closing((uv_handle_t *)&srv->net->listener)) {
		uv_close((uv_handle_t *)&srv->net->listener, close_noop_cb);
		uv_close((uv_handle_t *)&srv->net->sweep, close_noop_cb);
	}
	for (struct sl_conn *c = srv->net->conns; c; c = c->next) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		sl_req_cancel_all(&c->session, 0);
		delayed_flush(c); /* the throttle time ends with the broker */
	}
}

int sl_net_drained(const struct sl_server *srv)
{
	for (struct sl_conn *c = srv->net ? srv->net->conns : NULL; c; c = c->next)
		if (c->refs > 0)
			return 0;
	return 1;
}

void sl_net_close(struct sl_server *srv)
{
	while (srv->net && srv->net->conns)
		conn_close(srv->net->conns);
}

void sl_net_free(struct sl_server *srv)
{
	if (srv->net == NULL)
		return;
	sl_frame_pool_free(&srv->net->frame_pool);
	free(srv->net);
	srv->net = NULL;
}
