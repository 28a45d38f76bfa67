/* ListOffsets: the earliest or latest offset of each asked partition (from memory, answered at once), or the first
 * offset at or after a time. A time lookup reads files (a sealed segment's index the first time, then a few batch
 * headers and one batch), so it runs on libuv's thread pool and the request is answered when every partition's
 * lookup came back; the loop only picks the segment and hands over a descriptor (storage/log.h,
 * sl_log_time_prepare). The native protocol, the Kafka listener's ListOffsets and `synclog offsets reset
 * --to-datetime` all come here.
 *
 * Rules:
 *   1. A request's lookups run as one job of the thread pool; at most TIME_LOOKUPS_MAX requests have one in
 *      flight, and past that a request is refused with THROTTLED (retry), so a flood of lookups cannot queue
 *      without bound behind the pool's four threads.
 *   2. While a job runs, its topic counts it (jobs_inflight): a deletion of the topic waits for it, so the logs
 *      the job finishes on are alive. Retention and the cleaner may act meanwhile: the job reads through its own
 *      descriptors, and a lookup whose index files were replaced under it (-ESTALE) is prepared and run again,
 *      at most LOOKUP_TRIES times. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "broker/handlers/handlers.h"
#include "proto/base/assert.h"
#include "proto/errors.h"

/* 1,024 requests of up to SL_REQUEST_ENTRIES_MAX partitions each: far more than the pool's threads can work on,
 * enough that a Kafka client asking for every partition of a few hundred topics (one request each) is not
 * refused. */
#define TIME_LOOKUPS_MAX 1024
#define LOOKUP_TRIES     3

/* One answer: the wire message and what only the Kafka listener reads. */
struct offset_answer {
	Synclog__PartitionOffset po;
	int64_t found_timestamp_ms;
};

struct lookup_part {
	struct offset_answer *answer;
	struct sl_log *log;
	struct sl_log_time_job job;
	int tries;
	int pending; /* its job runs in this round */
};

struct lookup {
	uv_work_t work;
	struct sl_req *req;
	struct sl_topic *topic;
	uint32_t count;
	struct lookup_part parts[];
};

int64_t sl_list_offsets_found_timestamp(const Synclog__PartitionOffset *po)
{
	return ((const struct offset_answer *)((const char *)po - offsetof(struct offset_answer, po)))
	        ->found_timestamp_ms;
}

static void list_offsets_free_body(struct sl_req *req)
{
	Synclog__ListOffsetsResponse *r = &req->body.list_offsets;
	for (size_t i = 0; i < r->n_offsets; i++)
		free((char *)r->offsets[i] - offsetof(struct offset_answer, po));
	free(r->offsets);
}

static void answer_error(struct offset_answer *a, int rc)
{
	a->po.error = rc == -EINVAL ? SYNCLOG__ERROR_CODE__INVALID_REQUEST : SYNCLOG__ERROR_CODE__STORAGE_ERROR;
	a->po.offset = -1;
	a->found_timestamp_ms = -1;
}

/* Prepare part's lookup: 1 when it needs the pool, 0 when answered. */
static int lookup_prepare(struct lookup_part *lp, int64_t timestamp_ms)
{
	int rc = sl_log_time_prepare(lp->log, timestamp_ms, &lp->job);
	lp->tries++;
	if (rc < 0) {
		answer_error(lp->answer, rc);
		return 0;
	}
	lp->answer->po.offset = lp->job.offset;
	lp->answer->found_timestamp_ms = lp->job.found_timestamp_ms;
	return rc == 0;
}

static void lookup_work_cb(uv_work_t *w)
{
	struct lookup *l = w->data;
	for (uint32_t i = 0; i < l->count; i++)
		if (l->parts[i].pending)
			sl_log_time_run(&l->parts[i].job);
}

static void lookup_after_cb(uv_work_t *w, int status)
{
	struct lookup *l = w->data;
	struct sl_req *req = l->req;
	uint32_t again = 0;
	for (uint32_t i = 0; i < l->count; i++) {
		struct lookup_part *lp = &l->parts[i];
		if (!lp->pending)
			continue;
		lp->pending = 0;
		if (status < 0) /* canceled: the pool never ran it */
			lp->job.rc = status;
		int rc = sl_log_time_finish(lp->log, &lp->job);
		if (rc == -ESTALE && lp->tries < LOOKUP_TRIES) {
			lp->pending = lookup_prepare(lp, req->msg->list_offsets->timestamp_ms);
			again += (uint32_t)lp->pending;
			continue;
		}
		if (rc < 0) {
			answer_error(lp->answer, rc);
			continue;
		}
		lp->answer->po.offset = lp->job.offset;
		lp->answer->found_timestamp_ms = lp->job.found_timestamp_ms;
	}
	if (again > 0 && uv_queue_work(&req->srv->loop, &l->work, lookup_work_cb, lookup_after_cb) == 0)
		return;
	SL_ASSERT(again == 0); /* uv_queue_work fails only for a NULL callback */
	SL_ASSERT(l->topic->jobs_inflight > 0 && req->srv->offload.time_lookups > 0);
	l->topic->jobs_inflight--;
	req->srv->offload.time_lookups--;
	free(l);
	sl_req_respond(req);
}

/* Start the time lookups of the answers whose partitions have a log; answers the request unless they run. */
static void lookups_start(struct sl_req *req, struct sl_topic *topic, struct lookup *l)
{
	uint32_t run = 0;
	for (uint32_t i = 0; i < l->count; i++) {
		l->parts[i].pending = lookup_prepare(&l->parts[i], req->msg->list_offsets->timestamp_ms);
		run += (uint32_t)l->parts[i].pending;
	}
	if (run == 0) {
		free(l);
		sl_req_respond(req);
		return;
	}
	l->req = req;
	l->topic = topic;
	l->work.data = l;
	topic->jobs_inflight++;
	req->srv->offload.time_lookups++;
	int rc = uv_queue_work(&req->srv->loop, &l->work, lookup_work_cb, lookup_after_cb);
	SL_ASSERT(rc == 0);
}

void sl_handle_list_offsets(struct sl_req *req)
{
	Synclog__ListOffsetsRequest *lr = req->msg->list_offsets;
	struct sl_topic *topic = sl_topics_find(&req->srv->topics, lr->topic ? lr->topic : "");
	if (topic == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__UNKNOWN_TOPIC, "unknown topic '%.200s'",
		            lr->topic ? lr->topic : "");
		sl_req_respond(req);
		return;
	}
	int by_time = lr->spec == SYNCLOG__OFFSET_SPEC__TIMESTAMP;
	if (by_time && req->srv->offload.time_lookups >= TIME_LOOKUPS_MAX) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__THROTTLED,
		            "%d timestamp lookups are already reading from disk: retry in a moment", TIME_LOOKUPS_MAX);
		sl_req_respond(req);
		return;
	}
	size_t n = lr->n_partitions ? lr->n_partitions : topic->cfg.partitions;
	Synclog__ListOffsetsResponse *r = &req->body.list_offsets;
	synclog__list_offsets_response__init(r);
	req->free_body = list_offsets_free_body;
	r->offsets = calloc(n, sizeof(*r->offsets));
	struct lookup *l = by_time ? calloc(1, sizeof(*l) + n * sizeof(l->parts[0])) : NULL;
	if (r->offsets == NULL || (by_time && l == NULL)) {
		free(l);
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
		sl_req_respond(req);
		return;
	}
	req->resp.body_case = SYNCLOG__RESPONSE__BODY_LIST_OFFSETS;
	req->resp.list_offsets = r;
	for (size_t i = 0; i < n; i++) {
		struct offset_answer *a = malloc(sizeof(*a));
		if (a == NULL)
			break;
		Synclog__PartitionOffset *po = &a->po;
		synclog__partition_offset__init(po);
		a->found_timestamp_ms = -1;
		r->offsets[r->n_offsets++] = po;
		po->partition = lr->n_partitions ? lr->partitions[i] : (uint32_t)i;
		po->offset = -1;
		if (po->partition >= topic->cfg.partitions) {
			po->error = SYNCLOG__ERROR_CODE__UNKNOWN_PARTITION;
			continue;
		}
		struct sl_log *log = topic->parts[po->partition].log;
		if (log == NULL) {
			po->error = SYNCLOG__ERROR_CODE__PARTITION_UNAVAILABLE;
			continue;
		}
		switch (lr->spec) {
		case SYNCLOG__OFFSET_SPEC__EARLIEST:
			po->offset = sl_log_start_offset(log);
			break;
		case SYNCLOG__OFFSET_SPEC__LATEST:
			po->offset = sl_log_next_offset(log);
			break;
		case SYNCLOG__OFFSET_SPEC__TIMESTAMP:
			l->parts[l->count++] = (struct lookup_part){.answer = a, .log = log};
			break;
		default:
			answer_error(a, -EINVAL);
			break;
		}
	}
	if (l != NULL) {
		lookups_start(req, topic, l);
		return;
	}
	sl_req_respond(req);
}
