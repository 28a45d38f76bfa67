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
void sl_text_putn(struct sl_text *o, const char *s, size_t n);

/* The large families (partitions, group partitions, groups), copied out of the broker so that another thread can
 * format them. */
struct sl_metrics_snapshot;
/* The small families of the broker's Prometheus text into o, and a snapshot of the large ones (NULL before the
 * broker is ready, or out of memory). bytes_total gets the partitions' bytes. */
struct sl_metrics_snapshot *sl_metrics_render(struct sl_server *srv, struct sl_text *o);
struct sl_metrics_snapshot *sl_metrics_snapshot_take(struct sl_server *srv, uint64_t *bytes_total);
/* Any thread: the snapshot's families (s may be NULL: none) and the process's open descriptors into o. */
void sl_metrics_snapshot_render(const struct sl_metrics_snapshot *s, struct sl_text *o);
void sl_metrics_snapshot_free(struct sl_metrics_snapshot *s);

/* The answer to an HTTP request line ("GET /path HTTP/1.x..."): cb runs once, on the loop, with the HTTP status
 * (200; 404; 503 for /readyz before recovery finished or while shutting down; 500 out of memory) and the body in
 * one or two parts (more: NULL or the second part), which cb then owns (free their p). /healthz, /readyz and
 * unknown paths are answered from inside this call; /metrics once the thread pool formatted its large families. */
typedef void (*sl_metrics_answer_cb)(void *arg, int status, struct sl_text *body, struct sl_text *more);
void sl_metrics_route(struct sl_server *srv, const char *request, sl_metrics_answer_cb cb, void *arg);

#endif
