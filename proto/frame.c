/* Frame length prefix and the error table of the wire protocol. See frame.h. */
#include <errno.h>
#include <protobuf-c/protobuf-c.h>
#include <string.h>

#include "proto/base/be.h"
#include "proto/frame.h"
#include "proto/limits.h"

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

struct check_state {
	uint32_t elements; /* messages, repeated entries and unknown fields met so far */
	const char *why;
};

/* Count n entries of a repeated field of one message (*count) and of the frame; 0 or -E2BIG with st->why set. */
static int count_entries(struct check_state *st, uint32_t *count, uint64_t n)
{
	if (n > SL_REQUEST_ENTRIES_MAX || *count > SL_REQUEST_ENTRIES_MAX - n) {
		st->why = "a repeated field has more entries than a request may have (" SL_STR(
		        SL_REQUEST_ENTRIES_MAX) ")";
		return -E2BIG;
	}
	*count += (uint32_t)n;
	if (n > SL_FRAME_ELEMENTS_MAX || st->elements > SL_FRAME_ELEMENTS_MAX - n) {
		st->why = "the request has more entries than one frame may have (" SL_STR(SL_FRAME_ELEMENTS_MAX) ")";
		return -E2BIG;
	}
	st->elements += (uint32_t)n;
	return 0;
}

/* Varints in a packed repeated field: one per byte without the continuation bit. */
static uint64_t packed_count(const ProtobufCFieldDescriptor *f, const uint8_t *p, uint64_t len)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_FLOAT:
		return len / 4;
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return len / 8;
	default: {
		uint64_t n = 0;
		for (uint64_t i = 0; i < len; i++)
			n += !(p[i] & 0x80);
		return n;
	}
	}
}

/* Fields of one message counted for the per-field bound; our messages have far fewer. */
#define CHECK_FIELDS_MAX 64

static int check(const ProtobufCMessageDescriptor *d, const uint8_t *p, const uint8_t *end, int depth,
                 struct check_state *st)
{
	uint32_t counts[CHECK_FIELDS_MAX] = {0};
	uint32_t unknown = 0;
	if (depth > CHECK_DEPTH_MAX) {
		st->why = "messages nested too deep";
		return -EBADMSG;
	}
	while (p < end) {
		uint64_t key, v;
		if (read_varint(&p, end, &key) < 0)
			return -EBADMSG;
		const ProtobufCFieldDescriptor *f =
		        d ? protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3)) : NULL;
		size_t fi = f ? (size_t)(f - d->fields) : 0;
		uint32_t *count = f == NULL ? &unknown : fi < CHECK_FIELDS_MAX ? &counts[fi] : &unknown;
		int repeated = f == NULL || f->label == PROTOBUF_C_LABEL_REPEATED;
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
			if (f && f->type == PROTOBUF_C_TYPE_STRING && memchr(p, 0, (size_t)v) != NULL) {
				st->why = "a string field holds a NUL byte";
				return -EBADMSG;
			}
			if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
				/* Each submessage is one allocation, repeated or not. */
				if (count_entries(st, count, 1) < 0)
					return -E2BIG;
				int rc = check(f->descriptor, p, p + v, depth + 1, st);
				if (rc < 0)
					return rc;
				repeated = 0;
			} else if (f && repeated && f->type != PROTOBUF_C_TYPE_STRING &&
			           f->type != PROTOBUF_C_TYPE_BYTES) {
				/* A packed run of scalars. */
				if (count_entries(st, count, packed_count(f, p, v)) < 0)
					return -E2BIG;
				repeated = 0;
			}
			p += v;
			break;
		}
		default:
			return -EBADMSG;
		}
		if (repeated && count_entries(st, count, 1) < 0)
			return -E2BIG;
	}
	return 0;
}

int sl_frame_check(const void *descriptor, const uint8_t *p, size_t len, const char **why)
{
	struct check_state st = {0, NULL};
	int rc = check(descriptor, p, p + len, 0, &st);
	if (rc < 0 && why != NULL)
		*why = st.why ? st.why : "malformed protobuf encoding";
	return rc;
}

int sl_frame_check_strings(const void *descriptor, const uint8_t *p, size_t len)
{
	return sl_frame_check(descriptor, p, len, NULL) < 0 ? -EBADMSG : 0;
}

int sl_frame_length(const uint8_t *p, size_t avail, uint32_t frame_bytes_max, uint32_t *len_out)
{
	if (avail < SL_FRAME_HEADER_BYTES)
		return -EAGAIN;
	uint32_t len = sl_load_be32(p);
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
        {45, "UNSUPPORTED_BATCH",
         "transactional or control batches and negative producer fields are not supported: nothing was appended"},
        {46, "RECORDS_LOST",
         "these offsets were lost to disk damage (cut out by synclogd --repair): fetch from skip_to_offset to go on"},
        {55, "GROUP_LIMIT",
         "the broker holds --groups-max groups: delete finished groups (synclog group delete) or raise the limit"},
        {65, "INVALID_CONFIG",
         "invalid topic setting: keys retention.ms, retention.bytes, compact, delete.retention.ms, segment.bytes, "
         "segment.ms, retain.for.groups"},
        {66, "CLEANER_FAILED", "the cleaner failed on a partition: see the message and the broker's log"},
        {80, "AUTHENTICATION_FAILED",
         "authentication failed: check --user and the password (SYNCLOG_PASSWORD or --password-file)"},
        {81, "TOPIC_AUTHORIZATION_FAILED",
         "not allowed on this topic: an administrator can grant it with `synclog acl add`"},
        {82, "GROUP_AUTHORIZATION_FAILED",
         "not allowed on this group: an administrator can grant it with `synclog acl add`"},
        {83, "CLUSTER_AUTHORIZATION_FAILED",
         "needs the cluster admin permission: an administrator can grant it with `synclog acl add --cluster`"},
        {84, "UNKNOWN_USER", "no such user: `synclog user list` shows them"},
        {90, "CONTRACT_INVALID", "the contract cannot be kept: check it with `synclog contract set`, which says why"},
        {91, "IDEMPOTENCY_KEY_REQUIRED",
         "the topic's sync contract requires an idempotency key on every live record: nothing was appended"},
        {92, "NO_CONTRACT", "the topic has no sync contract: set one with `synclog contract set TOPIC FILE`"},
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
