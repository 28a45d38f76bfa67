/* The Prometheus endpoint (`--metrics HOST:PORT`): a tiny HTTP/1.0 responder on the broker's loop that
 * answers GET /metrics with the broker's counters and every partition's offsets and size, then closes. With TLS
 * configured it speaks HTTPS through the same engine as the native listener (broker/tls.h), client certificates
 * included.
 *
 * Bounded so that it can never take what the main listener needs: at most SL_LIMITS_METRICS_CONNECTIONS_MAX scrapes
 * at once (the descriptors broker/limits.h sets aside for it; past it a new connection is closed at accept), and a
 * scrape that has not been answered and written within SCRAPE_TIMEOUT_MS is closed. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/compaction.h"
#include "broker/net/net.h"
#include "broker/tls.h"
#include "proto/base/slog.h"

/* A request line and headers larger than this are not a metrics scrape. */
#define METRICS_REQUEST_BYTES_MAX 8192
/* A scrape sends a few hundred bytes and reads the page: 5 s is ample on any network a scraper uses, and short
 * enough that idle connections cannot pile up. Checked every SCRAPE_SWEEP_MS. */
#define SCRAPE_TIMEOUT_MS         5000
#define SCRAPE_SWEEP_MS           500

struct scrape;

struct sl_metrics {
	uv_tcp_t listener;
	uv_timer_t sweep;
	int active;
	struct scrape *head; /* open scrapes, oldest first */
	struct scrape *tail;
	uint32_t open_count;
};

struct scrape {
	uv_tcp_t tcp;
	struct sl_server *srv;
	struct scrape *prev, *next; /* in sl_metrics's list while open */
	uint64_t accepted_ms;
	int closing;
	char buf[METRICS_REQUEST_BYTES_MAX];
	size_t len;
	int answered;
	struct sl_tls_conn *tls; /* NULL: plain HTTP */
	uint32_t writes;         /* in flight; the scrape is closed once the answer's is done */
};

struct out {
	char *p;
	size_t len, cap;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(o->p ? o->p + o->len : NULL, o->p ? o->cap - o->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if (o->p && o->len + (size_t)n < o->cap) {
			o->len += (size_t)n;
			return;
		}
		size_t cap = o->cap ? o->cap * 2 : 16384;
		while (cap < o->len + (size_t)n + 1)
			cap *= 2;
		char *np = realloc(o->p, cap);
		if (np == NULL)
			return;
		o->p = np;
		o->cap = cap;
	}
}

static void cleaner_render(struct sl_server *srv, struct out *o);

static void render(struct sl_server *srv, struct out *o)
{
	const struct sl_server_stats *s = &srv->stats;
	put(o, "# TYPE synclog_connections gauge\nsynclog_connections %u\n", srv->stats.connections_open);
#define COUNTER(name, v) put(o, "# TYPE synclog_" name " counter\nsynclog_" name " %" PRIu64 "\n", (uint64_t)(v))
	COUNTER("connections_accepted_total", s->connections_accepted);
	COUNTER("connections_refused_total", s->connections_refused);
	COUNTER("requests_total", s->requests);
	COUNTER("bad_frames_total", s->bad_frames);
	COUNTER("produce_batches_total", s->produce_batches);
	COUNTER("produce_records_total", s->produce_records);
	COUNTER("produce_bytes_total", s->produce_bytes);
	COUNTER("produce_errors_total", s->produce_errors);
	COUNTER("fetch_requests_total", s->fetch_requests);
	COUNTER("fetch_bytes_total", s->fetch_bytes);
	const struct sl_security *sec = srv->security;
	COUNTER("auth_successes_total", sec->stats.auth_succeeded);
	COUNTER("auth_failures_total", sec->stats.auth_failed);
	COUNTER("requests_denied_total", sec->stats.denied);
	COUNTER("connections_rate_limited_total", sec->stats.connections_rate_limited);
	COUNTER("connections_principal_limited_total", sec->stats.connections_principal_limited);
	COUNTER("quota_throttle_ms_total", sec->stats.throttle_ms);
	COUNTER("audit_dropped_total", sec->audit.dropped);
	COUNTER("audit_write_errors_total", sec->audit.write_errors);
#undef COUNTER
	char limits[4096];
	sl_limits_metrics_text(&srv->limits, &srv->files, limits, sizeof(limits));
	put(o, "%s", limits);
	put(o,
	    "# TYPE synclog_quota_throttled_total counter\n"
	    "synclog_quota_throttled_total{kind=\"produce\"} %" PRIu64 "\n"
	    "synclog_quota_throttled_total{kind=\"fetch\"} %" PRIu64 "\n",
	    sec->stats.throttled_produce, sec->stats.throttled_fetch);
	/* Every administrative action and failed authentication, by result (broker/audit.h). */
	put(o, "# TYPE synclog_audit_events_total counter\n");
	for (int a = 0; a < SL_AUDIT_ACTION_COUNT; a++)
		for (int r = 0; r < SL_AUDIT_RESULT_COUNT; r++)
			put(o, "synclog_audit_events_total{action=\"%s\",result=\"%s\"} %" PRIu64 "\n",
			    sl_audit_action_name((enum sl_audit_action)a),
			    sl_audit_result_name((enum sl_audit_result)r), sec->audit.events[a][r]);
	put(o, "# TYPE synclog_partition_next_offset gauge\n# TYPE synclog_partition_start_offset gauge\n"
	       "# TYPE synclog_partition_bytes gauge\n# TYPE synclog_partition_segments gauge\n"
	       "# TYPE synclog_partition_available gauge\n");
	for (struct sl_topic *t = srv->topics.head; t; t = t->next) {
		for (uint32_t i = 0; i < t->cfg.partitions; i++) {
			struct sl_log *log = t->parts[i].log;
			const char *n = t->cfg.name;
			put(o, "synclog_partition_available{topic=\"%s\",partition=\"%u\"} %d\n", n, i, log != NULL);
			if (log == NULL)
				continue;
			struct sl_log_stats st;
			sl_log_get_stats(log, &st);
			put(o, "synclog_partition_next_offset{topic=\"%s\",partition=\"%u\"} %" PRId64 "\n", n, i,
			    st.next_offset);
			put(o, "synclog_partition_start_offset{topic=\"%s\",partition=\"%u\"} %" PRId64 "\n", n, i,
			    st.start_offset);
			put(o, "synclog_partition_bytes{topic=\"%s\",partition=\"%u\"} %" PRIu64 "\n", n, i, st.bytes);
			put(o, "synclog_partition_segments{topic=\"%s\",partition=\"%u\"} %u\n", n, i,
			    st.segment_count);
		}
	}
	cleaner_render(srv, o);
}

/* The cleaner (broker/compaction.h): totals since start, and per partition of compacted topics. */
static void cleaner_render(struct sl_server *srv, struct out *o)
{
	const struct sl_compaction_totals *t = sl_compaction_totals(srv);
#define COUNTER(name, v) put(o, "# TYPE synclog_" name " counter\nsynclog_" name " %" PRIu64 "\n", (uint64_t)(v))
	COUNTER("cleaner_runs_total", t->runs);
	COUNTER("cleaner_failures_total", t->failures);
	COUNTER("cleaner_bytes_read_total", t->bytes_read);
	COUNTER("cleaner_bytes_written_total", t->bytes_written);
	COUNTER("cleaner_records_removed_total", t->records_removed);
	COUNTER("cleaner_tombstones_removed_total", t->tombstones_removed);
#undef COUNTER
	put(o, "# TYPE synclog_cleaner_last_run_duration_ms gauge\nsynclog_cleaner_last_run_duration_ms %" PRId64 "\n",
	    t->last_duration_ms);
	put(o, "# TYPE synclog_partition_dirty_ratio gauge\n# TYPE synclog_partition_tombstones_kept gauge\n");
	for (struct sl_topic *topic = srv->topics.head; topic; topic = topic->next) {
		for (uint32_t i = 0; topic->cfg.compact && i < topic->cfg.partitions; i++) {
			const struct sl_partition *p = &topic->parts[i];
			if (p->log == NULL)
				continue;
			put(o, "synclog_partition_dirty_ratio{topic=\"%s\",partition=\"%u\"} %.4f\n", topic->cfg.name,
			    i, sl_compaction_dirty_ratio(p));
			put(o, "synclog_partition_tombstones_kept{topic=\"%s\",partition=\"%u\"} %" PRIu64 "\n",
			    topic->cfg.name, i, p->clean ? p->clean->last.tombstones_kept : 0);
		}
	}
}

static void scrape_free_cb(uv_handle_t *h)
{
	struct scrape *sc = h->data;
	sl_tls_conn_free(sc->tls);
	free(sc);
}

static void scrape_close(struct scrape *sc)
{
	if (sc->closing)
		return;
	sc->closing = 1;
	struct sl_metrics *m = sc->srv->metrics;
	if (sc->prev)
		sc->prev->next = sc->next;
	else
		m->head = sc->next;
	if (sc->next)
		sc->next->prev = sc->prev;
	else
		m->tail = sc->prev;
	m->open_count--;
	uv_close((uv_handle_t *)&sc->tcp, scrape_free_cb);
}

static void scrape_written_cb(uv_write_t *w, int status)
{
	struct scrape *sc = w->data;
	free(w);
	sc->writes--;
	/* The answer was the last write: HTTP/1.0 closes after it. */
	if (status < 0 || (sc->answered && sc->writes == 0))
		scrape_close(sc);
}

/* Write len bytes at data (copied). Returns 0 or -1 after closing the scrape. */
static int scrape_write(struct scrape *sc, const void *data, size_t len)
{
	uv_write_t *w = malloc(sizeof(*w) + len);
	if (w == NULL) {
		scrape_close(sc);
		return -1;
	}
	memcpy(w + 1, data, len);
	w->data = sc;
	uv_buf_t b = uv_buf_init((char *)(w + 1), (unsigned)len);
	if (uv_write(w, (uv_stream_t *)&sc->tcp, &b, 1, scrape_written_cb) != 0) {
		free(w);
		scrape_close(sc);
		return -1;
	}
	sc->writes++;
	return 0;
}

/* TLS: send what the engine encrypted (the handshake's messages, or the answer). */
static int scrape_tls_flush(struct scrape *sc)
{
	size_t len;
	uint8_t *p = sl_tls_conn_take_output(sc->tls, &len);
	if (p == NULL)
		return 0;
	int rc = scrape_write(sc, p, len);
	free(p);
	return rc;
}

static void answer(struct scrape *sc)
{
	sc->answered = 1;
	uv_read_stop((uv_stream_t *)&sc->tcp);
	struct out body = {0}, msg = {0};
	int ok = strncmp(sc->buf, "GET /metrics ", 13) == 0 || strncmp(sc->buf, "GET / ", 6) == 0;
	if (ok)
		render(sc->srv, &body);
	else
		put(&body, "not found: scrape GET /metrics\n");
	put(&msg, "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: %zu\r\n\r\n%.*s",
	    ok ? "200 OK" : "404 Not Found", body.len, (int)body.len, body.p ? body.p : "");
	free(body.p);
	if (msg.p == NULL) {
		scrape_close(sc);
		return;
	}
	if (sc->tls != NULL) {
		if (sl_tls_conn_write(sc->tls, msg.p, msg.len) < 0)
			scrape_close(sc);
		else
			scrape_tls_flush(sc);
	} else {
		scrape_write(sc, msg.p, msg.len);
	}
	free(msg.p);
}

static void scrape_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct scrape *sc = h->data;
	if (sc->tls != NULL) {
		size_t cap;
		buf->base = (char *)sl_tls_conn_read_buffer(sc->tls, &cap);
		buf->len = cap;
		return;
	}
	buf->base = sc->buf + sc->len;
	buf->len = sizeof(sc->buf) - 1 - sc->len;
}

/* n bytes of the request arrived in buf: answer once the headers are complete. */
static void scrape_received(struct scrape *sc, size_t n)
{
	sc->len += n;
	sc->buf[sc->len] = '\0';
	if (strstr(sc->buf, "\r\n\r\n") || strstr(sc->buf, "\n\n") || sc->len == sizeof(sc->buf) - 1)
		answer(sc);
}

static void scrape_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct scrape *sc = s->data;
	if (sc->answered || sc->closing)
		return;
	if (n < 0 || (n == 0 && sc->len == sizeof(sc->buf) - 1)) {
		scrape_close(sc);
		return;
	}
	if (sc->tls == NULL) {
		scrape_received(sc, (size_t)n);
		return;
	}
	sl_tls_conn_received(sc->tls, (size_t)n);
	while (!sc->answered && !sc->closing && sc->len < sizeof(sc->buf) - 1) {
		const char *why = "";
		ssize_t got =
		        sl_tls_conn_read(sc->tls, (uint8_t *)sc->buf + sc->len, sizeof(sc->buf) - 1 - sc->len, &why);
		if (scrape_tls_flush(sc) < 0)
			return;
		if (got < 0) {
			if (got != -ECONNRESET)
				sl_slog_msg(SL_SLOG_WARN, "tls_failed", "metrics scrape: %s", why);
			scrape_close(sc);
			return;
		}
		if (got == 0)
			return;
		scrape_received(sc, (size_t)got);
	}
}

static void on_scrape(uv_stream_t *listener, int status)
{
	struct sl_server *srv = listener->data;
	struct sl_metrics *m = srv->metrics;
	if (status < 0)
		return;
	struct scrape *sc = calloc(1, sizeof(*sc));
	if (sc == NULL)
		return;
	sc->srv = srv;
	uv_tcp_init(&srv->loop, &sc->tcp);
	sc->tcp.data = sc;
	/* Accepted even past the cap, and closed at once: left in the backlog it would keep the listener ready. */
	if (uv_accept(listener, (uv_stream_t *)&sc->tcp) != 0 || srv->shutting_down ||
	    m->open_count >= SL_LIMITS_METRICS_CONNECTIONS_MAX ||
	    (srv->tls != NULL && (sc->tls = sl_tls_conn_new(srv->tls)) == NULL)) {
		if (m->open_count >= SL_LIMITS_METRICS_CONNECTIONS_MAX)
			srv->limits.metrics_refused++;
		sc->closing = 1;
		uv_close((uv_handle_t *)&sc->tcp, scrape_free_cb);
		return;
	}
	sc->accepted_ms = uv_now(&srv->loop);
	sc->prev = m->tail;
	if (m->tail)
		m->tail->next = sc;
	else
		m->head = sc;
	m->tail = sc;
	m->open_count++;
	uv_read_start((uv_stream_t *)&sc->tcp, scrape_alloc_cb, scrape_read_cb);
}

/* Scrapes are in accept order: close from the oldest while they are past the timeout. */
static void scrape_sweep_cb(uv_timer_t *t)
{
	struct sl_server *srv = t->data;
	struct sl_metrics *m = srv->metrics;
	uint64_t now = uv_now(&srv->loop);
	while (m->head != NULL && now - m->head->accepted_ms >= SCRAPE_TIMEOUT_MS) {
		srv->limits.metrics_timed_out++;
		scrape_close(m->head);
	}
}

int sl_metrics_start(struct sl_server *srv, char *err, size_t err_cap)
{
	if (srv->cfg.metrics_port < 0)
		return 0;
	struct sl_metrics *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return -ENOMEM;
	uv_tcp_init(&srv->loop, &m->listener);
	m->listener.data = srv;
	uv_timer_init(&srv->loop, &m->sweep);
	m->sweep.data = srv;
	uv_timer_start(&m->sweep, scrape_sweep_cb, SCRAPE_SWEEP_MS, SCRAPE_SWEEP_MS);
	srv->metrics = m;
	m->active = 1;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	char what[SL_ADDR_TEXT_BYTES], why[512];
	sl_addr_join(srv->cfg.metrics_host, srv->cfg.metrics_port, what, sizeof(what));
	int rc = sl_addr_resolve(srv->cfg.metrics_host, srv->cfg.metrics_port, 1, &addr, &addr_len, why, sizeof(why));
	if (rc < 0) {
		snprintf(err, err_cap, "cannot serve metrics on %s: %s (check --metrics)", what, why);
		return rc;
	}
	rc = uv_tcp_bind(&m->listener, (const struct sockaddr *)&addr, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&m->listener, 64, on_scrape);
	if (rc == 0) {
		struct sockaddr_storage bound;
		int len = sizeof(bound);
		uv_tcp_getsockname(&m->listener, (struct sockaddr *)&bound, &len);
		sl_addr_format((struct sockaddr *)&bound, srv->metrics_addr, sizeof(srv->metrics_addr));
	} else {
		snprintf(err, err_cap, "cannot serve metrics on %s: %s (pick another --metrics address or 'off')", what,
		         uv_strerror(rc));
	}
	return rc;
}

static void metrics_free_cb(uv_handle_t *h)
{
	struct sl_server *srv = h->data;
	free(srv->metrics);
	srv->metrics = NULL;
}

static void sweep_closed_cb(uv_handle_t *h)
{
	struct sl_server *srv = h->data;
	uv_close((uv_handle_t *)&srv->metrics->listener, metrics_free_cb);
}

void sl_metrics_stop(struct sl_server *srv)
{
	struct sl_metrics *m = srv->metrics;
	if (m == NULL || !m->active)
		return;
	m->active = 0;
	/* Scrapes still open hold a pointer to srv only; they end on their own. */
	while (m->head != NULL)
		scrape_close(m->head);
	/* The listener is freed last, with m, once the timer that shares m is closed. */
	uv_close((uv_handle_t *)&m->sweep, sweep_closed_cb);
}
