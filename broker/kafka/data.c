/* The data plane of the Kafka listener: Produce, Fetch and ListOffsets translated into the handlers' requests,
 * one per topic (one per partition for ListOffsets), and their answers translated back. Produced batches are
 * handed to the handler where they lie in the received frame: Kafka's records field is the record batch v2 we
 * store, so nothing is re-encoded; fetched batches are returned as stored, from the segment files to the socket
 * when the connection allows it (kafka_impl.h invariant 5).
 *
 * acks: -1 (all) is our fsync level (acknowledged after the group-committed fdatasync), 1 is written (in the page
 * cache), 0 is none (no response, as Kafka). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/kafka/kafka_impl.h"
#include "broker/topics.h"
#include "proto/batch.h"

/* Long polls are capped as the native listener caps them, so a stuck client cannot hold memory for long. */
#define FETCH_WAIT_MS_MAX          30000
/* Fetches of up to this many distinct topics answer as soon as one topic has min_bytes (the others are answered
 * at once with what they have); more topics, or a topic named twice, wait for each topic's own long poll. */
#define FETCH_EARLY_TOPICS_MAX     64
/* A partition of a Fetch response before its records: index, error, high watermark, last stable offset, log
 * start, aborted transactions, preferred replica, records length (4 + 2 + 8 + 8 + 8 + 4 + 4 + 4). */
#define FETCH_PARTITION_HEAD_BYTES 42

static int64_t log_start_of(struct sl_server *srv, const char *topic, int32_t partition)
{
	struct sl_topic *t = sl_topics_find(&srv->topics, topic);
	if (t == NULL || partition < 0 || (uint32_t)partition >= t->cfg.partitions || t->parts[partition].log == NULL)
		return -1;
	return sl_log_start_offset(t->parts[partition].log);
}

/* ---- Produce ---- */

struct produce_state {
	int16_t **local; /* per topic, per partition: an error found before the handler (0: sent to it) */
	int any_error;
	size_t inflated_bytes; /* compressed batches made plain so far (batch_inflate) */
};

static void produce_part(struct sl_kafka_req *kr, uint32_t t, struct sl_req *sub)
{
	const struct sl_kafka_produce_topic *pt = &kr->rq.u.produce.topics[t];
	struct produce_state *st = kr->state;
	int16_t v = kr->rq.api_version;
	struct sl_kwrite *w = &kr->parts[t];
	const Synclog__ProduceResponse *pr =
	        sub && sub->resp.body_case == SYNCLOG__RESPONSE__BODY_PRODUCE ? sub->resp.produce : NULL;
	sl_kwrite_str(w, pt->name);
	sl_kwrite_i32(w, (int32_t)pt->partition_count);
	size_t k = 0;
	for (uint32_t i = 0; i < pt->partition_count; i++) {
		int32_t index = pt->partitions[i].index;
		int16_t err = st->local[t][i];
		int64_t base = -1;
		if (err == SL_KERR_NONE) {
			const Synclog__ProducePartitionResult *r = pr && k < pr->n_results ? pr->results[k] : NULL;
			k++;
			if (r == NULL) {
				Synclog__ErrorCode code =
				        sub && sub->resp.error ? sub->resp.error : SYNCLOG__ERROR_CODE__INTERNAL;
				err = sl_kafka_error_of(code);
				sl_kafka_log(kr, "%.200s/%d: %s", pt->name, index,
				             sub && sub->resp.error_message ? sub->resp.error_message : "no result");
			} else if (r->error != SYNCLOG__ERROR_CODE__NONE) {
				err = sl_kafka_error_of(r->error);
				sl_kafka_log(kr, "%.200s/%d: %s", pt->name, index,
				             r->error_message ? r->error_message : "error");
			} else {
				base = r->base_offset;
			}
		}
		st->any_error |= err != SL_KERR_NONE;
		sl_kwrite_i32(w, index);
		sl_kwrite_i16(w, err);
		sl_kwrite_i64(w, base);
		if (v >= 2)
			sl_kwrite_i64(w, -1); /* log_append_time_ms: timestamps are the producer's (CreateTime) */
		if (v >= 5)
			sl_kwrite_i64(w, log_start_of(kr->srv, pt->name, index));
	}
}

static void produce_done(struct sl_kafka_req *kr)
{
	struct produce_state *st = kr->state;
	if (kr->no_response) {
		/* acks=0 has no response to carry an error: like Kafka, close the connection so the client notices
		 * (each partition's reason is in the log above). */
		if (st->any_error) {
			sl_kafka_log(kr, "acks=0 produce failed: closing the connection");
			sl_kafka_req_close_conn(kr);
		}
		return;
	}
	sl_kafka_head_begin(kr, 0);
	sl_kwrite_i32(&kr->head, (int32_t)kr->rq.u.produce.topic_count);
	sl_kwrite_i32(&kr->tail, (int32_t)kr->throttle_ms); /* the principal's quota (security.h rule 4) */
}

/* A gzip, snappy or lz4 batch becomes the same batch uncompressed (inflate.c); all of one request's inflate to at most
 * --frame-bytes-max, what the request could have carried uncompressed. */
static int16_t batch_inflate(struct sl_kafka_req *kr, const char *topic, struct sl_kafka_produce_partition *pp)
{
	struct produce_state *st = kr->state;
	size_t max = kr->srv->cfg.frame_bytes_max;
	uint8_t *plain;
	size_t plain_len;
	const char *why = "";
	int rc = sl_kafka_batch_inflate(&kr->arena, pp->records.data, (size_t)pp->records.len, max - st->inflated_bytes,
	                                &plain, &plain_len, &why);
	if (rc < 0) {
		sl_kafka_log(kr, "%.200s/%d: compressed batch refused (%s): nothing appended", topic, pp->index, why);
		return rc == -EMSGSIZE ? SL_KERR_MESSAGE_TOO_LARGE
		       : rc == -EINVAL ? SL_KERR_CORRUPT_MESSAGE
		                       : SL_KERR_UNKNOWN_SERVER_ERROR;
	}
	st->inflated_bytes += plain_len;
	pp->records.data = plain;
	pp->records.len = (int32_t)plain_len;
	return SL_KERR_NONE;
}

/* An error found before the handler: the batch is not one this broker stores. */
static int16_t batch_check(struct sl_kafka_req *kr, const char *topic, struct sl_kafka_produce_partition *pp)
{
	if (pp->index < 0)
		return SL_KERR_UNKNOWN_TOPIC_OR_PARTITION;
	struct sl_batch_header h;
	if (pp->records.len <= 0 || sl_batch_header_parse(pp->records.data, (size_t)pp->records.len, &h) < 0) {
		sl_kafka_log(kr, "%.200s/%d: records are not one record batch v2 (magic 2): nothing appended", topic,
		             pp->index);
		return SL_KERR_CORRUPT_MESSAGE;
	}
	if (h.attributes & (SL_BATCH_ATTR_TRANSACTIONAL | SL_BATCH_ATTR_CONTROL)) {
		sl_kafka_log(kr, "%.200s/%d: transactional batch refused: synclogd has no transactions", topic,
		             pp->index);
		return SL_KERR_INVALID_TXN_STATE;
	}
	int codec = h.attributes & SL_BATCH_ATTR_CODEC_MASK;
	if (codec == SL_KAFKA_CODEC_GZIP || codec == SL_KAFKA_CODEC_SNAPPY || codec == SL_KAFKA_CODEC_LZ4)
		return batch_inflate(kr, topic, pp);
	return SL_KERR_NONE;
}

static void produce_topic(struct sl_kafka_req *kr, uint32_t t, Synclog__Acks acks, int16_t acks_error)
{
	struct sl_kafka_produce_topic *pt = &kr->rq.u.produce.topics[t];
	struct produce_state *st = kr->state;
	uint32_t n = 0;
	for (uint32_t i = 0; i < pt->partition_count; i++) {
		st->local[t][i] = acks_error ? acks_error : batch_check(kr, pt->name, &pt->partitions[i]);
		n += st->local[t][i] == SL_KERR_NONE;
	}
	if (n == 0) {
		produce_part(kr, t, NULL);
		return;
	}
	struct sl_req *sub = sl_kafka_sub_new(kr, t);
	if (sub == NULL) {
		for (uint32_t i = 0; i < pt->partition_count; i++)
			st->local[t][i] = SL_KERR_UNKNOWN_SERVER_ERROR;
		produce_part(kr, t, NULL);
		return;
	}
	struct {
		Synclog__Request request;
		Synclog__ProduceRequest produce;
	} *m = sl_req_alloc(sub, sizeof(*m) + n * (sizeof(Synclog__ProducePartition) + sizeof(void *)));
	if (m == NULL) {
		sl_kafka_sub_fail(sub);
		return;
	}
	Synclog__ProducePartition *pp = (Synclog__ProducePartition *)(m + 1);
	Synclog__ProducePartition **pps = (Synclog__ProducePartition **)(pp + n);
	synclog__request__init(&m->request);
	synclog__produce_request__init(&m->produce);
	uint32_t k = 0;
	for (uint32_t i = 0; i < pt->partition_count; i++) {
		if (st->local[t][i] != SL_KERR_NONE)
			continue;
		synclog__produce_partition__init(&pp[k]);
		pp[k].partition = (uint32_t)pt->partitions[i].index;
		/* The batch where it lies in the frame: appended from there (the frame lives as long as kr). */
		pp[k].batch.data = pt->partitions[i].records.data;
		pp[k].batch.len = (size_t)pt->partitions[i].records.len;
		pps[k] = &pp[k];
		k++;
	}
	m->produce.topic = (char *)pt->name;
	m->produce.acks = acks;
	m->produce.n_partitions = n;
	m->produce.partitions = pps;
	m->request.body_case = SYNCLOG__REQUEST__BODY_PRODUCE;
	m->request.produce = &m->produce;
	sub->msg = &m->request;
	sl_kafka_sub_dispatch(sub);
}

void sl_kafka_produce(struct sl_kafka_req *kr)
{
	const struct sl_kafka_produce *p = &kr->rq.u.produce;
	if (sl_kafka_subs_check(kr, p->topic_count) < 0)
		return;
	Synclog__Acks acks = SYNCLOG__ACKS__ACKS_FSYNC;
	int16_t acks_error = SL_KERR_NONE;
	switch (p->acks) {
	case -1:
		acks = SYNCLOG__ACKS__ACKS_FSYNC;
		break;
	case 1:
		acks = SYNCLOG__ACKS__ACKS_WRITTEN;
		break;
	case 0:
		acks = SYNCLOG__ACKS__ACKS_NONE;
		kr->no_response = 1;
		break;
	default:
		acks_error = SL_KERR_INVALID_REQUIRED_ACKS;
		sl_kafka_log(kr, "acks %d: use -1 (fsync), 1 (written) or 0 (none)", p->acks);
		break;
	}
	struct produce_state *st = sl_kafka_arena_alloc(&kr->arena, sizeof(*st));
	int16_t **local = sl_kafka_arena_alloc(&kr->arena, (p->topic_count + 1) * sizeof(*local));
	for (uint32_t t = 0; local && t < p->topic_count; t++)
		if ((local[t] = sl_kafka_arena_alloc(&kr->arena, (p->topics[t].partition_count + 1) * 2)) == NULL)
			local = NULL;
	if (st == NULL || local == NULL || sl_kafka_req_begin_subs(kr, p->topic_count) < 0) {
		sl_kafka_log(kr, "out of memory: closing the connection");
		sl_kafka_req_close_conn(kr);
		return;
	}
	st->local = local;
	kr->state = st;
	kr->part_cb = produce_part;
	kr->done_cb = produce_done;
	for (uint32_t t = 0; t < p->topic_count; t++)
		produce_topic(kr, t, acks, acks_error);
	sl_kafka_req_end_subs(kr);
}

/* ---- Fetch ---- */

struct fetch_state {
	uint64_t bytes;      /* records in the parts so far */
	int early_answer_ok; /* FETCH_EARLY_TOPICS_MAX distinct topics or fewer */
	int enough;          /* min_bytes reached: the other topics are answered now */
};

static void fetch_part(struct sl_kafka_req *kr, uint32_t t, struct sl_req *sub)
{
	const struct sl_kafka_fetch *f = &kr->rq.u.fetch;
	const struct sl_kafka_fetch_topic *ft = &f->topics[t];
	struct fetch_state *st = kr->state;
	int16_t v = kr->rq.api_version;
	struct sl_kwrite *w = &kr->parts[t];
	const Synclog__FetchResponse *fr =
	        sub && sub->resp.body_case == SYNCLOG__RESPONSE__BODY_FETCH ? sub->resp.fetch : NULL;
	int any_error = 0;
	/* The part in one allocation: grown by doubling from 512 bytes, a partition's 1 MiB of records cost a dozen
	 * reallocs, most of them copies of everything before. A partition is at most FETCH_PARTITION_HEAD_BYTES
	 * besides its records (none in memory when they go from their file); a part cut at max_bytes below only
	 * reserved more than it used. */
	size_t need = strlen(ft->topic) + 6 + (size_t)ft->partition_count * FETCH_PARTITION_HEAD_BYTES;
	for (size_t j = 0; fr != NULL && j < fr->n_results; j++)
		if (sl_req_file_of(sub, fr->results[j]->records.data, fr->results[j]->records.len) == NULL)
			need += fr->results[j]->records.len;
	/* On failure w->err is set: req_write closes the connection, as for any response it cannot encode. */
	(void)sl_kwrite_reserve(w, need);
	sl_kwrite_str(w, ft->topic);
	sl_kwrite_i32(w, (int32_t)ft->partition_count);
	size_t k = 0;
	for (uint32_t i = 0; i < ft->partition_count; i++) {
		const struct sl_kafka_fetch_partition *fp = &ft->partitions[i];
		int16_t err = SL_KERR_NONE;
		int64_t hw = -1, start = -1;
		const uint8_t *records = NULL;
		size_t records_len = 0;
		struct sl_req_file *file = NULL; /* the records go from this span of a segment file */
		if (fp->partition < 0) {
			err = SL_KERR_UNKNOWN_TOPIC_OR_PARTITION;
		} else {
			const Synclog__FetchPartitionResult *r = fr && k < fr->n_results ? fr->results[k] : NULL;
			k++;
			if (r == NULL) {
				Synclog__ErrorCode code =
				        sub && sub->resp.error ? sub->resp.error : SYNCLOG__ERROR_CODE__INTERNAL;
				err = sl_kafka_error_of(code);
			} else {
				err = sl_kafka_error_of(r->error);
				hw = r->next_offset;
				start = r->log_start_offset;
				records = r->records.data;
				records_len = r->records.len;
				file = sl_req_file_of(sub, records, records_len);
				if (r->error != SYNCLOG__ERROR_CODE__NONE &&
				    r->error != SYNCLOG__ERROR_CODE__OFFSET_OUT_OF_RANGE)
					sl_kafka_log(kr, "%.200s/%d: %s", ft->topic, fp->partition,
					             r->error_message ? r->error_message : "fetch failed");
			}
		}
		/* The response as a whole stays near max_bytes: past it, partitions come back without records
		 * and are fetched again next time (the first records are always sent, as Kafka does). A span left
		 * out stays with its sub, which closes its descriptor. */
		if (records_len > 0 && st->bytes > 0 && st->bytes + records_len > (uint64_t)(uint32_t)f->max_bytes)
			records_len = 0;
		st->bytes += records_len;
		any_error |= err != SL_KERR_NONE;
		sl_kwrite_i32(w, fp->partition);
		sl_kwrite_i16(w, err);
		sl_kwrite_i64(w, hw);
		sl_kwrite_i64(w, hw); /* last_stable_offset: no transactions, every record is committed */
		if (v >= 5)
			sl_kwrite_i64(w, start);
		sl_kwrite_i32(w, 0); /* aborted_transactions */
		if (v >= 11)
			sl_kwrite_i32(w, -1); /* preferred_read_replica */
		if (file != NULL && records_len > 0) {
			sl_kwrite_i32(w, (int32_t)records_len);
			if (!w->err)
				sl_kafka_req_file_add(kr, t, file);
		} else {
			sl_kwrite_blob(w, records, (int32_t)records_len);
		}
	}
	if (!st->enough && st->early_answer_ok &&
	    (st->bytes >= (uint64_t)(f->min_bytes > 0 ? f->min_bytes : 0) || any_error)) {
		st->enough = 1;
		/* Answer now the long polls of the other topics (invariant 3: only this request's). */
		sl_req_cancel_all(&kr->session, 0);
	}
}

static void fetch_done(struct sl_kafka_req *kr)
{
	int16_t v = kr->rq.api_version;
	sl_kafka_head_begin(kr, 0);
	sl_kwrite_i32(&kr->head, (int32_t)kr->throttle_ms); /* the principal's quota (security.h rule 4) */
	if (v >= 7) {
		sl_kwrite_i16(&kr->head, SL_KERR_NONE);
		sl_kwrite_i32(&kr->head, 0); /* session_id: no fetch sessions, every fetch is a full one */
	}
	sl_kwrite_i32(&kr->head, (int32_t)kr->rq.u.fetch.topic_count);
}

static int topics_distinct(const struct sl_kafka_fetch *f)
{
	if (f->topic_count > FETCH_EARLY_TOPICS_MAX)
		return 0;
	for (uint32_t i = 0; i < f->topic_count; i++)
		for (uint32_t j = i + 1; j < f->topic_count; j++)
			if (strcmp(f->topics[i].topic, f->topics[j].topic) == 0)
				return 0;
	return 1;
}

static void fetch_topic(struct sl_kafka_req *kr, uint32_t t)
{
	const struct sl_kafka_fetch *f = &kr->rq.u.fetch;
	const struct sl_kafka_fetch_topic *ft = &f->topics[t];
	struct fetch_state *st = kr->state;
	uint32_t n = 0;
	for (uint32_t i = 0; i < ft->partition_count; i++)
		n += ft->partitions[i].partition >= 0;
	if (n == 0) {
		fetch_part(kr, t, NULL);
		return;
	}
	struct sl_req *sub = sl_kafka_sub_new(kr, t);
	if (sub == NULL) {
		fetch_part(kr, t, NULL);
		return;
	}
	struct {
		Synclog__Request request;
		Synclog__FetchRequest fetch;
	} *m = sl_req_alloc(sub, sizeof(*m) + n * (sizeof(Synclog__FetchPartition) + sizeof(void *)));
	if (m == NULL) {
		sl_kafka_sub_fail(sub);
		return;
	}
	Synclog__FetchPartition *fp = (Synclog__FetchPartition *)(m + 1);
	Synclog__FetchPartition **fps = (Synclog__FetchPartition **)(fp + n);
	synclog__request__init(&m->request);
	synclog__fetch_request__init(&m->fetch);
	uint32_t max_bytes = f->max_bytes > 0 ? (uint32_t)f->max_bytes : 1;
	uint32_t k = 0;
	for (uint32_t i = 0; i < ft->partition_count; i++) {
		const struct sl_kafka_fetch_partition *kp = &ft->partitions[i];
		if (kp->partition < 0)
			continue;
		synclog__fetch_partition__init(&fp[k]);
		fp[k].partition = (uint32_t)kp->partition;
		fp[k].offset = kp->fetch_offset;
		/* 0 would mean "the default" to the handler: a client asking for 0 bytes gets one batch. */
		uint32_t want = kp->partition_max_bytes > 0 ? (uint32_t)kp->partition_max_bytes : 1;
		fp[k].max_bytes = want < max_bytes ? want : max_bytes;
		fps[k] = &fp[k];
		k++;
	}
	m->fetch.topic = (char *)ft->topic;
	m->fetch.n_partitions = n;
	m->fetch.partitions = fps;
	uint32_t wait = f->max_wait_ms > 0 ? (uint32_t)f->max_wait_ms : 0;
	m->fetch.max_wait_ms = st->enough ? 0 : wait < FETCH_WAIT_MS_MAX ? wait : FETCH_WAIT_MS_MAX;
	m->fetch.min_bytes = f->min_bytes > 0 ? (uint32_t)f->min_bytes : 0;
	m->request.body_case = SYNCLOG__REQUEST__BODY_FETCH;
	m->request.fetch = &m->fetch;
	sub->msg = &m->request;
	sl_kafka_sub_dispatch(sub);
}

void sl_kafka_fetch(struct sl_kafka_req *kr)
{
	const struct sl_kafka_fetch *f = &kr->rq.u.fetch;
	if (sl_kafka_subs_check(kr, f->topic_count) < 0)
		return;
	struct fetch_state *st = sl_kafka_arena_alloc(&kr->arena, sizeof(*st));
	if (st == NULL || sl_kafka_req_begin_subs(kr, f->topic_count) < 0) {
		sl_kafka_log(kr, "out of memory: closing the connection");
		sl_kafka_req_close_conn(kr);
		return;
	}
	st->early_answer_ok = topics_distinct(f);
	kr->state = st;
	kr->part_cb = fetch_part;
	kr->done_cb = fetch_done;
	for (uint32_t t = 0; t < f->topic_count; t++)
		fetch_topic(kr, t);
	sl_kafka_req_end_subs(kr);
}

/* ---- ListOffsets: one sub per partition; parts are [topic header, its partitions...] per topic ---- */

struct list_offsets_state {
	uint32_t *first_part; /* per topic: index of its header part */
};

/* By timestamp, Kafka answers the found record's own timestamp (the Java client refuses a negative one): the
 * handler's lookup found it off the loop (handlers/list_offsets.c). */
static void offsets_part_write(struct sl_kafka_req *kr, uint32_t part, int32_t partition, int16_t err, int64_t ts,
                               int64_t offset)
{
	struct sl_kwrite *w = &kr->parts[part];
	sl_kwrite_i32(w, partition);
	sl_kwrite_i16(w, err);
	sl_kwrite_i64(w, ts);
	sl_kwrite_i64(w, offset);
	if (kr->rq.api_version >= 4)
		sl_kwrite_i32(w, offset >= 0 ? 0 : -1); /* leader_epoch */
}

static void list_offsets_part(struct sl_kafka_req *kr, uint32_t part, struct sl_req *sub)
{
	const struct sl_kafka_list_offsets *l = &kr->rq.u.list_offsets;
	struct list_offsets_state *st = kr->state;
	uint32_t t = 0;
	while (t + 1 < l->topic_count && st->first_part[t + 1] <= part)
		t++;
	const struct sl_kafka_list_offsets_topic *lt = &l->topics[t];
	const struct sl_kafka_list_offsets_partition *lp = &lt->partitions[part - st->first_part[t] - 1];
	const Synclog__ListOffsetsResponse *r =
	        sub && sub->resp.body_case == SYNCLOG__RESPONSE__BODY_LIST_OFFSETS ? sub->resp.list_offsets : NULL;
	const Synclog__PartitionOffset *po = r && r->n_offsets == 1 ? r->offsets[0] : NULL;
	int16_t err = SL_KERR_NONE;
	int64_t offset = -1;
	if (lp->index < 0 || lp->timestamp < -2) {
		err = lp->index < 0 ? SL_KERR_UNKNOWN_TOPIC_OR_PARTITION : SL_KERR_INVALID_REQUEST;
	} else if (po == NULL || po->error != SYNCLOG__ERROR_CODE__NONE) {
		Synclog__ErrorCode code = po                       ? po->error
		                          : sub && sub->resp.error ? sub->resp.error
		                                                   : SYNCLOG__ERROR_CODE__INTERNAL;
		err = sl_kafka_error_of(code);
	} else if (lp->timestamp >= 0) {
		/* No record that new: the handler names the log end, Kafka says -1/-1. */
		int64_t ts = sl_list_offsets_found_timestamp(po);
		offsets_part_write(kr, part, lp->index, SL_KERR_NONE, ts, ts >= 0 ? po->offset : -1);
		return;
	} else {
		offset = po->offset;
	}
	offsets_part_write(kr, part, lp->index, err, -1, offset);
}

static void list_offsets_done(struct sl_kafka_req *kr)
{
	sl_kafka_head_begin(kr, 0);
	if (kr->rq.api_version >= 2)
		sl_kwrite_i32(&kr->head, 0); /* throttle_time_ms */
	sl_kwrite_i32(&kr->head, (int32_t)kr->rq.u.list_offsets.topic_count);
}

static void list_offsets_one(struct sl_kafka_req *kr, uint32_t part, const char *topic,
                             const struct sl_kafka_list_offsets_partition *lp)
{
	if (lp->index < 0 || lp->timestamp < -2) {
		list_offsets_part(kr, part, NULL);
		return;
	}
	struct sl_req *sub = sl_kafka_sub_new(kr, part);
	if (sub == NULL) {
		list_offsets_part(kr, part, NULL);
		return;
	}
	struct {
		Synclog__Request request;
		Synclog__ListOffsetsRequest list;
		uint32_t partition;
	} *m = sl_req_alloc(sub, sizeof(*m));
	if (m == NULL) {
		sl_kafka_sub_fail(sub);
		return;
	}
	synclog__request__init(&m->request);
	synclog__list_offsets_request__init(&m->list);
	m->partition = (uint32_t)lp->index;
	m->list.topic = (char *)topic;
	m->list.n_partitions = 1;
	m->list.partitions = &m->partition;
	m->list.spec = lp->timestamp == -1   ? SYNCLOG__OFFSET_SPEC__LATEST
	               : lp->timestamp == -2 ? SYNCLOG__OFFSET_SPEC__EARLIEST
	                                     : SYNCLOG__OFFSET_SPEC__TIMESTAMP;
	m->list.timestamp_ms = lp->timestamp;
	m->request.body_case = SYNCLOG__REQUEST__BODY_LIST_OFFSETS;
	m->request.list_offsets = &m->list;
	sub->msg = &m->request;
	sl_kafka_sub_dispatch(sub);
}

void sl_kafka_list_offsets(struct sl_kafka_req *kr)
{
	const struct sl_kafka_list_offsets *l = &kr->rq.u.list_offsets;
	uint64_t parts = l->topic_count;
	for (uint32_t t = 0; t < l->topic_count; t++)
		parts += l->topics[t].partition_count;
	if (sl_kafka_subs_check(kr, parts) < 0)
		return;
	struct list_offsets_state *st = sl_kafka_arena_alloc(&kr->arena, sizeof(*st));
	uint32_t *first = sl_kafka_arena_alloc(&kr->arena, (l->topic_count + 1) * sizeof(*first));
	if (st == NULL || first == NULL || sl_kafka_req_begin_subs(kr, (uint32_t)parts) < 0) {
		sl_kafka_log(kr, "out of memory: closing the connection");
		sl_kafka_req_close_conn(kr);
		return;
	}
	st->first_part = first;
	kr->state = st;
	kr->part_cb = list_offsets_part;
	kr->done_cb = list_offsets_done;
	uint32_t part = 0;
	for (uint32_t t = 0; t < l->topic_count; t++) {
		first[t] = part;
		part += 1 + l->topics[t].partition_count;
	}
	for (uint32_t t = 0; t < l->topic_count; t++) {
		const struct sl_kafka_list_offsets_topic *lt = &l->topics[t];
		sl_kwrite_str(&kr->parts[first[t]], lt->name);
		sl_kwrite_i32(&kr->parts[first[t]], (int32_t)lt->partition_count);
		for (uint32_t i = 0; i < lt->partition_count; i++)
			list_offsets_one(kr, first[t] + 1 + i, lt->name, &lt->partitions[i]);
	}
	sl_kafka_req_end_subs(kr);
}
