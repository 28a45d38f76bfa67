/* Kafka record batch v2: parse and validate batches from untrusted bytes, build them from records, iterate their
 * records. Everything that reads a batch is bounds-checked against the bytes given, because every batch a
 * client sends passes through here before anything trusts it.
 *
 * FORMAT
 *
 * Fixed header, 61 bytes, every integer big-endian:
 *
 *   offset  size  field                 meaning
 *   0       8     baseOffset            offset of the first record; assigned by the broker, outside the CRC
 *   8       4     batchLength           bytes after this field: the whole batch is 12 + batchLength bytes
 *   12      4     partitionLeaderEpoch  -1 from the builder; stamped by the broker, outside the CRC
 *   16      1     magic                 2
 *   17      4     crc                   CRC32C (unsigned) of bytes 21 .. end of batch
 *   21      2     attributes            bits 0-2 codec (0 none, 4 zstd), bit 3 timestamp type (0 CreateTime),
 *                                       bit 4 transactional, bit 5 control, bit 6 delete horizon (cleaner only)
 *   23      4     lastOffsetDelta       recordsCount - 1 (as produced; see invariant 10)
 *   27      8     baseTimestamp         timestamp of the first record, ms since the epoch; with bit 6, the
 *                                       delete horizon instead (records keep base + delta as their timestamp)
 *   35      8     maxTimestamp          largest record timestamp, ms
 *   43      8     producerId            -1 when not idempotent
 *   51      2     producerEpoch         -1 when not idempotent
 *   53      4     baseSequence          -1 when not idempotent
 *   57      4     recordsCount          number of records; never compressed
 *   61      ...   records               the records back to back; with codec zstd, one zstd frame whose content
 *                                       is exactly those records
 *
 * One record (varint: zigzag int32, varlong: zigzag int64, see varint.h):
 *
 *   length            varint   bytes of the record after this field
 *   attributes        int8     unused, 0
 *   timestampDelta    varlong  timestamp - baseTimestamp, may be negative
 *   offsetDelta       varint   offset - baseOffset, which is the record's index in the batch
 *   keyLength         varint   -1 for a null key
 *   key               bytes
 *   valueLength       varint   -1 for a null value (a tombstone)
 *   value             bytes
 *   headersCount      varint
 *   headersCount times:
 *     headerKeyLength    varint   never negative: a header name is never null
 *     headerKey          bytes
 *     headerValueLength  varint   -1 for a null value
 *     headerValue        bytes
 *
 * The sync fields travel as record headers. Each is written only when it differs from its default, so a record
 * without sync fields costs one byte (headersCount 0) over a plain Kafka record:
 *
 *   name    value                                default when absent
 *   v       version, decimal ASCII int64         SL_VERSION_NONE
 *   op      "upsert", "delete" or "changed"      upsert, or delete for a null value (a Kafka tombstone)
 *   origin  "live", "backfill" or "repair"       live     (so only other origins carry it)
 *   ik      idempotency key, opaque bytes        none
 *   sv      schema version, decimal ASCII int32  0        (so only non-zero versions carry it)
 *   origin_system   the service that made the change, text   none
 *   changed_at      when it did, decimal ms (int64 > 0)      none (0)
 *
 * A record read from a batch also carries its whole headers section as it is (sl_record.headers), and a record
 * given to the builder with one is written with it unchanged: that is how a copy keeps headers other clients
 * added, in their order.
 *
 * INVARIANTS of every batch sl_batch_validate accepts
 *
 *   1. It has at least the 61 header bytes, magic 2, and exactly 12 + batchLength bytes, at most
 *      SL_BATCH_BYTES_MAX.
 *   2. crc is the CRC32C of bytes 21 .. end. baseOffset and partitionLeaderEpoch lie before byte 21, so the
 *      broker rewrites them without touching the CRC.
 *   3. recordsCount == lastOffsetDelta + 1, hence recordsCount >= 1.
 *   4. The codec is none or zstd. Invariants 5 to 9 hold for the records section as stored (none) or as
 *      decompressed (zstd; checked only when the caller gives a scratch buffer).
 *   5. The section holds exactly recordsCount records and not one byte more.
 *   6. Every record's length field equals the bytes its fields take; no field runs past its record.
 *   7. Record i has offsetDelta i; baseOffset + i and baseTimestamp + timestampDelta fit an int64.
 *   8. No length is negative except -1 where null is allowed (key, value, header value); a header count is not.
 *   9. Sync headers, where present, are well formed and appear at most once per record: v a decimal int64 other
 *      than SL_VERSION_NONE, op and origin one of their names, sv a decimal int32, ik and origin_system any
 *      bytes, changed_at a decimal int64 above 0; none is null. A record with op delete has a null value. Headers with
 * other names are skipped: a Kafka client may add its own.
 *
 *  10. A batch the cleaner rewrote (broker/storage/cleaner.c) keeps its baseOffset and lastOffsetDelta but may hold
 *      fewer records: recordsCount <= lastOffsetDelta + 1 (0 when all went, to mark the offsets it covered), the
 *      records' offsetDeltas strictly increasing and at most lastOffsetDelta, each record at its original offset.
 *      Such batches exist only in compacted segments; sl_batch_validate_stored and sl_record_iter accept them,
 *      sl_batch_validate (what clients send) does not.
 *
 * The builder also guarantees what validation does not check, since Kafka producers need not: maxTimestamp is
 * the largest record timestamp, record attributes are 0, timestamp type is CreateTime. Every batch the builder
 * produces passes sl_batch_validate, and sl_record_iter returns every record of a validated batch. */
#include "proto/base/be.h"
#include "proto/batch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "proto/base/assert.h"
#include "proto/crc32c.h"
#include "proto/varint.h"

/* Header field offsets, each derived from the one before so that a wrong size shows up in the asserts below. */
#define OFF_BASE_OFFSET       0
#define OFF_BATCH_LENGTH      (OFF_BASE_OFFSET + 8)
#define OFF_LEADER_EPOCH      (OFF_BATCH_LENGTH + 4)
#define OFF_MAGIC             (OFF_LEADER_EPOCH + 4)
#define OFF_CRC               (OFF_MAGIC + 1)
#define OFF_ATTRIBUTES        (OFF_CRC + 4)
#define OFF_LAST_OFFSET_DELTA (OFF_ATTRIBUTES + 2)
#define OFF_BASE_TIMESTAMP    (OFF_LAST_OFFSET_DELTA + 4)
#define OFF_MAX_TIMESTAMP     (OFF_BASE_TIMESTAMP + 8)
#define OFF_PRODUCER_ID       (OFF_MAX_TIMESTAMP + 8)
#define OFF_PRODUCER_EPOCH    (OFF_PRODUCER_ID + 8)
#define OFF_BASE_SEQUENCE     (OFF_PRODUCER_EPOCH + 2)
#define OFF_RECORD_COUNT      (OFF_BASE_SEQUENCE + 4)
#define OFF_RECORDS           (OFF_RECORD_COUNT + 4)

_Static_assert(OFF_BASE_OFFSET == 0, "baseOffset at 0");
_Static_assert(OFF_BATCH_LENGTH == 8, "batchLength at 8");
_Static_assert(OFF_LEADER_EPOCH == 12, "partitionLeaderEpoch at 12");
_Static_assert(OFF_MAGIC == 16, "magic at 16");
_Static_assert(OFF_CRC == 17, "crc at 17");
_Static_assert(OFF_ATTRIBUTES == 21 && SL_BATCH_CRC_START == OFF_ATTRIBUTES, "attributes at 21, where the CRC starts");
_Static_assert(OFF_LAST_OFFSET_DELTA == 23, "lastOffsetDelta at 23");
_Static_assert(OFF_BASE_TIMESTAMP == 27, "baseTimestamp at 27");
_Static_assert(OFF_MAX_TIMESTAMP == 35, "maxTimestamp at 35");
_Static_assert(OFF_PRODUCER_ID == 43, "producerId at 43");
_Static_assert(OFF_PRODUCER_EPOCH == 51, "producerEpoch at 51");
_Static_assert(OFF_BASE_SEQUENCE == 53, "baseSequence at 53");
_Static_assert(OFF_RECORD_COUNT == 57, "recordsCount at 57");
_Static_assert(OFF_RECORDS == 61 && SL_BATCH_HEADER_BYTES == 61, "records at 61, after the 61-byte header");
_Static_assert(SL_BATCH_LOG_OVERHEAD_BYTES == 12 && SL_BATCH_LOG_OVERHEAD_BYTES == OFF_LEADER_EPOCH,
               "batchLength counts from partitionLeaderEpoch on");
_Static_assert(SL_BATCH_BYTES_MAX - SL_BATCH_LOG_OVERHEAD_BYTES <= INT32_MAX, "batchLength fits an int32");
_Static_assert((SL_BATCH_CODEC_ZSTD & ~SL_BATCH_ATTR_CODEC_MASK) == 0, "codec within its bits");

/* The smallest batchLength: a header and no records. */
#define BATCH_LENGTH_MIN (SL_BATCH_HEADER_BYTES - SL_BATCH_LOG_OVERHEAD_BYTES)
_Static_assert(BATCH_LENGTH_MIN == 49, "batchLength of an empty batch");

/* Kafka's default zstd level (compression.zstd.level); the producer side pays for it, not the broker. */
#define ZSTD_LEVEL        3
/* "-9223372036854775808" */
#define DECIMAL_BYTES_MAX SL_RECORD_DECIMAL_BYTES
_Static_assert(DECIMAL_BYTES_MAX == 20, "the decimal text of INT64_MIN is 20 bytes");
/* A record's op before its headers are read: absent unless an op header sets it. */
#define OP_ABSENT        ((enum sl_op) - 1)
/* Sync headers a record may carry: v, op, origin, ik, sv, origin_system, changed_at. */
#define SYNC_HEADERS_MAX SL_RECORD_SYNC_HEADERS_MAX
_Static_assert(SYNC_HEADERS_MAX == 7, "seven sync headers: v, op, origin, ik, sv, origin_system, changed_at");

static int bad(const char **why, const char *message)
{
	if (why)
		*why = message;
	return -EBADMSG;
}

/* ---- names of the sync enums ---- */

static const char *const op_names[] = {
        [SL_OP_UPSERT] = "upsert", [SL_OP_DELETE] = "delete", [SL_OP_CHANGED] = "changed"};
static const char *const origin_names[] = {
        [SL_ORIGIN_LIVE] = "live", [SL_ORIGIN_BACKFILL] = "backfill", [SL_ORIGIN_REPAIR] = "repair"};

#define ARRAY_COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *sl_op_name(enum sl_op op)
{
	SL_ASSERT((unsigned)op < ARRAY_COUNT(op_names));
	return op_names[op];
}

const char *sl_origin_name(enum sl_origin origin)
{
	SL_ASSERT((unsigned)origin < ARRAY_COUNT(origin_names));
	return origin_names[origin];
}

static int name_index(const char *const *names, size_t count, const char *s, size_t len)
{
	for (size_t i = 0; i < count; i++)
		if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0)
			return (int)i;
	return -EINVAL;
}

int sl_op_parse(const char *s, size_t len, enum sl_op *out)
{
	int i = name_index(op_names, ARRAY_COUNT(op_names), s, len);

	if (i < 0)
		return i;
	*out = (enum sl_op)i;
	return 0;
}

int sl_origin_parse(const char *s, size_t len, enum sl_origin *out)
{
	int i = name_index(origin_names, ARRAY_COUNT(origin_names), s, len);

	if (i < 0)
		return i;
	*out = (enum sl_origin)i;
	return 0;
}

/* ---- decimal text of the v and sv headers ---- */

static size_t decimal_format(int64_t v, char out[DECIMAL_BYTES_MAX])
{
	char digits[DECIMAL_BYTES_MAX];
	uint64_t magnitude = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	size_t digit_count = 0, len = 0;

	do {
		digits[digit_count++] = (char)('0' + magnitude % 10);
		magnitude /= 10;
	} while (magnitude);
	if (v < 0)
		out[len++] = '-';
	while (digit_count)
		out[len++] = digits[--digit_count];
	return len;
}

/* Strict: an optional '-' and at least one digit, nothing else, value within [min, max]. */
static int decimal_parse(const uint8_t *s, int32_t len, int64_t min, int64_t max, int64_t *out)
{
	int negative = len > 0 && s[0] == '-';
	uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	uint64_t magnitude = 0;
	int32_t i = negative;
	int64_t v;

	if (i >= len)
		return -EINVAL;
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		unsigned digit = (unsigned)(s[i] - '0');
		if (magnitude > (limit - digit) / 10)
			return -ERANGE;
		magnitude = magnitude * 10 + digit;
	}
	v = negative ? (magnitude == 0 ? 0 : -(int64_t)(magnitude - 1) - 1) : (int64_t)magnitude;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

/* ---- header ---- */

static int header_parse(const uint8_t *p, size_t len, struct sl_batch_header *out, const char **why)
{
	struct sl_batch_header h;

	if (len < SL_BATCH_HEADER_BYTES) {
		if (why)
			*why = "batch shorter than its 61-byte header";
		return -EAGAIN;
	}
	h.base_offset = (int64_t)sl_load_be64(p + OFF_BASE_OFFSET);
	h.batch_length = (int32_t)sl_load_be32(p + OFF_BATCH_LENGTH);
	h.partition_leader_epoch = (int32_t)sl_load_be32(p + OFF_LEADER_EPOCH);
	h.magic = (int8_t)p[OFF_MAGIC];
	h.crc = sl_load_be32(p + OFF_CRC);
	h.attributes = (int16_t)sl_load_be16(p + OFF_ATTRIBUTES);
	h.last_offset_delta = (int32_t)sl_load_be32(p + OFF_LAST_OFFSET_DELTA);
	h.base_timestamp = (int64_t)sl_load_be64(p + OFF_BASE_TIMESTAMP);
	h.max_timestamp = (int64_t)sl_load_be64(p + OFF_MAX_TIMESTAMP);
	h.producer_id = (int64_t)sl_load_be64(p + OFF_PRODUCER_ID);
	h.producer_epoch = (int16_t)sl_load_be16(p + OFF_PRODUCER_EPOCH);
	h.base_sequence = (int32_t)sl_load_be32(p + OFF_BASE_SEQUENCE);
	h.record_count = (int32_t)sl_load_be32(p + OFF_RECORD_COUNT);

	if (h.magic != SL_BATCH_MAGIC)
		return bad(why, "batch magic is not 2 (not a record batch v2)");
	if (h.batch_length < BATCH_LENGTH_MIN)
		return bad(why, "batchLength smaller than the batch header");
	if ((uint32_t)h.batch_length > SL_BATCH_BYTES_MAX - SL_BATCH_LOG_OVERHEAD_BYTES)
		return bad(why, "batchLength larger than the 64 MiB batch limit");
	if (h.record_count < 0)
		return bad(why, "recordsCount negative");
	if (h.last_offset_delta < 0)
		return bad(why, "lastOffsetDelta negative");
	*out = h;
	return 0;
}

int sl_batch_header_parse(const uint8_t *p, size_t len, struct sl_batch_header *out)
{
	return header_parse(p, len, out, NULL);
}

void sl_batch_set_base_offset(uint8_t *p, int64_t base_offset)
{
	sl_store_be64(p + OFF_BASE_OFFSET, (uint64_t)base_offset);
}

/* ---- records ---- */

enum sync_header {
	SYNC_VERSION,
	SYNC_OP,
	SYNC_ORIGIN,
	SYNC_IDEMPOTENCY,
	SYNC_SCHEMA_VERSION,
	SYNC_ORIGIN_SYSTEM,
	SYNC_CHANGED_AT
};

static void bytes_write(uint8_t **pos, const uint8_t *end, const void *data, int32_t len);

static const struct {
	const char *name;
	size_t name_len;
} sync_headers[SYNC_HEADERS_MAX] = {
        [SYNC_VERSION] = {SL_HDR_VERSION, sizeof(SL_HDR_VERSION) - 1},
        [SYNC_OP] = {SL_HDR_OP, sizeof(SL_HDR_OP) - 1},
        [SYNC_ORIGIN] = {SL_HDR_ORIGIN, sizeof(SL_HDR_ORIGIN) - 1},
        [SYNC_IDEMPOTENCY] = {SL_HDR_IDEMPOTENCY, sizeof(SL_HDR_IDEMPOTENCY) - 1},
        [SYNC_SCHEMA_VERSION] = {SL_HDR_SCHEMA_VERSION, sizeof(SL_HDR_SCHEMA_VERSION) - 1},
        [SYNC_ORIGIN_SYSTEM] = {SL_HDR_ORIGIN_SYSTEM, sizeof(SL_HDR_ORIGIN_SYSTEM) - 1},
        [SYNC_CHANGED_AT] = {SL_HDR_CHANGED_AT, sizeof(SL_HDR_CHANGED_AT) - 1},
};

/* Read a length-prefixed byte string that must end by end. -1 is null (NULL, -1) when nullable. */
static int bytes_decode(const uint8_t **pos, const uint8_t *end, int nullable, const uint8_t **out, int32_t *out_len)
{
	int32_t len;

	if (sl_varint_decode(pos, end, &len) != 0)
		return -EBADMSG;
	if (len == -1 && nullable) {
		*out = NULL;
		*out_len = -1;
		return 0;
	}
	if (len < 0 || len > end - *pos)
		return -EBADMSG;
	*out = *pos;
	*out_len = len;
	*pos += len;
	return 0;
}

/* Fill the field of r that the header name/value carries, if it is a sync header; other headers are skipped.
 * seen has one bit per sync header already met in this record. */
static int sync_header_apply(struct sl_record *r, const uint8_t *name, int32_t name_len, const uint8_t *value,
                             int32_t value_len, unsigned *seen, const char **why)
{
	int64_t v;
	int i;

	for (i = 0; i < SYNC_HEADERS_MAX; i++)
		if (sync_headers[i].name_len == (size_t)name_len && memcmp(sync_headers[i].name, name, name_len) == 0)
			break;
	if (i == SYNC_HEADERS_MAX)
		return 0;
	if (*seen & (1u << i))
		return bad(why, "record carries the same sync header twice");
	*seen |= 1u << i;
	if (value_len < 0)
		return bad(why, "record sync header has a null value");

	switch ((enum sync_header)i) {
	case SYNC_VERSION:
		if (decimal_parse(value, value_len, INT64_MIN + 1, INT64_MAX, &v) != 0)
			return bad(why, "record header v is not a decimal int64");
		r->version = v;
		break;
	case SYNC_OP:
		if (sl_op_parse((const char *)value, (size_t)value_len, &r->op) != 0)
			return bad(why, "record header op is not upsert, delete or changed");
		break;
	case SYNC_ORIGIN:
		if (sl_origin_parse((const char *)value, (size_t)value_len, &r->origin) != 0)
			return bad(why, "record header origin is not live, backfill or repair");
		break;
	case SYNC_IDEMPOTENCY:
		r->idempotency_key = value;
		r->idempotency_key_len = value_len;
		break;
	case SYNC_SCHEMA_VERSION:
		if (decimal_parse(value, value_len, INT32_MIN, INT32_MAX, &v) != 0)
			return bad(why, "record header sv is not a decimal int32");
		r->schema_version = (int32_t)v;
		break;
	case SYNC_ORIGIN_SYSTEM:
		r->origin_system = value;
		r->origin_system_len = value_len;
		break;
	case SYNC_CHANGED_AT:
		if (decimal_parse(value, value_len, 1, INT64_MAX, &v) != 0)
			return bad(why, "record header changed_at is not a decimal int64 above 0");
		r->changed_at_ms = v;
		break;
	}
	return 0;
}

static int headers_walk(const uint8_t **pos, const uint8_t *end, int32_t count, struct sl_record *r, const char **why);

/* The headers section of a record, from its headersCount on; r->headers and header_count get the section after the
 * count, and headers_len its bytes. */
static int headers_decode(const uint8_t **pos, const uint8_t *end, struct sl_record *r, const char **why)
{
	int32_t count;

	if (sl_varint_decode(pos, end, &count) != 0)
		return bad(why, "record headersCount malformed or past the record");
	/* Each header takes at least two bytes (two length varints), which bounds the loop by the record's size. */
	if (count < 0 || count > (end - *pos) / 2)
		return bad(why, "record headersCount negative or more than its bytes can hold");
	const uint8_t *start = *pos;
	int rc = headers_walk(pos, end, count, r, why);
	if (rc != 0)
		return rc;
	r->headers = start; /* not NULL even without headers: a copy writes exactly none */
	r->headers_len = (int32_t)(*pos - start);
	r->header_count = count;
	return 0;
}

/* count headers from *pos (which moves past them), their sync headers applied to r. */
static int headers_walk(const uint8_t **pos, const uint8_t *end, int32_t count, struct sl_record *r, const char **why)
{
	unsigned seen = 0;

	for (int32_t i = 0; i < count; i++) {
		const uint8_t *name, *value;
		int32_t name_len, value_len;
		int rc;

		if (bytes_decode(pos, end, 0, &name, &name_len) != 0)
			return bad(why, "record header name length negative or past the record");
		if (bytes_decode(pos, end, 1, &value, &value_len) != 0)
			return bad(why, "record header value length invalid or past the record");
		rc = sync_header_apply(r, name, name_len, value, value_len, &seen, why);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* The sync fields as a record without sync headers has them (op still to be decided by sync_finish). */
static void sync_reset(struct sl_record *r)
{
	r->version = SL_VERSION_NONE;
	r->op = OP_ABSENT;
	r->origin = SL_ORIGIN_LIVE;
	r->idempotency_key = NULL;
	r->idempotency_key_len = 0;
	r->schema_version = 0;
	r->origin_system = NULL;
	r->origin_system_len = 0;
	r->changed_at_ms = 0;
}

static int sync_finish(struct sl_record *r, const char **why)
{
	/* Without an op header a null value is a delete: a Kafka producer's tombstone means what ours does. */
	if (r->op == OP_ABSENT)
		r->op = r->value_len == -1 ? SL_OP_DELETE : SL_OP_UPSERT;
	if (r->op == SL_OP_DELETE && r->value_len != -1)
		return bad(why, "delete record has a non-null value");
	return 0;
}

/* Decode the record at *pos (record index of the batch h), which must end by end; advance *pos past it only on
 * success. The pointers in out point into [*pos, end). */
static int record_decode(const uint8_t **pos, const uint8_t *end, const struct sl_batch_header *h, int32_t delta_min,
                         int32_t delta_max, struct sl_record *out, const char **why)
{
	const uint8_t *p = *pos, *record_end;
	int32_t length, offset_delta;
	int64_t timestamp_delta;
	int rc;

	if (p == end)
		return bad(why, "records section ends before recordsCount records");
	if (sl_varint_decode(&p, end, &length) != 0)
		return bad(why, "record length varint malformed or past the records section");
	if (length < 1 || length > end - p)
		return bad(why, "record length negative, zero or past the records section");
	record_end = p + length;
	p++; /* attributes: unused by Kafka and by synclog */
	if (sl_varint_decode_long(&p, record_end, &timestamp_delta) != 0)
		return bad(why, "record timestampDelta malformed or past the record");
	if (sl_varint_decode(&p, record_end, &offset_delta) != 0)
		return bad(why, "record offsetDelta malformed or past the record");
	if (offset_delta < delta_min || offset_delta > delta_max)
		return bad(why, delta_min == delta_max ? "record offsetDelta is not the record's index in the batch"
		                                       : "record offsetDelta out of order or past lastOffsetDelta");
	if (__builtin_add_overflow(h->base_timestamp, timestamp_delta, &out->timestamp_ms))
		return bad(why, "record timestamp overflows int64");
	if (__builtin_add_overflow(h->base_offset, (int64_t)offset_delta, &out->offset))
		return bad(why, "record offset overflows int64");
	if (bytes_decode(&p, record_end, 1, &out->key, &out->key_len) != 0)
		return bad(why, "record key length invalid or past the record");
	if (bytes_decode(&p, record_end, 1, &out->value, &out->value_len) != 0)
		return bad(why, "record value length invalid or past the record");

	sync_reset(out);
	rc = headers_decode(&p, record_end, out, why);
	if (rc != 0)
		return rc;
	if (p != record_end)
		return bad(why, "record length larger than the bytes of its fields");
	rc = sync_finish(out, why);
	if (rc != 0)
		return rc;
	*pos = record_end;
	return 0;
}

int sl_record_headers_decode(struct sl_record *r, const char **why)
{
	const uint8_t *p = r->headers, *end = r->headers + (r->headers != NULL ? r->headers_len : 0);

	sync_reset(r);
	if (r->headers == NULL)
		return r->header_count == 0 && r->headers_len == 0 ? sync_finish(r, why)
		                                                   : bad(why, "record headers missing their bytes");
	if (r->headers_len < 0 || r->header_count < 0 || r->header_count > r->headers_len / 2)
		return bad(why, "record headers count or length negative or impossible");
	int rc = headers_walk(&p, end, r->header_count, r, why);
	if (rc != 0)
		return rc;
	if (p != end)
		return bad(why, "record headers length larger than the bytes of its headers");
	return sync_finish(r, why);
}

int sl_record_header_next(const uint8_t **pos, const uint8_t *end, struct sl_record_header *out)
{
	if (*pos == end)
		return 0;
	if (bytes_decode(pos, end, 0, &out->name, &out->name_len) != 0 ||
	    bytes_decode(pos, end, 1, &out->value, &out->value_len) != 0)
		return -EBADMSG;
	return 1;
}

size_t sl_record_header_bytes(int32_t name_len, int32_t value_len)
{
	return sl_varint_size(name_len) + (size_t)name_len + sl_varint_size(value_len) +
	       (value_len > 0 ? (size_t)value_len : 0);
}

int sl_record_header_encode(uint8_t **pos, const uint8_t *end, const struct sl_record_header *h)
{
	SL_ASSERT(h->name_len >= 0 && h->value_len >= -1);
	if ((size_t)(end - *pos) < sl_record_header_bytes(h->name_len, h->value_len))
		return -ENOSPC;
	bytes_write(pos, end, h->name, h->name_len);
	bytes_write(pos, end, h->value, h->value_len);
	return 0;
}

/* Check invariants 5 to 9 on a records section; stored != 0: offset deltas as invariant 10 allows. Counts records
 * per origin into origin_counts when it is not NULL. */
static int records_walk(const struct sl_batch_header *h, const uint8_t *pos, const uint8_t *end, int stored,
                        sl_batch_record_cb each_cb, void *cb_arg, const char **why, uint32_t *origin_counts)
{
	struct sl_record r;
	int32_t delta_min = 0;

	for (int32_t i = 0; i < h->record_count; i++) {
		int rc =
		        record_decode(&pos, end, h, stored ? delta_min : i, stored ? h->last_offset_delta : i, &r, why);
		if (rc != 0)
			return rc;
		delta_min = (int32_t)(r.offset - h->base_offset) + 1;
		if (origin_counts != NULL && (unsigned)r.origin < SL_ORIGIN_COUNT)
			origin_counts[r.origin]++;
		if (each_cb != NULL)
			each_cb(&r, cb_arg);
	}
	if (pos != end)
		return bad(why, "bytes after the last record of the batch");
	return 0;
}

/* One zstd frame (or several, as zstd allows) into dst. The size is bounded by dst_cap, so a small frame that
 * claims or expands to gigabytes costs no more than dst_cap bytes of work. Returns 0, -ENOBUFS or -EBADMSG. */
static int records_decompress(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_cap, size_t *out_len,
                              const char **why)
{
	size_t n = ZSTD_decompress(dst, dst_cap, src, src_len);

	if (ZSTD_isError(n)) {
		if (ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall) {
			if (why)
				*why = "decompressed records larger than the scratch buffer";
			return -ENOBUFS;
		}
		return bad(why, "zstd records section does not decompress (corrupt frame)");
	}
	*out_len = n;
	return 0;
}

static int validate(const uint8_t *p, size_t len, struct sl_batch_header *out, uint8_t *scratch, size_t scratch_cap,
                    int stored, sl_batch_record_cb each_cb, void *cb_arg, const char **why, uint32_t *origin_counts)
{
	struct sl_batch_header h;
	size_t records_len;
	int rc;

	rc = header_parse(p, len, &h, why);
	if (rc != 0)
		return -EBADMSG;
	if (len < sl_batch_total_bytes(&h))
		return bad(why, "batch truncated: fewer bytes than batchLength says");
	if (len > sl_batch_total_bytes(&h))
		return bad(why, "bytes after the end of the batch that batchLength gives");
	if (sl_crc32c(0, p + OFF_ATTRIBUTES, len - OFF_ATTRIBUTES) != h.crc)
		return bad(why, "batch CRC32C mismatch: the bytes were corrupted in transit or on disk");
	if (!stored && (int64_t)h.last_offset_delta + 1 != h.record_count)
		return bad(why, "recordsCount is not lastOffsetDelta + 1");
	if (stored && (int64_t)h.last_offset_delta + 1 < h.record_count)
		return bad(why, "recordsCount larger than lastOffsetDelta + 1");

	switch (h.attributes & SL_BATCH_ATTR_CODEC_MASK) {
	case SL_BATCH_CODEC_NONE:
		rc = records_walk(&h, p + OFF_RECORDS, p + len, stored, each_cb, cb_arg, why, origin_counts);
		break;
	case SL_BATCH_CODEC_ZSTD:
		if (scratch == NULL || scratch_cap == 0)
			break;
		rc = records_decompress(p + OFF_RECORDS, len - OFF_RECORDS, scratch, scratch_cap, &records_len, why);
		if (rc == 0)
			rc = records_walk(&h, scratch, scratch + records_len, stored, each_cb, cb_arg, why,
			                  origin_counts);
		break;
	default:
		if (why)
			*why = "batch compression codec not supported (synclog reads none and zstd)";
		return -ENOTSUP;
	}
	if (rc != 0)
		return -EBADMSG;
	if (out)
		*out = h;
	return 0;
}

int sl_batch_validate(const uint8_t *p, size_t len, struct sl_batch_header *out, uint8_t *scratch, size_t scratch_cap,
                      const char **why)
{
	return validate(p, len, out, scratch, scratch_cap, 0, NULL, NULL, why, NULL);
}

int sl_batch_validate_each(const uint8_t *p, size_t len, struct sl_batch_header *out, uint8_t *scratch,
                           size_t scratch_cap, sl_batch_record_cb each_cb, void *cb_arg, const char **why)
{
	SL_ASSERT(scratch != NULL && scratch_cap > 0); /* a zstd batch must be walked for each_cb to see its records */
	return validate(p, len, out, scratch, scratch_cap, 0, each_cb, cb_arg, why, NULL);
}

int sl_batch_validate_counting(const uint8_t *p, size_t len, struct sl_batch_header *out, uint8_t *scratch,
                               size_t scratch_cap, const char **why, uint32_t origin_counts[SL_ORIGIN_COUNT])
{
	return validate(p, len, out, scratch, scratch_cap, 0, NULL, NULL, why, origin_counts);
}

int sl_batch_validate_stored(const uint8_t *p, size_t len, struct sl_batch_header *out, uint8_t *scratch,
                             size_t scratch_cap, const char **why)
{
	return validate(p, len, out, scratch, scratch_cap, 1, NULL, NULL, why, NULL);
}

/* ---- iterator ---- */

int sl_record_iter_init(struct sl_record_iter *it, const uint8_t *p, size_t len, uint8_t *scratch, size_t scratch_cap)
{
	size_t records_len;
	int rc;

	memset(it, 0, sizeof(*it));
	if (header_parse(p, len, &it->header, NULL) != 0 || len != sl_batch_total_bytes(&it->header)) {
		it->header.record_count = 0; /* next returns 0 rather than reading a batch it was told is bad */
		return -EBADMSG;
	}
	it->scratch = scratch;
	it->scratch_cap = scratch_cap;
	switch (it->header.attributes & SL_BATCH_ATTR_CODEC_MASK) {
	case SL_BATCH_CODEC_NONE:
		it->pos = p + OFF_RECORDS;
		it->end = p + len;
		return 0;
	case SL_BATCH_CODEC_ZSTD:
		if (scratch == NULL)
			rc = -ENOBUFS;
		else
			rc = records_decompress(p + OFF_RECORDS, len - OFF_RECORDS, scratch, scratch_cap, &records_len,
			                        NULL);
		if (rc != 0) {
			it->header.record_count = 0;
			return rc;
		}
		it->pos = scratch;
		it->end = scratch + records_len;
		return 0;
	default:
		it->header.record_count = 0;
		return -ENOTSUP;
	}
}

int sl_record_iter_next(struct sl_record_iter *it, struct sl_record *out)
{
	if (it->index >= it->header.record_count)
		return it->pos == it->end ? 0 : -EBADMSG;
	if (record_decode(&it->pos, it->end, &it->header, it->next_delta_min, it->header.last_offset_delta, out,
	                  NULL) != 0)
		return -EBADMSG;
	it->index++;
	it->next_delta_min = (int32_t)(out->offset - it->header.base_offset) + 1;
	return 1;
}

/* ---- builder ---- */

int sl_batch_builder_init(struct sl_batch_builder *b, size_t bytes_max)
{
	memset(b, 0, sizeof(*b));
	if (bytes_max < SL_BATCH_HEADER_BYTES + 64 || bytes_max > SL_BATCH_BYTES_MAX)
		return -EINVAL;
	b->buf = malloc(bytes_max);
	b->zbuf = malloc(bytes_max);
	if (b->buf == NULL || b->zbuf == NULL) {
		free(b->buf);
		free(b->zbuf);
		memset(b, 0, sizeof(*b));
		return -ENOMEM;
	}
	b->bytes_max = bytes_max;
	sl_batch_builder_reset(b);
	return 0;
}

void sl_batch_builder_free(struct sl_batch_builder *b)
{
	free(b->buf);
	free(b->zbuf);
	ZSTD_freeCCtx(b->zctx);
	memset(b, 0, sizeof(*b));
}

void sl_batch_builder_reset(struct sl_batch_builder *b)
{
	SL_ASSERT(b->buf != NULL);
	b->len = SL_BATCH_HEADER_BYTES; /* the header is reserved now and filled by finish */
	b->record_count = 0;
	b->base_timestamp = 0;
	b->max_timestamp = 0;
	b->producer_id = -1;
	b->producer_epoch = -1;
	b->base_sequence = -1;
}

static int record_fields_valid(const struct sl_record *r)
{
	if (r->key_len < -1 || (r->key_len > 0 && r->key == NULL))
		return 0;
	if (r->value_len < -1 || (r->value_len > 0 && r->value == NULL))
		return 0;
	if ((unsigned)r->op >= ARRAY_COUNT(op_names) || (unsigned)r->origin >= ARRAY_COUNT(origin_names))
		return 0;
	if (r->op == SL_OP_DELETE && r->value_len != -1)
		return 0;
	if (r->idempotency_key != NULL && r->idempotency_key_len < 0)
		return 0;
	if (r->origin_system != NULL && r->origin_system_len < 0)
		return 0;
	if (r->changed_at_ms < 0)
		return 0;
	return 1;
}

/* Collect the sync headers that differ from their defaults; decimal text goes into the three buffers given. */
size_t sl_record_sync_headers(const struct sl_record *r, struct sl_record_header out[SYNC_HEADERS_MAX],
                              char version_text[DECIMAL_BYTES_MAX], char schema_text[DECIMAL_BYTES_MAX],
                              char changed_text[DECIMAL_BYTES_MAX])
{
	size_t n = 0;

#define HEADER_ADD(which, v, vlen)                                                                \
	out[n++] = (struct sl_record_header)                                                      \
	{                                                                                         \
		(const uint8_t *)sync_headers[which].name, (int32_t)sync_headers[which].name_len, \
		        (const uint8_t *)(v), (int32_t)(vlen)                                     \
	}
	if (r->version != SL_VERSION_NONE)
		HEADER_ADD(SYNC_VERSION, version_text, decimal_format(r->version, version_text));
	/* An upsert of a null value says so: without the header a null value reads as a delete. */
	if (r->op != SL_OP_UPSERT || r->value_len == -1)
		HEADER_ADD(SYNC_OP, op_names[r->op], strlen(op_names[r->op]));
	if (r->origin != SL_ORIGIN_LIVE)
		HEADER_ADD(SYNC_ORIGIN, origin_names[r->origin], strlen(origin_names[r->origin]));
	if (r->idempotency_key != NULL)
		HEADER_ADD(SYNC_IDEMPOTENCY, r->idempotency_key, r->idempotency_key_len);
	if (r->schema_version != 0)
		HEADER_ADD(SYNC_SCHEMA_VERSION, schema_text, decimal_format(r->schema_version, schema_text));
	if (r->origin_system != NULL)
		HEADER_ADD(SYNC_ORIGIN_SYSTEM, r->origin_system, r->origin_system_len);
	if (r->changed_at_ms > 0)
		HEADER_ADD(SYNC_CHANGED_AT, changed_text, decimal_format(r->changed_at_ms, changed_text));
#undef HEADER_ADD
	return n;
}

/* Bytes a length-prefixed string of len bytes (-1: null) takes. */
static uint64_t bytes_size(int64_t len)
{
	return len < 0 ? 1 : sl_varint_size((int32_t)len) + (uint64_t)len;
}

/* The writers below run after the room was computed, so running out of it is a programmer error. */
static void varint_write(uint8_t **pos, const uint8_t *end, int32_t v)
{
	int rc = sl_varint_encode(pos, end, v);

	SL_ASSERT(rc == 0);
}

static void varint_long_write(uint8_t **pos, const uint8_t *end, int64_t v)
{
	int rc = sl_varint_encode_long(pos, end, v);

	SL_ASSERT(rc == 0);
}

static void bytes_write(uint8_t **pos, const uint8_t *end, const void *data, int32_t len)
{
	varint_write(pos, end, len);
	if (len > 0) {
		SL_ASSERT(len <= end - *pos);
		memcpy(*pos, data, (size_t)len);
		*pos += len;
	}
}

/* Whether r->headers is exactly header_count well-formed headers filling headers_len bytes. */
static int raw_headers_valid(const struct sl_record *r)
{
	const uint8_t *p = r->headers, *end;
	struct sl_record_header h;
	int32_t n = 0;
	int rc;

	if (r->headers_len < 0 || r->header_count < 0 || r->header_count > r->headers_len / 2)
		return 0;
	end = p + r->headers_len;
	while ((rc = sl_record_header_next(&p, end, &h)) == 1)
		n++;
	return rc == 0 && n == r->header_count;
}

int sl_batch_builder_add(struct sl_batch_builder *b, const struct sl_record *r)
{
	struct sl_record_header headers[SYNC_HEADERS_MAX];
	char version_text[DECIMAL_BYTES_MAX], schema_text[DECIMAL_BYTES_MAX], changed_text[DECIMAL_BYTES_MAX];
	uint64_t tail_bytes, body_bytes, first_body_bytes, record_bytes;
	int64_t timestamp_delta = 0;
	size_t header_count;
	uint8_t *p, *end;

	SL_ASSERT(b->buf != NULL && b->len >= SL_BATCH_HEADER_BYTES && b->len <= b->bytes_max);
	if (!record_fields_valid(r))
		return -EINVAL;
	/* Everything after offsetDelta, the same wherever in a batch the record lands. */
	tail_bytes = bytes_size(r->key_len) + bytes_size(r->value_len);
	if (r->headers != NULL) {
		if (!raw_headers_valid(r))
			return -EINVAL;
		header_count = (size_t)r->header_count;
		tail_bytes += sl_varint_size(r->header_count) + (uint64_t)r->headers_len;
	} else {
		header_count = sl_record_sync_headers(r, headers, version_text, schema_text, changed_text);
		tail_bytes += sl_varint_size((int32_t)header_count);
		for (size_t i = 0; i < header_count; i++)
			tail_bytes += sl_record_header_bytes(headers[i].name_len, headers[i].value_len);
	}
	/* As the first record of an empty batch it takes the least room: timestampDelta 0, offsetDelta 0. */
	first_body_bytes = 1 + 1 + 1 + tail_bytes;
	if (first_body_bytes > INT32_MAX ||
	    SL_BATCH_HEADER_BYTES + sl_varint_size((int32_t)first_body_bytes) + first_body_bytes > b->bytes_max)
		return -EINVAL;

	/* A timestamp too far from the batch's base for a varlong delta fits in a batch of its own. */
	if (b->record_count > 0 && __builtin_sub_overflow(r->timestamp_ms, b->base_timestamp, &timestamp_delta))
		return -ENOSPC;
	if (b->record_count == INT32_MAX)
		return -ENOSPC;
	body_bytes = 1 + sl_varint_size_long(timestamp_delta) + sl_varint_size(b->record_count) + tail_bytes;
	record_bytes = sl_varint_size((int32_t)body_bytes) + body_bytes;
	if (record_bytes > b->bytes_max - b->len)
		return -ENOSPC;

	/* Nothing above wrote to the batch, so every refusal left it as it was. */
	p = b->buf + b->len;
	end = p + record_bytes;
	varint_write(&p, end, (int32_t)body_bytes);
	*p++ = 0; /* attributes */
	varint_long_write(&p, end, timestamp_delta);
	varint_write(&p, end, b->record_count);
	bytes_write(&p, end, r->key, r->key_len);
	bytes_write(&p, end, r->value, r->value_len);
	varint_write(&p, end, (int32_t)header_count);
	if (r->headers != NULL) {
		memcpy(p, r->headers, (size_t)r->headers_len);
		p += r->headers_len;
	} else {
		for (size_t i = 0; i < header_count; i++) {
			bytes_write(&p, end, headers[i].name, headers[i].name_len);
			bytes_write(&p, end, headers[i].value, headers[i].value_len);
		}
	}
	SL_ASSERT(p == end);

	if (b->record_count == 0) {
		b->base_timestamp = r->timestamp_ms;
		b->max_timestamp = r->timestamp_ms;
	} else if (r->timestamp_ms > b->max_timestamp) {
		b->max_timestamp = r->timestamp_ms;
	}
	b->len += record_bytes;
	b->record_count++;
	return 0;
}

/* Compress the records of buf into zbuf after its header. *compressed_len is 0 when the output would not be smaller
 * than the input (the batch then stays uncompressed). Returns 0, -ENOMEM or -EIO. */
static int records_compress(struct sl_batch_builder *b, size_t *compressed_len)
{
	size_t records_len = b->len - SL_BATCH_HEADER_BYTES;
	size_t n;

	*compressed_len = 0;
	if (b->zctx == NULL) {
		b->zctx = ZSTD_createCCtx();
		if (b->zctx == NULL)
			return -ENOMEM;
	}
	/* Room for one byte less than the input: zstd reports dstSize_tooSmall exactly when it would not gain. */
	n = ZSTD_compressCCtx(b->zctx, b->zbuf + SL_BATCH_HEADER_BYTES, records_len - 1, b->buf + SL_BATCH_HEADER_BYTES,
	                      records_len, ZSTD_LEVEL);
	if (ZSTD_isError(n))
		return ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall ? 0 : -EIO;
	SL_ASSERT(n > 0 && n < records_len);
	*compressed_len = n;
	return 0;
}

/* attributes: the codec, plus (for the cleaner) the bits it keeps; a new batch is CreateTime, not transactional. */
static void header_write(const struct sl_batch_builder *b, uint8_t *p, size_t len, int attributes, int64_t base_offset,
                         int32_t last_offset_delta)
{
	sl_store_be64(p + OFF_BASE_OFFSET, (uint64_t)base_offset);
	sl_store_be32(p + OFF_BATCH_LENGTH, (uint32_t)(len - SL_BATCH_LOG_OVERHEAD_BYTES));
	sl_store_be32(p + OFF_LEADER_EPOCH, (uint32_t)-1);
	p[OFF_MAGIC] = SL_BATCH_MAGIC;
	sl_store_be16(p + OFF_ATTRIBUTES, (uint16_t)attributes);
	sl_store_be32(p + OFF_LAST_OFFSET_DELTA, (uint32_t)last_offset_delta);
	sl_store_be64(p + OFF_BASE_TIMESTAMP, (uint64_t)b->base_timestamp);
	sl_store_be64(p + OFF_MAX_TIMESTAMP, (uint64_t)b->max_timestamp);
	sl_store_be64(p + OFF_PRODUCER_ID, (uint64_t)b->producer_id);
	sl_store_be16(p + OFF_PRODUCER_EPOCH, (uint16_t)b->producer_epoch);
	sl_store_be32(p + OFF_BASE_SEQUENCE, (uint32_t)b->base_sequence);
	sl_store_be32(p + OFF_RECORD_COUNT, (uint32_t)b->record_count);
	/* Last, over everything from attributes on, which is now final. */
	sl_store_be32(p + OFF_CRC, sl_crc32c(0, p + OFF_ATTRIBUTES, len - OFF_ATTRIBUTES));
}

int sl_batch_builder_finish(struct sl_batch_builder *b, int codec, const uint8_t **out, size_t *len_out)
{
	struct sl_batch_header check;
	uint8_t *batch = b->buf;
	size_t len = b->len, compressed_len;
	int stored_codec = SL_BATCH_CODEC_NONE;
	int rc;

	SL_ASSERT(b->buf != NULL && b->len >= SL_BATCH_HEADER_BYTES && b->len <= b->bytes_max);
	if (b->record_count == 0)
		return -EINVAL;
	if (codec != SL_BATCH_CODEC_NONE && codec != SL_BATCH_CODEC_ZSTD)
		return -EINVAL;
	if (codec == SL_BATCH_CODEC_ZSTD) {
		rc = records_compress(b, &compressed_len);
		if (rc != 0)
			return rc;
		if (compressed_len > 0) {
			batch = b->zbuf;
			len = SL_BATCH_HEADER_BYTES + compressed_len;
			stored_codec = SL_BATCH_CODEC_ZSTD;
		}
	}
	header_write(b, batch, len, stored_codec, 0, b->record_count - 1);
	/* Assert what a reader will check before the batch leaves: a header that parses and a length that matches. */
	rc = header_parse(batch, len, &check, NULL);
	SL_ASSERT(rc == 0 && sl_batch_total_bytes(&check) == len);
	*out = batch;
	*len_out = len;
	return 0;
}

/* ---- the cleaner's rewrite (invariant 10) ---- */

int sl_batch_filter(struct sl_batch_builder *b, const uint8_t *batch, size_t len, uint8_t *scratch, size_t scratch_cap,
                    const uint8_t *keep, int64_t horizon_ms, const uint8_t **out, size_t *len_out)
{
	struct sl_batch_header h;
	const uint8_t *pos, *end;
	size_t records_len, compressed_len;
	int64_t base_timestamp, max_timestamp = INT64_MIN;
	int32_t kept = 0;
	int codec, rc;

	SL_ASSERT(b->buf != NULL);
	if (header_parse(batch, len, &h, NULL) != 0 || len != sl_batch_total_bytes(&h))
		return -EBADMSG;
	codec = h.attributes & SL_BATCH_ATTR_CODEC_MASK;
	if (codec == SL_BATCH_CODEC_NONE) {
		pos = batch + OFF_RECORDS;
		end = batch + len;
	} else if (codec == SL_BATCH_CODEC_ZSTD) {
		if (scratch == NULL)
			return -ENOBUFS;
		rc = records_decompress(batch + OFF_RECORDS, len - OFF_RECORDS, scratch, scratch_cap, &records_len,
		                        NULL);
		if (rc != 0)
			return rc;
		pos = scratch;
		end = scratch + records_len;
	} else {
		return -ENOTSUP;
	}
	base_timestamp = horizon_ms != INT64_MIN ? horizon_ms : h.base_timestamp;
	sl_batch_builder_reset(b);
	for (int32_t i = 0; i < h.record_count; i++) {
		const uint8_t *p = pos, *q, *record_end;
		int32_t length;
		int64_t timestamp_delta, timestamp, new_delta;

		/* Only the length and timestampDelta are read; the rest of a kept record is copied as it is. */
		if (sl_varint_decode(&p, end, &length) != 0 || length < 1 || length > end - p)
			return -EBADMSG;
		record_end = p + length;
		q = p + 1; /* after attributes */
		if (sl_varint_decode_long(&q, record_end, &timestamp_delta) != 0)
			return -EBADMSG;
		pos = record_end;
		if (!keep[i])
			continue;
		if (__builtin_add_overflow(h.base_timestamp, timestamp_delta, &timestamp) ||
		    __builtin_sub_overflow(timestamp, base_timestamp, &new_delta))
			return -EBADMSG;
		size_t rest = (size_t)(record_end - q);
		uint64_t body_bytes = 1 + sl_varint_size_long(new_delta) + rest;
		if (body_bytes > INT32_MAX)
			return -EBADMSG;
		uint64_t record_bytes = sl_varint_size((int32_t)body_bytes) + body_bytes;
		if (record_bytes > b->bytes_max - b->len)
			return -ENOSPC;
		uint8_t *w = b->buf + b->len, *w_end = w + record_bytes;
		varint_write(&w, w_end, (int32_t)body_bytes);
		*w++ = p[0];
		varint_long_write(&w, w_end, new_delta);
		memcpy(w, q, rest);
		w += rest;
		SL_ASSERT(w == w_end);
		b->len += record_bytes;
		kept++;
		if (timestamp > max_timestamp)
			max_timestamp = timestamp;
	}
	if (pos != end)
		return -EBADMSG;
	b->record_count = kept;
	b->base_timestamp = base_timestamp;
	b->max_timestamp = kept > 0 ? max_timestamp : h.max_timestamp;
	b->producer_id = h.producer_id;
	b->producer_epoch = h.producer_epoch;
	b->base_sequence = h.base_sequence;

	uint8_t *result = b->buf;
	size_t result_len = b->len;
	int attributes = h.attributes & ~SL_BATCH_ATTR_CODEC_MASK;
	if (horizon_ms != INT64_MIN)
		attributes |= SL_BATCH_ATTR_DELETE_HORIZON;
	if (codec == SL_BATCH_CODEC_ZSTD && kept > 0) {
		rc = records_compress(b, &compressed_len);
		if (rc != 0)
			return rc;
		if (compressed_len > 0) {
			result = b->zbuf;
			result_len = SL_BATCH_HEADER_BYTES + compressed_len;
			attributes |= SL_BATCH_CODEC_ZSTD;
		}
	}
	header_write(b, result, result_len, attributes, h.base_offset, h.last_offset_delta);
	/* Outside the CRC: the epoch the broker stamped stays. */
	sl_store_be32(result + OFF_LEADER_EPOCH, (uint32_t)h.partition_leader_epoch);
	*out = result;
	*len_out = result_len;
	return 0;
}
