/* Compaction in the broker: which partition the cleaner (broker/storage/cleaner.h) works on next, the hand-off of
 * its jobs between the loop and the cleaner's thread, manual compactions (`synclog topic compact`), the tombstone
 * rule's group offsets, the retention floor of --retain-for-groups, and the cleaner's counters.
 *
 * Scheduling: one job at a time. Every check interval, and whenever a job ends or an operator asks, the loop
 * picks among the partitions of compacted topics: first those an operator asked for, then the one with the
 * largest dirty ratio at or above --min-cleanable-ratio, then one whose kept tombstones may go now (a horizon
 * passed, or the groups moved past the lowest one held for them).
 *
 * Which thread may call: the shard's loop thread only. */
#ifndef SL_BROKER_COMPACTION_H
#define SL_BROKER_COMPACTION_H

#include <stdint.h>

#include "broker/storage/cleaner.h"

struct sl_server;
struct sl_topic;
struct sl_partition;
struct sl_req;

/* Defaults of the broker flags. The throttle leaves most of a disk to producers: 50 MiB/s of read plus write. */
#define SL_CLEANER_BYTES_PER_S_DEFAULT (50ull << 20)
#define SL_CLEANER_MIN_RATIO_DEFAULT   0.5
#define SL_CLEANER_CHECK_MS_DEFAULT    15000u
/* A manual compaction waits for the segment it rolled to be sealed; it looks again this often. */
#define SL_CLEANER_RETRY_MS            50u
/* After a failed clean (a damaged batch, a full disk) the partition is not picked on its own for this long. */
#define SL_CLEANER_FAILURE_BACKOFF_MS  (10 * 60 * 1000)

struct sl_compaction_config {
	uint64_t bytes_per_s_max; /* --cleaner-bytes-per-s; 0: unthrottled */
	double min_cleanable_ratio;
	uint64_t map_bytes_max; /* --cleaner-map-bytes */
	uint32_t check_ms;      /* --cleaner-check-ms */
};
void sl_compaction_config_default(struct sl_compaction_config *cfg);

/* What the cleaner knows of one partition (struct sl_partition's clean). */
struct sl_clean_state {
	uint64_t requested_seq; /* the latest manual request covering it (0: none) */
	uint64_t done_seq;      /* the latest request a finished clean covered */
	uint64_t running_seq;   /* what the clean in flight covers */
	int running;
	/* The last clean. */
	int64_t last_clean_ms; /* wall clock of its end; 0: none since start */
	int last_status;
	char last_error[256];
	struct sl_clean_stats last;
	/* Since start. */
	uint64_t runs;
	uint64_t bytes_read, bytes_written, records_removed, tombstones_removed;
	/* When its tombstones may go (from the last clean). */
	int64_t next_horizon_ms;
	int64_t lowest_held_tombstone;
	int64_t backoff_until_ms; /* after a failure */
};

/* Totals since start (metrics). */
struct sl_compaction_totals {
	uint64_t runs, failures;
	uint64_t bytes_read, bytes_written;
	uint64_t records_removed, tombstones_removed;
	int64_t last_duration_ms;
};

struct sl_compaction;

/* Start the cleaner's thread and timer. Returns 0 or a negative errno with a message in err. */
int sl_compaction_start(struct sl_server *srv, char *err, size_t err_cap);
/* The loop submitted its ring: the descriptors of segments swapped out before may be closed now. */
void sl_compaction_after_submit(struct sl_server *srv);
/* Before a topic's logs close (delete): stop a clean of it, take its result, answer its waiters. */
void sl_compaction_forget_topic(struct sl_server *srv, struct sl_topic *topic);
/* Shutdown, before the logs close: stop the cleaner and its timer (handles are closed through the loop). */
void sl_compaction_stop(struct sl_server *srv);
/* An operator asks to compact every partition of topic now. With req (a CompactTopic request), it is answered
 * once every partition was cleaned; without, the call only schedules. Returns 0, or -EINVAL when the topic is
 * not compacted (req is then not touched). */
int sl_compaction_request(struct sl_server *srv, struct sl_topic *topic, struct sl_req *req);
/* The lowest committed offset of the groups with a commit on a partition, INT64_MAX when none has one. */
int64_t sl_compaction_groups_floor(struct sl_server *srv, const char *topic, uint32_t partition);
/* Before a retention pass over partition p: keep what groups have not consumed when the topic asks for it. */
void sl_compaction_retention_floor(struct sl_server *srv, struct sl_topic *topic, uint32_t partition);
/* The dirty ratio of a partition (0 for an unavailable one). */
double sl_compaction_dirty_ratio(const struct sl_partition *p);
const struct sl_compaction_totals *sl_compaction_totals(const struct sl_server *srv);
/* Why a group partition's lag is at risk, as one line in req's memory, or "" (group describe): retention keeps
 * records past the topic's retention only for this group (retain.for.groups), or on a compacted topic its lag in
 * time is 80% or more of delete.retention.ms. */
char *sl_compaction_lag_risk(struct sl_req *req, const struct sl_topic *topic, uint32_t partition, int64_t committed,
                             int64_t lag_ms, int64_t now_ms);

#endif
