/* The group consumer: joins a consumer group, reads the partitions the broker assigns to this member through one
 * fetcher per topic, heartbeats from poll, follows rebalances and commits consumed offsets (at-least-once).
 *
 * Two connections: the fetchers' (records stay valid in their answers until the next poll) and the coordination
 * connection for join, heartbeat, commit and the offset look-ups, so a commit never invalidates records.
 *
 * States of a member, and the function that moves between them:
 *
 *   (none) --subscribe: join_and_assign--> MEMBER(generation g)
 *   MEMBER --heartbeat: REBALANCE_IN_PROGRESS or UNKNOWN_MEMBER--> rebalance(): commit attempt in g (normally
 *          refused: the broker is already at g+1), join, REVOKED/ASSIGNED callbacks, commit of kept partitions
 *          --> MEMBER(g')
 *   MEMBER --close: commit, REVOKED callback, leave--> CLOSED
 *
 * Invariants:
 *   1. A partition's position (in its fetcher) counts only records handed out by poll, so dropping an answer
 *      (assign, seek) loses nothing.
 *   2. parts[i].committed is an offset this member knows to be committed; a commit is sent only for partitions
 *      whose position differs from it.
 *   3. Partitions kept across a rebalance keep their positions; only gained partitions are looked up (committed
 *      offset, else the start position), clamped to the log. After an offset reset (the join answer's reset
 *      generation changed) every partition counts as gained: all of them start again from the new offsets.
 *   4. Records found removed by retention when a partition is assigned (its commit is behind the log start, or a
 *      new group starts from the earliest record after some expired) are counted in stats.records_lost and sent
 *      with the next commit of that partition, until the broker acknowledged them. */
#include <errno.h>
#include <poll.h>
#include <string.h>

#include "proto/base/clock.h"
#include "consumer/client/client_impl.h"

/* After a coordination request failed on the connection, wait this long before the next try. */
#define COORD_RETRY_MS      250
/* Besides the heartbeats at the broker's interval (liveness), a member checks its generation with the same
 * Heartbeat request before handing out the records of a fetch once this long has passed since the last one.
 * The broker moves partitions the moment a member joins or leaves and tells the others only when they ask; every
 * record a replaced member hands out until it asks is read again by the new owner. 50 ms bounds that window at
 * the cost of at most 20 small requests a second per member. */
#define GENERATION_CHECK_MS 50

struct cpart {
	uint32_t topic_index;
	uint32_t partition;
	uint32_t fetch_index; /* its index in the topic's fetcher */
	int64_t committed;    /* known committed offset, -1: none known */
	int64_t base;         /* where reading started when it was assigned (the commit or the start position) */
	int64_t end;          /* stop_at_end: the log end when it was assigned; else INT64_MAX */
	int64_t lost_pending; /* records found lost, not yet reported with a commit (invariant 4) */
};

struct ctopic {
	char name[SL_TOPIC_NAME_BYTES_MAX + 1];
	struct sl_fetcher *fetcher;
	uint32_t assigned; /* partitions of this topic in parts */
};

struct sl_consumer {
	struct sl_consumer_options o;
	char group[SL_GROUP_NAME_BYTES_MAX + 1];
	char instance_id[SL_MEMBER_ID_BYTES_MAX];
	char broker[SL_HOST_BYTES_MAX + 16]; /* "HOST:PORT" as given, for the fetchers */
	struct ctopic *topics;
	char **topic_names; /* topics[i].name, for the JoinGroup request */
	uint32_t topic_count;
	struct sl_conn *coord;
	char member_id[SL_MEMBER_ID_BYTES_MAX];
	int32_t generation;
	uint32_t heartbeat_interval_ms;
	int64_t heartbeat_due_ms;
	int64_t heartbeat_sent_ms;
	/* A commit was refused since the last join: join again before anything else (0: no; else the errno). */
	int rejoin_reason;
	int64_t commit_due_ms;
	int64_t coord_failing_since_ms; /* 0 while the coordination connection works */
	struct cpart *parts;
	uint32_t part_count;
	/* Scratch sized for the assignment, reused: the callback's partitions, the assignment view, a commit's
	 * offsets and the parts they belong to. */
	struct sl_consumer_partition *view;
	struct sl_consumer_partition *assignment_view;
	struct sl_topic_partition_offset *commit_offsets;
	int64_t *commit_lost;
	uint32_t *commit_parts;
	uint32_t scratch_cap;
	uint32_t rotation;      /* topic the next fetch starts looking at */
	struct ctopic *reading; /* topic whose fetch answer is being handed out */
	bool closed;
	bool in_callback;
	bool joined;              /* the first join is done */
	int64_t reset_generation; /* the group's, as last heard */
	bool has_applier;
	struct sl_applier_info applier; /* sent with every commit */
	struct sl_consumer_stats stats;
	char error[SL_ERROR_BYTES];
	struct sl_kafka_consumer *kafka; /* the Kafka transport's consumer (transport.h); NULL: this one */
};

void sl_consumer_options_init(struct sl_consumer_options *o)
{
	memset(o, 0, sizeof(*o));
	o->broker = SL_BROKER_DEFAULT;
	o->start = SL_FROM_EARLIEST;
	o->auto_commit = true;
	o->auto_commit_interval_ms = 5000;
	o->max_wait_ms = 500;
	o->partition_bytes_max = 1u << 20;
	o->io_timeout_ms = SL_IO_TIMEOUT_MS_DEFAULT;
	o->reconnect_timeout_ms = 15000;
	o->report_lost = true;
}

static void set_error(struct sl_consumer *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(struct sl_consumer *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->error, sizeof(c->error), fmt, ap);
	va_end(ap);
}

static bool connection_error(int rc)
{
	return rc == -ECONNRESET || rc == -ECONNREFUSED || rc == -EPIPE || rc == -ETIMEDOUT || rc == -ENOTCONN ||
	       rc == -EHOSTUNREACH || rc == -ENETUNREACH || rc == -ECONNABORTED || rc == -ESHUTDOWN;
}

static int64_t position_of(const struct sl_consumer *c, const struct cpart *p)
{
	return sl_fetcher_position_at(c->topics[p->topic_index].fetcher, p->fetch_index);
}

/* Given up at pos, would a record be read again by the next owner? Not when pos is committed, nor when nothing was
 * read since the partition was assigned (the next owner starts where this member started). */
static bool nothing_to_lose(const struct cpart *p, int64_t pos)
{
	return pos == p->committed || pos == p->base;
}

static struct cpart *part_find(struct sl_consumer *c, const char *topic, uint32_t partition)
{
	for (uint32_t i = 0; i < c->part_count; i++)
		if (c->parts[i].partition == partition && strcmp(c->topics[c->parts[i].topic_index].name, topic) == 0)
			return &c->parts[i];
	return NULL;
}

/* part_find trying index hint first: offsets to commit usually come in assignment order, and a commit of a
 * thousand partitions should not search a thousand times. */
static struct cpart *part_find_near(struct sl_consumer *c, uint32_t hint, const char *topic, uint32_t partition)
{
	if (hint < c->part_count && c->parts[hint].partition == partition &&
	    strcmp(c->topics[c->parts[hint].topic_index].name, topic) == 0)
		return &c->parts[hint];
	return part_find(c, topic, partition);
}

static int scratch_reserve(struct sl_consumer *c, uint32_t count)
{
	if (count <= c->scratch_cap)
		return 0;
	struct sl_consumer_partition *view = realloc(c->view, count * sizeof(*view));
	if (view == NULL)
		return -ENOMEM;
	c->view = view;
	view = realloc(c->assignment_view, count * sizeof(*view));
	if (view == NULL)
		return -ENOMEM;
	c->assignment_view = view;
	struct sl_topic_partition_offset *offsets = realloc(c->commit_offsets, count * sizeof(*offsets));
	if (offsets == NULL)
		return -ENOMEM;
	c->commit_offsets = offsets;
	uint32_t *idx = realloc(c->commit_parts, count * sizeof(*idx));
	if (idx == NULL)
		return -ENOMEM;
	c->commit_parts = idx;
	int64_t *lost = realloc(c->commit_lost, count * sizeof(*lost));
	if (lost == NULL)
		return -ENOMEM;
	c->commit_lost = lost;
	c->scratch_cap = count;
	return 0;
}

static void callback(struct sl_consumer *c, enum sl_consumer_change change, uint32_t count)
{
	if (c->o.rebalance_cb == NULL || count == 0)
		return;
	c->in_callback = true;
	c->o.rebalance_cb(c, change, c->view, count, c->o.rebalance_cb_arg);
	c->in_callback = false;
}

/* ---- commits ---- */

/* Send the commit of c->commit_offsets[0..n) (parts c->commit_parts) in this member's generation. On success the
 * parts' committed offsets move; a refusal or failure is counted and kept in c->error. */
static int commit_send(struct sl_consumer *c, uint32_t n)
{
	int rc;

	if (n == 0)
		return 0;
	for (uint32_t i = 0; i < n; i++)
		c->commit_lost[i] = c->parts[c->commit_parts[i]].lost_pending;
	struct sl_commit_extras extras = {c->commit_lost, c->has_applier ? &c->applier : NULL};
	rc = sl_group_commit_request(c->coord, c->group, c->member_id, c->generation, c->commit_offsets, n, false,
	                             &extras);
	if (rc == 0) {
		c->stats.commits++;
		for (uint32_t i = 0; i < n; i++) {
			c->parts[c->commit_parts[i]].committed = c->commit_offsets[i].offset;
			c->parts[c->commit_parts[i]].lost_pending -= c->commit_lost[i];
		}
		return 0;
	}
	set_error(c, "%s", sl_conn_error(c->coord));
	if (rc == -ESTALE || rc == -EIDRM) {
		c->stats.commits_refused++;
		/* The group moved on (or forgot this member): join it again at the next poll. */
		c->rejoin_reason = rc;
		c->heartbeat_due_ms = 0;
	} else {
		c->stats.commit_failures++;
	}
	return rc;
}

/* Gather the partitions whose consumed position differs from their known commit. Returns how many. */
static uint32_t consumed_gather(struct sl_consumer *c)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < c->part_count; i++) {
		int64_t pos = position_of(c, &c->parts[i]);

		if (pos == c->parts[i].committed && c->parts[i].lost_pending == 0)
			continue;
		c->commit_offsets[n] = (struct sl_topic_partition_offset){c->topics[c->parts[i].topic_index].name,
		                                                          c->parts[i].partition, pos};
		c->commit_parts[n++] = i;
	}
	return n;
}

static int commit_consumed(struct sl_consumer *c)
{
	int rc = commit_send(c, consumed_gather(c));

	c->commit_due_ms = sl_clock_mono_ms() + c->o.auto_commit_interval_ms;
	return rc;
}

/* ---- joining and assignment ---- */

/* JoinGroup with this member's id (none: as a new member). With rejoin_as_new, a member the broker forgot joins
 * again as a new one. */
static int join_request(struct sl_consumer *c, bool rejoin_as_new, Synclog__Response **resp_out)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__JoinGroupRequest body = SYNCLOG__JOIN_GROUP_REQUEST__INIT;
	char what[SL_GROUP_NAME_BYTES_MAX + 64];
	int rc;

	body.group = c->group;
	body.member_id = c->member_id;
	body.topics = c->topic_names;
	body.n_topics = c->topic_count;
	body.session_timeout_ms = c->o.session_timeout_ms;
	body.client_id = c->coord->client_id;
	body.group_instance_id = c->instance_id;
	req.body_case = SYNCLOG__REQUEST__BODY_JOIN_GROUP;
	req.join_group = &body;
	snprintf(what, sizeof(what), "join group '%s'", c->group);
	rc = sl_conn_request(c->coord, &req, SYNCLOG__RESPONSE__BODY_JOIN_GROUP, what, resp_out);
	if (rc == -EIDRM && rejoin_as_new) {
		/* Expired meanwhile, or removed while its join waited (a forced group delete): join as a new member,
		 * once. */
		c->member_id[0] = '\0';
		return join_request(c, false, resp_out);
	}
	if (rc != 0)
		set_error(c, "%s", sl_conn_error(c->coord));
	return rc;
}

/* The assignment of a JoinGroup answer as parts (committed -1, fetch_index unset), copied out of the answer before
 * the next request on the connection reuses its memory. */
static int assignment_copy(struct sl_consumer *c, const Synclog__JoinGroupResponse *jr, struct cpart **out,
                           uint32_t *count_out)
{
	uint32_t n = 0, k = 0;
	struct cpart *parts;

	for (size_t i = 0; i < jr->n_assignment; i++)
		n += (uint32_t)jr->assignment[i]->n_partitions;
	parts = calloc(n ? n : 1, sizeof(*parts));
	if (parts == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < jr->n_assignment; i++) {
		const Synclog__TopicPartitions *tp = jr->assignment[i];
		uint32_t t;

		for (t = 0; t < c->topic_count; t++)
			if (tp->topic != NULL && strcmp(tp->topic, c->topics[t].name) == 0)
				break;
		if (t == c->topic_count)
			continue; /* not a topic of ours: nothing to read there */
		for (size_t j = 0; j < tp->n_partitions; j++)
			parts[k++] = (struct cpart){t, tp->partitions[j], 0, -1, -1, INT64_MAX, 0};
	}
	*out = parts;
	*count_out = k;
	return 0;
}

static int64_t clamp(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* Where each of n gained partitions of topic t starts: its committed offset, else the start position of the
 * options; clamped to the log. ends_out gets the log ends (for stop_at_end). */
static int starts_resolve(struct sl_consumer *c, uint32_t t, const uint32_t *partitions, uint32_t n,
                          int64_t *committed_out, int64_t *positions_out, int64_t *ends_out, int64_t *lost_out)
{
	int64_t *earliest = calloc(2 * (size_t)n, sizeof(*earliest)), *at_time = earliest + n;
	const char *topic = c->topics[t].name;
	bool need_time = false;
	int rc;

	if (earliest == NULL)
		return -ENOMEM;
	rc = sl_group_offsets_fetch(c->coord, c->group, topic, partitions, n, committed_out, NULL);
	if (rc == 0)
		rc = sl_offsets_list(c->coord, topic, SL_OFFSET_EARLIEST, 0, partitions, n, earliest);
	if (rc == 0)
		rc = sl_offsets_list(c->coord, topic, SL_OFFSET_LATEST, 0, partitions, n, ends_out);
	for (uint32_t i = 0; i < n; i++)
		need_time |= committed_out[i] < 0;
	if (rc == 0 && need_time && c->o.start == SL_FROM_TIMESTAMP)
		rc = sl_offsets_list(c->coord, topic, SL_OFFSET_TIMESTAMP, c->o.start_timestamp_ms, partitions, n,
		                     at_time);
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		int64_t pos;

		lost_out[i] = 0;
		if (committed_out[i] >= 0) {
			pos = committed_out[i];
			if (pos < earliest[i]) { /* retention deleted what was not read yet */
				c->stats.skipped += (uint64_t)(earliest[i] - pos);
				lost_out[i] = earliest[i] - pos;
			}
		} else if (c->o.start == SL_FROM_EARLIEST) {
			pos = earliest[i];
			lost_out[i] = earliest[i]; /* a new group: the records before the log start expired unread */
		} else if (c->o.start == SL_FROM_LATEST) {
			pos = ends_out[i];
		} else if (c->o.start == SL_FROM_OFFSET) {
			pos = c->o.start_offset;
		} else if (c->o.start == SL_FROM_BEFORE_END) {
			pos = ends_out[i] - c->o.start_offset; /* clamped to the log start below */
		} else {
			pos = at_time[i] < 0 ? ends_out[i] : at_time[i];
		}
		positions_out[i] = clamp(pos, earliest[i], ends_out[i]);
	}
	free(earliest);
	if (rc != 0)
		set_error(c, "%s", sl_conn_error(c->coord));
	return rc;
}

/* Give every topic's fetcher its partitions of c->parts (setting fetch_index), starting at positions[] (indexed
 * like c->parts). */
static int fetchers_assign(struct sl_consumer *c, const int64_t *positions)
{
	uint32_t count = c->part_count;
	uint32_t *ids = calloc(count ? count : 1, sizeof(*ids));
	int64_t *pos = calloc(count ? count : 1, sizeof(*pos)), *end = calloc(count ? count : 1, sizeof(*end));
	int rc = ids && pos && end ? 0 : -ENOMEM;

	for (uint32_t t = 0; rc == 0 && t < c->topic_count; t++) {
		uint32_t n = 0;

		for (uint32_t i = 0; i < count; i++) {
			if (c->parts[i].topic_index != t)
				continue;
			c->parts[i].fetch_index = n;
			ids[n] = c->parts[i].partition;
			pos[n] = positions[i];
			end[n] = c->parts[i].end;
			n++;
		}
		c->topics[t].assigned = n;
		rc = sl_fetcher_assign(c->topics[t].fetcher, ids, pos, end, n);
	}
	free(ids);
	free(pos);
	free(end);
	c->reading = NULL;
	return rc;
}

/* Look up where the gained partitions of parts start (gained[i]), topic by topic: positions[i], parts[i].end
 * and parts[i].committed are set. */
static int gained_resolve(struct sl_consumer *c, struct cpart *parts, uint32_t count, const bool *gained,
                          int64_t *positions)
{
	uint32_t *ids = calloc(count ? count : 1, sizeof(*ids)), *at = calloc(count ? count : 1, sizeof(*at));
	int64_t *tmp = calloc(4 * (size_t)(count ? count : 1), sizeof(*tmp));
	int rc = ids && at && tmp ? 0 : -ENOMEM;

	for (uint32_t t = 0; rc == 0 && t < c->topic_count; t++) {
		uint32_t n = 0;

		for (uint32_t i = 0; i < count; i++)
			if (parts[i].topic_index == t && gained[i]) {
				at[n] = i;
				ids[n++] = parts[i].partition;
			}
		if (n == 0)
			continue;
		rc = starts_resolve(c, t, ids, n, tmp, tmp + n, tmp + 2 * n, tmp + 3 * n);
		for (uint32_t k = 0; rc == 0 && k < n; k++) {
			parts[at[k]].committed = tmp[k];
			if (c->o.report_lost && tmp[3 * n + k] > 0) {
				parts[at[k]].lost_pending += tmp[3 * n + k];
				c->stats.records_lost += (uint64_t)tmp[3 * n + k];
			}
			positions[at[k]] = tmp[n + k];
			parts[at[k]].base = tmp[n + k];
			parts[at[k]].end = c->o.stop_at_end ? tmp[2 * n + k] : INT64_MAX;
		}
	}
	if (rc == -ENOMEM)
		set_error(c, "out of memory for the assignment of group '%s'", c->group);
	free(ids);
	free(at);
	free(tmp);
	return rc;
}

/* Install the assignment of a JoinGroup answer: keep the positions of partitions kept, look up where gained
 * ones start, hand the fetchers their partitions, then tell the callback what was lost and what was gained. */
static int assignment_apply(struct sl_consumer *c, const Synclog__JoinGroupResponse *jr)
{
	struct cpart *parts = NULL;
	uint32_t count = 0, lost = 0, gained_count = 0;
	int64_t *positions = NULL;
	bool *kept = NULL, *gained = NULL;
	size_t cap;
	int rc;

	/* The generation is taken only once the assignment is installed: until then commits carry the old one and are
	 * refused, rather than accepted for partitions this member may not read any more. */
	int32_t generation = jr->generation;

	snprintf(c->member_id, sizeof(c->member_id), "%s", jr->member_id != NULL ? jr->member_id : "");
	c->heartbeat_interval_ms = jr->heartbeat_interval_ms > 0 ? jr->heartbeat_interval_ms : 1000;
	rc = assignment_copy(c, jr, &parts, &count);
	cap = (count > c->part_count ? count : c->part_count) + 1;
	if (rc == 0) {
		positions = calloc(cap, sizeof(*positions));
		kept = calloc(cap, sizeof(*kept));
		gained = calloc(cap, sizeof(*gained));
		if (positions == NULL || kept == NULL || gained == NULL || scratch_reserve(c, (uint32_t)cap) != 0)
			rc = -ENOMEM;
	}
	if (rc != 0) {
		set_error(c, "out of memory for the assignment of group '%s'", c->group);
		goto out;
	}
	/* An offset reset since the last join: every partition starts again from the new offsets (invariant 3). */
	bool reset = c->joined && jr->reset_generation != c->reset_generation;
	c->reset_generation = jr->reset_generation;
	if (reset)
		c->stats.resets++;
	/* Kept partitions carry their position, end and known commit over. */
	for (uint32_t i = 0; i < count; i++) {
		gained[i] = true;
		for (uint32_t j = 0; j < c->part_count && !reset; j++) {
			if (c->parts[j].topic_index != parts[i].topic_index ||
			    c->parts[j].partition != parts[i].partition)
				continue;
			positions[i] = position_of(c, &c->parts[j]);
			parts[i].end = c->parts[j].end;
			parts[i].committed = c->parts[j].committed;
			parts[i].base = c->parts[j].base;
			parts[i].lost_pending = c->parts[j].lost_pending;
			kept[j] = true;
			gained[i] = false;
		}
	}
	/* Lost partitions, for the callback, while the fetchers still know their positions. */
	for (uint32_t j = 0; j < c->part_count; j++) {
		int64_t pos;

		if (kept[j])
			continue;
		pos = position_of(c, &c->parts[j]);
		c->view[lost++] =
		        (struct sl_consumer_partition){c->topics[c->parts[j].topic_index].name, c->parts[j].partition,
		                                       pos, nothing_to_lose(&c->parts[j], pos)};
	}
	rc = gained_resolve(c, parts, count, gained, positions);
	if (rc != 0)
		goto out;
	free(c->parts);
	c->parts = parts;
	c->part_count = count;
	parts = NULL;
	rc = fetchers_assign(c, positions);
	if (rc != 0) {
		/* Half-assigned fetchers: nothing safe to read; the caller gives up. */
		set_error(c, "out of memory assigning %u partitions of group '%s'", count, c->group);
		goto out;
	}
	c->generation = generation;
	c->joined = true;
	callback(c, SL_CONSUMER_REVOKED, lost);
	for (uint32_t i = 0; i < c->part_count; i++)
		if (gained[i])
			c->view[gained_count++] = (struct sl_consumer_partition){
			        c->topics[c->parts[i].topic_index].name, c->parts[i].partition, positions[i], true};
	callback(c, SL_CONSUMER_ASSIGNED, gained_count);
out:
	free(parts);
	free(positions);
	free(kept);
	free(gained);
	return rc;
}

static void timers_start(struct sl_consumer *c)
{
	int64_t now = sl_clock_mono_ms();

	c->heartbeat_due_ms = now + c->heartbeat_interval_ms;
	c->heartbeat_sent_ms = now;
	c->commit_due_ms = now + c->o.auto_commit_interval_ms;
	c->rejoin_reason = 0;
}

static int join_and_assign(struct sl_consumer *c)
{
	Synclog__Response *resp;
	int rc = join_request(c, true, &resp);

	if (rc == 0)
		rc = assignment_apply(c, resp->join_group);
	if (rc == 0) {
		timers_start(c);
	} else if (c->generation != 0) {
		/* Not installed: join again before reading on (a member that never joined has nothing to read). */
		c->rejoin_reason = -ESTALE;
	}
	return rc;
}

/* The group has a new generation (or forgot this member): try to commit what was consumed, join again, and
 * commit the progress of the partitions kept, now in the new generation. */
static int rebalance(struct sl_consumer *c, bool member_known)
{
	int rc;

	/* Refused or failed: counted, and the REVOKED callback says committed=false. Not tried again when a commit
	 * was just refused for this very reason. */
	if (c->o.auto_commit && c->rejoin_reason == 0)
		commit_consumed(c);
	if (!member_known)
		c->member_id[0] = '\0';
	rc = join_and_assign(c);
	if (rc != 0)
		return rc;
	c->stats.rebalances++;
	if (c->o.auto_commit)
		commit_consumed(c);
	return 0;
}

/* ---- heartbeats and the work poll does besides fetching ---- */

/* A coordination request failed with rc. Connection errors are retried for reconnect_timeout_ms; returns 0 to
 * go on reading meanwhile, or rc to give up. */
static int coord_failed(struct sl_consumer *c, int rc)
{
	int64_t now = sl_clock_mono_ms();

	if (!connection_error(rc))
		return rc;
	if (c->coord_failing_since_ms == 0)
		c->coord_failing_since_ms = now;
	if (now - c->coord_failing_since_ms >= (int64_t)c->o.reconnect_timeout_ms) {
		set_error(c, "group '%s': %s (for %u ms)", c->group, sl_conn_error(c->coord),
		          c->o.reconnect_timeout_ms);
		return rc;
	}
	c->heartbeat_due_ms = now + COORD_RETRY_MS;
	return 0;
}

static int heartbeat(struct sl_consumer *c)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__HeartbeatRequest body = SYNCLOG__HEARTBEAT_REQUEST__INIT;
	Synclog__Response *resp;
	int rc;

	body.group = c->group;
	body.member_id = c->member_id;
	body.generation = c->generation;
	req.body_case = SYNCLOG__REQUEST__BODY_HEARTBEAT;
	req.heartbeat = &body;
	c->heartbeat_sent_ms = sl_clock_mono_ms();
	rc = sl_conn_call(c->coord, &req, &resp);
	if (rc != 0)
		return rc;
	c->heartbeat_due_ms = sl_clock_mono_ms() + c->heartbeat_interval_ms;
	if (resp->heartbeat != NULL && resp->heartbeat->reset_generation > c->reset_generation &&
	    resp->error == SYNCLOG__ERROR_CODE__NONE) {
		/* Reset without a new generation (cannot happen with this broker: a forced reset fences members). Join
		 * again so the new offsets are read. */
		return rebalance(c, true);
	}
	if (resp->error == SYNCLOG__ERROR_CODE__REBALANCE_IN_PROGRESS)
		return rebalance(c, true);
	if (resp->error == SYNCLOG__ERROR_CODE__UNKNOWN_MEMBER)
		return rebalance(c, false);
	rc = sl_conn_expect_body(c->coord, resp, SYNCLOG__RESPONSE__BODY_HEARTBEAT, "heartbeat");
	if (rc != 0)
		set_error(c, "%s", sl_conn_error(c->coord));
	return rc;
}

/* Join again after a refused commit; heartbeat when due (by heartbeat_due_ms, a liveness heartbeat or a generation
 * check); auto-commit when due. Returns 0 or a failure to give up on. */
static int coordinate(struct sl_consumer *c, int64_t heartbeat_due_ms)
{
	int64_t now = sl_clock_mono_ms();
	int rc = 0;

	if (c->rejoin_reason != 0 && now >= c->heartbeat_due_ms) {
		rc = rebalance(c, c->rejoin_reason != -EIDRM);
		if (rc != 0)
			return connection_error(rc) ? coord_failed(c, rc) : rc;
		now = sl_clock_mono_ms();
	}
	if (now >= heartbeat_due_ms) {
		rc = heartbeat(c);
		if (rc == -EINTR)
			return rc;
		if (rc != 0)
			return coord_failed(c, rc);
		c->coord_failing_since_ms = 0;
	}
	if (c->o.auto_commit && now >= c->commit_due_ms) {
		rc = commit_consumed(c);
		if (rc == -EINTR)
			return rc;
		if (rc != 0 && rc != -ESTALE && rc != -EIDRM)
			return coord_failed(c, rc);
	}
	return 0;
}

/* ---- the public calls ---- */

static bool name_ok(const char *s, size_t max)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

static int options_check(const struct sl_consumer_options *o, char *err, size_t err_bytes)
{
	if (!name_ok(o->group, SL_GROUP_NAME_BYTES_MAX)) {
		sl_error_set(err, err_bytes, "group name '%.200s' is invalid: 1 to 200 of [A-Za-z0-9._-]",
		             o->group != NULL ? o->group : "");
		return -EINVAL;
	}
	if (o->topic_count == 0 || o->topic_count > SL_CONSUMER_TOPICS_MAX || o->topics == NULL) {
		sl_error_set(err, err_bytes, "a group consumer subscribes to 1 to %d topics", SL_CONSUMER_TOPICS_MAX);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < o->topic_count; i++) {
		if (!name_ok(o->topics[i], SL_TOPIC_NAME_BYTES_MAX)) {
			sl_error_set(err, err_bytes, "topic name '%.200s' is invalid: 1 to 200 of [A-Za-z0-9._-]",
			             o->topics[i] != NULL ? o->topics[i] : "");
			return -EINVAL;
		}
		for (uint32_t j = 0; j < i; j++)
			if (strcmp(o->topics[i], o->topics[j]) == 0) {
				sl_error_set(err, err_bytes, "topic '%s' is subscribed twice", o->topics[i]);
				return -EINVAL;
			}
	}
	if ((unsigned)o->start > SL_FROM_BEFORE_END ||
	    ((o->start == SL_FROM_OFFSET || o->start == SL_FROM_BEFORE_END) && o->start_offset < 0)) {
		sl_error_set(err, err_bytes, "the start position is invalid");
		return -EINVAL;
	}
	if (o->session_timeout_ms != 0 && (o->session_timeout_ms < 1000 || o->session_timeout_ms > 300000)) {
		sl_error_set(err, err_bytes,
		             "session timeout %u ms is out of range: 1000 to 300000 (or 0 for the "
		             "broker's default)",
		             o->session_timeout_ms);
		return -EINVAL;
	}
	return 0;
}

/* Connect, check every topic exists and make its fetcher. */
static int consumer_setup(struct sl_consumer *c)
{
	int rc = sl_conn_connect(c->coord);

	for (uint32_t t = 0; rc == 0 && t < c->topic_count; t++) {
		struct sl_topic_config config;
		struct sl_partition_info *infos = NULL;
		struct sl_fetcher_options fo;
		uint32_t n;
		char err[SL_ERROR_BYTES];

		rc = sl_topic_describe(c->coord, c->topics[t].name, &config, &infos, &n);
		free(infos);
		if (rc != 0) {
			if (rc == -ENOENT)
				set_error(c,
				          "topic '%s' does not exist: create it (synclog topic create) or subscribe to "
				          "another",
				          c->topics[t].name);
			else
				set_error(c, "%s", sl_conn_error(c->coord));
			return rc;
		}
		sl_fetcher_options_init(&fo);
		fo.broker = c->broker;
		fo.client_id = c->coord->client_id;
		fo.topic = c->topics[t].name;
		fo.stop_at_end = c->o.stop_at_end;
		fo.max_wait_ms = c->o.max_wait_ms;
		fo.partition_bytes_max = c->o.partition_bytes_max;
		fo.io_timeout_ms = c->o.io_timeout_ms;
		fo.reconnect_timeout_ms = c->o.reconnect_timeout_ms;
		rc = sl_fetcher_new_unassigned(&c->topics[t].fetcher, &fo, err, sizeof(err));
		if (rc == 0)
			rc = sl_fetcher_conn_security_copy(c->topics[t].fetcher, c->coord);
		if (rc != 0)
			set_error(c, "%s", rc == -ENOMEM ? "group consumer: out of memory" : err);
	}
	if (rc == 0)
		rc = join_and_assign(c);
	else if (c->error[0] == '\0')
		set_error(c, "%s", sl_conn_error(c->coord));
	return rc;
}

int sl_consumer_subscribe(struct sl_consumer **out, const struct sl_consumer_options *o, char *err, size_t err_bytes)
{
	struct sl_consumer *c;
	int rc;

	*out = NULL;
	rc = options_check(o, err, err_bytes);
	if (rc != 0)
		return rc;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	if (sl_broker_is_kafka(o->broker)) {
		rc = sl_kafka_consumer_subscribe(&c->kafka, c, o, err, err_bytes);
		if (rc != 0) {
			free(c);
			return rc;
		}
		*out = c;
		return 0;
	}
	c->o = *o;
	c->o.topics = NULL;
	snprintf(c->group, sizeof(c->group), "%s", o->group);
	c->o.group = c->group;
	snprintf(c->instance_id, sizeof(c->instance_id), "%s", o->instance_id != NULL ? o->instance_id : "");
	c->o.instance_id = NULL;
	c->topics = calloc(o->topic_count, sizeof(*c->topics));
	c->topic_names = calloc(o->topic_count, sizeof(*c->topic_names));
	if (c->topics == NULL || c->topic_names == NULL) {
		sl_consumer_free(c);
		return -ENOMEM;
	}
	c->topic_count = o->topic_count;
	for (uint32_t t = 0; t < o->topic_count; t++) {
		snprintf(c->topics[t].name, sizeof(c->topics[t].name), "%s", o->topics[t]);
		c->topic_names[t] = c->topics[t].name;
	}
	rc = sl_conn_new(&c->coord, o->broker, o->client_id != NULL ? o->client_id : "synclog-consumer");
	if (rc != 0) {
		struct sl_broker_addr addr;

		if (rc != -EINVAL || sl_broker_parse(o->broker, &addr, err, err_bytes) == 0)
			sl_error_set(err, err_bytes, "group consumer: out of memory");
		sl_consumer_free(c);
		return rc;
	}
	snprintf(c->broker, sizeof(c->broker), "%s", o->broker);
	c->o.broker = c->broker;
	c->o.client_id = NULL;
	c->o.security = NULL; /* the coordinator keeps a copy; the fetchers get theirs from it */
	rc = sl_conn_set_security(c->coord, o->security);
	if (rc != 0) {
		sl_error_set(err, err_bytes, "%s", sl_conn_error(c->coord));
		sl_consumer_free(c);
		return rc;
	}
	sl_conn_set_timeout(c->coord, o->io_timeout_ms);
	rc = consumer_setup(c);
	if (rc != 0) {
		sl_error_set(err, err_bytes, "%s", c->error);
		sl_consumer_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

/* Hand out up to max records of the answer being read. Returns the count or -EBADMSG. */
static int drain(struct sl_consumer *c, struct sl_consumer_record *records, uint32_t max)
{
	struct sl_fetcher *f = c->reading->fetcher;
	uint32_t n = 0;

	while (n < max) {
		int rc = sl_fetcher_next(f, &records[n].partition, &records[n].record);

		if (rc < 0) {
			set_error(c, "group '%s': %s", c->group, sl_fetcher_error(f));
			return rc;
		}
		if (rc == 0) {
			c->reading = NULL;
			break;
		}
		records[n].topic = c->reading->name;
		n++;
	}
	c->stats.records += n;
	return (int)n;
}

/* The next topic to fetch from (round robin), and how many topics have something to fetch. */
static struct ctopic *topic_next(struct sl_consumer *c, uint32_t *active_out)
{
	struct ctopic *pick = NULL;
	uint32_t active = 0;

	for (uint32_t k = 0; k < c->topic_count; k++) {
		struct ctopic *t = &c->topics[(c->rotation + k) % c->topic_count];

		if (t->assigned == 0 || sl_fetcher_done(t->fetcher))
			continue;
		active++;
		if (pick == NULL)
			pick = t;
	}
	if (pick != NULL)
		c->rotation = (uint32_t)(pick - c->topics) + 1;
	*active_out = active;
	return pick;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

int sl_consumer_poll(struct sl_consumer *c, int timeout_ms, struct sl_consumer_record *records, uint32_t records_max)
{
	int64_t deadline_ms = timeout_ms < 0 ? INT64_MAX : sl_clock_mono_ms() + timeout_ms;
	bool waited = false;
	int rc;

	if (c->kafka != NULL)
		return sl_kafka_consumer_poll(c->kafka, timeout_ms, records, records_max);

	SL_ASSERT(!c->closed && !c->in_callback && records_max > 0);
	for (;;) {
		struct ctopic *t;
		uint32_t active;
		int64_t now, wait_ms;

		/* Before handing out records: a generation check when the last one is GENERATION_CHECK_MS old (a
		 * rebalance drops the answer; positions have not moved, so nothing is lost). */
		rc = coordinate(c, c->reading != NULL
		                           ? min64(c->heartbeat_due_ms, c->heartbeat_sent_ms + GENERATION_CHECK_MS)
		                           : c->heartbeat_due_ms);
		if (rc != 0)
			return rc;
		if (c->reading != NULL) {
			rc = drain(c, records, records_max);
			if (rc != 0)
				return rc;
		}
		if (c->o.stop_at_end && sl_consumer_done(c))
			return 0;
		now = sl_clock_mono_ms();
		if (waited && now >= deadline_ms)
			return 0;
		/* Wake up in time for the next heartbeat, whatever the caller's timeout. Auto-commits need no wake-up
		 * of their own: nothing was handed out since this call began, and coordinate() runs at least every
		 * max_wait_ms. */
		wait_ms = min64(deadline_ms, c->heartbeat_due_ms) - now;
		wait_ms = wait_ms < 0 ? 0 : min64(wait_ms, c->o.max_wait_ms);
		t = topic_next(c, &active);
		waited = true;
		if (t == NULL) {
			/* Nothing assigned (more members than partitions) or everything at its end: stay a member. */
			if (poll(NULL, 0, (int)wait_ms) < 0 && errno == EINTR)
				return -EINTR;
			continue;
		}
		sl_fetcher_set_max_wait(t->fetcher, (uint32_t)(wait_ms / active));
		rc = sl_fetcher_fetch(t->fetcher);
		if (rc == -EINTR)
			return rc;
		if (rc != 0) {
			set_error(c, "group '%s': %s", c->group, sl_fetcher_error(t->fetcher));
			return rc;
		}
		c->reading = t;
	}
}

static int commit_check(struct sl_consumer *c, const struct sl_topic_partition_offset *offsets, uint32_t count)
{
	int rc = scratch_reserve(c, count);

	if (rc != 0)
		return rc;
	for (uint32_t i = 0; i < count; i++) {
		struct cpart *p = part_find_near(c, i, offsets[i].topic, offsets[i].partition);

		if (offsets[i].offset < 0) {
			set_error(c, "commit of %s/%u: offset %lld is negative", offsets[i].topic, offsets[i].partition,
			          (long long)offsets[i].offset);
			return -EINVAL;
		}
		if (p == NULL) {
			set_error(c,
			          "commit of %s/%u refused: the partition is not assigned to member %s of group '%s' "
			          "(generation %d): it was revoked or never assigned",
			          offsets[i].topic, offsets[i].partition, c->member_id, c->group, c->generation);
			c->stats.commits_refused++;
			return -ESTALE;
		}
		c->commit_offsets[i] = offsets[i];
		c->commit_parts[i] = (uint32_t)(p - c->parts);
	}
	return 0;
}

int sl_consumer_commit_offsets(struct sl_consumer *c, const struct sl_topic_partition_offset *offsets, uint32_t count)
{
	int rc;

	if (c->kafka != NULL)
		return sl_kafka_consumer_commit_offsets(c->kafka, offsets, count);

	SL_ASSERT(!c->closed && !c->in_callback);
	if (count == 0)
		return 0;
	rc = commit_check(c, offsets, count);
	if (rc == 0)
		rc = commit_send(c, count);
	return rc;
}

int sl_consumer_commit(struct sl_consumer *c, const char *topic, uint32_t partition, int64_t offset)
{
	struct sl_topic_partition_offset one = {topic, partition, offset};

	return sl_consumer_commit_offsets(c, &one, 1);
}

int sl_consumer_commit_consumed(struct sl_consumer *c)
{
	if (c->kafka != NULL)
		return sl_kafka_consumer_commit_consumed(c->kafka);

	SL_ASSERT(!c->closed && !c->in_callback);
	return commit_consumed(c);
}

int sl_consumer_seek(struct sl_consumer *c, const char *topic, uint32_t partition, int64_t offset)
{
	struct cpart *p = part_find(c, topic, partition);

	if (c->kafka != NULL)
		return sl_kafka_consumer_seek(c->kafka, topic, partition, offset);

	SL_ASSERT(!c->closed);
	if (p == NULL) {
		set_error(c, "seek %s/%u: the partition is not assigned to this member", topic, partition);
		return -ESTALE;
	}
	if (offset < 0) {
		set_error(c, "seek %s/%u: offset %lld is negative", topic, partition, (long long)offset);
		return -EINVAL;
	}
	if (c->reading == &c->topics[p->topic_index])
		c->reading = NULL;
	return sl_fetcher_seek(c->topics[p->topic_index].fetcher, partition, offset);
}

int64_t sl_consumer_position(const struct sl_consumer *c, const char *topic, uint32_t partition)
{
	if (c->kafka != NULL)
		return sl_kafka_consumer_position(c->kafka, topic, partition);

	for (uint32_t i = 0; i < c->part_count; i++)
		if (c->parts[i].partition == partition && strcmp(c->topics[c->parts[i].topic_index].name, topic) == 0)
			return position_of(c, &c->parts[i]);
	return -1;
}

const struct sl_consumer_partition *sl_consumer_assignment(struct sl_consumer *c, uint32_t *count_out)
{
	if (c->kafka != NULL)
		return sl_kafka_consumer_assignment(c->kafka, count_out);
	for (uint32_t i = 0; i < c->part_count; i++) {
		int64_t pos = position_of(c, &c->parts[i]);

		c->assignment_view[i] =
		        (struct sl_consumer_partition){c->topics[c->parts[i].topic_index].name, c->parts[i].partition,
		                                       pos, pos == c->parts[i].committed};
	}
	*count_out = c->part_count;
	return c->assignment_view;
}

bool sl_consumer_done(const struct sl_consumer *c)
{
	if (c->kafka != NULL)
		return sl_kafka_consumer_done(c->kafka);

	if (!c->o.stop_at_end)
		return false;
	for (uint32_t i = 0; i < c->part_count; i++)
		if (!sl_fetcher_partition_done_at(c->topics[c->parts[i].topic_index].fetcher, c->parts[i].fetch_index))
			return false;
	return true;
}

const char *sl_consumer_member_id(const struct sl_consumer *c)
{
	if (c->kafka != NULL)
		return sl_kafka_consumer_member_id(c->kafka);

	return c->member_id;
}

int32_t sl_consumer_generation(const struct sl_consumer *c)
{
	if (c->kafka != NULL)
		return sl_kafka_consumer_generation(c->kafka);

	return c->generation;
}

int64_t sl_consumer_reset_generation(const struct sl_consumer *c)
{
	return c->reset_generation;
}

void sl_consumer_set_applier_info(struct sl_consumer *c, const struct sl_applier_info *a)
{
	c->applier = *a;
	c->has_applier = true;
}

int sl_consumer_add_lost(struct sl_consumer *c, const char *topic, uint32_t partition, int64_t records)
{
	struct cpart *p = part_find(c, topic, partition);

	if (p == NULL || records < 0)
		return p == NULL ? -ESTALE : -EINVAL;
	p->lost_pending += records;
	c->stats.records_lost += (uint64_t)records;
	return 0;
}

int sl_consumer_leave(struct sl_consumer *c)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__LeaveGroupRequest body = SYNCLOG__LEAVE_GROUP_REQUEST__INIT;
	Synclog__Response *resp;
	int rc;

	if (c->kafka != NULL)
		return sl_kafka_consumer_leave(c->kafka);
	SL_ASSERT(!c->closed && !c->in_callback);
	body.group = c->group;
	body.member_id = c->member_id;
	req.body_case = SYNCLOG__REQUEST__BODY_LEAVE_GROUP;
	req.leave_group = &body;
	rc = sl_conn_call(c->coord, &req, &resp);
	if (rc == 0 && resp->error != SYNCLOG__ERROR_CODE__NONE && resp->error != SYNCLOG__ERROR_CODE__UNKNOWN_MEMBER)
		rc = sl_conn_fail_response(c->coord, "leave group", resp->error, resp->error_message);
	if (rc != 0)
		set_error(c, "%s", sl_conn_error(c->coord));
	c->closed = true;
	return rc;
}

void sl_consumer_stats_get(const struct sl_consumer *c, struct sl_consumer_stats *out)
{
	if (c->kafka != NULL) {
		sl_kafka_consumer_stats_get(c->kafka, out);
		return;
	}
	*out = c->stats;
	for (uint32_t t = 0; t < c->topic_count; t++)
		if (c->topics[t].fetcher != NULL)
			out->skipped += sl_fetcher_skipped(c->topics[t].fetcher);
}

const char *sl_consumer_error(const struct sl_consumer *c)
{
	if (c->kafka != NULL)
		return sl_kafka_consumer_error(c->kafka);

	return c->error;
}

/* At close, a commit refused for a new generation: join it (same member, same topics: the broker starts no new
 * generation for that) and commit again the offsets of the partitions this member still owns there. */
static int close_commit_retry(struct sl_consumer *c, uint32_t n)
{
	Synclog__Response *resp;
	const Synclog__JoinGroupResponse *jr;
	uint32_t kept = 0;
	int rc = join_request(c, false, &resp); /* not as a new member: that would move partitions for nothing */

	if (rc != 0)
		return rc;
	jr = resp->join_group;
	c->generation = jr->generation;
	snprintf(c->member_id, sizeof(c->member_id), "%s", jr->member_id != NULL ? jr->member_id : "");
	for (uint32_t i = 0; i < n; i++) {
		bool owned = false;

		for (size_t a = 0; a < jr->n_assignment && !owned; a++) {
			const Synclog__TopicPartitions *tp = jr->assignment[a];

			if (tp->topic == NULL || strcmp(tp->topic, c->commit_offsets[i].topic) != 0)
				continue;
			for (size_t k = 0; k < tp->n_partitions && !owned; k++)
				owned = tp->partitions[k] == c->commit_offsets[i].partition;
		}
		if (owned) {
			c->commit_offsets[kept] = c->commit_offsets[i];
			c->commit_parts[kept++] = c->commit_parts[i];
		}
	}
	/* The partitions not owned any more stay uncommitted: the refusal was counted. */
	rc = commit_send(c, kept);
	return rc != 0 ? rc : kept < n ? -ESTALE : 0;
}

int sl_consumer_close(struct sl_consumer *c)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__LeaveGroupRequest body = SYNCLOG__LEAVE_GROUP_REQUEST__INIT;
	Synclog__Response *resp;
	int rc = 0, lrc;

	if (c->kafka != NULL)
		return sl_kafka_consumer_close(c->kafka);

	SL_ASSERT(!c->closed && !c->in_callback);
	if (c->o.auto_commit) {
		uint32_t n = consumed_gather(c);

		rc = commit_send(c, n);
		if (rc == -ESTALE)
			rc = close_commit_retry(c, n);
	}
	for (uint32_t i = 0; i < c->part_count; i++) {
		int64_t pos = position_of(c, &c->parts[i]);

		c->view[i] =
		        (struct sl_consumer_partition){c->topics[c->parts[i].topic_index].name, c->parts[i].partition,
		                                       pos, nothing_to_lose(&c->parts[i], pos)};
	}
	callback(c, SL_CONSUMER_REVOKED, c->part_count);
	body.group = c->group;
	body.member_id = c->member_id;
	req.body_case = SYNCLOG__REQUEST__BODY_LEAVE_GROUP;
	req.leave_group = &body;
	lrc = sl_conn_call(c->coord, &req, &resp);
	/* A member the broker already forgot has left too. */
	if (lrc == 0 && resp->error != SYNCLOG__ERROR_CODE__NONE && resp->error != SYNCLOG__ERROR_CODE__UNKNOWN_MEMBER)
		lrc = sl_conn_fail_response(c->coord, "leave group", resp->error, resp->error_message);
	if (lrc != 0 && rc == 0) {
		set_error(c, "%s", sl_conn_error(c->coord));
		rc = lrc;
	}
	c->closed = true;
	return rc;
}

void sl_consumer_free(struct sl_consumer *c)
{
	if (c == NULL)
		return;
	sl_kafka_consumer_free(c->kafka);
	for (uint32_t t = 0; c->topics != NULL && t < c->topic_count; t++)
		sl_fetcher_free(c->topics[t].fetcher);
	sl_conn_free(c->coord);
	free(c->topics);
	free(c->topic_names);
	free(c->parts);
	free(c->view);
	free(c->assignment_view);
	free(c->commit_offsets);
	free(c->commit_parts);
	free(c->commit_lost);
	free(c);
}
