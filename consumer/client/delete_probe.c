/* Whether a topic's log still holds a delete at a given offset: the applier's purge that follows the log asks this
 * before it removes a deleted row from its target (consumer/sync/apply.h, tombstones_due), so that target and log
 * keep a delete equally long. One Fetch of the batch holding the offset; on a Kafka cluster, one record read
 * (kafka_conn.c). */
#include <errno.h>
#include <string.h>

#include "consumer/client/client_impl.h"

/* A batch's decompressed records start at this size and double up to the batch limit. */
#define SCRATCH_BYTES_INITIAL (1u << 20)

/* Whether the record at offset of one fetched batch is there and a delete: 1 present, 0 absent, -EAGAIN when the
 * batch ends before offset, or a negative errno. *scratch grows as the batch needs. */
static int batch_holds_delete(const uint8_t *p, size_t len, int64_t offset, uint8_t **scratch, size_t *scratch_cap)
{
	struct sl_record_iter it;
	struct sl_record r;
	int rc;

	for (;;) {
		rc = sl_record_iter_init(&it, p, len, *scratch, *scratch_cap);
		if (rc != -ENOBUFS)
			break;
		size_t cap = *scratch_cap ? *scratch_cap * 2 : SCRATCH_BYTES_INITIAL;
		uint8_t *n = cap <= SL_BATCH_BYTES_MAX ? realloc(*scratch, cap) : NULL;
		if (n == NULL)
			return -ENOMEM;
		*scratch = n;
		*scratch_cap = cap;
	}
	if (rc != 0)
		return -EBADMSG;
	while ((rc = sl_record_iter_next(&it, &r)) == 1) {
		if (r.offset == offset)
			return r.op == SL_OP_DELETE || r.value_len < 0;
		if (r.offset > offset)
			return 0;
	}
	return rc < 0 ? -EBADMSG : -EAGAIN;
}

int sl_delete_in_log(struct sl_conn *c, const char *topic, uint32_t partition, int64_t offset, bool *present_out)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__FetchRequest body = SYNCLOG__FETCH_REQUEST__INIT;
	Synclog__FetchPartition fp = SYNCLOG__FETCH_PARTITION__INIT, *fps[1] = {&fp};
	Synclog__Response *resp;
	uint8_t *scratch = NULL;
	size_t scratch_cap = 0;
	int rc;

	if (c->kafka != NULL)
		return sl_kafka_delete_in_log(c, topic, partition, offset, present_out);
	*present_out = false;
	fp.partition = partition;
	fp.offset = offset;
	fp.max_bytes = 1; /* the batch holding offset, whatever its size */
	body.topic = (char *)topic;
	body.partitions = fps;
	body.n_partitions = 1;
	req.body_case = SYNCLOG__REQUEST__BODY_FETCH;
	req.fetch = &body;
	rc = sl_conn_request(c, &req, SYNCLOG__RESPONSE__BODY_FETCH, "check a delete in the log", &resp);
	if (rc == 0 && resp->fetch->n_results != 1) {
		sl_conn_set_error(c, "check a delete in the log: the broker answered for %zu partitions",
		                  resp->fetch->n_results);
		rc = -EPROTO;
	}
	if (rc != 0)
		return rc;
	const Synclog__FetchPartitionResult *res = resp->fetch->results[0];
	if (res->error == SYNCLOG__ERROR_CODE__OFFSET_OUT_OF_RANGE && offset < res->log_start_offset)
		return 0; /* retention removed it */
	if (res->error != SYNCLOG__ERROR_CODE__NONE)
		return sl_conn_fail_response(c, "check a delete in the log", res->error, res->error_message);
	const uint8_t *p = res->records.data, *end = p + res->records.len;
	while (p < end) {
		struct sl_batch_header h;

		if (sl_batch_header_parse(p, (size_t)(end - p), &h) != 0 ||
		    sl_batch_total_bytes(&h) > (size_t)(end - p))
			break;
		rc = batch_holds_delete(p, sl_batch_total_bytes(&h), offset, &scratch, &scratch_cap);
		if (rc >= 0) {
			*present_out = rc == 1;
			free(scratch);
			return 0;
		}
		if (rc != -EAGAIN) {
			sl_conn_set_error(c, "check a delete in the log: topic '%s' partition %u: %s", topic, partition,
			                  rc == -ENOMEM ? "out of memory" : "a corrupt batch");
			free(scratch);
			return rc;
		}
		p += sl_batch_total_bytes(&h);
	}
	free(scratch);
	return 0; /* nothing at or after offset came back: the cleaner removed it */
}
