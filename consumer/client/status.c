/* Operations calls: the broker's one-screen status (`synclog status`) and the reports backfill and reconcile
 * runs send it. Like admin.c, each sends one request on a connection with nothing else in flight. */
#include <errno.h>
#include <string.h>

#include "consumer/client/client_impl.h"

void sl_status_free(struct sl_status *s)
{
	if (s == NULL)
		return;
	free(s->topics);
	free(s->groups);
	free(s->appliers);
	free(s->runs);
	free(s);
}

static void run_from_wire(struct sl_run_report *out, const Synclog__RunReport *in)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->kind, sizeof(out->kind), "%s", in->kind ? in->kind : "");
	snprintf(out->topic, sizeof(out->topic), "%s", in->topic ? in->topic : "");
	snprintf(out->target, sizeof(out->target), "%s", in->target ? in->target : "");
	snprintf(out->summary, sizeof(out->summary), "%s", in->summary ? in->summary : "");
	out->started_ms = in->started_ms;
	out->finished_ms = in->finished_ms;
	out->ok = in->ok;
	out->rows = in->rows;
	out->differences = in->differences;
	out->diff_ratio = in->diff_ratio;
	out->repaired = in->repaired;
}

int sl_status_get(struct sl_conn *c, struct sl_status **out)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__StatusRequest body = SYNCLOG__STATUS_REQUEST__INIT;
	Synclog__Response *resp;
	int rc;

	*out = NULL;
	if (c->kafka != NULL)
		return sl_kafka_status_get(c, out);
	req.body_case = SYNCLOG__REQUEST__BODY_STATUS;
	req.status = &body;
	rc = sl_conn_request(c, &req, SYNCLOG__RESPONSE__BODY_STATUS, "status", &resp);
	if (rc != 0)
		return rc;
	const Synclog__StatusResponse *r = resp->status;
	struct sl_status *s = calloc(1, sizeof(*s));
	if (s != NULL) {
		s->topics = calloc(r->n_topics + 1, sizeof(*s->topics));
		s->groups = calloc(r->n_groups + 1, sizeof(*s->groups));
		s->appliers = calloc(r->n_groups + 1, sizeof(*s->appliers));
		s->runs = calloc(r->n_runs + 1, sizeof(*s->runs));
	}
	if (s == NULL || s->topics == NULL || s->groups == NULL || s->appliers == NULL || s->runs == NULL) {
		sl_status_free(s);
		sl_conn_set_error(c, "status: out of memory");
		return -ENOMEM;
	}
	snprintf(s->broker_version, sizeof(s->broker_version), "%s", r->broker_version ? r->broker_version : "");
	snprintf(s->data_dir, sizeof(s->data_dir), "%s", r->data_dir ? r->data_dir : "");
	s->started_ms = r->started_ms;
	s->now_ms = r->now_ms;
	s->data_bytes = r->data_bytes;
	s->disk_free_bytes = r->disk_free_bytes;
	s->disk_total_bytes = r->disk_total_bytes;
	s->connections = r->connections;
	for (size_t i = 0; i < r->n_topics; i++) {
		const Synclog__TopicStatus *t = r->topics[i];
		struct sl_status_topic *o = &s->topics[s->topic_count++];
		snprintf(o->name, sizeof(o->name), "%s", t->name ? t->name : "");
		o->partitions = t->partitions;
		o->partitions_unavailable = t->partitions_unavailable;
		o->bytes = t->bytes;
		o->records = t->records;
		o->records_in_per_s = t->records_in_per_s;
		o->records_out_per_s = t->records_out_per_s;
	}
	for (size_t i = 0; i < r->n_groups; i++) {
		sl_group_summary_from_wire(&s->groups[i], r->groups[i]);
		sl_applier_info_from_wire(&s->appliers[i], i < r->n_appliers ? r->appliers[i] : NULL);
		s->group_count++;
	}
	for (size_t i = 0; i < r->n_runs; i++)
		run_from_wire(&s->runs[s->run_count++], r->runs[i]);
	*out = s;
	return 0;
}

int sl_run_report(struct sl_conn *c, const struct sl_run_report *run)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__ReportRunRequest body = SYNCLOG__REPORT_RUN_REQUEST__INIT;
	Synclog__RunReport m = SYNCLOG__RUN_REPORT__INIT;
	Synclog__Response *resp;

	m.kind = (char *)run->kind;
	m.topic = (char *)run->topic;
	m.target = (char *)run->target;
	m.started_ms = run->started_ms;
	m.finished_ms = run->finished_ms;
	m.ok = run->ok;
	m.summary = (char *)run->summary;
	m.rows = run->rows;
	m.differences = run->differences;
	m.diff_ratio = run->diff_ratio;
	m.repaired = run->repaired;
	body.run = &m;
	req.body_case = SYNCLOG__REQUEST__BODY_REPORT_RUN;
	req.report_run = &body;
	return sl_conn_request(c, &req, SYNCLOG__RESPONSE__BODY_REPORT_RUN, "report run", &resp);
}
