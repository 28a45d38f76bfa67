/* The Kafka transport's producer leaves partitioning to librdkafka's murmur2_random (consumer/client/
 * kafka_producer.c); this checks that it puts every key where synclog's own partitioner does
 * (sl_partition_for_key), so a key lands in the same partition on either transport and a copied topic keeps its
 * keys where they were. Keys of every length remainder, binary bytes, and many partition counts. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>

#include "consumer/client/synclog.h"

static void text_keys_land_where_synclog_puts_them(void **state)
{
	char key[64];

	(void)state;
	for (int i = 0; i < 20000; i++) {
		int len = snprintf(key, sizeof(key), "customer-%d", i);

		for (int32_t n = 1; n <= 64; n += 7)
			assert_int_equal(rd_kafka_msg_partitioner_murmur2_random(NULL, key, (size_t)len, n, NULL, NULL),
			                 (int32_t)sl_partition_for_key(key, (size_t)len, (uint32_t)n));
	}
}

static void binary_keys_of_every_length_land_where_synclog_puts_them(void **state)
{
	uint8_t key[40];
	uint32_t x = 2463534242u;

	(void)state;
	for (int round = 0; round < 2000; round++) {
		size_t len = (size_t)(round % (int)sizeof(key)) + 1;

		for (size_t i = 0; i < len; i++) { /* xorshift: bytes above 0x7f too, which murmur2 reads unsigned */
			x ^= x << 13, x ^= x >> 17, x ^= x << 5;
			key[i] = (uint8_t)x;
		}
		for (int32_t n = 1; n <= 100; n += 11)
			assert_int_equal(rd_kafka_msg_partitioner_murmur2_random(NULL, key, len, n, NULL, NULL),
			                 (int32_t)sl_partition_for_key(key, len, (uint32_t)n));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(text_keys_land_where_synclog_puts_them),
	        cmocka_unit_test(binary_keys_of_every_length_land_where_synclog_puts_them),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
