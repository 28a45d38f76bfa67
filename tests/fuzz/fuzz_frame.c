/* libFuzzer target for the wire decoders the broker runs on every byte a client sends: frame length prefixes,
 * protobuf Request decoding, and the validation of every batch a Produce request carries. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "proto/batch.h"
#include "proto/frame.h"
#include "proto/synclog.pb-c.h"

static uint8_t scratch[1 << 20];

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
		if (sl_frame_check_strings(&synclog__request__descriptor, data + at, len) == 0)
			req = synclog__request__unpack(NULL, len, data + at);
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
