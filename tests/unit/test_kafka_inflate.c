/* A Kafka client's gzip, snappy or lz4 batch made plain by the Kafka listener (broker/kafka/inflate.c): the result is
 * byte for byte the batch the client would have sent uncompressed; a damaged batch, a gzip size (ISIZE) that
 * lies, a cut or padded frame, and a batch that would inflate past the bound are refused without growing the
 * request's memory. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>

#include "broker/kafka/kafka_impl.h"
#include "proto/base/be.h"
#include "proto/batch.h"
#include "proto/crc32c.h"

#define RECORDS 50

struct fixture {
	struct sl_batch_builder b;
	const uint8_t *plain; /* the batch as the builder made it, uncompressed */
	size_t plain_len;
	uint8_t gz[1 << 16]; /* the same batch with its records section gzipped, codec 1 */
	size_t gz_len;
	uint8_t lz[1 << 16]; /* and as one LZ4 frame without a content size (as the Java client writes it), codec 3 */
	size_t lz_len;
	/* What a test's batch_inflate gives: the request's memory, the plain batch in it, why a batch was refused. */
	struct sl_kafka_arena arena;
	uint8_t *out;
	size_t out_len;
	const char *why;
};

/* Fix batchLength and the CRC after the bytes changed, as a client's encoder does. */
static void seal(uint8_t *b, size_t len)
{
	sl_store_be32(b + 8, (uint32_t)(len - 12));
	sl_store_be32(b + 17, sl_crc32c(0, b + SL_BATCH_CRC_START, len - SL_BATCH_CRC_START));
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(sl_batch_builder_init(&f->b, 1 << 20), 0);
	char key[16], value[64];
	for (int i = 0; i < RECORDS; i++) {
		struct sl_record r = {.timestamp_ms = 1700000000000 + i, .version = i + 1};
		snprintf(key, sizeof(key), "key-%d", i);
		snprintf(value, sizeof(value), "{\"n\": %d, \"text\": \"value of record %d\"}", i, i);
		r.key = (const uint8_t *)key;
		r.key_len = (int32_t)strlen(key);
		r.value = (const uint8_t *)value;
		r.value_len = (int32_t)strlen(value);
		assert_int_equal(sl_batch_builder_add(&f->b, &r), 0);
	}
	assert_int_equal(sl_batch_builder_finish(&f->b, SL_BATCH_CODEC_NONE, &f->plain, &f->plain_len), 0);
	/* gzip (windowBits 16 + 15) of the records section, as GZIPOutputStream, kafkajs and kafka-python write it. */
	memcpy(f->gz, f->plain, SL_BATCH_HEADER_BYTES);
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
	zs.next_in = (Bytef *)f->plain + SL_BATCH_HEADER_BYTES;
	zs.avail_in = (uInt)(f->plain_len - SL_BATCH_HEADER_BYTES);
	zs.next_out = f->gz + SL_BATCH_HEADER_BYTES;
	zs.avail_out = (uInt)(sizeof(f->gz) - SL_BATCH_HEADER_BYTES);
	assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
	f->gz_len = SL_BATCH_HEADER_BYTES + zs.total_out;
	deflateEnd(&zs);
	f->gz[22] = (uint8_t)((f->gz[22] & ~SL_BATCH_ATTR_CODEC_MASK) | SL_KAFKA_CODEC_GZIP);
	seal(f->gz, f->gz_len);
	memcpy(f->lz, f->plain, SL_BATCH_HEADER_BYTES);
	LZ4F_preferences_t prefs;
	memset(&prefs, 0, sizeof(prefs));
	size_t n = LZ4F_compressFrame(f->lz + SL_BATCH_HEADER_BYTES, sizeof(f->lz) - SL_BATCH_HEADER_BYTES,
	                              f->plain + SL_BATCH_HEADER_BYTES, f->plain_len - SL_BATCH_HEADER_BYTES, &prefs);
	assert_false(LZ4F_isError(n));
	f->lz_len = SL_BATCH_HEADER_BYTES + n;
	f->lz[22] = (uint8_t)((f->lz[22] & ~SL_BATCH_ATTR_CODEC_MASK) | SL_KAFKA_CODEC_LZ4);
	seal(f->lz, f->lz_len);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	sl_kafka_arena_free(&f->arena);
	sl_batch_builder_free(&f->b);
	free(f);
	return 0;
}

/* The listener's inflate of the batch b (len bytes) with bytes_max its bound, into the fixture's arena. */
static int batch_inflate(struct fixture *f, const uint8_t *b, size_t len, size_t bytes_max)
{
	f->why = "";
	return sl_kafka_batch_inflate(&f->arena, b, len, bytes_max, &f->out, &f->out_len, &f->why);
}

/* What came out is byte for byte the batch the builder made uncompressed. */
static void assert_out_is_plain(const struct fixture *f)
{
	assert_int_equal(f->out_len, f->plain_len);
	assert_memory_equal(f->out, f->plain, f->plain_len);
}

static void a_gzip_batch_becomes_the_plain_batch(void **state)
{
	struct fixture *f = *state;
	assert_true(f->gz_len < f->plain_len);
	assert_int_equal(batch_inflate(f, f->gz, f->gz_len, 1 << 20), 0);
	assert_out_is_plain(f);
	struct sl_batch_header h;
	uint8_t scratch[1 << 16];
	assert_int_equal(sl_batch_validate(f->out, f->out_len, &h, scratch, sizeof(scratch), &f->why), 0);
	assert_int_equal(h.record_count, RECORDS);
}

static void a_damaged_batch_is_refused_not_resealed(void **state)
{
	struct fixture *f = *state;
	f->gz[SL_BATCH_HEADER_BYTES + 20] ^= 0x40; /* a bit flipped on the way: the CRC no longer matches */
	assert_int_equal(batch_inflate(f, f->gz, f->gz_len, 1 << 20), -EINVAL);
	assert_string_equal(f->why, "CRC mismatch");
	assert_int_equal(f->arena.used_bytes, 0);
}

static void an_isize_that_lies_is_refused(void **state)
{
	struct fixture *f = *state;
	uint8_t *isize = f->gz + f->gz_len - 4;
	for (int lie = -1; lie <= 1; lie += 2) {
		uint32_t n = (uint32_t)(f->plain_len - SL_BATCH_HEADER_BYTES) + (uint32_t)lie;
		isize[0] = (uint8_t)n, isize[1] = (uint8_t)(n >> 8), isize[2] = (uint8_t)(n >> 16);
		isize[3] = (uint8_t)(n >> 24);
		seal(f->gz, f->gz_len);
		assert_int_equal(batch_inflate(f, f->gz, f->gz_len, 1 << 20), -EINVAL);
	}
}

static void a_batch_over_the_bound_is_refused_before_inflating(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(batch_inflate(f, f->gz, f->gz_len, f->plain_len - 1), -EMSGSIZE);
	assert_int_equal(f->arena.used_bytes, 0);
	assert_int_equal(f->arena.bytes_max, 0);
	/* Exactly the bound is allowed. */
	assert_int_equal(batch_inflate(f, f->gz, f->gz_len, f->plain_len), 0);
}

static void truncated_batches_are_refused(void **state)
{
	struct fixture *f = *state;
	for (size_t len = 0; len < f->gz_len; len += 7) {
		uint8_t cut[1 << 16];
		memcpy(cut, f->gz, len);
		if (len >= SL_BATCH_HEADER_BYTES)
			seal(cut, len); /* a well-sealed batch whose gzip member is cut short */
		assert_int_not_equal(batch_inflate(f, cut, len, 1 << 20), 0);
	}
}

static void an_lz4_batch_becomes_the_plain_batch(void **state)
{
	struct fixture *f = *state;
	assert_true(f->lz_len < f->plain_len);
	assert_int_equal(batch_inflate(f, f->lz, f->lz_len, 1 << 20), 0);
	assert_out_is_plain(f);
}

static void lz4_frames_cut_padded_or_over_the_bound_are_refused(void **state)
{
	struct fixture *f = *state;
	uint8_t b[1 << 16];
	assert_int_equal(batch_inflate(f, f->lz, f->lz_len, f->plain_len - 1), -EMSGSIZE);
	assert_int_equal(f->arena.used_bytes, 0);
	for (size_t len = SL_BATCH_HEADER_BYTES; len < f->lz_len; len += 5) {
		memcpy(b, f->lz, len);
		seal(b, len);
		assert_int_not_equal(batch_inflate(f, b, len, 1 << 20), 0);
	}
	memcpy(b, f->lz, f->lz_len);
	memcpy(b + f->lz_len, "junk", 4); /* bytes after the frame */
	seal(b, f->lz_len + 4);
	assert_int_equal(batch_inflate(f, b, f->lz_len + 4, 1 << 20), -EINVAL);
	assert_int_equal(f->arena.used_bytes, 0);
}

/* The records section as snappy: xerial's framing in blocks of block_bytes (the Java client's and kafka-python's),
 * or one raw block when block_bytes is 0 (librdkafka's). */
static size_t snappy_batch(struct fixture *f, uint8_t *b, size_t block_bytes)
{
	const uint8_t *src = f->plain + SL_BATCH_HEADER_BYTES;
	size_t src_len = f->plain_len - SL_BATCH_HEADER_BYTES, at = SL_BATCH_HEADER_BYTES;
	memcpy(b, f->plain, SL_BATCH_HEADER_BYTES);
	if (block_bytes == 0) {
		size_t n = 1 << 15;
		assert_int_equal(snappy_compress((const char *)src, src_len, (char *)b + at, &n), SNAPPY_OK);
		at += n;
	} else {
		memcpy(b + at, "\x82SNAPPY\0\0\0\0\1\0\0\0\1", 16);
		at += 16;
		for (size_t i = 0; i < src_len; i += block_bytes) {
			size_t len = src_len - i < block_bytes ? src_len - i : block_bytes, n = 1 << 14;
			assert_int_equal(snappy_compress((const char *)src + i, len, (char *)b + at + 4, &n),
			                 SNAPPY_OK);
			sl_store_be32(b + at, (uint32_t)n);
			at += 4 + n;
		}
	}
	b[22] = (uint8_t)((b[22] & ~SL_BATCH_ATTR_CODEC_MASK) | SL_KAFKA_CODEC_SNAPPY);
	seal(b, at);
	return at;
}

static void snappy_batches_framed_or_raw_become_the_plain_batch(void **state)
{
	struct fixture *f = *state;
	uint8_t b[1 << 16];
	size_t blocks[] = {0, 1000, 1 << 20};
	for (size_t i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++) {
		size_t len = snappy_batch(f, b, blocks[i]);
		assert_int_equal(batch_inflate(f, b, len, 1 << 20), 0);
		assert_out_is_plain(f);
	}
}

static void snappy_with_bad_blocks_or_over_the_bound_is_refused(void **state)
{
	struct fixture *f = *state;
	uint8_t b[1 << 16];
	size_t len = snappy_batch(f, b, 1000);
	assert_int_equal(batch_inflate(f, b, len, f->plain_len - 1), -EMSGSIZE);
	assert_int_equal(f->arena.used_bytes, 0);
	sl_store_be32(b + SL_BATCH_HEADER_BYTES + 16, 1 << 30); /* a block longer than the batch */
	seal(b, len);
	assert_int_equal(batch_inflate(f, b, len, 1 << 20), -EINVAL);
	len = snappy_batch(f, b, 1000);
	seal(b, len - 3); /* the last block cut short */
	assert_int_not_equal(batch_inflate(f, b, len - 3, 1 << 20), 0);
	len = snappy_batch(f, b, 0);
	b[SL_BATCH_HEADER_BYTES] ^= 0x7f; /* the raw block's length preamble garbled: snappy has no checksum of */
	seal(b, len);                     /* its own, the batch CRC guards the bytes, so reseal to reach snappy */
	assert_int_equal(batch_inflate(f, b, len, 1 << 20), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(a_gzip_batch_becomes_the_plain_batch, setup, teardown),
	        cmocka_unit_test_setup_teardown(a_damaged_batch_is_refused_not_resealed, setup, teardown),
	        cmocka_unit_test_setup_teardown(an_isize_that_lies_is_refused, setup, teardown),
	        cmocka_unit_test_setup_teardown(a_batch_over_the_bound_is_refused_before_inflating, setup, teardown),
	        cmocka_unit_test_setup_teardown(truncated_batches_are_refused, setup, teardown),
	        cmocka_unit_test_setup_teardown(an_lz4_batch_becomes_the_plain_batch, setup, teardown),
	        cmocka_unit_test_setup_teardown(lz4_frames_cut_padded_or_over_the_bound_are_refused, setup, teardown),
	        cmocka_unit_test_setup_teardown(snappy_batches_framed_or_raw_become_the_plain_batch, setup, teardown),
	        cmocka_unit_test_setup_teardown(snappy_with_bad_blocks_or_over_the_bound_is_refused, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
