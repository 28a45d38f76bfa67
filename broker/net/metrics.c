/* The Prometheus endpoint (`--metrics HOST:PORT`): a tiny HTTP/1.0 responder on the broker's loop that answers
 * GET /metrics, /healthz and /readyz (their text: metrics_render.c) and the console's /ui/ and /api/v1/
 * (console.c), then closes. It listens from the start,
 * before recovery, so /healthz and /readyz can be asked while the data directory opens. With TLS configured it
 * speaks HTTPS through the same engine as the native listener (broker/tls.h), client certificates included; the
 * server context is opened before this listener starts.
 *
 * Bounded so that it can never take what the main listener needs: at most SL_LIMITS_METRICS_CONNECTIONS_MAX scrapes
 * at once (the descriptors broker/limits.h sets aside for it; past it a new connection is closed at accept), and a
 * scrape that has not been answered and written within SCRAPE_TIMEOUT_MS is closed. A /metrics answer is rendered
 * partly on the thread pool: a scrape closed meanwhile keeps its memory until the rendering calls back
 * (invariant: a scrape is freed once its handle is closed and no rendering holds it). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/net/console.h"
#include "broker/net/metrics.h"
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
	int rendering;     /* sl_metrics_route has not called back yet */
	int handle_closed; /* the handle's close callback ran */
	char buf[METRICS_REQUEST_BYTES_MAX];
	size_t len;
	int answered;
	struct sl_tls_conn *tls; /* NULL: plain HTTP */
	uint32_t writes;         /* TLS writes in flight; the scrape is closed once the answer's are done */
};

static void scrape_free_cb(uv_handle_t *h)
{
	struct scrape *sc = h->data;
	sc->handle_closed = 1;
	if (!sc->rendering) {
		sl_tls_conn_free(sc->tls);
		free(sc);
	}
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

/* One answer: the header and the body, written from their own buffers (a body of megabytes is not copied). */
struct answer_write {
	uv_write_t w;
	struct scrape *sc;
	char *body, *more;
	char header[400];
};

static void scrape_written_cb(uv_write_t *w, int status)
{
	struct answer_write *aw = (struct answer_write *)w;
	struct scrape *sc = aw->sc;
	free(aw->body);
	free(aw->more);
	free(aw);
	scrape_close(sc);
}

static void tls_written_cb(uv_write_t *w, int status)
{
	struct scrape *sc = w->data;
	free(w);
	sc->writes--;
	/* The answer was the last write: HTTP/1.0 closes after it. */
	if (status < 0 || (sc->answered && !sc->rendering && sc->writes == 0))
		scrape_close(sc);
}

/* TLS: send what the engine encrypted (the handshake's messages, or the answer), from the engine's buffer.
 * Returns 0, or -1 after closing the scrape. */
static int scrape_tls_flush(struct scrape *sc)
{
	size_t len;
	uint8_t *p = sl_tls_conn_take_output(sc->tls, &len);
	if (p == NULL)
		return 0;
	uv_write_t *w = malloc(sizeof(*w) + len);
	if (w == NULL) {
		free(p);
		scrape_close(sc);
		return -1;
	}
	memcpy(w + 1, p, len);
	free(p);
	w->data = sc;
	uv_buf_t b = uv_buf_init((char *)(w + 1), (unsigned)len);
	if (uv_write(w, (uv_stream_t *)&sc->tcp, &b, 1, tls_written_cb) != 0) {
		free(w);
		scrape_close(sc);
		return -1;
	}
	sc->writes++;
	return 0;
}

/* TLS: the answer goes through the engine, which copies it into records (no zero-copy body there). */
static void answer_tls(struct scrape *sc, const char *header, size_t header_len, struct sl_text *body,
                       struct sl_text *more)
{
	int rc = sl_tls_conn_write(sc->tls, header, header_len);
	if (rc == 0 && body->len > 0)
		rc = sl_tls_conn_write(sc->tls, body->p, body->len);
	if (rc == 0 && more != NULL && more->len > 0)
		rc = sl_tls_conn_write(sc->tls, more->p, more->len);
	free(body->p);
	free(more != NULL ? more->p : NULL);
	if (rc < 0) {
		scrape_close(sc);
		return;
	}
	if (scrape_tls_flush(sc) == 0 && sc->writes == 0)
		scrape_close(sc);
}

/* Write the answer to sc and close it once written; body and more (may be NULL) are taken over. */
static void answer_write(struct scrape *sc, int status, const char *content_type, struct sl_text *body,
                         struct sl_text *more)
{
	sc->rendering = 0;
	if (sc->closing) {
		/* Timed out or the broker stopped while the thread pool rendered: nobody to answer. */
		free(body->p);
		free(more != NULL ? more->p : NULL);
		if (sc->handle_closed) {
			sl_tls_conn_free(sc->tls);
			free(sc);
		}
		return;
	}
	const char *reason = status == 200   ? "200 OK"
	                     : status == 400 ? "400 Bad Request"
	                     : status == 401 ? "401 Unauthorized"
	                     : status == 403 ? "403 Forbidden"
	                     : status == 405 ? "405 Method Not Allowed"
	                     : status == 503 ? "503 Service Unavailable"
	                     : status == 500 ? "500 Internal Server Error"
	                                     : "404 Not Found";
	size_t more_len = more != NULL ? more->len : 0;
	/* The console's pages load only what this listener serves (no inline script, no other origin); a 401 says
	 * how to sign in (console_auth.c). */
	char header[400];
	int hn = snprintf(header, sizeof(header),
	                  "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
	                  "X-Content-Type-Options: nosniff\r\nContent-Security-Policy: default-src 'self'\r\n%s\r\n",
	                  reason, content_type, body->len + more_len,
	                  status == 401 ? "WWW-Authenticate: Basic realm=\"synclog console\", charset=\"UTF-8\"\r\n"
	                                : "");
	if (sc->tls != NULL) {
		answer_tls(sc, header, (size_t)hn, body, more);
		return;
	}
	struct answer_write *aw = malloc(sizeof(*aw));
	if (aw == NULL) {
		free(body->p);
		free(more != NULL ? more->p : NULL);
		scrape_close(sc);
		return;
	}
	aw->sc = sc;
	aw->body = body->p;
	aw->more = more != NULL ? more->p : NULL;
	memcpy(aw->header, header, (size_t)hn + 1);
	int n = hn;
	uv_buf_t b[3] = {uv_buf_init(aw->header, (unsigned)n), uv_buf_init(body->p ? body->p : "", (unsigned)body->len),
	                 uv_buf_init(aw->more ? aw->more : "", (unsigned)more_len)};
	if (uv_write(&aw->w, (uv_stream_t *)&sc->tcp, b, 3, scrape_written_cb) != 0) {
		free(aw->body);
		free(aw->more);
		free(aw);
		scrape_close(sc);
	}
}

static void answer_cb(void *arg, int status, struct sl_text *body, struct sl_text *more)
{
	answer_write(arg, status, "text/plain; version=0.0.4", body, more);
}

static void console_answer_cb(void *arg, int status, const char *content_type, struct sl_text *body)
{
	answer_write(arg, status, content_type, body, NULL);
}

static void answer(struct scrape *sc)
{
	sc->answered = 1;
	uv_read_stop((uv_stream_t *)&sc->tcp);
	sc->rendering = 1;
	if (sl_console_wants(sc->buf)) {
		struct sl_console_client client = {.tls = sc->tls != NULL};
		struct sockaddr_storage peer;
		int len = sizeof(peer);
		if (uv_tcp_getpeername(&sc->tcp, (struct sockaddr *)&peer, &len) == 0) {
			sl_addr_format((struct sockaddr *)&peer, client.peer, sizeof(client.peer));
			client.loopback = sl_addr_is_loopback((struct sockaddr *)&peer);
			client.addr = peer;
		}
		sl_console_route(sc->srv, sc->buf, &client, console_answer_cb, sc);
	} else {
		sl_metrics_route(sc->srv, sc->buf, answer_cb, sc);
	}
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
	if (sl_console_history_start(srv) != 0) {
		snprintf(err, err_cap, "out of memory for the console's history");
		return -ENOMEM;
	}
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
	sl_console_history_stop(srv);
	/* Scrapes still open hold a pointer to srv only; they end on their own. */
	while (m->head != NULL)
		scrape_close(m->head);
	/* The listener is freed last, with m, once the timer that shares m is closed. */
	uv_close((uv_handle_t *)&m->sweep, sweep_closed_cb);
}
