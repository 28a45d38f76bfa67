/* The topics of one broker: their configuration (written atomically as DATA/topics/<name>/topic.json) and the
 * partition logs under DATA/topics/<name>/<partition>/. Creating, deleting, finding and closing topics.
 *
 * Which thread may call: the shard's loop thread only. */
#ifndef SL_BROKER_TOPICS_H
#define SL_BROKER_TOPICS_H

#include <stddef.h>
#include <stdint.h>

#include <uthash.h>

#include "broker/storage/files.h"
#include "broker/storage/log.h"
#include "broker/storage/producer_state.h"
#include "proto/base/rate.h"
#include "proto/limits.h"

/* Kafka's delete.retention.ms: how long a tombstone outlives its first clean (a day). */
#define SL_TOPIC_DELETE_RETENTION_MS_DEFAULT (24LL * 3600 * 1000)
/* Partition counts above this are refused: each partition holds an index and producer state in memory. */
#define SL_TOPIC_PARTITIONS_MAX              10000
_Static_assert(SL_TOPIC_PARTITIONS_MAX <= SL_REQUEST_ENTRIES_MAX, "one request can name every partition of a topic");
#define SL_TOPIC_NAME_BYTES_MAX 200

struct sl_topic_config {
	char name[SL_TOPIC_NAME_BYTES_MAX + 1];
	uint32_t partitions;
	int64_t retention_ms;    /* -1: forever */
	int64_t retention_bytes; /* per partition; -1: no limit */
	int compact;
	/* Roll the active segment past this size or age; 0: the broker's --segment-bytes / --segment-ms. */
	int64_t segment_bytes;
	int64_t segment_ms;
	/* Compacted topics: a tombstone stays this long after the cleaner first sees it (cleaner.c). */
	int64_t delete_retention_ms;
	/* Retention never removes what a group with a commit has not consumed yet (its lag is reported at risk). */
	int retain_for_groups;
	int64_t created_ms;
};

/* The smallest per-topic segment size and age a topic may ask for. A batch must fit in one segment (a larger one
 * is refused, BATCH_TOO_LARGE): 1 MiB holds four of the client library's largest default batches (256 KiB) and a
 * batch of Kafka's default max.request.size (1 MiB). Smaller segments would only cost open files and index
 * memory; an age under a second would roll on every retention check. */
#define SL_TOPIC_SEGMENT_BYTES_MIN (1 << 20)
#define SL_TOPIC_SEGMENT_MS_MIN    1000

/* Set one setting of cfg from its operator form (key retention.ms, retention.bytes, compact, delete.retention.ms,
 * segment.bytes, segment.ms, retain.for.groups; value as text). Returns 0, or -EINVAL with what is wrong and what
 * is allowed in err. */
int sl_topic_config_set(struct sl_topic_config *cfg, const char *key, const char *value, char *err, size_t err_cap);
/* Write cfg as DATA/topics/<name>/topic.json, atomically. Blocking: off the loop. */
int sl_topic_config_write(const char *topics_dir, const struct sl_topic_config *cfg);

struct sl_fetch_wait;  /* a parked long-poll fetch, owned by the server (fetch.c) */
struct sl_clean_state; /* the cleaner's view of a partition (broker/compaction.c) */

struct sl_partition {
	struct sl_topic *topic;
	uint32_t index;
	struct sl_log *log; /* NULL when it failed to open */
	int open_errno;
	char open_error[512];
	struct sl_producer_state producers;
	/* The log's next offset when the producer state was last handed to a snapshot (0: not yet): while it has not
	 * moved, the state on disk is current and housekeeping writes no new snapshot. */
	int64_t snapshot_offset;
	/* Appends refused with -EAGAIN by the log's window wait here, in order, for the next completion. */
	struct sl_append *blocked_head, *blocked_tail;
	/* Long-poll fetches to wake when new records become visible; waking holds them during a wake (fetch.c). */
	struct sl_fetch_wait *waiters;
	struct sl_fetch_wait *waking;
	struct sl_clean_state *clean; /* NULL until the cleaner looks at it */
};

/* What went through a topic, for metrics and `synclog status` (counted by the handlers). */
struct sl_topic_counters {
	uint64_t produce_records[3]; /* by origin (enum sl_origin): live, backfill, repair */
	uint64_t produce_bytes[3];   /* batch bytes, shared among origins by their record counts */
	uint64_t produce_batches;
	uint64_t fetch_records;
	uint64_t fetch_bytes;
	/* Rates over the last RATE_WINDOW of the status handler, refreshed by the health tick. */
	uint64_t rate_in_prev, rate_out_prev;
	int64_t rate_at_ms;
	double records_in_per_s, records_out_per_s;
};
struct sl_topic_contract; /* broker/contracts.h */

struct sl_topic {
	struct sl_topic_config cfg;
	struct sl_partition *parts;
	int alter_inflight; /* a topic alter is writing topic.json (broker/handlers/admin.c) */
	/* Work on the thread pool that reads its partitions (time lookups, handlers/list_offsets.c): a deletion
	 * frees the topic only once it is 0 (broker/topic_jobs.c). */
	uint32_t jobs_inflight;
	/* The sync contract's current version (NULL: none), and a set writing contract.json (handlers/contract.c). */
	struct sl_topic_contract *contract;
	int contract_inflight;
	/* The backfill quota's bucket (handlers/produce.c); per_s 0 until the first backfill produce. */
	struct sl_rate backfill_rate;
	struct sl_topic *next;
	struct sl_topic_counters counters;
	/* A topic created off the loop: its logs' descriptors until sl_topics_create_commit moves them into the
	 * shard's cache (bounded: topics.c, CREATE_FDS_MAX). Empty afterwards. */
	struct sl_files create_files;
	UT_hash_handle hh; /* in sl_topics.by_name */
};

struct sl_topics {
	char *data_dir;
	char *topics_dir;
	/* DATA/scratch: topics being created or deleted, outside the topic namespace so that no topic name can
	 * collide with them; emptied at open. */
	char *scratch_dir;
	struct sl_ring *ring;
	struct sl_log_config log_cfg;
	struct sl_topic *head;
	struct sl_topic *by_name; /* uthash on cfg.name: find is called per request */
	uint32_t topic_count;
};

/* 0 if name is a valid topic name (1 to 200 of [A-Za-z0-9._-], not "." or "..", no "__" or "." prefix unless
 * internal != 0), else -EINVAL. */
int sl_topic_name_check(const char *name, int internal);

/* Open every topic under data_dir/topics (creating the folders). A partition that fails to open is kept with
 * its error (the others serve). Returns 0 or a negative errno with a message in err. */
int sl_topics_open(struct sl_topics *t, const char *data_dir, struct sl_ring *ring, const struct sl_log_config *cfg,
                   char *err, size_t err_cap);
struct sl_topic *sl_topics_find(struct sl_topics *t, const char *name);
/* A topic's settings changed (topic alter): its logs roll at its segment limits from now on. */
void sl_topic_apply_segment_limits(const struct sl_topics *t, struct sl_topic *topic);
/* The segment size and age a topic's partitions roll at: its own, else the broker's. */
void sl_topic_segment_limits(const struct sl_topics *t, const struct sl_topic_config *cfg, int64_t *bytes_out,
                             int64_t *ms_out);
/* Create a topic: metadata and partition folders are written under a temporary name, fsynced, then renamed
 * into place, so a crash leaves either the whole topic or nothing. Returns 0, -EEXIST, -EINVAL, -ERANGE (partition
 * count), -EDOM (segment size or age out of range), or an I/O error, with a message in err. Blocking: the broker
 * runs its three steps apart (broker/topic_jobs.c), the middle one off the loop. */
int sl_topics_create(struct sl_topics *t, const struct sl_topic_config *cfg, char *err, size_t err_cap);
/* Step 1, on the loop: check the name, counts and limits (cfg->created_ms is set). */
int sl_topics_create_check(struct sl_topics *t, struct sl_topic_config *cfg, char *err, size_t err_cap);
/* Step 2, on any thread, touching nothing of t but its immutable paths and settings: write the folders, open the
 * logs (each with a descriptor cache of its own) and fsync. On failure nothing is left behind. */
int sl_topics_create_files(const struct sl_topics *t, const struct sl_topic_config *cfg, struct sl_topic **out,
                           char *err, size_t err_cap);
/* Step 3, on the loop: the logs' descriptors join the shard's cache and the topic becomes findable. */
void sl_topics_create_commit(struct sl_topics *t, struct sl_topic *topic);

/* Delete a topic whose partitions are idle: renamed away first (atomic), then removed. Blocking; the broker runs
 * the steps below apart (broker/topic_jobs.c). */
int sl_topics_delete(struct sl_topics *t, const char *name, char *err, size_t err_cap);
/* Take a topic out of the list and the name table (nothing finds it any more), or put it back. */
void sl_topics_detach(struct sl_topics *t, struct sl_topic *topic);
void sl_topics_attach(struct sl_topics *t, struct sl_topic *topic);
/* 1 when no append, fsync or off-loop job of the topic is in flight: its logs may be freed. */
int sl_topic_idle(const struct sl_topic *topic);
/* Free an idle, detached topic and its logs without making anything durable (its files are being removed). */
void sl_topic_discard(struct sl_topic *topic);
/* Any thread: rename DATA/topics/<name> into scratch/ and fsync both folders (the deletion's commit point), then
 * remove it. */
int sl_topics_delete_rename(const struct sl_topics *t, const char *name, char *err, size_t err_cap);
void sl_topics_delete_remove(const struct sl_topics *t, const char *name);
/* Save every partition's idempotent-producer state with the log offset it is valid at (periodically and at
 * close), so a restart recognises retries. Returns the first error. */
int sl_topics_snapshot_producers(struct sl_topics *t);
/* Open again the partitions that failed to open for a reason that passes (-EMFILE, -ENFILE, -ENOMEM); those
 * failed for damage stay unavailable until repaired. Returns how many opened. */
uint32_t sl_topics_retry_unavailable(struct sl_topics *t);
/* Close every log cleanly (fsync, clean marker). Returns the first error. */
int sl_topics_close(struct sl_topics *t);

#endif
