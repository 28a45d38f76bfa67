/* Kafka record batch v2: the one byte layout synclog stores on disk, sends on the wire and could hand verbatim
 * to a Kafka client. The format, with byte offsets, is written down at the top of batch.c.
 *
 * Which thread may call: any; nothing here keeps state outside the structs the caller passes in. */
#ifndef SL_PROTO_BATCH_H
#define SL_PROTO_BATCH_H

#include <stddef.h>
#include <stdint.h>

/* Fixed header of every batch (bytes 0..60); records start right after it. */
#define SL_BATCH_HEADER_BYTES       61
/* The CRC32C covers the batch from this byte (attributes) to its end. */
#define SL_BATCH_CRC_START          21
/* baseOffset (8) + batchLength (4): the part of the header that batchLength does not count. */
#define SL_BATCH_LOG_OVERHEAD_BYTES 12
#define SL_BATCH_MAGIC              2
/* A stored batch may not exceed this: it bounds the memory one read or one validation may need. The broker's
 * frame limit (16 MiB) is below it, so every batch a client can send fits. */
#define SL_BATCH_BYTES_MAX          (64u * 1024 * 1024)

/* Attribute bits (Kafka's). Only none and zstd are produced or decoded by synclog. */
#define SL_BATCH_ATTR_CODEC_MASK     0x07
#define SL_BATCH_CODEC_NONE          0
#define SL_BATCH_CODEC_ZSTD          4
#define SL_BATCH_ATTR_TRANSACTIONAL  0x10
#define SL_BATCH_ATTR_CONTROL        0x20
/* Kafka's delete-horizon flag (KIP-534): baseTimestamp holds the time (ms) after which the cleaner may remove the
 * batch's tombstones; record timestamps stay baseTimestamp + timestampDelta. Set only by the cleaner. */
#define SL_BATCH_ATTR_DELETE_HORIZON 0x40

/* Record header names that carry the sync fields. Short because they are repeated in every record. */
#define SL_HDR_VERSION "v" /* decimal ASCII int64, monotonic per key, set by the source of truth */
#define SL_HDR_OP                                                                                                \
	"op"                           /* "upsert", "delete" or "changed"; a delete also has a null value (Kafka \
	                                * tombstone); "changed" is a thin event: the entity changed, fetch it */
#define SL_HDR_ORIGIN         "origin" /* "live", "backfill" or "repair" */
#define SL_HDR_IDEMPOTENCY    "ik"     /* opaque bytes */
#define SL_HDR_SCHEMA_VERSION "sv"     /* decimal ASCII int32 */
/* The service that made the change (the name a sync contract's source_of_truth.system and fields_owned use), and
 * when it made it by that service's clock (decimal ms since the epoch; the lww conflict policy compares these).
 * Spelled out: Kafka tools and connectors show them to people who set them. */
#define SL_HDR_ORIGIN_SYSTEM  "origin_system"
#define SL_HDR_CHANGED_AT     "changed_at"

/* Version value meaning "the record carries no version header". */
#define SL_VERSION_NONE INT64_MIN

/* SL_OP_CHANGED: a thin event. It names the entity that changed and carries no state (its value is null or
 * ignored); the applier fetches the entity from the source's API (consumer/sync/fetch_http.c). */
enum sl_op { SL_OP_UPSERT = 0, SL_OP_DELETE = 1, SL_OP_CHANGED = 2 };
enum sl_origin { SL_ORIGIN_LIVE = 0, SL_ORIGIN_BACKFILL = 1, SL_ORIGIN_REPAIR = 2 };
#define SL_ORIGIN_COUNT 3

/* The decoded fixed header. Field names follow Kafka's. */
struct sl_batch_header {
	int64_t base_offset;
	int32_t batch_length; /* bytes after this field: whole batch = 12 + batch_length */
	int32_t partition_leader_epoch;
	int8_t magic;
	uint32_t crc; /* CRC32C of bytes 21..end */
	int16_t attributes;
	int32_t last_offset_delta;
	int64_t base_timestamp;
	int64_t max_timestamp;
	int64_t producer_id;
	int16_t producer_epoch;
	int32_t base_sequence;
	int32_t record_count;
};

/* One record as a producer describes it, or as a reader sees it (pointers then point into the batch or into the
 * iterator's decompression buffer, valid until the next call on the iterator). Length -1 means null. */
struct sl_record {
	int64_t offset; /* set by the iterator: base_offset + offset delta */
	int64_t timestamp_ms;
	const uint8_t *key;
	int32_t key_len;
	const uint8_t *value;
	int32_t value_len;
	int64_t version; /* SL_VERSION_NONE when absent */
	enum sl_op op;
	enum sl_origin origin;
	const uint8_t *idempotency_key; /* NULL when absent */
	int32_t idempotency_key_len;
	int32_t schema_version;       /* 0 when absent */
	const uint8_t *origin_system; /* NULL when absent */
	int32_t origin_system_len;
	int64_t changed_at_ms; /* 0 when absent */
	/* Every header of the record, the sync headers among them, as the batch encodes them (header_count times
	 * headerKeyLength, headerKey, headerValueLength, headerValue: batch.c's record format), or NULL. The iterator
	 * sets them, so a reader sees headers other tools added. A record given to the builder with headers is
	 * written with exactly those headers instead of headers made from the sync fields (a copy keeps every header
	 * of the record it copies): its sync fields must then be what the headers say, which the iterator and
	 * sl_record_headers_decode see to. Never NULL in a record read from a batch, even one without headers (a
	 * copy of it then gets none); NULL (a zeroed record) for a record made from its sync fields. */
	const uint8_t *headers;
	int32_t headers_len;
	int32_t header_count;
};

/* One header of a record, as sl_record_header_next and sl_record_sync_headers hand it out (pointers into the
 * record's bytes or the caller's buffers). value_len -1: a null value. */
struct sl_record_header {
	const uint8_t *name;
	int32_t name_len;
	const uint8_t *value;
	int32_t value_len;
};

/* Sync headers a record carries at most: v, op, origin, ik, sv, origin_system, changed_at. */
#define SL_RECORD_SYNC_HEADERS_MAX 7
/* Room for the decimal text of one int64 ("-9223372036854775808"). */
#define SL_RECORD_DECIMAL_BYTES    20

/* Parse the fixed header of the batch at p (len bytes available). Checks what the header alone can show:
 * enough bytes for the header, magic 2, batch_length within [49, SL_BATCH_BYTES_MAX - 12], record_count >= 0,
 * last_offset_delta >= 0. Does not need the whole batch and does not check the CRC.
 * Returns 0, -EAGAIN if fewer than SL_BATCH_HEADER_BYTES are available, -EBADMSG if the header is invalid. */
int sl_batch_header_parse(const uint8_t *p, size_t len, struct sl_batch_header *out);

/* Total bytes of the batch whose header was parsed: 12 + batch_length. */
static inline size_t sl_batch_total_bytes(const struct sl_batch_header *h)
{
	return SL_BATCH_LOG_OVERHEAD_BYTES + (size_t)h->batch_length;
}

/* Full validation of exactly one batch occupying p[0..len): the header as above, len equal to the batch's
 * total size, the CRC32C, and record_count == last_offset_delta + 1. For an uncompressed batch it also walks
 * every record and checks that the records fill the section exactly, that there are record_count of them and
 * that offset deltas are 0..count-1. A zstd batch is checked the same way after decompression into scratch
 * (scratch_cap bytes, may be NULL/0 to skip the record walk of compressed batches). Other codecs: -ENOTSUP.
 * Returns 0, -EBADMSG (with *why set to a static message) or -ENOTSUP. */
int sl_batch_validate(const uint8_t *p, size_t len, struct sl_batch_header *out, uint8_t *scratch, size_t scratch_cap,
                      const char **why);
/* sl_batch_validate that also adds each record's origin to origin_counts (zeroed by the caller) while it walks the
 * records it walks anyway: the broker's per-origin counters at no extra pass. When the records are not walked (a
 * zstd batch without scratch) nothing is added. */
int sl_batch_validate_counting(const uint8_t *p, size_t len, struct sl_batch_header *out, uint8_t *scratch,
                               size_t scratch_cap, const char **why, uint32_t origin_counts[SL_ORIGIN_COUNT]);

/* sl_batch_validate that also hands each record of the walk to each_cb (pointers valid during the call), so that a
 * caller that needs something of every record (the broker's contract check of idempotency keys) reads the records
 * once, not twice. scratch is required (a zstd batch is always walked). The callback cannot fail; when the batch
 * turns out invalid, the records it was handed before belong to a refused batch. */
typedef void (*sl_batch_record_cb)(const struct sl_record *r, void *cb_arg);
int sl_batch_validate_each(const uint8_t *p, size_t len, struct sl_batch_header *out, uint8_t *scratch,
                           size_t scratch_cap, sl_batch_record_cb each_cb, void *cb_arg, const char **why);

/* sl_batch_validate for a batch as stored, which the cleaner may have rewritten (invariant 10 of batch.c): the
 * records may be fewer than lastOffsetDelta + 1 (none at all, even), their offset deltas strictly increasing and at
 * most lastOffsetDelta. For readers of stored batches (fetch clients, the cleaner); a producer's batch goes
 * through sl_batch_validate. Same returns. */
int sl_batch_validate_stored(const uint8_t *p, size_t len, struct sl_batch_header *out, uint8_t *scratch,
                             size_t scratch_cap, const char **why);

/* Write base_offset into bytes 0..7. The CRC does not cover them, so it stays valid. */
void sl_batch_set_base_offset(uint8_t *p, int64_t base_offset);

/* Building a batch, in librdkafka's order: reserve the header, append records, compress, back-patch the CRC.
 * The builder owns two buffers of capacity bytes_max each, allocated once by init and reused by reset: no
 * allocation per record. */
struct sl_batch_builder {
	uint8_t *buf;     /* header + records */
	uint8_t *zbuf;    /* compressed output */
	size_t bytes_max; /* capacity of each buffer */
	size_t len;       /* bytes used in buf */
	int32_t record_count;
	int64_t base_timestamp;
	int64_t max_timestamp;
	int64_t producer_id;    /* -1 when not idempotent */
	int16_t producer_epoch; /* -1 when not idempotent */
	int32_t base_sequence;  /* -1 when not idempotent */
	void *zctx;             /* ZSTD_CCtx, created on first compressed finish */
};

/* Allocate the buffers. bytes_max >= SL_BATCH_HEADER_BYTES + 64 and <= SL_BATCH_BYTES_MAX. Returns 0 or -ENOMEM,
 * -EINVAL. */
int sl_batch_builder_init(struct sl_batch_builder *b, size_t bytes_max);
void sl_batch_builder_free(struct sl_batch_builder *b);
/* Start a new batch; keeps the buffers. Producer fields reset to -1 (non-idempotent). */
void sl_batch_builder_reset(struct sl_batch_builder *b);
/* Append one record (its offset field is ignored; timestamp_ms is used as given). Returns 0, or -ENOSPC when
 * the record does not fit in what is left (the batch is unchanged; finish it and start another), or -EINVAL for
 * a record that can never fit or has invalid fields (negative lengths other than -1). */
int sl_batch_builder_add(struct sl_batch_builder *b, const struct sl_record *r);
/* Close the batch: compress the records with codec (SL_BATCH_CODEC_NONE or SL_BATCH_CODEC_ZSTD; if zstd output
 * is not smaller the batch stays uncompressed), fill the header (base offset 0) and the CRC. On success *out
 * points at the batch (in buf or zbuf) and *len_out is its size; valid until the next reset/add. Returns 0,
 * -EINVAL for an empty batch, -EIO if the compressor fails. */
int sl_batch_builder_finish(struct sl_batch_builder *b, int codec, const uint8_t **out, size_t *len_out);

/* Rewrite a stored batch (already validated) keeping the records i with keep[i] != 0, for the cleaner. The result
 * keeps baseOffset, lastOffsetDelta, the producer fields, the codec and each kept record's offsetDelta and
 * timestamp, so every kept record keeps its offset (invariant 10). recordsCount and maxTimestamp are those of the
 * kept records (maxTimestamp stays the original's when none is kept: an empty batch marks where the offsets it
 * covered went). With horizon_ms != INT64_MIN the batch gets the delete-horizon flag and baseTimestamp
 * horizon_ms. scratch (scratch_cap bytes) receives a zstd batch's records. The batch is built in b's buffers:
 * *out is valid until b's next use. Returns 0, -ENOSPC (the result does not fit b), -EBADMSG, -ENOBUFS (scratch
 * too small) or -EIO (the compressor failed). */
int sl_batch_filter(struct sl_batch_builder *b, const uint8_t *batch, size_t len, uint8_t *scratch, size_t scratch_cap,
                    const uint8_t *keep, int64_t horizon_ms, const uint8_t **out, size_t *len_out);

/* Reading the records of one (already validated) batch. */
struct sl_record_iter {
	struct sl_batch_header header;
	const uint8_t *pos;
	const uint8_t *end;
	int32_t index;          /* records returned so far */
	int32_t next_delta_min; /* the next record's offset delta is at least this (invariant 10) */
	uint8_t *scratch;       /* decompression buffer supplied by the caller */
	size_t scratch_cap;
};

/* Prepare to iterate the batch at p[0..len). For zstd batches the records are decompressed into scratch.
 * Returns 0, -EBADMSG, -ENOTSUP (codec), -ENOBUFS (scratch too small). */
int sl_record_iter_init(struct sl_record_iter *it, const uint8_t *p, size_t len, uint8_t *scratch, size_t scratch_cap);
/* Returns 1 and fills *out, 0 at the end, or -EBADMSG for a malformed record. */
int sl_record_iter_next(struct sl_record_iter *it, struct sl_record *out);

/* ---- headers one at a time, for clients that hand records to another library (librdkafka) and back ---- */

/* The next header of a headers section (r->headers): 1 with *out set, 0 at end, -EBADMSG when the bytes are not
 * headers. *pos moves forward; pointers in *out point into the section. */
int sl_record_header_next(const uint8_t **pos, const uint8_t *end, struct sl_record_header *out);
/* Bytes one header takes in a headers section (value_len -1: null). */
size_t sl_record_header_bytes(int32_t name_len, int32_t value_len);
/* Append one header at *pos (which moves), never past end. Returns 0 or -ENOSPC (nothing written). */
int sl_record_header_encode(uint8_t **pos, const uint8_t *end, const struct sl_record_header *h);
/* Set r's sync fields (version, op, origin, idempotency key, schema version) from r->headers, with the defaults of
 * the format for those absent (a null value without an op header is a delete). Returns 0, or -EBADMSG with *why
 * (may be NULL) set when the section is malformed or a sync header is invalid (batch.c invariant 9). */
int sl_record_headers_decode(struct sl_record *r, const char **why);
/* The sync headers the builder writes for r's sync fields (those that differ from their defaults) into out, their
 * decimal text into the three buffers; returns how many. */
size_t sl_record_sync_headers(const struct sl_record *r, struct sl_record_header out[SL_RECORD_SYNC_HEADERS_MAX],
                              char version_text[SL_RECORD_DECIMAL_BYTES], char schema_text[SL_RECORD_DECIMAL_BYTES],
                              char changed_text[SL_RECORD_DECIMAL_BYTES]);

/* Names of the enum values as stored in the headers ("upsert", "live", ...). */
const char *sl_op_name(enum sl_op op);
const char *sl_origin_name(enum sl_origin origin);
/* Parse those names; return 0 or -EINVAL. */
int sl_op_parse(const char *s, size_t len, enum sl_op *out);
int sl_origin_parse(const char *s, size_t len, enum sl_origin *out);

#endif
