/* Requests of consumer groups: join, heartbeat, leave, offset commit and fetch, list, describe (with lag in
 * records and in time), delete. The rules are in groups.h and proto/synclog.proto. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/base/clock.h"
#include "proto/base/assert.h"
#include "broker/compaction.h"
#include "broker/handlers/handlers.h"
#include "proto/batch.h"

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

void sl_handle_join_group(struct sl_req *req)
{
	Synclog__JoinGroupRequest *jr = req->msg->join_group;
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
		if (sl_topics_find(&req->srv->topics, jr->topics[i]) == NULL) {
			sl_req_fail(req, SYNCLOG__ERROR_CODE__UNKNOWN_TOPIC,
			            "cannot subscribe to unknown topic '%.200s'", jr->topics[i]);
			sl_req_respond(req);
			return;
		}
	}
	struct sl_group *grp;
	struct sl_member *m;
	int rc = sl_group_join(&req->srv->groups, str_or_empty(jr->group), jr->member_id, jr->client_id, jr->topics,
	                       (uint32_t)jr->n_topics, jr->session_timeout_ms, sl_clock_wall_ms(), &grp, &m);
	switch (rc) {
	case 0:
		r->member_id = sl_req_strdup(req, m->id);
		r->generation = grp->generation;
		r->assignment = assignment_msgs(req, m, &r->n_assignment);
		r->heartbeat_interval_ms = m->session_timeout_ms / 3;
		break;
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
	static Synclog__HeartbeatResponse empty = SYNCLOG__HEARTBEAT_RESPONSE__INIT;
	req->resp.body_case = SYNCLOG__RESPONSE__BODY_HEARTBEAT;
	req->resp.heartbeat = &empty;
	int rc = sl_group_heartbeat(&req->srv->groups, str_or_empty(hr->group), str_or_empty(hr->member_id),
	                            hr->generation, sl_clock_wall_ms());
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

static void commit_done_cb(void *ctx, int status)
{
	struct sl_req *req = ctx;
	if (status < 0)
		sl_req_fail(req, SYNCLOG__ERROR_CODE__STORAGE_ERROR, "the commit could not be made durable: %s",
		            strerror(-status));
	req->pending--;
	if (!req->responded)
		sl_req_respond(req);
	else
		sl_req_release(req);
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
	if (member[0] == '\0') {
		/* An operator's commit: only while nobody consumes, unless forced. */
		if (grp && grp->member_count > 0 && !cr->force) {
			sl_req_fail(req, SYNCLOG__ERROR_CODE__GROUP_NOT_EMPTY,
			            "group '%.200s' has %u live members: stop them first or pass --force", group,
			            grp->member_count);
			sl_req_respond(req);
			return;
		}
	} else {
		int found = 0;
		for (uint32_t i = 0; grp && i < grp->member_count; i++)
			found |= strcmp(grp->members[i].id, member) == 0;
		if (!found) {
			sl_req_fail(req, SYNCLOG__ERROR_CODE__UNKNOWN_MEMBER,
			            "member '%.200s' is not in group '%.200s': join again", member, group);
			sl_req_respond(req);
			return;
		}
		if (cr->generation != grp->generation) {
			sl_req_fail(
			        req, SYNCLOG__ERROR_CODE__ILLEGAL_GENERATION,
			        "commit from generation %d refused: group '%.200s' is at generation %d (this member "
			        "was replaced; join again)",
			        cr->generation, group, grp->generation);
			sl_req_respond(req);
			return;
		}
	}
	size_t n = 0;
	for (size_t t = 0; t < cr->n_topics; t++)
		n += cr->topics[t]->n_partitions;
	struct sl_commit_entry *entries = sl_req_alloc(req, (n + 1) * sizeof(*entries));
	if (entries == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
		sl_req_respond(req);
		return;
	}
	size_t k = 0;
	for (size_t t = 0; t < cr->n_topics; t++) {
		Synclog__OffsetCommitTopic *ct = cr->topics[t];
		struct sl_topic *topic = sl_topics_find(&srv->topics, str_or_empty(ct->topic));
		if (topic == NULL) {
			sl_req_fail(req, SYNCLOG__ERROR_CODE__UNKNOWN_TOPIC, "unknown topic '%.200s'",
			            str_or_empty(ct->topic));
			sl_req_respond(req);
			return;
		}
		for (size_t p = 0; p < ct->n_partitions; p++) {
			Synclog__OffsetCommitPartition *cp = ct->partitions[p];
			if (cp->partition >= topic->cfg.partitions || cp->offset < 0) {
				sl_req_fail(req,
				            cp->offset < 0 ? SYNCLOG__ERROR_CODE__INVALID_REQUEST
				                           : SYNCLOG__ERROR_CODE__UNKNOWN_PARTITION,
				            "invalid commit for %.200s/%u at offset %lld", topic->cfg.name,
				            cp->partition, (long long)cp->offset);
				sl_req_respond(req);
				return;
			}
			entries[k++] =
			        (struct sl_commit_entry){topic->cfg.name, cp->partition, cp->offset, cp->metadata};
		}
	}
	if (k == 0) {
		sl_req_respond(req);
		return;
	}
	req->pending++;
	int rc = sl_groups_commit(&srv->groups, group, entries, (uint32_t)k, commit_done_cb, req);
	if (rc < 0) {
		req->pending--;
		sl_req_fail(req, rc == -EAGAIN ? SYNCLOG__ERROR_CODE__THROTTLED : SYNCLOG__ERROR_CODE__INVALID_REQUEST,
		            "commit refused: %s", rc == -EAGAIN ? "too many commits in flight, retry" : strerror(-rc));
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

void sl_handle_list_groups(struct sl_req *req)
{
	struct sl_groups *g = &req->srv->groups;
	Synclog__ListGroupsResponse *r = sl_req_alloc(req, sizeof(*r));
	Synclog__GroupSummary **list = sl_req_alloc(req, (g->group_count + 1) * sizeof(*list));
	if (r == NULL || list == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
		sl_req_respond(req);
		return;
	}
	synclog__list_groups_response__init(r);
	r->groups = list;
	for (struct sl_group *grp = g->head; grp; grp = grp->next) {
		/* Only the groups this principal may see (security.h); everything with authentication off. */
		if (!sl_security_allows(req, SL_ACL_GROUP, grp->name, SL_ACL_DESCRIBE))
			continue;
		Synclog__GroupSummary *s = sl_req_alloc(req, sizeof(*s));
		if (s == NULL)
			break;
		synclog__group_summary__init(s);
		s->group = grp->name;
		s->members = grp->member_count;
		s->generation = grp->generation;
		list[r->n_groups++] = s;
	}
	req->resp.body_case = SYNCLOG__RESPONSE__BODY_LIST_GROUPS;
	req->resp.list_groups = r;
	sl_req_respond(req);
}

/* Timestamp of the record at offset (the oldest unconsumed one), for lag in time. A compressed batch is not
 * decompressed for this: its first record's timestamp stands in, early by at most the producer's linger. */
static int record_timestamp(struct sl_log *log, int64_t offset, int64_t *ts_out)
{
	struct sl_log_span span;
	int rc = sl_log_locate(log, offset, 1, &span);
	if (rc < 0 || span.len == 0)
		return rc < 0 ? rc : -ERANGE;
	struct sl_batch_header h;
	uint8_t hdr[SL_BATCH_HEADER_BYTES];
	if (pread(span.fd, hdr, sizeof(hdr), (off_t)span.pos) != (ssize_t)sizeof(hdr) ||
	    sl_batch_header_parse(hdr, sizeof(hdr), &h) < 0)
		return -EIO;
	/* A batch the cleaner stamped carries its delete horizon in baseTimestamp: its records tell the time. */
	int horizon = (h.attributes & SL_BATCH_ATTR_DELETE_HORIZON) != 0;
	*ts_out = horizon ? h.max_timestamp : h.base_timestamp;
	if ((h.attributes & SL_BATCH_ATTR_CODEC_MASK) != 0 || (h.base_offset == offset && !horizon))
		return 0;
	size_t len = sl_batch_total_bytes(&h);
	uint8_t *buf = malloc(len);
	rc = buf ? 0 : -ENOMEM;
	if (rc == 0 && pread(span.fd, buf, len, (off_t)span.pos) != (ssize_t)len)
		rc = -EIO;
	struct sl_record_iter it;
	if (rc == 0)
		rc = sl_record_iter_init(&it, buf, len, NULL, 0);
	struct sl_record r;
	while (rc == 0 && sl_record_iter_next(&it, &r) == 1) {
		if (r.offset >= offset) {
			*ts_out = r.timestamp_ms;
			break;
		}
	}
	free(buf);
	return rc;
}

static Synclog__GroupPartitionLag *lag_row(struct sl_req *req, const struct sl_group *grp, struct sl_topic *topic,
                                           uint32_t p, int64_t now)
{
	Synclog__GroupPartitionLag *row = sl_req_alloc(req, sizeof(*row));
	if (row == NULL)
		return NULL;
	synclog__group_partition_lag__init(row);
	row->topic = topic->cfg.name;
	row->partition = p;
	const struct sl_commit *c = sl_group_committed(grp, topic->cfg.name, p);
	row->committed = c ? c->offset : -1;
	row->last_commit_ms = c ? c->commit_ms : 0;
	const struct sl_member *owner = sl_group_owner(grp, topic->cfg.name, p);
	row->member_id = owner ? (char *)owner->id : "";
	struct sl_log *log = topic->parts[p].log;
	if (log == NULL) {
		row->next_offset = row->lag = -1;
		return row;
	}
	row->next_offset = sl_log_next_offset(log);
	int64_t from = row->committed >= 0 ? row->committed : sl_log_start_offset(log);
	if (from < sl_log_start_offset(log))
		from = sl_log_start_offset(log); /* retention passed the commit: what is left is the lag */
	row->lag = row->next_offset > from ? row->next_offset - from : 0;
	int64_t ts;
	if (row->lag > 0 && record_timestamp(log, from, &ts) == 0)
		row->lag_ms = now > ts ? now - ts : 0;
	row->at_risk = sl_compaction_lag_risk(req, topic, p, row->committed, row->lag_ms, now);
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
	if (r == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
		sl_req_respond(req);
		return;
	}
	synclog__describe_group_response__init(r);
	r->group = grp->name;
	r->generation = grp->generation;
	r->members = sl_req_alloc(req, (grp->member_count + 1) * sizeof(*r->members));
	for (uint32_t i = 0; r->members && i < grp->member_count; i++) {
		const struct sl_member *m = &grp->members[i];
		Synclog__GroupMember *gm = sl_req_alloc(req, sizeof(*gm));
		if (gm == NULL)
			break;
		synclog__group_member__init(gm);
		gm->member_id = (char *)m->id;
		gm->client_id = (char *)m->client_id;
		gm->last_heartbeat_ms = m->last_heartbeat_ms;
		gm->assignment = assignment_msgs(req, m, &gm->n_assignment);
		r->members[r->n_members++] = gm;
	}
	/* Rows: every partition of every topic the group commits to or subscribes to, in topic order. */
	size_t rows_max = 0;
	for (struct sl_topic *t = srv->topics.head; t; t = t->next)
		rows_max += t->cfg.partitions;
	r->partitions = sl_req_alloc(req, (rows_max + 1) * sizeof(*r->partitions));
	int64_t now = sl_clock_wall_ms();
	for (struct sl_topic *t = srv->topics.head; r->partitions && t; t = t->next) {
		int relevant = 0;
		for (uint32_t i = 0; i < grp->commit_count && !relevant; i++)
			relevant = strcmp(grp->commits[i].topic, t->cfg.name) == 0;
		for (uint32_t i = 0; i < grp->member_count && !relevant; i++)
			for (uint32_t k = 0; k < grp->members[i].topic_count; k++)
				relevant |= strcmp(grp->members[i].topics[k], t->cfg.name) == 0;
		if (!relevant)
			continue;
		for (uint32_t p = 0; p < t->cfg.partitions; p++) {
			Synclog__GroupPartitionLag *row = lag_row(req, grp, t, p, now);
			if (row)
				r->partitions[r->n_partitions++] = row;
		}
	}
	req->resp.body_case = SYNCLOG__RESPONSE__BODY_DESCRIBE_GROUP;
	req->resp.describe_group = r;
	sl_req_respond(req);
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
	req->pending++;
	int rc = sl_groups_delete(g, name, commit_done_cb, req);
	if (rc < 0) {
		req->pending--;
		sl_req_fail(req, rc == -EAGAIN ? SYNCLOG__ERROR_CODE__THROTTLED : SYNCLOG__ERROR_CODE__STORAGE_ERROR,
		            "delete of group '%.200s' failed: %s", name, strerror(-rc));
		sl_req_respond(req);
	}
}
