/* Tests of proto/crc32c: the standard check values, the hardware path agreeing with the table on every length and
 * alignment, and extending a CRC across split buffers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "proto/crc32c.h"

/* Longer than three LONG blocks (3 * 8192) of the hardware path plus change, so every loop of it runs. */
#define BIG_BUFFER_BYTES (3 * 8192 + 3 * 256 + 64)
#define ALIGNMENTS       8

/* xorshift64: the same bytes on every run, so a failure reproduces. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng_next(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void fill_random(uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)rng_next();
}

static void crc32c_check_value_is_e3069283(void **state)
{
	assert_int_equal(sl_crc32c(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(sl_crc32c_table(0, "123456789", 9), 0xE3069283u);
}

/* The CRC test vectors of RFC 3720 (iSCSI), appendix B.4. */
static void crc32c_matches_rfc3720_vectors(void **state)
{
	uint8_t buf[32];

	memset(buf, 0, sizeof(buf));
	assert_int_equal(sl_crc32c(0, buf, sizeof(buf)), 0x8A9136AAu);
	memset(buf, 0xff, sizeof(buf));
	assert_int_equal(sl_crc32c(0, buf, sizeof(buf)), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(sl_crc32c(0, buf, sizeof(buf)), 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	assert_int_equal(sl_crc32c(0, buf, sizeof(buf)), 0x113FDB5Cu);
}

static void crc32c_of_nothing_leaves_crc_unchanged(void **state)
{
	assert_int_equal(sl_crc32c(0, NULL, 0), 0);
	assert_int_equal(sl_crc32c(0xE3069283u, "", 0), 0xE3069283u);
	assert_int_equal(sl_crc32c_table(0x12345678u, "", 0), 0x12345678u);
}

static void crc32c_hardware_equals_table_for_lengths_0_to_300_at_every_alignment(void **state)
{
	uint8_t buf[300 + ALIGNMENTS];

	for (size_t len = 0; len <= 300; len++) {
		for (size_t start = 0; start < ALIGNMENTS; start++) {
			fill_random(buf, sizeof(buf));
			uint32_t seed = (uint32_t)rng_next();
			assert_int_equal(sl_crc32c(0, buf + start, len), sl_crc32c_table(0, buf + start, len));
			assert_int_equal(sl_crc32c(seed, buf + start, len), sl_crc32c_table(seed, buf + start, len));
		}
	}
}

/* Lengths around the block sizes of the three-way hardware loop, where joining the streams could go wrong. */
static void crc32c_hardware_equals_table_on_large_buffers(void **state)
{
	static uint8_t buf[BIG_BUFFER_BYTES + ALIGNMENTS];
	const size_t lengths[] = {
	        767, 768, 769, 1000, 3 * 8192 - 1, 3 * 8192, 3 * 8192 + 1, 3 * 8192 + 768 + 7, BIG_BUFFER_BYTES};

	fill_random(buf, sizeof(buf));
	for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++)
		for (size_t start = 0; start < ALIGNMENTS; start++)
			assert_int_equal(sl_crc32c(0, buf + start, lengths[i]),
			                 sl_crc32c_table(0, buf + start, lengths[i]));
}

static void crc32c_extends_across_every_split_point(void **state)
{
	uint8_t buf[600];

	fill_random(buf, sizeof(buf));
	uint32_t whole = sl_crc32c(0, buf, sizeof(buf));
	for (size_t split = 0; split <= sizeof(buf); split++) {
		uint32_t first = sl_crc32c(0, buf, split);
		assert_int_equal(sl_crc32c(first, buf + split, sizeof(buf) - split), whole);
		assert_int_equal(sl_crc32c_table(sl_crc32c_table(0, buf, split), buf + split, sizeof(buf) - split),
		                 whole);
	}
}

static void crc32c_extends_byte_by_byte(void **state)
{
	uint32_t crc = 0;

	for (int i = 0; i < 9; i++)
		crc = sl_crc32c(crc, &"123456789"[i], 1);
	assert_int_equal(crc, 0xE3069283u);
}

static void crc32c_detects_every_single_bit_flip(void **state)
{
	uint8_t buf[64];

	fill_random(buf, sizeof(buf));
	uint32_t good = sl_crc32c(0, buf, sizeof(buf));
	for (size_t bit = 0; bit < sizeof(buf) * 8; bit++) {
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_not_equal(sl_crc32c(0, buf, sizeof(buf)), good);
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(crc32c_check_value_is_e3069283),
	        cmocka_unit_test(crc32c_matches_rfc3720_vectors),
	        cmocka_unit_test(crc32c_of_nothing_leaves_crc_unchanged),
	        cmocka_unit_test(crc32c_hardware_equals_table_for_lengths_0_to_300_at_every_alignment),
	        cmocka_unit_test(crc32c_hardware_equals_table_on_large_buffers),
	        cmocka_unit_test(crc32c_extends_across_every_split_point),
	        cmocka_unit_test(crc32c_extends_byte_by_byte),
	        cmocka_unit_test(crc32c_detects_every_single_bit_flip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
