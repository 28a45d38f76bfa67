/* Zigzag varints as Kafka's record batch v2 records use them: a varint is a zigzag-encoded int32 in at most 5
 * bytes, a varlong a zigzag-encoded int64 in at most 10, seven bits per byte, least significant group first, the
 * high bit set on every byte but the last. The _long functions are Kafka's varlong. Inline because every field
 * of every record goes through here.
 *
 * Encoders and decoders move a cursor (*pos) towards end and never touch a byte at or past end. Decoders accept
 * non-minimal encodings (Kafka does) but reject encodings longer than the maximum and bits that do not fit. */
#ifndef SL_PROTO_VARINT_H
#define SL_PROTO_VARINT_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#define SL_VARINT_BYTES_MAX      5  /* ceil(32 / 7) */
#define SL_VARINT_LONG_BYTES_MAX 10 /* ceil(64 / 7) */

/* Zigzag maps small magnitudes of either sign to small unsigned numbers: 0, -1, 1, -2 ... -> 0, 1, 2, 3 ...
 * Written with unsigned arithmetic only, so no shift of a negative number is involved. */
static inline uint32_t sl_varint_zigzag32(int32_t v)
{
	return ((uint32_t)v << 1) ^ (0u - ((uint32_t)v >> 31));
}

static inline int32_t sl_varint_unzigzag32(uint32_t u)
{
	return (int32_t)((u >> 1) ^ (0u - (u & 1)));
}

static inline uint64_t sl_varint_zigzag64(int64_t v)
{
	return ((uint64_t)v << 1) ^ (0ull - ((uint64_t)v >> 63));
}

static inline int64_t sl_varint_unzigzag64(uint64_t u)
{
	return (int64_t)((u >> 1) ^ (0ull - (u & 1)));
}

static inline size_t sl_varint_unsigned_size(uint64_t u)
{
	size_t n = 1;

	while (u >= 0x80) {
		u >>= 7;
		n++;
	}
	return n;
}

/* Bytes the encoding of v takes. */
static inline size_t sl_varint_size(int32_t v)
{
	return sl_varint_unsigned_size(sl_varint_zigzag32(v));
}

static inline size_t sl_varint_size_long(int64_t v)
{
	return sl_varint_unsigned_size(sl_varint_zigzag64(v));
}

static inline int sl_varint_encode_unsigned(uint8_t **pos, const uint8_t *end, uint64_t u)
{
	uint8_t *p = *pos;

	if ((size_t)(end - p) < sl_varint_unsigned_size(u))
		return -ENOSPC;
	while (u >= 0x80) {
		*p++ = (uint8_t)(u | 0x80);
		u >>= 7;
	}
	*p++ = (uint8_t)u;
	*pos = p;
	return 0;
}

/* Write v at *pos and advance it. Returns 0, or -ENOSPC (nothing written) when it does not fit before end. */
static inline int sl_varint_encode(uint8_t **pos, const uint8_t *end, int32_t v)
{
	return sl_varint_encode_unsigned(pos, end, sl_varint_zigzag32(v));
}

static inline int sl_varint_encode_long(uint8_t **pos, const uint8_t *end, int64_t v)
{
	return sl_varint_encode_unsigned(pos, end, sl_varint_zigzag64(v));
}

/* Read an unsigned group sequence of at most bits_max bits. */
static inline int sl_varint_decode_unsigned(const uint8_t **pos, const uint8_t *end, unsigned bits_max, uint64_t *out)
{
	const uint8_t *p = *pos;
	uint64_t u = 0;

	for (unsigned shift = 0; shift < bits_max; shift += 7) {
		if (p == end)
			return -EAGAIN;
		uint8_t b = *p++;
		/* The last byte may only carry the bits that are left; that also clears its continuation bit. */
		if (bits_max - shift < 7 && (b >> (bits_max - shift)) != 0)
			return -EOVERFLOW;
		u |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*pos = p;
			*out = u;
			return 0;
		}
	}
	return -EOVERFLOW; /* not reached: the last byte's check above stops the loop */
}

/* Read a varint at *pos and advance it. Returns 0, -EAGAIN when the encoding runs past end, or -EOVERFLOW when
 * it is longer than SL_VARINT_BYTES_MAX or does not fit 32 bits. On failure *pos and *out are unchanged. */
static inline int sl_varint_decode(const uint8_t **pos, const uint8_t *end, int32_t *out)
{
	uint64_t u;
	int rc;

	if (*pos < end && **pos < 0x80) { /* one byte: most lengths, deltas and counts */
		*out = sl_varint_unzigzag32(*(*pos)++);
		return 0;
	}
	rc = sl_varint_decode_unsigned(pos, end, 32, &u);
	if (rc == 0)
		*out = sl_varint_unzigzag32((uint32_t)u);
	return rc;
}

/* As sl_varint_decode, for a varlong of at most SL_VARINT_LONG_BYTES_MAX bytes and 64 bits. */
static inline int sl_varint_decode_long(const uint8_t **pos, const uint8_t *end, int64_t *out)
{
	uint64_t u;
	int rc;

	if (*pos < end && **pos < 0x80) {
		*out = sl_varint_unzigzag64(*(*pos)++);
		return 0;
	}
	rc = sl_varint_decode_unsigned(pos, end, 64, &u);
	if (rc == 0)
		*out = sl_varint_unzigzag64(u);
	return rc;
}

#endif
