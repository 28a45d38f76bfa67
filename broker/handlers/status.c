/* `synclog status` and the runs tools report: one answer with what an operator looks at first (version, uptime,
 * data size and free space, topics with their rates, groups with lag, state and applier counters, the last
 * backfill and reconcile runs), and ReportRun, which keeps the last run per kind and topic (in memory) and lets a
 * successful backfill clear the `lost` state of the groups reading its topic. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "broker/handlers/handlers.h"
#include "proto/base/clock.h"
#include "proto/frame.h"
#include "proto/version.h"

static Synclog__RunReport *run_msg(struct sl_req *req, struct sl_run *run)
{
	Synclog__RunReport *m = sl_req_alloc(req, sizeof(*m));
	if (m == NULL)
		return NULL;
	synclog__run_report__init(m);
	m->kind = run->kind;
	m->topic = run->topic;
	m->target = run->target;
	m->started_ms = run->started_ms;
	m->finished_ms = run->finished_ms;
	m->ok = run->ok != 0;
	m->summary = run->summary;
	m->rows = run->rows;
	m->differences = run->differences;
	m->diff_ratio = run->diff_ratio;
	m->repaired = run->repaired;
	return m;
}

/* The bytes of t's open partitions. */
static uint64_t topic_bytes(const struct sl_topic *t)
{
	uint64_t bytes = 0;
	for (uint32_t i = 0; i < t->cfg.partitions; i++) {
		struct sl_log_stats st;
		if (t->parts[i].log == NULL)
			continue;
		sl_log_get_stats(t->parts[i].log, &st);
		bytes += st.bytes;
	}
	return bytes;
}

static Synclog__TopicStatus *topic_msg(struct sl_req *req, struct sl_topic *t, uint64_t *bytes_total)
{
	Synclog__TopicStatus *m = sl_req_alloc(req, sizeof(*m));
	if (m == NULL)
		return NULL;
	synclog__topic_status__init(m);
	m->name = t->cfg.name;
	m->partitions = t->cfg.partitions;
	for (uint32_t i = 0; i < t->cfg.partitions; i++) {
		struct sl_log *log = t->parts[i].log;
		if (log == NULL) {
			m->partitions_unavailable++;
			continue;
		}
		struct sl_log_stats st;
		sl_log_get_stats(log, &st);
		m->bytes += st.bytes;
		m->records += st.next_offset - st.start_offset;
	}
	*bytes_total += m->bytes;
	m->records_in_per_s = t->counters.records_in_per_s;
	m->records_out_per_s = t->counters.records_out_per_s;
	return m;
}

void sl_handle_status(struct sl_req *req)
{
	struct sl_server *srv = req->srv;
	Synclog__StatusResponse *r = sl_req_alloc(req, sizeof(*r));
	uint32_t groups = srv->groups.group_count;
	if (r != NULL) {
		synclog__status_response__init(r);
		r->topics = sl_req_alloc(req, (srv->topics.topic_count + 1) * sizeof(*r->topics));
		r->groups = sl_req_alloc(req, (groups + 1) * sizeof(*r->groups));
		r->appliers = sl_req_alloc(req, (groups + 1) * sizeof(*r->appliers));
		r->runs = sl_req_alloc(req, (srv->run_count + 1) * sizeof(*r->runs));
	}
	if (r == NULL || r->topics == NULL || r->groups == NULL || r->appliers == NULL || r->runs == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
		sl_req_respond(req);
		return;
	}
	int64_t now = sl_clock_wall_ms();
	r->broker_version = SL_VERSION;
	r->started_ms = srv->started_ms;
	r->now_ms = now;
	r->data_dir = srv->cfg.data_dir;
	r->connections = srv->stats.connections_open;
	struct statvfs vfs;
	if (statvfs(srv->cfg.data_dir, &vfs) == 0) {
		r->disk_free_bytes = (uint64_t)vfs.f_bavail * vfs.f_frsize;
		r->disk_total_bytes = (uint64_t)vfs.f_blocks * vfs.f_frsize;
	}
	uint64_t bytes = 0;
	/* Only the topics, groups and runs the principal may describe (broker/security.h); data_bytes and the disk
	 * stay the broker's. */
	for (struct sl_topic *t = srv->topics.head; t; t = t->next) {
		if (!sl_security_allows(req, SL_ACL_TOPIC, t->cfg.name, SL_ACL_DESCRIBE)) {
			bytes += topic_bytes(t);
			continue;
		}
		Synclog__TopicStatus *m = topic_msg(req, t, &bytes);
		if (m != NULL)
			r->topics[r->n_topics++] = m;
	}
	if (srv->groups.log != NULL) {
		struct sl_log_stats st;
		sl_log_get_stats(srv->groups.log, &st);
		bytes += st.bytes;
	}
	r->data_bytes = bytes;
	static const struct sl_applier_report none;
	for (uint32_t k = 0; k < groups; k++) {
		struct sl_group *grp = srv->groups.sorted[k];
		if (!sl_security_allows(req, SL_ACL_GROUP, grp->name, SL_ACL_DESCRIBE))
			continue;
		Synclog__GroupSummary *s = sl_group_summary_msg(req, grp, now);
		Synclog__ApplierCounters *a = sl_applier_msg(req, grp->applier.reported_ms > 0 ? &grp->applier : &none);
		if (s == NULL || a == NULL)
			break;
		r->groups[r->n_groups++] = s;
		r->appliers[r->n_appliers++] = a;
	}
	for (uint32_t i = 0; i < srv->run_count; i++) {
		if (!sl_security_allows(req, SL_ACL_TOPIC, srv->runs[i].topic, SL_ACL_DESCRIBE))
			continue;
		Synclog__RunReport *m = run_msg(req, &srv->runs[i]);
		if (m != NULL)
			r->runs[r->n_runs++] = m;
	}
	req->resp.body_case = SYNCLOG__RESPONSE__BODY_STATUS;
	req->resp.status = r;
	sl_req_respond(req);
}

static void backfilled_cb(void *ctx, int status)
{
	struct sl_req *req = ctx;
	if (status < 0)
		sl_req_fail(req, SYNCLOG__ERROR_CODE__STORAGE_ERROR,
		            "the run was recorded, but clearing the lost state of its groups failed: %s",
		            strerror(-status));
	req->pending--;
	if (!req->responded)
		sl_req_respond(req);
	else
		sl_req_release(req);
}

void sl_handle_report_run(struct sl_req *req)
{
	struct sl_server *srv = req->srv;
	static Synclog__ReportRunResponse empty = SYNCLOG__REPORT_RUN_RESPONSE__INIT;
	req->resp.body_case = SYNCLOG__RESPONSE__BODY_REPORT_RUN;
	req->resp.report_run = &empty;
	const Synclog__RunReport *in = req->msg->report_run->run;
	if (in == NULL || in->kind == NULL ||
	    (strcmp(in->kind, "backfill") != 0 && strcmp(in->kind, "reconcile") != 0 &&
	     strcmp(in->kind, "contract") != 0) ||
	    in->topic == NULL || sl_topic_name_check(in->topic, 1) != 0) {
		sl_req_fail(
		        req, SYNCLOG__ERROR_CODE__INVALID_REQUEST,
		        "a run report needs kind \"backfill\", \"reconcile\" or \"contract\" and a valid topic name");
		sl_req_respond(req);
		return;
	}
	struct sl_run *run = NULL;
	for (uint32_t i = 0; i < srv->run_count && run == NULL; i++)
		if (strcmp(srv->runs[i].kind, in->kind) == 0 && strcmp(srv->runs[i].topic, in->topic) == 0)
			run = &srv->runs[i];
	if (run == NULL) {
		/* Full: the oldest report makes room (bounded: SL_RUNS_MAX kinds and topics). */
		uint32_t at = srv->run_count;
		if (at == SL_RUNS_MAX) {
			at = 0;
			for (uint32_t i = 1; i < SL_RUNS_MAX; i++)
				if (srv->runs[i].finished_ms < srv->runs[at].finished_ms)
					at = i;
		} else {
			srv->run_count++;
		}
		run = &srv->runs[at];
		memset(run, 0, sizeof(*run));
		snprintf(run->kind, sizeof(run->kind), "%s", in->kind);
		snprintf(run->topic, sizeof(run->topic), "%s", in->topic);
	}
	snprintf(run->target, sizeof(run->target), "%s", in->target ? in->target : "");
	snprintf(run->summary, sizeof(run->summary), "%s", in->summary ? in->summary : "");
	run->started_ms = in->started_ms;
	run->finished_ms = in->finished_ms > 0 ? in->finished_ms : sl_clock_wall_ms();
	run->ok = in->ok;
	run->rows = in->rows;
	run->differences = in->differences;
	run->diff_ratio = in->diff_ratio;
	run->repaired = in->repaired;
	run->count++;
	if (strcmp(in->kind, "backfill") != 0 || !in->ok) {
		sl_req_respond(req);
		return;
	}
	req->pending++;
	int rc = sl_groups_backfilled(&srv->groups, in->topic, backfilled_cb, req);
	if (rc < 0) {
		req->pending--;
		sl_req_fail(req, rc == -EAGAIN ? SYNCLOG__ERROR_CODE__THROTTLED : SYNCLOG__ERROR_CODE__STORAGE_ERROR,
		            "the run was recorded, but clearing the lost state of its groups failed: %s",
		            strerror(-rc));
		sl_req_respond(req);
	}
}
