/* libFuzzer target for the wire decoders the broker runs on every byte a client sends: frame length prefixes,
 * protobuf Request decoding, the in-place Produce reading (which must agree with protobuf-c on every frame it
 * accepts: a disagreement aborts), and the validation of every batch a Produce request carries. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/batch.h"
#include "proto/frame.h"
#include "proto/produce_view.h"
#include "proto/synclog.pb-c.h"

static uint8_t scratch[1 << 20];

#define VIEW_PARTS_MAX 4096
static struct sl_produce_view_part view_parts[VIEW_PARTS_MAX];

/* The view of frame, when it takes one, must say what protobuf-c's decoding says. */
static void check_view(const uint8_t *frame, size_t len, const Synclog__Request *req)
{
	uint8_t *copy = malloc(len ? len : 1);
	struct sl_produce_view v;
	if (copy == NULL)
		abort();
	memcpy(copy, frame, len);
	if (sl_produce_view_parse(copy, len, &v, view_parts, VIEW_PARTS_MAX) == 1) {
		const Synclog__ProduceRequest *pr = req ? req->produce : NULL;
		if (req == NULL || req->body_case != SYNCLOG__REQUEST__BODY_PRODUCE || pr == NULL ||
		    req->correlation_id != v.correlation_id || strlen(pr->topic) != v.topic_bytes ||
		    (v.topic_bytes && memcmp(pr->topic, v.topic, v.topic_bytes) != 0) || (int32_t)pr->acks != v.acks ||
		    (int)pr->backfill != v.backfill || pr->n_partitions != v.part_count)
			abort();
		for (size_t i = 0; i < v.part_count; i++) {
			const Synclog__ProducePartition *pp = pr->partitions[i];
			if (pp->partition != view_parts[i].partition || pp->batch.len != view_parts[i].batch_bytes ||
			    (pp->batch.len && memcmp(pp->batch.data, view_parts[i].batch, pp->batch.len) != 0))
				abort();
		}
	}
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t at = 0;
	/* A small frame limit so lengths both in and out of range are reached. */
	const uint32_t frame_max = 1 << 16;
	while (at < size) {
		uint32_t len;
		int rc = sl_frame_length(data + at, size - at, frame_max, &len);
		if (rc < 0)
			break;
		at += SL_FRAME_HEADER_BYTES;
		if (size - at < len)
			break;
		Synclog__Request *req = NULL;
		if (sl_frame_check_strings(&synclog__request__descriptor, data + at, len) == 0) {
			req = synclog__request__unpack(NULL, len, data + at);
			check_view(data + at, len, req);
		}
		at += len;
		if (req == NULL)
			continue;
		if (req->body_case == SYNCLOG__REQUEST__BODY_PRODUCE && req->produce != NULL) {
			for (size_t i = 0; i < req->produce->n_partitions; i++) {
				ProtobufCBinaryData *b = &req->produce->partitions[i]->batch;
				struct sl_batch_header h;
				const char *why;
				if (sl_batch_validate(b->data, b->len, &h, scratch, sizeof(scratch), &why) == 0)
					sl_batch_set_base_offset(b->data, 42);
			}
		}
		synclog__request__free_unpacked(req, NULL);
	}
	return 0;
}
