/* Frame length prefix and the error table of the wire protocol. See frame.h. */
#include <errno.h>
#include <protobuf-c/protobuf-c.h>
#include <string.h>

#include "proto/frame.h"

/* Nesting deeper than this is not something our messages have: refuse rather than recurse without bound. */
#define CHECK_DEPTH_MAX 16

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return -EBADMSG;
}

static int check(const ProtobufCMessageDescriptor *d, const uint8_t *p, const uint8_t *end, int depth)
{
	if (depth > CHECK_DEPTH_MAX)
		return -EBADMSG;
	while (p < end) {
		uint64_t key, v;
		if (read_varint(&p, end, &key) < 0)
			return -EBADMSG;
		switch (key & 7) {
		case 0:
			if (read_varint(&p, end, &v) < 0)
				return -EBADMSG;
			break;
		case 1:
			if (end - p < 8)
				return -EBADMSG;
			p += 8;
			break;
		case 5:
			if (end - p < 4)
				return -EBADMSG;
			p += 4;
			break;
		case 2: {
			if (read_varint(&p, end, &v) < 0 || v > (uint64_t)(end - p))
				return -EBADMSG;
			const ProtobufCFieldDescriptor *f =
			        d ? protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3)) : NULL;
			if (f && f->type == PROTOBUF_C_TYPE_STRING && memchr(p, 0, (size_t)v) != NULL)
				return -EBADMSG;
			if (f && f->type == PROTOBUF_C_TYPE_MESSAGE && check(f->descriptor, p, p + v, depth + 1) < 0)
				return -EBADMSG;
			p += v;
			break;
		}
		default:
			return -EBADMSG;
		}
	}
	return 0;
}

int sl_frame_check_strings(const void *descriptor, const uint8_t *p, size_t len)
{
	return check(descriptor, p, p + len, 0);
}

int sl_frame_length(const uint8_t *p, size_t avail, uint32_t frame_bytes_max, uint32_t *len_out)
{
	if (avail < SL_FRAME_HEADER_BYTES)
		return -EAGAIN;
	uint32_t len = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	if (len == 0 || len > frame_bytes_max)
		return -EMSGSIZE;
	*len_out = len;
	return 0;
}

void sl_frame_put_length(uint8_t *p, uint32_t len)
{
	p[0] = (uint8_t)(len >> 24);
	p[1] = (uint8_t)(len >> 16);
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
}

static const struct {
	int code;
	const char *name;
	const char *message;
} errors[] = {
        {0, "NONE", "success"},
        {1, "UNSUPPORTED_VERSION", "protocol version not supported: send Hello with a version the broker speaks"},
        {2, "INVALID_REQUEST", "the request is malformed or has invalid fields"},
        {3, "UNKNOWN_TOPIC", "no such topic: create it with `synclog topic create`"},
        {4, "TOPIC_EXISTS", "a topic with that name already exists"},
        {5, "INVALID_TOPIC_NAME",
         "invalid topic name: use 1 to 200 characters of [A-Za-z0-9._-], not starting with '.' or '__'"},
        {6, "INVALID_PARTITIONS", "partition count out of range (1 to 10000)"},
        {7, "UNKNOWN_PARTITION", "no such partition in this topic"},
        {8, "CORRUPT_BATCH", "the record batch is corrupt (CRC, length or record count): nothing was appended"},
        {9, "BATCH_TOO_LARGE", "the record batch is larger than the broker accepts"},
        {10, "OFFSET_OUT_OF_RANGE", "offset outside the log: ask for earliest or latest"},
        {11, "OUT_OF_ORDER_SEQUENCE", "idempotent producer sequence gap: an earlier batch was lost"},
        {12, "UNKNOWN_PRODUCER", "producer id unknown or fenced: call InitProducer again"},
        {13, "STORAGE_ERROR", "the broker's disk failed: nothing was acknowledged"},
        {14, "NOT_ENOUGH_SPACE", "the broker's disk is full: nothing was acknowledged; retry when space is freed"},
        {15, "PARTITION_UNAVAILABLE", "the partition failed to open; an operator must repair it"},
        {16, "THROTTLED", "the broker is at its in-flight limit: retry later"},
        {17, "BROKER_SHUTTING_DOWN", "the broker is shutting down: retry against it once it is back"},
        {18, "UNSUPPORTED_CODEC", "compression codec not supported: use none or zstd"},
        {30, "UNKNOWN_GROUP", "no such consumer group"},
        {31, "UNKNOWN_MEMBER", "member not in the group (expired or left): join again"},
        {32, "ILLEGAL_GENERATION", "stale group generation: this member was replaced; rejoin the group"},
        {33, "REBALANCE_IN_PROGRESS", "the group is rebalancing: rejoin"},
        {34, "GROUP_NOT_EMPTY", "the group has live members: stop them first or pass --force"},
        {35, "INVALID_GROUP_NAME", "invalid group name: 1 to 200 characters of [A-Za-z0-9._-]"},
        {40, "UNSUPPORTED_FEATURE", "this broker does not do that"},
        {65, "INVALID_CONFIG",
         "invalid topic setting: keys retention.ms, retention.bytes, compact, delete.retention.ms, segment.bytes, "
         "segment.ms, retain.for.groups"},
        {66, "CLEANER_FAILED", "the cleaner failed on a partition: see the message and the broker's log"},
        {99, "INTERNAL", "internal broker error"},
};

static int find(int code)
{
	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
		if (errors[i].code == code)
			return (int)i;
	return -1;
}

const char *sl_error_name(int code)
{
	int i = find(code);
	return i < 0 ? "UNKNOWN_ERROR" : errors[i].name;
}

const char *sl_error_message(int code)
{
	int i = find(code);
	return i < 0 ? "unknown error code from the broker" : errors[i].message;
}
