/* The Kafka request decoder (decode.h): the request header and the body of every API version this broker serves,
 * read from untrusted bytes with every length checked before it is used.
 *
 * FRAME (Kafka's protocol guide, "Requests"), after the 4-byte size the connection reads:
 *
 *   offset  size  field            meaning
 *   0       2     api_key          which API
 *   2       2     api_version      which version of its layout
 *   4       4     correlation_id   repeated in the response
 *   8       2+N   client_id        NULLABLE_STRING
 *   10+N    ...   tagged fields    header v2 only: the API's flexible versions (here ApiVersions v3)
 *   ...           body             the API's fields for that version, as read below
 *
 * INVARIANTS of a decoded request
 *   1. Every field was read from within the frame: a length or count larger than the bytes left is an error
 *      before anything is read or allocated (wire.h's reader is sticky and bounds-checked).
 *   2. An array of N elements is allocated only when N elements of its smallest encoding fit in the bytes left,
 *      so the arena grows at most in proportion to the frame (ARENA bound in conn.c).
 *   3. Strings are NUL-terminated copies holding no NUL byte; BYTES point into the frame.
 *   4. The whole frame is consumed: trailing bytes after the body are an error (a client speaking another
 *      layout than the version it named). */
#include "broker/kafka/decode.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker/kafka/wire.h"

/* What this broker serves. Produce from v3 and Fetch from v4 (record batch v2, which is what is stored; older
 * versions carry message sets v0/v1), ListOffsets from v1 and OffsetCommit from v2, as Kafka 4.0 does (KIP-896).
 * The maxima are the last version before each API became flexible, at or above what a Kafka 2.1 broker served;
 * ApiVersions v3 is flexible (KIP-511: what today's clients send first). Which of these the listener answers
 * (and advertises) is apis.c's table; this one says what can be decoded. */
const struct sl_kafka_api_range sl_kafka_api_ranges[SL_KAFKA_API_KEY_COUNT] = {
        [SL_KAFKA_PRODUCE] = {1, 3, 7},
        [SL_KAFKA_FETCH] = {1, 4, 11},
        [SL_KAFKA_LIST_OFFSETS] = {1, 1, 5},
        [SL_KAFKA_METADATA] = {1, 0, 8},
        [SL_KAFKA_OFFSET_COMMIT] = {1, 2, 7},
        [SL_KAFKA_OFFSET_FETCH] = {1, 1, 5},
        [SL_KAFKA_FIND_COORDINATOR] = {1, 0, 2},
        [SL_KAFKA_JOIN_GROUP] = {1, 2, 5},
        [SL_KAFKA_HEARTBEAT] = {1, 0, 3},
        [SL_KAFKA_LEAVE_GROUP] = {1, 0, 3},
        [SL_KAFKA_SYNC_GROUP] = {1, 0, 3},
        [SL_KAFKA_DESCRIBE_GROUPS] = {1, 0, 4},
        [SL_KAFKA_LIST_GROUPS] = {1, 0, 2},
        [SL_KAFKA_API_VERSIONS] = {1, 0, 3},
        [SL_KAFKA_CREATE_TOPICS] = {1, 0, 4},
        [SL_KAFKA_DELETE_TOPICS] = {1, 0, 3},
        [SL_KAFKA_INIT_PRODUCER_ID] = {1, 0, 1},
        [SL_KAFKA_DESCRIBE_CONFIGS] = {1, 0, 2},
        /* SASL (broker/kafka/sasl.c). After handshake v0 (kafka-python 2.0, Java clients before 1.0) the tokens
         * come as bare frames; v1 sends them in SaslAuthenticate. */
        [SL_KAFKA_SASL_HANDSHAKE] = {1, 0, 1},
        [SL_KAFKA_SASL_AUTHENTICATE] = {1, 0, 1},
};

static const char *const api_names[SL_KAFKA_API_KEY_COUNT] = {
        [SL_KAFKA_PRODUCE] = "Produce",
        [SL_KAFKA_FETCH] = "Fetch",
        [SL_KAFKA_LIST_OFFSETS] = "ListOffsets",
        [SL_KAFKA_METADATA] = "Metadata",
        [4] = "LeaderAndIsr",
        [5] = "StopReplica",
        [6] = "UpdateMetadata",
        [7] = "ControlledShutdown",
        [SL_KAFKA_OFFSET_COMMIT] = "OffsetCommit",
        [SL_KAFKA_OFFSET_FETCH] = "OffsetFetch",
        [SL_KAFKA_FIND_COORDINATOR] = "FindCoordinator",
        [SL_KAFKA_JOIN_GROUP] = "JoinGroup",
        [SL_KAFKA_HEARTBEAT] = "Heartbeat",
        [SL_KAFKA_LEAVE_GROUP] = "LeaveGroup",
        [SL_KAFKA_SYNC_GROUP] = "SyncGroup",
        [SL_KAFKA_DESCRIBE_GROUPS] = "DescribeGroups",
        [SL_KAFKA_LIST_GROUPS] = "ListGroups",
        [SL_KAFKA_SASL_HANDSHAKE] = "SaslHandshake",
        [SL_KAFKA_API_VERSIONS] = "ApiVersions",
        [SL_KAFKA_CREATE_TOPICS] = "CreateTopics",
        [SL_KAFKA_DELETE_TOPICS] = "DeleteTopics",
        [21] = "DeleteRecords",
        [SL_KAFKA_INIT_PRODUCER_ID] = "InitProducerId",
        [23] = "OffsetForLeaderEpoch",
        [24] = "AddPartitionsToTxn",
        [25] = "AddOffsetsToTxn",
        [26] = "EndTxn",
        [27] = "WriteTxnMarkers",
        [28] = "TxnOffsetCommit",
        [29] = "DescribeAcls",
        [30] = "CreateAcls",
        [31] = "DeleteAcls",
        [SL_KAFKA_DESCRIBE_CONFIGS] = "DescribeConfigs",
        [33] = "AlterConfigs",
        [34] = "AlterReplicaLogDirs",
        [35] = "DescribeLogDirs",
        [SL_KAFKA_SASL_AUTHENTICATE] = "SaslAuthenticate",
};

int sl_kafka_api_supported(int16_t key, int16_t version)
{
	if (key < 0 || key >= SL_KAFKA_API_KEY_COUNT)
		return 0;
	const struct sl_kafka_api_range *r = &sl_kafka_api_ranges[key];
	return r->decodable && version >= r->min && version <= r->max;
}

const char *sl_kafka_api_name(int16_t key)
{
	if (key < 0 || key >= SL_KAFKA_API_KEY_COUNT || api_names[key] == NULL)
		return "unknown";
	return api_names[key];
}

/* ---- arena ---- */

/* Blocks of at least ARENA_BLOCK_BYTES, allocated by bumping a pointer: a string costs its bytes rounded up to 8,
 * not a malloc each. */
#define ARENA_BLOCK_BYTES (16u * 1024)

struct sl_kafka_arena_block {
	struct sl_kafka_arena_block *next;
	size_t used, cap;
	max_align_t data[];
};

void *sl_kafka_arena_alloc(struct sl_kafka_arena *a, size_t bytes)
{
	bytes = (bytes + 7) & ~(size_t)7;
	if (bytes > a->bytes_max || a->used_bytes > a->bytes_max - bytes)
		return NULL;
	struct sl_kafka_arena_block *b = a->head;
	if (b == NULL || b->cap - b->used < bytes) {
		size_t cap = bytes > ARENA_BLOCK_BYTES ? bytes : ARENA_BLOCK_BYTES;
		b = malloc(sizeof(*b) + cap);
		if (b == NULL)
			return NULL;
		b->used = 0;
		b->cap = cap;
		b->next = a->head;
		a->head = b;
	}
	void *p = (uint8_t *)b->data + b->used;
	b->used += bytes;
	a->used_bytes += bytes;
	memset(p, 0, bytes);
	return p;
}

void sl_kafka_arena_free(struct sl_kafka_arena *a)
{
	while (a->head) {
		struct sl_kafka_arena_block *b = a->head;
		a->head = b->next;
		free(b);
	}
	a->used_bytes = 0;
}

/* ---- the decoding context ---- */

struct dec {
	struct sl_kread r;
	struct sl_kafka_arena *arena;
	int16_t v;
	int flexible;
	int nomem;
	const char *why; /* first problem met */
};

static void bad(struct dec *d, const char *why)
{
	if (d->why == NULL)
		d->why = why;
	d->r.err = 1;
}

static int ok(const struct dec *d)
{
	return !d->r.err && !d->nomem;
}

/* A STRING (nullable when allowed), copied NUL-terminated. NULL for null or on error. */
static const char *str(struct dec *d, int nullable)
{
	int64_t len;
	if (d->flexible)
		len = (int64_t)sl_kread_uvarint(&d->r) - 1;
	else
		len = sl_kread_i16(&d->r);
	if (!ok(d))
		return NULL;
	if (len < 0) {
		if (len != -1 || !nullable)
			bad(d, "a string has a negative length");
		return NULL;
	}
	const uint8_t *p = sl_kread_take(&d->r, len);
	if (p == NULL) {
		bad(d, "a string runs past the end of the request");
		return NULL;
	}
	if (memchr(p, 0, (size_t)len) != NULL) {
		bad(d, "a string holds a NUL byte");
		return NULL;
	}
	char *s = sl_kafka_arena_alloc(d->arena, (size_t)len + 1);
	if (s == NULL) {
		d->nomem = 1;
		return NULL;
	}
	memcpy(s, p, (size_t)len);
	return s;
}

/* A non-null STRING: "" on error so callers need no NULL checks (the error is reported at the end). */
static const char *name(struct dec *d)
{
	const char *s = str(d, 0);
	return s ? s : "";
}

static struct sl_kafka_bytes bytes(struct dec *d, int nullable)
{
	struct sl_kafka_bytes b = {NULL, -1};
	int64_t len = sl_kread_i32(&d->r);
	if (!ok(d))
		return b;
	if (len < 0) {
		if (len != -1 || !nullable)
			bad(d, "a bytes field has a negative length");
		return b;
	}
	const uint8_t *p = sl_kread_take(&d->r, len);
	if (p == NULL) {
		bad(d, "a bytes field runs past the end of the request");
		return b;
	}
	b.data = (uint8_t *)p; /* the frame is the caller's, writable (decode.h) */
	b.len = (int32_t)len;
	return b;
}

static int boolean(struct dec *d)
{
	return sl_kread_i8(&d->r) != 0;
}

/* An array's count, checked against the bytes left for elements of at least min_elem_bytes (invariant 2).
 * *is_null is set for a null array when nullable, else null is an error. Returns the count (0 on error). */
static uint32_t count(struct dec *d, size_t min_elem_bytes, int nullable, int *is_null)
{
	int64_t n = d->flexible ? (int64_t)sl_kread_uvarint(&d->r) - 1 : sl_kread_i32(&d->r);
	if (is_null)
		*is_null = 0;
	if (!ok(d))
		return 0;
	if (n < 0) {
		if (n == -1 && nullable && is_null)
			*is_null = 1;
		else
			bad(d, "an array has a negative count");
		return 0;
	}
	if ((uint64_t)n > sl_kread_left(&d->r) / min_elem_bytes) {
		bad(d, "an array count is larger than the request could hold");
		return 0;
	}
	return (uint32_t)n;
}

static void *array(struct dec *d, uint32_t n, size_t elem_bytes)
{
	if (!ok(d))
		return NULL;
	void *p = sl_kafka_arena_alloc(d->arena, (size_t)n * elem_bytes);
	if (p == NULL)
		d->nomem = 1;
	return p;
}

static const char **name_array(struct dec *d, uint32_t *n_out, int nullable, int *is_null)
{
	uint32_t n = count(d, 2, nullable, is_null);
	const char **names = array(d, n, sizeof(*names));
	for (uint32_t i = 0; names && i < n && ok(d); i++)
		names[i] = name(d);
	*n_out = ok(d) ? n : 0;
	return names;
}

/* ---- bodies, one per API; field comments name the versions that carry them ---- */

static void produce(struct dec *d, struct sl_kafka_produce *p)
{
	p->transactional_id = str(d, 1);
	p->acks = sl_kread_i16(&d->r);
	p->timeout_ms = sl_kread_i32(&d->r);
	/* topic: name (2+) + partition count (4) */
	p->topic_count = count(d, 6, 0, NULL);
	p->topics = array(d, p->topic_count, sizeof(*p->topics));
	for (uint32_t t = 0; p->topics && t < p->topic_count && ok(d); t++) {
		struct sl_kafka_produce_topic *pt = &p->topics[t];
		pt->name = name(d);
		/* partition: index (4) + records length (4) */
		pt->partition_count = count(d, 8, 0, NULL);
		pt->partitions = array(d, pt->partition_count, sizeof(*pt->partitions));
		for (uint32_t i = 0; pt->partitions && i < pt->partition_count && ok(d); i++) {
			pt->partitions[i].index = sl_kread_i32(&d->r);
			pt->partitions[i].records = bytes(d, 1);
		}
	}
}

static void fetch(struct dec *d, struct sl_kafka_fetch *f)
{
	(void)sl_kread_i32(&d->r); /* replica_id: -1 for consumers */
	f->max_wait_ms = sl_kread_i32(&d->r);
	f->min_bytes = sl_kread_i32(&d->r);
	f->max_bytes = sl_kread_i32(&d->r);      /* v3+ */
	f->isolation_level = sl_kread_i8(&d->r); /* v4+ */
	f->session_id = 0;
	f->session_epoch = -1;
	if (d->v >= 7) {
		f->session_id = sl_kread_i32(&d->r);
		f->session_epoch = sl_kread_i32(&d->r);
	}
	f->topic_count = count(d, 6, 0, NULL);
	f->topics = array(d, f->topic_count, sizeof(*f->topics));
	/* partition: 4 + 8 + 4, plus leader epoch (v9+) and log start offset (v5+) */
	size_t part_bytes = 16 + (d->v >= 9 ? 4 : 0) + (d->v >= 5 ? 8 : 0);
	for (uint32_t t = 0; f->topics && t < f->topic_count && ok(d); t++) {
		struct sl_kafka_fetch_topic *ft = &f->topics[t];
		ft->topic = name(d);
		ft->partition_count = count(d, part_bytes, 0, NULL);
		ft->partitions = array(d, ft->partition_count, sizeof(*ft->partitions));
		for (uint32_t i = 0; ft->partitions && i < ft->partition_count && ok(d); i++) {
			struct sl_kafka_fetch_partition *fp = &ft->partitions[i];
			fp->partition = sl_kread_i32(&d->r);
			if (d->v >= 9)
				(void)sl_kread_i32(&d->r); /* current_leader_epoch */
			fp->fetch_offset = sl_kread_i64(&d->r);
			if (d->v >= 5)
				(void)sl_kread_i64(&d->r); /* log_start_offset: followers only */
			fp->partition_max_bytes = sl_kread_i32(&d->r);
		}
	}
	if (d->v >= 7) {
		/* forgotten_topics_data: sessions are not kept (every fetch is a full one), so nothing to forget. */
		uint32_t n = count(d, 6, 0, NULL);
		for (uint32_t t = 0; t < n && ok(d); t++) {
			(void)name(d);
			uint32_t k = count(d, 4, 0, NULL);
			(void)sl_kread_take(&d->r, (int64_t)k * 4);
		}
	}
	if (d->v >= 11)
		(void)name(d); /* rack_id */
}

static void list_offsets(struct dec *d, struct sl_kafka_list_offsets *l)
{
	(void)sl_kread_i32(&d->r); /* replica_id */
	l->isolation_level = d->v >= 2 ? sl_kread_i8(&d->r) : 0;
	l->topic_count = count(d, 6, 0, NULL);
	l->topics = array(d, l->topic_count, sizeof(*l->topics));
	size_t part_bytes = 12 + (d->v >= 4 ? 4 : 0);
	for (uint32_t t = 0; l->topics && t < l->topic_count && ok(d); t++) {
		struct sl_kafka_list_offsets_topic *lt = &l->topics[t];
		lt->name = name(d);
		lt->partition_count = count(d, part_bytes, 0, NULL);
		lt->partitions = array(d, lt->partition_count, sizeof(*lt->partitions));
		for (uint32_t i = 0; lt->partitions && i < lt->partition_count && ok(d); i++) {
			lt->partitions[i].index = sl_kread_i32(&d->r);
			if (d->v >= 4)
				(void)sl_kread_i32(&d->r); /* current_leader_epoch */
			lt->partitions[i].timestamp = sl_kread_i64(&d->r);
		}
	}
}

static void metadata(struct dec *d, struct sl_kafka_metadata *m)
{
	int is_null = 0;
	m->topics = name_array(d, &m->topic_count, d->v >= 1, &is_null);
	/* v0 has no null array: an empty one asks for every topic. */
	m->all_topics = is_null || (d->v == 0 && m->topic_count == 0);
	m->allow_auto_topic_creation = d->v >= 4 ? boolean(d) : 1;
	if (d->v >= 8) {
		(void)boolean(d); /* include_cluster_authorized_operations */
		(void)boolean(d); /* include_topic_authorized_operations */
	}
}

static void create_topics(struct dec *d, struct sl_kafka_create_topics *c)
{
	/* topic: name 2 + partitions 4 + replication 2 + two counts 8 */
	c->topic_count = count(d, 16, 0, NULL);
	c->topics = array(d, c->topic_count, sizeof(*c->topics));
	for (uint32_t t = 0; c->topics && t < c->topic_count && ok(d); t++) {
		struct sl_kafka_create_topic *ct = &c->topics[t];
		ct->name = name(d);
		ct->num_partitions = sl_kread_i32(&d->r);
		ct->replication_factor = sl_kread_i16(&d->r);
		ct->assignment_count = count(d, 8, 0, NULL);
		for (uint32_t i = 0; i < ct->assignment_count && ok(d); i++) {
			(void)sl_kread_i32(&d->r); /* partition_index */
			uint32_t k = count(d, 4, 0, NULL);
			(void)sl_kread_take(&d->r, (int64_t)k * 4);
		}
		ct->config_count = count(d, 4, 0, NULL);
		ct->configs = array(d, ct->config_count, sizeof(*ct->configs));
		for (uint32_t i = 0; ct->configs && i < ct->config_count && ok(d); i++) {
			ct->configs[i].name = name(d);
			ct->configs[i].value = str(d, 1);
		}
	}
	c->timeout_ms = sl_kread_i32(&d->r);
	c->validate_only = d->v >= 1 ? boolean(d) : 0;
}

static void delete_topics(struct dec *d, struct sl_kafka_delete_topics *x)
{
	x->topics = name_array(d, &x->topic_count, 0, NULL);
	x->timeout_ms = sl_kread_i32(&d->r);
}

static void init_producer_id(struct dec *d, struct sl_kafka_init_producer_id *x)
{
	x->transactional_id = str(d, 1);
	x->transaction_timeout_ms = sl_kread_i32(&d->r);
}

static void describe_configs(struct dec *d, struct sl_kafka_describe_configs *x)
{
	/* resource: type 1 + name 2 + keys 4 */
	x->resource_count = count(d, 7, 0, NULL);
	x->resources = array(d, x->resource_count, sizeof(*x->resources));
	for (uint32_t i = 0; x->resources && i < x->resource_count && ok(d); i++) {
		struct sl_kafka_config_resource *res = &x->resources[i];
		res->type = sl_kread_i8(&d->r);
		res->name = name(d);
		res->keys = name_array(d, &res->key_count, 1, &res->all_keys);
	}
	x->include_synonyms = d->v >= 1 ? boolean(d) : 0;
}

static void find_coordinator(struct dec *d, struct sl_kafka_find_coordinator *x)
{
	x->key = name(d);
	x->key_type = d->v >= 1 ? sl_kread_i8(&d->r) : 0;
}

static void join_group(struct dec *d, struct sl_kafka_join_group *x)
{
	x->group_id = name(d);
	x->session_timeout_ms = sl_kread_i32(&d->r);
	x->rebalance_timeout_ms = sl_kread_i32(&d->r); /* v1+ */
	x->member_id = name(d);
	x->group_instance_id = d->v >= 5 ? str(d, 1) : NULL;
	x->protocol_type = name(d);
	/* protocol: name 2 + metadata 4 */
	x->protocol_count = count(d, 6, 0, NULL);
	x->protocols = array(d, x->protocol_count, sizeof(*x->protocols));
	for (uint32_t i = 0; x->protocols && i < x->protocol_count && ok(d); i++) {
		x->protocols[i].name = name(d);
		x->protocols[i].metadata = bytes(d, 0);
	}
}

static void sync_group(struct dec *d, struct sl_kafka_sync_group *x)
{
	x->group_id = name(d);
	x->generation_id = sl_kread_i32(&d->r);
	x->member_id = name(d);
	x->group_instance_id = d->v >= 3 ? str(d, 1) : NULL;
	x->assignment_count = count(d, 6, 0, NULL);
	x->assignments = array(d, x->assignment_count, sizeof(*x->assignments));
	for (uint32_t i = 0; x->assignments && i < x->assignment_count && ok(d); i++) {
		x->assignments[i].member_id = name(d);
		x->assignments[i].assignment = bytes(d, 0);
	}
}

static void heartbeat(struct dec *d, struct sl_kafka_heartbeat *x)
{
	x->group_id = name(d);
	x->generation_id = sl_kread_i32(&d->r);
	x->member_id = name(d);
	if (d->v >= 3)
		(void)str(d, 1); /* group_instance_id */
}

static void leave_group(struct dec *d, struct sl_kafka_leave_group *x)
{
	x->group_id = name(d);
	if (d->v <= 2) {
		x->member_ids = array(d, 1, sizeof(*x->member_ids));
		if (x->member_ids) {
			x->member_ids[0] = name(d);
			x->member_count = 1;
		}
		return;
	}
	/* member: id 2 + instance id 2 */
	x->member_count = count(d, 4, 0, NULL);
	x->member_ids = array(d, x->member_count, sizeof(*x->member_ids));
	for (uint32_t i = 0; x->member_ids && i < x->member_count && ok(d); i++) {
		x->member_ids[i] = name(d);
		(void)str(d, 1); /* group_instance_id */
	}
}

static void offset_commit(struct dec *d, struct sl_kafka_offset_commit *x)
{
	x->group_id = name(d);
	x->generation_id = sl_kread_i32(&d->r);
	x->member_id = name(d);
	if (d->v >= 7)
		(void)str(d, 1); /* group_instance_id */
	if (d->v <= 4)
		(void)sl_kread_i64(&d->r); /* retention_time_ms: offsets are kept until the group is deleted */
	x->topic_count = count(d, 6, 0, NULL);
	x->topics = array(d, x->topic_count, sizeof(*x->topics));
	size_t part_bytes = 14 + (d->v >= 6 ? 4 : 0);
	for (uint32_t t = 0; x->topics && t < x->topic_count && ok(d); t++) {
		struct sl_kafka_commit_topic *ct = &x->topics[t];
		ct->name = name(d);
		ct->partition_count = count(d, part_bytes, 0, NULL);
		ct->partitions = array(d, ct->partition_count, sizeof(*ct->partitions));
		for (uint32_t i = 0; ct->partitions && i < ct->partition_count && ok(d); i++) {
			ct->partitions[i].index = sl_kread_i32(&d->r);
			ct->partitions[i].offset = sl_kread_i64(&d->r);
			if (d->v >= 6)
				(void)sl_kread_i32(&d->r); /* committed_leader_epoch */
			ct->partitions[i].metadata = str(d, 1);
		}
	}
}

static void offset_fetch(struct dec *d, struct sl_kafka_offset_fetch *x)
{
	x->group_id = name(d);
	x->topic_count = count(d, 6, d->v >= 2, &x->all_topics);
	x->topics = array(d, x->topic_count, sizeof(*x->topics));
	for (uint32_t t = 0; x->topics && t < x->topic_count && ok(d); t++) {
		struct sl_kafka_offset_fetch_topic *ft = &x->topics[t];
		ft->name = name(d);
		ft->partition_count = count(d, 4, 0, NULL);
		ft->partitions = array(d, ft->partition_count, sizeof(*ft->partitions));
		for (uint32_t i = 0; ft->partitions && i < ft->partition_count && ok(d); i++)
			ft->partitions[i] = sl_kread_i32(&d->r);
	}
}

static void describe_groups(struct dec *d, struct sl_kafka_describe_groups *x)
{
	x->groups = name_array(d, &x->group_count, 0, NULL);
	if (d->v >= 3)
		(void)boolean(d); /* include_authorized_operations */
}

static void sasl_handshake(struct dec *d, struct sl_kafka_sasl_handshake *x)
{
	x->mechanism = name(d);
}

static void sasl_authenticate(struct dec *d, struct sl_kafka_sasl_authenticate *x)
{
	x->auth_bytes = bytes(d, 0);
}

static void api_versions(struct dec *d)
{
	if (d->v >= 3) {
		(void)str(d, 0); /* client_software_name */
		(void)str(d, 0); /* client_software_version */
		sl_kread_skip_tags(&d->r);
	}
}

/* ---- entry points ---- */

int sl_kafka_decode_header(const uint8_t *frame, size_t len, struct sl_kafka_request *out)
{
	struct sl_kread r = {frame, frame + len, 0};
	memset(out, 0, sizeof(*out));
	out->api_key = sl_kread_i16(&r);
	out->api_version = sl_kread_i16(&r);
	out->correlation_id = sl_kread_i32(&r);
	return r.err ? -EBADMSG : 0;
}

int sl_kafka_decode(uint8_t *frame, size_t len, struct sl_kafka_arena *arena, struct sl_kafka_request *out,
                    const char **why)
{
	*why = NULL;
	if (sl_kafka_decode_header(frame, len, out) < 0) {
		*why = "request shorter than its 8-byte header";
		return -EBADMSG;
	}
	if (!sl_kafka_api_supported(out->api_key, out->api_version)) {
		*why = "API key or version not served";
		return -ENOTSUP;
	}
	struct dec d = {.r = {frame + 8, frame + len, 0}, .arena = arena, .v = out->api_version};
	/* The client id is a NULLABLE_STRING even in header v2. */
	out->client_id = str(&d, 1);
	out->flexible = out->api_key == SL_KAFKA_API_VERSIONS && out->api_version >= 3;
	if (out->flexible)
		sl_kread_skip_tags(&d.r);
	d.flexible = out->flexible;
	switch (out->api_key) {
	case SL_KAFKA_PRODUCE:
		produce(&d, &out->u.produce);
		break;
	case SL_KAFKA_FETCH:
		fetch(&d, &out->u.fetch);
		break;
	case SL_KAFKA_LIST_OFFSETS:
		list_offsets(&d, &out->u.list_offsets);
		break;
	case SL_KAFKA_METADATA:
		metadata(&d, &out->u.metadata);
		break;
	case SL_KAFKA_OFFSET_COMMIT:
		offset_commit(&d, &out->u.offset_commit);
		break;
	case SL_KAFKA_OFFSET_FETCH:
		offset_fetch(&d, &out->u.offset_fetch);
		break;
	case SL_KAFKA_FIND_COORDINATOR:
		find_coordinator(&d, &out->u.find_coordinator);
		break;
	case SL_KAFKA_JOIN_GROUP:
		join_group(&d, &out->u.join_group);
		break;
	case SL_KAFKA_HEARTBEAT:
		heartbeat(&d, &out->u.heartbeat);
		break;
	case SL_KAFKA_LEAVE_GROUP:
		leave_group(&d, &out->u.leave_group);
		break;
	case SL_KAFKA_SYNC_GROUP:
		sync_group(&d, &out->u.sync_group);
		break;
	case SL_KAFKA_DESCRIBE_GROUPS:
		describe_groups(&d, &out->u.describe_groups);
		break;
	case SL_KAFKA_LIST_GROUPS:
		break;
	case SL_KAFKA_API_VERSIONS:
		api_versions(&d);
		break;
	case SL_KAFKA_CREATE_TOPICS:
		create_topics(&d, &out->u.create_topics);
		break;
	case SL_KAFKA_DELETE_TOPICS:
		delete_topics(&d, &out->u.delete_topics);
		break;
	case SL_KAFKA_INIT_PRODUCER_ID:
		init_producer_id(&d, &out->u.init_producer_id);
		break;
	case SL_KAFKA_DESCRIBE_CONFIGS:
		describe_configs(&d, &out->u.describe_configs);
		break;
	case SL_KAFKA_SASL_HANDSHAKE:
		sasl_handshake(&d, &out->u.sasl_handshake);
		break;
	case SL_KAFKA_SASL_AUTHENTICATE:
		sasl_authenticate(&d, &out->u.sasl_authenticate);
		break;
	default:
		/* A key in the served table with no decoder is a programmer error in this file. */
		*why = "API key has no decoder";
		return -ENOTSUP;
	}
	if (d.nomem)
		return -ENOMEM;
	if (!d.r.err && d.r.p != d.r.end)
		bad(&d, "bytes left over after the request body (a layout other than the version named)");
	if (d.r.err) {
		*why = d.why ? d.why : "the request ends in the middle of a field";
		return -EBADMSG;
	}
	return 0;
}
