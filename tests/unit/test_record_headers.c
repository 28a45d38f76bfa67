/* Tests of a record's whole headers section (proto/batch.h, sl_record.headers): the iterator hands it out as the
 * batch holds it, the builder writes a record given with one unchanged (sync headers and foreign ones, in their
 * order), sl_record_headers_decode reads the sync fields out of it, and malformed sections are refused. This is
 * what lets `synclog copy` keep every header of a record it moves between clusters. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "proto/batch.h"

#define BATCH_BYTES (64 * 1024)

/* A headers section of three headers: a foreign one, v=7, and a foreign one with a null value. */
static size_t section_build(uint8_t *buf, size_t cap, int32_t *count_out)
{
	const struct sl_record_header hs[] = {
	        {(const uint8_t *)"trace", 5, (const uint8_t *)"abc-123", 7},
	        {(const uint8_t *)"v", 1, (const uint8_t *)"7", 1},
	        {(const uint8_t *)"empty", 5, NULL, -1},
	};
	uint8_t *p = buf;

	for (size_t i = 0; i < 3; i++)
		assert_int_equal(sl_record_header_encode(&p, buf + cap, &hs[i]), 0);
	*count_out = 3;
	return (size_t)(p - buf);
}

/* Build one batch of r and read its first record back into *out (pointing into b's buffer). */
static void round_trip(struct sl_batch_builder *b, const struct sl_record *r, struct sl_record *out)
{
	const uint8_t *batch;
	size_t len;
	struct sl_record_iter it;

	sl_batch_builder_reset(b);
	assert_int_equal(sl_batch_builder_add(b, r), 0);
	assert_int_equal(sl_batch_builder_finish(b, SL_BATCH_CODEC_NONE, &batch, &len), 0);
	assert_int_equal(sl_batch_validate(batch, len, NULL, NULL, 0, NULL), 0);
	assert_int_equal(sl_record_iter_init(&it, batch, len, NULL, 0), 0);
	assert_int_equal(sl_record_iter_next(&it, out), 1);
}

static void builder_writes_a_given_section_unchanged(void **state)
{
	struct sl_batch_builder b;
	uint8_t section[256];
	struct sl_record r = {.key = (const uint8_t *)"k",
	                      .key_len = 1,
	                      .value = (const uint8_t *)"{}",
	                      .value_len = 2},
	                 got;

	(void)state;
	assert_int_equal(sl_batch_builder_init(&b, BATCH_BYTES), 0);
	r.headers = section;
	r.headers_len = (int32_t)section_build(section, sizeof(section), &r.header_count);
	assert_int_equal(sl_record_headers_decode(&r, NULL), 0);
	assert_int_equal(r.version, 7);
	round_trip(&b, &r, &got);
	assert_int_equal(got.header_count, 3);
	assert_int_equal(got.headers_len, r.headers_len);
	assert_memory_equal(got.headers, section, (size_t)r.headers_len);
	assert_int_equal(got.version, 7);
	assert_int_equal(got.op, SL_OP_UPSERT);
	sl_batch_builder_free(&b);
}

static void iterator_hands_out_the_sync_headers_it_was_built_with(void **state)
{
	struct sl_batch_builder b;
	struct sl_record r = {.key = (const uint8_t *)"k",
	                      .key_len = 1,
	                      .value = NULL,
	                      .value_len = -1,
	                      .version = 12,
	                      .op = SL_OP_DELETE,
	                      .origin = SL_ORIGIN_REPAIR},
	                 got, again;

	(void)state;
	assert_int_equal(sl_batch_builder_init(&b, BATCH_BYTES), 0);
	round_trip(&b, &r, &got);
	assert_int_equal(got.header_count, 3); /* v, op, origin */
	/* The section read back decodes to the same sync fields. */
	again = got;
	again.version = 0, again.origin = SL_ORIGIN_LIVE;
	assert_int_equal(sl_record_headers_decode(&again, NULL), 0);
	assert_int_equal(again.version, 12);
	assert_int_equal(again.op, SL_OP_DELETE);
	assert_int_equal(again.origin, SL_ORIGIN_REPAIR);
	sl_batch_builder_free(&b);
}

static void record_without_headers_reads_back_an_empty_section(void **state)
{
	struct sl_batch_builder b;
	struct sl_record r = {.key = (const uint8_t *)"k",
	                      .key_len = 1,
	                      .value = (const uint8_t *)"1",
	                      .value_len = 1,
	                      .version = SL_VERSION_NONE},
	                 got;

	(void)state;
	assert_int_equal(sl_batch_builder_init(&b, BATCH_BYTES), 0);
	round_trip(&b, &r, &got);
	assert_non_null(got.headers); /* given back to a builder, it writes no header: not an op for the null value */
	assert_int_equal(got.header_count, 0);
	assert_int_equal(got.headers_len, 0);
	sl_batch_builder_free(&b);
}

static void builder_refuses_a_malformed_section(void **state)
{
	struct sl_batch_builder b;
	uint8_t section[256];
	struct sl_record r = {.key = (const uint8_t *)"k", .key_len = 1, .value = (const uint8_t *)"1", .value_len = 1};
	int32_t count;
	size_t len = section_build(section, sizeof(section), &count);

	(void)state;
	assert_int_equal(sl_batch_builder_init(&b, BATCH_BYTES), 0);
	r.headers = section;
	r.headers_len = (int32_t)len;
	r.header_count = count + 1; /* says one more than it holds */
	assert_int_equal(sl_batch_builder_add(&b, &r), -EINVAL);
	r.header_count = count;
	r.headers_len = (int32_t)len - 1; /* cut inside the last header */
	assert_int_equal(sl_batch_builder_add(&b, &r), -EINVAL);
	r.headers_len = -1;
	assert_int_equal(sl_batch_builder_add(&b, &r), -EINVAL);
	assert_int_equal(b.record_count, 0);
	sl_batch_builder_free(&b);
}

static void decode_refuses_bad_sync_headers(void **state)
{
	uint8_t section[64], *p = section;
	const struct sl_record_header v = {(const uint8_t *)"v", 1, (const uint8_t *)"x7", 2};
	struct sl_record r = {.value = (const uint8_t *)"1", .value_len = 1};
	const char *why = NULL;

	(void)state;
	assert_int_equal(sl_record_header_encode(&p, section + sizeof(section), &v), 0);
	r.headers = section;
	r.headers_len = (int32_t)(p - section);
	r.header_count = 1;
	assert_int_equal(sl_record_headers_decode(&r, &why), -EBADMSG);
	assert_non_null(why);
}

static void decode_of_a_null_value_without_op_is_a_delete(void **state)
{
	struct sl_record r = {.value = NULL, .value_len = -1};

	(void)state;
	assert_int_equal(sl_record_headers_decode(&r, NULL), 0);
	assert_int_equal(r.op, SL_OP_DELETE);
	assert_true(r.version == SL_VERSION_NONE);
}

static void encode_refuses_what_does_not_fit(void **state)
{
	uint8_t small[4], *p = small;
	const struct sl_record_header h = {(const uint8_t *)"trace", 5, (const uint8_t *)"x", 1};

	(void)state;
	assert_int_equal(sl_record_header_bytes(5, 1), 1 + 5 + 1 + 1);
	assert_int_equal(sl_record_header_encode(&p, small + sizeof(small), &h), -ENOSPC);
	assert_ptr_equal(p, small);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(builder_writes_a_given_section_unchanged),
	        cmocka_unit_test(iterator_hands_out_the_sync_headers_it_was_built_with),
	        cmocka_unit_test(record_without_headers_reads_back_an_empty_section),
	        cmocka_unit_test(builder_refuses_a_malformed_section),
	        cmocka_unit_test(decode_refuses_bad_sync_headers),
	        cmocka_unit_test(decode_of_a_null_value_without_op_is_a_delete),
	        cmocka_unit_test(encode_refuses_what_does_not_fit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
