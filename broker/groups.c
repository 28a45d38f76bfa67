/* The group coordinator: membership and assignment in memory, committed offsets in the internal offset log
 * (format in groups.h). Assignment is deterministic: members sorted by id, the partitions of each topic dealt
 * round-robin among the members subscribed to it, so every broker (and every test) computes the same one. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "proto/base/clock.h"
#include "proto/base/assert.h"
#include "proto/base/fs.h"
#include "broker/groups.h"
#include "proto/batch.h"

#define SEP               '\x1f'
/* The offset log reads back in chunks of this size at open. */
#define REPLAY_READ_BYTES (4u << 20)

/* One commit as an offset-log record (format in groups.h), in the caller's buffers. */
struct commit_record {
	char key[SL_GROUP_NAME_BYTES_MAX + SL_TOPIC_NAME_BYTES_MAX + 32];
	char val[64 + SL_GROUP_METADATA_BYTES_MAX];
	struct sl_record r;
};

static const struct sl_record *commit_record(struct commit_record *cr, const char *group, const char *topic,
                                             uint32_t partition, int64_t offset, int64_t commit_ms,
                                             const char *metadata)
{
	int kl = snprintf(cr->key, sizeof(cr->key), "c%c%s%c%s%c%u", SEP, group, SEP, topic, SEP, partition);
	int vl = snprintf(cr->val, sizeof(cr->val), "%" PRId64 " %" PRId64 " %s", offset, commit_ms,
	                  metadata ? metadata : "");
	cr->r = (struct sl_record){.timestamp_ms = commit_ms,
	                           .key = (uint8_t *)cr->key,
	                           .key_len = kl,
	                           .value = (uint8_t *)cr->val,
	                           .value_len = vl,
	                           .version = SL_VERSION_NONE};
	return &cr->r;
}

int sl_group_name_check(const char *name)
{
	/* Same alphabet as topics; "__" is allowed for groups (no internal groups exist). */
	return sl_topic_name_check(name, 1);
}

/* ---- groups and commits ---- */

static struct sl_group *group_get(struct sl_groups *g, const char *name, int create)
{
	for (struct sl_group *grp = g->head; grp; grp = grp->next)
		if (strcmp(grp->name, name) == 0)
			return grp;
	if (!create)
		return NULL;
	struct sl_group *grp = calloc(1, sizeof(*grp));
	if (grp == NULL)
		return NULL;
	snprintf(grp->name, sizeof(grp->name), "%s", name);
	grp->next = g->head;
	g->head = grp;
	g->group_count++;
	return grp;
}

struct sl_group *sl_groups_find(struct sl_groups *g, const char *name)
{
	return group_get(g, name, 0);
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

static void group_free(struct sl_group *grp)
{
	for (uint32_t i = 0; i < grp->member_count; i++)
		member_free(&grp->members[i]);
	free(grp->members);
	for (uint32_t i = 0; i < grp->commit_count; i++) {
		free(grp->commits[i].topic);
		free(grp->commits[i].metadata);
	}
	free(grp->commits);
	free(grp);
}

static void group_remove(struct sl_groups *g, struct sl_group *grp)
{
	struct sl_group **pp = &g->head;
	while (*pp && *pp != grp)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = grp->next;
		g->group_count--;
	}
	group_free(grp);
}

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

const struct sl_commit *sl_group_committed(const struct sl_group *grp, const char *topic, uint32_t partition)
{
	uint32_t at = commit_lower_bound(grp, topic, partition);
	if (at < grp->commit_count && commit_cmp(topic, partition, &grp->commits[at]) == 0)
		return &grp->commits[at];
	return NULL;
}

static int commit_apply(struct sl_group *grp, const char *topic, uint32_t partition, int64_t offset, int64_t ms,
                        const char *meta, size_t meta_len)
{
	uint32_t at = commit_lower_bound(grp, topic, partition);
	struct sl_commit *c;
	if (at < grp->commit_count && commit_cmp(topic, partition, &grp->commits[at]) == 0) {
		c = &grp->commits[at];
	} else {
		if (grp->commit_count == grp->commit_cap) {
			uint32_t cap = grp->commit_cap ? grp->commit_cap * 2 : 16;
			struct sl_commit *nc = realloc(grp->commits, cap * sizeof(*nc));
			if (nc == NULL)
				return -ENOMEM;
			grp->commits = nc;
			grp->commit_cap = cap;
		}
		char *t = strdup(topic);
		if (t == NULL)
			return -ENOMEM;
		memmove(&grp->commits[at + 1], &grp->commits[at], (grp->commit_count - at) * sizeof(*grp->commits));
		grp->commit_count++;
		c = &grp->commits[at];
		memset(c, 0, sizeof(*c));
		c->topic = t;
		c->partition = partition;
	}
	char *m = strndup(meta ? meta : "", meta_len);
	if (m == NULL)
		return -ENOMEM;
	free(c->metadata);
	c->metadata = m;
	c->offset = offset;
	c->commit_ms = ms;
	return 0;
}

static void commits_clear(struct sl_group *grp)
{
	for (uint32_t i = 0; i < grp->commit_count; i++) {
		free(grp->commits[i].topic);
		free(grp->commits[i].metadata);
	}
	grp->commit_count = 0;
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
 * subscribers (in id order). */
static void rebalance(struct sl_groups *g, struct sl_group *grp)
{
	grp->generation++;
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
	}
	/* The union of subscribed topics, sorted, each dealt once. */
	char **all = NULL;
	uint32_t n = 0;
	for (uint32_t i = 0; i < grp->member_count; i++)
		n += grp->members[i].topic_count;
	all = calloc(n ? n : 1, sizeof(*all));
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

int sl_group_join(struct sl_groups *g, const char *group, const char *member_id, const char *client_id, char **topics,
                  uint32_t topic_count, uint32_t session_timeout_ms, int64_t now_ms, struct sl_group **group_out,
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
	struct sl_group *grp = group_get(g, group, 1);
	if (grp == NULL)
		return -ENOMEM;
	int idx = member_id && member_id[0] ? member_index(grp, member_id) : -1;
	if (member_id && member_id[0] && idx < 0)
		return -ENOENT;
	int changed = 0;
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
		unsigned rnd = (unsigned)(now_ms * 2654435761u) ^ (unsigned)rand();
		snprintf(m->id, sizeof(m->id), "%.100s-%" PRIu64 "-%08x", m->client_id, ++g->member_seq, rnd);
		changed = 1;
	}
	struct sl_member *m = &grp->members[idx];
	if (!same_topics(m, topics, topic_count)) {
		for (uint32_t i = 0; i < m->topic_count; i++)
			free(m->topics[i]);
		free(m->topics);
		m->topics = calloc(topic_count, sizeof(*m->topics));
		m->topic_count = 0;
		if (m->topics == NULL)
			return -ENOMEM;
		for (uint32_t i = 0; i < topic_count; i++) {
			m->topics[i] = strdup(topics[i]);
			if (m->topics[i] == NULL)
				return -ENOMEM;
			m->topic_count++;
		}
		changed = 1;
	}
	m->session_timeout_ms = session_timeout_ms;
	m->last_heartbeat_ms = now_ms;
	char id[SL_MEMBER_ID_BYTES_MAX];
	snprintf(id, sizeof(id), "%s", m->id);
	if (changed)
		rebalance(g, grp); /* sorts members: find ours again */
	*group_out = grp;
	*member_out = &grp->members[member_index(grp, id)];
	return 0;
}

int sl_group_heartbeat(struct sl_groups *g, const char *group, const char *member_id, int32_t generation,
                       int64_t now_ms)
{
	struct sl_group *grp = sl_groups_find(g, group);
	int idx = grp ? member_index(grp, member_id) : -1;
	if (idx < 0)
		return -ENOENT;
	grp->members[idx].last_heartbeat_ms = now_ms;
	return generation == grp->generation ? 0 : -ESTALE;
}

static void member_remove(struct sl_groups *g, struct sl_group *grp, uint32_t idx)
{
	member_free(&grp->members[idx]);
	memmove(&grp->members[idx], &grp->members[idx + 1], (grp->member_count - idx - 1) * sizeof(*grp->members));
	grp->member_count--;
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

uint32_t sl_groups_expire(struct sl_groups *g, int64_t now_ms)
{
	uint32_t removed = 0;
	for (struct sl_group *grp = g->head; grp; grp = grp->next) {
		for (uint32_t i = 0; i < grp->member_count;) {
			struct sl_member *m = &grp->members[i];
			if (now_ms - m->last_heartbeat_ms > (int64_t)m->session_timeout_ms) {
				member_remove(g, grp, i);
				removed++;
			} else {
				i++;
			}
		}
	}
	return removed;
}

void sl_groups_topic_created(struct sl_groups *g, const char *topic)
{
	for (struct sl_group *grp = g->head; grp; grp = grp->next) {
		int wanted = 0;
		for (uint32_t i = 0; i < grp->member_count && !wanted; i++)
			wanted = subscribed(&grp->members[i], topic);
		if (wanted)
			rebalance(g, grp);
	}
}

const struct sl_member *sl_group_owner(const struct sl_group *grp, const char *topic, uint32_t partition)
{
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

/* ---- the offset log ---- */

/* Apply one record of the offset log to the in-memory state (at replay, and once a commit is durable). */
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
	if (r->key[0] == 'd') {
		struct sl_group *grp = sl_groups_find(g, buf);
		if (grp) {
			commits_clear(grp);
			if (grp->member_count == 0)
				group_remove(g, grp);
		}
		return 0;
	}
	char *topic = memchr(buf, SEP, klen);
	char *part = topic ? memchr(topic + 1, SEP, klen - (size_t)(topic + 1 - buf)) : NULL;
	if (r->key[0] != 'c' || part == NULL || r->value == NULL)
		return -EBADMSG;
	*topic++ = '\0';
	*part++ = '\0';
	char vbuf[64 + SL_GROUP_METADATA_BYTES_MAX];
	if ((size_t)r->value_len >= sizeof(vbuf))
		return -EBADMSG;
	memcpy(vbuf, r->value, (size_t)r->value_len);
	vbuf[r->value_len] = '\0';
	long long offset, ms;
	int used = 0;
	if (sscanf(vbuf, "%lld %lld %n", &offset, &ms, &used) < 2)
		return -EBADMSG;
	struct sl_group *grp = group_get(g, buf, 1);
	if (grp == NULL)
		return -ENOMEM;
	return commit_apply(grp, topic, (uint32_t)strtoul(part, NULL, 10), offset, ms, vbuf + used,
	                    strlen(vbuf + used));
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

/* The offset log only grows (every commit appends); at open, when it is large and mostly superseded commits,
 * it is rewritten with the live commits only: into offsets.compact, which then replaces offsets by rename. A
 * crash at any step leaves either the old log or the complete new one (see recover_compaction). */
#define COMPACT_BYTES_MIN         (16u << 20)
#define COMPACT_COMMITS_PER_BATCH 1000u

static void recover_compaction(const char *dir)
{
	char cur[SL_PATH_BYTES_MAX], next[SL_PATH_BYTES_MAX], old[SL_PATH_BYTES_MAX];
	snprintf(cur, sizeof(cur), "%s/offsets", dir);
	snprintf(next, sizeof(next), "%s/offsets.compact", dir);
	snprintf(old, sizeof(old), "%s/offsets.old", dir);
	struct stat st;
	if (stat(cur, &st) < 0 && stat(next, &st) == 0 && stat(old, &st) == 0) {
		/* Crashed between the two renames: the compacted log is complete (it was closed first). */
		rename(next, cur);
		sl_fs_fsync_path(dir);
	}
	sl_fs_rm_rf(next);
	sl_fs_rm_rf(old);
}

struct sync_wait {
	int done;
	int status;
};

static void sync_wait_cb(struct sl_append *a, int status)
{
	struct sync_wait *w = a->data;
	w->done = 1;
	w->status = status;
}

/* Append the builder's batch to log and wait for it (compaction runs at open, before the loop serves). */
static int flush_sync(struct sl_log *log, struct sl_ring *ring, struct sl_batch_builder *b)
{
	if (b->record_count == 0)
		return 0;
	const uint8_t *out;
	size_t len;
	int rc = sl_batch_builder_finish(b, SL_BATCH_CODEC_NONE, &out, &len);
	struct sync_wait w = {0, 0};
	struct sl_append a = {
	        .batch = (uint8_t *)out, .len = len, .level = SL_DURABILITY_WRITTEN, .cb = sync_wait_cb, .data = &w};
	if (rc == 0)
		rc = sl_log_append(log, &a);
	while (rc == 0 && !w.done)
		rc = sl_ring_wait(ring) < 0 ? -EIO : 0;
	if (rc == 0)
		rc = w.status;
	sl_batch_builder_reset(b);
	return rc;
}

static int compact(struct sl_groups *g, struct sl_ring *ring, const struct sl_log_config *lc, const char *dir)
{
	char cur[SL_PATH_BYTES_MAX], next[SL_PATH_BYTES_MAX], old[SL_PATH_BYTES_MAX];
	snprintf(cur, sizeof(cur), "%s/offsets", dir);
	snprintf(next, sizeof(next), "%s/offsets.compact", dir);
	snprintf(old, sizeof(old), "%s/offsets.old", dir);
	struct sl_log *nl;
	char err[512];
	int rc = sl_log_open(ring, next, lc, &nl, err, sizeof(err));
	if (rc < 0)
		return rc;
	struct sl_batch_builder b;
	rc = sl_batch_builder_init(&b, 4u << 20);
	for (struct sl_group *grp = g->head; rc == 0 && grp; grp = grp->next) {
		for (uint32_t i = 0; rc == 0 && i < grp->commit_count; i++) {
			const struct sl_commit *c = &grp->commits[i];
			struct commit_record cr;
			const struct sl_record *r = commit_record(&cr, grp->name, c->topic, c->partition, c->offset,
			                                          c->commit_ms, c->metadata);
			rc = sl_batch_builder_add(&b, r);
			if (rc == -ENOSPC) {
				rc = flush_sync(nl, ring, &b);
				if (rc == 0)
					rc = sl_batch_builder_add(&b, r);
			}
			if (rc == 0 && (uint32_t)b.record_count >= COMPACT_COMMITS_PER_BATCH)
				rc = flush_sync(nl, ring, &b);
		}
	}
	if (rc == 0)
		rc = flush_sync(nl, ring, &b);
	sl_batch_builder_free(&b);
	int crc = sl_log_close(nl); /* fsyncs everything, leaves the clean marker */
	if (rc == 0)
		rc = crc;
	if (rc < 0) {
		sl_fs_rm_rf(next);
		return rc;
	}
	rc = sl_log_close(g->log);
	g->log = NULL;
	if (rc == 0 && rename(cur, old) < 0)
		rc = -errno;
	if (rc == 0 && rename(next, cur) < 0)
		rc = -errno;
	sl_fs_fsync_path(dir);
	sl_fs_rm_rf(old);
	return rc;
}

int sl_groups_open(struct sl_groups *g, const char *data_dir, struct sl_ring *ring, const struct sl_log_config *cfg,
                   struct sl_topics *topics, char *err, size_t err_cap)
{
	memset(g, 0, sizeof(*g));
	g->topics = topics;
	char dir[SL_PATH_BYTES_MAX], logdir[SL_PATH_BYTES_MAX];
	snprintf(dir, sizeof(dir), "%s/groups", data_dir);
	snprintf(logdir, sizeof(logdir), "%s/offsets", dir);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		int rc = -errno;
		snprintf(err, err_cap, "cannot create %s: %s", dir, strerror(-rc));
		return rc;
	}
	recover_compaction(dir);
	struct sl_log_config lc = *cfg;
	/* Commits are small: 64 MiB segments keep the offset log's files manageable. */
	if (lc.segment_bytes_max > (64u << 20))
		lc.segment_bytes_max = 64u << 20;
	int rc = sl_log_open(ring, logdir, &lc, &g->log, err, err_cap);
	if (rc < 0)
		return rc;
	rc = replay(g);
	if (rc < 0) {
		snprintf(err, err_cap, "cannot replay the group offset log %s: %s", logdir, strerror(-rc));
		sl_log_close(g->log);
		g->log = NULL;
		return rc;
	}
	struct sl_log_stats st;
	sl_log_get_stats(g->log, &st);
	uint64_t live = 0;
	for (struct sl_group *grp = g->head; grp; grp = grp->next)
		live += (uint64_t)grp->commit_count * 96;
	if (st.bytes > COMPACT_BYTES_MIN && st.bytes > 4 * live) {
		rc = compact(g, ring, &lc, dir);
		if (rc == 0 && g->log == NULL)
			rc = sl_log_open(ring, logdir, &lc, &g->log, err, err_cap);
		if (rc < 0) {
			if (err[0] == '\0')
				snprintf(err, err_cap, "compacting the group offset log %s failed: %s", logdir,
				         strerror(-rc));
			if (g->log)
				sl_log_close(g->log);
			g->log = NULL;
			return rc;
		}
	}
	srand((unsigned)time(NULL));
	return 0;
}

int sl_groups_close(struct sl_groups *g)
{
	int rc = g->log ? sl_log_close(g->log) : 0;
	g->log = NULL;
	while (g->head)
		group_remove(g, g->head);
	return rc;
}

struct sl_groups_commit {
	struct sl_append append;
	struct sl_groups *groups;
	sl_groups_commit_cb cb;
	void *ctx;
	uint8_t *batch;
};

static void commit_done_cb(struct sl_append *a, int status)
{
	struct sl_groups_commit *c = a->data;
	struct sl_groups *g = c->groups;
	if (status == 0) {
		/* Durable: apply exactly what was written. */
		struct sl_record_iter it;
		struct sl_record r;
		if (sl_record_iter_init(&it, c->batch, a->len, NULL, 0) == 0)
			while (sl_record_iter_next(&it, &r) == 1)
				apply_record(g, &r);
	}
	sl_groups_commit_cb cb = c->cb;
	void *ctx = c->ctx;
	free(c->batch);
	free(c);
	cb(ctx, status);
}

static int append_records(struct sl_groups *g, struct sl_batch_builder *b, sl_groups_commit_cb cb, void *ctx)
{
	const uint8_t *out;
	size_t len;
	int rc = sl_batch_builder_finish(b, SL_BATCH_CODEC_NONE, &out, &len);
	struct sl_groups_commit *c = rc == 0 ? calloc(1, sizeof(*c)) : NULL;
	if (rc == 0 && c == NULL)
		rc = -ENOMEM;
	if (rc == 0 && (c->batch = malloc(len)) == NULL)
		rc = -ENOMEM;
	if (rc < 0) {
		if (c)
			free(c);
		return rc;
	}
	memcpy(c->batch, out, len);
	c->groups = g;
	c->cb = cb;
	c->ctx = ctx;
	c->append.batch = c->batch;
	c->append.len = len;
	c->append.level = SL_DURABILITY_FSYNC;
	c->append.cb = commit_done_cb;
	c->append.data = c;
	rc = sl_log_append(g->log, &c->append);
	if (rc < 0) {
		free(c->batch);
		free(c);
	}
	return rc;
}

int sl_groups_commit(struct sl_groups *g, const char *group, const struct sl_commit_entry *entries, uint32_t count,
                     sl_groups_commit_cb cb, void *ctx)
{
	size_t bytes = 1024;
	for (uint32_t i = 0; i < count; i++) {
		if (entries[i].metadata && strlen(entries[i].metadata) > SL_GROUP_METADATA_BYTES_MAX)
			return -E2BIG;
		bytes += 96 + strlen(group) + strlen(entries[i].topic) +
		         (entries[i].metadata ? strlen(entries[i].metadata) : 0);
	}
	if (count == 0 || bytes > SL_BATCH_BYTES_MAX)
		return count == 0 ? -EINVAL : -E2BIG;
	struct sl_batch_builder b;
	int rc = sl_batch_builder_init(&b, bytes);
	if (rc < 0)
		return rc;
	int64_t now = sl_clock_wall_ms();
	for (uint32_t i = 0; rc == 0 && i < count; i++) {
		struct commit_record cr;
		rc = sl_batch_builder_add(&b, commit_record(&cr, group, entries[i].topic, entries[i].partition,
		                                            entries[i].offset, now, entries[i].metadata));
	}
	if (rc == 0)
		rc = append_records(g, &b, cb, ctx);
	sl_batch_builder_free(&b);
	return rc;
}

int sl_groups_delete(struct sl_groups *g, const char *group, sl_groups_commit_cb cb, void *ctx)
{
	struct sl_batch_builder b;
	int rc = sl_batch_builder_init(&b, 4096);
	if (rc < 0)
		return rc;
	char key[SL_GROUP_NAME_BYTES_MAX + 8];
	int kl = snprintf(key, sizeof(key), "d%c%s", SEP, group);
	struct sl_record r = {.timestamp_ms = sl_clock_wall_ms(),
	                      .key = (uint8_t *)key,
	                      .key_len = kl,
	                      .value = NULL,
	                      .value_len = -1,
	                      .version = SL_VERSION_NONE,
	                      .op = SL_OP_DELETE};
	rc = sl_batch_builder_add(&b, &r);
	if (rc == 0)
		rc = append_records(g, &b, cb, ctx);
	sl_batch_builder_free(&b);
	return rc;
}

int64_t sl_groups_min_committed(const struct sl_groups *g, const char *topic, uint32_t partition)
{
	int64_t min = INT64_MAX;
	for (const struct sl_group *grp = g->head; grp; grp = grp->next) {
		const struct sl_commit *c = sl_group_committed(grp, topic, partition);
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
	struct sl_group *grp = group_get(g, group, 1);
	if (grp == NULL)
		return -ENOMEM;
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
