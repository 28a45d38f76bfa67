/* The console's HTTP routes (console.h): the embedded page at /ui/ and the JSON API at /api/v1/. An API request is
 * a job that asks the handlers through request.h as a front end of its own ("console"), one or more requests per
 * step, and formats their answers on the thread pool:
 *
 *   route (loop: parse the path and query, copy chart history) -> step: dispatch calls (loop; the handlers answer,
 *   the front end packs each answer) -> format (thread pool: unpack, decode records, write JSON) -> another step
 *   (the message browser: offsets, then up to FETCH_ROUNDS_MAX fetches) or the answer (loop).
 *
 * Endpoints (every one GET; a query key an endpoint does not know is a 400):
 *   /api/v1/status                      what `synclog --json status` prints, in the same shape
 *   /api/v1/overview                    status, its groups worst first (lost, stalled, stopped, lagging, ...),
 *                                       and an hour of records/s in and out
 *   /api/v1/topics?start_after=&limit=  topics in name order: settings and rates (limit <= 500)
 *   /api/v1/topics/T?from_partition=&limit=      settings and partitions (limit <= 1000); "contract": its sync
 *                                       contract as GetContract answers `synclog contract show` ({"current":
 *                                       ContractVersion, "enforcement": ContractEnforcement}; null when it has
 *                                       none) and "contract_check": its last `contract check` run, or null
 *   /api/v1/topics/T/messages?partition=&offset=|time=&limit=   records newest first, ending at offset (or at the
 *                                       last record at or before time, ms since the epoch), limit <= 100; each
 *                                       with every header (headers_json: bounded, cut ones marked)
 *   /api/v1/groups?start_after=&limit=  ListGroupsResponse (limit <= 500)
 *   /api/v1/groups/G?from=&limit=       DescribeGroupResponse, partitions paged (limit <= 1000), lag history
 *   /api/v1/sync                        dead-letter topics (TOPIC.dlq) with counts, last backfill, reconcile and
 *                                       contract check runs, the topics whose last contract check failed (also in
 *                                       the overview)
 *
 * Bounds: one job per open metrics connection (SL_LIMITS_METRICS_CONNECTIONS_MAX), at most CALLS_MAX requests in
 * flight per job, a fetch of at most FETCH_BYTES_MAX per round, at most FETCH_ROUNDS_MAX rounds, values cut at
 * VALUE_BYTES_MAX in the answer. Requests count in synclog_requests_total like any other; the browser's fetches
 * count in synclog_fetch_records_total.
 *
 * Which thread may call: the loop, except the functions named *_work (the thread pool; they see only the job). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/dispatch.h"
#include "broker/net/console.h"
#include "broker/security.h"
#include "proto/base/assert.h"
#include "proto/base/clock.h"
#include "proto/batch.h"

#define CALLS_MAX              3
#define FETCH_BYTES_MAX        (1u << 20)
#define FETCH_ROUNDS_MAX       8
/* A record's value in the browser: the first 16 KiB (a fat event is rarely bigger; the CLI shows all of it). */
#define VALUE_BYTES_MAX        16384
/* A record's headers in the browser: the first HEADERS_MAX, their values cut once HEADER_VALUE_BYTES_MAX bytes of
 * values are shown (names cut at HEADER_NAME_BYTES_MAX); beyond, the record says headers_truncated. */
#define HEADERS_MAX            64
#define HEADER_VALUE_BYTES_MAX 4096
#define HEADER_NAME_BYTES_MAX  256
/* Decompression room for one zstd batch of the browser; a larger batch is listed as not shown. */
#define SCRATCH_BYTES          (4u << 20)
#define MESSAGES_PAGE_MAX      100
#define NAME_BYTES_MAX         SL_TOPIC_NAME_BYTES_MAX
_Static_assert(SL_TOPIC_NAME_BYTES_MAX == SL_GROUP_NAME_BYTES_MAX, "one buffer size for topic and group names");

enum endpoint { EP_STATUS, EP_OVERVIEW, EP_SYNC, EP_TOPICS, EP_TOPIC, EP_MESSAGES, EP_GROUPS, EP_GROUP };

struct job {
	struct sl_server *srv;
	sl_console_answer_cb cb;
	void *arg;
	enum endpoint ep;
	char principal[SL_USER_NAME_BYTES_MAX + 1]; /* "" with authentication off */
	char peer[64];                              /* the browser's address, for the handlers' logs */
	char name[NAME_BYTES_MAX + 1];
	char start_after[NAME_BYTES_MAX + 1];
	int64_t limit, from, partition, offset, time_ms;
	int has_offset, has_time;
	/* The calls of the current step: their packed answers (NULL when one could not be packed). */
	uint32_t call_count, pending;
	uint8_t *packed[CALLS_MAX];
	size_t packed_len[CALLS_MAX];
	struct sl_console_series *series; /* overview: rates; group: its lag */
	/* The message browser: its range [lo, end) and where the next fetch starts. */
	int step;
	int64_t earliest, next, end, lo, cursor;
	int complete;
	struct sl_text recs;                  /* records' JSON, one after another */
	size_t rec_at[MESSAGES_PAGE_MAX + 1]; /* where each starts in recs */
	uint32_t rec_count;
	uint32_t batches_not_shown;
	/* Set by the formatter: another step, or the answer. */
	int more;
	int status;
	int64_t loop_ns; /* the time this request's steps held the loop */
	struct sl_text body;
	uv_work_t work;
};

struct call {
	struct sl_req req;
	struct sl_session session;
	struct job *job;
	uint32_t slot;
	Synclog__Request msg;
	union {
		Synclog__StatusRequest status;
		Synclog__ListTopicsRequest list_topics;
		Synclog__DescribeTopicRequest describe_topic;
		Synclog__ListOffsetsRequest list_offsets;
		Synclog__FetchRequest fetch;
		Synclog__ListGroupsRequest list_groups;
		Synclog__DescribeGroupRequest describe_group;
		Synclog__GetContractRequest get_contract;
	} b;
	uint32_t partition;
	Synclog__FetchPartition fp;
	Synclog__FetchPartition *fpp;
};

static void job_answer(struct job *j);
static void job_step(struct job *j);

/* ---- the front end: calls into the handlers ---- */

static void call_send(struct sl_req *req)
{
	struct call *c = (struct call *)req;
	struct job *j = c->job;
	size_t n = synclog__response__get_packed_size(&req->resp);
	uint8_t *p = malloc(n ? n : 1);
	if (p != NULL)
		synclog__response__pack(&req->resp, p);
	j->packed[c->slot] = p;
	j->packed_len[c->slot] = n;
}

static void format_work(uv_work_t *w);
static void format_after(uv_work_t *w, int status);

/* One call of the step is done; the last one starts the formatting. */
static void call_done(struct job *j)
{
	SL_ASSERT(j->pending > 0);
	if (--j->pending > 0)
		return;
	j->work.data = j;
	if (uv_queue_work(&j->srv->loop, &j->work, format_work, format_after) != 0) {
		format_work(&j->work); /* no thread pool: format here rather than not at all */
		format_after(&j->work, 0);
	}
}

static void call_finish(struct sl_req *req)
{
	struct call *c = (struct call *)req;
	struct job *j = c->job;
	sl_security_session_end(j->srv, &c->session);
	free(c);
	call_done(j);
}

static const struct sl_req_frontend console_frontend = {"console", call_send, call_finish, NULL, NULL};

/* A call of the current step; its body is filled by the caller, then call_dispatch. */
static struct call *call_new(struct job *j, int body_case)
{
	SL_ASSERT(j->call_count < CALLS_MAX);
	struct call *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->job = j;
	c->slot = j->call_count++;
	c->session.hello_done = 1;
	snprintf(c->session.peer, sizeof(c->session.peer), "%s", j->peer);
	/* The handlers and their checks (broker/security.h) see the console's user as the principal. */
	char err[256];
	if (j->principal[0] != '\0' &&
	    sl_security_session_authenticated(j->srv, &c->session, j->principal, "HTTP-Basic", err, sizeof(err)) < 0) {
		free(c);
		j->call_count--;
		return NULL;
	}
	synclog__request__init(&c->msg);
	c->msg.body_case = body_case;
	sl_req_init(&c->req, j->srv, &console_frontend, c, &c->session);
	c->req.msg = &c->msg;
	c->req.msg_borrowed = 1;
	return c;
}

/* A StatusRequest: most pages show the broker's status beside what they ask. */
static struct call *status_call_new(struct job *j)
{
	struct call *c = call_new(j, SYNCLOG__REQUEST__BODY_STATUS);
	if (c != NULL) {
		synclog__status_request__init(&c->b.status);
		c->msg.status = &c->b.status;
	}
	return c;
}

/* Dispatch every call of the step: pending holds one extra count while they are dispatched, so that a handler
 * that answers at once cannot start the formatting before the last call was sent. */
static void calls_run(struct job *j, struct call **calls, uint32_t n)
{
	int64_t t0 = sl_clock_mono_ns();
	j->pending = n + 1;
	for (uint32_t i = 0; i < n; i++)
		sl_dispatch(&calls[i]->req);
	/* The handlers that answer at once have answered and been packed: what the loop spent on this step (a fetch
	 * that reads from disk adds its packing later, uncounted). Read before call_done, which may free j. */
	j->loop_ns += sl_clock_mono_ns() - t0;
	call_done(j);
}

/* ---- answers ---- */

static void put_error(struct sl_text *o, const char *code, const char *message)
{
	sl_text_put(o, "{\"error\":");
	sl_json_cstr(o, message);
	sl_text_put(o, ",\"code\":");
	sl_json_cstr(o, code);
	sl_text_put(o, "}\n");
}

static void fail(struct job *j, int status, const char *code, const char *message)
{
	free(j->body.p);
	j->body = (struct sl_text){0};
	j->status = status;
	j->more = 0;
	put_error(&j->body, code, message);
}

/* The HTTP status for a handler's error code. */
static int http_status(Synclog__ErrorCode e)
{
	switch (e) {
	case SYNCLOG__ERROR_CODE__UNKNOWN_TOPIC:
	case SYNCLOG__ERROR_CODE__UNKNOWN_PARTITION:
	case SYNCLOG__ERROR_CODE__UNKNOWN_GROUP:
		return 404;
	case SYNCLOG__ERROR_CODE__INVALID_REQUEST:
	case SYNCLOG__ERROR_CODE__INVALID_TOPIC_NAME:
	case SYNCLOG__ERROR_CODE__INVALID_GROUP_NAME:
	case SYNCLOG__ERROR_CODE__OFFSET_OUT_OF_RANGE:
		return 400;
	case SYNCLOG__ERROR_CODE__AUTHENTICATION_FAILED:
		return 401;
	case SYNCLOG__ERROR_CODE__TOPIC_AUTHORIZATION_FAILED:
	case SYNCLOG__ERROR_CODE__GROUP_AUTHORIZATION_FAILED:
	case SYNCLOG__ERROR_CODE__CLUSTER_AUTHORIZATION_FAILED:
		return 403;
	case SYNCLOG__ERROR_CODE__BROKER_SHUTTING_DOWN:
	case SYNCLOG__ERROR_CODE__PARTITION_UNAVAILABLE:
	case SYNCLOG__ERROR_CODE__THROTTLED:
		return 503;
	default:
		return 500;
	}
}

/* 0 when r answered without an error; else the job fails with it. */
static int check(struct job *j, const Synclog__Response *r)
{
	if (r == NULL) {
		fail(j, 500, "INTERNAL", "out of memory while reading the broker's answer");
		return -1;
	}
	if (r->error == SYNCLOG__ERROR_CODE__NONE)
		return 0;
	const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(&synclog__error_code__descriptor, r->error);
	fail(j, http_status(r->error), ev ? ev->name : "ERROR", r->error_message ? r->error_message : "");
	return -1;
}

static void put_series(struct sl_text *o, const struct sl_console_series *s, const char *a, const char *b)
{
	sl_text_put(o, "{\"interval_ms\":");
	sl_json_i64(o, SL_CONSOLE_TICK_MS);
	sl_text_put(o, s->tracked ? ",\"tracked\":true" : ",\"tracked\":false");
	sl_text_put(o, ",\"points\":[");
	for (uint32_t i = 0; i < s->count; i++) {
		const struct sl_console_point *p = &s->points[i];
		sl_text_put(o, i ? ",{\"t_ms\":" : "{\"t_ms\":");
		sl_json_i64(o, p->t_ms);
		sl_text_put(o, ",\"");
		sl_text_put(o, a);
		sl_text_put(o, "\":");
		sl_json_double(o, p->a);
		sl_text_put(o, ",\"");
		sl_text_put(o, b);
		sl_text_put(o, "\":");
		sl_json_double(o, p->b);
		sl_text_put(o, "}");
	}
	sl_text_put(o, "]}");
}

/* ---- formatting (thread pool) ---- */

static int severity(const char *state)
{
	static const char *const order[] = {"lost", "stalled", "stopped", "lagging", "idle", "ok"};
	for (int i = 0; i < 6; i++)
		if (state != NULL && strcmp(state, order[i]) == 0)
			return i;
	return 6;
}

struct ranked {
	const Synclog__GroupSummary *g;
	const Synclog__ApplierCounters *a;
};

static int ranked_cmp(const void *x, const void *y)
{
	const struct ranked *a = x, *b = y;
	int sa = severity(a->g->state), sb = severity(b->g->state);
	if (sa != sb)
		return sa - sb;
	if (a->g->lag != b->g->lag)
		return a->g->lag > b->g->lag ? -1 : 1;
	return strcmp(a->g->group, b->g->group);
}

static int is_dlq(const char *name)
{
	size_t n = strlen(name), k = strlen(".dlq");
	return n > k && strcmp(name + n - k, ".dlq") == 0;
}

/* The broker's uptime, data directory, disk and connections, as members of an object that status and the overview
 * both show. */
static void broker_members(struct sl_text *o, const Synclog__StatusResponse *s)
{
	sl_text_put(o, ",\"uptime_ms\":");
	sl_json_i64(o, s->now_ms - s->started_ms);
	sl_text_put(o, ",\"data_dir\":");
	sl_json_cstr(o, s->data_dir);
	sl_text_put(o, ",\"data_bytes\":");
	sl_json_i64(o, (int64_t)s->data_bytes);
	sl_text_put(o, ",\"disk_free_bytes\":");
	sl_json_i64(o, (int64_t)s->disk_free_bytes);
	sl_text_put(o, ",\"disk_total_bytes\":");
	sl_json_i64(o, (int64_t)s->disk_total_bytes);
	sl_text_put(o, ",\"connections\":");
	sl_json_i64(o, s->connections);
}

/* StatusResponse in the shape `synclog --json status` prints (tools/cli_status.c), key for key, so that a script
 * reads either; test_console_api.sh checks that the two agree. */
static void status_work(struct job *j, const Synclog__StatusResponse *s)
{
	struct sl_text *o = &j->body;
	sl_text_put(o, "{\"broker\":{\"version\":");
	sl_json_cstr(o, s->broker_version);
	sl_text_put(o, ",\"started_ms\":");
	sl_json_i64(o, s->started_ms);
	broker_members(o, s);
	sl_text_put(o, "},\"topics\":[");
	for (size_t i = 0; i < s->n_topics; i++) {
		const Synclog__TopicStatus *t = s->topics[i];
		sl_text_put(o, i ? ",{\"name\":" : "{\"name\":");
		sl_json_cstr(o, t->name);
		sl_text_put(o, ",\"partitions\":");
		sl_json_i64(o, t->partitions);
		sl_text_put(o, ",\"partitions_unavailable\":");
		sl_json_i64(o, t->partitions_unavailable);
		sl_text_put(o, ",\"bytes\":");
		sl_json_i64(o, (int64_t)t->bytes);
		sl_text_put(o, ",\"records\":");
		sl_json_i64(o, t->records);
		sl_text_put(o, ",\"records_in_per_s\":");
		sl_json_double(o, t->records_in_per_s);
		sl_text_put(o, ",\"records_out_per_s\":");
		sl_json_double(o, t->records_out_per_s);
		sl_text_put(o, "}");
	}
	sl_text_put(o, "],\"groups\":[");
	for (size_t i = 0; i < s->n_groups; i++) {
		const Synclog__GroupSummary *g = s->groups[i];
		const Synclog__ApplierCounters *a = i < s->n_appliers ? s->appliers[i] : NULL;
		sl_text_put(o, i ? ",{\"group\":" : "{\"group\":");
		sl_json_cstr(o, g->group);
		sl_text_put(o, ",\"members\":");
		sl_json_i64(o, g->members);
		sl_text_put(o, ",\"state\":");
		sl_json_cstr(o, g->state);
		sl_text_put(o, ",\"state_since_ms\":");
		sl_json_i64(o, g->state_since_ms);
		sl_text_put(o, ",\"lag\":");
		sl_json_i64(o, g->lag);
		sl_text_put(o, ",\"lag_ms\":");
		sl_json_i64(o, g->lag_ms);
		sl_text_put(o, ",\"applier\":");
		if (a == NULL || a->reported_ms == 0) {
			sl_text_put(o, "null}");
			continue;
		}
		sl_text_put(o, "{\"target\":");
		sl_json_cstr(o, a->target);
		const uint64_t v[5] = {a->applied, a->stale, a->duplicate, a->deleted, a->dead_lettered};
		static const char *const keys[5] = {
		        ",\"applied\":", ",\"stale\":", ",\"duplicate\":", ",\"deleted\":", ",\"dead_lettered\":"};
		for (int k = 0; k < 5; k++) {
			sl_text_put(o, keys[k]);
			sl_json_i64(o, (int64_t)v[k]);
		}
		sl_text_put(o, ",\"reported_ms\":");
		sl_json_i64(o, a->reported_ms);
		sl_text_put(o, "}}");
	}
	sl_text_put(o, "],\"dead_letters\":[");
	int first = 1;
	for (size_t i = 0; i < s->n_topics; i++) {
		if (!is_dlq(s->topics[i]->name))
			continue;
		sl_text_put(o, first ? "{\"topic\":" : ",{\"topic\":");
		first = 0;
		sl_json_cstr(o, s->topics[i]->name);
		sl_text_put(o, ",\"records\":");
		sl_json_i64(o, s->topics[i]->records);
		sl_text_put(o, "}");
	}
	sl_text_put(o, "],\"runs\":[");
	for (size_t i = 0; i < s->n_runs; i++) {
		const Synclog__RunReport *r = s->runs[i];
		sl_text_put(o, i ? ",{\"kind\":" : "{\"kind\":");
		sl_json_cstr(o, r->kind);
		sl_text_put(o, ",\"topic\":");
		sl_json_cstr(o, r->topic);
		sl_text_put(o, ",\"target\":");
		sl_json_cstr(o, r->target);
		sl_text_put(o, ",\"finished_ms\":");
		sl_json_i64(o, r->finished_ms);
		sl_text_put(o, r->ok ? ",\"ok\":true,\"rows\":" : ",\"ok\":false,\"rows\":");
		sl_json_i64(o, (int64_t)r->rows);
		sl_text_put(o, ",\"differences\":");
		sl_json_i64(o, (int64_t)r->differences);
		sl_text_put(o, ",\"diff_ratio\":");
		sl_json_double(o, r->diff_ratio);
		sl_text_put(o, ",\"repaired\":");
		sl_json_i64(o, (int64_t)r->repaired);
		sl_text_put(o, ",\"summary\":");
		sl_json_cstr(o, r->summary);
		sl_text_put(o, "}");
	}
	sl_text_put(o, "]}\n");
}

/* The topics whose last `contract check` failed (runs of kind "contract", one per topic): a problem to show. */
static void put_failed_checks(struct sl_text *o, const Synclog__StatusResponse *s)
{
	int first = 1;
	sl_text_put(o, "[");
	for (size_t i = 0; i < s->n_runs; i++) {
		const Synclog__RunReport *r = s->runs[i];
		if (r->ok || r->kind == NULL || strcmp(r->kind, "contract") != 0)
			continue;
		sl_text_put(o, first ? "" : ",");
		first = 0;
		sl_json_message(o, &r->base);
	}
	sl_text_put(o, "]");
}

static void overview_work(struct job *j, const Synclog__StatusResponse *s)
{
	struct sl_text *o = &j->body;
	size_t n = s->n_groups;
	struct ranked *r = calloc(n + 1, sizeof(*r));
	if (r == NULL) {
		fail(j, 500, "INTERNAL", "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++)
		r[i] = (struct ranked){s->groups[i], i < s->n_appliers ? s->appliers[i] : NULL};
	qsort(r, n, sizeof(*r), ranked_cmp);
	sl_text_put(o, "{\"broker_version\":");
	sl_json_cstr(o, s->broker_version);
	sl_text_put(o, ",\"started_ms\":");
	sl_json_i64(o, s->started_ms);
	sl_text_put(o, ",\"now_ms\":");
	sl_json_i64(o, s->now_ms);
	broker_members(o, s);
	double in = 0, out = 0;
	for (size_t i = 0; i < s->n_topics; i++) {
		in += s->topics[i]->records_in_per_s;
		out += s->topics[i]->records_out_per_s;
	}
	sl_text_put(o, ",\"topics\":");
	sl_json_i64(o, (int64_t)s->n_topics);
	sl_text_put(o, ",\"records_in_per_s\":");
	sl_json_double(o, in);
	sl_text_put(o, ",\"records_out_per_s\":");
	sl_json_double(o, out);
	/* Groups worst first: what needs the operator comes before what is fine. */
	uint32_t attention = 0;
	sl_text_put(o, ",\"groups\":[");
	for (size_t i = 0; i < n; i++) {
		if (severity(r[i].g->state) <= 2)
			attention++;
		sl_text_put(o, i ? ",{\"summary\":" : "{\"summary\":");
		sl_json_message(o, &r[i].g->base);
		sl_text_put(o, ",\"applier\":");
		if (r[i].a != NULL && r[i].a->reported_ms > 0)
			sl_json_message(o, &r[i].a->base);
		else
			sl_text_put(o, "null");
		sl_text_put(o, "}");
	}
	sl_text_put(o, "],\"groups_needing_attention\":");
	sl_json_i64(o, attention);
	sl_text_put(o, ",\"contract_checks_failed\":");
	put_failed_checks(o, s);
	sl_text_put(o, ",\"rates\":");
	put_series(o, j->series, "in_per_s", "out_per_s");
	sl_text_put(o, "}\n");
	free(r);
}

static void sync_work(struct job *j, const Synclog__StatusResponse *s)
{
	struct sl_text *o = &j->body;
	int first = 1;
	sl_text_put(o, "{\"dead_letter_topics\":[");
	for (size_t i = 0; i < s->n_topics; i++) {
		const Synclog__TopicStatus *t = s->topics[i];
		if (!is_dlq(t->name))
			continue;
		sl_text_put(o, first ? "{\"topic\":" : ",{\"topic\":");
		first = 0;
		sl_json_cstr(o, t->name);
		sl_text_put(o, ",\"source_topic\":");
		sl_json_str(o, t->name, strlen(t->name) - strlen(".dlq"));
		sl_text_put(o, ",\"partitions\":");
		sl_json_i64(o, t->partitions);
		sl_text_put(o, ",\"letters\":");
		sl_json_i64(o, t->records);
		sl_text_put(o, ",\"bytes\":");
		sl_json_i64(o, (int64_t)t->bytes);
		sl_text_put(o, "}");
	}
	sl_text_put(o, "],\"runs\":[");
	for (size_t i = 0; i < s->n_runs; i++) {
		sl_text_put(o, i ? "," : "");
		sl_json_message(o, &s->runs[i]->base);
	}
	sl_text_put(o, "],\"contract_checks_failed\":");
	put_failed_checks(o, s);
	sl_text_put(o, ",\"contracts_supported\":true}\n");
}

static int name_cmp(const void *x, const void *y)
{
	const Synclog__TopicConfig *a = *(Synclog__TopicConfig *const *)x, *b = *(Synclog__TopicConfig *const *)y;
	return strcmp(a->name, b->name);
}

static void topics_work(struct job *j, const Synclog__ListTopicsResponse *lt, const Synclog__StatusResponse *s)
{
	struct sl_text *o = &j->body;
	Synclog__TopicConfig **sorted = calloc(lt->n_topics + 1, sizeof(*sorted));
	if (sorted == NULL) {
		fail(j, 500, "INTERNAL", "out of memory");
		return;
	}
	memcpy(sorted, lt->topics, lt->n_topics * sizeof(*sorted));
	qsort(sorted, lt->n_topics, sizeof(*sorted), name_cmp);
	size_t at = 0, shown = 0;
	while (at < lt->n_topics && j->start_after[0] && strcmp(sorted[at]->name, j->start_after) <= 0)
		at++;
	sl_text_put(o, "{\"total\":");
	sl_json_i64(o, (int64_t)lt->n_topics);
	sl_text_put(o, ",\"topics\":[");
	for (; at < lt->n_topics && shown < (size_t)j->limit; at++, shown++) {
		const Synclog__TopicConfig *t = sorted[at];
		sl_text_put(o, shown ? ",{\"config\":" : "{\"config\":");
		sl_json_message(o, &t->base);
		sl_text_put(o, ",\"status\":");
		const Synclog__TopicStatus *st = NULL;
		for (size_t k = 0; k < s->n_topics && st == NULL; k++) /* status lists topics in the same order */
			if (strcmp(s->topics[k]->name, t->name) == 0)
				st = s->topics[k];
		if (st != NULL)
			sl_json_message(o, &st->base);
		else
			sl_text_put(o, "null");
		sl_text_put(o, "}");
	}
	sl_text_put(o, "],\"next_start_after\":");
	if (at < lt->n_topics)
		sl_json_cstr(o, sorted[at - 1]->name);
	else
		sl_text_put(o, "null");
	sl_text_put(o, "}\n");
	free(sorted);
}

/* The topic's contract (GetContract's answer; NULL when it has none) and its last `contract check` (the status
 * runs the principal may see: kind "contract", one per topic). */
static void put_contract(struct job *j, const Synclog__GetContractResponse *c, const Synclog__StatusResponse *s)
{
	struct sl_text *o = &j->body;
	sl_text_put(o, ",\"contract\":");
	if (c != NULL && c->contract != NULL) {
		sl_text_put(o, "{\"current\":");
		sl_json_message(o, &c->contract->base);
		sl_text_put(o, ",\"enforcement\":");
		if (c->enforcement != NULL)
			sl_json_message(o, &c->enforcement->base);
		else
			sl_text_put(o, "null");
		sl_text_put(o, "}");
	} else {
		sl_text_put(o, "null");
	}
	const Synclog__RunReport *last = NULL;
	for (size_t i = 0; s != NULL && i < s->n_runs && last == NULL; i++)
		if (s->runs[i]->kind != NULL && strcmp(s->runs[i]->kind, "contract") == 0 &&
		    s->runs[i]->topic != NULL && strcmp(s->runs[i]->topic, j->name) == 0)
			last = s->runs[i];
	sl_text_put(o, ",\"contract_check\":");
	if (last != NULL)
		sl_json_message(o, &last->base);
	else
		sl_text_put(o, "null");
}

static void topic_work(struct job *j, Synclog__DescribeTopicResponse *d, const Synclog__GetContractResponse *c,
                       const Synclog__StatusResponse *s)
{
	struct sl_text *o = &j->body;
	size_t n = d->n_partitions, from = (size_t)j->from < n ? (size_t)j->from : n;
	size_t count = n - from < (size_t)j->limit ? n - from : (size_t)j->limit;
	sl_text_put(o, "{\"config\":");
	if (d->config != NULL)
		sl_json_message(o, &d->config->base);
	else
		sl_text_put(o, "null");
	sl_text_put(o, ",\"partition_count\":");
	sl_json_i64(o, (int64_t)n);
	sl_text_put(o, ",\"from_partition\":");
	sl_json_i64(o, (int64_t)from);
	sl_text_put(o, ",\"partitions\":[");
	for (size_t i = 0; i < count; i++) {
		sl_text_put(o, i ? "," : "");
		sl_json_message(o, &d->partitions[from + i]->base);
	}
	sl_text_put(o, "],\"next_from_partition\":");
	if (from + count < n)
		sl_json_i64(o, (int64_t)(from + count));
	else
		sl_text_put(o, "null");
	put_contract(j, c, s);
	sl_text_put(o, "}\n");
}

static void group_work(struct job *j, Synclog__DescribeGroupResponse *d)
{
	struct sl_text *o = &j->body;
	size_t n = d->n_partitions, from = (size_t)j->from < n ? (size_t)j->from : n;
	size_t count = n - from < (size_t)j->limit ? n - from : (size_t)j->limit;
	/* The page of partitions, shown through the message's own fields and put back before it is freed. */
	Synclog__GroupPartitionLag **all = d->partitions;
	d->partitions = all + from;
	d->n_partitions = count;
	sl_text_put(o, "{\"describe\":");
	sl_json_message(o, &d->base);
	d->partitions = all;
	d->n_partitions = n;
	sl_text_put(o, ",\"partition_count\":");
	sl_json_i64(o, (int64_t)n);
	sl_text_put(o, ",\"from\":");
	sl_json_i64(o, (int64_t)from);
	sl_text_put(o, ",\"next_from\":");
	if (from + count < n)
		sl_json_i64(o, (int64_t)(from + count));
	else
		sl_text_put(o, "null");
	sl_text_put(o, ",\"lag_history\":");
	put_series(o, j->series, "lag", "lag_ms");
	sl_text_put(o, "}\n");
}

/* The browser's range from the log's ends: [lo, end) holds at most limit offsets, newest last. */
static void offsets_work(struct job *j, Synclog__Response **r)
{
	int64_t got[CALLS_MAX] = {0};
	for (uint32_t i = 0; i < j->call_count; i++) {
		const Synclog__ListOffsetsResponse *lo = r[i]->list_offsets;
		if (lo == NULL || lo->n_offsets != 1) {
			fail(j, 500, "INTERNAL", "the broker's offsets answer has no partition");
			return;
		}
		if (lo->offsets[0]->error != SYNCLOG__ERROR_CODE__NONE) {
			const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(
			        &synclog__error_code__descriptor, lo->offsets[0]->error);
			fail(j, http_status(lo->offsets[0]->error), ev ? ev->name : "ERROR",
			     "that partition does not exist or is not available");
			return;
		}
		got[i] = lo->offsets[0]->offset;
	}
	j->earliest = got[0];
	j->next = got[1];
	j->end = j->next;
	if (j->has_offset && j->offset < j->end)
		j->end = j->offset + 1;
	if (j->has_time && got[2] < j->end)
		j->end = got[2];
	if (j->end < j->earliest)
		j->end = j->earliest; /* asked for offsets retention already removed: an empty page at the log start */
	j->lo = j->end - j->limit > j->earliest ? j->end - j->limit : j->earliest;
	j->cursor = j->lo;
	j->complete = 1;
	j->more = j->lo < j->end;
}

/* The record's headers, every one (the sync headers among them) in their order, as
 * "headers":[{"key":K,"value":V,"encoding":E,"value_truncated":B}...],"headers_truncated":B. E is "utf8" (V the
 * text), "base64" (V the bytes, when they are not UTF-8) or null (a null value, V null). A value cut at the
 * record's budget of HEADER_VALUE_BYTES_MAX is value_truncated (text is cut at a character boundary); headers past
 * HEADERS_MAX, and names past HEADER_NAME_BYTES_MAX, make headers_truncated. A section that is not headers ends
 * the list there and adds "headers_error". */
static void headers_json(struct sl_text *o, const struct sl_record *rec)
{
	const uint8_t *pos = rec->headers, *end = rec->headers + (rec->headers_len > 0 ? rec->headers_len : 0);
	struct sl_record_header h;
	size_t budget = HEADER_VALUE_BYTES_MAX;
	int n = 0, truncated = 0, rc = 0;
	sl_text_put(o, ",\"headers\":[");
	while (pos != NULL && (rc = sl_record_header_next(&pos, end, &h)) == 1) {
		if (n == HEADERS_MAX) {
			truncated = 1;
			break;
		}
		sl_text_put(o, n++ ? ",{\"key\":" : "{\"key\":");
		if (h.name_len > HEADER_NAME_BYTES_MAX)
			truncated = 1;
		sl_json_str(o, (const char *)h.name,
		            h.name_len > HEADER_NAME_BYTES_MAX ? HEADER_NAME_BYTES_MAX : (size_t)h.name_len);
		if (h.value_len < 0) {
			sl_text_put(o, ",\"value\":null,\"encoding\":null,\"value_truncated\":false}");
			continue;
		}
		size_t len = (size_t)h.value_len, shown = len < budget ? len : budget;
		int text = sl_json_utf8_valid(h.value, len);
		if (text)
			while (shown < len && shown > 0 && (h.value[shown] & 0xc0) == 0x80)
				shown--; /* not inside a character */
		budget -= shown;
		sl_text_put(o, ",\"value\":");
		if (text)
			sl_json_str(o, (const char *)h.value, shown);
		else
			sl_json_base64(o, h.value, shown);
		sl_text_put(o, text ? ",\"encoding\":\"utf8\"" : ",\"encoding\":\"base64\"");
		sl_text_put(o, shown < len ? ",\"value_truncated\":true}" : ",\"value_truncated\":false}");
		truncated |= shown < len;
	}
	sl_text_put(o, truncated ? "],\"headers_truncated\":true" : "],\"headers_truncated\":false");
	if (pos != NULL && rc < 0)
		sl_text_put(o, ",\"headers_error\":\"the record's headers section is malformed\"");
}

static void record_json(struct sl_text *o, const struct sl_record *rec)
{
	sl_text_put(o, "{\"offset\":");
	sl_json_i64(o, rec->offset);
	sl_text_put(o, ",\"timestamp_ms\":");
	sl_json_i64(o, rec->timestamp_ms);
	sl_text_put(o, ",\"key\":");
	if (rec->key_len >= 0)
		sl_json_str(o, (const char *)rec->key, (size_t)rec->key_len);
	else
		sl_text_put(o, "null");
	sl_text_put(o, ",\"version\":");
	if (rec->version != SL_VERSION_NONE)
		sl_json_i64(o, rec->version);
	else
		sl_text_put(o, "null");
	sl_text_put(o, ",\"op\":");
	sl_json_cstr(o, sl_op_name(rec->op));
	sl_text_put(o, ",\"origin\":");
	sl_json_cstr(o, sl_origin_name(rec->origin));
	sl_text_put(o, ",\"idempotency_key\":");
	if (rec->idempotency_key != NULL)
		sl_json_str(o, (const char *)rec->idempotency_key, (size_t)rec->idempotency_key_len);
	else
		sl_text_put(o, "null");
	sl_text_put(o, ",\"schema_version\":");
	sl_json_i64(o, rec->schema_version);
	sl_text_put(o, ",\"value_bytes\":");
	sl_json_i64(o, rec->value_len >= 0 ? rec->value_len : 0);
	sl_text_put(o, ",\"value\":");
	if (rec->value_len >= 0)
		sl_json_str(o, (const char *)rec->value,
		            rec->value_len > VALUE_BYTES_MAX ? VALUE_BYTES_MAX : (size_t)rec->value_len);
	else
		sl_text_put(o, "null");
	sl_text_put(o, rec->value_len > VALUE_BYTES_MAX ? ",\"value_truncated\":true" : ",\"value_truncated\":false");
	headers_json(o, rec);
	sl_text_put(o, "}");
}

/* One fetch round: the records of [cursor, end) it returned go to recs; cursor moves past its last batch. */
static void fetch_work(struct job *j, const Synclog__Response *r)
{
	const Synclog__FetchResponse *f = r->fetch;
	if (f == NULL || f->n_results != 1) {
		fail(j, 500, "INTERNAL", "the broker's fetch answer has no partition");
		return;
	}
	const Synclog__FetchPartitionResult *pr = f->results[0];
	if (pr->error != SYNCLOG__ERROR_CODE__NONE) {
		/* Retention or the cleaner moved the log start meanwhile: show what was read. */
		j->complete = 0;
		return;
	}
	const uint8_t *p = pr->records.data, *end = p + pr->records.len;
	uint8_t *scratch = NULL;
	int64_t cursor = j->cursor;
	while (end - p >= SL_BATCH_HEADER_BYTES) {
		struct sl_batch_header h;
		if (sl_batch_header_parse(p, (size_t)(end - p), &h) != 0 ||
		    sl_batch_total_bytes(&h) > (size_t)(end - p))
			break;
		size_t bytes = sl_batch_total_bytes(&h);
		int64_t last = h.base_offset + h.last_offset_delta;
		if (last >= cursor) {
			struct sl_record_iter it;
			if (scratch == NULL)
				scratch = malloc(SCRATCH_BYTES);
			if (scratch == NULL || sl_record_iter_init(&it, p, bytes, scratch, SCRATCH_BYTES) != 0) {
				j->batches_not_shown++;
			} else {
				struct sl_record rec;
				while (sl_record_iter_next(&it, &rec) == 1) {
					if (rec.offset < cursor || rec.offset >= j->end)
						continue;
					if (j->rec_count == MESSAGES_PAGE_MAX)
						break;
					j->rec_at[j->rec_count++] = j->recs.len;
					record_json(&j->recs, &rec);
				}
			}
			cursor = last + 1;
		}
		p += bytes;
	}
	free(scratch);
	int progressed = cursor > j->cursor;
	j->cursor = cursor;
	if (j->recs.oom) {
		fail(j, 500, "INTERNAL", "out of memory");
		return;
	}
	if (j->cursor < j->end && progressed && j->step < FETCH_ROUNDS_MAX) {
		j->more = 1;
		return;
	}
	if (j->cursor < j->end)
		j->complete = 0;
}

static void messages_answer(struct job *j)
{
	struct sl_text *o = &j->body;
	sl_text_put(o, "{\"topic\":");
	sl_json_cstr(o, j->name);
	sl_text_put(o, ",\"partition\":");
	sl_json_i64(o, j->partition);
	sl_text_put(o, ",\"earliest_offset\":");
	sl_json_i64(o, j->earliest);
	sl_text_put(o, ",\"next_offset\":");
	sl_json_i64(o, j->next);
	sl_text_put(o, ",\"range\":[");
	sl_json_i64(o, j->lo);
	sl_text_put(o, ",");
	sl_json_i64(o, j->end);
	sl_text_put(o, "],\"complete\":");
	sl_text_put(o, j->complete ? "true" : "false");
	sl_text_put(o, ",\"batches_not_shown\":");
	sl_json_i64(o, j->batches_not_shown);
	sl_text_put(o, ",\"older_offset\":");
	if (j->lo > j->earliest)
		sl_json_i64(o, j->lo - 1);
	else
		sl_text_put(o, "null");
	sl_text_put(o, ",\"records\":[");
	/* Newest first. */
	for (uint32_t i = j->rec_count; i-- > 0;) {
		size_t at = j->rec_at[i], stop = i + 1 < j->rec_count ? j->rec_at[i + 1] : j->recs.len;
		sl_text_put(o, i + 1 < j->rec_count ? "," : "");
		sl_text_putn(o, j->recs.p + at, stop - at);
	}
	sl_text_put(o, "]}\n");
}

static void format_work(uv_work_t *w)
{
	struct job *j = w->data;
	Synclog__Response *r[CALLS_MAX] = {0};
	j->more = 0;
	j->status = 200;
	for (uint32_t i = 0; i < j->call_count; i++)
		if (j->packed[i] != NULL)
			r[i] = synclog__response__unpack(NULL, j->packed_len[i], j->packed[i]);
	int ok = 1;
	for (uint32_t i = 0; i < j->call_count && ok; i++) {
		/* A topic without a contract: its page says so; every other error of GetContract is the page's. */
		if (j->ep == EP_TOPIC && i == 1 && r[i] != NULL && r[i]->error == SYNCLOG__ERROR_CODE__NO_CONTRACT)
			continue;
		ok = check(j, r[i]) == 0;
	}
	if (ok) {
		switch (j->ep) {
		case EP_STATUS:
			status_work(j, r[0]->status);
			break;
		case EP_OVERVIEW:
			overview_work(j, r[0]->status);
			break;
		case EP_SYNC:
			sync_work(j, r[0]->status);
			break;
		case EP_TOPICS:
			topics_work(j, r[0]->list_topics, r[1]->status);
			break;
		case EP_TOPIC:
			topic_work(j, r[0]->describe_topic,
			           r[1]->error == SYNCLOG__ERROR_CODE__NONE ? r[1]->get_contract : NULL, r[2]->status);
			break;
		case EP_GROUPS:
			sl_json_message(&j->body, &r[0]->list_groups->base);
			sl_text_put(&j->body, "\n");
			break;
		case EP_GROUP:
			group_work(j, r[0]->describe_group);
			break;
		case EP_MESSAGES:
			if (j->step == 0)
				offsets_work(j, r);
			else
				fetch_work(j, r[0]);
			if (!j->more && j->status == 200)
				messages_answer(j);
			break;
		}
	}
	for (uint32_t i = 0; i < j->call_count; i++) {
		if (r[i] != NULL)
			synclog__response__free_unpacked(r[i], NULL);
		free(j->packed[i]);
		j->packed[i] = NULL;
	}
	if (j->body.oom)
		fail(j, 500, "INTERNAL", "out of memory");
}

static void format_after(uv_work_t *w, int status)
{
	struct job *j = w->data;
	(void)status;
	if (j->more && !j->srv->shutting_down) {
		j->step++;
		job_step(j);
		return;
	}
	if (j->more)
		fail(j, 503, "BROKER_SHUTTING_DOWN", "the broker is shutting down");
	job_answer(j);
}

static void job_free(struct job *j)
{
	free(j->body.p);
	free(j->recs.p);
	free(j->series);
	free(j);
}

static void job_answer(struct job *j)
{
	sl_console_stats_add(j->srv, j->loop_ns);
	struct sl_text body = j->body;
	j->body = (struct sl_text){0};
	j->cb(j->arg, j->status, "application/json", &body);
	job_free(j);
}

/* ---- steps (loop) ---- */

static struct call *offsets_call(struct job *j, Synclog__OffsetSpec spec, int64_t ts)
{
	struct call *c = call_new(j, SYNCLOG__REQUEST__BODY_LIST_OFFSETS);
	if (c == NULL)
		return NULL;
	synclog__list_offsets_request__init(&c->b.list_offsets);
	c->msg.list_offsets = &c->b.list_offsets;
	c->b.list_offsets.topic = j->name;
	c->partition = (uint32_t)j->partition;
	c->b.list_offsets.partitions = &c->partition;
	c->b.list_offsets.n_partitions = 1;
	c->b.list_offsets.spec = spec;
	c->b.list_offsets.timestamp_ms = ts;
	return c;
}

static void job_step(struct job *j)
{
	struct call *calls[CALLS_MAX] = {0};
	uint32_t n = 0;
	j->call_count = 0;
	switch (j->ep) {
	case EP_STATUS:
	case EP_OVERVIEW:
	case EP_SYNC:
		calls[n++] = status_call_new(j);
		break;
	case EP_TOPICS:
		if ((calls[n] = call_new(j, SYNCLOG__REQUEST__BODY_LIST_TOPICS)) != NULL) {
			synclog__list_topics_request__init(&calls[n]->b.list_topics);
			calls[n]->msg.list_topics = &calls[n]->b.list_topics;
		}
		n++;
		calls[n++] = status_call_new(j);
		break;
	case EP_TOPIC:
		if ((calls[n] = call_new(j, SYNCLOG__REQUEST__BODY_DESCRIBE_TOPIC)) != NULL) {
			synclog__describe_topic_request__init(&calls[n]->b.describe_topic);
			calls[n]->b.describe_topic.name = j->name;
			calls[n]->msg.describe_topic = &calls[n]->b.describe_topic;
		}
		n++;
		/* What `synclog contract show` asks (the current version; describe on the topic), and the runs. */
		if ((calls[n] = call_new(j, SYNCLOG__REQUEST__BODY_GET_CONTRACT)) != NULL) {
			synclog__get_contract_request__init(&calls[n]->b.get_contract);
			calls[n]->b.get_contract.topic = j->name;
			calls[n]->msg.get_contract = &calls[n]->b.get_contract;
		}
		n++;
		calls[n++] = status_call_new(j);
		break;
	case EP_GROUPS:
		if ((calls[n] = call_new(j, SYNCLOG__REQUEST__BODY_LIST_GROUPS)) != NULL) {
			synclog__list_groups_request__init(&calls[n]->b.list_groups);
			calls[n]->b.list_groups.start_after = j->start_after;
			calls[n]->b.list_groups.limit = (uint32_t)j->limit;
			calls[n]->msg.list_groups = &calls[n]->b.list_groups;
		}
		n++;
		break;
	case EP_GROUP:
		if ((calls[n] = call_new(j, SYNCLOG__REQUEST__BODY_DESCRIBE_GROUP)) != NULL) {
			synclog__describe_group_request__init(&calls[n]->b.describe_group);
			calls[n]->b.describe_group.group = j->name;
			calls[n]->msg.describe_group = &calls[n]->b.describe_group;
		}
		n++;
		break;
	case EP_MESSAGES:
		if (j->step == 0) {
			calls[n++] = offsets_call(j, SYNCLOG__OFFSET_SPEC__EARLIEST, 0);
			calls[n++] = offsets_call(j, SYNCLOG__OFFSET_SPEC__LATEST, 0);
			/* The first offset after time: the page ends with the last record at or before it. */
			if (j->has_time)
				calls[n++] = offsets_call(j, SYNCLOG__OFFSET_SPEC__TIMESTAMP, j->time_ms + 1);
			break;
		}
		if ((calls[n] = call_new(j, SYNCLOG__REQUEST__BODY_FETCH)) != NULL) {
			struct call *c = calls[n];
			synclog__fetch_request__init(&c->b.fetch);
			synclog__fetch_partition__init(&c->fp);
			c->b.fetch.topic = j->name;
			c->fp.partition = (uint32_t)j->partition;
			c->fp.offset = j->cursor;
			c->fp.max_bytes = FETCH_BYTES_MAX;
			c->fpp = &c->fp;
			c->b.fetch.partitions = &c->fpp;
			c->b.fetch.n_partitions = 1;
			c->b.fetch.max_wait_ms = 0; /* never parked: the browser reads what is there */
			c->msg.fetch = &c->b.fetch;
		}
		n++;
		break;
	}
	for (uint32_t i = 0; i < n; i++) {
		if (calls[i] == NULL) {
			for (uint32_t k = 0; k < n; k++) {
				if (calls[k] != NULL)
					sl_security_session_end(j->srv, &calls[k]->session);
				free(calls[k]);
			}
			j->call_count = 0;
			fail(j, 503, "UNAVAILABLE",
			     "the broker could not take the console's requests: out of memory, or this user has "
			     "--principal-connections-max connections already");
			job_answer(j);
			return;
		}
	}
	calls_run(j, calls, n);
}

/* ---- parsing the request (loop) ---- */

static int hexval(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
	                              : -1;
}

/* Percent-decode s[0..n) into out (cap bytes with its NUL); -EINVAL for a bad escape, a NUL, or too long. */
static int unescape(const char *s, size_t n, char *out, size_t cap)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%') {
			if (i + 2 >= n)
				return -EINVAL;
			int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -EINVAL;
			c = (char)(hi * 16 + lo);
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		if (c == '\0' || k + 1 >= cap)
			return -EINVAL;
		out[k++] = c;
	}
	out[k] = '\0';
	return 0;
}

/* A decimal in [min, max]; -EINVAL otherwise. */
static int parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
	int64_t v = 0;
	if (*s == '\0')
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (INT64_MAX - (*s - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (*s - '0');
	}
	if (v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* The query: key=value pairs, each key one the endpoint takes. On error why says which. */
static int parse_query(struct job *j, const char *q, size_t n, char *why, size_t why_cap)
{
	int64_t limit_max = j->ep == EP_MESSAGES                       ? MESSAGES_PAGE_MAX
	                    : j->ep == EP_TOPICS || j->ep == EP_GROUPS ? 500
	                                                               : 1000;
	size_t i = 0;
	while (i < n) {
		size_t amp = i;
		while (amp < n && q[amp] != '&')
			amp++;
		size_t eq = i;
		while (eq < amp && q[eq] != '=')
			eq++;
		char key[32], val[NAME_BYTES_MAX + 1];
		if (eq - i == 0 && amp == i) {
			i = amp + 1;
			continue; /* "a=1&&b=2" */
		}
		if (eq - i >= sizeof(key) || eq == amp || unescape(q + i, eq - i, key, sizeof(key)) != 0 ||
		    unescape(q + eq + 1, amp - eq - 1, val, sizeof(val)) != 0) {
			snprintf(why, why_cap,
			         "a query parameter is malformed or too long (key=value, percent-encoded)");
			return -EINVAL;
		}
		int rc = -ENOENT;
		int paged = j->ep == EP_TOPICS || j->ep == EP_GROUPS;
		if (strcmp(key, "limit") == 0 && j->ep != EP_STATUS && j->ep != EP_OVERVIEW && j->ep != EP_SYNC)
			rc = parse_int(val, 1, limit_max, &j->limit);
		else if (strcmp(key, "start_after") == 0 && paged)
			rc = snprintf(j->start_after, sizeof(j->start_after), "%s", val) < 0 ? -EINVAL : 0;
		else if (strcmp(key, "from_partition") == 0 && j->ep == EP_TOPIC)
			rc = parse_int(val, 0, INT32_MAX, &j->from);
		else if (strcmp(key, "from") == 0 && j->ep == EP_GROUP)
			rc = parse_int(val, 0, INT32_MAX, &j->from);
		else if (strcmp(key, "partition") == 0 && j->ep == EP_MESSAGES)
			rc = parse_int(val, 0, UINT32_MAX, &j->partition);
		else if (strcmp(key, "offset") == 0 && j->ep == EP_MESSAGES)
			rc = (j->has_offset = 1, parse_int(val, 0, INT64_MAX - 1, &j->offset));
		else if (strcmp(key, "time") == 0 && j->ep == EP_MESSAGES)
			rc = (j->has_time = 1, parse_int(val, 0, INT64_MAX - 1, &j->time_ms));
		if (rc == -ENOENT) {
			snprintf(why, why_cap, "unknown query parameter \"%.31s\" for this page", key);
			return -EINVAL;
		}
		if (rc != 0) {
			if (strcmp(key, "limit") == 0)
				snprintf(why, why_cap, "limit=\"%.40s\": give a number from 1 to %lld", val,
				         (long long)limit_max);
			else
				snprintf(why, why_cap, "query parameter %s=\"%.40s\" is not a number or out of range",
				         key, val);
			return -EINVAL;
		}
		i = amp + 1;
	}
	if (j->has_offset && j->has_time) {
		snprintf(why, why_cap, "give offset or time, not both");
		return -EINVAL;
	}
	return 0;
}

int sl_console_wants(const char *request)
{
	const char *sp = strchr(request, ' ');
	if (sp == NULL)
		return 0;
	sp++;
	return strncmp(sp, "/ui", 3) == 0 || strncmp(sp, "/api/", 5) == 0 || strncmp(sp, "/api ", 5) == 0;
}

static void answer_now(sl_console_answer_cb cb, void *arg, int status, const char *code, const char *message)
{
	struct sl_text body = {0};
	put_error(&body, code, message);
	cb(arg, status, "application/json", &body);
}

/* The segment after prefix up to the next '/' (or the end): decoded into out; *rest is what follows. */
static int segment(const char *path, size_t len, char *out, size_t cap, const char **rest)
{
	size_t k = 0;
	while (k < len && path[k] != '/')
		k++;
	*rest = path + k;
	return k > 0 ? unescape(path, k, out, cap) : -EINVAL;
}

static void route(struct sl_server *srv, const char *request, const char *principal, const char *peer,
                  sl_console_answer_cb cb, void *arg)
{
	if (strncmp(request, "GET ", 4) != 0) {
		answer_now(cb, arg, 405, "METHOD_NOT_ALLOWED", "the console is read-only: GET only");
		return;
	}
	const char *path = request + 4, *stop = path;
	while (*stop && *stop != ' ' && *stop != '\r' && *stop != '\n')
		stop++;
	const char *qm = memchr(path, '?', (size_t)(stop - path));
	size_t path_len = (size_t)((qm ? qm : stop) - path);
	const char *query = qm ? qm + 1 : stop;
	size_t query_len = (size_t)(stop - query);

	if (strncmp(path, "/ui", 3) == 0) {
		const struct sl_console_asset *a = sl_console_asset_find(path, path_len);
		struct sl_text body = {0};
		if (a == NULL) {
			sl_text_put(&body, "not found: the console is at /ui/\n");
			cb(arg, 404, "text/plain; charset=utf-8", &body);
			return;
		}
		sl_text_putn(&body, (const char *)a->data, a->len);
		cb(arg, body.oom ? 500 : 200, a->content_type, &body);
		return;
	}
	if (strncmp(path, "/api/v1/", 8) != 0) {
		answer_now(cb, arg, 404, "NOT_FOUND",
		           "no such API: see /api/v1/overview, topics, groups, sync, status");
		return;
	}
	if (!srv->ready) {
		answer_now(cb, arg, 503, "RECOVERING", "the broker is still opening its data directory");
		return;
	}
	struct job *j = calloc(1, sizeof(*j));
	if (j == NULL) {
		answer_now(cb, arg, 500, "INTERNAL", "out of memory");
		return;
	}
	j->srv = srv;
	j->cb = cb;
	j->arg = arg;
	j->status = 200;
	snprintf(j->principal, sizeof(j->principal), "%s", principal);
	snprintf(j->peer, sizeof(j->peer), "%s", peer);
	const char *p = path + 8, *end = path + path_len, *rest = end;
	size_t n = (size_t)(end - p);
	int bad = 0;
#define IS(lit) (n == sizeof(lit) - 1 && memcmp(p, lit, n) == 0)
	if (IS("status"))
		j->ep = EP_STATUS;
	else if (IS("overview"))
		j->ep = EP_OVERVIEW;
	else if (IS("sync"))
		j->ep = EP_SYNC;
	else if (IS("topics") || IS("topics/"))
		j->ep = EP_TOPICS, j->limit = 100;
	else if (IS("groups") || IS("groups/"))
		j->ep = EP_GROUPS, j->limit = 100;
	else if (n > 7 && memcmp(p, "topics/", 7) == 0) {
		bad = segment(p + 7, n - 7, j->name, sizeof(j->name), &rest) != 0 ||
		      sl_topic_name_check(j->name, 1) != 0;
		size_t left = (size_t)(end - rest);
		if (left == 0 || (left == 1 && *rest == '/'))
			j->ep = EP_TOPIC, j->limit = 100;
		else if ((left == 9 && memcmp(rest, "/messages", 9) == 0) ||
		         (left == 10 && memcmp(rest, "/messages/", 10) == 0))
			j->ep = EP_MESSAGES, j->limit = 20;
		else
			bad = 2;
	} else if (n > 7 && memcmp(p, "groups/", 7) == 0) {
		bad = segment(p + 7, n - 7, j->name, sizeof(j->name), &rest) != 0 || sl_group_name_check(j->name) != 0;
		size_t left = (size_t)(end - rest);
		if (left == 0 || (left == 1 && *rest == '/'))
			j->ep = EP_GROUP, j->limit = 200;
		else
			bad = 2;
	} else {
		bad = 2;
	}
#undef IS
	char why[160];
	if (bad == 2) {
		answer_now(cb, arg, 404, "NOT_FOUND",
		           "no such API: see /api/v1/overview, topics, groups, sync, status");
		free(j);
		return;
	}
	if (bad) {
		answer_now(cb, arg, 400, "INVALID_NAME", "the name in the path is not a valid topic or group name");
		free(j);
		return;
	}
	if (parse_query(j, query, query_len, why, sizeof(why)) != 0) {
		answer_now(cb, arg, 400, "INVALID_QUERY", why);
		free(j);
		return;
	}
	if (j->ep == EP_OVERVIEW || j->ep == EP_GROUP) {
		j->series = malloc(sizeof(*j->series));
		if (j->series == NULL) {
			answer_now(cb, arg, 500, "INTERNAL", "out of memory");
			free(j);
			return;
		}
		sl_console_history_copy(srv, j->ep == EP_GROUP ? j->name : NULL, j->series);
	}
	job_step(j);
}

/* A request waiting for its credentials to be checked (console_auth.c). */
struct pending {
	struct sl_server *srv;
	const char *request;
	sl_console_answer_cb cb;
	void *arg;
	char peer[64];
};

static void authenticated_cb(void *arg, const struct sl_console_verdict *v)
{
	struct pending p = *(struct pending *)arg;
	free(arg);
	if (v->status == 0) {
		route(p.srv, p.request, v->principal, p.peer, p.cb, p.arg);
		return;
	}
	answer_now(p.cb, p.arg, v->status,
	           v->status == 401   ? "UNAUTHORIZED"
	           : v->status == 403 ? "FORBIDDEN"
	           : v->status == 503 ? "THROTTLED"
	                              : "INTERNAL",
	           v->why);
}

void sl_console_route(struct sl_server *srv, const char *request, const struct sl_console_client *client,
                      sl_console_answer_cb cb, void *arg)
{
	struct pending *p = malloc(sizeof(*p));
	if (p == NULL) {
		answer_now(cb, arg, 500, "INTERNAL", "out of memory");
		return;
	}
	*p = (struct pending){srv, request, cb, arg, ""};
	snprintf(p->peer, sizeof(p->peer), "console %s", client->peer);
	sl_console_authenticate(srv, request, client, authenticated_cb, p);
}
