/* The log cleaner: rewrites the sealed segments of a compacted partition keeping, per key, only what a replay needs
 * to reach the same state (the newest version; see cleaner.c for the exact rule and the tombstone lifecycle), and
 * swaps the new segments in so that a crash at any point leaves the old set or the new one.
 *
 * A clean is one job with three steps, each on its own thread:
 *   sl_clean_prepare  the loop: picks the sealed prefix of the log, marks it (retention leaves it alone), copies
 *                     what the job needs (no system call but one dup of the directory)
 *   sl_clean_run      any thread (the cleaner's): plain blocking reads and writes, throttled, cancelable until the
 *                     swap's commit point; writes the new files beside the old ones, fsyncs, commits, renames
 *   sl_clean_finish   the loop: puts the new segments in the log in place of the old ones; the old ones' files
 *                     stay open in the job until sl_clean_job_free, which the loop may call only after its ring's
 *                     next submit (an io_uring read prepared in the same pass may still name those descriptors)
 * sl_cleaner_* runs jobs on one thread of its own and hands them back through a callback.
 *
 * Which thread may call: as said per function. */
#ifndef SL_BROKER_CLEANER_H
#define SL_BROKER_CLEANER_H

#include <stdatomic.h>
#include <stdint.h>

#include "broker/storage/log.h"
#include "proto/base/fs.h"

/* The swap manifest in the partition folder; its presence is the commit point (cleaner.c, recovery.c rule 6). */
#define SL_CLEAN_MANIFEST "cleaner.swap"
/* Suffix of the new segment files until the swap renames them. */
#define SL_CLEAN_SUFFIX   ".cleaned"

/* Kafka's log.cleaner.dedupe.buffer.size: the key map of one clean holds ~2.8 M keys in 128 MiB. */
#define SL_CLEAN_MAP_BYTES_DEFAULT           (128ull << 20)
/* Kafka's delete.retention.ms. */
#define SL_CLEAN_DELETE_RETENTION_MS_DEFAULT (24LL * 3600 * 1000)

struct sl_clean_params {
	int64_t now_ms;              /* wall clock of the clean: delete horizons are stamped and compared with it */
	int64_t delete_retention_ms; /* a tombstone stays this long after the cleaner first sees it */
	/* A tombstone goes only once every group with a commit on the partition is past it: the lowest such
	 * committed offset, INT64_MAX when no group has one. */
	int64_t groups_min_committed;
	uint64_t map_bytes_max;   /* memory of the key map; the clean covers fewer segments when it is full */
	uint64_t bytes_per_s_max; /* read plus written bytes per second; 0: unthrottled */
};

struct sl_clean_stats {
	uint64_t bytes_read;
	uint64_t bytes_written;
	uint64_t bytes_before; /* of the segments replaced */
	uint64_t bytes_after;
	uint32_t segments_before;
	uint32_t segments_after;
	uint64_t records_read; /* of the segments replaced */
	uint64_t records_removed;
	uint64_t tombstones_removed;
	uint64_t tombstones_kept;
	uint64_t keys; /* distinct keys in the map */
	int64_t duration_ms;
	/* When a clean could next remove tombstones: the earliest delete horizon still ahead (INT64_MAX: none), and
	 * the lowest offset of a tombstone past its horizon kept only because a group has not passed it. */
	int64_t next_horizon_ms;
	int64_t lowest_held_tombstone;
};

struct clean_seg_in;
struct sl_segment;

struct sl_clean_job {
	/* Set by sl_clean_prepare; read by every step. */
	struct sl_log *log; /* touched by sl_clean_finish only (the loop's) */
	struct sl_clean_params params;
	char dir[SL_PATH_BYTES_MAX];
	int dir_fd; /* a dup of the partition's folder */
	uint64_t segment_bytes_max;
	uint32_t index_interval_bytes;
	struct clean_seg_in *in; /* every segment with visible bytes at prepare, oldest first */
	uint32_t in_count;
	uint32_t range_count; /* the first range_count are sealed and may be replaced */
	/* Results of sl_clean_run, read on the loop once the job is back. */
	atomic_int cancel;
	int status;             /* 0, or a negative errno (-ECANCELED when canceled before the commit point) */
	char error[512];        /* what failed, on what, what to do */
	int committed;          /* the new set is the one on disk */
	int reopen;             /* failed after the commit point: the next open finishes the swap */
	uint32_t cleaned_count; /* range segments replaced (fewer than range_count when the key map filled up) */
	struct sl_segment **out;
	uint32_t out_count;
	struct sl_clean_stats stats;
	/* After sl_clean_finish: the replaced segments' descriptors, closed by sl_clean_job_free. */
	int *retired_fds;
	uint32_t retired_count;
};

/* Loop: start a job on the sealed prefix of log. Returns 0, -EAGAIN when there is no sealed segment to clean or a
 * job holds the log already, -ENOMEM, -EMFILE. */
int sl_clean_prepare(struct sl_log *log, const struct sl_clean_params *params, struct sl_clean_job **out);
/* Any thread, blocking: do the clean. Returns job->status. */
int sl_clean_run(struct sl_clean_job *job);
/* Loop: take the result into the log (the new segments when committed) and let retention at the segments again.
 * Call exactly once per prepared job, before sl_clean_job_free. */
void sl_clean_finish(struct sl_clean_job *job);
/* Any thread: close what the job holds and free it. After sl_clean_finish, only once the loop's ring submitted
 * (see the top). */
void sl_clean_job_free(struct sl_clean_job *job);

/* The dirty ratio of a log: bytes of sealed segments not yet cleaned over bytes of all sealed segments (0 when
 * none is sealed). Loop only. */
double sl_clean_dirty_ratio(const struct sl_log *log, uint64_t *dirty_bytes_out, uint64_t *clean_bytes_out);

/* 1 when a segment before the active one is not sealed yet (a roll's seal is in flight): it cannot be cleaned
 * until it is. Loop only. */
int sl_clean_pending_seal(const struct sl_log *log);

/* Open: finish or undo what a crash left of a clean in the folder (recovery.c, rules 6 to 8). Returns 0 or a
 * negative errno with a message in err. */
int sl_clean_recover(int dir_fd, const char *dir, char *err, size_t err_cap);

/* Crash points of a clean, for fault tests: a non-NULL hook is called at each and may end the process there. */
enum sl_clean_step {
	SL_CLEAN_STEP_WRITTEN = 1, /* every new file written and fsynced, nothing committed */
	SL_CLEAN_STEP_COMMITTED,   /* the manifest is durable */
	SL_CLEAN_STEP_RENAMED,     /* one file renamed (called once per file) */
	SL_CLEAN_STEP_REMOVED,     /* the old files that no new one replaces are removed */
	SL_CLEAN_STEP_DONE,        /* the manifest is removed */
};
extern void (*sl_clean_step_hook)(enum sl_clean_step step);

/* ---- the cleaner thread ---- */

struct sl_cleaner;
/* Start the thread. wake_cb(arg) runs on the cleaner's thread each time a job is done (uv_async_send). */
int sl_cleaner_start(struct sl_cleaner **out, void (*wake_cb)(void *arg), void *arg);
/* Hand a prepared job over. Returns 0, or -EBUSY while another job is queued, running or not yet taken back. */
int sl_cleaner_submit(struct sl_cleaner *c, struct sl_clean_job *job);
/* The finished job, or NULL. The loop then calls sl_clean_finish and, later, sl_cleaner_dispose. */
struct sl_clean_job *sl_cleaner_take(struct sl_cleaner *c);
/* Free a finished job on the cleaner's thread (closing a removed file frees its blocks: disk work). */
void sl_cleaner_dispose(struct sl_cleaner *c, struct sl_clean_job *job);
/* The job submitted and not taken back, or NULL. */
struct sl_clean_job *sl_cleaner_current(struct sl_cleaner *c);
/* Ask the current job to stop (it stops before its commit point, or finishes the swap when past it) and wait until
 * it is done: then sl_cleaner_take returns it. Blocks the caller for at most one read or write of the job, or the
 * renames of a committed swap. For topic deletion and shutdown. */
void sl_cleaner_cancel_wait(struct sl_cleaner *c);
/* Free disposed jobs, stop the thread, free. Jobs must have been taken back. */
void sl_cleaner_stop(struct sl_cleaner *c);

#endif
