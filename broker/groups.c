/* The group coordinator: membership and assignment in memory, committed offsets in the internal offset log
 * (format in groups.h), each group partition's health judged from a window of samples, and the offset log
 * compacted while the broker runs. Assignment is deterministic: members sorted by id, the partitions of each
 * topic dealt round-robin among the members subscribed to it, so every broker (and every test) computes the
 * same one.
 *
 * ---- A group's lifecycle (enum sl_group_state), with the function that makes each move ----
 *
 *            join, delay 0: rebalance                   join/leave/expiry: rebalance (generation + 1)
 *   EMPTY ----------------------------------> STABLE <------------------------------------+
 *     |  join, delay > 0 (sl_group_join)        ^  |  |                                     |
 *     v                                         |  |  +-------------------------------------+
 *   FORMING --deadline (sl_groups_tick)---------+  |
 *     more joins wait; none is expired             |  forced operator commit (sl_group_reset_begin):
 *                                                  v  generation + 1, joins wait
 *   STABLE/EMPTY <--durable (sl_group_reset_end)-- RESETTING
 *   any state --last member leaves--> EMPTY;  --delete (sl_groups_delete, durable)--> gone
 *
 * Members carry their client id and host, a generation is what a commit or heartbeat must match, and each
 * member's assignment is its own: Kafka's JoinGroup/SyncGroup layer on this by adding the protocol type, the
 * members' opaque metadata and client-side assignments; a waiting join (-EINPROGRESS) is the hook for Kafka's
 * PreparingRebalance.
 *
 * Invariants:
 *   1. A group is in by_name exactly when it is in sorted; sorted is in strcmp order.
 *   2. group_count <= settings.groups_max, except groups replayed from the log at open (never dropped).
 *   3. commits[] is sorted by (topic, partition) and unique; a commit's offset is applied to memory only once
 *      its record is durable, in log order.
 *   4. FORMING and RESETTING groups have every member's joining set; STABLE and EMPTY have none.
 *   5. A commit request is appended after every request accepted before it (the queue is FIFO), so the log's
 *      order is the order of acceptance.
 *
 * ---- Health (sl_groups_health_tick, Burrow's model built in) ----
 * Every tick, each tracked partition (every partition of a topic a member subscribes to, and every partition with a
 * commit) gets a sample (committed, log end, time) in a ring of the group's window, and a state, the first that holds:
 *   lost     records_lost > 0: the commit fell behind the log start (retention removed unread records), or a
 *            consumer reported records it found removed. Sticky until an operator commit or a backfill.
 *   idle     lag 0 and the log end did not move over the window's samples: nothing new to consume. Never an
 *            alarm.
 *   ok       lag 0 otherwise.
 *   stopped  lag > 0, no live member owns the partition, and both have lasted stall-after.
 *   stalled  lag > 0 with a live owner, and neither the commit moved nor the lag was 0 for stall-after.
 *   lagging  the window is full, the lag grew over it (never shrank, ended higher) and the commit moved in it.
 *   ok       anything else.
 * stall-after is, the first that is set: the group's own (group alter), the recovery.alert.stall_after of the sync
 * contract of the partition's topic (broker/contracts.h), the broker's --stall-after.
 * A state change is logged once (event group_state, with group, topic, partition, lag and lag_ms).
 *
 * ---- Compaction (online) ----
 * Every commit appends, so the log grows with history. When it holds more than COMPACT_BYTES_MIN and four times
 * what the live state needs, the coordinator: (1) holds new appends in its queue until the log is idle, (2)
 * writes the live state into offsets.compact as a snapshot (the last batch at fsync level), (3) once that is
 * durable, closes the old log, renames offsets -> offsets.old and offsets.compact -> offsets, fsyncs the
 * directory and removes offsets.old, then (4) appends the held commits to the new log. A crash before the second
 * rename leaves the old log (recover_compaction removes the partial one); after it, the complete new one. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker/groups.h"
#include "proto/base/assert.h"
#include "proto/base/clock.h"
#include "proto/base/fs.h"
#include "proto/base/slog.h"
#include "proto/batch.h"

#define SEP                       '\x1f'
/* The offset log reads back in chunks of this size at open. */
#define REPLAY_READ_BYTES         (4u << 20)
/* Commit requests accepted and not yet appended (while the log's window is full or a compaction holds them):
 * past it a commit is refused with THROTTLED. 4096 requests of up to a few KiB each. */
#define COMMITS_QUEUED_MAX        4096u
/* Compaction: below this the log is left alone (replaying 16 MiB takes well under a second); above it, once the
 * log is four times what the live state needs. */
#define COMPACT_BYTES_MIN         (16u << 20)
#define COMPACT_COMMITS_PER_BATCH 1000u
#define COMPACT_BATCH_BYTES       (4u << 20)
/* What one live commit costs in the log (key, value, record overhead), to estimate the compacted size. */
#define COMMIT_RECORD_BYTES_EST   96u

enum { COMPACT_IDLE = 0, COMPACT_DRAIN, COMPACT_WRITE };

static const char *const health_names[SL_HEALTH_COUNT] = {
        [SL_HEALTH_IDLE] = "idle",       [SL_HEALTH_OK] = "ok",           [SL_HEALTH_LAGGING] = "lagging",
        [SL_HEALTH_STOPPED] = "stopped", [SL_HEALTH_STALLED] = "stalled", [SL_HEALTH_LOST] = "lost",
};

const char *sl_health_name(enum sl_health h)
{
	return (unsigned)h < SL_HEALTH_COUNT ? health_names[h] : "unknown";
}

void sl_groups_settings_default(struct sl_groups_settings *s)
{
	s->stall_after_ms = SL_STALL_AFTER_MS_DEFAULT;
	s->window = SL_HEALTH_WINDOW_DEFAULT;
	s->initial_rebalance_delay_ms = SL_INITIAL_REBALANCE_DELAY_MS_DEFAULT;
	s->groups_max = SL_GROUPS_MAX_DEFAULT;
}

int sl_group_name_check(const char *name)
{
	/* Same alphabet as topics; "__" is allowed for groups (no internal groups exist). */
	return sl_topic_name_check(name, 1);
}

/* ---- offset-log records ---- */

/* One record of the offset log (format in groups.h), in the caller's buffers. */
struct log_record {
	char key[SL_GROUP_NAME_BYTES_MAX + SL_TOPIC_NAME_BYTES_MAX + 32];
	char val[64 + SL_GROUP_METADATA_BYTES_MAX];
	struct sl_record r;
};

static const struct sl_record *record_make(struct log_record *lr, int kl, int vl, int64_t ms)
{
	lr->r = (struct sl_record){.timestamp_ms = ms,
	                           .key = (uint8_t *)lr->key,
	                           .key_len = kl,
	                           .value = vl >= 0 ? (uint8_t *)lr->val : NULL,
	                           .value_len = vl,
	                           .version = SL_VERSION_NONE,
	                           .op = vl >= 0 ? SL_OP_UPSERT : SL_OP_DELETE};
	return &lr->r;
}

static const struct sl_record *commit_record(struct log_record *lr, const char *group, const char *topic,
                                             uint32_t partition, int64_t offset, int64_t commit_ms,
                                             const char *metadata)
{
	int kl = snprintf(lr->key, sizeof(lr->key), "c%c%s%c%s%c%u", SEP, group, SEP, topic, SEP, partition);
	int vl = snprintf(lr->val, sizeof(lr->val), "%" PRId64 " %" PRId64 " %s", offset, commit_ms,
	                  metadata ? metadata : "");
	return record_make(lr, kl, vl, commit_ms);
}

static const struct sl_record *lost_record(struct log_record *lr, const char *group, const char *topic,
                                           uint32_t partition, int64_t lost, int64_t ms)
{
	int kl = snprintf(lr->key, sizeof(lr->key), "l%c%s%c%s%c%u", SEP, group, SEP, topic, SEP, partition);
	int vl = snprintf(lr->val, sizeof(lr->val), "%" PRId64, lost);
	return record_make(lr, kl, vl, ms);
}

static const struct sl_record *group_record(struct log_record *lr, char type, const char *group, int64_t a, int64_t b,
                                            int nargs, int64_t ms)
{
	int kl = snprintf(lr->key, sizeof(lr->key), "%c%c%s", type, SEP, group);
	int vl = nargs == 0   ? -1
	         : nargs == 1 ? snprintf(lr->val, sizeof(lr->val), "%" PRId64, a)
	                      : snprintf(lr->val, sizeof(lr->val), "%" PRId64 " %" PRId64, a, b);
	return record_make(lr, kl, vl, ms);
}

/* ---- groups: the hash table and the sorted index ---- */

static uint32_t sorted_lower_bound(const struct sl_groups *g, const char *name)
{
	uint32_t lo = 0, hi = g->group_count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (strcmp(g->sorted[mid]->name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct sl_group *sl_groups_find(struct sl_groups *g, const char *name)
{
	struct sl_group *grp = NULL;
	HASH_FIND_STR(g->by_name, name, grp);
	return grp;
}

/* The group of that name, created when create != 0. Returns NULL with *err_out -ENOMEM, or -EUSERS when the
 * bound is reached (enforce_max: not at replay, which must never drop a group that was acknowledged). */
static struct sl_group *group_get(struct sl_groups *g, const char *name, int create, int enforce_max, int *err_out)
{
	struct sl_group *grp = sl_groups_find(g, name);
	*err_out = 0;
	if (grp != NULL || !create)
		return grp;
	if (enforce_max && g->group_count >= g->settings.groups_max) {
		*err_out = -EUSERS;
		return NULL;
	}
	if (g->group_count == g->sorted_cap) {
		uint32_t cap = g->sorted_cap ? g->sorted_cap * 2 : 64;
		struct sl_group **ns = realloc(g->sorted, cap * sizeof(*ns));
		if (ns == NULL) {
			*err_out = -ENOMEM;
			return NULL;
		}
		g->sorted = ns;
		g->sorted_cap = cap;
	}
	grp = calloc(1, sizeof(*grp));
	if (grp == NULL) {
		*err_out = -ENOMEM;
		return NULL;
	}
	snprintf(grp->name, sizeof(grp->name), "%s", name);
	grp->state = SL_GROUP_EMPTY;
	grp->worst = SL_HEALTH_IDLE;
	grp->worst_since_ms = sl_clock_wall_ms();
	uint32_t at = sorted_lower_bound(g, name);
	memmove(&g->sorted[at + 1], &g->sorted[at], (g->group_count - at) * sizeof(*g->sorted));
	g->sorted[at] = grp;
	g->group_count++;
	HASH_ADD_STR(g->by_name, name, grp);
	return grp;
}

uint32_t sl_groups_page(struct sl_groups *g, const char *start_after, struct sl_group **out, uint32_t max)
{
	uint32_t at = 0, n = 0;
	if (start_after != NULL && start_after[0] != '\0') {
		at = sorted_lower_bound(g, start_after);
		if (at < g->group_count && strcmp(g->sorted[at]->name, start_after) == 0)
			at++;
	}
	while (at < g->group_count && n < max)
		out[n++] = g->sorted[at++];
	return n;
}

static void member_free(struct sl_member *m)
{
	for (uint32_t i = 0; i < m->topic_count; i++)
		free(m->topics[i]);
	free(m->topics);
	for (uint32_t i = 0; i < m->assignment_count; i++) {
		free(m->assignment[i].topic);
		free(m->assignment[i].partitions);
	}
	free(m->assignment);
	for (uint32_t i = 0; i < m->protocol_count; i++) {
		free(m->protocols[i].name);
		free(m->protocols[i].metadata);
	}
	free(m->protocols);
	free(m->assignment_bytes);
	memset(m, 0, sizeof(*m));
}

static void commit_free(struct sl_commit *c)
{
	free(c->topic);
	free(c->metadata);
	free(c->samples);
}

static void group_free(struct sl_group *grp)
{
	for (uint32_t i = 0; i < grp->member_count; i++)
		member_free(&grp->members[i]);
	free(grp->members);
	for (uint32_t i = 0; i < grp->commit_count; i++)
		commit_free(&grp->commits[i]);
	free(grp->commits);
	free(grp);
}

static void group_remove(struct sl_groups *g, struct sl_group *grp)
{
	uint32_t at = sorted_lower_bound(g, grp->name);
	SL_ASSERT(at < g->group_count && g->sorted[at] == grp);
	memmove(&g->sorted[at], &g->sorted[at + 1], (g->group_count - at - 1) * sizeof(*g->sorted));
	g->group_count--;
	HASH_DEL(g->by_name, grp);
	group_free(grp);
}

/* ---- a group's partitions ---- */

static int commit_cmp(const char *topic, uint32_t partition, const struct sl_commit *c)
{
	int r = strcmp(topic, c->topic);
	if (r != 0)
		return r;
	return partition < c->partition ? -1 : partition > c->partition;
}

static uint32_t commit_lower_bound(const struct sl_group *grp, const char *topic, uint32_t partition)
{
	uint32_t lo = 0, hi = grp->commit_count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (commit_cmp(topic, partition, &grp->commits[mid]) > 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct sl_commit *entry_find(const struct sl_group *grp, const char *topic, uint32_t partition)
{
	uint32_t at = commit_lower_bound(grp, topic, partition);
	if (at < grp->commit_count && commit_cmp(topic, partition, &grp->commits[at]) == 0)
		return &grp->commits[at];
	return NULL;
}

const struct sl_commit *sl_group_committed(const struct sl_group *grp, const char *topic, uint32_t partition)
{
	const struct sl_commit *c = entry_find(grp, topic, partition);
	return c != NULL && c->offset >= 0 ? c : NULL;
}

/* The entry of topic/partition, added (nothing committed, tracking from now) when missing. */
static struct sl_commit *entry_get(struct sl_group *grp, const char *topic, uint32_t partition, int64_t now_ms)
{
	uint32_t at = commit_lower_bound(grp, topic, partition);
	if (at < grp->commit_count && commit_cmp(topic, partition, &grp->commits[at]) == 0)
		return &grp->commits[at];
	if (grp->commit_count == grp->commit_cap) {
		uint32_t cap = grp->commit_cap ? grp->commit_cap * 2 : 16;
		struct sl_commit *nc = realloc(grp->commits, cap * sizeof(*nc));
		if (nc == NULL)
			return NULL;
		grp->commits = nc;
		grp->commit_cap = cap;
	}
	char *t = strdup(topic);
	if (t == NULL)
		return NULL;
	memmove(&grp->commits[at + 1], &grp->commits[at], (grp->commit_count - at) * sizeof(*grp->commits));
	grp->commit_count++;
	struct sl_commit *c = &grp->commits[at];
	memset(c, 0, sizeof(*c));
	c->topic = t;
	c->partition = partition;
	c->offset = -1;
	c->moved_ms = now_ms;
	c->owned_ms = now_ms;
	c->ts_offset = -1;
	c->lag = -1;
	c->state = SL_HEALTH_IDLE;
	c->state_since_ms = now_ms;
	return c;
}

static int commit_apply(struct sl_group *grp, const char *topic, uint32_t partition, int64_t offset, int64_t ms,
                        const char *meta, size_t meta_len)
{
	int64_t now = sl_clock_wall_ms();
	struct sl_commit *c = entry_get(grp, topic, partition, now);
	if (c == NULL)
		return -ENOMEM;
	char *m = strndup(meta ? meta : "", meta_len);
	if (m == NULL)
		return -ENOMEM;
	free(c->metadata);
	c->metadata = m;
	if (c->offset != offset)
		c->moved_ms = now;
	c->offset = offset;
	c->commit_ms = ms;
	return 0;
}

/* Forget every commit (group delete); the entries go too. */
static void commits_clear(struct sl_group *grp)
{
	for (uint32_t i = 0; i < grp->commit_count; i++)
		commit_free(&grp->commits[i]);
	grp->commit_count = 0;
}

void sl_group_track_topic(struct sl_groups *g, struct sl_group *grp, const char *topic, int64_t now_ms)
{
	struct sl_topic *t = sl_topics_find(g->topics, topic);
	if (t == NULL)
		return;
	for (uint32_t p = 0; p < t->cfg.partitions; p++)
		if (entry_get(grp, t->cfg.name, p, now_ms) == NULL)
			return;
}

void sl_group_track_all(struct sl_groups *g, struct sl_group *grp, int64_t now_ms)
{
	/* Partitions of a topic only committed to (an offset reset of a few partitions, a group whose members left)
	 * are tracked where committed: describe shows the others without keeping state for them, so a thousand groups
	 * committing to a few partitions of a topic of thousands do not cost millions of entries. */
	for (uint32_t i = 0; i < grp->member_count; i++)
		for (uint32_t t = 0; t < grp->members[i].topic_count; t++)
			sl_group_track_topic(g, grp, grp->members[i].topics[t], now_ms);
}

/* ---- membership and assignment ---- */

static int member_index(const struct sl_group *grp, const char *id)
{
	for (uint32_t i = 0; i < grp->member_count; i++)
		if (strcmp(grp->members[i].id, id) == 0)
			return (int)i;
	return -1;
}

static int subscribed(const struct sl_member *m, const char *topic)
{
	for (uint32_t i = 0; i < m->topic_count; i++)
		if (strcmp(m->topics[i], topic) == 0)
			return 1;
	return 0;
}

static int add_assigned(struct sl_member *m, const char *topic, uint32_t partition)
{
	struct sl_assigned *a = NULL;
	for (uint32_t i = 0; i < m->assignment_count; i++)
		if (strcmp(m->assignment[i].topic, topic) == 0)
			a = &m->assignment[i];
	if (a == NULL) {
		struct sl_assigned *na = realloc(m->assignment, (m->assignment_count + 1) * sizeof(*na));
		if (na == NULL)
			return -ENOMEM;
		m->assignment = na;
		a = &m->assignment[m->assignment_count];
		memset(a, 0, sizeof(*a));
		a->topic = strdup(topic);
		if (a->topic == NULL)
			return -ENOMEM;
		m->assignment_count++;
	}
	uint32_t *np = realloc(a->partitions, (a->count + 1) * sizeof(*np));
	if (np == NULL)
		return -ENOMEM;
	a->partitions = np;
	a->partitions[a->count++] = partition;
	return 0;
}

static int cmp_member(const void *a, const void *b)
{
	return strcmp(((const struct sl_member *)a)->id, ((const struct sl_member *)b)->id);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A new generation: sort members, deal every subscribed topic's partitions round-robin among its
 * subscribers (in id order). The group becomes STABLE (or EMPTY without members); joins stop waiting. */
static void rebalance(struct sl_groups *g, struct sl_group *grp)
{
	int64_t now = sl_clock_wall_ms();
	grp->generation++;
	grp->state = grp->member_count > 0 ? SL_GROUP_STABLE : SL_GROUP_EMPTY;
	qsort(grp->members, grp->member_count, sizeof(*grp->members), cmp_member);
	for (uint32_t i = 0; i < grp->member_count; i++) {
		struct sl_member *m = &grp->members[i];
		for (uint32_t k = 0; k < m->assignment_count; k++) {
			free(m->assignment[k].topic);
			free(m->assignment[k].partitions);
		}
		free(m->assignment);
		m->assignment = NULL;
		m->assignment_count = 0;
		m->joining = 0;
		m->last_heartbeat_ms = now; /* its session starts now, not when it began to wait */
	}
	/* The union of subscribed topics, sorted, each dealt once. */
	uint32_t n = 0;
	for (uint32_t i = 0; i < grp->member_count; i++)
		n += grp->members[i].topic_count;
	char **all = calloc(n ? n : 1, sizeof(*all));
	if (all == NULL)
		return;
	n = 0;
	for (uint32_t i = 0; i < grp->member_count; i++)
		for (uint32_t k = 0; k < grp->members[i].topic_count; k++)
			all[n++] = grp->members[i].topics[k];
	qsort(all, n, sizeof(*all), cmp_str);
	for (uint32_t t = 0; t < n; t++) {
		if (t > 0 && strcmp(all[t], all[t - 1]) == 0)
			continue;
		struct sl_topic *topic = sl_topics_find(g->topics, all[t]);
		if (topic == NULL)
			continue;
		sl_group_track_topic(g, grp, all[t], now);
		uint32_t next = 0;
		for (uint32_t p = 0; p < topic->cfg.partitions; p++) {
			/* The next subscriber after the previous one, in id order. */
			for (uint32_t tries = 0; tries < grp->member_count; tries++) {
				struct sl_member *m = &grp->members[next % grp->member_count];
				next++;
				if (!m->kafka && subscribed(m, all[t])) {
					add_assigned(m, all[t], p);
					break;
				}
			}
		}
	}
	free(all);
}

static int same_topics(const struct sl_member *m, char **topics, uint32_t count)
{
	if (m->topic_count != count)
		return 0;
	for (uint32_t i = 0; i < count; i++)
		if (!subscribed(m, topics[i]))
			return 0;
	return 1;
}

static int member_set_topics(struct sl_member *m, char **topics, uint32_t count)
{
	for (uint32_t i = 0; i < m->topic_count; i++)
		free(m->topics[i]);
	free(m->topics);
	m->topic_count = 0;
	m->topics = calloc(count, sizeof(*m->topics));
	if (m->topics == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < count; i++) {
		m->topics[i] = strdup(topics[i]);
		if (m->topics[i] == NULL)
			return -ENOMEM;
		m->topic_count++;
	}
	return 0;
}

static int waits(const struct sl_group *grp)
{
	return grp->state == SL_GROUP_FORMING || grp->state == SL_GROUP_RESETTING;
}

static void member_remove(struct sl_groups *g, struct sl_group *grp, uint32_t idx);

int sl_group_join(struct sl_groups *g, const char *group, const char *member_id, const char *client_id,
                  const char *client_host, const char *instance_id, char **topics, uint32_t topic_count,
                  uint32_t session_timeout_ms, int64_t now_ms, struct sl_group **group_out,
                  struct sl_member **member_out)
{
	if (sl_group_name_check(group) != 0 || topic_count == 0)
		return -EINVAL;
	if (topic_count > SL_MEMBER_TOPICS_MAX)
		return -E2BIG;
	for (uint32_t i = 0; i < topic_count; i++)
		if (sl_topic_name_check(topics[i], 1) != 0)
			return -EINVAL;
	if (session_timeout_ms == 0)
		session_timeout_ms = SL_SESSION_TIMEOUT_MS_DEFAULT;
	if (session_timeout_ms < SL_SESSION_TIMEOUT_MS_MIN || session_timeout_ms > SL_SESSION_TIMEOUT_MS_MAX)
		return -ERANGE;
	int err;
	struct sl_group *grp = group_get(g, group, 1, 1, &err);
	if (grp == NULL)
		return err;
	int idx = member_id && member_id[0] ? member_index(grp, member_id) : -1;
	if (member_id && member_id[0] && idx < 0)
		return -ENOENT;
	int changed = 0;
	if (idx < 0 && instance_id != NULL && instance_id[0] != '\0') {
		/* Static membership: the member of that instance id is gone (this one replaces it), and is fenced by
		 * the new generation this join starts. Its waiting join, if any, is answered UNKNOWN_MEMBER. */
		for (uint32_t i = 0; i < grp->member_count; i++) {
			if (strcmp(grp->members[i].instance_id, instance_id) == 0) {
				member_remove(g, grp, i);
				break;
			}
		}
	}
	if (idx < 0) {
		if (grp->member_count >= SL_GROUP_MEMBERS_MAX)
			return -E2BIG;
		struct sl_member *nm = realloc(grp->members, (grp->member_count + 1) * sizeof(*nm));
		if (nm == NULL)
			return -ENOMEM;
		grp->members = nm;
		idx = (int)grp->member_count++;
		struct sl_member *m = &grp->members[idx];
		memset(m, 0, sizeof(*m));
		snprintf(m->client_id, sizeof(m->client_id), "%s", client_id && client_id[0] ? client_id : "member");
		snprintf(m->client_host, sizeof(m->client_host), "%s", client_host ? client_host : "");
		snprintf(m->instance_id, sizeof(m->instance_id), "%s", instance_id ? instance_id : "");
		unsigned rnd = (unsigned)(now_ms * 2654435761u) ^ (unsigned)rand();
		snprintf(m->id, sizeof(m->id), "%.100s-%" PRIu64 "-%08x", m->client_id, ++g->member_seq, rnd);
		changed = 1;
	}
	struct sl_member *m = &grp->members[idx];
	if (!same_topics(m, topics, topic_count)) {
		if (member_set_topics(m, topics, topic_count) != 0)
			return -ENOMEM;
		changed = 1;
	}
	m->session_timeout_ms = session_timeout_ms;
	m->last_heartbeat_ms = now_ms;
	*group_out = grp;
	if (grp->state == SL_GROUP_EMPTY && g->settings.initial_rebalance_delay_ms > 0) {
		/* The first member of an empty group: wait for company (invariant 4). */
		grp->state = SL_GROUP_FORMING;
		grp->forming_deadline_ms = now_ms + g->settings.initial_rebalance_delay_ms;
	}
	if (waits(grp)) {
		m->joining = 1;
		*member_out = m;
		return -EINPROGRESS;
	}
	char id[SL_MEMBER_ID_BYTES_MAX];
	snprintf(id, sizeof(id), "%s", m->id);
	if (changed || grp->state == SL_GROUP_EMPTY)
		rebalance(g, grp); /* sorts members: find ours again */
	*member_out = &grp->members[member_index(grp, id)];
	return 0;
}

int sl_group_join_ready(struct sl_groups *g, const char *group, const char *member_id, struct sl_group **group_out,
                        struct sl_member **member_out)
{
	struct sl_group *grp = sl_groups_find(g, group);
	*group_out = grp;
	*member_out = NULL;
	if (grp == NULL)
		return 1;
	if (waits(grp))
		return 0;
	int idx = member_index(grp, member_id);
	if (idx >= 0)
		*member_out = &grp->members[idx];
	return 1;
}

int sl_group_heartbeat(struct sl_groups *g, const char *group, const char *member_id, int32_t generation,
                       int64_t now_ms)
{
	struct sl_group *grp = sl_groups_find(g, group);
	int idx = grp ? member_index(grp, member_id) : -1;
	if (idx < 0)
		return -ENOENT;
	grp->members[idx].last_heartbeat_ms = now_ms;
	return generation == grp->generation && !waits(grp) ? 0 : -ESTALE;
}

static void member_remove(struct sl_groups *g, struct sl_group *grp, uint32_t idx)
{
	member_free(&grp->members[idx]);
	memmove(&grp->members[idx], &grp->members[idx + 1], (grp->member_count - idx - 1) * sizeof(*grp->members));
	grp->member_count--;
	if (grp->state == SL_GROUP_FORMING && grp->member_count == 0)
		grp->state = SL_GROUP_EMPTY;
	if (!waits(grp))
		rebalance(g, grp);
}

int sl_group_leave(struct sl_groups *g, const char *group, const char *member_id)
{
	struct sl_group *grp = sl_groups_find(g, group);
	int idx = grp ? member_index(grp, member_id) : -1;
	if (idx < 0)
		return -ENOENT;
	member_remove(g, grp, (uint32_t)idx);
	return 0;
}

void sl_group_join_abandon(struct sl_groups *g, const char *group, const char *member_id)
{
	struct sl_group *grp = sl_groups_find(g, group);
	int idx = grp ? member_index(grp, member_id) : -1;
	if (idx >= 0 && grp->members[idx].joining)
		member_remove(g, grp, (uint32_t)idx);
}

/* A member removed for silence is said once, at info: the client learns it only at its next request (UNKNOWN_MEMBER)
 * and rejoins, so without this line a consumer that stops polling for longer than its session (a blocked thread, a
 * client driving many members one after the other) shows up only as rebalances and refused commits. */
static void member_expired_log(const struct sl_group *grp, const struct sl_member *m, int64_t now_ms)
{
	struct sl_slog *e = sl_slog_begin(SL_SLOG_INFO, "group_member_expired");
	sl_slog_str(e, "group", grp->name);
	sl_slog_str(e, "member", m->id);
	sl_slog_str(e, "client_host", m->client_host);
	sl_slog_int(e, "silent_ms", now_ms - m->last_heartbeat_ms);
	sl_slog_uint(e, "session_timeout_ms", m->session_timeout_ms);
	sl_slog_end(e);
}

uint32_t sl_groups_tick(struct sl_groups *g, int64_t now_ms)
{
	uint32_t changed = 0;
	for (uint32_t k = 0; k < g->group_count; k++) {
		struct sl_group *grp = g->sorted[k];
		if (grp->state == SL_GROUP_FORMING && now_ms >= grp->forming_deadline_ms) {
			rebalance(g, grp);
			changed++;
			continue;
		}
		for (uint32_t i = 0; i < grp->member_count;) {
			struct sl_member *m = &grp->members[i];
			if (!m->joining && now_ms - m->last_heartbeat_ms > (int64_t)m->session_timeout_ms) {
				member_expired_log(grp, m, now_ms);
				member_remove(g, grp, i);
				changed++;
			} else {
				i++;
			}
		}
	}
	return changed;
}

void sl_groups_topic_created(struct sl_groups *g, const char *topic)
{
	for (uint32_t k = 0; k < g->group_count; k++) {
		struct sl_group *grp = g->sorted[k];
		int wanted = 0;
		for (uint32_t i = 0; i < grp->member_count && !wanted; i++)
			wanted = subscribed(&grp->members[i], topic);
		if (wanted && !waits(grp))
			rebalance(g, grp);
	}
}

const struct sl_member *sl_group_owner(const struct sl_group *grp, const char *topic, uint32_t partition)
{
	if (waits(grp))
		return NULL;
	for (uint32_t i = 0; i < grp->member_count; i++) {
		const struct sl_member *m = &grp->members[i];
		for (uint32_t k = 0; k < m->assignment_count; k++) {
			if (strcmp(m->assignment[k].topic, topic) != 0)
				continue;
			for (uint32_t j = 0; j < m->assignment[k].count; j++)
				if (m->assignment[k].partitions[j] == partition)
					return m;
		}
	}
	return NULL;
}

void sl_group_reset_begin(struct sl_groups *g, struct sl_group *grp)
{
	(void)g;
	grp->resets_pending++;
	if (grp->member_count == 0)
		return;
	/* Fence the members: their commits and heartbeats carry the old generation and are refused, so nothing
	 * they consumed before the reset can overwrite it. Their joins wait until it is durable. */
	grp->generation++;
	grp->state = SL_GROUP_RESETTING;
	for (uint32_t i = 0; i < grp->member_count; i++)
		grp->members[i].joining = 1;
}

void sl_group_reset_end(struct sl_groups *g, const char *group)
{
	struct sl_group *grp = sl_groups_find(g, group);
	if (grp == NULL || grp->resets_pending == 0)
		return;
	if (--grp->resets_pending == 0 && grp->state == SL_GROUP_RESETTING)
		rebalance(g, grp);
}

void sl_group_applier_report(struct sl_group *grp, const struct sl_applier_report *r)
{
	grp->applier = *r;
	grp->applier.reported_ms = sl_clock_wall_ms();
}

/* ---- applying the offset log ---- */

/* Split "group SEP topic SEP partition" (in buf, NUL-terminated) into its parts. */
static int key_split3(char *buf, size_t len, char **topic_out, uint32_t *partition_out)
{
	char *topic = memchr(buf, SEP, len);
	char *part = topic ? memchr(topic + 1, SEP, len - (size_t)(topic + 1 - buf)) : NULL;
	if (part == NULL)
		return -EBADMSG;
	*topic++ = '\0';
	*part++ = '\0';
	*topic_out = topic;
	*partition_out = (uint32_t)strtoul(part, NULL, 10);
	return 0;
}

/* Apply one record of the offset log to the in-memory state (at replay, and once an append is durable). */
static int apply_record(struct sl_groups *g, const struct sl_record *r)
{
	if (r->key == NULL || r->key_len < 3 || r->key[1] != SEP)
		return -EBADMSG;
	const char *k = (const char *)r->key + 2;
	size_t klen = (size_t)r->key_len - 2;
	char buf[SL_GROUP_NAME_BYTES_MAX + SL_TOPIC_NAME_BYTES_MAX + 32];
	if (klen >= sizeof(buf))
		return -EBADMSG;
	memcpy(buf, k, klen);
	buf[klen] = '\0';
	char type = (char)r->key[0];
	if (type == 'd') {
		struct sl_group *grp = sl_groups_find(g, buf);
		if (grp) {
			commits_clear(grp);
			grp->reset_generation = grp->reset_generation_issued = 0;
			grp->stall_after_ms = 0;
			grp->window = 0;
			if (grp->member_count == 0)
				group_remove(g, grp);
		}
		return 0;
	}
	char vbuf[64 + SL_GROUP_METADATA_BYTES_MAX];
	if (r->value == NULL || (size_t)r->value_len >= sizeof(vbuf))
		return -EBADMSG;
	memcpy(vbuf, r->value, (size_t)r->value_len);
	vbuf[r->value_len] = '\0';
	char *topic = NULL;
	uint32_t partition = 0;
	if ((type == 'c' || type == 'l') && key_split3(buf, klen, &topic, &partition) != 0)
		return -EBADMSG;
	int err;
	struct sl_group *grp = group_get(g, buf, 1, 0, &err);
	if (grp == NULL)
		return err;
	long long a = 0, b = 0;
	int used = 0;
	switch (type) {
	case 'c':
		if (sscanf(vbuf, "%lld %lld %n", &a, &b, &used) < 2)
			return -EBADMSG;
		return commit_apply(grp, topic, partition, a, b, vbuf + used, strlen(vbuf + used));
	case 'l': {
		if (sscanf(vbuf, "%lld", &a) < 1)
			return -EBADMSG;
		struct sl_commit *c = entry_get(grp, topic, partition, sl_clock_wall_ms());
		if (c == NULL)
			return -ENOMEM;
		c->records_lost = a;
		return 0;
	}
	case 'r':
		if (sscanf(vbuf, "%lld", &a) < 1)
			return -EBADMSG;
		if (a > grp->reset_generation)
			grp->reset_generation = a;
		if (grp->reset_generation > grp->reset_generation_issued)
			grp->reset_generation_issued = grp->reset_generation;
		return 0;
	case 's':
		if (sscanf(vbuf, "%lld %lld", &a, &b) < 2 || a < 0 || b < 0 || b > SL_HEALTH_WINDOW_MAX)
			return -EBADMSG;
		grp->stall_after_ms = a;
		grp->window = (uint32_t)b;
		return 0;
	default:
		return -EBADMSG;
	}
}

static int replay(struct sl_groups *g)
{
	int64_t at = sl_log_start_offset(g->log), end = sl_log_next_offset(g->log);
	uint8_t *buf = malloc(REPLAY_READ_BYTES);
	uint8_t *scratch = malloc(SL_BATCH_BYTES_MAX);
	int rc = buf && scratch ? 0 : -ENOMEM;
	while (rc == 0 && at < end) {
		size_t len;
		int64_t next;
		rc = sl_log_read(g->log, at, buf, REPLAY_READ_BYTES, &len, &next);
		for (size_t p = 0; rc == 0 && p < len;) {
			struct sl_batch_header h;
			rc = sl_batch_header_parse(buf + p, len - p, &h);
			if (rc < 0)
				break;
			size_t total = sl_batch_total_bytes(&h);
			struct sl_record_iter it;
			rc = sl_record_iter_init(&it, buf + p, total, scratch, SL_BATCH_BYTES_MAX);
			struct sl_record r;
			while (rc == 0 && (rc = sl_record_iter_next(&it, &r)) == 1)
				rc = apply_record(g, &r) == -ENOMEM ? -ENOMEM : 0;
			p += total;
		}
		at = next;
	}
	free(buf);
	free(scratch);
	return rc;
}

/* ---- appends: one FIFO queue in front of the log (invariant 5) ---- */

struct sl_groups_commit {
	struct sl_append append;
	struct sl_groups *groups;
	sl_groups_commit_cb cb;
	void *ctx;
	uint8_t *batch;
	int reset_end; /* an operator commit that fenced members: end the reset when done */
	char group[SL_GROUP_NAME_BYTES_MAX + 1];
	struct sl_groups_commit *next; /* in the queue */
};

static void compact_pump(struct sl_groups *g);
static void compact_due_check(struct sl_groups *g);

static void commit_done_cb(struct sl_append *a, int status)
{
	struct sl_groups_commit *c = a->data;
	struct sl_groups *g = c->groups;
	SL_ASSERT(g->inflight > 0);
	g->inflight--;
	if (status == 0) {
		/* Durable: apply exactly what was written. */
		struct sl_record_iter it;
		struct sl_record r;
		if (sl_record_iter_init(&it, c->batch, a->len, NULL, 0) == 0)
			while (sl_record_iter_next(&it, &r) == 1)
				apply_record(g, &r);
	}
	if (c->reset_end)
		sl_group_reset_end(g, c->group);
	sl_groups_commit_cb cb = c->cb;
	void *ctx = c->ctx;
	free(c->batch);
	free(c);
	compact_due_check(g);
	compact_pump(g);
	cb(ctx, status);
}

/* Append queued requests while the log takes them (and no compaction holds them). */
static void queue_pump(struct sl_groups *g)
{
	while (g->queue_head != NULL && g->compact_step == COMPACT_IDLE) {
		struct sl_groups_commit *c = g->queue_head;
		int rc = sl_log_append(g->log, &c->append);
		if (rc == -EAGAIN)
			return; /* the next completion pumps again */
		g->queue_head = c->next;
		if (g->queue_head == NULL)
			g->queue_tail = NULL;
		g->queued--;
		if (rc == 0) {
			g->inflight++;
			continue;
		}
		/* The log refused it for good (read-only after a failed fsync): the request fails, nothing applied. */
		g->inflight++;
		commit_done_cb(&c->append, rc);
	}
}

static int append_records(struct sl_groups *g, struct sl_batch_builder *b, const char *group, int reset_end,
                          sl_groups_commit_cb cb, void *ctx)
{
	if (g->queued >= COMMITS_QUEUED_MAX)
		return -EAGAIN;
	const uint8_t *out;
	size_t len;
	int rc = sl_batch_builder_finish(b, SL_BATCH_CODEC_NONE, &out, &len);
	struct sl_groups_commit *c = rc == 0 ? calloc(1, sizeof(*c)) : NULL;
	if (rc == 0 && c == NULL)
		rc = -ENOMEM;
	if (rc == 0 && (c->batch = malloc(len)) == NULL)
		rc = -ENOMEM;
	if (rc < 0) {
		free(c);
		return rc;
	}
	memcpy(c->batch, out, len);
	c->groups = g;
	c->cb = cb;
	c->ctx = ctx;
	c->reset_end = reset_end;
	snprintf(c->group, sizeof(c->group), "%s", group);
	c->append.batch = c->batch;
	c->append.len = len;
	c->append.level = SL_DURABILITY_FSYNC;
	c->append.cb = commit_done_cb;
	c->append.data = c;
	if (g->queue_tail)
		g->queue_tail->next = c;
	else
		g->queue_head = c;
	g->queue_tail = c;
	g->queued++;
	queue_pump(g);
	return 0;
}

int sl_groups_commit(struct sl_groups *g, const char *group, const struct sl_commit_entry *entries, uint32_t count,
                     int by_operator, sl_groups_commit_cb cb, void *ctx)
{
	size_t bytes = 1024;
	for (uint32_t i = 0; i < count; i++) {
		if (entries[i].metadata && strlen(entries[i].metadata) > SL_GROUP_METADATA_BYTES_MAX)
			return -E2BIG;
		bytes += 2 * (96 + strlen(group) + strlen(entries[i].topic)) +
		         (entries[i].metadata ? strlen(entries[i].metadata) : 0);
	}
	if (count == 0 || bytes > SL_BATCH_BYTES_MAX)
		return count == 0 ? -EINVAL : -E2BIG;
	int err;
	struct sl_group *grp = group_get(g, group, 1, 1, &err);
	if (grp == NULL)
		return err;
	struct sl_batch_builder b;
	int rc = sl_batch_builder_init(&b, bytes);
	if (rc < 0)
		return rc;
	int64_t now = sl_clock_wall_ms();
	struct log_record lr;
	for (uint32_t i = 0; rc == 0 && i < count; i++) {
		const struct sl_commit_entry *e = &entries[i];
		rc = sl_batch_builder_add(
		        &b, commit_record(&lr, group, e->topic, e->partition, e->offset, now, e->metadata));
		const struct sl_commit *c = entry_find(grp, e->topic, e->partition);
		int64_t lost_now = c ? c->records_lost : 0;
		if (rc == 0 && by_operator && lost_now > 0) /* a reset clears lost */
			rc = sl_batch_builder_add(&b, lost_record(&lr, group, e->topic, e->partition, 0, now));
		else if (rc == 0 && !by_operator && e->records_lost > 0)
			rc = sl_batch_builder_add(
			        &b, lost_record(&lr, group, e->topic, e->partition, lost_now + e->records_lost, now));
	}
	if (rc == 0 && by_operator)
		rc = sl_batch_builder_add(&b, group_record(&lr, 'r', group, ++grp->reset_generation_issued, 0, 1, now));
	int fenced = by_operator && grp->resets_pending > 0 && grp->state == SL_GROUP_RESETTING;
	if (rc == 0)
		rc = append_records(g, &b, group, fenced, cb, ctx);
	sl_batch_builder_free(&b);
	return rc;
}

int sl_groups_delete(struct sl_groups *g, const char *group, sl_groups_commit_cb cb, void *ctx)
{
	struct sl_batch_builder b;
	int rc = sl_batch_builder_init(&b, 4096);
	if (rc < 0)
		return rc;
	struct log_record lr;
	rc = sl_batch_builder_add(&b, group_record(&lr, 'd', group, 0, 0, 0, sl_clock_wall_ms()));
	if (rc == 0)
		rc = append_records(g, &b, group, 0, cb, ctx);
	sl_batch_builder_free(&b);
	return rc;
}

int sl_groups_alter(struct sl_groups *g, const char *group, int64_t stall_after_ms, uint32_t window,
                    sl_groups_commit_cb cb, void *ctx)
{
	if (stall_after_ms < 0 || (stall_after_ms > 0 && stall_after_ms < SL_STALL_AFTER_MS_MIN) ||
	    (window != 0 && (window < SL_HEALTH_WINDOW_MIN || window > SL_HEALTH_WINDOW_MAX)))
		return -ERANGE;
	int err;
	if (group_get(g, group, 1, 1, &err) == NULL)
		return err;
	struct sl_batch_builder b;
	int rc = sl_batch_builder_init(&b, 4096);
	if (rc < 0)
		return rc;
	struct log_record lr;
	rc = sl_batch_builder_add(&b, group_record(&lr, 's', group, stall_after_ms, window, 2, sl_clock_wall_ms()));
	if (rc == 0)
		rc = append_records(g, &b, group, 0, cb, ctx);
	sl_batch_builder_free(&b);
	return rc;
}

int sl_groups_backfilled(struct sl_groups *g, const char *topic, sl_groups_commit_cb cb, void *ctx)
{
	size_t n = 0;
	for (uint32_t k = 0; k < g->group_count; k++)
		for (uint32_t i = 0; i < g->sorted[k]->commit_count; i++)
			n += g->sorted[k]->commits[i].records_lost > 0 &&
			     strcmp(g->sorted[k]->commits[i].topic, topic) == 0;
	if (n == 0) {
		cb(ctx, 0);
		return 0;
	}
	size_t bytes = 1024 + n * (96 + SL_GROUP_NAME_BYTES_MAX + SL_TOPIC_NAME_BYTES_MAX);
	if (bytes > SL_BATCH_BYTES_MAX)
		return -E2BIG;
	struct sl_batch_builder b;
	int rc = sl_batch_builder_init(&b, bytes);
	int64_t now = sl_clock_wall_ms();
	struct log_record lr;
	for (uint32_t k = 0; rc == 0 && k < g->group_count; k++) {
		struct sl_group *grp = g->sorted[k];
		for (uint32_t i = 0; rc == 0 && i < grp->commit_count; i++) {
			const struct sl_commit *c = &grp->commits[i];
			if (c->records_lost > 0 && strcmp(c->topic, topic) == 0)
				rc = sl_batch_builder_add(&b,
				                          lost_record(&lr, grp->name, c->topic, c->partition, 0, now));
		}
	}
	if (rc == 0)
		rc = append_records(g, &b, "", 0, cb, ctx);
	sl_batch_builder_free(&b);
	return rc;
}

/* ---- compaction ---- */

/* Batches being built from the live state (snapshot_build). */
struct snap {
	struct sl_batch_builder b;
	uint8_t **batches;
	size_t *lens;
	uint32_t count, cap;
};

/* Close the builder's batch into a copy kept in s. */
static int snap_close(struct snap *s)
{
	const uint8_t *out;
	size_t len;
	int rc = sl_batch_builder_finish(&s->b, SL_BATCH_CODEC_NONE, &out, &len);
	if (rc != 0)
		return rc;
	if (s->count == s->cap) {
		uint32_t cap = s->cap ? s->cap * 2 : 8;
		uint8_t **nb = realloc(s->batches, cap * sizeof(*nb));
		if (nb == NULL)
			return -ENOMEM;
		s->batches = nb;
		size_t *nl = realloc(s->lens, cap * sizeof(*nl));
		if (nl == NULL)
			return -ENOMEM;
		s->lens = nl;
		s->cap = cap;
	}
	uint8_t *copy = malloc(len);
	if (copy == NULL)
		return -ENOMEM;
	memcpy(copy, out, len);
	s->batches[s->count] = copy;
	s->lens[s->count++] = len;
	sl_batch_builder_reset(&s->b);
	return 0;
}

/* Add r, closing the batch first when it is full, and after it when it holds enough records. */
static int snap_add(struct snap *s, const struct sl_record *r)
{
	int rc = sl_batch_builder_add(&s->b, r);
	if (rc == -ENOSPC) {
		rc = snap_close(s);
		if (rc == 0)
			rc = sl_batch_builder_add(&s->b, r);
	}
	if (rc == 0 && (uint32_t)s->b.record_count >= COMPACT_COMMITS_PER_BATCH)
		rc = snap_close(s);
	return rc;
}

/* The live state as batches: settings, reset generation, commits and lost counts of every group. */
static int snapshot_build(struct sl_groups *g, uint8_t ***batches_out, size_t **lens_out, uint32_t *count_out)
{
	struct snap s;
	memset(&s, 0, sizeof(s));
	int64_t now = sl_clock_wall_ms();
	struct log_record lr;
	int rc = sl_batch_builder_init(&s.b, COMPACT_BATCH_BYTES);
	for (uint32_t k = 0; rc == 0 && k < g->group_count; k++) {
		struct sl_group *grp = g->sorted[k];
		if (grp->stall_after_ms != 0 || grp->window != 0)
			rc = snap_add(&s, group_record(&lr, 's', grp->name, grp->stall_after_ms, grp->window, 2, now));
		if (rc == 0 && grp->reset_generation > 0)
			rc = snap_add(&s, group_record(&lr, 'r', grp->name, grp->reset_generation, 0, 1, now));
		for (uint32_t i = 0; rc == 0 && i < grp->commit_count; i++) {
			const struct sl_commit *c = &grp->commits[i];
			if (c->offset >= 0)
				rc = snap_add(&s, commit_record(&lr, grp->name, c->topic, c->partition, c->offset,
				                                c->commit_ms, c->metadata));
			if (rc == 0 && c->records_lost > 0)
				rc = snap_add(
				        &s, lost_record(&lr, grp->name, c->topic, c->partition, c->records_lost, now));
		}
	}
	if (rc == 0 && s.b.record_count > 0)
		rc = snap_close(&s);
	if (s.b.buf != NULL)
		sl_batch_builder_free(&s.b);
	if (rc != 0) {
		for (uint32_t i = 0; i < s.count; i++)
			free(s.batches[i]);
		free(s.batches);
		free(s.lens);
		return rc;
	}
	*batches_out = s.batches;
	*lens_out = s.lens;
	*count_out = s.count;
	return 0;
}

static void paths(const struct sl_groups *g, char *cur, char *next, char *old)
{
	snprintf(cur, SL_PATH_BYTES_MAX, "%s/offsets", g->dir);
	snprintf(next, SL_PATH_BYTES_MAX, "%s/offsets.compact", g->dir);
	snprintf(old, SL_PATH_BYTES_MAX, "%s/offsets.old", g->dir);
}

static void recover_compaction(const struct sl_groups *g)
{
	char cur[SL_PATH_BYTES_MAX], next[SL_PATH_BYTES_MAX], old[SL_PATH_BYTES_MAX];
	paths(g, cur, next, old);
	struct stat st;
	if (stat(cur, &st) < 0 && stat(next, &st) == 0 && stat(old, &st) == 0) {
		/* Crashed between the two renames: the compacted log is complete (it was durable first). */
		rename(next, cur);
		sl_fs_fsync_path(g->dir);
	}
	sl_fs_rm_rf(next);
	sl_fs_rm_rf(old);
}

static void snap_free(struct sl_groups *g)
{
	for (uint32_t i = 0; i < g->snap_count; i++)
		free(g->snap_batches[i]);
	free(g->snap_batches);
	free(g->snap_lens);
	g->snap_batches = NULL;
	g->snap_lens = NULL;
	g->snap_count = g->snap_appended = g->snap_done = 0;
}

struct snap_append {
	struct sl_append append;
	struct sl_groups *groups;
};

static void snap_done_cb(struct sl_append *a, int status)
{
	struct snap_append *sa = a->data;
	struct sl_groups *g = sa->groups;
	free(sa);
	g->snap_done++;
	if (status != 0 && g->snap_status == 0)
		g->snap_status = status;
	compact_pump(g);
}

/* The snapshot is durable (or failed): switch logs, or give up and go on with the old one. */
static void compact_finish(struct sl_groups *g)
{
	char cur[SL_PATH_BYTES_MAX], next[SL_PATH_BYTES_MAX], old[SL_PATH_BYTES_MAX];
	paths(g, cur, next, old);
	int rc = g->snap_status;
	struct sl_log_stats st;
	sl_log_get_stats(g->log, &st);
	if (rc == 0) {
		/* The old log is idle: everything in it was acknowledged at fsync level. */
		rc = sl_log_close(g->log);
		g->log = NULL;
		if (rc == 0 && rename(cur, old) < 0)
			rc = -errno;
		if (rc == 0 && rename(next, cur) < 0)
			rc = -errno;
		if (rc == 0)
			rc = sl_fs_fsync_path(g->dir);
		if (rc != 0) {
			/* The renames cannot be undone safely here: stop taking commits (the log refuses them) and say
			 * so; a restart recovers whichever log is complete. */
			snprintf(g->last_error, sizeof(g->last_error), "switching to the compacted offset log: %s",
			         strerror(-rc));
			sl_slog_msg(SL_SLOG_ERROR, "groups_compaction_failed", "%s; restart the broker", g->last_error);
			g->log = g->next_log;
		} else {
			g->log = g->next_log;
			sl_fs_rm_rf(old);
			g->compactions++;
			g->compacted_bytes = st.bytes;
			g->compact_check_bytes = 0; /* the next look once the new log passes COMPACT_BYTES_MIN */
			struct sl_log_stats ns;
			sl_log_get_stats(g->log, &ns);
			struct sl_slog *e = sl_slog_begin(SL_SLOG_INFO, "groups_compacted");
			sl_slog_uint(e, "bytes_before", st.bytes);
			sl_slog_uint(e, "bytes_after", ns.bytes);
			sl_slog_uint(e, "groups", g->group_count);
			sl_slog_end(e);
		}
	} else {
		snprintf(g->last_error, sizeof(g->last_error), "writing the compacted offset log: %s", strerror(-rc));
		sl_slog_msg(SL_SLOG_WARN, "groups_compaction_failed", "%s; the old log stays in use", g->last_error);
		sl_log_close(g->next_log);
		sl_fs_rm_rf(next);
	}
	g->next_log = NULL;
	snap_free(g);
	g->compact_step = COMPACT_IDLE;
	queue_pump(g);
}

/* Drive the compaction one step as far as it can go now. */
static void compact_pump(struct sl_groups *g)
{
	if (g->compact_step == COMPACT_DRAIN && g->inflight == 0) {
		char cur[SL_PATH_BYTES_MAX], next[SL_PATH_BYTES_MAX], old[SL_PATH_BYTES_MAX];
		char err[256];
		paths(g, cur, next, old);
		sl_fs_rm_rf(next);
		int rc = snapshot_build(g, &g->snap_batches, &g->snap_lens, &g->snap_count);
		if (rc == 0)
			rc = sl_log_open(g->ring, next, &g->log_cfg, &g->next_log, err, sizeof(err));
		if (rc != 0) {
			snap_free(g);
			g->compact_step = COMPACT_IDLE;
			snprintf(g->last_error, sizeof(g->last_error), "starting a compaction of the offset log: %s",
			         strerror(-rc));
			queue_pump(g);
			return;
		}
		g->compact_step = COMPACT_WRITE;
		g->snap_status = 0;
	}
	if (g->compact_step != COMPACT_WRITE)
		return;
	while (g->snap_appended < g->snap_count && g->snap_status == 0) {
		struct snap_append *sa = calloc(1, sizeof(*sa));
		if (sa == NULL) {
			g->snap_status = -ENOMEM;
			break;
		}
		uint32_t i = g->snap_appended;
		sa->groups = g;
		sa->append = (struct sl_append){.batch = g->snap_batches[i],
		                                .len = g->snap_lens[i],
		                                .level = i + 1 == g->snap_count ? SL_DURABILITY_FSYNC
		                                                                : SL_DURABILITY_WRITTEN,
		                                .cb = snap_done_cb,
		                                .data = sa};
		int rc = sl_log_append(g->next_log, &sa->append);
		if (rc == -EAGAIN) {
			free(sa);
			return; /* the next completion pumps again */
		}
		if (rc != 0) {
			free(sa);
			g->snap_status = rc;
			break;
		}
		g->snap_appended++;
	}
	if (g->snap_done == g->snap_appended && (g->snap_appended == g->snap_count || g->snap_status != 0))
		compact_finish(g);
}

static void compact_maybe_start(struct sl_groups *g)
{
	if (g->compact_step != COMPACT_IDLE || g->log == NULL)
		return;
	struct sl_log_stats st;
	sl_log_get_stats(g->log, &st);
	uint64_t live = 0;
	for (uint32_t k = 0; k < g->group_count; k++)
		live += (uint64_t)g->sorted[k]->commit_count * COMMIT_RECORD_BYTES_EST;
	g->live_bytes = live;
	if (st.bytes <= COMPACT_BYTES_MIN || st.bytes <= 4 * live)
		return;
	g->compact_step = COMPACT_DRAIN;
	compact_pump(g);
}

/* After each append: once the log grew past the next size worth a look, see whether a compaction is due (the
 * look costs a pass over the groups, so it is made every eighth of growth, not every commit). Commits then start
 * a compaction as soon as they make one due, however fast they come; the health tick checks too. */
static void compact_due_check(struct sl_groups *g)
{
	if (g->compact_step != COMPACT_IDLE || g->log == NULL)
		return;
	struct sl_log_stats st;
	sl_log_get_stats(g->log, &st);
	if (st.bytes <= COMPACT_BYTES_MIN || st.bytes < g->compact_check_bytes)
		return;
	g->compact_check_bytes = st.bytes + st.bytes / 8;
	compact_maybe_start(g);
}

/* At open, before the loop serves: compact synchronously (the ring is waited on here). */
static int compact_at_open(struct sl_groups *g)
{
	g->compact_step = COMPACT_DRAIN;
	compact_pump(g);
	while (g->compact_step != COMPACT_IDLE)
		if (sl_ring_wait(g->ring) < 0)
			return -EIO;
	return g->log != NULL && g->last_error[0] == '\0' ? 0 : -EIO;
}

int sl_groups_open(struct sl_groups *g, const char *data_dir, struct sl_ring *ring, const struct sl_log_config *cfg,
                   struct sl_topics *topics, const struct sl_groups_settings *settings, char *err, size_t err_cap)
{
	memset(g, 0, sizeof(*g));
	g->topics = topics;
	g->ring = ring;
	g->settings = *settings;
	snprintf(g->dir, sizeof(g->dir), "%s/groups", data_dir);
	char logdir[SL_PATH_BYTES_MAX];
	snprintf(logdir, sizeof(logdir), "%s/offsets", g->dir);
	if (mkdir(g->dir, 0755) < 0 && errno != EEXIST) {
		int rc = -errno;
		snprintf(err, err_cap, "cannot create %s: %s", g->dir, strerror(-rc));
		return rc;
	}
	recover_compaction(g);
	g->log_cfg = *cfg;
	/* Commits are small: 64 MiB segments keep the offset log's files manageable. */
	if (g->log_cfg.segment_bytes_max > (64u << 20))
		g->log_cfg.segment_bytes_max = 64u << 20;
	int rc = sl_log_open(ring, logdir, &g->log_cfg, &g->log, err, err_cap);
	if (rc < 0)
		return rc;
	rc = replay(g);
	if (rc < 0) {
		snprintf(err, err_cap, "cannot replay the group offset log %s: %s", logdir, strerror(-rc));
		sl_groups_close(g);
		return rc;
	}
	struct sl_log_stats st;
	sl_log_get_stats(g->log, &st);
	uint64_t live = 0;
	for (uint32_t k = 0; k < g->group_count; k++)
		live += (uint64_t)g->sorted[k]->commit_count * COMMIT_RECORD_BYTES_EST;
	if (st.bytes > COMPACT_BYTES_MIN && st.bytes > 4 * live && (rc = compact_at_open(g)) < 0) {
		snprintf(err, err_cap, "compacting the group offset log %s failed: %s", logdir,
		         g->last_error[0] ? g->last_error : strerror(-rc));
		sl_groups_close(g);
		return rc;
	}
	srand((unsigned)time(NULL));
	return 0;
}

int sl_groups_close(struct sl_groups *g)
{
	/* The shard closes groups once no request is alive, so nothing is queued or in flight. */
	while (g->compact_step != COMPACT_IDLE && sl_ring_wait(g->ring) == 0)
		;
	int rc = g->log ? sl_log_close(g->log) : 0;
	g->log = NULL;
	while (g->group_count > 0)
		group_remove(g, g->sorted[g->group_count - 1]);
	free(g->sorted);
	g->sorted = NULL;
	g->sorted_cap = 0;
	return rc;
}

static void lost_persisted_cb(void *ctx, int status)
{
	(void)ctx;
	if (status != 0)
		sl_slog_msg(SL_SLOG_WARN, "groups_lost_not_saved",
		            "recording records lost to retention failed: %s; the state is kept in memory",
		            strerror(-status));
}

void sl_groups_lost_persist(struct sl_groups *g, const struct sl_group *grp, const struct sl_commit *c)
{
	struct sl_batch_builder b;
	struct log_record lr;
	if (sl_batch_builder_init(&b, 4096) != 0)
		return;
	if (sl_batch_builder_add(&b, lost_record(&lr, grp->name, c->topic, c->partition, c->records_lost,
	                                         sl_clock_wall_ms())) == 0 &&
	    append_records(g, &b, grp->name, 0, lost_persisted_cb, NULL) != 0)
		sl_slog_msg(SL_SLOG_WARN, "groups_lost_not_saved",
		            "the offset log is busy; the state is kept in memory");
	sl_batch_builder_free(&b);
}

void sl_groups_compact_check(struct sl_groups *g)
{
	compact_maybe_start(g);
}

int64_t sl_groups_min_committed(const struct sl_groups *g, const char *topic, uint32_t partition)
{
	int64_t min = INT64_MAX;
	for (uint32_t k = 0; k < g->group_count; k++) {
		const struct sl_commit *c = sl_group_committed(g->sorted[k], topic, partition);
		if (c != NULL && c->offset >= 0 && c->offset < min)
			min = c->offset;
	}
	return min;
}

/* ---- for the Kafka listener's coordinator (groups.h) ---- */

int sl_group_member_add(struct sl_groups *g, const char *group, const char *client_id, uint32_t session_timeout_ms,
                        int64_t now_ms, struct sl_group **group_out, struct sl_member **member_out)
{
	if (sl_group_name_check(group) != 0)
		return -EINVAL;
	if (session_timeout_ms < SL_SESSION_TIMEOUT_MS_MIN || session_timeout_ms > SL_SESSION_TIMEOUT_MS_MAX)
		return -ERANGE;
	int err;
	struct sl_group *grp = group_get(g, group, 1, 1, &err);
	if (grp == NULL)
		return err;
	if (grp->member_count >= SL_GROUP_MEMBERS_MAX)
		return -E2BIG;
	struct sl_member *nm = realloc(grp->members, (grp->member_count + 1) * sizeof(*nm));
	if (nm == NULL)
		return -ENOMEM;
	grp->members = nm;
	struct sl_member *m = &grp->members[grp->member_count++];
	memset(m, 0, sizeof(*m));
	snprintf(m->client_id, sizeof(m->client_id), "%s", client_id && client_id[0] ? client_id : "member");
	unsigned rnd = (unsigned)(now_ms * 2654435761u) ^ (unsigned)rand();
	snprintf(m->id, sizeof(m->id), "%.100s-%" PRIu64 "-%08x", m->client_id, ++g->member_seq, rnd);
	m->session_timeout_ms = session_timeout_ms;
	m->last_heartbeat_ms = now_ms;
	*group_out = grp;
	*member_out = m;
	return 0;
}

struct sl_member *sl_group_member_find(struct sl_group *grp, const char *member_id)
{
	int idx = member_index(grp, member_id);
	return idx < 0 ? NULL : &grp->members[idx];
}

void sl_group_new_generation(struct sl_groups *g, struct sl_group *grp)
{
	rebalance(g, grp);
}

int sl_member_set_topics(struct sl_member *m, char *const *topics, uint32_t count)
{
	if (count > SL_MEMBER_TOPICS_MAX)
		return -E2BIG;
	char **copy = calloc(count ? count : 1, sizeof(*copy));
	if (copy == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < count; i++) {
		if ((copy[i] = strdup(topics[i])) == NULL) {
			while (i > 0)
				free(copy[--i]);
			free(copy);
			return -ENOMEM;
		}
	}
	for (uint32_t i = 0; i < m->topic_count; i++)
		free(m->topics[i]);
	free(m->topics);
	m->topics = copy;
	m->topic_count = count;
	return 0;
}

int sl_member_assign(struct sl_member *m, const char *topic, uint32_t partition)
{
	return add_assigned(m, topic, partition);
}
