/* The zero-copy reading of a canonical Produce request (see produce_view.h for the accepted encoding and why
 * anything else is left to protobuf-c). */
#include "proto/produce_view.h"

#include <stdbool.h>
#include <string.h>

/* Protobuf wire types, and the field numbers of proto/synclog.proto this reads. */
enum { WIRE_VARINT = 0, WIRE_LEN = 2 };
enum { REQUEST_CORRELATION_ID = 1, REQUEST_PRODUCE = 15 };
enum { PRODUCE_TOPIC = 1, PRODUCE_ACKS = 2, PRODUCE_PARTITIONS = 3, PRODUCE_BACKFILL = 50 };
enum { PARTITION_INDEX = 1, PARTITION_BATCH = 2 };

/* A protobuf varint is at most 10 bytes; a tag at most 5 (field numbers fit 29 bits). */
#define VARINT_BYTES_MAX 10
#define TAG_BYTES_MAX    5

struct cursor {
	uint8_t *p;
	uint8_t *end;
};

/* Read a varint of at most bytes_max bytes whose value fits 64 bits. False when it is longer, overflows or runs
 * past the end: the parse then declines. */
static bool read_varint(struct cursor *c, int bytes_max, uint64_t *out)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes_max && c->p < c->end; i++) {
		uint8_t b = *c->p++;
		if (i == VARINT_BYTES_MAX - 1 && b > 1)
			return false; /* bits beyond the 64th */
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if ((b & 0x80) == 0) {
			*out = v;
			return true;
		}
	}
	return false;
}

/* Read one field's tag and, for a length-delimited field, bound its payload. */
static bool read_field(struct cursor *c, uint32_t *field_out, uint32_t *wire_out, uint64_t *varint_out,
                       struct cursor *payload_out)
{
	uint64_t tag;
	if (!read_varint(c, TAG_BYTES_MAX, &tag) || tag > UINT32_MAX)
		return false;
	*field_out = (uint32_t)(tag >> 3);
	*wire_out = (uint32_t)(tag & 7);
	if (*wire_out == WIRE_VARINT)
		return read_varint(c, VARINT_BYTES_MAX, varint_out);
	if (*wire_out != WIRE_LEN)
		return false; /* no field read here has another wire type */
	uint64_t len;
	if (!read_varint(c, VARINT_BYTES_MAX, &len) || len > (uint64_t)(c->end - c->p))
		return false;
	payload_out->p = c->p;
	payload_out->end = c->p + len;
	c->p += len;
	return true;
}

static bool parse_partition(struct cursor c, struct sl_produce_view_part *out)
{
	bool seen_index = false, seen_batch = false;
	memset(out, 0, sizeof(*out));
	while (c.p < c.end) {
		uint32_t field, wire;
		uint64_t v = 0;
		struct cursor sub = {0};
		if (!read_field(&c, &field, &wire, &v, &sub))
			return false;
		if (field == PARTITION_INDEX && wire == WIRE_VARINT && !seen_index && v <= UINT32_MAX) {
			seen_index = true;
			out->partition = (uint32_t)v;
		} else if (field == PARTITION_BATCH && wire == WIRE_LEN && !seen_batch) {
			seen_batch = true;
			/* protobuf-c leaves an empty bytes field without data. */
			out->batch = sub.p == sub.end ? NULL : sub.p;
			out->batch_bytes = (size_t)(sub.end - sub.p);
		} else {
			return false;
		}
	}
	return true;
}

static bool parse_produce(struct cursor c, struct sl_produce_view *out, struct sl_produce_view_part *parts,
                          size_t parts_max)
{
	bool seen_topic = false, seen_acks = false, seen_backfill = false;
	while (c.p < c.end) {
		uint32_t field, wire;
		uint64_t v = 0;
		struct cursor sub = {0};
		if (!read_field(&c, &field, &wire, &v, &sub))
			return false;
		if (field == PRODUCE_TOPIC && wire == WIRE_LEN && !seen_topic) {
			seen_topic = true;
			out->topic = sub.p;
			out->topic_bytes = (size_t)(sub.end - sub.p);
		} else if (field == PRODUCE_ACKS && wire == WIRE_VARINT && !seen_acks && v <= INT32_MAX) {
			seen_acks = true;
			out->acks = (int32_t)v;
		} else if (field == PRODUCE_BACKFILL && wire == WIRE_VARINT && !seen_backfill) {
			seen_backfill = true;
			out->backfill = v != 0;
		} else if (field == PRODUCE_PARTITIONS && wire == WIRE_LEN) {
			struct sl_produce_view_part part;
			if (!parse_partition(sub, &part))
				return false;
			if (parts != NULL) {
				if (out->part_count >= parts_max)
					return false;
				parts[out->part_count] = part;
			}
			out->part_count++;
		} else {
			return false;
		}
	}
	return true;
}

int sl_produce_view_parse(uint8_t *frame, size_t frame_bytes, struct sl_produce_view *out,
                          struct sl_produce_view_part *parts, size_t parts_max)
{
	struct cursor c = {frame, frame + frame_bytes};
	bool seen_cid = false, seen_produce = false;
	memset(out, 0, sizeof(*out));
	while (c.p < c.end) {
		uint32_t field, wire;
		uint64_t v = 0;
		struct cursor sub = {0};
		if (!read_field(&c, &field, &wire, &v, &sub))
			return 0;
		if (field == REQUEST_CORRELATION_ID && wire == WIRE_VARINT && !seen_cid) {
			seen_cid = true;
			out->correlation_id = v;
		} else if (field == REQUEST_PRODUCE && wire == WIRE_LEN && !seen_produce) {
			seen_produce = true;
			if (!parse_produce(sub, out, parts, parts_max))
				return 0;
		} else {
			return 0;
		}
	}
	return seen_produce ? 1 : 0;
}
