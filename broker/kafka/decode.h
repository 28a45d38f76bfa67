/* The Kafka request decoder: one request frame (without its 4-byte size) in, the header and the body of the APIs
 * this broker serves out, as C structs. It trusts nothing: every length and count is checked against the bytes
 * left before anything is read or allocated, so a hostile frame gets an error, never a read past its end or an
 * allocation out of proportion to its size. Fuzzed by tests/fuzz/fuzz_kafka_request.c.
 *
 * Strings come out NUL-terminated in the decoder's arena (a string holding a NUL byte is refused: a name would
 * silently lose its tail); BYTES fields (record batches, group protocol metadata and assignments) point into the
 * frame, so a produced batch is appended from where it was received.
 *
 * Which thread may call: any; no state outside the arguments. */
#ifndef SL_KAFKA_DECODE_H
#define SL_KAFKA_DECODE_H

#include <stddef.h>
#include <stdint.h>

/* API keys (Kafka's numbers). */
enum {
	SL_KAFKA_PRODUCE = 0,
	SL_KAFKA_FETCH = 1,
	SL_KAFKA_LIST_OFFSETS = 2,
	SL_KAFKA_METADATA = 3,
	SL_KAFKA_OFFSET_COMMIT = 8,
	SL_KAFKA_OFFSET_FETCH = 9,
	SL_KAFKA_FIND_COORDINATOR = 10,
	SL_KAFKA_JOIN_GROUP = 11,
	SL_KAFKA_HEARTBEAT = 12,
	SL_KAFKA_LEAVE_GROUP = 13,
	SL_KAFKA_SYNC_GROUP = 14,
	SL_KAFKA_DESCRIBE_GROUPS = 15,
	SL_KAFKA_LIST_GROUPS = 16,
	SL_KAFKA_SASL_HANDSHAKE = 17,
	SL_KAFKA_API_VERSIONS = 18,
	SL_KAFKA_CREATE_TOPICS = 19,
	SL_KAFKA_DELETE_TOPICS = 20,
	SL_KAFKA_INIT_PRODUCER_ID = 22,
	SL_KAFKA_DESCRIBE_CONFIGS = 32,
	SL_KAFKA_SASL_AUTHENTICATE = 36,
	SL_KAFKA_API_KEY_COUNT = 37 /* keys above the last one served are unknown to this table */
};

/* The versions decoded per API key; decodable 0 for a key this broker does not know. */
struct sl_kafka_api_range {
	int8_t decodable;
	int16_t min, max;
};
extern const struct sl_kafka_api_range sl_kafka_api_ranges[SL_KAFKA_API_KEY_COUNT];
/* 1 when key/version can be decoded. */
int sl_kafka_api_supported(int16_t key, int16_t version);
/* "Produce", "Fetch", ... or "unknown". */
const char *sl_kafka_api_name(int16_t key);

/* Memory for decoded structures, freed in one go. Bounded: allocation fails past bytes_max. */
struct sl_kafka_arena {
	struct sl_kafka_arena_block *head;
	size_t used_bytes;
	size_t bytes_max;
};
void *sl_kafka_arena_alloc(struct sl_kafka_arena *a, size_t bytes);
void sl_kafka_arena_free(struct sl_kafka_arena *a);

/* A BYTES field: len -1 for null. Points into the frame. */
struct sl_kafka_bytes {
	uint8_t *data;
	int32_t len;
};

/* ---- bodies ---- */

struct sl_kafka_produce_partition {
	int32_t index;
	struct sl_kafka_bytes records;
};
struct sl_kafka_produce_topic {
	const char *name;
	uint32_t partition_count;
	struct sl_kafka_produce_partition *partitions;
};
struct sl_kafka_produce {
	const char *transactional_id;
	int16_t acks;
	int32_t timeout_ms;
	uint32_t topic_count;
	struct sl_kafka_produce_topic *topics;
};

struct sl_kafka_fetch_partition {
	int32_t partition;
	int64_t fetch_offset;
	int32_t partition_max_bytes;
};
struct sl_kafka_fetch_topic {
	const char *topic;
	uint32_t partition_count;
	struct sl_kafka_fetch_partition *partitions;
};
struct sl_kafka_fetch {
	int32_t max_wait_ms;
	int32_t min_bytes;
	int32_t max_bytes;
	int8_t isolation_level;
	int32_t session_id;
	int32_t session_epoch;
	uint32_t topic_count;
	struct sl_kafka_fetch_topic *topics;
};

struct sl_kafka_list_offsets_partition {
	int32_t index;
	int64_t timestamp; /* -1 latest, -2 earliest, else ms */
};
struct sl_kafka_list_offsets_topic {
	const char *name;
	uint32_t partition_count;
	struct sl_kafka_list_offsets_partition *partitions;
};
struct sl_kafka_list_offsets {
	int8_t isolation_level;
	uint32_t topic_count;
	struct sl_kafka_list_offsets_topic *topics;
};

struct sl_kafka_metadata {
	int all_topics; /* null array (v1+) or empty array (v0) */
	uint32_t topic_count;
	const char **topics;
	int allow_auto_topic_creation;
};

struct sl_kafka_config_entry {
	const char *name;
	const char *value; /* NULL: null */
};
struct sl_kafka_create_topic {
	const char *name;
	int32_t num_partitions;
	int16_t replication_factor;
	uint32_t assignment_count;
	uint32_t config_count;
	struct sl_kafka_config_entry *configs;
};
struct sl_kafka_create_topics {
	uint32_t topic_count;
	struct sl_kafka_create_topic *topics;
	int32_t timeout_ms;
	int validate_only;
};

struct sl_kafka_delete_topics {
	uint32_t topic_count;
	const char **topics;
	int32_t timeout_ms;
};

struct sl_kafka_init_producer_id {
	const char *transactional_id;
	int32_t transaction_timeout_ms;
};

struct sl_kafka_config_resource {
	int8_t type; /* 2 topic, 4 broker */
	const char *name;
	int all_keys; /* null key list */
	uint32_t key_count;
	const char **keys;
};
struct sl_kafka_describe_configs {
	uint32_t resource_count;
	struct sl_kafka_config_resource *resources;
	int include_synonyms;
};

struct sl_kafka_find_coordinator {
	const char *key;
	int8_t key_type; /* 0 group, 1 transaction */
};

struct sl_kafka_join_protocol {
	const char *name;
	struct sl_kafka_bytes metadata;
};
struct sl_kafka_join_group {
	const char *group_id;
	int32_t session_timeout_ms;
	int32_t rebalance_timeout_ms;
	const char *member_id;
	const char *group_instance_id;
	const char *protocol_type;
	uint32_t protocol_count;
	struct sl_kafka_join_protocol *protocols;
};

struct sl_kafka_sync_assignment {
	const char *member_id;
	struct sl_kafka_bytes assignment;
};
struct sl_kafka_sync_group {
	const char *group_id;
	int32_t generation_id;
	const char *member_id;
	const char *group_instance_id;
	uint32_t assignment_count;
	struct sl_kafka_sync_assignment *assignments;
};

struct sl_kafka_heartbeat {
	const char *group_id;
	int32_t generation_id;
	const char *member_id;
};

struct sl_kafka_leave_group {
	const char *group_id;
	uint32_t member_count; /* v0-2: exactly one */
	const char **member_ids;
};

struct sl_kafka_commit_partition {
	int32_t index;
	int64_t offset;
	const char *metadata;
};
struct sl_kafka_commit_topic {
	const char *name;
	uint32_t partition_count;
	struct sl_kafka_commit_partition *partitions;
};
struct sl_kafka_offset_commit {
	const char *group_id;
	int32_t generation_id;
	const char *member_id;
	uint32_t topic_count;
	struct sl_kafka_commit_topic *topics;
};

struct sl_kafka_offset_fetch_topic {
	const char *name;
	uint32_t partition_count;
	int32_t *partitions;
};
struct sl_kafka_offset_fetch {
	const char *group_id;
	int all_topics; /* null topic array (v2+) */
	uint32_t topic_count;
	struct sl_kafka_offset_fetch_topic *topics;
};

struct sl_kafka_describe_groups {
	uint32_t group_count;
	const char **groups;
};

struct sl_kafka_sasl_handshake {
	const char *mechanism;
};

struct sl_kafka_sasl_authenticate {
	struct sl_kafka_bytes auth_bytes;
};

struct sl_kafka_request {
	int16_t api_key;
	int16_t api_version;
	int32_t correlation_id;
	const char *client_id; /* may be NULL */
	int flexible;          /* the request used header v2 and compact encodings */
	union {
		struct sl_kafka_produce produce;
		struct sl_kafka_fetch fetch;
		struct sl_kafka_list_offsets list_offsets;
		struct sl_kafka_metadata metadata;
		struct sl_kafka_create_topics create_topics;
		struct sl_kafka_delete_topics delete_topics;
		struct sl_kafka_init_producer_id init_producer_id;
		struct sl_kafka_describe_configs describe_configs;
		struct sl_kafka_find_coordinator find_coordinator;
		struct sl_kafka_join_group join_group;
		struct sl_kafka_sync_group sync_group;
		struct sl_kafka_heartbeat heartbeat;
		struct sl_kafka_leave_group leave_group;
		struct sl_kafka_offset_commit offset_commit;
		struct sl_kafka_offset_fetch offset_fetch;
		struct sl_kafka_describe_groups describe_groups;
		struct sl_kafka_sasl_handshake sasl_handshake;
		struct sl_kafka_sasl_authenticate sasl_authenticate;
	} u;
};

/* Read the header fields every version shares: api_key, api_version, correlation_id (the first 8 bytes).
 * Returns 0 or -EBADMSG when the frame is shorter than that. Enough to answer an unsupported version. */
int sl_kafka_decode_header(const uint8_t *frame, size_t len, struct sl_kafka_request *out);

/* Decode a whole request of a served key and version (sl_kafka_api_supported). frame stays owned by the caller
 * and must outlive out (BYTES fields point into it). Returns 0, -ENOTSUP for a key/version not served, -EBADMSG
 * for a malformed frame (why says what), or -ENOMEM when the arena is exhausted. */
int sl_kafka_decode(uint8_t *frame, size_t len, struct sl_kafka_arena *arena, struct sl_kafka_request *out,
                    const char **why);

#endif
