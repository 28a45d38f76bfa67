/* Compaction in the broker: scheduling the cleaner, the loop's side of its jobs, manual compactions; see
 * compaction.h. The cleaner's thread does the disk work; this file only decides, hands over and takes back.
 *
 * A job's life on the loop (one at a time):
 *   schedule() --sl_clean_prepare, sl_cleaner_submit--> RUNNING --cleaner thread done: uv_async--> async_cb:
 *   sl_clean_finish (the swap) --> DISPOSING (its old descriptors stay open) --the ring's next submit-->
 *   sl_compaction_after_submit: sl_cleaner_dispose (closed and freed on the cleaner's thread). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "broker/compaction.h"
#include "broker/shard.h"
#include "proto/base/assert.h"
#include "proto/base/clock.h"
#include "proto/base/slog.h"

/* Jobs finished and swapped, waiting for the ring's next submit: at most one per job, and one job runs at a
 * time, so two are plenty. */
#define DISPOSE_MAX 4

struct compact_waiter {
	struct sl_req *req;
	struct sl_topic *topic;
	uint64_t seq; /* answered once every partition's done_seq reaches it */
	struct compact_waiter *next;
};

struct sl_compaction {
	struct sl_server *srv;
	struct sl_compaction_config cfg;
	struct sl_cleaner *cleaner;
	uv_async_t async;
	uv_timer_t timer;
	struct sl_clean_job *job; /* submitted, not taken back */
	struct sl_partition *job_part;
	struct sl_clean_job *dispose[DISPOSE_MAX];
	uint32_t dispose_count;
	uint64_t seq; /* manual requests */
	struct compact_waiter *waiters;
	struct sl_compaction_totals totals;
	int stopping;
	int handles_open; /* while stopping: handles whose close has not run */
};

void sl_compaction_config_default(struct sl_compaction_config *cfg)
{
	cfg->bytes_per_s_max = SL_CLEANER_BYTES_PER_S_DEFAULT;
	cfg->min_cleanable_ratio = SL_CLEANER_MIN_RATIO_DEFAULT;
	cfg->map_bytes_max = SL_CLEAN_MAP_BYTES_DEFAULT;
	cfg->check_ms = SL_CLEANER_CHECK_MS_DEFAULT;
}

static struct sl_clean_state *state(struct sl_partition *p)
{
	if (p->clean == NULL) {
		p->clean = calloc(1, sizeof(*p->clean));
		if (p->clean == NULL)
			return NULL;
		p->clean->next_horizon_ms = INT64_MAX;
		p->clean->lowest_held_tombstone = INT64_MAX;
	}
	return p->clean;
}

double sl_compaction_dirty_ratio(const struct sl_partition *p)
{
	return p->log ? sl_clean_dirty_ratio(p->log, NULL, NULL) : 0.0;
}

const struct sl_compaction_totals *sl_compaction_totals(const struct sl_server *srv)
{
	static const struct sl_compaction_totals none;
	return srv->compaction ? &srv->compaction->totals : &none;
}

int64_t sl_compaction_groups_floor(struct sl_server *srv, const char *topic, uint32_t partition)
{
	return sl_groups_min_committed(&srv->groups, topic, partition);
}

void sl_compaction_retention_floor(struct sl_server *srv, struct sl_topic *topic, uint32_t partition)
{
	struct sl_log *log = topic->parts[partition].log;
	if (log == NULL)
		return;
	sl_log_set_retention_floor(log, topic->cfg.retain_for_groups
	                                        ? sl_compaction_groups_floor(srv, topic->cfg.name, partition)
	                                        : INT64_MAX);
}

/* ---- answering manual compactions ---- */

static int waiter_done(const struct compact_waiter *w)
{
	for (uint32_t i = 0; i < w->topic->cfg.partitions; i++) {
		const struct sl_partition *p = &w->topic->parts[i];
		if (p->log != NULL && (p->clean == NULL || p->clean->done_seq < w->seq))
			return 0;
	}
	return 1;
}

/* Answer req with each partition's last clean (error_code: the whole request failed with it, 0: per partition). */
static void compact_answer(struct sl_req *req, struct sl_topic *topic, int error_code, const char *error)
{
	Synclog__CompactTopicResponse *r = sl_req_alloc(req, sizeof(*r));
	if (r == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
		sl_req_respond(req);
		return;
	}
	synclog__compact_topic_response__init(r);
	req->resp.body_case = SYNCLOG__RESPONSE__BODY_COMPACT_TOPIC;
	req->resp.compact_topic = r;
	if (error_code != 0) {
		sl_req_fail(req, error_code, "%s", error);
		sl_req_respond(req);
		return;
	}
	uint32_t n = topic->cfg.partitions;
	r->partitions = sl_req_alloc(req, n * sizeof(*r->partitions));
	Synclog__CompactPartitionResult *res = sl_req_alloc(req, n * sizeof(*res));
	if (r->partitions == NULL || res == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
		sl_req_respond(req);
		return;
	}
	int failed = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct sl_partition *p = &topic->parts[i];
		synclog__compact_partition_result__init(&res[i]);
		res[i].partition = i;
		r->partitions[r->n_partitions++] = &res[i];
		if (p->log == NULL) {
			res[i].error = SYNCLOG__ERROR_CODE__PARTITION_UNAVAILABLE;
			res[i].error_message = p->open_error;
			failed++;
			continue;
		}
		const struct sl_clean_state *st = p->clean;
		if (st == NULL || st->last_clean_ms == 0)
			continue;
		if (st->last_status < 0) {
			res[i].error = SYNCLOG__ERROR_CODE__CLEANER_FAILED;
			res[i].error_message = sl_req_strdup(req, st->last_error);
			failed++;
			continue;
		}
		res[i].bytes_before = st->last.bytes_before;
		res[i].bytes_after = st->last.bytes_after;
		res[i].records_removed = st->last.records_removed;
		res[i].tombstones_removed = st->last.tombstones_removed;
		res[i].duration_ms = st->last.duration_ms;
	}
	if (failed > 0)
		sl_req_fail(req, SYNCLOG__ERROR_CODE__CLEANER_FAILED,
		            "%d of %u partitions of topic %s were not compacted: see each partition's error", failed, n,
		            topic->cfg.name);
	sl_req_respond(req);
}

static void waiter_unlink(struct sl_compaction *c, struct compact_waiter *w)
{
	for (struct compact_waiter **pp = &c->waiters; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			return;
		}
	}
}

static struct compact_waiter *waiter_of(struct sl_compaction *c, struct sl_req *req)
{
	for (struct compact_waiter *w = c->waiters; w; w = w->next)
		if (w->req == req)
			return w;
	return NULL;
}

/* The request's cancel hook (request.h): the client went (drop) or the broker stops. */
static void waiter_cancel_cb(struct sl_req *req, int drop)
{
	struct sl_compaction *c = req->srv->compaction;
	struct compact_waiter *w = waiter_of(c, req);
	SL_ASSERT(w != NULL);
	waiter_unlink(c, w);
	sl_req_unpark(req);
	struct sl_topic *topic = w->topic;
	free(w);
	if (drop)
		sl_req_respond(req); /* the front end drops it */
	else
		compact_answer(
		        req, topic, SYNCLOG__ERROR_CODE__BROKER_SHUTTING_DOWN,
		        "the broker is shutting down before the compaction finished; it resumes after a restart");
}

static void waiters_answer(struct sl_compaction *c)
{
	struct compact_waiter **pp = &c->waiters;
	while (*pp) {
		struct compact_waiter *w = *pp;
		if (!waiter_done(w)) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		sl_req_unpark(w->req);
		compact_answer(w->req, w->topic, 0, NULL);
		free(w);
	}
}

/* ---- scheduling ---- */

static void timer_cb(uv_timer_t *t);

static void arm(struct sl_compaction *c, uint64_t ms)
{
	if (!c->stopping)
		uv_timer_start(&c->timer, timer_cb, ms, 0);
}

static int start(struct sl_compaction *c, struct sl_topic *t, uint32_t i)
{
	struct sl_partition *p = &t->parts[i];
	struct sl_clean_state *st = state(p);
	struct sl_clean_params params = {
	        .now_ms = sl_clock_wall_ms(),
	        .delete_retention_ms = t->cfg.delete_retention_ms,
	        .groups_min_committed = sl_compaction_groups_floor(c->srv, t->cfg.name, i),
	        .map_bytes_max = c->cfg.map_bytes_max,
	        .bytes_per_s_max = c->cfg.bytes_per_s_max,
	};
	struct sl_clean_job *job;
	int rc = st ? sl_clean_prepare(p->log, &params, &job) : -ENOMEM;
	if (rc < 0)
		return rc;
	rc = sl_cleaner_submit(c->cleaner, job);
	SL_ASSERT(rc == 0); /* one job at a time, and c->job was NULL */
	c->job = job;
	c->job_part = p;
	st->running = 1;
	st->running_seq = st->requested_seq;
	struct sl_slog *e = sl_slog_begin(SL_SLOG_DEBUG, "clean_started");
	sl_slog_str(e, "topic", t->cfg.name);
	sl_slog_uint(e, "partition", i);
	sl_slog_end(e);
	return 0;
}

/* Whether a partition's kept tombstones could go now (a horizon passed, or the groups moved past one). */
static int tombstones_due(struct sl_compaction *c, struct sl_topic *t, uint32_t i, int64_t now)
{
	const struct sl_clean_state *st = t->parts[i].clean;
	if (st == NULL)
		return 0;
	if (st->next_horizon_ms <= now)
		return 1;
	return st->lowest_held_tombstone != INT64_MAX &&
	       sl_compaction_groups_floor(c->srv, t->cfg.name, i) > st->lowest_held_tombstone;
}

static void schedule(struct sl_compaction *c)
{
	if (c->stopping)
		return;
	int retry = 0;
	struct sl_topic *best_t = NULL;
	uint32_t best_i = 0;
	double best_score = 0.0;
	int64_t now = sl_clock_wall_ms();
	for (struct sl_topic *t = c->srv->topics.head; t && c->job == NULL; t = t->next) {
		if (!t->cfg.compact)
			continue;
		for (uint32_t i = 0; i < t->cfg.partitions; i++) {
			struct sl_partition *p = &t->parts[i];
			if (p->log == NULL)
				continue;
			double score = 0.0;
			if (p->clean != NULL && p->clean->requested_seq > p->clean->done_seq) {
				if (sl_clean_pending_seal(p->log)) {
					retry = 1; /* the segment the request rolled is not sealed yet */
					continue;
				}
				score = 3.0;
			} else if (p->clean == NULL || p->clean->backoff_until_ms <= now) {
				double ratio = sl_clean_dirty_ratio(p->log, NULL, NULL);
				if (ratio > 0.0 && ratio >= c->cfg.min_cleanable_ratio)
					score = 1.0 + ratio;
				else if (tombstones_due(c, t, i, now))
					score = 0.5;
			}
			if (score > best_score) {
				best_score = score;
				best_t = t;
				best_i = i;
			}
		}
	}
	if (best_t != NULL) {
		int rc = start(c, best_t, best_i);
		if (rc < 0) {
			struct sl_clean_state *st = state(&best_t->parts[best_i]);
			if (rc == -EAGAIN && st != NULL) {
				/* Nothing sealed to clean: a manual request is done as far as this partition goes. */
				st->done_seq = st->requested_seq;
				st->next_horizon_ms = INT64_MAX;
				st->lowest_held_tombstone = INT64_MAX;
				retry = 1;
			} else {
				struct sl_slog *e = sl_slog_begin(SL_SLOG_ERROR, "clean_failed");
				sl_slog_str(e, "topic", best_t->cfg.name);
				sl_slog_uint(e, "partition", best_i);
				sl_slog_str(e, "error", strerror(-rc));
				sl_slog_end(e);
			}
		}
	}
	waiters_answer(c);
	arm(c, retry ? SL_CLEANER_RETRY_MS : c->cfg.check_ms);
}

static void timer_cb(uv_timer_t *t)
{
	schedule(t->data);
}

/* Take a finished job into its partition's log and state; its descriptors are closed after the next submit. */
static void job_done(struct sl_compaction *c, struct sl_clean_job *job, int dispose_now)
{
	struct sl_partition *p = c->job_part;
	c->job = NULL;
	c->job_part = NULL;
	sl_clean_finish(job);
	struct sl_clean_state *st = state(p);
	const struct sl_clean_stats *s = &job->stats;
	c->totals.runs++;
	c->totals.bytes_read += s->bytes_read;
	c->totals.bytes_written += s->bytes_written;
	c->totals.records_removed += job->committed ? s->records_removed : 0;
	c->totals.tombstones_removed += job->committed ? s->tombstones_removed : 0;
	c->totals.last_duration_ms = s->duration_ms;
	if (st != NULL) {
		st->running = 0;
		st->runs++;
		st->last_clean_ms = sl_clock_wall_ms();
		st->last_status = job->committed ? 0 : job->status;
		snprintf(st->last_error, sizeof(st->last_error), "%s", job->committed ? "" : job->error);
		st->last = *s;
		st->bytes_read += s->bytes_read;
		st->bytes_written += s->bytes_written;
		if (job->committed) {
			st->records_removed += s->records_removed;
			st->tombstones_removed += s->tombstones_removed;
			st->next_horizon_ms = s->next_horizon_ms;
			st->lowest_held_tombstone = s->lowest_held_tombstone;
		}
		if (job->status != -ECANCELED && st->done_seq < st->running_seq)
			st->done_seq = st->running_seq;
	}
	int canceled = job->status == -ECANCELED && !job->committed;
	struct sl_slog *e =
	        sl_slog_begin(job->committed || canceled ? SL_SLOG_INFO : SL_SLOG_ERROR, job->committed ? "clean_done"
	                                                                                 : canceled ? "clean_canceled"
	                                                                                            : "clean_failed");
	sl_slog_str(e, "topic", p->topic->cfg.name);
	sl_slog_uint(e, "partition", p->index);
	if (job->committed) {
		sl_slog_uint(e, "segments_before", s->segments_before);
		sl_slog_uint(e, "segments_after", s->segments_after);
		sl_slog_uint(e, "bytes_before", s->bytes_before);
		sl_slog_uint(e, "bytes_after", s->bytes_after);
		sl_slog_uint(e, "records_removed", s->records_removed);
		sl_slog_uint(e, "tombstones_removed", s->tombstones_removed);
		sl_slog_uint(e, "tombstones_kept", s->tombstones_kept);
		sl_slog_int(e, "duration_ms", s->duration_ms);
	} else {
		sl_slog_str(e, "error", job->error[0] ? job->error : strerror(-job->status));
		if (job->status != -ECANCELED)
			c->totals.failures++;
	}
	sl_slog_end(e);
	/* A partition that fails is not picked again on its own for a while: each try reads it whole. */
	if (st != NULL && !job->committed && job->status != -ECANCELED)
		st->backoff_until_ms = sl_clock_wall_ms() + SL_CLEANER_FAILURE_BACKOFF_MS;
	if (dispose_now || c->dispose_count == DISPOSE_MAX)
		sl_cleaner_dispose(c->cleaner, job);
	else
		c->dispose[c->dispose_count++] = job;
}

static void async_cb(uv_async_t *a)
{
	struct sl_compaction *c = a->data;
	struct sl_clean_job *job = sl_cleaner_take(c->cleaner);
	if (job == NULL)
		return;
	SL_ASSERT(job == c->job);
	job_done(c, job, 0);
	schedule(c);
}

void sl_compaction_after_submit(struct sl_server *srv)
{
	struct sl_compaction *c = srv->compaction;
	if (c == NULL)
		return;
	for (uint32_t i = 0; i < c->dispose_count; i++)
		sl_cleaner_dispose(c->cleaner, c->dispose[i]);
	c->dispose_count = 0;
}

/* ---- the rest of the API ---- */

static void async_free_cb(uv_handle_t *h);

static void wake_cb(void *arg)
{
	uv_async_send(arg);
}

int sl_compaction_start(struct sl_server *srv, char *err, size_t err_cap)
{
	struct sl_compaction *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->srv = srv;
	c->cfg = srv->cfg.compaction;
	int rc = uv_async_init(&srv->loop, &c->async, async_cb);
	if (rc < 0) {
		free(c);
		snprintf(err, err_cap, "cannot start the cleaner: %s", uv_strerror(rc));
		return rc;
	}
	c->async.data = c;
	rc = sl_cleaner_start(&c->cleaner, wake_cb, &c->async);
	if (rc < 0) {
		snprintf(err, err_cap, "cannot start the cleaner's thread: %s", strerror(-rc));
		uv_close((uv_handle_t *)&c->async, async_free_cb);
		return rc;
	}
	uv_timer_init(&srv->loop, &c->timer);
	c->timer.data = c;
	srv->compaction = c;
	arm(c, c->cfg.check_ms);
	return 0;
}

void sl_compaction_forget_topic(struct sl_server *srv, struct sl_topic *topic)
{
	struct sl_compaction *c = srv->compaction;
	if (c == NULL)
		return;
	if (c->job != NULL && c->job_part->topic == topic) {
		sl_cleaner_cancel_wait(c->cleaner);
		struct sl_clean_job *job = sl_cleaner_take(c->cleaner);
		SL_ASSERT(job == c->job);
		/* Every read of the topic's segments was submitted when planned: the descriptors may go now. */
		job_done(c, job, 1);
	}
	for (struct compact_waiter **pp = &c->waiters; *pp;) {
		struct compact_waiter *w = *pp;
		if (w->topic != topic) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		sl_req_unpark(w->req);
		compact_answer(w->req, topic, SYNCLOG__ERROR_CODE__UNKNOWN_TOPIC,
		               "the topic was deleted before its compaction finished");
		free(w);
	}
	for (uint32_t i = 0; i < topic->cfg.partitions; i++) {
		free(topic->parts[i].clean);
		topic->parts[i].clean = NULL;
	}
	schedule(c);
}

static void async_free_cb(uv_handle_t *h)
{
	free(h->data);
}

/* Both handles' closes must have run before c goes (libuv runs them in no order we may rely on). */
static void close_free_cb(uv_handle_t *h)
{
	struct sl_compaction *c = h->data;
	if (--c->handles_open == 0)
		free(c);
}

void sl_compaction_stop(struct sl_server *srv)
{
	struct sl_compaction *c = srv->compaction;
	if (c == NULL)
		return;
	c->stopping = 1;
	uv_timer_stop(&c->timer);
	if (c->job != NULL) {
		/* A clean past its commit point finishes its renames first: the files then hold the new set. */
		sl_cleaner_cancel_wait(c->cleaner);
		struct sl_clean_job *job = sl_cleaner_take(c->cleaner);
		SL_ASSERT(job == c->job);
		job_done(c, job, 1);
	}
	sl_compaction_after_submit(srv);
	sl_cleaner_stop(c->cleaner);
	c->cleaner = NULL;
	SL_ASSERT(c->waiters == NULL); /* parked requests were answered when the broker stopped accepting */
	srv->compaction = NULL;
	c->handles_open = 2;
	uv_close((uv_handle_t *)&c->async, close_free_cb);
	uv_close((uv_handle_t *)&c->timer, close_free_cb);
}

int sl_compaction_request(struct sl_server *srv, struct sl_topic *topic, struct sl_req *req)
{
	struct sl_compaction *c = srv->compaction;
	if (!topic->cfg.compact)
		return -EINVAL;
	if (c == NULL)
		return -ESHUTDOWN;
	uint64_t seq = ++c->seq;
	for (uint32_t i = 0; i < topic->cfg.partitions; i++) {
		struct sl_partition *p = &topic->parts[i];
		struct sl_clean_state *st = p->log ? state(p) : NULL;
		if (p->log == NULL)
			continue;
		if (st == NULL)
			return -ENOMEM;
		/* What the active segment holds is part of "now": roll it so that it is sealed and cleaned too. */
		int rc = sl_log_roll_now(p->log);
		if (rc < 0)
			return rc;
		st->requested_seq = seq;
	}
	if (req != NULL) {
		struct compact_waiter *w = calloc(1, sizeof(*w));
		if (w == NULL)
			return -ENOMEM;
		*w = (struct compact_waiter){req, topic, seq, c->waiters};
		c->waiters = w;
		sl_req_park(req, waiter_cancel_cb);
	}
	/* Schedule from the timer, not from here: the request's own callbacks must not run inside the call. */
	arm(c, 0);
	return 0;
}

/* The share of delete.retention.ms a group's lag in time may reach before describe warns: a fifth of the
 * window left to catch up before a replay by that group could miss deletes the cleaner removes. */
#define DELETE_HORIZON_WARN_PCT 80

char *sl_compaction_lag_risk(struct sl_req *req, const struct sl_topic *topic, uint32_t partition, int64_t committed,
                             int64_t lag_ms, int64_t now_ms)
{
	char text[320] = "";
	struct sl_log *log = topic->parts[partition].log;
	int64_t held_end;
	if (log != NULL && topic->cfg.retain_for_groups &&
	    sl_log_retention_held(log, now_ms, topic->cfg.retention_ms, topic->cfg.retention_bytes, &held_end) &&
	    committed < held_end) {
		snprintf(text, sizeof(text),
		         "retention: records past the topic's retention are kept only until this group consumes them "
		         "(offsets below %" PRId64 ")",
		         held_end);
	} else if (log != NULL && topic->cfg.compact && lag_ms > 0 &&
	           lag_ms >= topic->cfg.delete_retention_ms / 100 * DELETE_HORIZON_WARN_PCT) {
		snprintf(text, sizeof(text),
		         "delete horizon: lag of %" PRId64 " ms is %d%% or more of delete.retention.ms (%" PRId64
		         " ms); a replay from earliest by this group would miss deletes the cleaner removes",
		         lag_ms, DELETE_HORIZON_WARN_PCT, topic->cfg.delete_retention_ms);
	}
	return sl_req_strdup(req, text);
}
