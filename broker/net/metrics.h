/* The metrics listener's text: what /metrics, /healthz and /readyz answer (metrics_render.c), separate from the
 * HTTP connection handling of metrics.c.
 *
 * Which thread may call: the shard's loop thread only. */
#ifndef SL_BROKER_NET_METRICS_H
#define SL_BROKER_NET_METRICS_H

#include <stddef.h>

#include "broker/net/net.h"

/* A growing text buffer; oom is set (and the text cut) when memory ran out. */
struct sl_text {
	char *p;
	size_t len, cap;
	int oom;
};
void sl_text_put(struct sl_text *o, const char *s);

/* The Prometheus text of the broker into o. */
void sl_metrics_render(struct sl_server *srv, struct sl_text *o);
/* The answer to an HTTP request line ("GET /path HTTP/1.x..."): its body into o; returns the HTTP status (200,
 * 404, or 503 for /readyz before recovery finished or while shutting down). */
int sl_metrics_route(struct sl_server *srv, const char *request, struct sl_text *body);

#endif
