/* SetContract and GetContract: a topic's sync contract stored with the topic and versioned (broker/contracts.h).
 * A set is checked on the loop (sizes, the produce clause), written on the thread pool (the history file, atomically)
 * and in effect for produce once written; a get of the current version is answered from memory, one of an older
 * version or of the history reads the file on the thread pool. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "broker/contracts.h"
#include "broker/handlers/handlers.h"
#include "proto/base/assert.h"
#include "proto/base/clock.h"
#include "proto/errors.h"

struct contract_job {
	uv_work_t work;
	struct sl_req *req;
	struct sl_topic *topic;
	char topic_dir[4096];
	/* set */
	struct sl_contract_version v;
	struct sl_contract_rules rules;
	/* get */
	uint32_t version;
	bool history;
	struct sl_contract_version *found;
	uint32_t found_count;
	int status;
	char error[512];
};

static void job_free(struct contract_job *j)
{
	sl_contract_version_free(&j->v);
	for (uint32_t i = 0; i < j->found_count; i++)
		sl_contract_version_free(&j->found[i]);
	free(j->found);
	free(j);
}

/* A version in its wire form, its strings copied into the request's memory. NULL when out of memory. */
static Synclog__ContractVersion *version_to_wire(struct sl_req *req, const struct sl_contract_version *v)
{
	Synclog__ContractVersion *w = sl_req_alloc(req, sizeof(*w));

	if (w == NULL)
		return NULL;
	synclog__contract_version__init(w);
	w->version = v->version;
	w->set_at_ms = v->set_at_ms;
	w->set_by = sl_req_strdup(req, v->set_by);
	w->peer = sl_req_strdup(req, v->peer);
	w->text = sl_req_strdup(req, v->text);
	w->contract = sl_req_strdup(req, v->contract);
	if (w->set_by == NULL || w->peer == NULL || w->text == NULL || w->contract == NULL)
		return NULL;
	return w;
}

static struct sl_topic *topic_of(struct sl_req *req, const char *name)
{
	struct sl_topic *topic = sl_topics_find(&req->srv->topics, name);

	if (topic == NULL)
		sl_req_fail(req, SYNCLOG__ERROR_CODE__UNKNOWN_TOPIC, "unknown topic '%.200s'", name);
	return topic;
}

/* ---- set ---- */

static void set_answer(struct sl_req *req, const struct sl_contract_version *v)
{
	Synclog__SetContractResponse *r = sl_req_alloc(req, sizeof(*r));

	req->resp.body_case = SYNCLOG__RESPONSE__BODY_SET_CONTRACT;
	if (r == NULL) {
		static Synclog__SetContractResponse empty = SYNCLOG__SET_CONTRACT_RESPONSE__INIT;
		req->resp.set_contract = &empty;
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
		sl_req_respond(req);
		return;
	}
	synclog__set_contract_response__init(r);
	req->resp.set_contract = r;
	if (v != NULL && (r->current = version_to_wire(req, v)) == NULL)
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
	sl_req_respond(req);
}

static void set_work_cb(uv_work_t *w)
{
	struct contract_job *j = w->data;

	j->status = sl_contract_append(j->topic_dir, &j->v, j->error, sizeof(j->error));
}

static void set_after_cb(uv_work_t *w, int status)
{
	struct contract_job *j = w->data;
	struct sl_req *req = j->req;
	struct sl_topic *topic = j->topic;

	topic->contract_inflight = 0;
	if (status < 0)
		j->status = status;
	if (j->status < 0) {
		/* The file is the old one (sl_fs_replace_atomic): the old contract stays in effect. */
		sl_req_fail(req, sl_errno_to_code(j->status), "topic %s: %s; the contract was not changed",
		            topic->cfg.name, j->error[0] != '\0' ? j->error : strerror(-j->status));
		set_answer(req, NULL);
		job_free(j);
		return;
	}
	struct sl_topic_contract *c = topic->contract;
	if (c == NULL && (c = calloc(1, sizeof(*c))) == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL,
		            "topic %s: contract version %u was written, but the broker is out of memory to enforce it: "
		            "restart it",
		            topic->cfg.name, j->v.version);
		set_answer(req, NULL);
		job_free(j);
		return;
	}
	/* Invariant 1: memory follows the file. The counts start again: they are about this version. */
	sl_contract_version_free(&c->current);
	c->current = j->v;
	memset(&j->v, 0, sizeof(j->v));
	c->rules = j->rules;
	memset(&c->counts, 0, sizeof(c->counts));
	c->counts.since_ms = sl_clock_wall_ms();
	topic->contract = c;
	set_answer(req, &c->current);
	job_free(j);
}

void sl_handle_set_contract(struct sl_req *req)
{
	Synclog__SetContractRequest *m = req->msg->set_contract;
	const char *name = m->topic ? m->topic : "", *text = m->text ? m->text : "",
	           *json = m->contract ? m->contract : "";
	struct sl_topic *topic = topic_of(req, name);
	struct contract_job *j;
	char why[256];

	if (topic == NULL) {
		set_answer(req, NULL);
		return;
	}
	if (strlen(text) > SL_CONTRACT_TEXT_BYTES_MAX || strlen(json) > SL_CONTRACT_TEXT_BYTES_MAX || json[0] == '\0') {
		sl_req_fail(
		        req, SYNCLOG__ERROR_CODE__CONTRACT_INVALID,
		        "topic %s: a contract needs its normalized JSON, and neither it nor the file's text may exceed "
		        "%d bytes",
		        name, SL_CONTRACT_TEXT_BYTES_MAX);
		set_answer(req, NULL);
		return;
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
		set_answer(req, NULL);
		return;
	}
	if (sl_contract_rules_parse(json, &j->rules, why, sizeof(why)) != 0) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__CONTRACT_INVALID, "topic %s: %s; the contract was not changed",
		            name, why);
		job_free(j);
		set_answer(req, NULL);
		return;
	}
	if (topic->contract_inflight || topic->alter_inflight) {
		sl_req_fail(
		        req, SYNCLOG__ERROR_CODE__THROTTLED,
		        "topic %s: another change of its contract or settings is being written; retry once it answered",
		        name);
		job_free(j);
		set_answer(req, NULL);
		return;
	}
	uint32_t current = topic->contract != NULL ? topic->contract->current.version : 0;
	if ((m->expected_version != 0 || m->expect_none) && m->expected_version != current) {
		if (m->expect_none)
			sl_req_fail(req, SYNCLOG__ERROR_CODE__INVALID_REQUEST,
			            "topic %s already has a contract (version %u); nothing was stored", name, current);
		else
			sl_req_fail(
			        req, SYNCLOG__ERROR_CODE__INVALID_REQUEST,
			        "topic %s: the contract is at version %u, not %u: someone set it meanwhile; read it "
			        "again",
			        name, current, m->expected_version);
		job_free(j);
		set_answer(req, NULL);
		return;
	}
	j->req = req;
	j->topic = topic;
	snprintf(j->topic_dir, sizeof(j->topic_dir), "%s/%s", req->srv->topics.topics_dir, name);
	snprintf(j->v.set_by, sizeof(j->v.set_by), "%s", m->set_by != NULL && m->set_by[0] != '\0' ? m->set_by : "-");
	snprintf(j->v.peer, sizeof(j->v.peer), "%s", req->session->peer);
	j->v.set_at_ms = sl_clock_wall_ms();
	j->v.text = strdup(text);
	j->v.contract = strdup(json);
	if (j->v.text == NULL || j->v.contract == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
		job_free(j);
		set_answer(req, NULL);
		return;
	}
	j->work.data = j;
	topic->contract_inflight = 1;
	int rc = uv_queue_work(&req->srv->loop, &j->work, set_work_cb, set_after_cb);
	SL_ASSERT(rc == 0); /* only fails for a NULL callback */
}

/* ---- get ---- */

static void get_answer(struct sl_req *req, struct sl_topic *topic, const struct sl_contract_version *v,
                       const struct sl_contract_version *history, uint32_t history_count)
{
	Synclog__GetContractResponse *r = sl_req_alloc(req, sizeof(*r));
	Synclog__ContractEnforcement *e = sl_req_alloc(req, sizeof(*e));
	Synclog__ContractVersion **list = history_count ? sl_req_alloc(req, history_count * sizeof(*list)) : NULL;
	static Synclog__GetContractResponse empty = SYNCLOG__GET_CONTRACT_RESPONSE__INIT;

	req->resp.body_case = SYNCLOG__RESPONSE__BODY_GET_CONTRACT;
	req->resp.get_contract = &empty;
	if (r == NULL || e == NULL || (history_count > 0 && list == NULL)) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
		sl_req_respond(req);
		return;
	}
	synclog__get_contract_response__init(r);
	synclog__contract_enforcement__init(e);
	if (v != NULL && (r->contract = version_to_wire(req, v)) == NULL)
		goto oom;
	for (uint32_t i = 0; i < history_count; i++)
		if ((list[i] = version_to_wire(req, &history[i])) == NULL)
			goto oom;
	r->history = list;
	r->n_history = history_count;
	/* The topic may have gone while the file was read: the answer then has no live counts. */
	if (topic != NULL && topic->contract != NULL) {
		const struct sl_contract_counts *c = &topic->contract->counts;

		r->current_version = topic->contract->current.version;
		e->since_ms = c->since_ms;
		e->live_records = c->live_records;
		e->records_without_idempotency_key = c->without_idempotency_key;
		e->batches_refused = c->batches_refused;
		e->records_refused = c->records_refused;
		r->enforcement = e;
	}
	req->resp.get_contract = r;
	sl_req_respond(req);
	return;
oom:
	sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
	sl_req_respond(req);
}

static void get_work_cb(uv_work_t *w)
{
	struct contract_job *j = w->data;

	j->status = sl_contract_read(j->topic_dir, j->version, j->history, &j->found, &j->found_count, j->error,
	                             sizeof(j->error));
}

static void get_after_cb(uv_work_t *w, int status)
{
	struct contract_job *j = w->data;
	struct sl_req *req = j->req;
	const char *name = req->msg->get_contract->topic != NULL ? req->msg->get_contract->topic : "";
	struct sl_topic *topic = sl_topics_find(&req->srv->topics, name);
	const struct sl_contract_version *v = NULL;

	if (status < 0)
		j->status = status;
	if (j->status == -ENOENT) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__NO_CONTRACT, "topic %.200s: %s", name, j->error);
	} else if (j->status < 0) {
		sl_req_fail(req, sl_errno_to_code(j->status), "topic %.200s: %s", name,
		            j->error[0] != '\0' ? j->error : strerror(-j->status));
	} else {
		for (uint32_t i = 0; i < j->found_count; i++)
			if (j->version == 0 ? i + 1 == j->found_count : j->found[i].version == j->version)
				v = &j->found[i];
	}
	if (j->status < 0)
		get_answer(req, NULL, NULL, NULL, 0);
	else
		get_answer(req, topic, v, j->history ? j->found : NULL, j->history ? j->found_count : 0);
	job_free(j);
}

void sl_handle_get_contract(struct sl_req *req)
{
	Synclog__GetContractRequest *m = req->msg->get_contract;
	const char *name = m->topic ? m->topic : "";
	struct sl_topic *topic = topic_of(req, name);
	struct contract_job *j;

	if (topic == NULL) {
		get_answer(req, NULL, NULL, NULL, 0);
		return;
	}
	if (topic->contract == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__NO_CONTRACT,
		            "topic %s has no sync contract: set one with `synclog contract set %s FILE`", name, name);
		get_answer(req, NULL, NULL, NULL, 0);
		return;
	}
	if (!m->history && (m->version == 0 || m->version == topic->contract->current.version)) {
		get_answer(req, topic, &topic->contract->current, NULL, 0);
		return;
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
		get_answer(req, NULL, NULL, NULL, 0);
		return;
	}
	j->req = req;
	j->version = m->version;
	j->history = m->history;
	snprintf(j->topic_dir, sizeof(j->topic_dir), "%s/%s", req->srv->topics.topics_dir, name);
	j->work.data = j;
	int rc = uv_queue_work(&req->srv->loop, &j->work, get_work_cb, get_after_cb);
	SL_ASSERT(rc == 0); /* only fails for a NULL callback */
}
