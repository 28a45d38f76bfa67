/* Tests of the partitioner (consumer/partition.c): murmur2 against the values of Kafka's own test
 * (org.apache.kafka.common.utils.UtilsTest.testMurmur2), and the partition as Kafka's Java client computes it,
 * (murmur2(key) & 0x7fffffff) % partitions, so that keys land where every Kafka client puts them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "consumer/client/synclog.h"

struct vector {
	const char *key;
	int32_t murmur2;
};

/* UtilsTest.testMurmur2, the six cases of Kafka's source tree. */
static const struct vector kafka_vectors[] = {
        {"21", -973932308},
        {"foobar", -790332482},
        {"a-little-bit-long-string", -985981536},
        {"a-little-bit-longer-string", -1486304829},
        {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
        {"abc", 479470107},
};

static void murmur2_matches_kafka_utils_test(void **state)
{
	for (size_t i = 0; i < sizeof(kafka_vectors) / sizeof(kafka_vectors[0]); i++) {
		const struct vector *v = &kafka_vectors[i];

		assert_int_equal(sl_murmur2(v->key, strlen(v->key)), v->murmur2);
	}
}

/* Each remainder of the length modulo 4 takes its own tail path; the vectors above cover 0 ("21" is 2, "abc" is
 * 3, "foobar" 2, "a-little-bit-long-string" 0, "a-little-bit-longer-string" 2, the long one 0). These add the
 * empty key (seed ^ 0 only) and a remainder of 1. */
static void murmur2_of_empty_key_is_kafkas(void **state)
{
	/* Kafka's Utils.murmur2(new byte[0]), as other ports pin it. */
	assert_int_equal(sl_murmur2("", 0), 275646681);
}

static void murmur2_covers_every_tail_length(void **state)
{
	/* Lengths 24..27 from the kafkabr port's table: remainders 0, 1, 2, 3. */
	assert_int_equal(sl_murmur2("string-f-24-chars-length", 24), 124730809);
	assert_int_equal(sl_murmur2("string-fo-25-chars-length", 25), 1269511650);
	assert_int_equal(sl_murmur2("string-foo-26-chars-length", 26), 119165628);
	assert_int_equal(sl_murmur2("string-last-27-chars-length", 27), 1089971754);
}

static void murmur2_reads_bytes_unsigned(void **state)
{
	/* Java masks each byte with 0xff: bytes >= 0x80 must not sign-extend into the hash. A key of such bytes
	 * hashes differently from its low-7-bit twin, and identically on every call. */
	const uint8_t high[] = {0x80, 0xff, 0xfe, 0x90, 0xa1};
	const uint8_t low[] = {0x00, 0x7f, 0x7e, 0x10, 0x21};

	assert_int_equal(sl_murmur2(high, sizeof(high)), sl_murmur2(high, sizeof(high)));
	assert_int_not_equal(sl_murmur2(high, sizeof(high)), sl_murmur2(low, sizeof(low)));
}

/* The partition is computed from the vector values by hand here, not by calling murmur2 again. */
static uint32_t expected_partition(int32_t hash, uint32_t partitions)
{
	return ((uint32_t)hash & 0x7fffffffu) % partitions;
}

static void partition_masks_sign_bit_then_takes_modulo(void **state)
{
	/* "21" hashes to -973932308: masked, 1173551340; modulo 10 is 0, modulo 7 is 1173551340 % 7. */
	assert_int_equal(sl_partition_for_key("21", 2, 10), 0);
	assert_int_equal(sl_partition_for_key("21", 2, 7), 1173551340u % 7);
	/* "abc" hashes positive: 479470107 % 12 = 3. */
	assert_int_equal(sl_partition_for_key("abc", 3, 12), 3);
	for (size_t i = 0; i < sizeof(kafka_vectors) / sizeof(kafka_vectors[0]); i++) {
		const struct vector *v = &kafka_vectors[i];

		for (uint32_t n = 1; n <= 64; n++)
			assert_int_equal(sl_partition_for_key(v->key, strlen(v->key), n),
			                 expected_partition(v->murmur2, n));
	}
}

static void partition_of_one_partition_is_zero(void **state)
{
	assert_int_equal(sl_partition_for_key("anything", 8, 1), 0);
	assert_int_equal(sl_partition_for_key("", 0, 1), 0);
}

static void partition_is_always_in_range(void **state)
{
	char key[32];

	for (int i = 0; i < 10000; i++) {
		int len = snprintf(key, sizeof(key), "user-%d", i);

		for (uint32_t n = 1; n <= 33; n += 4)
			assert_true(sl_partition_for_key(key, (size_t)len, n) < n);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(murmur2_matches_kafka_utils_test),
	        cmocka_unit_test(murmur2_of_empty_key_is_kafkas),
	        cmocka_unit_test(murmur2_covers_every_tail_length),
	        cmocka_unit_test(murmur2_reads_bytes_unsigned),
	        cmocka_unit_test(partition_masks_sign_bit_then_takes_modulo),
	        cmocka_unit_test(partition_of_one_partition_is_zero),
	        cmocka_unit_test(partition_is_always_in_range),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
