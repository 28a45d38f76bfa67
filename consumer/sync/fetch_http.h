/* Thin events' entities fetched from the source's HTTP API (libcurl), for the applier's fetch callback (apply.h
 * rule 9b): GET the URL template with {key} replaced by the record's key, percent-encoded.
 *   200            the body is the entity (the target checks it as any value)
 *   404, 410       the entity is gone: the change was a delete (-ENOENT)
 *   408, 425, 429, 5xx, no connection, a timeout    the source cannot answer now: try again later (-EAGAIN)
 *   other answers, a body over body_bytes_max       it never will for this record (-EBADMSG)
 * One connection is kept and reused (HTTP keep-alive): a fetch per record costs a round trip, not a handshake.
 *
 * Threads: a fetcher belongs to one thread. */
#ifndef SL_CONSUMER_SYNC_FETCH_HTTP_H
#define SL_CONSUMER_SYNC_FETCH_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "consumer/sync/apply.h"

struct sl_fetch_http_options {
	const char *url_template; /* http:// or https://, with {key} once or more */
	/* One request, connecting included (0: 10 s): a source that answers slower than that is down for us. */
	uint32_t timeout_ms;
	/* The largest entity accepted (0: 8 MiB, what a record may carry comfortably). */
	size_t body_bytes_max;
};

struct sl_fetch_http;

/* Returns 0, or -EINVAL with err set (a template without {key}, or not http(s)), -ENOMEM. */
int sl_fetch_http_new(struct sl_fetch_http **out, const struct sl_fetch_http_options *o, char *err, size_t err_bytes);
void sl_fetch_http_free(struct sl_fetch_http *f);
/* The applier's fetch callback (cb_arg: the fetcher). */
int sl_fetch_http_cb(const struct sl_apply_record *r, const uint8_t **out, size_t *out_len, char *why, size_t why_bytes,
                     void *cb_arg);

#endif
