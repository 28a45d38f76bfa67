/* A zero-copy reading of a Produce request. protobuf-c copies every `bytes` field when it unpacks, so decoding a
 * Produce frame would copy each batch it carries once more before the batch is appended. This reads the same
 * encoding in place: the view's batch pointers point into the frame, which the caller keeps alive until the
 * appends complete.
 *
 * Only the canonical encoding is read here, the one every protobuf encoder writes for these messages:
 *
 *   Request          { 1: varint correlation_id (at most once), 15: ProduceRequest (exactly once) }
 *   ProduceRequest   { 1: string topic (at most once), 2: varint acks (at most once, <= INT32_MAX),
 *                      3: ProducePartition (any number), 50: varint backfill (bool, at most once) }
 *   ProducePartition { 1: varint partition (at most once, < 2^32), 2: bytes batch (at most once) }
 *
 * in any field order. Anything else (another body, an unknown or repeated singular field, a wire type the schema
 * does not give the field) makes the parse decline, and the caller decodes with protobuf-c, whose rules then
 * decide (merging, last-one-wins, unknown fields, errors). So for every frame the view accepts, protobuf-c
 * decodes the same values; the fuzz target tests/fuzz/fuzz_frame.c checks exactly that. */
#ifndef SL_PROTO_PRODUCE_VIEW_H
#define SL_PROTO_PRODUCE_VIEW_H

#include <stddef.h>
#include <stdint.h>

struct sl_produce_view_part {
	uint32_t partition;
	uint8_t *batch; /* into the frame; NULL when the field is absent */
	size_t batch_bytes;
};

struct sl_produce_view {
	uint64_t correlation_id;
	const uint8_t *topic; /* into the frame, not NUL-terminated; NULL when absent */
	size_t topic_bytes;
	int32_t acks;
	int backfill; /* ProduceRequest.backfill: 1 when the varint is not 0, as protobuf-c reads a bool */
	size_t part_count;
};

/* Read the Request message in frame[0, frame_bytes). Returns 1 when it is a canonical Produce request: *out is
 * filled, and so are the first part_count entries of parts when parts is not NULL and parts_max is at least
 * out->part_count (call once with parts NULL to learn the count). Returns 0 when the frame is anything else; the
 * caller then decodes it with protobuf-c. Never reads outside the frame. */
int sl_produce_view_parse(uint8_t *frame, size_t frame_bytes, struct sl_produce_view *out,
                          struct sl_produce_view_part *parts, size_t parts_max);

#endif
