/* The read-only web console (issue 22): the pages at /ui/ and their JSON at /api/v1/..., served on the --metrics
 * listener next to /metrics. The API is a third front end of the handlers (request.h): each endpoint asks the
 * same handlers the CLI asks (Status, ListTopics, DescribeTopic, ListOffsets, Fetch, ListGroups, DescribeGroup),
 * so `synclog status --json`, `group describe --json` and the console show one set of numbers built by one code
 * path. The loop only runs those handlers and packs their answers; unpacking, decoding records and writing JSON
 * happen on the thread pool (console.c). The charts' history is sampled on the loop at a fixed, bounded
 * resolution (console_history.c). The page's HTML, JavaScript and CSS are compiled into the binary
 * (console_assets.c from broker/net/console/).
 *
 * Which thread may call: the shard's loop thread, except the sl_json_* writers (any thread). */
#ifndef SL_BROKER_NET_CONSOLE_H
#define SL_BROKER_NET_CONSOLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "broker/net/metrics.h"
#include "proto/users.h"

/* ---- history (console_history.c) ---- */

/* One sample every SL_CONSOLE_TICK_MS: an hour of broker-wide rates, ten minutes of lag per group. The first
 * sample is taken SL_CONSOLE_FIRST_TICK_MS after start so that a chart has a point soon. */
#define SL_CONSOLE_TICK_MS            10000
#define SL_CONSOLE_FIRST_TICK_MS      1000
#define SL_CONSOLE_RATE_POINTS        360
#define SL_CONSOLE_LAG_POINTS         60
/* Lag history is kept for the first groups in name order, up to this many (about 1.7 KB each): a broker with
 * more groups shows the chart for those and says so for the rest. */
#define SL_CONSOLE_GROUPS_TRACKED_MAX 1024
#define SL_CONSOLE_RATE_SPAN_MS       (SL_CONSOLE_RATE_POINTS * SL_CONSOLE_TICK_MS)
_Static_assert(SL_CONSOLE_RATE_SPAN_MS == 3600 * 1000, "an hour of rates");
_Static_assert(SL_CONSOLE_LAG_POINTS <= SL_CONSOLE_RATE_POINTS, "a lag series fits a series copy");

struct sl_console_point {
	int64_t t_ms; /* wall clock */
	double a, b;  /* rates: records/s in and out; lag: records (summed over partitions) and ms (the largest) */
};

/* A copy of a series, oldest point first, for a request to format off the loop. */
struct sl_console_series {
	uint32_t count;
	int tracked; /* lag: 0 when the group is not (yet) among the tracked ones */
	struct sl_console_point points[SL_CONSOLE_RATE_POINTS];
};

/* What the API's requests cost the loop: answered requests, and the time their steps held the loop (handlers and
 * packing their answers), the last request's and the most of any since start. Zero when the console is off. */
struct sl_console_stats {
	uint64_t requests;
	int64_t loop_ns_last, loop_ns_max;
};
void sl_console_stats_get(struct sl_server *srv, struct sl_console_stats *out);
void sl_console_stats_add(struct sl_server *srv, int64_t loop_ns);

int sl_console_history_start(struct sl_server *srv);
void sl_console_history_stop(struct sl_server *srv);
/* Copy the rates, or the lag of group (NULL: rates), into out. */
void sl_console_history_copy(struct sl_server *srv, const char *group, struct sl_console_series *out);

/* ---- who is asking (console_auth.c) ---- */

/* The connection a request came on. */
struct sl_console_client {
	int tls;      /* HTTPS */
	int loopback; /* from 127.0.0.0/8 or ::1 */
	char peer[64];
	struct sockaddr_storage addr; /* family 0: unknown */
};
/* The outcome: status 0 and the principal (or "" with authentication off), or the HTTP status to answer
 * (401, 403, 500) and why. */
struct sl_console_verdict {
	int status;
	char principal[SL_USER_NAME_BYTES_MAX + 1];
	char why[200];
};
typedef void (*sl_console_auth_cb)(void *arg, const struct sl_console_verdict *v);
/* Check request's credentials (console_auth.c rules); cb runs once, on the loop, maybe from inside this call.
 * request must stay valid until then. */
void sl_console_authenticate(struct sl_server *srv, const char *request, const struct sl_console_client *client,
                             sl_console_auth_cb cb, void *arg);
struct sl_console_auth;
struct sl_console_auth *sl_console_auth_new(void);
void sl_console_auth_free(struct sl_console_auth *a);
/* The server's (kept with the history; NULL when the console is off). */
struct sl_console_auth *sl_console_auth_state(struct sl_server *srv);

/* ---- routing (console.c) ---- */

/* 1 when the request line asks for a path of the console (/ui..., /api/...). */
int sl_console_wants(const char *request);
/* The answer to such a request: cb runs once, on the loop, with the HTTP status, the content type and the body
 * (which cb then owns: free its p). request stays valid until then. */
typedef void (*sl_console_answer_cb)(void *arg, int status, const char *content_type, struct sl_text *body);
void sl_console_route(struct sl_server *srv, const char *request, const struct sl_console_client *client,
                      sl_console_answer_cb cb, void *arg);

/* ---- the embedded files (console_assets.c) ---- */

struct sl_console_asset {
	const char *path; /* "/ui/", "/ui/console.js", ... */
	const char *content_type;
	const unsigned char *data;
	size_t len;
};
const struct sl_console_asset *sl_console_asset_find(const char *path, size_t path_len);

/* ---- JSON (console_json.c; any thread) ---- */

void sl_json_str(struct sl_text *o, const char *s, size_t n);
void sl_json_cstr(struct sl_text *o, const char *s);
void sl_json_i64(struct sl_text *o, int64_t v);
void sl_json_double(struct sl_text *o, double v);
/* 1 when s[0..n) is all valid UTF-8 (no overlongs, no surrogates), else 0. */
int sl_json_utf8_valid(const void *s, size_t n);
/* s[0..n) as a JSON string holding its base64 (RFC 4648, padded). */
void sl_json_base64(struct sl_text *o, const void *s, size_t n);
/* m as a JSON object (see console_json.c for the mapping). */
void sl_json_message(struct sl_text *o, const ProtobufCMessage *m);

#endif
