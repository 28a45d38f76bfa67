/* The sync contract calls (synclog.h): SetContract and GetContract turned into plain structs and a negative errno.
 * The client library only carries a contract's text; what it means is the sync layer's (consumer/sync/contract.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/client/client_impl.h"

void sl_contract_record_free(struct sl_contract_record *r)
{
	if (r == NULL)
		return;
	free(r->text);
	free(r->contract);
	r->text = r->contract = NULL;
}

static int record_from_wire(struct sl_contract_record *out, const Synclog__ContractVersion *in)
{
	memset(out, 0, sizeof(*out));
	out->version = in->version;
	out->set_at_ms = in->set_at_ms;
	snprintf(out->set_by, sizeof(out->set_by), "%s", in->set_by != NULL ? in->set_by : "");
	snprintf(out->peer, sizeof(out->peer), "%s", in->peer != NULL ? in->peer : "");
	out->text = strdup(in->text != NULL ? in->text : "");
	out->contract = strdup(in->contract != NULL ? in->contract : "");
	if (out->text == NULL || out->contract == NULL) {
		sl_contract_record_free(out);
		return -ENOMEM;
	}
	return 0;
}

int sl_topic_contract_set(struct sl_conn *c, const char *topic, const char *text, const char *contract,
                          const char *set_by, uint32_t expected_version, struct sl_contract_record *out)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__SetContractRequest body = SYNCLOG__SET_CONTRACT_REQUEST__INIT;
	Synclog__Response *resp;
	char what[SL_TOPIC_NAME_BYTES_MAX + 64];
	int rc;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	snprintf(what, sizeof(what), "set the contract of topic '%s'", topic);
	body.topic = (char *)topic;
	body.text = (char *)text;
	body.contract = (char *)contract;
	body.set_by = (char *)(set_by != NULL ? set_by : "");
	body.expected_version = expected_version == SL_CONTRACT_EXPECT_NONE ? 0 : expected_version;
	body.expect_none = expected_version == SL_CONTRACT_EXPECT_NONE;
	req.body_case = SYNCLOG__REQUEST__BODY_SET_CONTRACT;
	req.set_contract = &body;
	rc = sl_conn_request(c, &req, SYNCLOG__RESPONSE__BODY_SET_CONTRACT, what, &resp);
	if (rc != 0 || out == NULL)
		return rc;
	if (resp->set_contract == NULL || resp->set_contract->current == NULL) {
		sl_conn_set_error(c, "%s: the broker's answer has no version", what);
		return -EPROTO;
	}
	rc = record_from_wire(out, resp->set_contract->current);
	if (rc != 0)
		sl_conn_set_error(c, "%s: out of memory", what);
	return rc;
}

int sl_topic_contract_get(struct sl_conn *c, const char *topic, uint32_t version, struct sl_contract_record *out,
                          bool history, struct sl_contract_record **history_out, uint32_t *history_count_out,
                          struct sl_contract_enforcement *enforcement_out)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__GetContractRequest body = SYNCLOG__GET_CONTRACT_REQUEST__INIT;
	const Synclog__GetContractResponse *r;
	Synclog__Response *resp;
	struct sl_contract_record *list = NULL;
	char what[SL_TOPIC_NAME_BYTES_MAX + 64];
	int rc;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (history_out != NULL)
		*history_out = NULL;
	if (history_count_out != NULL)
		*history_count_out = 0;
	if (enforcement_out != NULL)
		memset(enforcement_out, 0, sizeof(*enforcement_out));
	snprintf(what, sizeof(what), "read the contract of topic '%s'", topic);
	body.topic = (char *)topic;
	body.version = version;
	body.history = history;
	req.body_case = SYNCLOG__REQUEST__BODY_GET_CONTRACT;
	req.get_contract = &body;
	rc = sl_conn_request(c, &req, SYNCLOG__RESPONSE__BODY_GET_CONTRACT, what, &resp);
	if (rc != 0)
		return rc;
	r = resp->get_contract;
	if (r == NULL || (out != NULL && r->contract == NULL)) {
		sl_conn_set_error(c, "%s: the broker's answer has no contract", what);
		return -EPROTO;
	}
	if (out != NULL && (rc = record_from_wire(out, r->contract)) != 0)
		goto oom;
	if (history && history_out != NULL && r->n_history > 0) {
		list = calloc(r->n_history, sizeof(*list));
		if (list == NULL)
			goto oom;
		for (size_t i = 0; i < r->n_history; i++) {
			if ((rc = record_from_wire(&list[i], r->history[i])) != 0) {
				for (size_t k = 0; k < i; k++)
					sl_contract_record_free(&list[k]);
				free(list);
				goto oom;
			}
		}
		*history_out = list;
		*history_count_out = (uint32_t)r->n_history;
	}
	if (enforcement_out != NULL && r->enforcement != NULL) {
		enforcement_out->current_version = r->current_version;
		enforcement_out->since_ms = r->enforcement->since_ms;
		enforcement_out->live_records = r->enforcement->live_records;
		enforcement_out->records_without_idempotency_key = r->enforcement->records_without_idempotency_key;
		enforcement_out->batches_refused = r->enforcement->batches_refused;
		enforcement_out->records_refused = r->enforcement->records_refused;
	}
	return 0;
oom:
	if (out != NULL)
		sl_contract_record_free(out);
	sl_conn_set_error(c, "%s: out of memory", what);
	return -ENOMEM;
}
