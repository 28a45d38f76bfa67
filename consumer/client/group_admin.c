/* Group admin calls: list, describe (lag per partition), delete, and fetch or commit offsets as an operator. Like
 * admin.c, each sends one request on a connection with nothing else in flight and turns the answer into plain
 * structs, so callers never see protobuf types. */
#include <errno.h>
#include <string.h>

#include "consumer/client/client_impl.h"

static int summary_compare(const void *a, const void *b)
{
	return strcmp(((const struct sl_group_summary *)a)->group, ((const struct sl_group_summary *)b)->group);
}

void sl_group_summary_from_wire(struct sl_group_summary *out, const Synclog__GroupSummary *g)
{
	snprintf(out->group, sizeof(out->group), "%s", g->group != NULL ? g->group : "");
	out->members = g->members;
	out->generation = g->generation;
	snprintf(out->state, sizeof(out->state), "%s", g->state != NULL ? g->state : "");
	out->state_since_ms = g->state_since_ms;
	out->lag = g->lag;
	out->lag_ms = g->lag_ms;
}

/* One page of groups after start_after, appended to *groups (grown as needed). Sets next (empty: last page). */
static int list_page(struct sl_conn *c, const char *start_after, struct sl_group_summary **groups, uint32_t *count,
                     uint32_t *cap, char *next, size_t next_bytes)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__ListGroupsRequest body = SYNCLOG__LIST_GROUPS_REQUEST__INIT;
	Synclog__Response *resp;
	int rc;

	body.start_after = (char *)start_after;
	req.body_case = SYNCLOG__REQUEST__BODY_LIST_GROUPS;
	req.list_groups = &body;
	rc = sl_conn_request(c, &req, SYNCLOG__RESPONSE__BODY_LIST_GROUPS, "list groups", &resp);
	if (rc != 0)
		return rc;
	size_t n = resp->list_groups->n_groups;
	if (*count + n > *cap) {
		uint32_t ncap = *cap ? *cap : 64;
		while (ncap < *count + n)
			ncap *= 2;
		struct sl_group_summary *ng = realloc(*groups, ncap * sizeof(*ng));
		if (ng == NULL) {
			sl_conn_set_error(c, "list groups: out of memory for %u groups", ncap);
			return -ENOMEM;
		}
		*groups = ng;
		*cap = ncap;
	}
	for (size_t i = 0; i < n; i++)
		sl_group_summary_from_wire(&(*groups)[(*count)++], resp->list_groups->groups[i]);
	const char *ns = resp->list_groups->next_start_after;
	snprintf(next, next_bytes, "%s", ns != NULL ? ns : "");
	return 0;
}

int sl_group_list(struct sl_conn *c, struct sl_group_summary **groups_out, uint32_t *count_out)
{
	struct sl_group_summary *groups = NULL;
	uint32_t count = 0, cap = 0;
	char after[SL_GROUP_NAME_BYTES_MAX + 1] = "", next[SL_GROUP_NAME_BYTES_MAX + 1];
	int rc;

	if (c->kafka != NULL)
		return sl_kafka_group_list(c, groups_out, count_out);

	*groups_out = NULL;
	*count_out = 0;
	for (;;) {
		rc = list_page(c, after, &groups, &count, &cap, next, sizeof(next));
		if (rc != 0) {
			free(groups);
			return rc;
		}
		/* The broker's names only grow page after page: a name that does not is a broker bug, not a loop. */
		if (next[0] == '\0' || strcmp(next, after) <= 0)
			break;
		snprintf(after, sizeof(after), "%s", next);
	}
	if (groups == NULL && (groups = calloc(1, sizeof(*groups))) == NULL)
		return -ENOMEM;
	qsort(groups, count, sizeof(*groups), summary_compare);
	*groups_out = groups;
	*count_out = count;
	return 0;
}

static int lag_compare(const void *a, const void *b)
{
	const struct sl_group_lag *x = a, *y = b;
	int r = strcmp(x->topic, y->topic);

	if (r != 0)
		return r;
	return x->partition < y->partition ? -1 : x->partition > y->partition;
}

static void lag_from_wire(struct sl_group_lag *out, const Synclog__GroupPartitionLag *in)
{
	snprintf(out->topic, sizeof(out->topic), "%s", in->topic != NULL ? in->topic : "");
	out->partition = in->partition;
	out->committed = in->committed;
	out->next_offset = in->next_offset;
	out->lag = in->lag;
	out->lag_ms = in->lag_ms;
	snprintf(out->member_id, sizeof(out->member_id), "%s", in->member_id != NULL ? in->member_id : "");
	out->last_commit_ms = in->last_commit_ms;
	snprintf(out->state, sizeof(out->state), "%s", in->state != NULL ? in->state : "");
	out->state_since_ms = in->state_since_ms;
	out->records_lost = in->records_lost;
	out->stall_after_ms = in->stall_after_ms;
	snprintf(out->at_risk, sizeof(out->at_risk), "%s", in->at_risk != NULL ? in->at_risk : "");
}

void sl_applier_info_from_wire(struct sl_applier_info *out, const Synclog__ApplierCounters *in)
{
	memset(out, 0, sizeof(*out));
	if (in == NULL)
		return;
	out->applied = in->applied;
	out->stale = in->stale;
	out->duplicate = in->duplicate;
	out->deleted = in->deleted;
	out->dead_lettered = in->dead_lettered;
	snprintf(out->target, sizeof(out->target), "%s", in->target != NULL ? in->target : "");
	out->reported_ms = in->reported_ms;
}

static void member_from_wire(struct sl_group_member_info *out, const Synclog__GroupMember *in)
{
	snprintf(out->member_id, sizeof(out->member_id), "%s", in->member_id != NULL ? in->member_id : "");
	snprintf(out->client_id, sizeof(out->client_id), "%s", in->client_id != NULL ? in->client_id : "");
	snprintf(out->client_host, sizeof(out->client_host), "%s", in->client_host != NULL ? in->client_host : "");
	out->last_heartbeat_ms = in->last_heartbeat_ms;
	out->partition_count = 0;
	for (size_t k = 0; k < in->n_assignment; k++)
		out->partition_count += (uint32_t)in->assignment[k]->n_partitions;
}

int sl_group_describe(struct sl_conn *c, const char *group, struct sl_group_description **out)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__DescribeGroupRequest body = SYNCLOG__DESCRIBE_GROUP_REQUEST__INIT;
	Synclog__Response *resp;
	Synclog__DescribeGroupResponse *d;
	struct sl_group_description *desc;
	char what[SL_GROUP_NAME_BYTES_MAX + 64];
	int rc;

	if (c->kafka != NULL)
		return sl_kafka_group_describe(c, group, out);

	*out = NULL;
	body.group = (char *)group;
	req.body_case = SYNCLOG__REQUEST__BODY_DESCRIBE_GROUP;
	req.describe_group = &body;
	snprintf(what, sizeof(what), "describe group '%s'", group);
	rc = sl_conn_request(c, &req, SYNCLOG__RESPONSE__BODY_DESCRIBE_GROUP, what, &resp);
	if (rc != 0)
		return rc;
	d = resp->describe_group;
	desc = calloc(1, sizeof(*desc));
	if (desc != NULL) {
		desc->members = calloc(d->n_members ? d->n_members : 1, sizeof(*desc->members));
		desc->partitions = calloc(d->n_partitions ? d->n_partitions : 1, sizeof(*desc->partitions));
	}
	if (desc == NULL || desc->members == NULL || desc->partitions == NULL) {
		sl_group_description_free(desc);
		sl_conn_set_error(c, "%s: out of memory for %zu partitions", what, d->n_partitions);
		return -ENOMEM;
	}
	snprintf(desc->group, sizeof(desc->group), "%s", group);
	desc->generation = d->generation;
	desc->reset_generation = d->reset_generation;
	snprintf(desc->state, sizeof(desc->state), "%s", d->state != NULL ? d->state : "");
	if (d->settings != NULL) {
		desc->stall_after_ms = d->settings->stall_after_ms;
		desc->window = d->settings->window;
	}
	sl_applier_info_from_wire(&desc->applier, d->applier);
	for (size_t i = 0; i < d->n_members; i++)
		member_from_wire(&desc->members[i], d->members[i]);
	desc->member_count = (uint32_t)d->n_members;
	for (size_t i = 0; i < d->n_partitions; i++)
		lag_from_wire(&desc->partitions[i], d->partitions[i]);
	desc->partition_count = (uint32_t)d->n_partitions;
	qsort(desc->partitions, desc->partition_count, sizeof(*desc->partitions), lag_compare);
	*out = desc;
	return 0;
}

void sl_group_description_free(struct sl_group_description *d)
{
	if (d == NULL)
		return;
	free(d->members);
	free(d->partitions);
	free(d);
}

int sl_group_delete(struct sl_conn *c, const char *group, bool force)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__DeleteGroupRequest body = SYNCLOG__DELETE_GROUP_REQUEST__INIT;
	Synclog__Response *resp;
	char what[SL_GROUP_NAME_BYTES_MAX + 64];

	if (c->kafka != NULL)
		return sl_kafka_group_delete(c, group, force);

	body.group = (char *)group;
	body.force = force;
	req.body_case = SYNCLOG__REQUEST__BODY_DELETE_GROUP;
	req.delete_group = &body;
	snprintf(what, sizeof(what), "delete group '%s'", group);
	return sl_conn_request(c, &req, SYNCLOG__RESPONSE__BODY_DELETE_GROUP, what, &resp);
}

int sl_group_alter(struct sl_conn *c, const char *group, int64_t stall_after_ms, uint32_t window)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__AlterGroupRequest body = SYNCLOG__ALTER_GROUP_REQUEST__INIT;
	Synclog__GroupSettings settings = SYNCLOG__GROUP_SETTINGS__INIT;
	Synclog__Response *resp;
	char what[SL_GROUP_NAME_BYTES_MAX + 64];

	if (c->kafka != NULL) {
		sl_conn_set_error(
		        c,
		        "alter group '%s': a Kafka cluster keeps no health settings per group; give "
		        "--stall-after to group describe, group list or status instead (evaluated client-side)",
		        group);
		return -EOPNOTSUPP;
	}
	settings.stall_after_ms = stall_after_ms;
	settings.window = window;
	body.group = (char *)group;
	body.settings = &settings;
	req.body_case = SYNCLOG__REQUEST__BODY_ALTER_GROUP;
	req.alter_group = &body;
	snprintf(what, sizeof(what), "alter group '%s'", group);
	return sl_conn_request(c, &req, SYNCLOG__RESPONSE__BODY_ALTER_GROUP, what, &resp);
}

/* OffsetFetch of count partitions of topic: the offsets, their commit times (may be NULL) and, when full is not
 * NULL, everything the broker keeps of each commit. */
static int committed_fetch(struct sl_conn *c, const char *group, const char *topic, const uint32_t *partitions,
                           uint32_t count, int64_t *offsets_out, int64_t *commit_ms_out, struct sl_committed *full)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__OffsetFetchRequest body = SYNCLOG__OFFSET_FETCH_REQUEST__INIT;
	Synclog__TopicPartitions tp = SYNCLOG__TOPIC_PARTITIONS__INIT;
	Synclog__TopicPartitions *tps[1] = {&tp};
	Synclog__Response *resp;
	Synclog__OffsetFetchResponse *of;
	char what[SL_GROUP_NAME_BYTES_MAX + SL_TOPIC_NAME_BYTES_MAX + 64];
	int rc;

	SL_ASSERT(count > 0);
	tp.topic = (char *)topic;
	tp.partitions = (uint32_t *)partitions;
	tp.n_partitions = count;
	body.group = (char *)group;
	body.topics = tps;
	body.n_topics = 1;
	req.body_case = SYNCLOG__REQUEST__BODY_OFFSET_FETCH;
	req.offset_fetch = &body;
	snprintf(what, sizeof(what), "fetch offsets of group '%s' on topic '%s'", group, topic);
	rc = sl_conn_request(c, &req, SYNCLOG__RESPONSE__BODY_OFFSET_FETCH, what, &resp);
	if (rc != 0)
		return rc;
	of = resp->offset_fetch;
	for (uint32_t i = 0; i < count; i++) {
		size_t j;

		for (j = 0; j < of->n_offsets; j++)
			if (of->offsets[j]->partition == partitions[i] && of->offsets[j]->topic != NULL &&
			    strcmp(of->offsets[j]->topic, topic) == 0)
				break;
		if (j == of->n_offsets) {
			sl_conn_set_error(c, "%s: the broker's answer has no offset for partition %u", what,
			                  partitions[i]);
			return -EPROTO;
		}
		offsets_out[i] = of->offsets[j]->offset;
		if (commit_ms_out != NULL)
			commit_ms_out[i] = of->offsets[j]->offset >= 0 ? of->offsets[j]->commit_ms : 0;
		if (full != NULL) {
			full[i].offset = offsets_out[i];
			full[i].commit_ms = of->offsets[j]->offset >= 0 ? of->offsets[j]->commit_ms : 0;
			snprintf(full[i].metadata, sizeof(full[i].metadata), "%s",
			         of->offsets[j]->metadata != NULL ? of->offsets[j]->metadata : "");
		}
	}
	return 0;
}

int sl_group_offsets_fetch(struct sl_conn *c, const char *group, const char *topic, const uint32_t *partitions,
                           uint32_t count, int64_t *offsets_out, int64_t *commit_ms_out)
{
	if (c->kafka != NULL) {
		struct sl_committed *got = calloc(count ? count : 1, sizeof(*got));
		int rc = got != NULL ? sl_kafka_group_committed_get(c, group, topic, partitions, count, got) : -ENOMEM;

		for (uint32_t i = 0; rc == 0 && i < count; i++) {
			offsets_out[i] = got[i].offset;
			if (commit_ms_out != NULL)
				commit_ms_out[i] = got[i].commit_ms;
		}
		free(got);
		return rc;
	}
	return committed_fetch(c, group, topic, partitions, count, offsets_out, commit_ms_out, NULL);
}

int sl_group_committed_get(struct sl_conn *c, const char *group, const char *topic, const uint32_t *partitions,
                           uint32_t count, struct sl_committed *out)
{
	int64_t *offsets;
	int rc;

	if (c->kafka != NULL)
		return sl_kafka_group_committed_get(c, group, topic, partitions, count, out);
	offsets = calloc(count ? count : 1, sizeof(*offsets));
	if (offsets == NULL)
		return -ENOMEM;
	rc = committed_fetch(c, group, topic, partitions, count, offsets, NULL, out);
	free(offsets);
	return rc;
}

/* Group the offsets by topic into one OffsetCommit request (wire structs from one allocation) and send it. */
int sl_group_commit_request(struct sl_conn *c, const char *group, const char *member_id, int32_t generation,
                            const struct sl_topic_partition_offset *offsets, uint32_t count, bool force,
                            const struct sl_commit_extras *extras)
{
	Synclog__ApplierCounters applier = SYNCLOG__APPLIER_COUNTERS__INIT;
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__OffsetCommitRequest body = SYNCLOG__OFFSET_COMMIT_REQUEST__INIT;
	Synclog__Response *resp;
	Synclog__OffsetCommitTopic *topics, **topic_ptrs;
	Synclog__OffsetCommitPartition *parts, **part_ptrs;
	char what[SL_GROUP_NAME_BYTES_MAX + 64];
	size_t n_topics = 0;
	int rc;

	SL_ASSERT(count > 0);
	/* Sized for the worst case (every offset a different topic): a commit is not on the per-record path. */
	topics = calloc(count, sizeof(*topics));
	topic_ptrs = calloc(count, sizeof(*topic_ptrs));
	parts = calloc(count, sizeof(*parts));
	part_ptrs = calloc(count, sizeof(*part_ptrs));
	if (topics == NULL || topic_ptrs == NULL || parts == NULL || part_ptrs == NULL) {
		rc = -ENOMEM;
		sl_conn_set_error(c, "commit offsets of group '%s': out of memory for %u offsets", group, count);
		goto out;
	}
	/* Offsets of one topic go together, in the order they first appear; part_ptrs is filled topic by topic. */
	size_t k = 0;
	for (uint32_t i = 0; i < count; i++) {
		size_t t;

		for (t = 0; t < n_topics; t++)
			if (strcmp(topics[t].topic, offsets[i].topic) == 0)
				break;
		if (t < n_topics)
			continue;
		synclog__offset_commit_topic__init(&topics[n_topics]);
		topics[n_topics].topic = (char *)offsets[i].topic;
		topics[n_topics].partitions = &part_ptrs[k];
		for (uint32_t j = i; j < count; j++) {
			if (strcmp(offsets[j].topic, offsets[i].topic) != 0)
				continue;
			synclog__offset_commit_partition__init(&parts[k]);
			parts[k].partition = offsets[j].partition;
			parts[k].offset = offsets[j].offset;
			if (extras != NULL && extras->records_lost != NULL)
				parts[k].records_lost = extras->records_lost[j];
			part_ptrs[k] = &parts[k];
			topics[n_topics].n_partitions++;
			k++;
		}
		topic_ptrs[n_topics] = &topics[n_topics];
		n_topics++;
	}
	SL_ASSERT(k == count);
	body.group = (char *)group;
	body.member_id = (char *)member_id;
	body.generation = generation;
	body.topics = topic_ptrs;
	body.n_topics = n_topics;
	body.force = force;
	if (extras != NULL && extras->applier != NULL) {
		applier.applied = extras->applier->applied;
		applier.stale = extras->applier->stale;
		applier.duplicate = extras->applier->duplicate;
		applier.deleted = extras->applier->deleted;
		applier.dead_lettered = extras->applier->dead_lettered;
		applier.target = (char *)extras->applier->target;
		body.applier = &applier;
	}
	req.body_case = SYNCLOG__REQUEST__BODY_OFFSET_COMMIT;
	req.offset_commit = &body;
	snprintf(what, sizeof(what), "commit offsets of group '%s'", group);
	rc = sl_conn_request(c, &req, SYNCLOG__RESPONSE__BODY_OFFSET_COMMIT, what, &resp);
out:
	free(topics);
	free(topic_ptrs);
	free(parts);
	free(part_ptrs);
	return rc;
}

int sl_group_offsets_commit(struct sl_conn *c, const char *group, const struct sl_topic_partition_offset *offsets,
                            uint32_t count, bool force)
{
	if (c->kafka != NULL)
		return sl_kafka_group_offsets_commit(c, group, offsets, count, force);

	return sl_group_commit_request(c, group, "", -1, offsets, count, force, NULL);
}

int sl_group_offsets_commit_metadata(struct sl_conn *c, const char *group, const char *topic,
                                     const uint32_t *partitions, const int64_t *offsets, const char *const *metadata,
                                     uint32_t count)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__OffsetCommitRequest body = SYNCLOG__OFFSET_COMMIT_REQUEST__INIT;
	Synclog__OffsetCommitTopic wire_topic = SYNCLOG__OFFSET_COMMIT_TOPIC__INIT, *topics[1] = {&wire_topic};
	Synclog__OffsetCommitPartition *parts, **part_ptrs;
	Synclog__Response *resp;
	char what[SL_GROUP_NAME_BYTES_MAX + 64];
	int rc;

	if (c->kafka != NULL)
		return sl_kafka_group_offsets_commit_metadata(c, group, topic, partitions, offsets, metadata, count);
	SL_ASSERT(count > 0);
	parts = calloc(count, sizeof(*parts));
	part_ptrs = calloc(count, sizeof(*part_ptrs));
	if (parts == NULL || part_ptrs == NULL) {
		free(parts);
		free(part_ptrs);
		sl_conn_set_error(c, "commit offsets of group '%s': out of memory for %u offsets", group, count);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < count; i++) {
		synclog__offset_commit_partition__init(&parts[i]);
		parts[i].partition = partitions[i];
		parts[i].offset = offsets[i];
		if (metadata != NULL && metadata[i] != NULL)
			parts[i].metadata = (char *)metadata[i];
		part_ptrs[i] = &parts[i];
	}
	wire_topic.topic = (char *)topic;
	wire_topic.partitions = part_ptrs;
	wire_topic.n_partitions = count;
	body.group = (char *)group;
	body.member_id = "";
	body.generation = -1;
	body.topics = topics;
	body.n_topics = 1;
	req.body_case = SYNCLOG__REQUEST__BODY_OFFSET_COMMIT;
	req.offset_commit = &body;
	snprintf(what, sizeof(what), "commit offsets of group '%s'", group);
	rc = sl_conn_request(c, &req, SYNCLOG__RESPONSE__BODY_OFFSET_COMMIT, what, &resp);
	free(parts);
	free(part_ptrs);
	return rc;
}
