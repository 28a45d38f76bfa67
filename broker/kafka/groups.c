/* Kafka's consumer groups on the broker's own (broker/groups.h): the same groups, members, generations and
 * committed offsets that `synclog consume --group`, `group describe`, lag and `offsets reset` use. Kafka clients
 * assign partitions themselves (range, roundrobin, cooperative-sticky: the group's leader runs the assignor), so
 * the coordinator here runs Kafka's two phases around the broker's generations:
 *
 *   STABLE --JoinGroup (new member, or a member rejoining), or a heartbeat from an older generation--> PREPARING
 *   PREPARING --every member has a JoinGroup parked (members that do not rejoin by the rebalance deadline are
 *               removed)--> new generation (sl_group_new_generation); the leader's JoinGroup carries every
 *               member's protocol metadata, the others' none --> AWAITING_SYNC
 *   AWAITING_SYNC --the leader's SyncGroup (followers' wait parked)--> assignments stored, every SyncGroup
 *               answered with its member's bytes --> STABLE
 *
 * Invariants:
 *   1. A parked JoinGroup or SyncGroup is held (sl_kafka_req_hold) until answered: its connection may close, the
 *      answer is then dropped, never written to freed memory.
 *   2. A member with a parked JoinGroup is not expired by its session timeout while it waits (its heartbeat time
 *      is refreshed by the coordinator's tick), as Kafka keeps members awaiting a join.
 *   3. A group is used by one protocol at a time: Kafka members are refused while native members are live, and
 *      members of another protocol type with INCONSISTENT_GROUP_PROTOCOL.
 *   4. Offsets are committed through the handlers (durable, generation-checked like every other commit). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/groups.h"
#include "broker/kafka/kafka_impl.h"
#include "broker/topics.h"
#include "proto/base/assert.h"
#include "proto/base/clock.h"

/* How often rebalance deadlines and leaders gone mid-sync are checked. */
#define GROUPS_TICK_MS        200
/* A rebalance waits at most this long for members to rejoin, whatever their rebalance timeout asks (Kafka's
 * max.poll.interval.ms default is 5 minutes; members that died are removed sooner by their session timeout). */
#define REBALANCE_WAIT_MS_MAX 300000

enum kg_state { KG_STABLE, KG_PREPARING, KG_AWAITING_SYNC };

struct kg_wait {
	struct sl_kafka_req *kr;
	char member_id[SL_MEMBER_ID_BYTES_MAX];
	int sync; /* 0: a JoinGroup, 1: a SyncGroup */
	struct kg_wait *next;
};

struct sl_kafka_group {
	char name[SL_GROUP_NAME_BYTES_MAX + 1];
	enum kg_state state;
	int32_t generation;  /* the generation the last join phase made */
	int64_t deadline_ms; /* PREPARING: members not rejoined by then are removed */
	struct kg_wait *waits;
	struct sl_kafka_group *next;
};

static int64_t now_ms(void)
{
	return sl_clock_wall_ms();
}

static struct sl_kafka_group *kgroup_get(struct sl_kafka *k, const char *name)
{
	for (struct sl_kafka_group *kg = k->groups; kg; kg = kg->next)
		if (strcmp(kg->name, name) == 0)
			return kg;
	struct sl_kafka_group *kg = calloc(1, sizeof(*kg));
	if (kg == NULL)
		return NULL;
	snprintf(kg->name, sizeof(kg->name), "%s", name);
	kg->next = k->groups;
	k->groups = kg;
	return kg;
}

static struct kg_wait *wait_find(struct sl_kafka_group *kg, const char *member_id, int sync)
{
	for (struct kg_wait *w = kg->waits; w; w = w->next)
		if (w->sync == sync && strcmp(w->member_id, member_id) == 0)
			return w;
	return NULL;
}

static void wait_unlink(struct sl_kafka_group *kg, struct kg_wait *w)
{
	struct kg_wait **pp = &kg->waits;
	while (*pp != w)
		pp = &(*pp)->next;
	*pp = w->next;
}

static int park(struct sl_kafka_group *kg, struct sl_kafka_req *kr, const char *member_id, int sync)
{
	struct kg_wait *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -ENOMEM;
	w->kr = kr;
	snprintf(w->member_id, sizeof(w->member_id), "%s", member_id);
	w->sync = sync;
	w->next = kg->waits;
	kg->waits = w;
	sl_kafka_req_hold(kr); /* invariant 1 */
	return 0;
}

/* ---- responses ---- */

/* Kafka's client_host of a member, as DescribeGroups shows it: "/" and the address the member joined from, without
 * its port (peer is "ADDRESS:PORT", or "[ADDRESS]:PORT" for IPv6; "client" when the address was unknown: empty). */
static void member_host_set(struct sl_member *m, const char *peer)
{
	const char *colon = strrchr(peer, ':');
	if (colon == NULL) {
		m->client_host[0] = '\0';
		return;
	}
	size_t len = (size_t)(colon - peer);
	if (len >= 2 && peer[0] == '[' && peer[len - 1] == ']') {
		peer++;
		len -= 2;
	}
	snprintf(m->client_host, sizeof(m->client_host), "/%.*s", (int)len, peer);
}

static void join_error(struct sl_kafka_req *kr, int16_t err, const char *member_id)
{
	struct sl_kwrite *w = &kr->head;
	sl_kafka_head_begin(kr, 0);
	sl_kwrite_i32(w, 0); /* throttle_time_ms (v2+) */
	sl_kwrite_i16(w, err);
	sl_kwrite_i32(w, -1); /* generation */
	sl_kwrite_str(w, ""); /* protocol */
	sl_kwrite_str(w, ""); /* leader */
	sl_kwrite_str(w, member_id ? member_id : "");
	sl_kwrite_i32(w, 0); /* members */
}

static void sync_answer(struct sl_kafka_req *kr, int16_t err, const uint8_t *assignment, uint32_t len)
{
	struct sl_kwrite *w = &kr->head;
	sl_kafka_head_begin(kr, 0);
	if (kr->rq.api_version >= 1)
		sl_kwrite_i32(w, 0); /* throttle_time_ms */
	sl_kwrite_i16(w, err);
	sl_kwrite_blob(w, assignment, err ? 0 : (int32_t)len);
}

/* Answer a parked request with an error and let it go. */
static void wait_fail(struct sl_kafka_group *kg, struct kg_wait *w, int16_t err)
{
	wait_unlink(kg, w);
	if (!w->kr->dropped) {
		if (w->sync)
			sync_answer(w->kr, err, NULL, 0);
		else
			join_error(w->kr, err, w->member_id);
	}
	sl_kafka_req_answer(w->kr);
	sl_kafka_req_unhold(w->kr);
	free(w);
}

static void fail_all(struct sl_kafka_group *kg, int sync, int16_t err)
{
	struct kg_wait *w = kg->waits;
	while (w) {
		struct kg_wait *next = w->next;
		if (w->sync == sync)
			wait_fail(kg, w, err);
		w = next;
	}
}

static const struct sl_group_protocol *protocol_of(const struct sl_member *m, const char *name)
{
	for (uint32_t i = 0; i < m->protocol_count; i++)
		if (strcmp(m->protocols[i].name, name) == 0)
			return &m->protocols[i];
	return NULL;
}

/* The first protocol of the leader's list that every member speaks, or NULL. */
static const char *common_protocol(const struct sl_group *grp, const struct sl_member *leader)
{
	for (uint32_t p = 0; p < leader->protocol_count; p++) {
		const char *name = leader->protocols[p].name;
		int all = 1;
		for (uint32_t i = 0; i < grp->member_count && all; i++)
			all = protocol_of(&grp->members[i], name) != NULL;
		if (all)
			return name;
	}
	return NULL;
}

/* The join phase is over: a new generation, and every parked JoinGroup answered (invariant: the leader learns
 * every member's metadata for the chosen protocol). */
static void join_complete(struct sl_kafka *k, struct sl_kafka_group *kg, struct sl_group *grp)
{
	struct sl_groups *g = &k->srv->groups;
	sl_group_new_generation(g, grp);
	if (sl_group_member_find(grp, grp->leader) == NULL)
		snprintf(grp->leader, sizeof(grp->leader), "%s", grp->members[0].id);
	const struct sl_member *leader = sl_group_member_find(grp, grp->leader);
	const char *protocol = common_protocol(grp, leader);
	snprintf(grp->protocol, sizeof(grp->protocol), "%s", protocol ? protocol : "");
	int64_t now = now_ms();
	for (uint32_t i = 0; i < grp->member_count; i++) {
		struct sl_member *m = &grp->members[i];
		free(m->assignment_bytes);
		m->assignment_bytes = NULL;
		m->assignment_bytes_len = 0;
		m->last_heartbeat_ms = now;
	}
	kg->generation = grp->generation;
	kg->state = KG_AWAITING_SYNC;
	struct kg_wait *w = kg->waits;
	while (w) {
		struct kg_wait *next = w->next;
		if (w->sync) {
			w = next;
			continue;
		}
		if (protocol == NULL) {
			wait_fail(kg, w, SL_KERR_INCONSISTENT_GROUP_PROTOCOL);
			w = next;
			continue;
		}
		struct sl_kafka_req *kr = w->kr;
		int16_t v = kr->rq.api_version;
		int is_leader = strcmp(w->member_id, grp->leader) == 0;
		if (!kr->dropped) {
			struct sl_kwrite *out = &kr->head;
			sl_kafka_head_begin(kr, 0);
			sl_kwrite_i32(out, 0); /* throttle_time_ms */
			sl_kwrite_i16(out, SL_KERR_NONE);
			sl_kwrite_i32(out, grp->generation);
			sl_kwrite_str(out, grp->protocol);
			sl_kwrite_str(out, grp->leader);
			sl_kwrite_str(out, w->member_id);
			sl_kwrite_i32(out, is_leader ? (int32_t)grp->member_count : 0);
			for (uint32_t i = 0; is_leader && i < grp->member_count; i++) {
				const struct sl_member *m = &grp->members[i];
				const struct sl_group_protocol *gp = protocol_of(m, grp->protocol);
				sl_kwrite_str(out, m->id);
				if (v >= 5)
					sl_kwrite_str(out, NULL); /* group_instance_id: static membership not kept */
				sl_kwrite_blob(out, gp->metadata, (int32_t)gp->metadata_len);
			}
		}
		wait_unlink(kg, w);
		sl_kafka_req_answer(kr);
		sl_kafka_req_unhold(kr);
		free(w);
		w = next;
	}
	if (protocol == NULL)
		kg->state = KG_STABLE; /* nobody joined: start over with the next JoinGroup */
}

/* PREPARING: complete the join phase once every member has rejoined; past the deadline, remove those that did
 * not. Members gone meanwhile (left, expired) have their parked JoinGroup refused. */
static void join_check(struct sl_kafka *k, struct sl_kafka_group *kg)
{
	if (kg->state != KG_PREPARING)
		return;
	struct sl_groups *g = &k->srv->groups;
	struct sl_group *grp = sl_groups_find(g, kg->name);
	int64_t now = now_ms();
	struct kg_wait *w = kg->waits;
	while (w) {
		struct kg_wait *next = w->next;
		struct sl_member *m = grp && !w->sync ? sl_group_member_find(grp, w->member_id) : NULL;
		if (!w->sync && m == NULL)
			wait_fail(kg, w, SL_KERR_UNKNOWN_MEMBER_ID);
		else if (m)
			m->last_heartbeat_ms = now; /* invariant 2 */
		w = next;
	}
	if (grp == NULL || grp->member_count == 0) {
		kg->state = KG_STABLE;
		return;
	}
	uint32_t i = 0;
	while (i < grp->member_count) {
		if (wait_find(kg, grp->members[i].id, 0) != NULL) {
			i++;
			continue;
		}
		if (now < kg->deadline_ms)
			return; /* still waiting for this one */
		fprintf(stderr,
		        "synclogd: kafka group %s: member %s did not rejoin within the rebalance timeout: "
		        "removed\n",
		        grp->name, grp->members[i].id);
		sl_group_leave(g, grp->name, grp->members[i].id);
		i = 0; /* leave reorders members */
	}
	if (grp->member_count > 0)
		join_complete(k, kg, grp);
	else
		kg->state = KG_STABLE;
}

/* Start a join phase: members learn of it from their heartbeats and rejoin. */
static void prepare(struct sl_kafka_group *kg, const struct sl_group *grp)
{
	if (kg->state == KG_PREPARING)
		return;
	/* SyncGroups of the generation being replaced will never get an assignment. */
	fail_all(kg, 1, SL_KERR_REBALANCE_IN_PROGRESS);
	uint32_t wait_ms = 0;
	for (uint32_t i = 0; grp && i < grp->member_count; i++)
		if (grp->members[i].rebalance_timeout_ms > wait_ms)
			wait_ms = grp->members[i].rebalance_timeout_ms;
	if (wait_ms > REBALANCE_WAIT_MS_MAX)
		wait_ms = REBALANCE_WAIT_MS_MAX;
	kg->state = KG_PREPARING;
	kg->deadline_ms = now_ms() + wait_ms;
}

static void groups_tick_cb(uv_timer_t *t)
{
	struct sl_kafka *k = t->data;
	struct sl_groups *g = &k->srv->groups;
	for (struct sl_kafka_group *kg = k->groups; kg; kg = kg->next) {
		if (kg->state == KG_PREPARING) {
			join_check(k, kg);
		} else if (kg->state == KG_AWAITING_SYNC) {
			/* The leader went (expired, left) or a new generation started before it synced: the followers
			 * waiting for its assignment rejoin. */
			struct sl_group *grp = sl_groups_find(g, kg->name);
			if (grp == NULL || grp->generation != kg->generation ||
			    sl_group_member_find(grp, grp->leader) == NULL)
				prepare(kg, grp);
		}
	}
}

void sl_kafka_groups_start(struct sl_kafka *k)
{
	uv_timer_init(&k->srv->loop, &k->groups_timer);
	k->groups_timer.data = k;
	uv_timer_start(&k->groups_timer, groups_tick_cb, GROUPS_TICK_MS, GROUPS_TICK_MS);
	k->groups_timer_on = 1;
}

void sl_kafka_groups_stop(struct sl_kafka *k)
{
	/* Shutting down: clients find the coordinator again (this broker, once it is back) and rejoin. */
	for (struct sl_kafka_group *kg = k->groups; kg; kg = kg->next) {
		fail_all(kg, 0, SL_KERR_NOT_COORDINATOR);
		fail_all(kg, 1, SL_KERR_NOT_COORDINATOR);
	}
}

static void timer_closed_cb(uv_handle_t *h)
{
}

void sl_kafka_groups_close(struct sl_kafka *k)
{
	sl_kafka_groups_stop(k);
	if (k->groups_timer_on) {
		uv_close((uv_handle_t *)&k->groups_timer, timer_closed_cb);
		k->groups_timer_on = 0;
	}
	while (k->groups) {
		struct sl_kafka_group *kg = k->groups;
		k->groups = kg->next;
		free(kg);
	}
}

/* ---- the consumer protocol's subscription and assignment (ConsumerProtocol, protocol type "consumer") ---- */

/* Subscription: version INT16, topics ARRAY[STRING], user_data BYTES, (v1+ owned partitions...). The topics
 * become the member's subscription, so describe and lag show them. */
static void subscription_apply(struct sl_member *m, const struct sl_group_protocol *gp)
{
	struct sl_kread r = {gp->metadata, gp->metadata + gp->metadata_len, 0};
	(void)sl_kread_i16(&r);
	int32_t n = sl_kread_i32(&r);
	if (r.err || n < 0 || n > SL_MEMBER_TOPICS_MAX)
		return;
	char *topics[SL_MEMBER_TOPICS_MAX];
	char names[SL_MEMBER_TOPICS_MAX][SL_TOPIC_NAME_BYTES_MAX + 1];
	int32_t k = 0;
	for (int32_t i = 0; i < n; i++) {
		int16_t len = sl_kread_i16(&r);
		const uint8_t *p = sl_kread_take(&r, len);
		if (p == NULL || len > SL_TOPIC_NAME_BYTES_MAX)
			return;
		memcpy(names[k], p, (size_t)len);
		names[k][len] = '\0';
		topics[k] = names[k];
		k++;
	}
	sl_member_set_topics(m, topics, (uint32_t)k);
}

/* Assignment: version INT16, ARRAY[topic STRING, partitions ARRAY[INT32]], user_data BYTES. */
static void assignment_apply(struct sl_member *m)
{
	struct sl_kread r = {m->assignment_bytes, m->assignment_bytes + m->assignment_bytes_len, 0};
	(void)sl_kread_i16(&r);
	int32_t n = sl_kread_i32(&r);
	for (int32_t t = 0; t < n && !r.err; t++) {
		int16_t len = sl_kread_i16(&r);
		const uint8_t *p = sl_kread_take(&r, len);
		if (p == NULL || len > SL_TOPIC_NAME_BYTES_MAX)
			return;
		char topic[SL_TOPIC_NAME_BYTES_MAX + 1];
		memcpy(topic, p, (size_t)len);
		topic[len] = '\0';
		int32_t parts = sl_kread_i32(&r);
		if (parts < 0 || (size_t)parts > sl_kread_left(&r) / 4)
			return;
		for (int32_t i = 0; i < parts; i++) {
			int32_t partition = sl_kread_i32(&r);
			if (partition >= 0)
				sl_member_assign(m, topic, (uint32_t)partition);
		}
	}
}

/* ---- JoinGroup ---- */

static int protocols_copy(struct sl_member *m, const struct sl_kafka_join_group *j)
{
	struct sl_group_protocol *ps = calloc(j->protocol_count, sizeof(*ps));
	if (ps == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < j->protocol_count; i++) {
		ps[i].name = strdup(j->protocols[i].name);
		ps[i].metadata_len = (uint32_t)j->protocols[i].metadata.len;
		ps[i].metadata = malloc(ps[i].metadata_len ? ps[i].metadata_len : 1);
		if (ps[i].name == NULL || ps[i].metadata == NULL) {
			for (uint32_t k = 0; k <= i; k++) {
				free(ps[k].name);
				free(ps[k].metadata);
			}
			free(ps);
			return -ENOMEM;
		}
		memcpy(ps[i].metadata, j->protocols[i].metadata.data, ps[i].metadata_len);
	}
	for (uint32_t i = 0; i < m->protocol_count; i++) {
		free(m->protocols[i].name);
		free(m->protocols[i].metadata);
	}
	free(m->protocols);
	m->protocols = ps;
	m->protocol_count = j->protocol_count;
	return 0;
}

/* Refusals before anything changes: the group's name, protocols, and its other members (invariant 3). */
static int16_t join_refusal(struct sl_kafka_req *kr, const struct sl_group *grp, const struct sl_kafka_join_group *j)
{
	if (sl_group_name_check(j->group_id) != 0) {
		sl_kafka_log(kr, "group id '%.200s': use 1 to 200 characters of [A-Za-z0-9._-]", j->group_id);
		return SL_KERR_INVALID_GROUP_ID;
	}
	if (j->session_timeout_ms < (int32_t)SL_SESSION_TIMEOUT_MS_MIN ||
	    j->session_timeout_ms > (int32_t)SL_SESSION_TIMEOUT_MS_MAX) {
		sl_kafka_log(kr, "session timeout %d ms: allowed %u to %u", j->session_timeout_ms,
		             SL_SESSION_TIMEOUT_MS_MIN, SL_SESSION_TIMEOUT_MS_MAX);
		return SL_KERR_INVALID_SESSION_TIMEOUT;
	}
	int names_ok = j->protocol_count > 0 && j->protocol_count <= SL_MEMBER_PROTOCOLS_MAX &&
	               j->protocol_type[0] != '\0' && strlen(j->protocol_type) <= SL_GROUP_PROTOCOL_NAME_BYTES_MAX;
	for (uint32_t i = 0; names_ok && i < j->protocol_count; i++)
		names_ok = j->protocols[i].name[0] != '\0' &&
		           strlen(j->protocols[i].name) <= SL_GROUP_PROTOCOL_NAME_BYTES_MAX;
	if (!names_ok) {
		sl_kafka_log(kr, "group %.200s: 1 to %d protocols with names of 1 to %d characters expected",
		             j->group_id, SL_MEMBER_PROTOCOLS_MAX, SL_GROUP_PROTOCOL_NAME_BYTES_MAX);
		return SL_KERR_INCONSISTENT_GROUP_PROTOCOL;
	}
	if (grp == NULL)
		return SL_KERR_NONE;
	for (uint32_t i = 0; i < grp->member_count; i++) {
		const struct sl_member *m = &grp->members[i];
		if (strcmp(m->id, j->member_id) == 0)
			continue;
		if (!m->kafka) {
			sl_kafka_log(kr,
			             "group %.200s has members consuming with synclog's own protocol: one protocol "
			             "per group",
			             grp->name);
			return SL_KERR_INCONSISTENT_GROUP_PROTOCOL;
		}
	}
	if (grp->member_count > 0 && grp->protocol_type[0] && strcmp(grp->protocol_type, j->protocol_type) != 0) {
		sl_kafka_log(kr, "group %.200s has protocol type '%s', not '%.64s'", grp->name, grp->protocol_type,
		             j->protocol_type);
		return SL_KERR_INCONSISTENT_GROUP_PROTOCOL;
	}
	/* The member must share a protocol with every other member (Kafka's rule). */
	int shared = grp->member_count == 0;
	for (uint32_t p = 0; p < j->protocol_count && !shared; p++) {
		int all = 1;
		for (uint32_t i = 0; i < grp->member_count && all; i++)
			all = strcmp(grp->members[i].id, j->member_id) == 0 ||
			      protocol_of(&grp->members[i], j->protocols[p].name) != NULL;
		shared = all;
	}
	if (!shared) {
		sl_kafka_log(kr, "group %.200s: no assignor in common with the other members", grp->name);
		return SL_KERR_INCONSISTENT_GROUP_PROTOCOL;
	}
	return SL_KERR_NONE;
}

void sl_kafka_join_group(struct sl_kafka_req *kr)
{
	const struct sl_kafka_join_group *j = &kr->rq.u.join_group;
	struct sl_kafka *k = kr->srv->kafka;
	struct sl_groups *g = &kr->srv->groups;
	struct sl_group *grp = sl_groups_find(g, j->group_id);
	/* Joining takes read on the group (broker/acl.h); the topics are checked when the member fetches them. */
	int16_t err = sl_kafka_allows(kr, SL_ACL_GROUP, j->group_id, SL_ACL_READ) ? join_refusal(kr, grp, j)
	                                                                          : SL_KERR_GROUP_AUTHORIZATION_FAILED;
	struct sl_member *m = NULL;
	if (err == SL_KERR_NONE && j->member_id[0] != '\0') {
		m = grp ? sl_group_member_find(grp, j->member_id) : NULL;
		if (m == NULL || !m->kafka)
			err = SL_KERR_UNKNOWN_MEMBER_ID;
	} else if (err == SL_KERR_NONE) {
		int rc = sl_group_member_add(g, j->group_id, kr->rq.client_id, (uint32_t)j->session_timeout_ms,
		                             now_ms(), &grp, &m);
		if (rc < 0) {
			sl_kafka_log(kr, "group %.200s: cannot add a member: %s", j->group_id,
			             rc == -E2BIG ? "the group is full" : strerror(-rc));
			err = rc == -E2BIG ? SL_KERR_GROUP_MAX_SIZE_REACHED : SL_KERR_UNKNOWN_SERVER_ERROR;
		}
	}
	struct sl_kafka_group *kg = err == SL_KERR_NONE ? kgroup_get(k, j->group_id) : NULL;
	if (err == SL_KERR_NONE && (kg == NULL || protocols_copy(m, j) < 0))
		err = SL_KERR_UNKNOWN_SERVER_ERROR;
	if (err != SL_KERR_NONE) {
		join_error(kr, err, j->member_id);
		sl_kafka_req_answer(kr);
		return;
	}
	m->kafka = 1;
	if (j->member_id[0] == '\0')
		member_host_set(m, kr->session.peer);
	m->session_timeout_ms = (uint32_t)j->session_timeout_ms;
	m->rebalance_timeout_ms = j->rebalance_timeout_ms > 0 ? (uint32_t)j->rebalance_timeout_ms : 0;
	m->last_heartbeat_ms = now_ms();
	if (strcmp(j->protocol_type, "consumer") == 0)
		subscription_apply(m, &m->protocols[0]);
	snprintf(grp->protocol_type, sizeof(grp->protocol_type), "%s", j->protocol_type);
	char member_id[SL_MEMBER_ID_BYTES_MAX];
	snprintf(member_id, sizeof(member_id), "%s", m->id);
	/* A second JoinGroup from the same member replaces its first. */
	struct kg_wait *old = wait_find(kg, member_id, 0);
	if (old)
		wait_fail(kg, old, SL_KERR_REBALANCE_IN_PROGRESS);
	prepare(kg, grp);
	if (park(kg, kr, member_id, 0) < 0) {
		join_error(kr, SL_KERR_UNKNOWN_SERVER_ERROR, member_id);
		sl_kafka_req_answer(kr);
		return;
	}
	join_check(k, kg);
}

/* ---- SyncGroup ---- */

/* The leader's assignments: stored on each member (bytes, and the partitions describe shows). */
static void assignments_store(struct sl_group *grp, const struct sl_kafka_sync_group *s)
{
	for (uint32_t i = 0; i < s->assignment_count; i++) {
		struct sl_member *m = sl_group_member_find(grp, s->assignments[i].member_id);
		const struct sl_kafka_bytes *b = &s->assignments[i].assignment;
		if (m == NULL || b->len < 0)
			continue;
		uint8_t *copy = malloc(b->len ? (size_t)b->len : 1);
		if (copy == NULL)
			continue; /* that member gets an empty assignment and rejoins */
		memcpy(copy, b->data, (size_t)b->len);
		free(m->assignment_bytes);
		m->assignment_bytes = copy;
		m->assignment_bytes_len = (uint32_t)b->len;
		if (strcmp(grp->protocol_type, "consumer") == 0)
			assignment_apply(m);
	}
}

void sl_kafka_sync_group(struct sl_kafka_req *kr)
{
	const struct sl_kafka_sync_group *s = &kr->rq.u.sync_group;
	struct sl_kafka *k = kr->srv->kafka;
	struct sl_group *grp = sl_groups_find(&kr->srv->groups, s->group_id);
	struct sl_member *m = grp ? sl_group_member_find(grp, s->member_id) : NULL;
	struct sl_kafka_group *kg = grp ? kgroup_get(k, s->group_id) : NULL;
	int16_t err = SL_KERR_NONE;
	if (!sl_kafka_allows(kr, SL_ACL_GROUP, s->group_id, SL_ACL_READ))
		err = SL_KERR_GROUP_AUTHORIZATION_FAILED;
	else if (m == NULL || !m->kafka)
		err = SL_KERR_UNKNOWN_MEMBER_ID;
	else if (kg == NULL)
		err = SL_KERR_UNKNOWN_SERVER_ERROR;
	else if (kg->state == KG_PREPARING)
		err = SL_KERR_REBALANCE_IN_PROGRESS;
	else if (s->generation_id != grp->generation)
		err = SL_KERR_ILLEGAL_GENERATION;
	if (err != SL_KERR_NONE) {
		sync_answer(kr, err, NULL, 0);
		sl_kafka_req_answer(kr);
		return;
	}
	m->last_heartbeat_ms = now_ms();
	if (kg->state == KG_AWAITING_SYNC && strcmp(m->id, grp->leader) == 0) {
		assignments_store(grp, s);
		kg->state = KG_STABLE;
		struct kg_wait *w = kg->waits;
		while (w) {
			struct kg_wait *next = w->next;
			if (w->sync) {
				const struct sl_member *wm = sl_group_member_find(grp, w->member_id);
				wait_unlink(kg, w);
				if (!w->kr->dropped)
					sync_answer(w->kr, wm ? SL_KERR_NONE : SL_KERR_UNKNOWN_MEMBER_ID,
					            wm ? wm->assignment_bytes : NULL,
					            wm ? wm->assignment_bytes_len : 0);
				sl_kafka_req_answer(w->kr);
				sl_kafka_req_unhold(w->kr);
				free(w);
			}
			w = next;
		}
	} else if (kg->state == KG_AWAITING_SYNC) {
		/* A follower waits for the leader's assignment. */
		struct kg_wait *old = wait_find(kg, m->id, 1);
		if (old)
			wait_fail(kg, old, SL_KERR_REBALANCE_IN_PROGRESS);
		if (park(kg, kr, m->id, 1) == 0)
			return;
		sync_answer(kr, SL_KERR_UNKNOWN_SERVER_ERROR, NULL, 0);
		sl_kafka_req_answer(kr);
		return;
	}
	sync_answer(kr, SL_KERR_NONE, m->assignment_bytes, m->assignment_bytes_len);
	sl_kafka_req_answer(kr);
}

/* ---- Heartbeat and LeaveGroup ---- */

void sl_kafka_heartbeat(struct sl_kafka_req *kr)
{
	const struct sl_kafka_heartbeat *h = &kr->rq.u.heartbeat;
	struct sl_kafka *k = kr->srv->kafka;
	struct sl_group *grp = sl_groups_find(&kr->srv->groups, h->group_id);
	struct sl_member *m = grp ? sl_group_member_find(grp, h->member_id) : NULL;
	int16_t err = SL_KERR_NONE;
	if (!sl_kafka_allows(kr, SL_ACL_GROUP, h->group_id, SL_ACL_READ)) {
		err = SL_KERR_GROUP_AUTHORIZATION_FAILED;
	} else if (m == NULL) {
		err = SL_KERR_UNKNOWN_MEMBER_ID;
	} else {
		m->last_heartbeat_ms = now_ms();
		struct sl_kafka_group *kg = kgroup_get(k, h->group_id);
		if (kg && kg->state != KG_PREPARING && h->generation_id != grp->generation)
			prepare(kg, grp); /* the generation moved on (a member left or expired): everyone rejoins */
		if (kg == NULL || kg->state == KG_PREPARING)
			err = SL_KERR_REBALANCE_IN_PROGRESS;
	}
	sl_kafka_head_begin(kr, 0);
	if (kr->rq.api_version >= 1)
		sl_kwrite_i32(&kr->head, 0); /* throttle_time_ms */
	sl_kwrite_i16(&kr->head, err);
	sl_kafka_req_answer(kr);
}

void sl_kafka_leave_group(struct sl_kafka_req *kr)
{
	const struct sl_kafka_leave_group *l = &kr->rq.u.leave_group;
	struct sl_kafka *k = kr->srv->kafka;
	struct sl_groups *g = &kr->srv->groups;
	int allowed = sl_kafka_allows(kr, SL_ACL_GROUP, l->group_id, SL_ACL_READ);
	struct sl_group *grp = allowed ? sl_groups_find(g, l->group_id) : NULL;
	struct sl_kafka_group *kg = grp ? kgroup_get(k, l->group_id) : NULL;
	int16_t *errs = sl_kafka_arena_alloc(&kr->arena, (l->member_count + 1) * sizeof(*errs));
	int16_t first = SL_KERR_NONE;
	for (uint32_t i = 0; i < l->member_count; i++) {
		int16_t err = allowed ? SL_KERR_UNKNOWN_MEMBER_ID : SL_KERR_GROUP_AUTHORIZATION_FAILED;
		if (grp && sl_group_leave(g, l->group_id, l->member_ids[i]) == 0) {
			err = SL_KERR_NONE;
			struct kg_wait *w;
			while (kg && (w = wait_find(kg, l->member_ids[i], 0)) != NULL)
				wait_fail(kg, w, SL_KERR_UNKNOWN_MEMBER_ID);
			while (kg && (w = wait_find(kg, l->member_ids[i], 1)) != NULL)
				wait_fail(kg, w, SL_KERR_UNKNOWN_MEMBER_ID);
		}
		if (errs)
			errs[i] = err;
		if (first == SL_KERR_NONE)
			first = err;
	}
	if (kg && grp) {
		prepare(kg, grp);
		join_check(k, kg);
	}
	struct sl_kwrite *w = &kr->head;
	int16_t v = kr->rq.api_version;
	sl_kafka_head_begin(kr, 0);
	if (v >= 1)
		sl_kwrite_i32(w, 0); /* throttle_time_ms */
	sl_kwrite_i16(w, v >= 3 ? SL_KERR_NONE : first);
	if (v >= 3) {
		sl_kwrite_i32(w, (int32_t)l->member_count);
		for (uint32_t i = 0; i < l->member_count; i++) {
			sl_kwrite_str(w, l->member_ids[i]);
			sl_kwrite_str(w, NULL); /* group_instance_id */
			sl_kwrite_i16(w, errs ? errs[i] : SL_KERR_UNKNOWN_SERVER_ERROR);
		}
	}
	sl_kafka_req_answer(kr);
}

/* ---- OffsetCommit: through the handler, one request for the whole commit (invariant 4) ---- */

static void commit_part(struct sl_kafka_req *kr, uint32_t index, struct sl_req *sub)
{
	const struct sl_kafka_offset_commit *c = &kr->rq.u.offset_commit;
	int16_t err = sub ? sl_kafka_error_of(sub->resp.error) : SL_KERR_UNKNOWN_SERVER_ERROR;
	if (err && sub && sub->resp.error_message)
		sl_kafka_log(kr, "group %.200s: %s", c->group_id, sub->resp.error_message);
	struct sl_kwrite *w = &kr->parts[index];
	if (kr->rq.api_version >= 3)
		sl_kwrite_i32(w, 0); /* throttle_time_ms */
	sl_kwrite_i32(w, (int32_t)c->topic_count);
	for (uint32_t t = 0; t < c->topic_count; t++) {
		sl_kwrite_str(w, c->topics[t].name);
		sl_kwrite_i32(w, (int32_t)c->topics[t].partition_count);
		for (uint32_t i = 0; i < c->topics[t].partition_count; i++) {
			sl_kwrite_i32(w, c->topics[t].partitions[i].index);
			sl_kwrite_i16(w,
			              c->topics[t].partitions[i].index < 0 ? SL_KERR_UNKNOWN_TOPIC_OR_PARTITION : err);
		}
	}
}

static void commit_done(struct sl_kafka_req *kr)
{
	sl_kafka_head_begin(kr, 0);
}

void sl_kafka_offset_commit(struct sl_kafka_req *kr)
{
	const struct sl_kafka_offset_commit *c = &kr->rq.u.offset_commit;
	if (sl_kafka_req_begin_subs(kr, 1) < 0) {
		sl_kafka_req_close_conn(kr);
		return;
	}
	kr->part_cb = commit_part;
	kr->done_cb = commit_done;
	size_t n = 0;
	for (uint32_t t = 0; t < c->topic_count; t++)
		for (uint32_t i = 0; i < c->topics[t].partition_count; i++)
			n += c->topics[t].partitions[i].index >= 0;
	struct sl_req *sub = sl_kafka_sub_new(kr, 0);
	struct {
		Synclog__Request request;
		Synclog__OffsetCommitRequest commit;
	} *m = sub ? sl_req_alloc(sub, sizeof(*m) +
	                                       c->topic_count * (sizeof(Synclog__OffsetCommitTopic) + sizeof(void *)) +
	                                       n * (sizeof(Synclog__OffsetCommitPartition) + sizeof(void *)))
	           : NULL;
	if (sub == NULL) {
		commit_part(kr, 0, NULL);
	} else if (m == NULL) {
		sl_kafka_sub_fail(sub);
	} else {
		Synclog__OffsetCommitTopic *ts = (Synclog__OffsetCommitTopic *)(m + 1);
		Synclog__OffsetCommitTopic **tps = (Synclog__OffsetCommitTopic **)(ts + c->topic_count);
		Synclog__OffsetCommitPartition *ps = (Synclog__OffsetCommitPartition *)(tps + c->topic_count);
		Synclog__OffsetCommitPartition **pps = (Synclog__OffsetCommitPartition **)(ps + n);
		synclog__request__init(&m->request);
		synclog__offset_commit_request__init(&m->commit);
		m->commit.group = (char *)c->group_id;
		m->commit.member_id = (char *)c->member_id;
		/* Kafka's simple commit (generation -1, no member) is an operator's commit for the handler. */
		m->commit.generation = c->generation_id;
		m->commit.topics = tps;
		size_t k = 0;
		for (uint32_t t = 0; t < c->topic_count; t++) {
			synclog__offset_commit_topic__init(&ts[t]);
			ts[t].topic = (char *)c->topics[t].name;
			ts[t].partitions = &pps[k];
			for (uint32_t i = 0; i < c->topics[t].partition_count; i++) {
				const struct sl_kafka_commit_partition *kp = &c->topics[t].partitions[i];
				if (kp->index < 0)
					continue;
				synclog__offset_commit_partition__init(&ps[k]);
				ps[k].partition = (uint32_t)kp->index;
				ps[k].offset = kp->offset;
				ps[k].metadata = (char *)(kp->metadata ? kp->metadata : "");
				pps[k] = &ps[k];
				k++;
				ts[t].n_partitions++;
			}
			tps[m->commit.n_topics++] = &ts[t];
		}
		m->request.body_case = SYNCLOG__REQUEST__BODY_OFFSET_COMMIT;
		m->request.offset_commit = &m->commit;
		sub->msg = &m->request;
		sl_kafka_sub_dispatch(sub);
	}
	sl_kafka_req_end_subs(kr);
}

/* ---- OffsetFetch, ListGroups, DescribeGroups: read from the groups' state ---- */

static void offset_fetch_partition(struct sl_kwrite *w, int16_t v, const struct sl_group *grp, const char *topic,
                                   int32_t partition, int16_t err)
{
	const struct sl_commit *c = grp && partition >= 0 && err == SL_KERR_NONE
	                                    ? sl_group_committed(grp, topic, (uint32_t)partition)
	                                    : NULL;
	sl_kwrite_i32(w, partition);
	sl_kwrite_i64(w, c ? c->offset : -1);
	if (v >= 5)
		sl_kwrite_i32(w, -1); /* committed_leader_epoch */
	sl_kwrite_str(w, c && c->metadata ? c->metadata : "");
	sl_kwrite_i16(w, partition < 0 ? SL_KERR_UNKNOWN_TOPIC_OR_PARTITION : err);
}

void sl_kafka_offset_fetch(struct sl_kafka_req *kr)
{
	const struct sl_kafka_offset_fetch *f = &kr->rq.u.offset_fetch;
	int16_t v = kr->rq.api_version;
	/* Seeing a group's offsets takes describe on it; refused, the group reads as having none. */
	int allowed = sl_kafka_allows(kr, SL_ACL_GROUP, f->group_id, SL_ACL_DESCRIBE);
	struct sl_group *grp = allowed ? sl_groups_find(&kr->srv->groups, f->group_id) : NULL;
	struct sl_kwrite *w = &kr->head;
	sl_kafka_head_begin(kr, 0);
	if (v >= 3)
		sl_kwrite_i32(w, 0); /* throttle_time_ms */
	if (f->all_topics) {
		/* Every committed offset of the group, topic by topic (commits are sorted by topic). */
		uint32_t topics = 0;
		for (uint32_t i = 0; grp && i < grp->commit_count; i++)
			topics += i == 0 || strcmp(grp->commits[i].topic, grp->commits[i - 1].topic) != 0;
		sl_kwrite_i32(w, (int32_t)topics);
		for (uint32_t i = 0; grp && i < grp->commit_count;) {
			uint32_t end = i;
			while (end < grp->commit_count && strcmp(grp->commits[end].topic, grp->commits[i].topic) == 0)
				end++;
			sl_kwrite_str(w, grp->commits[i].topic);
			sl_kwrite_i32(w, (int32_t)(end - i));
			for (uint32_t k = i; k < end; k++)
				offset_fetch_partition(w, v, grp, grp->commits[k].topic,
				                       (int32_t)grp->commits[k].partition, SL_KERR_NONE);
			i = end;
		}
	} else {
		sl_kwrite_i32(w, (int32_t)f->topic_count);
		for (uint32_t t = 0; t < f->topic_count; t++) {
			const struct sl_kafka_offset_fetch_topic *ft = &f->topics[t];
			struct sl_topic *topic = sl_topics_find(&kr->srv->topics, ft->name);
			sl_kwrite_str(w, ft->name);
			sl_kwrite_i32(w, (int32_t)ft->partition_count);
			for (uint32_t i = 0; i < ft->partition_count; i++) {
				int32_t p = ft->partitions[i];
				int16_t err = !allowed ? SL_KERR_GROUP_AUTHORIZATION_FAILED
				              : topic && p >= 0 && (uint32_t)p < topic->cfg.partitions
				                      ? SL_KERR_NONE
				                      : SL_KERR_UNKNOWN_TOPIC_OR_PARTITION;
				offset_fetch_partition(w, v, grp, ft->name, p, err);
			}
		}
	}
	if (v >= 2)
		sl_kwrite_i16(w, allowed ? SL_KERR_NONE : SL_KERR_GROUP_AUTHORIZATION_FAILED);
	sl_kafka_req_answer(kr);
}

void sl_kafka_list_groups(struct sl_kafka_req *kr)
{
	struct sl_groups *g = &kr->srv->groups;
	struct sl_kwrite *w = &kr->head;
	sl_kafka_head_begin(kr, 0);
	if (kr->rq.api_version >= 1)
		sl_kwrite_i32(w, 0); /* throttle_time_ms */
	sl_kwrite_i16(w, SL_KERR_NONE);
	/* Only the groups this principal may see (broker/acl.h): the count is patched once they are counted. */
	size_t count_at = w->len;
	sl_kwrite_i32(w, 0);
	uint32_t shown = 0;
	for (uint32_t n = 0; n < g->group_count; n++) {
		if (!sl_kafka_allows(kr, SL_ACL_GROUP, g->sorted[n]->name, SL_ACL_DESCRIBE))
			continue;
		sl_kwrite_str(w, g->sorted[n]->name);
		sl_kwrite_str(w, g->sorted[n]->protocol_type);
		shown++;
	}
	sl_kwrite_put_i32(w, count_at, (int32_t)shown);
	sl_kafka_req_answer(kr);
}

static const char *group_state(struct sl_kafka *k, const struct sl_group *grp)
{
	if (grp == NULL)
		return "Dead";
	for (struct sl_kafka_group *kg = k->groups; kg; kg = kg->next) {
		if (strcmp(kg->name, grp->name) != 0)
			continue;
		if (kg->state == KG_PREPARING)
			return "PreparingRebalance";
		if (kg->state == KG_AWAITING_SYNC)
			return "CompletingRebalance";
	}
	return grp->member_count ? "Stable" : "Empty";
}

void sl_kafka_describe_groups(struct sl_kafka_req *kr)
{
	const struct sl_kafka_describe_groups *d = &kr->rq.u.describe_groups;
	int16_t v = kr->rq.api_version;
	struct sl_kwrite *w = &kr->head;
	sl_kafka_head_begin(kr, 0);
	if (v >= 1)
		sl_kwrite_i32(w, 0); /* throttle_time_ms */
	sl_kwrite_i32(w, (int32_t)d->group_count);
	for (uint32_t i = 0; i < d->group_count; i++) {
		int allowed = sl_kafka_allows(kr, SL_ACL_GROUP, d->groups[i], SL_ACL_DESCRIBE);
		const struct sl_group *grp = allowed ? sl_groups_find(&kr->srv->groups, d->groups[i]) : NULL;
		sl_kwrite_i16(w, allowed ? SL_KERR_NONE : SL_KERR_GROUP_AUTHORIZATION_FAILED);
		sl_kwrite_str(w, d->groups[i]);
		sl_kwrite_str(w, group_state(kr->srv->kafka, grp));
		sl_kwrite_str(w, grp ? grp->protocol_type : "");
		sl_kwrite_str(w, grp ? grp->protocol : "");
		sl_kwrite_i32(w, grp ? (int32_t)grp->member_count : 0);
		for (uint32_t k = 0; grp && k < grp->member_count; k++) {
			const struct sl_member *m = &grp->members[k];
			const struct sl_group_protocol *gp = protocol_of(m, grp->protocol);
			sl_kwrite_str(w, m->id);
			if (v >= 4)
				sl_kwrite_str(w, NULL); /* group_instance_id */
			sl_kwrite_str(w, m->client_id);
			sl_kwrite_str(w, m->client_host);
			sl_kwrite_blob(w, gp ? gp->metadata : NULL, gp ? (int32_t)gp->metadata_len : 0);
			sl_kwrite_blob(w, m->assignment_bytes, (int32_t)m->assignment_bytes_len);
		}
		if (v >= 3)
			sl_kwrite_i32(w, INT32_MIN); /* authorized_operations: not computed */
	}
	sl_kafka_req_answer(kr);
}
