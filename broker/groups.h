/* Consumer groups: the group coordinator of one broker. Membership (join, heartbeat, leave, session expiry,
 * deterministic assignment per generation) lives in memory; committed offsets live in an internal partition
 * log (DATA/groups/offsets/, the same storage engine as topics), appended at fsync level and replayed at start,
 * so an acknowledged commit survives kill -9. The coordinator also judges each group's health per partition
 * (ok, idle, lagging, stalled, stopped, lost) from a window of samples; the state machines are drawn at the
 * top of groups.c.
 *
 * Offset log records (Kafka record batch v2, one batch per request; SEP is 0x1f):
 *   key "c" SEP group SEP topic SEP partition  value "<offset> <commit_ms> <metadata>"   a commit
 *   key "d" SEP group                          null value (op delete)                   the group was deleted
 *   key "r" SEP group                          value "<reset_generation>"               an operator commit (offset
 *                                                                                       reset) in the same batch
 *   key "s" SEP group                          value "<stall_after_ms> <window>"        health settings (0: default)
 *   key "l" SEP group SEP topic SEP partition  value "<records_lost>"                   records removed by retention
 *                                                                                       before the group read them
 *                                                                                       (0: cleared by a reset or a
 *                                                                                       backfill)
 * The log is compacted while the broker runs (groups.c, "compaction"), so replaying it at start costs what the
 * live state costs, not what the history does.
 *
 * Which thread may call: the shard's loop thread only (and sl_groups_open before the loop serves). */
#ifndef SL_BROKER_GROUPS_H
#define SL_BROKER_GROUPS_H

#include <stddef.h>
#include <stdint.h>
#include <uthash.h>

#include "broker/storage/log.h"
#include "broker/topics.h"

#define SL_GROUP_NAME_BYTES_MAX               200
#define SL_MEMBER_ID_BYTES_MAX                256
#define SL_GROUP_METADATA_BYTES_MAX           1024
#define SL_CLIENT_ID_BYTES_MAX                128
#define SL_CLIENT_HOST_BYTES_MAX              64
#define SL_APPLIER_TARGET_BYTES_MAX           512
/* Sessions: a member that sends nothing for this long is removed. Kafka's bounds (6 s to 300 s) would make
 * tests wait; 1 s is enough to tell a dead member from a slow one on loopback. */
#define SL_SESSION_TIMEOUT_MS_DEFAULT         10000u
#define SL_SESSION_TIMEOUT_MS_MIN             1000u
#define SL_SESSION_TIMEOUT_MS_MAX             300000u
/* Members per group and topics per member: bounds the work of one rebalance. */
#define SL_GROUP_MEMBERS_MAX                  1000
#define SL_MEMBER_TOPICS_MAX                  64
/* Kafka group protocols: names ("consumer", "cooperative-sticky") and how many one member may offer. */
#define SL_GROUP_PROTOCOL_NAME_BYTES_MAX      64
#define SL_MEMBER_PROTOCOLS_MAX               16
/* Groups at most (--groups-max): any OffsetCommit or JoinGroup can create one, so without a bound a client
 * could fill memory and the offset log. 100,000 groups of a few partitions are ~100 MB of state and a few
 * seconds of replay after a crash. */
#define SL_GROUPS_MAX_DEFAULT                 100000u
#define SL_GROUPS_MAX_MAX                     10000000u
/* ListGroups answers at most this many groups per page: 10,000 summaries are ~3 MB, well within a frame. */
#define SL_LIST_GROUPS_PAGE_DEFAULT           1000u
#define SL_LIST_GROUPS_PAGE_MAX               10000u
/* Health (Burrow's model): a window of samples per group partition, one per health tick. */
#define SL_HEALTH_WINDOW_DEFAULT              10u
#define SL_HEALTH_WINDOW_MIN                  2u
#define SL_HEALTH_WINDOW_MAX                  60u
#define SL_STALL_AFTER_MS_DEFAULT             60000
#define SL_STALL_AFTER_MS_MIN                 100
/* A group whose first members join together waits this long so they share the first generation. Kafka's
 * group.initial.rebalance.delay.ms. */
#define SL_INITIAL_REBALANCE_DELAY_MS_DEFAULT 3000
#define SL_INITIAL_REBALANCE_DELAY_MS_MAX     300000

/* Lifecycle of a group (the machine is drawn at the top of groups.c). */
enum sl_group_state {
	SL_GROUP_EMPTY = 0, /* no members (it may still hold committed offsets) */
	SL_GROUP_FORMING,   /* first members joined an empty group: their joins wait for the initial delay */
	SL_GROUP_STABLE,    /* members with a generation and an assignment */
	SL_GROUP_RESETTING, /* a forced offset reset is being made durable: joins wait for it */
};

/* Health of a group partition, in order of severity (the worst is the group's state). */
enum sl_health {
	SL_HEALTH_IDLE = 0, /* nothing new to consume: never an alarm */
	SL_HEALTH_OK,
	SL_HEALTH_LAGGING, /* lag grew over the whole window while commits move */
	SL_HEALTH_STOPPED, /* no live member and lag > 0 for stall-after */
	SL_HEALTH_STALLED, /* members, lag > 0, and the commit has not moved for stall-after */
	SL_HEALTH_LOST,    /* records were removed by retention before the group consumed them */
	SL_HEALTH_COUNT
};
const char *sl_health_name(enum sl_health h);

struct sl_assigned {
	char *topic;
	uint32_t *partitions;
	uint32_t count;
};

/* A protocol a Kafka member can speak (JoinGroup): its name ("range", "cooperative-sticky") and metadata, opaque
 * to the broker (the client-side assignor's subscription). */
struct sl_group_protocol {
	char *name;
	uint8_t *metadata;
	uint32_t metadata_len;
};

struct sl_member {
	char id[SL_MEMBER_ID_BYTES_MAX];
	char client_id[SL_CLIENT_ID_BYTES_MAX];
	char client_host[SL_CLIENT_HOST_BYTES_MAX];
	char instance_id[SL_MEMBER_ID_BYTES_MAX]; /* static membership: "" for none */
	char **topics;
	uint32_t topic_count;
	uint32_t session_timeout_ms;
	int64_t last_heartbeat_ms;
	struct sl_assigned *assignment;
	uint32_t assignment_count;
	int joining; /* its JoinGroup waits (FORMING or RESETTING): not expired meanwhile */
	/* Members that joined through the Kafka listener (broker/kafka/groups.c): their group's leader assigns
	 * partitions (client-side assignors), so a new generation deals them none; assignment is what the leader's
	 * SyncGroup gave them, assignment_bytes that assignment as the client encoded it. */
	int kafka;
	uint32_t rebalance_timeout_ms;
	struct sl_group_protocol *protocols;
	uint32_t protocol_count;
	uint8_t *assignment_bytes;
	uint32_t assignment_bytes_len;
};

struct sl_health_sample {
	int64_t committed;
	int64_t log_end;
	int64_t at_ms;
};

/* One partition of a group: its committed offset (if any) and its health. */
struct sl_commit {
	char *topic;
	uint32_t partition;
	int64_t offset; /* -1: nothing committed (tracked for health because the group subscribes to the topic) */
	int64_t commit_ms;
	char *metadata;
	int64_t records_lost; /* > 0: lost (sticky until a reset or a backfill) */
	/* Health (groups.c, "health"): wall-clock ms. */
	int64_t moved_ms;     /* the committed offset last changed (or tracking began) */
	int64_t lag_since_ms; /* lag has been > 0 since; 0 while it is 0 */
	int64_t owned_ms;     /* a live member last owned it (or tracking began) */
	int64_t lag;          /* records, as of the last tick; -1 when the partition is unavailable */
	int64_t lag_ms;       /* time, as of the last tick */
	int64_t ts_offset;    /* cache: the timestamp of the record at ts_offset is ts_ms */
	int64_t ts_ms;
	enum sl_health state;
	int64_t state_since_ms;
	struct sl_health_sample *samples; /* ring of the group's window size */
	uint32_t sample_count;
	uint32_t sample_next;
};

struct sl_applier_report {
	uint64_t applied, stale, duplicate, deleted, dead_lettered;
	char target[SL_APPLIER_TARGET_BYTES_MAX];
	int64_t reported_ms; /* 0: no applier reported */
};

struct sl_group {
	char name[SL_GROUP_NAME_BYTES_MAX + 1];
	UT_hash_handle hh;
	enum sl_group_state state;
	int32_t generation;
	int64_t forming_deadline_ms;
	uint32_t resets_pending; /* forced operator commits not yet durable */
	int64_t reset_generation;
	int64_t reset_generation_issued; /* >= reset_generation: includes operator commits in flight */
	struct sl_member *members;       /* sorted by id */
	uint32_t member_count;
	struct sl_commit *commits; /* sorted by (topic, partition) */
	uint32_t commit_count;
	uint32_t commit_cap;
	int64_t stall_after_ms; /* 0: the broker's */
	uint32_t window;        /* 0: the broker's */
	struct sl_applier_report applier;
	enum sl_health worst;
	int64_t worst_since_ms;
	/* Groups of Kafka members: the protocol type ("consumer", "connect"), the protocol chosen for the current
	 * generation and the member that assigns it (empty strings for groups of native members). */
	char protocol_type[SL_GROUP_PROTOCOL_NAME_BYTES_MAX + 1];
	char protocol[SL_GROUP_PROTOCOL_NAME_BYTES_MAX + 1];
	char leader[SL_MEMBER_ID_BYTES_MAX];
};

struct sl_groups_settings {
	int64_t stall_after_ms;
	uint32_t window;
	int64_t initial_rebalance_delay_ms;
	uint32_t groups_max;
};
void sl_groups_settings_default(struct sl_groups_settings *s);

struct sl_groups_commit;

struct sl_groups {
	struct sl_log *log;
	struct sl_ring *ring;
	struct sl_log_config log_cfg;
	char dir[1100]; /* DATA/groups */
	struct sl_topics *topics;
	struct sl_groups_settings settings;
	struct sl_group *by_name; /* uthash */
	struct sl_group **sorted; /* by name, for paged listing */
	uint32_t group_count;
	uint32_t sorted_cap;
	uint64_t member_seq;
	/* Appends: queued in order, at most COMMITS_QUEUED_MAX; in flight on the log. */
	struct sl_groups_commit *queue_head, *queue_tail;
	uint32_t queued;
	uint32_t inflight;
	/* Online compaction (groups.c). */
	int compact_step;
	struct sl_log *next_log;
	uint8_t **snap_batches;
	size_t *snap_lens;
	uint32_t snap_count, snap_appended, snap_done;
	int snap_status;
	uint64_t compactions;         /* completed since open */
	uint64_t compacted_bytes;     /* log bytes before the last compaction */
	uint64_t live_bytes;          /* what a compacted log would hold, estimated */
	uint64_t compact_check_bytes; /* the log size at which commits next look whether a compaction is due */
	char last_error[256];
};

/* 0 if name is a valid group name (same characters as topics, 1 to 200), else -EINVAL. */
int sl_group_name_check(const char *name);

/* Open (creating) the offset log under data_dir/groups and replay it. Returns 0 or a negative errno with a
 * message in err. */
int sl_groups_open(struct sl_groups *g, const char *data_dir, struct sl_ring *ring, const struct sl_log_config *cfg,
                   struct sl_topics *topics, const struct sl_groups_settings *settings, char *err, size_t err_cap);
int sl_groups_close(struct sl_groups *g);

struct sl_group *sl_groups_find(struct sl_groups *g, const char *name);
/* Groups in name order after start_after ("" or NULL: from the first), at most max; returns how many were
 * written to out. */
uint32_t sl_groups_page(struct sl_groups *g, const char *start_after, struct sl_group **out, uint32_t max);

/* Join (member_id NULL or "" for a new member). A new member with the instance id of one in the group replaces
 * it (static membership). Starts a new generation when membership or subscriptions change. Returns 0 with *member_out
 * pointing into the group (valid until the next membership change), -EINPROGRESS when the join must wait (the group is
 * FORMING or RESETTING: answer it once sl_group_join_ready), -ENOENT (unknown member id: join without one), -E2BIG (too
 * many members or topics), -EUSERS (--groups-max reached and the group is new), -ERANGE (session timeout), -EINVAL. */
int sl_group_join(struct sl_groups *g, const char *group, const char *member_id, const char *client_id,
                  const char *client_host, const char *instance_id, char **topics, uint32_t topic_count,
                  uint32_t session_timeout_ms, int64_t now_ms, struct sl_group **group_out,
                  struct sl_member **member_out);
/* After -EINPROGRESS: 1 once the group has its generation (then *member_out is the member, or NULL when it is
 * gone), 0 while it still waits. */
int sl_group_join_ready(struct sl_groups *g, const char *group, const char *member_id, struct sl_group **group_out,
                        struct sl_member **member_out);
/* A waiting join whose client went away: the member is removed. */
void sl_group_join_abandon(struct sl_groups *g, const char *group, const char *member_id);
/* Returns 0, -ENOENT (unknown group or member), -ESTALE (generation is not the current one). */
int sl_group_heartbeat(struct sl_groups *g, const char *group, const char *member_id, int32_t generation,
                       int64_t now_ms);
int sl_group_leave(struct sl_groups *g, const char *group, const char *member_id);
/* Timers (call every tick): remove members whose session expired, end FORMING groups whose delay passed.
 * Returns how many groups changed generation. */
uint32_t sl_groups_tick(struct sl_groups *g, int64_t now_ms);
/* The member a partition is assigned to in the current generation, or NULL. */
const struct sl_member *sl_group_owner(const struct sl_group *grp, const char *topic, uint32_t partition);
/* A topic was created: groups with members subscribed to it start a new generation that assigns it. */
void sl_groups_topic_created(struct sl_groups *g, const char *topic);
/* The commit of a partition, or NULL when nothing is committed. */
const struct sl_commit *sl_group_committed(const struct sl_group *grp, const char *topic, uint32_t partition);
/* The lowest offset any group committed on a partition, INT64_MAX when no group has a commit there. Read only:
 * the cleaner keeps tombstones until every group is past them (broker/compaction.c). */
int64_t sl_groups_min_committed(const struct sl_groups *g, const char *topic, uint32_t partition);

/* A forced operator commit on a group with live members: fence them (new generation) and hold their joins
 * until sl_group_reset_end, so that they read the new offsets once those are durable. */
void sl_group_reset_begin(struct sl_groups *g, struct sl_group *grp);
void sl_group_reset_end(struct sl_groups *g, const char *group);

/* A commit in flight: the caller owns it until cb runs (status 0 once durable, or a negative errno). */
struct sl_commit_entry {
	const char *topic;
	uint32_t partition;
	int64_t offset;
	const char *metadata;
	int64_t records_lost; /* > 0: reported lost by the committer */
};
typedef void (*sl_groups_commit_cb)(void *ctx, int status);
/* Append the commits of one request to the offset log (fsync level) and apply them to the group once durable.
 * by_operator != 0: an operator's commit (offset reset): it also raises the reset generation and clears `lost` on
 * those partitions. The entries are copied. Returns 0 (cb will run), or a negative errno (cb will not run):
 * -EAGAIN when too many commits are queued, -EUSERS (--groups-max), -E2BIG, -EINVAL. */
int sl_groups_commit(struct sl_groups *g, const char *group, const struct sl_commit_entry *entries, uint32_t count,
                     int by_operator, sl_groups_commit_cb cb, void *ctx);
/* Delete a group and its offsets (durably, same rules as a commit). */
int sl_groups_delete(struct sl_groups *g, const char *group, sl_groups_commit_cb cb, void *ctx);
/* Set a group's health settings (0: the broker's), durably. */
int sl_groups_alter(struct sl_groups *g, const char *group, int64_t stall_after_ms, uint32_t window,
                    sl_groups_commit_cb cb, void *ctx);
/* A backfill of topic finished: clear `lost` on every group partition of it, durably. cb runs once (also when
 * nothing was lost). */
int sl_groups_backfilled(struct sl_groups *g, const char *topic, sl_groups_commit_cb cb, void *ctx);
/* Track every partition of topic in grp (for health and describe). */
void sl_group_track_topic(struct sl_groups *g, struct sl_group *grp, const char *topic, int64_t now_ms);
/* Track every partition of every topic grp's members subscribe to (committed partitions are tracked anyway). */
void sl_group_track_all(struct sl_groups *g, struct sl_group *grp, int64_t now_ms);
/* Record c's records_lost durably (the health tick found the commit behind the log start). */
void sl_groups_lost_persist(struct sl_groups *g, const struct sl_group *grp, const struct sl_commit *c);
/* Start an online compaction of the offset log when it is due (the health tick calls it). */
void sl_groups_compact_check(struct sl_groups *g);
/* An applier's counters arrived with a commit (memory only: the applier reports its target's totals again). */
void sl_group_applier_report(struct sl_group *grp, const struct sl_applier_report *r);

/* ---- health (group_health.c) ---- */

/* Effective settings of a group. */
int64_t sl_group_stall_after_ms(const struct sl_groups *g, const struct sl_group *grp);
uint32_t sl_group_window(const struct sl_groups *g, const struct sl_group *grp);
/* The health tick's interval for the broker's settings: a stall is seen within stall-after plus this. */
uint32_t sl_groups_tick_ms(const struct sl_groups_settings *s);
/* Sample every tracked partition and judge its state; a change of state is logged once (event group_state).
 * Also starts an online compaction of the offset log when it is due. */
void sl_groups_health_tick(struct sl_groups *g, int64_t now_ms);
/* Lag of one partition now: records (from the log start when nothing is committed) and time (now minus the
 * timestamp of the oldest unconsumed record; 0 when caught up). next_out gets the log end. Returns 0, or
 * -ENOENT when the topic or partition is gone or unavailable. */
int sl_group_lag(struct sl_groups *g, struct sl_commit *c, int64_t now_ms, int64_t *next_out, int64_t *lag_out,
                 int64_t *lag_ms_out);

/* For the Kafka listener's group coordinator (broker/kafka/groups.c), which runs Kafka's join and sync phases
 * itself and starts generations when they complete: */
/* Add a member with a fresh id and no subscription, creating the group; no new generation starts. Returns 0,
 * -EINVAL (group name), -ERANGE (session timeout), -E2BIG (group full), -EUSERS (--groups-max reached and the
 * group is new), -ENOMEM. */
int sl_group_member_add(struct sl_groups *g, const char *group, const char *client_id, uint32_t session_timeout_ms,
                        int64_t now_ms, struct sl_group **group_out, struct sl_member **member_out);
/* The member of that id, or NULL. Valid until the next membership change. */
struct sl_member *sl_group_member_find(struct sl_group *grp, const char *member_id);
/* Start a new generation now, as a join, leave or expiry does. */
void sl_group_new_generation(struct sl_groups *g, struct sl_group *grp);
/* Replace a member's subscribed topics. Returns 0, -E2BIG, -ENOMEM. */
int sl_member_set_topics(struct sl_member *m, char *const *topics, uint32_t count);
/* Record that partition of topic is assigned to m (what describe and lag show). Returns 0 or -ENOMEM. */
int sl_member_assign(struct sl_member *m, const char *topic, uint32_t partition);

#endif
