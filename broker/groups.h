/* Consumer groups: the group coordinator of one broker. Membership (join, heartbeat, leave, session expiry,
 * deterministic assignment per generation) lives in memory; committed offsets live in an internal partition
 * log (DATA/groups/offsets/, the same storage engine as topics), appended at fsync level and replayed at start,
 * so an acknowledged commit survives kill -9.
 *
 * Offset log records (Kafka record batch v2, one batch per commit request):
 *   key   "c" 0x1f group 0x1f topic 0x1f partition   value "<offset> <commit_ms> <metadata>"
 *   key   "d" 0x1f group                             null value (op delete): the group was deleted
 *
 * Which thread may call: the shard's loop thread only. */
#ifndef SL_BROKER_GROUPS_H
#define SL_BROKER_GROUPS_H

#include <stddef.h>
#include <stdint.h>

#include "broker/storage/log.h"
#include "broker/topics.h"

#define SL_GROUP_NAME_BYTES_MAX          200
#define SL_MEMBER_ID_BYTES_MAX           256
#define SL_GROUP_METADATA_BYTES_MAX      1024
/* Sessions: a member that sends nothing for this long is removed. Kafka's bounds (6 s to 300 s) would make
 * tests wait; 1 s is enough to tell a dead member from a slow one on loopback. */
#define SL_SESSION_TIMEOUT_MS_DEFAULT    10000u
#define SL_SESSION_TIMEOUT_MS_MIN        1000u
#define SL_SESSION_TIMEOUT_MS_MAX        300000u
/* Members per group and topics per member: bounds the work of one rebalance. */
#define SL_GROUP_MEMBERS_MAX             1000
#define SL_MEMBER_TOPICS_MAX             64
/* Kafka group protocols: names ("consumer", "cooperative-sticky") and how many one member may offer. */
#define SL_GROUP_PROTOCOL_NAME_BYTES_MAX 64
#define SL_MEMBER_PROTOCOLS_MAX          16

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
	char client_id[128];
	char **topics;
	uint32_t topic_count;
	uint32_t session_timeout_ms;
	int64_t last_heartbeat_ms;
	struct sl_assigned *assignment;
	uint32_t assignment_count;
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

struct sl_commit {
	char *topic;
	uint32_t partition;
	int64_t offset;
	int64_t commit_ms;
	char *metadata;
};

struct sl_group {
	char name[SL_GROUP_NAME_BYTES_MAX + 1];
	int32_t generation;
	struct sl_member *members; /* sorted by id */
	uint32_t member_count;
	struct sl_commit *commits; /* sorted by (topic, partition) */
	uint32_t commit_count;
	uint32_t commit_cap;
	struct sl_group *next;
	/* Groups of Kafka members: the protocol type ("consumer", "connect"), the protocol chosen for the current
	 * generation and the member that assigns it (empty strings for groups of native members). */
	char protocol_type[SL_GROUP_PROTOCOL_NAME_BYTES_MAX + 1];
	char protocol[SL_GROUP_PROTOCOL_NAME_BYTES_MAX + 1];
	char leader[SL_MEMBER_ID_BYTES_MAX];
};

struct sl_groups {
	struct sl_log *log;
	struct sl_topics *topics;
	struct sl_group *head;
	uint32_t group_count;
	uint64_t member_seq;
};

/* 0 if name is a valid group name (same characters as topics, 1 to 200), else -EINVAL. */
int sl_group_name_check(const char *name);

/* Open (creating) the offset log under data_dir/groups and replay it. Returns 0 or a negative errno with a
 * message in err. */
int sl_groups_open(struct sl_groups *g, const char *data_dir, struct sl_ring *ring, const struct sl_log_config *cfg,
                   struct sl_topics *topics, char *err, size_t err_cap);
int sl_groups_close(struct sl_groups *g);

struct sl_group *sl_groups_find(struct sl_groups *g, const char *name);

/* Join (member_id NULL or "" for a new member). Starts a new generation when membership or subscriptions
 * change. *member_out points into the group (valid until the next membership change). Returns 0, -ENOENT
 * (unknown member id: join without one), -E2BIG (too many members or topics), -EINVAL. */
int sl_group_join(struct sl_groups *g, const char *group, const char *member_id, const char *client_id, char **topics,
                  uint32_t topic_count, uint32_t session_timeout_ms, int64_t now_ms, struct sl_group **group_out,
                  struct sl_member **member_out);
/* Returns 0, -ENOENT (unknown group or member), -ESTALE (generation is not the current one). */
int sl_group_heartbeat(struct sl_groups *g, const char *group, const char *member_id, int32_t generation,
                       int64_t now_ms);
int sl_group_leave(struct sl_groups *g, const char *group, const char *member_id);
/* Remove members whose session expired; returns how many. */
uint32_t sl_groups_expire(struct sl_groups *g, int64_t now_ms);
/* The member a partition is assigned to in the current generation, or NULL. */
const struct sl_member *sl_group_owner(const struct sl_group *grp, const char *topic, uint32_t partition);
/* A topic was created: groups with members subscribed to it start a new generation that assigns it. */
void sl_groups_topic_created(struct sl_groups *g, const char *topic);
const struct sl_commit *sl_group_committed(const struct sl_group *grp, const char *topic, uint32_t partition);
/* The lowest offset any group committed on a partition, INT64_MAX when no group has a commit there. Read only:
 * the cleaner keeps tombstones until every group is past them (broker/compaction.c). */
int64_t sl_groups_min_committed(const struct sl_groups *g, const char *topic, uint32_t partition);

/* A commit in flight: the caller owns it until cb runs (status 0 once durable, or a negative errno). */
struct sl_commit_entry {
	const char *topic;
	uint32_t partition;
	int64_t offset;
	const char *metadata;
};
struct sl_groups_commit;
typedef void (*sl_groups_commit_cb)(void *ctx, int status);
/* Append the commits of one request to the offset log (fsync level) and apply them to the group once durable.
 * The entries are copied. Returns 0 (cb will run), or a negative errno (cb will not run): -EAGAIN when the
 * offset log's window is full. */
int sl_groups_commit(struct sl_groups *g, const char *group, const struct sl_commit_entry *entries, uint32_t count,
                     sl_groups_commit_cb cb, void *ctx);
/* Delete a group and its offsets (durably, same rules as a commit). */
int sl_groups_delete(struct sl_groups *g, const char *group, sl_groups_commit_cb cb, void *ctx);

/* For the Kafka listener's group coordinator (broker/kafka/groups.c), which runs Kafka's join and sync phases
 * itself and starts generations when they complete: */
/* Add a member with a fresh id and no subscription, creating the group; no new generation starts. Returns 0,
 * -EINVAL (group name), -ERANGE (session timeout), -E2BIG (group full), -ENOMEM. */
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
