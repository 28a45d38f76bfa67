/* Big-endian integers in byte buffers, as Kafka's record batch, our frames and Kafka's compression framings store
 * them: load from and store to p, which need not be aligned. One of each (issue 10): the batch codec, the frame
 * reader, the Kafka listener's decompression and its fuzz target used to carry copies. */
#ifndef SL_PROTO_BASE_BE_H
#define SL_PROTO_BASE_BE_H

#include <stdint.h>

static inline uint16_t sl_load_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t sl_load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t sl_load_be64(const uint8_t *p)
{
	return (uint64_t)sl_load_be32(p) << 32 | sl_load_be32(p + 4);
}

static inline void sl_store_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void sl_store_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void sl_store_be64(uint8_t *p, uint64_t v)
{
	sl_store_be32(p, (uint32_t)(v >> 32));
	sl_store_be32(p + 4, (uint32_t)v);
}

#endif
