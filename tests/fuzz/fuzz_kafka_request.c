/* libFuzzer target for the Kafka request decoder (broker/kafka/decode.c), which reads every byte a Kafka client
 * sends: the input is cut into frames by their 4-byte sizes, as the listener cuts them, and each frame is decoded
 * with a bounded arena. Every decoded structure is walked, so a length the decoder let through but got wrong
 * shows up under AddressSanitizer; a decoded request must have consumed exactly its frame. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/kafka/decode.h"
#include "proto/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

static void touch_bytes(const struct sl_kafka_bytes *b)
{
	if (b->len > 0)
		sink += b->data[0] + b->data[b->len - 1];
}

static void touch_str(const char *s)
{
	if (s)
		sink += strlen(s);
}

/* Read every field the decoder produced. */
static void walk(const struct sl_kafka_request *rq)
{
	touch_str(rq->client_id);
	switch (rq->api_key) {
	case SL_KAFKA_PRODUCE:
		for (uint32_t t = 0; t < rq->u.produce.topic_count; t++) {
			touch_str(rq->u.produce.topics[t].name);
			for (uint32_t i = 0; i < rq->u.produce.topics[t].partition_count; i++)
				touch_bytes(&rq->u.produce.topics[t].partitions[i].records);
		}
		break;
	case SL_KAFKA_FETCH:
		for (uint32_t t = 0; t < rq->u.fetch.topic_count; t++)
			for (uint32_t i = 0; i < rq->u.fetch.topics[t].partition_count; i++)
				sink += (size_t)rq->u.fetch.topics[t].partitions[i].fetch_offset;
		break;
	case SL_KAFKA_LIST_OFFSETS:
		for (uint32_t t = 0; t < rq->u.list_offsets.topic_count; t++)
			for (uint32_t i = 0; i < rq->u.list_offsets.topics[t].partition_count; i++)
				sink += (size_t)rq->u.list_offsets.topics[t].partitions[i].timestamp;
		break;
	case SL_KAFKA_METADATA:
		for (uint32_t i = 0; i < rq->u.metadata.topic_count; i++)
			touch_str(rq->u.metadata.topics[i]);
		break;
	case SL_KAFKA_CREATE_TOPICS:
		for (uint32_t t = 0; t < rq->u.create_topics.topic_count; t++)
			for (uint32_t i = 0; i < rq->u.create_topics.topics[t].config_count; i++) {
				touch_str(rq->u.create_topics.topics[t].configs[i].name);
				touch_str(rq->u.create_topics.topics[t].configs[i].value);
			}
		break;
	case SL_KAFKA_DELETE_TOPICS:
		for (uint32_t i = 0; i < rq->u.delete_topics.topic_count; i++)
			touch_str(rq->u.delete_topics.topics[i]);
		break;
	case SL_KAFKA_DESCRIBE_CONFIGS:
		for (uint32_t i = 0; i < rq->u.describe_configs.resource_count; i++)
			for (uint32_t k = 0; k < rq->u.describe_configs.resources[i].key_count; k++)
				touch_str(rq->u.describe_configs.resources[i].keys[k]);
		break;
	case SL_KAFKA_JOIN_GROUP:
		for (uint32_t i = 0; i < rq->u.join_group.protocol_count; i++)
			touch_bytes(&rq->u.join_group.protocols[i].metadata);
		break;
	case SL_KAFKA_SYNC_GROUP:
		for (uint32_t i = 0; i < rq->u.sync_group.assignment_count; i++)
			touch_bytes(&rq->u.sync_group.assignments[i].assignment);
		break;
	case SL_KAFKA_LEAVE_GROUP:
		for (uint32_t i = 0; i < rq->u.leave_group.member_count; i++)
			touch_str(rq->u.leave_group.member_ids[i]);
		break;
	case SL_KAFKA_OFFSET_COMMIT:
		for (uint32_t t = 0; t < rq->u.offset_commit.topic_count; t++)
			for (uint32_t i = 0; i < rq->u.offset_commit.topics[t].partition_count; i++)
				touch_str(rq->u.offset_commit.topics[t].partitions[i].metadata);
		break;
	case SL_KAFKA_OFFSET_FETCH:
		for (uint32_t t = 0; t < rq->u.offset_fetch.topic_count; t++)
			for (uint32_t i = 0; i < rq->u.offset_fetch.topics[t].partition_count; i++)
				sink += (size_t)rq->u.offset_fetch.topics[t].partitions[i];
		break;
	case SL_KAFKA_DESCRIBE_GROUPS:
		for (uint32_t i = 0; i < rq->u.describe_groups.group_count; i++)
			touch_str(rq->u.describe_groups.groups[i]);
		break;
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t at = 0;
	while (at < size) {
		uint32_t len;
		if (sl_frame_length(data + at, size - at, 1u << 20, &len) < 0)
			break;
		at += SL_FRAME_HEADER_BYTES;
		if (size - at < len)
			break;
		/* Its own buffer of exactly the frame's size, so a read past it is caught. */
		uint8_t *frame = malloc(len);
		if (frame == NULL)
			abort();
		memcpy(frame, data + at, len);
		at += len;
		struct sl_kafka_arena arena = {.bytes_max = 4 * (size_t)len + 64 * 1024};
		struct sl_kafka_request rq;
		const char *why;
		int rc = sl_kafka_decode(frame, len, &arena, &rq, &why);
		if (rc == 0)
			walk(&rq);
		else if (why == NULL)
			abort(); /* every refusal says why */
		sl_kafka_arena_free(&arena);
		free(frame);
	}
	return 0;
}
