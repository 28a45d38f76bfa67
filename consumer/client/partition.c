/* Kafka's default partitioner for keyed records: murmur2 of the key bytes, made non-negative by masking the sign
 * bit, modulo the partition count. Written to match org.apache.kafka.common.utils.Utils.murmur2 bit for bit, so
 * a key lands in the same partition whichever client wrote it. */
#include "consumer/client/client_impl.h"

/* Kafka's constants: Austin Appleby's MurmurHash2 with the seed Kafka chose. */
#define MURMUR2_SEED 0x9747b28cu
#define MURMUR2_M    0x5bd1e995u
#define MURMUR2_R    24

int32_t sl_murmur2(const void *key, size_t len)
{
	const uint8_t *data = key;
	/* Java's int arithmetic wraps; unsigned 32-bit arithmetic wraps the same way. Java truncates the length to
	 * an int; keys here are far below 2 GiB (a batch is at most 64 MiB). */
	uint32_t h = MURMUR2_SEED ^ (uint32_t)len;
	size_t i, blocks = len / 4;

	for (i = 0; i < blocks; i++) {
		const uint8_t *p = data + i * 4;
		/* Little-endian, as Java assembles it byte by byte. */
		uint32_t k = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;

		k *= MURMUR2_M;
		k ^= k >> MURMUR2_R;
		k *= MURMUR2_M;
		h *= MURMUR2_M;
		h ^= k;
	}
	switch (len % 4) {
	case 3:
		h ^= (uint32_t)data[(len & ~(size_t)3) + 2] << 16;
		/* fall through */
	case 2:
		h ^= (uint32_t)data[(len & ~(size_t)3) + 1] << 8;
		/* fall through */
	case 1:
		h ^= (uint32_t)data[len & ~(size_t)3];
		h *= MURMUR2_M;
	}
	h ^= h >> 13;
	h *= MURMUR2_M;
	h ^= h >> 15;
	return (int32_t)h;
}

uint32_t sl_partition_for_key(const void *key, size_t len, uint32_t partition_count)
{
	SL_ASSERT(partition_count >= 1);
	/* Kafka's Utils.toPositive: mask the sign bit rather than take an absolute value, which would leave
	 * INT32_MIN negative. */
	return ((uint32_t)sl_murmur2(key, len) & 0x7fffffffu) % partition_count;
}
