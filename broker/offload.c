/* The loop's disk work, done on libuv's thread pool; see offload.h for the rules. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/compaction.h"
#include "broker/offload.h"
#include "broker/shard.h"
#include "broker/topic_jobs.h"
#include "proto/base/assert.h"
#include "proto/base/clock.h"
#include "proto/base/fs.h"
#include "proto/base/slog.h"

/* ---- housekeeping ---- */

struct snapshot {
	int dir_fd; /* a dup of the partition's directory */
	char *text;
	size_t len;
};

struct housekeeping {
	uv_work_t work;
	struct sl_server *srv;
	struct snapshot *snaps;
	uint32_t snap_count;
	struct sl_log_garbage *garbage; /* one per partition that dropped segments */
	uint32_t garbage_count;
	uint32_t segments_removed;
	int snap_error, garbage_error; /* first errors, for the log */
	int64_t started_ms;
};

static void housekeeping_work_cb(uv_work_t *w)
{
	struct housekeeping *h = w->data;
	for (uint32_t i = 0; i < h->snap_count; i++) {
		struct snapshot *s = &h->snaps[i];
		int rc = sl_fs_replace_atomic_at(s->dir_fd, SL_PRODUCERS_SNAPSHOT_FILE, s->text, s->len);
		if (rc < 0 && h->snap_error == 0)
			h->snap_error = rc;
	}
	for (uint32_t i = 0; i < h->garbage_count; i++) {
		h->segments_removed += h->garbage[i].count;
		int rc = sl_log_garbage_remove(&h->garbage[i]);
		if (rc < 0 && h->garbage_error == 0)
			h->garbage_error = rc;
	}
}

static void housekeeping_free(struct housekeeping *h)
{
	for (uint32_t i = 0; i < h->snap_count; i++) {
		close(h->snaps[i].dir_fd);
		free(h->snaps[i].text);
	}
	free(h->snaps);
	free(h->garbage);
	free(h);
}

static void housekeeping_after_cb(uv_work_t *w, int status)
{
	struct housekeeping *h = w->data;
	struct sl_server *srv = h->srv;
	srv->offload.housekeeping_busy = 0;
	if (status < 0) /* canceled: nothing ran, so the garbage is still to be removed; do it now */
		housekeeping_work_cb(w);
	if (h->snap_error < 0)
		sl_slog_msg(SL_SLOG_ERROR, "producer_snapshot_failed", "saving producer state failed: %s",
		            strerror(-h->snap_error));
	if (h->garbage_error < 0)
		sl_slog_msg(SL_SLOG_ERROR, "retention_failed", "removing segment files failed: %s",
		            strerror(-h->garbage_error));
	srv->offload.segments_removed += h->segments_removed;
	struct sl_slog *e = sl_slog_begin(SL_SLOG_DEBUG, "housekeeping_done");
	sl_slog_uint(e, "snapshots", h->snap_count);
	sl_slog_uint(e, "segments_removed", h->segments_removed);
	sl_slog_int(e, "duration_ms", sl_clock_mono_ms() - h->started_ms);
	sl_slog_end(e);
	housekeeping_free(h);
}

/* Grow an array to hold one more, doubling. */
static int reserve(void **arr, uint32_t count, uint32_t *cap, size_t elem)
{
	if (count < *cap)
		return 0;
	uint32_t ncap = *cap ? *cap * 2 : 16;
	void *n = realloc(*arr, ncap * elem);
	if (n == NULL)
		return -ENOMEM;
	*arr = n;
	*cap = ncap;
	return 0;
}

static void snapshot_add(struct housekeeping *h, uint32_t *cap, struct sl_topic *t, uint32_t i)
{
	struct sl_partition *p = &t->parts[i];
	/* Nothing appended since the last snapshot: the one on disk is current. Writing every partition's snapshot
	 * every pass cost two fsyncs each (10,000 partitions: longer than the pass interval) for nothing. */
	int64_t next = sl_log_next_offset(p->log);
	if (p->producers.count == 0 || next == p->snapshot_offset ||
	    reserve((void **)&h->snaps, h->snap_count, cap, sizeof(*h->snaps)) < 0)
		return;
	struct snapshot *s = &h->snaps[h->snap_count];
	if (sl_producer_state_encode(&p->producers, sl_log_next_offset(p->log), &s->text, &s->len) < 0)
		return;
	int dir_fd = sl_log_dir_fd(p->log); /* opened again if the file cache had closed it */
	s->dir_fd = dir_fd < 0 ? -1 : fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
	if (s->dir_fd < 0) {
		free(s->text);
		return;
	}
	h->snap_count++;
	p->snapshot_offset = next; /* a failed write is logged; the next append makes the next pass try again */
}

static void retention_add(struct housekeeping *h, uint32_t *cap, struct sl_topic *t, uint32_t i, int64_t now)
{
	if (t->cfg.retention_ms < 0 && t->cfg.retention_bytes < 0)
		return;
	/* --retain-for-groups: nothing a group has not consumed goes (broker/compaction.c). */
	sl_compaction_retention_floor(h->srv, t, i);
	if (reserve((void **)&h->garbage, h->garbage_count, cap, sizeof(*h->garbage)) < 0)
		return;
	struct sl_log_garbage *g = &h->garbage[h->garbage_count];
	int rc = sl_log_retain_detach(t->parts[i].log, now, t->cfg.retention_ms, t->cfg.retention_bytes, g);
	if (rc < 0) {
		struct sl_slog *e = sl_slog_begin(SL_SLOG_ERROR, "retention_failed");
		sl_slog_str(e, "topic", t->cfg.name);
		sl_slog_uint(e, "partition", i);
		sl_slog_str(e, "error", strerror(-rc));
		sl_slog_end(e);
	}
	if (g->count > 0)
		h->garbage_count++;
	else
		sl_log_garbage_remove(g); /* closes a dup'ed directory, if any; no file is touched */
}

void sl_offload_housekeeping(struct sl_server *srv)
{
	int64_t now = sl_clock_wall_ms();
	/* Rolling by age only creates the next segment's files: cheap enough for the loop, and it must not wait. */
	for (struct sl_topic *t = srv->topics.head; t; t = t->next)
		for (uint32_t i = 0; i < t->cfg.partitions; i++)
			if (t->parts[i].log != NULL)
				sl_log_maybe_roll(t->parts[i].log, now);
	if (srv->offload.housekeeping_busy) {
		srv->offload.housekeeping_skipped++;
		sl_slog_msg(SL_SLOG_WARN, "housekeeping_skipped",
		            "the previous snapshot and retention pass is still running: skipping this one");
		return;
	}
	struct housekeeping *h = calloc(1, sizeof(*h));
	if (h == NULL)
		return;
	h->srv = srv;
	h->started_ms = sl_clock_mono_ms();
	uint32_t snap_cap = 0, garbage_cap = 0;
	for (struct sl_topic *t = srv->topics.head; t; t = t->next) {
		for (uint32_t i = 0; i < t->cfg.partitions; i++) {
			if (t->parts[i].log == NULL)
				continue;
			/* Bounds what a restart after a crash replays to rebuild producer state. */
			snapshot_add(h, &snap_cap, t, i);
			retention_add(h, &garbage_cap, t, i, now);
		}
	}
	if (h->snap_count == 0 && h->garbage_count == 0) {
		housekeeping_free(h);
		return;
	}
	h->work.data = h;
	srv->offload.housekeeping_busy = 1;
	int rc = uv_queue_work(&srv->loop, &h->work, housekeeping_work_cb, housekeeping_after_cb);
	SL_ASSERT(rc == 0); /* only fails for a NULL callback */
}

int sl_offload_busy(const struct sl_server *srv)
{
	return srv->offload.housekeeping_busy || srv->offload.ids_job != NULL || srv->offload.time_lookups > 0 ||
	       srv->offload.fetch_warms > 0 || sl_topic_jobs_busy(srv);
}

/* ---- producer ids ---- */

struct ids_waiter {
	struct sl_req *req;
	void (*done_cb)(struct sl_req *req, int status);
	struct ids_waiter *next;
};

struct sl_ids_job {
	uv_work_t work;
	struct sl_server *srv;
	int64_t reserved;
	int status;
	struct ids_waiter *head, *tail; /* waiting for this job, in arrival order */
	char path[SL_PATH_BYTES_MAX];
};

static void ids_work_cb(uv_work_t *w)
{
	struct sl_ids_job *j = w->data;
	char line[32];
	int len = snprintf(line, sizeof(line), "%" PRId64 "\n", j->reserved);
	j->status = sl_fs_replace_atomic(j->path, line, (size_t)len);
}

static void ids_after_cb(uv_work_t *w, int status)
{
	struct sl_ids_job *j = w->data;
	struct sl_server *srv = j->srv;
	if (status < 0)
		j->status = status;
	srv->offload.ids_job = NULL;
	if (j->status == 0 && j->reserved > srv->producer_id_reserved)
		srv->producer_id_reserved = j->reserved;
	/* Each waiter takes its id in order; one may start the next reservation, behind which the rest queue. */
	while (j->head) {
		struct ids_waiter *wt = j->head;
		j->head = wt->next;
		wt->done_cb(wt->req, j->status);
		free(wt);
		if (srv->offload.ids_job != NULL) {
			/* A new reservation started: the remaining waiters move behind it, in order. */
			struct sl_ids_job *n = srv->offload.ids_job;
			if (j->head) {
				if (n->tail)
					n->tail->next = j->head;
				else
					n->head = j->head;
				n->tail = j->tail;
			}
			break;
		}
	}
	free(j);
}

void sl_offload_reserve_producer_ids(struct sl_server *srv, int64_t reserved, struct sl_req *req,
                                     void (*done_cb)(struct sl_req *req, int status))
{
	struct ids_waiter *wt = calloc(1, sizeof(*wt));
	if (wt == NULL) {
		done_cb(req, -ENOMEM);
		return;
	}
	wt->req = req;
	wt->done_cb = done_cb;
	struct sl_ids_job *j = srv->offload.ids_job;
	if (j == NULL) {
		j = calloc(1, sizeof(*j));
		if (j == NULL) {
			free(wt);
			done_cb(req, -ENOMEM);
			return;
		}
		j->srv = srv;
		j->reserved = reserved;
		snprintf(j->path, sizeof(j->path), "%s/%s", srv->cfg.data_dir, SL_PRODUCER_IDS_FILE);
		j->work.data = j;
		srv->offload.ids_job = j;
		int rc = uv_queue_work(&srv->loop, &j->work, ids_work_cb, ids_after_cb);
		SL_ASSERT(rc == 0);
	}
	if (j->tail)
		j->tail->next = wt;
	else
		j->head = wt;
	j->tail = wt;
}
