/* Tests of proto/batch (record batch v2 build, validate, iterate) and of the zigzag varints its records are made
 * of. Malformed batches are written by hand here, independently of the builder, so that a shared mistake in the
 * builder and the reader cannot hide. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "proto/batch.h"
#include "proto/crc32c.h"
#include "proto/varint.h"

/* Room for every combination of record fields (samples_make_all) in one batch, with margin. */
#define BUILDER_BYTES_MAX (1024 * 1024)
#define SCRATCH_BYTES     (2 * 1024 * 1024)
#define SAMPLES_MAX       4096
#define RAW_BYTES_MAX     512

struct env {
	struct sl_batch_builder b;
	uint8_t *scratch;
	uint8_t *copy; /* a mutable copy of a batch, for the corruption tests */
};

static int env_setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	if (e == NULL || sl_batch_builder_init(&e->b, BUILDER_BYTES_MAX) != 0)
		return -1;
	e->scratch = malloc(SCRATCH_BYTES);
	e->copy = malloc(BUILDER_BYTES_MAX + 1);
	if (e->scratch == NULL || e->copy == NULL)
		return -1;
	*state = e;
	return 0;
}

static int env_teardown(void **state)
{
	struct env *e = *state;

	sl_batch_builder_free(&e->b);
	free(e->scratch);
	free(e->copy);
	free(e);
	return 0;
}

/* ---- helpers: records to build and compare ---- */

struct sample {
	struct sl_record r;
	uint8_t key[32];
	uint8_t value[64];
	uint8_t ik[16];
};

static struct sample samples[SAMPLES_MAX];

/* Every combination of key (null, empty, bytes), value and op (null, empty or bytes upsert, or a delete with its
 * null value), version, origin, idempotency key (absent, empty, bytes) and schema version, with timestamps on both
 * sides of the first one. Returns the count. */
static size_t samples_make_all(void)
{
	static const int64_t versions[] = {SL_VERSION_NONE, 0, -5, INT64_MAX, INT64_MIN + 1};
	static const int32_t schemas[] = {0, 7, -1, INT32_MAX, INT32_MIN};
	const size_t combinations = 3 * 4 * 5 * 3 * 3 * 5;

	_Static_assert(3 * 4 * 5 * 3 * 3 * 5 <= SAMPLES_MAX, "every combination fits the samples");
	for (size_t n = 0; n < combinations; n++) {
		struct sample *s = &samples[n];
		struct sl_record *r = &s->r;
		size_t digits = n; /* n read as a mixed-radix number, one digit per field */
		int key_kind = (int)(digits % 3);
		int value_kind = (int)(digits / 3 % 4);
		int64_t version = versions[digits / 12 % 5];
		int origin = (int)(digits / 60 % 3);
		int ik_kind = (int)(digits / 180 % 3);
		int32_t schema = schemas[digits / 540 % 5];

		memset(s, 0, sizeof(*s));
		snprintf((char *)s->key, sizeof(s->key), "key-%05zu", n);
		memset(s->value, 'a' + (int)(n % 26), sizeof(s->value));
		memset(s->ik, (int)n, sizeof(s->ik));
		r->timestamp_ms = 1000000 + (int64_t)((n * 7919) % 2001) - 1000;
		r->key = key_kind == 0 ? NULL : s->key;
		r->key_len = key_kind == 0 ? -1 : key_kind == 1 ? 0 : 9;
		r->value = value_kind == 1 || value_kind == 2 ? s->value : NULL;
		r->value_len = value_kind == 1 ? 0 : value_kind == 2 ? 40 : -1;
		r->op = value_kind == 3 ? SL_OP_DELETE : SL_OP_UPSERT;
		r->version = version;
		r->origin = (enum sl_origin)origin;
		r->idempotency_key = ik_kind == 0 ? NULL : s->ik;
		r->idempotency_key_len = ik_kind == 2 ? 16 : 0;
		r->schema_version = schema;
	}
	return combinations;
}

/* Records that differ only in timestamp and version: what zstd compresses well. */
static void samples_make_repetitive(size_t count)
{
	for (size_t i = 0; i < count; i++) {
		struct sample *s = &samples[i];

		memset(s, 0, sizeof(*s));
		memset(s->value, 'x', sizeof(s->value));
		s->r = (struct sl_record){.timestamp_ms = 5000 + (int64_t)i,
		                          .key = (const uint8_t *)"customer",
		                          .key_len = 8,
		                          .value = s->value,
		                          .value_len = sizeof(s->value),
		                          .version = (int64_t)i};
	}
}

static void assert_bytes_equal(const uint8_t *want, int32_t want_len, const uint8_t *got, int32_t got_len)
{
	assert_int_equal(got_len, want_len);
	if (want_len == -1)
		assert_null(got);
	else if (want_len > 0)
		assert_memory_equal(got, want, (size_t)want_len);
}

static void assert_record_matches(const struct sl_record *want, const struct sl_record *got, int64_t offset)
{
	assert_int_equal(got->offset, offset);
	assert_int_equal(got->timestamp_ms, want->timestamp_ms);
	assert_bytes_equal(want->key, want->key_len, got->key, got->key_len);
	assert_bytes_equal(want->value, want->value_len, got->value, got->value_len);
	assert_int_equal(got->version, want->version);
	assert_int_equal(got->op, want->op);
	assert_int_equal(got->origin, want->origin);
	if (want->idempotency_key == NULL) {
		assert_null(got->idempotency_key);
	} else {
		assert_non_null(got->idempotency_key);
		assert_bytes_equal(want->idempotency_key, want->idempotency_key_len, got->idempotency_key,
		                   got->idempotency_key_len);
	}
	assert_int_equal(got->schema_version, want->schema_version);
}

static void build(struct env *e, const struct sample *s, size_t count, int codec, const uint8_t **batch, size_t *len)
{
	sl_batch_builder_reset(&e->b);
	for (size_t i = 0; i < count; i++)
		assert_int_equal(sl_batch_builder_add(&e->b, &s[i].r), 0);
	assert_int_equal(sl_batch_builder_finish(&e->b, codec, batch, len), 0);
}

/* Iterate the batch and compare every record with the samples it was built from. */
static void assert_batch_holds(struct env *e, const uint8_t *batch, size_t len, const struct sample *s, size_t count,
                               int64_t base_offset)
{
	struct sl_record_iter it;
	struct sl_record got;

	assert_int_equal(sl_record_iter_init(&it, batch, len, e->scratch, SCRATCH_BYTES), 0);
	for (size_t i = 0; i < count; i++) {
		assert_int_equal(sl_record_iter_next(&it, &got), 1);
		assert_record_matches(&s[i].r, &got, base_offset + (int64_t)i);
	}
	assert_int_equal(sl_record_iter_next(&it, &got), 0);
}

/* ---- helpers: hand-made batches, written without the builder ---- */

struct raw {
	uint8_t b[RAW_BYTES_MAX];
	size_t n;
};

static void raw_varint(struct raw *r, int64_t v)
{
	uint64_t u = ((uint64_t)v << 1) ^ (v < 0 ? ~0ull : 0);

	while (u >= 0x80) {
		r->b[r->n++] = (uint8_t)(u | 0x80);
		u >>= 7;
	}
	r->b[r->n++] = (uint8_t)u;
}

static void raw_put(struct raw *r, const void *p, size_t len)
{
	memcpy(r->b + r->n, p, len);
	r->n += len;
}

/* A length-prefixed string; NULL writes length -1. */
static void raw_string(struct raw *r, const char *s)
{
	if (s == NULL) {
		raw_varint(r, -1);
		return;
	}
	raw_varint(r, (int64_t)strlen(s));
	raw_put(r, s, strlen(s));
}

/* The fields of a record after its length, with header name/value pairs (a NULL value is a null header value). */
static void raw_body(struct raw *body, int32_t offset_delta, const char *key, const char *value, int header_count,
                     const char *const *headers)
{
	body->b[body->n++] = 0; /* attributes */
	raw_varint(body, 0);    /* timestampDelta */
	raw_varint(body, offset_delta);
	raw_string(body, key);
	raw_string(body, value);
	raw_varint(body, header_count);
	for (int i = 0; i < header_count; i++) {
		raw_string(body, headers[2 * i]);
		raw_string(body, headers[2 * i + 1]);
	}
}

/* Append a record to the section: its length (the body's true length plus length_lie), then the body. */
static void raw_record(struct raw *section, const struct raw *body, int length_lie)
{
	raw_varint(section, (int64_t)body->n + length_lie);
	raw_put(section, body->b, body->n);
}

static void put_be(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get_be(const uint8_t *p, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes; i++)
		v = v << 8 | p[i];
	return v;
}

static void crc_fix(uint8_t *batch, size_t len)
{
	put_be(batch + 17, sl_crc32c(0, batch + 21, len - 21), 4);
}

/* Wrap a records section in a header by hand (offsets from the Kafka spec) and a correct CRC. */
static size_t raw_batch(uint8_t *out, const struct raw *section, int32_t count, int64_t base_timestamp)
{
	size_t len = 61 + section->n;

	memset(out, 0, 61);
	put_be(out + 8, len - 12, 4);
	put_be(out + 12, (uint64_t)-1, 4);
	out[16] = 2;
	put_be(out + 23, (uint64_t)(count - 1), 4);
	put_be(out + 27, (uint64_t)base_timestamp, 8);
	put_be(out + 35, (uint64_t)base_timestamp, 8);
	put_be(out + 43, (uint64_t)-1, 8);
	put_be(out + 51, (uint64_t)-1, 2);
	put_be(out + 53, (uint64_t)-1, 4);
	put_be(out + 57, (uint64_t)count, 4);
	memcpy(out + 61, section->b, section->n);
	crc_fix(out, len);
	return len;
}

/* A one-record batch with the given headers; returns its length. */
static size_t raw_batch_one(uint8_t *out, const char *value, int header_count, const char *const *headers)
{
	struct raw body = {.n = 0}, section = {.n = 0};

	raw_body(&body, 0, "k", value, header_count, headers);
	raw_record(&section, &body, 0);
	return raw_batch(out, &section, 1, 1000);
}

static void assert_rejected(const uint8_t *batch, size_t len, const char *why_contains)
{
	const char *why = NULL;

	assert_int_equal(sl_batch_validate(batch, len, NULL, NULL, 0, &why), -EBADMSG);
	assert_non_null(why);
	if (why_contains != NULL && strstr(why, why_contains) == NULL)
		fail_msg("why \"%s\" does not mention \"%s\"", why, why_contains);
}

/* ---- varints ---- */

static void varint_encodes_as_kafka_does(void **state)
{
	static const struct {
		int32_t v;
		uint8_t bytes[5];
		size_t len;
	} cases[] = {
	        {0, {0x00}, 1},
	        {-1, {0x01}, 1},
	        {1, {0x02}, 1},
	        {63, {0x7e}, 1},
	        {-64, {0x7f}, 1},
	        {64, {0x80, 0x01}, 2},
	        {300, {0xd8, 0x04}, 2},
	        {INT32_MAX, {0xfe, 0xff, 0xff, 0xff, 0x0f}, 5},
	        {INT32_MIN, {0xff, 0xff, 0xff, 0xff, 0x0f}, 5},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t buf[SL_VARINT_BYTES_MAX], *p = buf;

		assert_int_equal(sl_varint_size(cases[i].v), cases[i].len);
		assert_int_equal(sl_varint_encode(&p, buf + sizeof(buf), cases[i].v), 0);
		assert_int_equal(p - buf, cases[i].len);
		assert_memory_equal(buf, cases[i].bytes, cases[i].len);
	}
}

static void varint_round_trips_boundary_values(void **state)
{
	static const int64_t values[] = {0,    1,         -1,        63,        64,        -64,       -65,         8191,
	                                 8192, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN, 1ll << 62, -(1ll << 62)};

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		uint8_t buf[SL_VARINT_LONG_BYTES_MAX];
		uint8_t *w = buf;
		const uint8_t *r = buf;
		int64_t got64;
		int32_t got32;

		assert_int_equal(sl_varint_encode_long(&w, buf + sizeof(buf), values[i]), 0);
		assert_int_equal(w - buf, sl_varint_size_long(values[i]));
		assert_int_equal(sl_varint_decode_long(&r, w, &got64), 0);
		assert_int_equal(got64, values[i]);
		assert_ptr_equal(r, w);
		if (values[i] >= INT32_MIN && values[i] <= INT32_MAX) {
			r = buf;
			assert_int_equal(sl_varint_decode(&r, w, &got32), 0);
			assert_int_equal(got32, (int32_t)values[i]);
		}
	}
}

static void varint_decode_reports_truncation_and_leaves_cursor(void **state)
{
	const uint8_t bytes[] = {0x80, 0x80, 0x01};
	const uint8_t *p = bytes;
	int32_t v = 42;

	for (size_t len = 0; len < sizeof(bytes); len++) {
		assert_int_equal(sl_varint_decode(&p, bytes + len, &v), -EAGAIN);
		assert_ptr_equal(p, bytes);
		assert_int_equal(v, 42);
	}
	assert_int_equal(sl_varint_decode(&p, bytes + sizeof(bytes), &v), 0);
}

static void varint_decode_rejects_overlong_encodings(void **state)
{
	const uint8_t six[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
	const uint8_t wide5[] = {0xff, 0xff, 0xff, 0xff, 0x1f};
	const uint8_t eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
	const uint8_t wide10[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x03};
	const uint8_t *p;
	int32_t v32;
	int64_t v64;

	p = six;
	assert_int_equal(sl_varint_decode(&p, six + sizeof(six), &v32), -EOVERFLOW);
	p = wide5;
	assert_int_equal(sl_varint_decode(&p, wide5 + sizeof(wide5), &v32), -EOVERFLOW);
	p = eleven;
	assert_int_equal(sl_varint_decode_long(&p, eleven + sizeof(eleven), &v64), -EOVERFLOW);
	p = wide10;
	assert_int_equal(sl_varint_decode_long(&p, wide10 + sizeof(wide10), &v64), -EOVERFLOW);
}

static void varint_encode_refuses_when_out_of_room(void **state)
{
	uint8_t buf[2], *p = buf;

	assert_int_equal(sl_varint_encode(&p, buf + sizeof(buf), INT32_MAX), -ENOSPC);
	assert_ptr_equal(p, buf);
}

/* ---- the known vector ---- */

/* One record, key "k", value "v", timestamp 1000, no headers, no compression, producer -1/-1/-1, written out by
 * hand from the Kafka spec (the CRC computed by a bit-at-a-time reference implementation). */
static const uint8_t known_batch[70] = {
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /*  0 baseOffset 0 */
        0x00, 0x00, 0x00, 0x3a,                         /*  8 batchLength 58 = 70 - 12 */
        0xff, 0xff, 0xff, 0xff,                         /* 12 partitionLeaderEpoch -1 */
        0x02,                                           /* 16 magic 2 */
        0x71, 0x6a, 0x61, 0x89,                         /* 17 crc of bytes 21..69 */
        0x00, 0x00,                                     /* 21 attributes: no codec, CreateTime */
        0x00, 0x00, 0x00, 0x00,                         /* 23 lastOffsetDelta 0 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe8, /* 27 baseTimestamp 1000 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe8, /* 35 maxTimestamp 1000 */
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* 43 producerId -1 */
        0xff, 0xff,                                     /* 51 producerEpoch -1 */
        0xff, 0xff, 0xff, 0xff,                         /* 53 baseSequence -1 */
        0x00, 0x00, 0x00, 0x01,                         /* 57 recordsCount 1 */
        0x10,                                           /* 61 record length 8 (zigzag 16) */
        0x00,                                           /* 62 attributes */
        0x00,                                           /* 63 timestampDelta 0 */
        0x00,                                           /* 64 offsetDelta 0 */
        0x02, 'k',                                      /* 65 keyLength 1, key */
        0x02, 'v',                                      /* 67 valueLength 1, value */
        0x00,                                           /* 69 headersCount 0 */
};

static void builder_writes_known_single_record_batch_byte_for_byte(void **state)
{
	struct env *e = *state;
	struct sl_record r = {.timestamp_ms = 1000,
	                      .key = (const uint8_t *)"k",
	                      .key_len = 1,
	                      .value = (const uint8_t *)"v",
	                      .value_len = 1,
	                      .version = SL_VERSION_NONE};
	const uint8_t *batch;
	size_t len;

	sl_batch_builder_reset(&e->b);
	assert_int_equal(sl_batch_builder_add(&e->b, &r), 0);
	assert_int_equal(sl_batch_builder_finish(&e->b, SL_BATCH_CODEC_NONE, &batch, &len), 0);
	assert_int_equal(len, 70);
	/* The header fields, read at their offsets. */
	assert_int_equal(get_be(batch + 0, 8), 0);
	assert_int_equal(get_be(batch + 8, 4), 58);
	assert_int_equal(get_be(batch + 12, 4), 0xffffffffu);
	assert_int_equal(batch[16], 2);
	assert_int_equal(get_be(batch + 17, 4), sl_crc32c(0, batch + 21, 70 - 21));
	assert_int_equal(get_be(batch + 21, 2), 0);
	assert_int_equal(get_be(batch + 23, 4), 0);
	assert_int_equal(get_be(batch + 27, 8), 1000);
	assert_int_equal(get_be(batch + 35, 8), 1000);
	assert_int_equal(get_be(batch + 43, 8), UINT64_MAX);
	assert_int_equal(get_be(batch + 51, 2), 0xffff);
	assert_int_equal(get_be(batch + 53, 4), 0xffffffffu);
	assert_int_equal(get_be(batch + 57, 4), 1);
	/* And every byte, records section included. */
	assert_memory_equal(batch, known_batch, sizeof(known_batch));
}

static void known_batch_validates_and_iterates(void **state)
{
	struct env *e = *state;
	struct sl_batch_header h;
	struct sl_record_iter it;
	struct sl_record r;
	const char *why = NULL;

	assert_int_equal(sl_batch_validate(known_batch, sizeof(known_batch), &h, NULL, 0, &why), 0);
	assert_int_equal(h.batch_length, 58);
	assert_int_equal(h.partition_leader_epoch, -1);
	assert_int_equal(h.record_count, 1);
	assert_int_equal(h.producer_id, -1);
	assert_int_equal(h.crc, 0x716a6189u);
	assert_int_equal(sl_record_iter_init(&it, known_batch, sizeof(known_batch), e->scratch, SCRATCH_BYTES), 0);
	assert_int_equal(sl_record_iter_next(&it, &r), 1);
	assert_int_equal(r.offset, 0);
	assert_int_equal(r.timestamp_ms, 1000);
	assert_bytes_equal((const uint8_t *)"k", 1, r.key, r.key_len);
	assert_bytes_equal((const uint8_t *)"v", 1, r.value, r.value_len);
	assert_int_equal(sl_record_iter_next(&it, &r), 0);
}

/* ---- builder round trips ---- */

static void builder_round_trips_every_field_combination(void **state)
{
	struct env *e = *state;
	size_t count = samples_make_all();
	struct sl_batch_header h;
	const uint8_t *batch;
	const char *why = NULL;
	size_t len;

	build(e, samples, count, SL_BATCH_CODEC_NONE, &batch, &len);
	assert_int_equal(sl_batch_validate(batch, len, &h, e->scratch, SCRATCH_BYTES, &why), 0);
	assert_int_equal(h.attributes, SL_BATCH_CODEC_NONE);
	assert_int_equal(h.record_count, count);
	assert_int_equal(h.last_offset_delta, count - 1);
	assert_int_equal(h.base_timestamp, samples[0].r.timestamp_ms);
	assert_batch_holds(e, batch, len, samples, count, 0);
}

static void builder_round_trips_every_field_combination_through_zstd(void **state)
{
	struct env *e = *state;
	size_t count = samples_make_all();
	struct sl_batch_header h;
	const uint8_t *batch;
	const char *why = NULL;
	size_t len;

	build(e, samples, count, SL_BATCH_CODEC_ZSTD, &batch, &len);
	assert_int_equal(sl_batch_validate(batch, len, &h, e->scratch, SCRATCH_BYTES, &why), 0);
	assert_int_equal(h.attributes & SL_BATCH_ATTR_CODEC_MASK, SL_BATCH_CODEC_ZSTD);
	assert_int_equal(h.record_count, count);
	assert_batch_holds(e, batch, len, samples, count, 0);
}

static void builder_sets_base_and_max_timestamp_with_negative_deltas(void **state)
{
	struct env *e = *state;
	const int64_t timestamps[] = {1000, 500, 3000, -7, 2000};
	struct sample s[5];
	struct sl_batch_header h;
	const uint8_t *batch;
	size_t len;

	memset(s, 0, sizeof(s));
	for (int i = 0; i < 5; i++) {
		s[i].r = (struct sl_record){.timestamp_ms = timestamps[i], .key_len = -1, .value_len = -1};
		s[i].r.version = SL_VERSION_NONE;
	}
	build(e, s, 5, SL_BATCH_CODEC_NONE, &batch, &len);
	assert_int_equal(sl_batch_validate(batch, len, &h, NULL, 0, NULL), 0);
	assert_int_equal(h.base_timestamp, 1000);
	assert_int_equal(h.max_timestamp, 3000);
	assert_batch_holds(e, batch, len, s, 5, 0);
}

static void builder_writes_producer_fields_and_reset_clears_them(void **state)
{
	struct env *e = *state;
	struct sample s = {.r = {.key_len = -1, .value_len = -1, .version = SL_VERSION_NONE}};
	struct sl_batch_header h;
	const uint8_t *batch;
	size_t len;

	sl_batch_builder_reset(&e->b);
	e->b.producer_id = 42;
	e->b.producer_epoch = 3;
	e->b.base_sequence = 100;
	assert_int_equal(sl_batch_builder_add(&e->b, &s.r), 0);
	assert_int_equal(sl_batch_builder_finish(&e->b, SL_BATCH_CODEC_NONE, &batch, &len), 0);
	assert_int_equal(sl_batch_validate(batch, len, &h, NULL, 0, NULL), 0);
	assert_int_equal(h.producer_id, 42);
	assert_int_equal(h.producer_epoch, 3);
	assert_int_equal(h.base_sequence, 100);

	sl_batch_builder_reset(&e->b);
	assert_int_equal(e->b.producer_id, -1);
	assert_int_equal(e->b.producer_epoch, -1);
	assert_int_equal(e->b.base_sequence, -1);
	assert_int_equal(e->b.record_count, 0);
}

static void builder_writes_op_and_origin_headers_only_when_not_default(void **state)
{
	struct env *e = *state;
	struct sl_record r = {.key = (const uint8_t *)"k",
	                      .key_len = 1,
	                      .value = (const uint8_t *)"x",
	                      .value_len = 1,
	                      .version = SL_VERSION_NONE};
	const uint8_t *batch;
	size_t len;

	sl_batch_builder_reset(&e->b);
	assert_int_equal(sl_batch_builder_add(&e->b, &r), 0);
	assert_int_equal(sl_batch_builder_finish(&e->b, SL_BATCH_CODEC_NONE, &batch, &len), 0);
	assert_int_equal(batch[len - 1], 0); /* headersCount 0: upsert and live are implied */

	r.value = NULL;
	r.value_len = -1;
	r.op = SL_OP_DELETE;
	r.origin = SL_ORIGIN_REPAIR;
	sl_batch_builder_reset(&e->b);
	assert_int_equal(sl_batch_builder_add(&e->b, &r), 0);
	assert_int_equal(sl_batch_builder_finish(&e->b, SL_BATCH_CODEC_NONE, &batch, &len), 0);
	assert_non_null(memmem(batch, len,
	                       "\x04op\x0c"
	                       "delete",
	                       10));
	assert_non_null(memmem(batch, len, "\x0corigin\x0crepair", 14));
}

/* A Kafka producer's tombstone (null value, no op header) is a delete; our upsert of a null value says so. */
static void null_value_reads_as_delete_unless_op_says_upsert(void **state)
{
	struct env *e = *state;
	struct sl_record r = {.key = (const uint8_t *)"k", .key_len = 1, .value_len = -1, .version = SL_VERSION_NONE};
	struct sl_record_iter it;
	struct sl_record got;
	const uint8_t *batch;
	size_t len;

	sl_batch_builder_reset(&e->b);
	assert_int_equal(sl_batch_builder_add(&e->b, &r), 0);
	assert_int_equal(sl_batch_builder_finish(&e->b, SL_BATCH_CODEC_NONE, &batch, &len), 0);
	assert_non_null(memmem(batch, len,
	                       "\x04op\x0c"
	                       "upsert",
	                       10));
	assert_int_equal(sl_record_iter_init(&it, batch, len, NULL, 0), 0);
	assert_int_equal(sl_record_iter_next(&it, &got), 1);
	assert_int_equal(got.op, SL_OP_UPSERT);

	/* The same record as a Kafka producer writes it: no headers at all. */
	/* attributes, timestampDelta 0, offsetDelta 0, key length 1, "k", value length -1, headersCount 0 */
	uint8_t plain[] = {0x00, 0x00, 0x00, 0x02, 0x6b, 0x01, 0x00};
	uint8_t rec[1 + sizeof(plain)] = {(uint8_t)(sizeof(plain) << 1)};
	memcpy(rec + 1, plain, sizeof(plain));
	uint8_t buf[SL_BATCH_HEADER_BYTES + sizeof(rec)];
	memcpy(buf, batch, SL_BATCH_HEADER_BYTES);
	memcpy(buf + SL_BATCH_HEADER_BYTES, rec, sizeof(rec));
	put_be(buf + 8, sizeof(buf) - 12, 4);
	put_be(buf + 21, 0, 2);
	put_be(buf + 17, sl_crc32c(0, buf + 21, sizeof(buf) - 21), 4);
	assert_int_equal(sl_batch_validate(buf, sizeof(buf), NULL, NULL, 0, NULL), 0);
	assert_int_equal(sl_record_iter_init(&it, buf, sizeof(buf), NULL, 0), 0);
	assert_int_equal(sl_record_iter_next(&it, &got), 1);
	assert_int_equal(got.op, SL_OP_DELETE);
	assert_int_equal(got.value_len, -1);
}

static void zstd_batch_is_much_smaller_for_repetitive_records(void **state)
{
	struct env *e = *state;
	const uint8_t *batch;
	size_t len, plain_len;

	samples_make_repetitive(200);
	build(e, samples, 200, SL_BATCH_CODEC_NONE, &batch, &plain_len);
	build(e, samples, 200, SL_BATCH_CODEC_ZSTD, &batch, &len);
	assert_int_equal(get_be(batch + 21, 2) & SL_BATCH_ATTR_CODEC_MASK, SL_BATCH_CODEC_ZSTD);
	assert_true(len * 4 < plain_len);
	assert_int_equal(get_be(batch + 57, 4), 200); /* recordsCount stays in the clear */
	assert_int_equal(sl_batch_validate(batch, len, NULL, e->scratch, SCRATCH_BYTES, NULL), 0);
	assert_batch_holds(e, batch, len, samples, 200, 0);
}

static void zstd_leaves_incompressible_records_uncompressed(void **state)
{
	struct env *e = *state;
	static uint8_t noise[4000];
	struct sample s = {.r = {.key_len = -1, .value = noise, .value_len = sizeof(noise), .version = 1}};
	uint64_t x = 88172645463325252ull;
	const uint8_t *batch;
	size_t len, plain_len;

	for (size_t j = 0; j < sizeof(noise); j++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		noise[j] = (uint8_t)(x >> 32);
	}
	build(e, &s, 1, SL_BATCH_CODEC_NONE, &batch, &plain_len);
	build(e, &s, 1, SL_BATCH_CODEC_ZSTD, &batch, &len);
	assert_int_equal(get_be(batch + 21, 2) & SL_BATCH_ATTR_CODEC_MASK, SL_BATCH_CODEC_NONE);
	assert_int_equal(len, plain_len);
	assert_batch_holds(e, batch, len, &s, 1, 0);
}

static void set_base_offset_keeps_crc_valid_and_shifts_record_offsets(void **state)
{
	struct env *e = *state;
	size_t count = 50;
	struct sl_batch_header h;
	const uint8_t *batch;
	size_t len;

	samples_make_all();
	build(e, samples, count, SL_BATCH_CODEC_NONE, &batch, &len);
	memcpy(e->copy, batch, len);
	sl_batch_set_base_offset(e->copy, 1234567890123ll);
	assert_int_equal(sl_batch_validate(e->copy, len, &h, NULL, 0, NULL), 0);
	assert_int_equal(h.base_offset, 1234567890123ll);
	assert_batch_holds(e, e->copy, len, samples, count, 1234567890123ll);
}

/* ---- builder refusals ---- */

static void builder_add_returns_enospc_and_leaves_batch_unchanged(void **state)
{
	struct sl_batch_builder b;
	struct sample s = {.r = {.key = (const uint8_t *)"key", .key_len = 3, .version = 7}};
	uint8_t before[SL_BATCH_HEADER_BYTES + 200];
	size_t len_before, accepted = 0, len;
	int32_t count_before;
	int64_t max_before;
	const uint8_t *batch;
	int rc;

	s.r.value = s.value;
	s.r.value_len = 30;
	assert_int_equal(sl_batch_builder_init(&b, SL_BATCH_HEADER_BYTES + 200), 0);
	for (;;) {
		len_before = b.len;
		count_before = b.record_count;
		max_before = b.max_timestamp;
		memcpy(before, b.buf, b.len);
		s.r.timestamp_ms = 100 + (int64_t)accepted;
		rc = sl_batch_builder_add(&b, &s.r);
		if (rc != 0)
			break;
		accepted++;
	}
	assert_int_equal(rc, -ENOSPC);
	assert_true(accepted >= 2);
	assert_int_equal(b.len, len_before);
	assert_int_equal(b.record_count, count_before);
	assert_int_equal(b.max_timestamp, max_before);
	assert_memory_equal(b.buf, before, len_before);
	/* The batch so far is still whole. */
	assert_int_equal(sl_batch_builder_finish(&b, SL_BATCH_CODEC_NONE, &batch, &len), 0);
	assert_int_equal(sl_batch_validate(batch, len, NULL, NULL, 0, NULL), 0);
	assert_int_equal(get_be(batch + 57, 4), accepted);
	sl_batch_builder_free(&b);
}

static void builder_add_rejects_record_that_can_never_fit(void **state)
{
	struct sl_batch_builder b;
	static uint8_t big[300];
	struct sl_record r = {.key_len = -1, .value = big, .value_len = sizeof(big), .version = SL_VERSION_NONE};

	assert_int_equal(sl_batch_builder_init(&b, SL_BATCH_HEADER_BYTES + 200), 0);
	assert_int_equal(sl_batch_builder_add(&b, &r), -EINVAL);
	assert_int_equal(b.len, SL_BATCH_HEADER_BYTES);
	assert_int_equal(b.record_count, 0);
	sl_batch_builder_free(&b);
}

static void builder_add_rejects_invalid_fields(void **state)
{
	struct env *e = *state;
	const struct sl_record good = {
	        .key = (const uint8_t *)"k", .key_len = 1, .value_len = -1, .version = SL_VERSION_NONE};
	struct sl_record r;

	sl_batch_builder_reset(&e->b);
	r = good, r.key_len = -2;
	assert_int_equal(sl_batch_builder_add(&e->b, &r), -EINVAL);
	r = good, r.value_len = -5;
	assert_int_equal(sl_batch_builder_add(&e->b, &r), -EINVAL);
	r = good, r.key = NULL;
	assert_int_equal(sl_batch_builder_add(&e->b, &r), -EINVAL);
	r = good, r.op = SL_OP_DELETE, r.value = (const uint8_t *)"v", r.value_len = 1;
	assert_int_equal(sl_batch_builder_add(&e->b, &r), -EINVAL);
	r = good, r.op = (enum sl_op)7;
	assert_int_equal(sl_batch_builder_add(&e->b, &r), -EINVAL);
	r = good, r.origin = (enum sl_origin)3;
	assert_int_equal(sl_batch_builder_add(&e->b, &r), -EINVAL);
	r = good, r.idempotency_key = (const uint8_t *)"ik", r.idempotency_key_len = -1;
	assert_int_equal(sl_batch_builder_add(&e->b, &r), -EINVAL);
	assert_int_equal(e->b.record_count, 0);
	assert_int_equal(sl_batch_builder_add(&e->b, &good), 0);
}

static void builder_add_returns_enospc_when_timestamp_delta_overflows(void **state)
{
	struct env *e = *state;
	struct sl_record r = {.key_len = -1, .value_len = -1, .version = SL_VERSION_NONE};
	const uint8_t *batch;
	size_t len;

	sl_batch_builder_reset(&e->b);
	r.timestamp_ms = INT64_MIN;
	assert_int_equal(sl_batch_builder_add(&e->b, &r), 0);
	r.timestamp_ms = INT64_MAX;
	assert_int_equal(sl_batch_builder_add(&e->b, &r), -ENOSPC);
	sl_batch_builder_reset(&e->b);
	assert_int_equal(sl_batch_builder_add(&e->b, &r), 0);
	assert_int_equal(sl_batch_builder_finish(&e->b, SL_BATCH_CODEC_NONE, &batch, &len), 0);
	assert_int_equal(sl_batch_validate(batch, len, NULL, NULL, 0, NULL), 0);
}

static void builder_finish_rejects_empty_batch_and_unknown_codec(void **state)
{
	struct env *e = *state;
	struct sl_record r = {.key_len = -1, .value_len = -1, .version = SL_VERSION_NONE};
	const uint8_t *batch;
	size_t len;

	sl_batch_builder_reset(&e->b);
	assert_int_equal(sl_batch_builder_finish(&e->b, SL_BATCH_CODEC_NONE, &batch, &len), -EINVAL);
	assert_int_equal(sl_batch_builder_add(&e->b, &r), 0);
	assert_int_equal(sl_batch_builder_finish(&e->b, 1 /* gzip */, &batch, &len), -EINVAL);
}

static void builder_init_rejects_sizes_out_of_range(void **state)
{
	struct sl_batch_builder b;

	assert_int_equal(sl_batch_builder_init(&b, SL_BATCH_HEADER_BYTES + 63), -EINVAL);
	assert_int_equal(sl_batch_builder_init(&b, (size_t)SL_BATCH_BYTES_MAX + 1), -EINVAL);
	assert_int_equal(sl_batch_builder_init(&b, SL_BATCH_HEADER_BYTES + 64), 0);
	sl_batch_builder_free(&b);
}

/* ---- header parse ---- */

static void header_parse_needs_61_bytes(void **state)
{
	struct sl_batch_header h;

	for (size_t len = 0; len < SL_BATCH_HEADER_BYTES; len++)
		assert_int_equal(sl_batch_header_parse(known_batch, len, &h), -EAGAIN);
	assert_int_equal(sl_batch_header_parse(known_batch, SL_BATCH_HEADER_BYTES, &h), 0);
	assert_int_equal(sl_batch_total_bytes(&h), sizeof(known_batch));
}

static void header_parse_rejects_bad_magic_length_and_counts(void **state)
{
	struct env *e = *state;
	struct sl_batch_header h;

	memcpy(e->copy, known_batch, sizeof(known_batch));
	e->copy[16] = 1;
	assert_int_equal(sl_batch_header_parse(e->copy, sizeof(known_batch), &h), -EBADMSG);

	memcpy(e->copy, known_batch, sizeof(known_batch));
	put_be(e->copy + 8, 48, 4);
	assert_int_equal(sl_batch_header_parse(e->copy, sizeof(known_batch), &h), -EBADMSG);
	put_be(e->copy + 8, SL_BATCH_BYTES_MAX - 11, 4);
	assert_int_equal(sl_batch_header_parse(e->copy, sizeof(known_batch), &h), -EBADMSG);
	put_be(e->copy + 8, (uint64_t)-1, 4);
	assert_int_equal(sl_batch_header_parse(e->copy, sizeof(known_batch), &h), -EBADMSG);

	memcpy(e->copy, known_batch, sizeof(known_batch));
	put_be(e->copy + 57, (uint64_t)-1, 4);
	assert_int_equal(sl_batch_header_parse(e->copy, sizeof(known_batch), &h), -EBADMSG);

	memcpy(e->copy, known_batch, sizeof(known_batch));
	put_be(e->copy + 23, (uint64_t)-1, 4);
	assert_int_equal(sl_batch_header_parse(e->copy, sizeof(known_batch), &h), -EBADMSG);
}

/* ---- validate: corruption ---- */

static void validate_rejects_every_bit_flip_under_the_crc_or_in_the_structure(void **state)
{
	struct env *e = *state;
	const int codecs[] = {SL_BATCH_CODEC_NONE, SL_BATCH_CODEC_ZSTD};
	const uint8_t *batch;
	size_t len;

	samples_make_repetitive(4);
	for (size_t c = 0; c < 2; c++) {
		build(e, samples, 4, codecs[c], &batch, &len);
		assert_int_equal(get_be(batch + 21, 2), codecs[c]);
		memcpy(e->copy, batch, len);
		for (size_t bit = 0; bit < len * 8; bit++) {
			size_t byte = bit / 8;
			if (byte < 8 || (byte >= 12 && byte < 16))
				continue; /* baseOffset and partitionLeaderEpoch: see the next test */
			e->copy[byte] ^= (uint8_t)(1u << (bit % 8));
			const char *why = NULL;
			int rc = sl_batch_validate(e->copy, len, NULL, e->scratch, SCRATCH_BYTES, &why);
			if (rc != -EBADMSG && rc != -ENOTSUP)
				fail_msg("flip of bit %zu (byte %zu) accepted, codec %d", bit % 8, byte, codecs[c]);
			assert_non_null(why);
			e->copy[byte] ^= (uint8_t)(1u << (bit % 8));
		}
		assert_int_equal(sl_batch_validate(e->copy, len, NULL, e->scratch, SCRATCH_BYTES, NULL), 0);
	}
}

/* Kafka leaves baseOffset and partitionLeaderEpoch outside the CRC so the broker can stamp them; a flip there is
 * invisible to validation by design. */
static void validate_accepts_changes_to_base_offset_and_leader_epoch(void **state)
{
	struct env *e = *state;

	memcpy(e->copy, known_batch, sizeof(known_batch));
	for (size_t byte = 0; byte < 16; byte++) {
		if (byte >= 8 && byte < 12)
			continue;
		e->copy[byte] ^= 0x01;
		assert_int_equal(sl_batch_validate(e->copy, sizeof(known_batch), NULL, NULL, 0, NULL), 0);
		e->copy[byte] ^= 0x01;
	}
}

static void validate_rejects_truncation_at_every_length(void **state)
{
	struct env *e = *state;
	const uint8_t *batch;
	size_t len;

	samples_make_all();
	build(e, samples, 30, SL_BATCH_CODEC_NONE, &batch, &len);
	for (size_t cut = 0; cut < len; cut++)
		assert_rejected(batch, cut, NULL);
}

static void validate_rejects_bytes_after_the_batch(void **state)
{
	struct env *e = *state;

	memcpy(e->copy, known_batch, sizeof(known_batch));
	e->copy[sizeof(known_batch)] = 0;
	assert_rejected(e->copy, sizeof(known_batch) + 1, "after the end");
}

static void validate_rejects_crc_mismatch(void **state)
{
	struct env *e = *state;

	memcpy(e->copy, known_batch, sizeof(known_batch));
	e->copy[68] = 'w'; /* the value */
	assert_rejected(e->copy, sizeof(known_batch), "CRC");
}

static void validate_rejects_record_count_not_last_offset_delta_plus_one(void **state)
{
	struct env *e = *state;

	memcpy(e->copy, known_batch, sizeof(known_batch));
	put_be(e->copy + 57, 2, 4);
	crc_fix(e->copy, sizeof(known_batch));
	assert_rejected(e->copy, sizeof(known_batch), "lastOffsetDelta");
}

static void validate_rejects_record_count_above_records_present(void **state)
{
	struct env *e = *state;

	memcpy(e->copy, known_batch, sizeof(known_batch));
	put_be(e->copy + 23, 1, 4);
	put_be(e->copy + 57, 2, 4);
	crc_fix(e->copy, sizeof(known_batch));
	assert_rejected(e->copy, sizeof(known_batch), "before recordsCount");
}

static void validate_rejects_record_count_below_records_present(void **state)
{
	struct env *e = *state;
	struct raw b0 = {.n = 0}, b1 = {.n = 0}, section = {.n = 0};

	raw_body(&b0, 0, "a", "1", 0, NULL);
	raw_body(&b1, 1, "b", "2", 0, NULL);
	raw_record(&section, &b0, 0);
	raw_record(&section, &b1, 0);
	size_t len = raw_batch(e->copy, &section, 2, 0);
	assert_int_equal(sl_batch_validate(e->copy, len, NULL, NULL, 0, NULL), 0);
	len = raw_batch(e->copy, &section, 1, 0);
	assert_rejected(e->copy, len, "after the last record");
}

static void validate_rejects_zero_records(void **state)
{
	struct env *e = *state;
	struct raw section = {.n = 0};
	size_t len = raw_batch(e->copy, &section, 0, 0);

	assert_rejected(e->copy, len, NULL);
}

static void validate_rejects_record_length_longer_than_its_fields(void **state)
{
	struct env *e = *state;
	struct raw body = {.n = 0}, section = {.n = 0};

	raw_body(&body, 0, "k", "v", 0, NULL);
	raw_record(&section, &body, 1);
	section.b[section.n++] = 0; /* a stray byte the length covers but no field reads */
	assert_rejected(e->copy, raw_batch(e->copy, &section, 1, 0), "larger than the bytes of its fields");
}

static void validate_rejects_record_length_shorter_than_its_fields(void **state)
{
	struct env *e = *state;
	struct raw body = {.n = 0}, section = {.n = 0};

	raw_body(&body, 0, "k", "v", 0, NULL);
	raw_record(&section, &body, -1);
	assert_rejected(e->copy, raw_batch(e->copy, &section, 1, 0), NULL);
}

static void validate_rejects_record_length_past_the_section(void **state)
{
	struct env *e = *state;
	struct raw body = {.n = 0}, section = {.n = 0};

	raw_body(&body, 0, "k", "v", 0, NULL);
	raw_record(&section, &body, 100);
	assert_rejected(e->copy, raw_batch(e->copy, &section, 1, 0), "past the records section");
}

static void validate_rejects_offset_delta_other_than_record_index(void **state)
{
	struct env *e = *state;
	struct raw body = {.n = 0}, section = {.n = 0};

	raw_body(&body, 1, "k", "v", 0, NULL);
	raw_record(&section, &body, 0);
	assert_rejected(e->copy, raw_batch(e->copy, &section, 1, 0), "offsetDelta");
}

static void validate_rejects_negative_key_length_other_than_minus_one(void **state)
{
	struct env *e = *state;
	struct raw body = {.n = 0}, section = {.n = 0};

	body.b[body.n++] = 0;
	raw_varint(&body, 0);
	raw_varint(&body, 0);
	raw_varint(&body, -2); /* key length */
	raw_string(&body, "v");
	raw_varint(&body, 0);
	raw_record(&section, &body, 0);
	assert_rejected(e->copy, raw_batch(e->copy, &section, 1, 0), "key length");
}

static void validate_rejects_negative_value_length_other_than_minus_one(void **state)
{
	struct env *e = *state;
	struct raw body = {.n = 0}, section = {.n = 0};

	body.b[body.n++] = 0;
	raw_varint(&body, 0);
	raw_varint(&body, 0);
	raw_string(&body, "k");
	raw_varint(&body, -3); /* value length */
	raw_varint(&body, 0);
	raw_record(&section, &body, 0);
	assert_rejected(e->copy, raw_batch(e->copy, &section, 1, 0), "value length");
}

static void validate_rejects_null_header_name(void **state)
{
	struct env *e = *state;
	const char *headers[] = {NULL, "x"};

	assert_rejected(e->copy, raw_batch_one(e->copy, "v", 1, headers), "header name");
}

static void validate_rejects_header_count_that_overruns_the_record(void **state)
{
	struct env *e = *state;
	struct raw body = {.n = 0}, section = {.n = 0};
	const char *headers[] = {"x", "1"};

	raw_body(&body, 0, "k", "v", 1, headers);
	body.b[7] = 2 * 3; /* headersCount 3 with one header present; the byte after key and value */
	raw_record(&section, &body, 0);
	assert_rejected(e->copy, raw_batch(e->copy, &section, 1, 0), "headersCount");
}

static void validate_rejects_negative_header_count(void **state)
{
	struct env *e = *state;
	struct raw body = {.n = 0}, section = {.n = 0};

	raw_body(&body, 0, "k", "v", 0, NULL);
	body.b[body.n - 1] = 0x01; /* headersCount -1 */
	raw_record(&section, &body, 0);
	assert_rejected(e->copy, raw_batch(e->copy, &section, 1, 0), "headersCount");
}

static void validate_rejects_overlong_varint_in_a_record(void **state)
{
	struct env *e = *state;
	struct raw body = {.n = 0}, section = {.n = 0};
	const uint8_t six_byte_zero[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x00};

	body.b[body.n++] = 0;
	raw_varint(&body, 0);
	raw_put(&body, six_byte_zero, sizeof(six_byte_zero)); /* offsetDelta */
	raw_string(&body, "k");
	raw_string(&body, "v");
	raw_varint(&body, 0);
	raw_record(&section, &body, 0);
	assert_rejected(e->copy, raw_batch(e->copy, &section, 1, 0), "offsetDelta");
}

static void validate_rejects_record_timestamp_that_overflows(void **state)
{
	struct env *e = *state;
	struct raw body = {.n = 0}, section = {.n = 0};

	body.b[body.n++] = 0;
	raw_varint(&body, 1); /* timestampDelta +1 on top of INT64_MAX */
	raw_varint(&body, 0);
	raw_string(&body, "k");
	raw_string(&body, "v");
	raw_varint(&body, 0);
	raw_record(&section, &body, 0);
	assert_rejected(e->copy, raw_batch(e->copy, &section, 1, INT64_MAX), "timestamp overflows");
}

static void validate_rejects_version_header_that_is_not_decimal(void **state)
{
	struct env *e = *state;
	const char *const bad_versions[] = {"12a",
	                                    "",
	                                    "-",
	                                    "+5",
	                                    " 5",
	                                    "9223372036854775808",
	                                    "-9223372036854775808" /* SL_VERSION_NONE is not a version */};

	for (size_t i = 0; i < sizeof(bad_versions) / sizeof(bad_versions[0]); i++) {
		const char *headers[] = {"v", bad_versions[i]};
		assert_rejected(e->copy, raw_batch_one(e->copy, "v", 1, headers), "header v");
	}
}

static void validate_rejects_unknown_op_and_origin(void **state)
{
	struct env *e = *state;
	const char *op[] = {"op", "remove"};
	const char *origin[] = {"origin", "LIVE"};

	assert_rejected(e->copy, raw_batch_one(e->copy, NULL, 1, op), "op");
	assert_rejected(e->copy, raw_batch_one(e->copy, "v", 1, origin), "origin");
}

static void validate_rejects_schema_version_outside_int32(void **state)
{
	struct env *e = *state;
	const char *headers[] = {"sv", "2147483648"};

	assert_rejected(e->copy, raw_batch_one(e->copy, "v", 1, headers), "header sv");
}

static void validate_rejects_repeated_sync_header(void **state)
{
	struct env *e = *state;
	const char *headers[] = {"v", "1", "v", "2"};

	assert_rejected(e->copy, raw_batch_one(e->copy, "v", 2, headers), "twice");
}

static void validate_rejects_null_sync_header_value(void **state)
{
	struct env *e = *state;
	const char *headers[] = {"ik", NULL};

	assert_rejected(e->copy, raw_batch_one(e->copy, "v", 1, headers), "null value");
}

static void validate_rejects_delete_with_a_value(void **state)
{
	struct env *e = *state;
	const char *headers[] = {"op", "delete"};

	assert_rejected(e->copy, raw_batch_one(e->copy, "v", 1, headers), "delete");
	assert_int_equal(sl_batch_validate(e->copy, raw_batch_one(e->copy, NULL, 1, headers), NULL, NULL, 0, NULL), 0);
}

static void validate_rejects_unsupported_codec(void **state)
{
	struct env *e = *state;
	struct sl_record_iter it;
	const char *why = NULL;

	memcpy(e->copy, known_batch, sizeof(known_batch));
	put_be(e->copy + 21, 1, 2); /* gzip */
	crc_fix(e->copy, sizeof(known_batch));
	assert_int_equal(sl_batch_validate(e->copy, sizeof(known_batch), NULL, NULL, 0, &why), -ENOTSUP);
	assert_non_null(why);
	assert_int_equal(sl_record_iter_init(&it, e->copy, sizeof(known_batch), e->scratch, SCRATCH_BYTES), -ENOTSUP);
}

static void validate_rejects_zstd_records_larger_than_scratch(void **state)
{
	struct env *e = *state;
	const uint8_t *batch;
	const char *why = NULL;
	size_t len;

	samples_make_all();
	build(e, samples, 100, SL_BATCH_CODEC_ZSTD, &batch, &len);
	assert_int_equal(get_be(batch + 21, 2), SL_BATCH_CODEC_ZSTD);
	assert_int_equal(sl_batch_validate(batch, len, NULL, e->scratch, 64, &why), -EBADMSG);
	assert_non_null(why);
	assert_non_null(strstr(why, "decompressed records larger than"));
}

static void validate_walks_zstd_records_only_when_given_scratch(void **state)
{
	struct env *e = *state;
	struct raw body = {.n = 0}, record = {.n = 0}, section = {.n = 0};
	const char *why = NULL;
	size_t len;

	/* A zstd frame of a record whose offsetDelta is wrong: only the walk after decompression can see it. */
	raw_body(&body, 5, "k", "v", 0, NULL);
	raw_record(&record, &body, 0);
	section.n = ZSTD_compress(section.b, sizeof(section.b), record.b, record.n, 1);
	assert_false(ZSTD_isError(section.n));
	len = raw_batch(e->copy, &section, 1, 0);
	put_be(e->copy + 21, SL_BATCH_CODEC_ZSTD, 2);
	crc_fix(e->copy, len);
	assert_int_equal(sl_batch_validate(e->copy, len, NULL, NULL, 0, NULL), 0);
	assert_int_equal(sl_batch_validate(e->copy, len, NULL, e->scratch, SCRATCH_BYTES, &why), -EBADMSG);
	assert_non_null(strstr(why, "offsetDelta"));
}

static void validate_rejects_corrupt_zstd_frame(void **state)
{
	struct env *e = *state;
	const uint8_t *batch;
	size_t len;

	samples_make_all();
	build(e, samples, 100, SL_BATCH_CODEC_ZSTD, &batch, &len);
	assert_int_equal(get_be(batch + 21, 2), SL_BATCH_CODEC_ZSTD);
	memcpy(e->copy, batch, len);
	e->copy[61] ^= 0xff; /* the frame's magic number */
	crc_fix(e->copy, len);
	const char *why = NULL;
	assert_int_equal(sl_batch_validate(e->copy, len, NULL, e->scratch, SCRATCH_BYTES, &why), -EBADMSG);
	assert_non_null(strstr(why, "zstd"));
}

/* ---- iterator ---- */

static void iterator_returns_defaults_when_sync_headers_absent(void **state)
{
	struct env *e = *state;
	const char *headers[] = {"trace-id", "abc", "x", NULL};
	struct sl_record_iter it;
	struct sl_record r;
	size_t len = raw_batch_one(e->copy, "v", 2, headers);

	assert_int_equal(sl_batch_validate(e->copy, len, NULL, NULL, 0, NULL), 0);
	assert_int_equal(sl_record_iter_init(&it, e->copy, len, NULL, 0), 0);
	assert_int_equal(sl_record_iter_next(&it, &r), 1);
	assert_int_equal(r.version, SL_VERSION_NONE);
	assert_int_equal(r.op, SL_OP_UPSERT);
	assert_int_equal(r.origin, SL_ORIGIN_LIVE);
	assert_null(r.idempotency_key);
	assert_int_equal(r.schema_version, 0);
	assert_int_equal(sl_record_iter_next(&it, &r), 0);
}

static void iterator_reports_malformed_record_after_the_good_ones(void **state)
{
	struct env *e = *state;
	struct raw b0 = {.n = 0}, b1 = {.n = 0}, section = {.n = 0};
	struct sl_record_iter it;
	struct sl_record r;

	raw_body(&b0, 0, "a", "1", 0, NULL);
	raw_body(&b1, 1, "b", "2", 0, NULL);
	raw_record(&section, &b0, 0);
	raw_record(&section, &b1, -2);
	size_t len = raw_batch(e->copy, &section, 2, 0);
	assert_int_equal(sl_record_iter_init(&it, e->copy, len, NULL, 0), 0);
	assert_int_equal(sl_record_iter_next(&it, &r), 1);
	assert_int_equal(sl_record_iter_next(&it, &r), -EBADMSG);
	assert_int_equal(sl_record_iter_next(&it, &r), -EBADMSG);
}

static void iterator_init_needs_room_for_zstd_records(void **state)
{
	struct env *e = *state;
	struct sl_record_iter it;
	struct sl_record r;
	const uint8_t *batch;
	size_t len;

	samples_make_all();
	build(e, samples, 100, SL_BATCH_CODEC_ZSTD, &batch, &len);
	assert_int_equal(sl_record_iter_init(&it, batch, len, NULL, 0), -ENOBUFS);
	assert_int_equal(sl_record_iter_init(&it, batch, len, e->scratch, 64), -ENOBUFS);
	assert_int_equal(sl_record_iter_next(&it, &r), 0);
}

static void iterator_init_rejects_length_other_than_the_batch(void **state)
{
	struct env *e = *state;
	struct sl_record_iter it;

	assert_int_equal(sl_record_iter_init(&it, known_batch, sizeof(known_batch) - 1, NULL, 0), -EBADMSG);
	memcpy(e->copy, known_batch, sizeof(known_batch));
	assert_int_equal(sl_record_iter_init(&it, e->copy, sizeof(known_batch) + 1, NULL, 0), -EBADMSG);
}

/* ---- names ---- */

static void op_and_origin_names_round_trip(void **state)
{
	enum sl_op op;
	enum sl_origin origin;

	for (int i = 0; i < 2; i++) {
		const char *name = sl_op_name((enum sl_op)i);
		assert_int_equal(sl_op_parse(name, strlen(name), &op), 0);
		assert_int_equal(op, i);
	}
	for (int i = 0; i < 3; i++) {
		const char *name = sl_origin_name((enum sl_origin)i);
		assert_int_equal(sl_origin_parse(name, strlen(name), &origin), 0);
		assert_int_equal(origin, i);
	}
	assert_string_equal(sl_op_name(SL_OP_DELETE), "delete");
	assert_string_equal(sl_origin_name(SL_ORIGIN_BACKFILL), "backfill");
	assert_int_equal(sl_op_parse("upsertx", 7, &op), -EINVAL);
	assert_int_equal(sl_op_parse("upsert", 5, &op), -EINVAL);
	assert_int_equal(sl_origin_parse("", 0, &origin), -EINVAL);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, env_setup, env_teardown)
	const struct CMUnitTest tests[] = {
	        T(varint_encodes_as_kafka_does),
	        T(varint_round_trips_boundary_values),
	        T(varint_decode_reports_truncation_and_leaves_cursor),
	        T(varint_decode_rejects_overlong_encodings),
	        T(varint_encode_refuses_when_out_of_room),
	        T(builder_writes_known_single_record_batch_byte_for_byte),
	        T(known_batch_validates_and_iterates),
	        T(builder_round_trips_every_field_combination),
	        T(builder_round_trips_every_field_combination_through_zstd),
	        T(builder_sets_base_and_max_timestamp_with_negative_deltas),
	        T(builder_writes_producer_fields_and_reset_clears_them),
	        T(builder_writes_op_and_origin_headers_only_when_not_default),
	        T(null_value_reads_as_delete_unless_op_says_upsert),
	        T(zstd_batch_is_much_smaller_for_repetitive_records),
	        T(zstd_leaves_incompressible_records_uncompressed),
	        T(set_base_offset_keeps_crc_valid_and_shifts_record_offsets),
	        T(builder_add_returns_enospc_and_leaves_batch_unchanged),
	        T(builder_add_rejects_record_that_can_never_fit),
	        T(builder_add_rejects_invalid_fields),
	        T(builder_add_returns_enospc_when_timestamp_delta_overflows),
	        T(builder_finish_rejects_empty_batch_and_unknown_codec),
	        T(builder_init_rejects_sizes_out_of_range),
	        T(header_parse_needs_61_bytes),
	        T(header_parse_rejects_bad_magic_length_and_counts),
	        T(validate_rejects_every_bit_flip_under_the_crc_or_in_the_structure),
	        T(validate_accepts_changes_to_base_offset_and_leader_epoch),
	        T(validate_rejects_truncation_at_every_length),
	        T(validate_rejects_bytes_after_the_batch),
	        T(validate_rejects_crc_mismatch),
	        T(validate_rejects_record_count_not_last_offset_delta_plus_one),
	        T(validate_rejects_record_count_above_records_present),
	        T(validate_rejects_record_count_below_records_present),
	        T(validate_rejects_zero_records),
	        T(validate_rejects_record_length_longer_than_its_fields),
	        T(validate_rejects_record_length_shorter_than_its_fields),
	        T(validate_rejects_record_length_past_the_section),
	        T(validate_rejects_offset_delta_other_than_record_index),
	        T(validate_rejects_negative_key_length_other_than_minus_one),
	        T(validate_rejects_negative_value_length_other_than_minus_one),
	        T(validate_rejects_null_header_name),
	        T(validate_rejects_header_count_that_overruns_the_record),
	        T(validate_rejects_negative_header_count),
	        T(validate_rejects_overlong_varint_in_a_record),
	        T(validate_rejects_record_timestamp_that_overflows),
	        T(validate_rejects_version_header_that_is_not_decimal),
	        T(validate_rejects_unknown_op_and_origin),
	        T(validate_rejects_schema_version_outside_int32),
	        T(validate_rejects_repeated_sync_header),
	        T(validate_rejects_null_sync_header_value),
	        T(validate_rejects_delete_with_a_value),
	        T(validate_rejects_unsupported_codec),
	        T(validate_rejects_zstd_records_larger_than_scratch),
	        T(validate_walks_zstd_records_only_when_given_scratch),
	        T(validate_rejects_corrupt_zstd_frame),
	        T(iterator_returns_defaults_when_sync_headers_absent),
	        T(iterator_reports_malformed_record_after_the_good_ones),
	        T(iterator_init_needs_room_for_zstd_records),
	        T(iterator_init_rejects_length_other_than_the_batch),
	        T(op_and_origin_names_round_trip),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
