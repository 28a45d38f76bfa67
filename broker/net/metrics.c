/* The Prometheus endpoint (`--metrics HOST:PORT`): a tiny HTTP/1.0 responder on the broker's loop that answers
 * GET /metrics, /healthz and /readyz (their text: metrics_render.c), then closes. It listens from the start,
 * before recovery, so /healthz and /readyz can be asked while the data directory opens. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/net/metrics.h"

/* A request line and headers larger than this are not a metrics scrape. */
#define METRICS_REQUEST_BYTES_MAX 8192

struct sl_metrics {
	uv_tcp_t listener;
	int active;
};

struct scrape {
	uv_tcp_t tcp;
	struct sl_server *srv;
	char buf[METRICS_REQUEST_BYTES_MAX];
	size_t len;
	int answered;
};

static void scrape_free_cb(uv_handle_t *h)
{
	free(h->data);
}

/* One answer: the header and the body, written from their own buffers (a body of megabytes is not copied). */
struct answer_write {
	uv_write_t w;
	struct scrape *sc;
	char *body, *more;
	char header[160];
};

static void scrape_written_cb(uv_write_t *w, int status)
{
	struct answer_write *aw = (struct answer_write *)w;
	struct scrape *sc = aw->sc;
	free(aw->body);
	free(aw->more);
	free(aw);
	uv_close((uv_handle_t *)&sc->tcp, scrape_free_cb);
}

static void answer_cb(void *arg, int status, struct sl_text *body, struct sl_text *more)
{
	struct scrape *sc = arg;
	const char *reason = status == 200   ? "200 OK"
	                     : status == 503 ? "503 Service Unavailable"
	                     : status == 500 ? "500 Internal Server Error"
	                                     : "404 Not Found";
	struct answer_write *aw = malloc(sizeof(*aw));
	size_t more_len = more != NULL ? more->len : 0;
	if (aw == NULL) {
		free(body->p);
		free(more != NULL ? more->p : NULL);
		uv_close((uv_handle_t *)&sc->tcp, scrape_free_cb);
		return;
	}
	aw->sc = sc;
	aw->body = body->p;
	aw->more = more != NULL ? more->p : NULL;
	int n = snprintf(aw->header, sizeof(aw->header),
	                 "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: %zu\r\n\r\n",
	                 reason, body->len + more_len);
	uv_buf_t b[3] = {uv_buf_init(aw->header, (unsigned)n), uv_buf_init(body->p ? body->p : "", (unsigned)body->len),
	                 uv_buf_init(aw->more ? aw->more : "", (unsigned)more_len)};
	if (uv_write(&aw->w, (uv_stream_t *)&sc->tcp, b, 3, scrape_written_cb) != 0) {
		free(aw->body);
		free(aw->more);
		free(aw);
		uv_close((uv_handle_t *)&sc->tcp, scrape_free_cb);
	}
}

static void answer(struct scrape *sc)
{
	sc->answered = 1;
	uv_read_stop((uv_stream_t *)&sc->tcp);
	sl_metrics_route(sc->srv, sc->buf, answer_cb, sc);
}

static void scrape_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct scrape *sc = h->data;
	buf->base = sc->buf + sc->len;
	buf->len = sizeof(sc->buf) - 1 - sc->len;
}

static void scrape_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct scrape *sc = s->data;
	if (sc->answered)
		return;
	if (n < 0 || (n == 0 && sc->len == sizeof(sc->buf) - 1)) {
		uv_close((uv_handle_t *)&sc->tcp, scrape_free_cb);
		return;
	}
	sc->len += (size_t)n;
	sc->buf[sc->len] = '\0';
	if (strstr(sc->buf, "\r\n\r\n") || strstr(sc->buf, "\n\n") || sc->len == sizeof(sc->buf) - 1)
		answer(sc);
}

static void on_scrape(uv_stream_t *listener, int status)
{
	struct sl_server *srv = listener->data;
	if (status < 0)
		return;
	struct scrape *sc = calloc(1, sizeof(*sc));
	if (sc == NULL)
		return;
	sc->srv = srv;
	uv_tcp_init(&srv->loop, &sc->tcp);
	sc->tcp.data = sc;
	if (uv_accept(listener, (uv_stream_t *)&sc->tcp) != 0 || srv->shutting_down) {
		uv_close((uv_handle_t *)&sc->tcp, scrape_free_cb);
		return;
	}
	uv_read_start((uv_stream_t *)&sc->tcp, scrape_alloc_cb, scrape_read_cb);
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

void sl_metrics_stop(struct sl_server *srv)
{
	struct sl_metrics *m = srv->metrics;
	if (m == NULL || !m->active)
		return;
	m->active = 0;
	uv_close((uv_handle_t *)&m->listener, metrics_free_cb);
}
