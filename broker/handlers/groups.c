/* Requests of consumer groups: join (answered at once, or held while the group forms or a forced reset becomes
 * durable), heartbeat, leave, offset commit (with an applier's counters and records found lost) and fetch,
 * paged list, describe (lag in records and in time, health state), alter (health settings), delete. The rules
 * are in broker/groups.h and proto/synclog.proto. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/base/clock.h"
#include "proto/base/assert.h"
#include "broker/compaction.h"
#include "broker/handlers/handlers.h"
#include "proto/batch.h"

/* A JoinGroup held until its group has a generation (groups.h, -EINPROGRESS). */
struct sl_join_wait {
	struct sl_req *req;
	char group[SL_GROUP_NAME_BYTES_MAX + 1];
	char member_id[SL_MEMBER_ID_BYTES_MAX];
	struct sl_join_wait *next, *prev;
};

static const char *str_or_empty(const char *s)
{
	return s ? s : "";
}

/* The assignment of a member as TopicPartitions messages in request memory. */
static Synclog__TopicPartitions **assignment_msgs(struct sl_req *req, const struct sl_member *m, size_t *n_out)
{
	Synclog__TopicPartitions **out = sl_req_alloc(req, (m->assignment_count + 1) * sizeof(*out));
	if (out == NULL)
		return NULL;
	for (uint32_t i = 0; i < m->assignment_count; i++) {
		Synclog__TopicPartitions *tp = sl_req_alloc(req, sizeof(*tp));
		uint32_t *parts = sl_req_alloc(req, (m->assignment[i].count + 1) * sizeof(*parts));
		if (tp == NULL || parts == NULL)
			return NULL;
		synclog__topic_partitions__init(tp);
		tp->topic = sl_req_strdup(req, m->assignment[i].topic);
		memcpy(parts, m->assignment[i].partitions, m->assignment[i].count * sizeof(*parts));
		tp->partitions = parts;
		tp->n_partitions = m->assignment[i].count;
		out[i] = tp;
	}
	*n_out = m->assignment_count;
	return out;
}

static void join_answer(struct sl_req *req, const struct sl_group *grp, const struct sl_member *m)
{
	Synclog__JoinGroupResponse *r = req->resp.join_group;
	if (m == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__UNKNOWN_MEMBER,
		            "the member left or was removed while its group formed: join again");
		return;
	}
	r->member_id = sl_req_strdup(req, m->id);
	r->generation = grp->generation;
	r->assignment = assignment_msgs(req, m, &r->n_assignment);
	r->heartbeat_interval_ms = m->session_timeout_ms / 3;
	r->reset_generation = grp->reset_generation;
}

/* ---- held joins ---- */

static void wait_unlink(struct sl_server *srv, struct sl_join_wait *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		srv->join_waits = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->next = w->prev = NULL;
}

/* The cancel hook of request.h: the client went away (drop) or the broker stops. */
static void join_cancel(struct sl_req *req, int drop)
{
	struct sl_server *srv = req->srv;
	struct sl_join_wait *w = NULL;
	for (struct sl_join_wait *x = srv->join_waits; x; x = x->next)
		if (x->req == req)
			w = x;
	SL_ASSERT(w != NULL);
	wait_unlink(srv, w);
	sl_req_unpark(req);
	sl_group_join_abandon(&srv->groups, w->group, w->member_id);
	free(w);
	if (!drop)
		sl_req_fail(req, SYNCLOG__ERROR_CODE__BROKER_SHUTTING_DOWN,
		            "broker is shutting down: join again later");
	sl_req_respond(req);
}

void sl_group_joins_wake(struct sl_server *srv)
{
	struct sl_join_wait *w = srv->join_waits;
	while (w != NULL) {
		struct sl_join_wait *next = w->next;
		struct sl_group *grp;
		struct sl_member *m;
		if (sl_group_join_ready(&srv->groups, w->group, w->member_id, &grp, &m)) {
			struct sl_req *req = w->req;
			wait_unlink(srv, w);
			sl_req_unpark(req);
			if (grp == NULL)
				sl_req_fail(req, SYNCLOG__ERROR_CODE__UNKNOWN_MEMBER,
				            "group '%.200s' was deleted while the member waited: join again", w->group);
			else
				join_answer(req, grp, m);
			free(w);
			sl_req_respond(req);
		}
		w = next;
	}
}

/* ---- join, heartbeat, leave ---- */

/* "ADDRESS" of "ADDRESS:PORT". */
static void peer_host(const struct sl_req *req, char *out, size_t cap)
{
	snprintf(out, cap, "%s", req->session->peer);
	char *colon = strrchr(out, ':');
	if (colon != NULL)
		*colon = '\0';
}

void sl_handle_join_group(struct sl_req *req)
{
	Synclog__JoinGroupRequest *jr = req->msg->join_group;
	struct sl_server *srv = req->srv;
	Synclog__JoinGroupResponse *r = sl_req_alloc(req, sizeof(*r));
	if (r == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
		sl_req_respond(req);
		return;
	}
	synclog__join_group_response__init(r);
	req->resp.body_case = SYNCLOG__RESPONSE__BODY_JOIN_GROUP;
	req->resp.join_group = r;
	for (size_t i = 0; i < jr->n_topics; i++) {
		if (sl_topics_find(&srv->topics, jr->topics[i]) == NULL) {
			sl_req_fail(req, SYNCLOG__ERROR_CODE__UNKNOWN_TOPIC,
			            "cannot subscribe to unknown topic '%.200s'", jr->topics[i]);
			sl_req_respond(req);
			return;
		}
	}
	char host[SL_CLIENT_HOST_BYTES_MAX];
	peer_host(req, host, sizeof(host));
	struct sl_group *grp;
	struct sl_member *m;
	int rc = sl_group_join(&srv->groups, str_or_empty(jr->group), jr->member_id, jr->client_id, host,
	                       jr->group_instance_id, jr->topics, (uint32_t)jr->n_topics, jr->session_timeout_ms,
	                       sl_clock_wall_ms(), &grp, &m);
	switch (rc) {
	case 0:
		join_answer(req, grp, m);
		break;
	case -EINPROGRESS: {
		struct sl_join_wait *w = calloc(1, sizeof(*w));
		if (w == NULL) {
			sl_group_join_abandon(&srv->groups, grp->name, m->id);
			sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
			break;
		}
		w->req = req;
		snprintf(w->group, sizeof(w->group), "%s", grp->name);
		snprintf(w->member_id, sizeof(w->member_id), "%s", m->id);
		w->next = srv->join_waits;
		if (w->next)
			w->next->prev = w;
		srv->join_waits = w;
		sl_req_park(req, join_cancel);
		return;
	}
	case -ENOENT:
		sl_req_fail(req, SYNCLOG__ERROR_CODE__UNKNOWN_MEMBER,
		            "member '%.200s' is not in group '%.200s' (expired or left): join without a member id",
		            str_or_empty(jr->member_id), str_or_empty(jr->group));
		break;
	case -ERANGE:
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INVALID_REQUEST, "session timeout %u ms out of range (%u to %u)",
		            jr->session_timeout_ms, SL_SESSION_TIMEOUT_MS_MIN, SL_SESSION_TIMEOUT_MS_MAX);
		break;
	case -E2BIG:
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INVALID_REQUEST,
		            "group full (%d members) or too many topics (%d)", SL_GROUP_MEMBERS_MAX,
		            SL_MEMBER_TOPICS_MAX);
		break;
	case -EUSERS:
		sl_req_fail(req, SYNCLOG__ERROR_CODE__GROUP_LIMIT,
		            "cannot create group '%.200s': the broker holds %u groups (--groups-max); delete finished "
		            "groups with `synclog group delete` or raise the limit",
		            str_or_empty(jr->group), srv->groups.settings.groups_max);
		break;
	case -EINVAL:
		sl_req_fail(
		        req, SYNCLOG__ERROR_CODE__INVALID_GROUP_NAME,
		        "invalid group name or topic list: names are 1 to 200 of [A-Za-z0-9._-], at least one topic");
		break;
	default:
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "join failed: %s", strerror(-rc));
		break;
	}
	sl_req_respond(req);
}

void sl_handle_heartbeat(struct sl_req *req)
{
	Synclog__HeartbeatRequest *hr = req->msg->heartbeat;
	Synclog__HeartbeatResponse *r = sl_req_alloc(req, sizeof(*r));
	if (r == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
		sl_req_respond(req);
		return;
	}
	synclog__heartbeat_response__init(r);
	req->resp.body_case = SYNCLOG__RESPONSE__BODY_HEARTBEAT;
	req->resp.heartbeat = r;
	int rc = sl_group_heartbeat(&req->srv->groups, str_or_empty(hr->group), str_or_empty(hr->member_id),
	                            hr->generation, sl_clock_wall_ms());
	struct sl_group *grp = sl_groups_find(&req->srv->groups, str_or_empty(hr->group));
	if (grp != NULL)
		r->reset_generation = grp->reset_generation;
	if (rc == -ENOENT)
		sl_req_fail(req, SYNCLOG__ERROR_CODE__UNKNOWN_MEMBER, "member not in group '%.200s': join again",
		            str_or_empty(hr->group));
	else if (rc == -ESTALE)
		sl_req_fail(req, SYNCLOG__ERROR_CODE__REBALANCE_IN_PROGRESS,
		            "group '%.200s' has a new generation: join again to get your partitions",
		            str_or_empty(hr->group));
	sl_req_respond(req);
}

void sl_handle_leave_group(struct sl_req *req)
{
	Synclog__LeaveGroupRequest *lr = req->msg->leave_group;
	static Synclog__LeaveGroupResponse empty = SYNCLOG__LEAVE_GROUP_RESPONSE__INIT;
	req->resp.body_case = SYNCLOG__RESPONSE__BODY_LEAVE_GROUP;
	req->resp.leave_group = &empty;
	if (sl_group_leave(&req->srv->groups, str_or_empty(lr->group), str_or_empty(lr->member_id)) < 0)
		sl_req_fail(req, SYNCLOG__ERROR_CODE__UNKNOWN_MEMBER, "member not in group '%.200s'",
		            str_or_empty(lr->group));
	sl_req_respond(req);
}

/* ---- commits ---- */

/* A member's commit is durable. It changes no group's state (only an operator's commit ends a reset), so no held
 * join is woken: the wake walks every held join, and each commit paid a walk of all of them (20,000 commits of 1,000
 * groups while 2,000 joins were held by the initial delay: 2.33 broker CPU-s, 0.32 without the walks). */
static void member_commit_done_cb(void *ctx, int status)
{
	struct sl_req *req = ctx;
	if (status < 0)
		sl_req_fail(req, SYNCLOG__ERROR_CODE__STORAGE_ERROR, "the change could not be made durable: %s",
		            strerror(-status));
	req->pending--;
	if (!req->responded)
		sl_req_respond(req);
	else
		sl_req_release(req);
}

/* An operator's change (commit, alter, delete) is durable: a forced reset that became durable (or failed) released
 * its group's joins. */
static void commit_done_cb(void *ctx, int status)
{
	struct sl_req *req = ctx;
	sl_group_joins_wake(req->srv);
	member_commit_done_cb(req, status);
}

/* The member named by a commit, or an answer saying why the commit is refused (returns -1). */
static int commit_member_check(struct sl_req *req, struct sl_group *grp, const char *group, const char *member,
                               int32_t generation)
{
	int found = 0;
	for (uint32_t i = 0; grp && i < grp->member_count; i++)
		found |= strcmp(grp->members[i].id, member) == 0;
	if (!found) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__UNKNOWN_MEMBER,
		            "member '%.200s' is not in group '%.200s': join again", member, group);
		return -1;
	}
	if (generation != grp->generation || grp->state == SL_GROUP_RESETTING) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__ILLEGAL_GENERATION,
		            "commit from generation %d refused: group '%.200s' is at generation %d (this member was "
		            "replaced or the group's offsets were reset; join again)",
		            generation, group, grp->generation);
		return -1;
	}
	return 0;
}

/* The request's offsets as commit entries in request memory; NULL after answering why not. */
static struct sl_commit_entry *commit_entries(struct sl_req *req, const Synclog__OffsetCommitRequest *cr, size_t *k_out)
{
	struct sl_server *srv = req->srv;
	size_t n = 0;
	for (size_t t = 0; t < cr->n_topics; t++)
		n += cr->topics[t]->n_partitions;
	struct sl_commit_entry *entries = sl_req_alloc(req, (n + 1) * sizeof(*entries));
	if (entries == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
		return NULL;
	}
	size_t k = 0;
	for (size_t t = 0; t < cr->n_topics; t++) {
		Synclog__OffsetCommitTopic *ct = cr->topics[t];
		struct sl_topic *topic = sl_topics_find(&srv->topics, str_or_empty(ct->topic));
		if (topic == NULL) {
			sl_req_fail(req, SYNCLOG__ERROR_CODE__UNKNOWN_TOPIC, "unknown topic '%.200s'",
			            str_or_empty(ct->topic));
			return NULL;
		}
		for (size_t p = 0; p < ct->n_partitions; p++) {
			Synclog__OffsetCommitPartition *cp = ct->partitions[p];
			if (cp->partition >= topic->cfg.partitions || cp->offset < 0 || cp->records_lost < 0) {
				sl_req_fail(req,
				            cp->partition >= topic->cfg.partitions
				                    ? SYNCLOG__ERROR_CODE__UNKNOWN_PARTITION
				                    : SYNCLOG__ERROR_CODE__INVALID_REQUEST,
				            "invalid commit for %.200s/%u at offset %lld", topic->cfg.name,
				            cp->partition, (long long)cp->offset);
				return NULL;
			}
			entries[k++] = (struct sl_commit_entry){topic->cfg.name, cp->partition, cp->offset,
			                                        cp->metadata, cp->records_lost};
		}
	}
	*k_out = k;
	return entries;
}

static void applier_report(struct sl_group *grp, const Synclog__ApplierCounters *a)
{
	struct sl_applier_report r = {.applied = a->applied,
	                              .stale = a->stale,
	                              .duplicate = a->duplicate,
	                              .deleted = a->deleted,
	                              .dead_lettered = a->dead_lettered};
	snprintf(r.target, sizeof(r.target), "%s", str_or_empty(a->target));
	sl_group_applier_report(grp, &r);
}

void sl_handle_offset_commit(struct sl_req *req)
{
	Synclog__OffsetCommitRequest *cr = req->msg->offset_commit;
	static Synclog__OffsetCommitResponse empty = SYNCLOG__OFFSET_COMMIT_RESPONSE__INIT;
	req->resp.body_case = SYNCLOG__RESPONSE__BODY_OFFSET_COMMIT;
	req->resp.offset_commit = &empty;
	struct sl_server *srv = req->srv;
	const char *group = str_or_empty(cr->group);
	if (sl_group_name_check(group) != 0) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INVALID_GROUP_NAME, "invalid group name '%.200s'", group);
		sl_req_respond(req);
		return;
	}
	struct sl_group *grp = sl_groups_find(&srv->groups, group);
	const char *member = str_or_empty(cr->member_id);
	int by_operator = member[0] == '\0';
	if (by_operator && grp && grp->member_count > 0 && !cr->force) {
		/* An operator's commit: only while nobody consumes, unless forced. */
		sl_req_fail(req, SYNCLOG__ERROR_CODE__GROUP_NOT_EMPTY,
		            "group '%.200s' has %u live members: stop them first or pass --force", group,
		            grp->member_count);
		sl_req_respond(req);
		return;
	}
	if (!by_operator && commit_member_check(req, grp, group, member, cr->generation) != 0) {
		sl_req_respond(req);
		return;
	}
	size_t k = 0;
	struct sl_commit_entry *entries = commit_entries(req, cr, &k);
	if (entries == NULL) {
		sl_req_respond(req);
		return;
	}
	if (!by_operator && cr->applier != NULL)
		applier_report(grp, cr->applier);
	if (k == 0) {
		sl_req_respond(req);
		return;
	}
	/* A forced reset with live members fences them now (so nothing they consumed overwrites it) and lets
	 * them join again once it is durable, to start from the new offsets. */
	int fenced = by_operator && grp && grp->member_count > 0;
	if (fenced)
		sl_group_reset_begin(&srv->groups, grp);
	req->pending++;
	int rc = sl_groups_commit(&srv->groups, group, entries, (uint32_t)k, by_operator ? (fenced ? 2 : 1) : 0,
	                          by_operator ? commit_done_cb : member_commit_done_cb, req);
	if (rc < 0) {
		req->pending--;
		if (fenced)
			sl_group_reset_end(&srv->groups, group);
		if (by_operator)
			sl_group_joins_wake(srv);
		if (rc == -EUSERS)
			sl_req_fail(req, SYNCLOG__ERROR_CODE__GROUP_LIMIT,
			            "cannot create group '%.200s': the broker holds %u groups (--groups-max); delete "
			            "finished groups with `synclog group delete` or raise the limit",
			            group, srv->groups.settings.groups_max);
		else
			sl_req_fail(req,
			            rc == -EAGAIN ? SYNCLOG__ERROR_CODE__THROTTLED
			                          : SYNCLOG__ERROR_CODE__INVALID_REQUEST,
			            "commit refused: %s",
			            rc == -EAGAIN ? "too many commits in flight, retry" : strerror(-rc));
		sl_req_respond(req);
	}
}

void sl_handle_offset_fetch(struct sl_req *req)
{
	Synclog__OffsetFetchRequest *fr = req->msg->offset_fetch;
	struct sl_server *srv = req->srv;
	Synclog__OffsetFetchResponse *r = sl_req_alloc(req, sizeof(*r));
	if (r == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
		sl_req_respond(req);
		return;
	}
	synclog__offset_fetch_response__init(r);
	req->resp.body_case = SYNCLOG__RESPONSE__BODY_OFFSET_FETCH;
	req->resp.offset_fetch = r;
	struct sl_group *grp = sl_groups_find(&srv->groups, str_or_empty(fr->group));
	r->reset_generation = grp ? grp->reset_generation : 0;
	size_t n = 0;
	for (size_t t = 0; t < fr->n_topics; t++) {
		struct sl_topic *topic = sl_topics_find(&srv->topics, str_or_empty(fr->topics[t]->topic));
		if (topic == NULL) {
			sl_req_fail(req, SYNCLOG__ERROR_CODE__UNKNOWN_TOPIC, "unknown topic '%.200s'",
			            str_or_empty(fr->topics[t]->topic));
			sl_req_respond(req);
			return;
		}
		n += fr->topics[t]->n_partitions ? fr->topics[t]->n_partitions : topic->cfg.partitions;
	}
	r->offsets = sl_req_alloc(req, (n + 1) * sizeof(*r->offsets));
	if (r->offsets == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
		sl_req_respond(req);
		return;
	}
	for (size_t t = 0; t < fr->n_topics; t++) {
		Synclog__TopicPartitions *tp = fr->topics[t];
		struct sl_topic *topic = sl_topics_find(&srv->topics, tp->topic);
		size_t np = tp->n_partitions ? tp->n_partitions : topic->cfg.partitions;
		for (size_t i = 0; i < np; i++) {
			uint32_t p = tp->n_partitions ? tp->partitions[i] : (uint32_t)i;
			Synclog__CommittedOffset *co = sl_req_alloc(req, sizeof(*co));
			if (co == NULL)
				break;
			synclog__committed_offset__init(co);
			co->topic = topic->cfg.name;
			co->partition = p;
			co->offset = -1;
			const struct sl_commit *c = grp ? sl_group_committed(grp, topic->cfg.name, p) : NULL;
			if (c) {
				co->offset = c->offset;
				co->commit_ms = c->commit_ms;
				co->metadata = c->metadata;
			}
			r->offsets[r->n_offsets++] = co;
		}
	}
	sl_req_respond(req);
}

/* ---- list and describe ---- */

/* The summary of a group (shared with the status handler): members, state, lag over its partitions. */
Synclog__GroupSummary *sl_group_summary_msg(struct sl_req *req, struct sl_group *grp, int64_t now_ms)
{
	Synclog__GroupSummary *s = sl_req_alloc(req, sizeof(*s));
	if (s == NULL)
		return NULL;
	synclog__group_summary__init(s);
	s->group = grp->name;
	s->members = grp->member_count;
	s->generation = grp->generation;
	s->state = (char *)sl_health_name(grp->worst);
	s->state_since_ms = grp->worst_since_ms;
	/* As of the last health tick (at most a second old): a page of a thousand groups reads no disk. */
	(void)now_ms;
	for (uint32_t i = 0; i < grp->commit_count; i++) {
		const struct sl_commit *c = &grp->commits[i];
		if (c->lag < 0)
			continue;
		s->lag += c->lag;
		if (c->lag_ms > s->lag_ms)
			s->lag_ms = c->lag_ms;
	}
	return s;
}

void sl_handle_list_groups(struct sl_req *req)
{
	Synclog__ListGroupsRequest *lr = req->msg->list_groups;
	struct sl_groups *g = &req->srv->groups;
	uint32_t limit = lr->limit == 0                        ? SL_LIST_GROUPS_PAGE_DEFAULT
	                 : lr->limit > SL_LIST_GROUPS_PAGE_MAX ? SL_LIST_GROUPS_PAGE_MAX
	                                                       : lr->limit;
	Synclog__ListGroupsResponse *r = sl_req_alloc(req, sizeof(*r));
	Synclog__GroupSummary **list = sl_req_alloc(req, (limit + 1) * sizeof(*list));
	struct sl_group **page = sl_req_alloc(req, (limit + 1) * sizeof(*page));
	if (r == NULL || list == NULL || page == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
		sl_req_respond(req);
		return;
	}
	synclog__list_groups_response__init(r);
	r->groups = list;
	uint32_t n = sl_groups_page(g, lr->start_after, page, limit);
	int64_t now = sl_clock_wall_ms();
	uint32_t i;
	for (i = 0; i < n; i++) {
		/* Only the groups this principal may see (security.h); everything with authentication off. A page
		 * may so hold fewer than its limit, and still say where to go on. */
		if (!sl_security_allows(req, SL_ACL_GROUP, page[i]->name, SL_ACL_DESCRIBE))
			continue;
		Synclog__GroupSummary *s = sl_group_summary_msg(req, page[i], now);
		if (s == NULL)
			break;
		list[r->n_groups++] = s;
	}
	/* More after this page: say where to go on. */
	struct sl_group *peek;
	if (n == limit && i == n && sl_groups_page(g, page[n - 1]->name, &peek, 1) == 1)
		r->next_start_after = page[n - 1]->name;
	req->resp.body_case = SYNCLOG__RESPONSE__BODY_LIST_GROUPS;
	req->resp.list_groups = r;
	sl_req_respond(req);
}

Synclog__ApplierCounters *sl_applier_msg(struct sl_req *req, const struct sl_applier_report *a)
{
	Synclog__ApplierCounters *m = sl_req_alloc(req, sizeof(*m));
	if (m == NULL)
		return NULL;
	synclog__applier_counters__init(m);
	m->applied = a->applied;
	m->stale = a->stale;
	m->duplicate = a->duplicate;
	m->deleted = a->deleted;
	m->dead_lettered = a->dead_lettered;
	m->target = (char *)a->target;
	m->reported_ms = a->reported_ms;
	return m;
}

static Synclog__GroupPartitionLag *lag_row(struct sl_req *req, struct sl_group *grp, struct sl_commit *c, int64_t now)
{
	Synclog__GroupPartitionLag *row = sl_req_alloc(req, sizeof(*row));
	if (row == NULL)
		return NULL;
	synclog__group_partition_lag__init(row);
	row->topic = c->topic;
	row->partition = c->partition;
	row->committed = c->offset;
	row->last_commit_ms = c->offset >= 0 ? c->commit_ms : 0;
	const struct sl_member *owner = sl_group_owner(grp, c->topic, c->partition);
	row->member_id = owner ? (char *)owner->id : "";
	row->state = (char *)sl_health_name(c->state);
	row->state_since_ms = c->state_since_ms;
	row->records_lost = c->records_lost;
	const struct sl_topic *topic = sl_topics_find(&req->srv->topics, c->topic);
	row->stall_after_ms = sl_group_topic_stall_after_ms(&req->srv->groups, grp, topic);
	if (sl_group_lag(&req->srv->groups, c, now, &row->next_offset, &row->lag, &row->lag_ms) != 0) {
		row->next_offset = row->lag = -1;
		return row;
	}
	if (topic != NULL)
		row->at_risk = sl_compaction_lag_risk(req, topic, c->partition, row->committed, row->lag_ms, now);
	return row;
}

void sl_handle_describe_group(struct sl_req *req)
{
	const char *name = str_or_empty(req->msg->describe_group->group);
	struct sl_server *srv = req->srv;
	struct sl_group *grp = sl_groups_find(&srv->groups, name);
	if (grp == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__UNKNOWN_GROUP, "unknown group '%.200s'", name);
		sl_req_respond(req);
		return;
	}
	Synclog__DescribeGroupResponse *r = sl_req_alloc(req, sizeof(*r));
	Synclog__GroupSettings *settings = sl_req_alloc(req, sizeof(*settings));
	if (r == NULL || settings == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
		sl_req_respond(req);
		return;
	}
	synclog__describe_group_response__init(r);
	synclog__group_settings__init(settings);
	settings->stall_after_ms = sl_group_stall_after_ms(&srv->groups, grp);
	settings->window = sl_group_window(&srv->groups, grp);
	r->settings = settings;
	r->group = grp->name;
	r->generation = grp->generation;
	r->reset_generation = grp->reset_generation;
	r->state = (char *)sl_health_name(grp->worst);
	if (grp->applier.reported_ms > 0)
		r->applier = sl_applier_msg(req, &grp->applier);
	r->members = sl_req_alloc(req, (grp->member_count + 1) * sizeof(*r->members));
	for (uint32_t i = 0; r->members && i < grp->member_count; i++) {
		const struct sl_member *m = &grp->members[i];
		Synclog__GroupMember *gm = sl_req_alloc(req, sizeof(*gm));
		if (gm == NULL)
			break;
		synclog__group_member__init(gm);
		gm->member_id = (char *)m->id;
		gm->client_id = (char *)m->client_id;
		gm->client_host = (char *)m->client_host;
		gm->group_instance_id = (char *)m->instance_id;
		gm->last_heartbeat_ms = m->last_heartbeat_ms;
		gm->assignment = assignment_msgs(req, m, &gm->n_assignment);
		r->members[r->n_members++] = gm;
	}
	/* Rows: every partition of every topic the group commits to or subscribes to, in topic order; partitions the
	 * broker does not track (never committed, no member subscribed) are shown as what a consumer of the group
	 * would start from, and judged without a history: idle when there is nothing to read, stopped otherwise. */
	int64_t now = sl_clock_wall_ms();
	sl_group_track_all(&srv->groups, grp, now);
	size_t rows_max = 0;
	for (uint32_t i = 0; i < grp->commit_count; i++) {
		if (i > 0 && strcmp(grp->commits[i].topic, grp->commits[i - 1].topic) == 0)
			continue;
		struct sl_topic *t = sl_topics_find(&srv->topics, grp->commits[i].topic);
		rows_max += t ? t->cfg.partitions : 0;
	}
	r->partitions = sl_req_alloc(req, (rows_max + 1) * sizeof(*r->partitions));
	for (uint32_t i = 0; r->partitions && i < grp->commit_count;) {
		struct sl_topic *t = sl_topics_find(&srv->topics, grp->commits[i].topic);
		uint32_t j = i;
		while (j < grp->commit_count && strcmp(grp->commits[j].topic, grp->commits[i].topic) == 0)
			j++;
		/* A deleted topic's commits stay until the group is deleted, but are not shown. */
		for (uint32_t p = 0; t != NULL && p < t->cfg.partitions; p++) {
			struct sl_commit *c = NULL, tmp;
			for (uint32_t k = i; k < j && c == NULL; k++)
				if (grp->commits[k].partition == p)
					c = &grp->commits[k];
			if (c == NULL) {
				memset(&tmp, 0, sizeof(tmp));
				tmp.topic = t->cfg.name;
				tmp.partition = p;
				tmp.offset = -1;
				tmp.ts_offset = -1;
				c = &tmp;
			}
			Synclog__GroupPartitionLag *row = lag_row(req, grp, c, now);
			if (row == NULL)
				continue;
			if (c == &tmp) {
				row->topic = t->cfg.name;
				row->state = row->lag > 0 ? "stopped" : "idle";
				row->state_since_ms = 0;
			}
			r->partitions[r->n_partitions++] = row;
		}
		i = j;
	}
	req->resp.body_case = SYNCLOG__RESPONSE__BODY_DESCRIBE_GROUP;
	req->resp.describe_group = r;
	sl_req_respond(req);
}

/* ---- alter and delete ---- */

void sl_handle_alter_group(struct sl_req *req)
{
	Synclog__AlterGroupRequest *ar = req->msg->alter_group;
	static Synclog__AlterGroupResponse empty = SYNCLOG__ALTER_GROUP_RESPONSE__INIT;
	req->resp.body_case = SYNCLOG__RESPONSE__BODY_ALTER_GROUP;
	req->resp.alter_group = &empty;
	const char *group = str_or_empty(ar->group);
	if (sl_group_name_check(group) != 0 || ar->settings == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INVALID_REQUEST,
		            "alter group needs a valid group name and settings");
		sl_req_respond(req);
		return;
	}
	req->pending++;
	int rc = sl_groups_alter(&req->srv->groups, group, ar->settings->stall_after_ms, ar->settings->window,
	                         commit_done_cb, req);
	if (rc < 0) {
		req->pending--;
		if (rc == -ERANGE)
			sl_req_fail(req, SYNCLOG__ERROR_CODE__INVALID_REQUEST,
			            "stall-after must be 0 (the broker's) or at least %d ms, the window 0 or %u to %u "
			            "samples",
			            SL_STALL_AFTER_MS_MIN, SL_HEALTH_WINDOW_MIN, SL_HEALTH_WINDOW_MAX);
		else if (rc == -EUSERS)
			sl_req_fail(req, SYNCLOG__ERROR_CODE__GROUP_LIMIT,
			            "cannot create group '%.200s': --groups-max reached", group);
		else
			sl_req_fail(req,
			            rc == -EAGAIN ? SYNCLOG__ERROR_CODE__THROTTLED : SYNCLOG__ERROR_CODE__STORAGE_ERROR,
			            "alter group '%.200s' failed: %s", group, strerror(-rc));
		sl_req_respond(req);
	}
}

void sl_handle_delete_group(struct sl_req *req)
{
	Synclog__DeleteGroupRequest *dr = req->msg->delete_group;
	static Synclog__DeleteGroupResponse empty = SYNCLOG__DELETE_GROUP_RESPONSE__INIT;
	req->resp.body_case = SYNCLOG__RESPONSE__BODY_DELETE_GROUP;
	req->resp.delete_group = &empty;
	struct sl_groups *g = &req->srv->groups;
	const char *name = str_or_empty(dr->group);
	struct sl_group *grp = sl_groups_find(g, name);
	if (grp == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__UNKNOWN_GROUP, "unknown group '%.200s'", name);
		sl_req_respond(req);
		return;
	}
	if (grp->member_count > 0 && !dr->force) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__GROUP_NOT_EMPTY,
		            "group '%.200s' has %u live members: stop them first or pass --force", name,
		            grp->member_count);
		sl_req_respond(req);
		return;
	}
	while (grp->member_count > 0)
		sl_group_leave(g, name, grp->members[0].id);
	sl_group_joins_wake(req->srv);
	req->pending++;
	int rc = sl_groups_delete(g, name, commit_done_cb, req);
	if (rc < 0) {
		req->pending--;
		sl_req_fail(req, rc == -EAGAIN ? SYNCLOG__ERROR_CODE__THROTTLED : SYNCLOG__ERROR_CODE__STORAGE_ERROR,
		            "delete of group '%.200s' failed: %s", name, strerror(-rc));
		sl_req_respond(req);
	}
}
