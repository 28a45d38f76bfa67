/* CRC32C (Castagnoli) for record batch v2: ISA-L's crc32_iscsi when the build found libisal (it folds with
 * carry-less multiplication: about 3x our three-stream crc32 loop on this machine, and CRC was 8% of the broker's
 * profile on the 1 KiB path), else the CPU's crc32 instruction where it exists, else a slicing-by-8 table. Which
 * one runs is decided once, on first use, under pthread_once.
 *
 * The register is kept in its internal (inverted) form between the loops; the public functions invert on entry
 * and exit, so sl_crc32c(sl_crc32c(0, a, n), b, m) is the CRC of a||b. */
#include "proto/crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif
#ifdef SL_HAVE_ISAL
#include <isa-l/crc.h>
#include <limits.h>
#endif

/* The Castagnoli polynomial, bit-reflected. */
#define POLY 0x82F63B78u

/* The hardware path runs three independent crc32 streams over three adjacent blocks, because the instruction has
 * a latency of three cycles and a throughput of one: one stream alone leaves two thirds of the unit idle. The
 * streams are joined by shifting a CRC over a block of zeros with a table (crc_shift). LONG covers big batches,
 * SHORT the few kilobytes left over; both must be powers of two (crc_zeros_op squares its way up to them). */
#define LONG_BLOCK_BYTES  8192
#define SHORT_BLOCK_BYTES 256

static uint32_t slice_table[8][256];
static uint32_t long_zeros[4][256];
static uint32_t short_zeros[4][256];
static uint32_t (*crc_impl)(uint32_t crc, const uint8_t *p, size_t len);
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static uint32_t crc_slice8(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len && ((uintptr_t)p & 7)) {
		crc = slice_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
		len--;
	}
	while (len >= 8) {
		/* Built from bytes, not a 64-bit load, so the result does not depend on the host's byte order. */
		crc ^= (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
		crc = slice_table[7][crc & 0xff] ^ slice_table[6][(crc >> 8) & 0xff] ^
		      slice_table[5][(crc >> 16) & 0xff] ^ slice_table[4][crc >> 24] ^ slice_table[3][p[4]] ^
		      slice_table[2][p[5]] ^ slice_table[1][p[6]] ^ slice_table[0][p[7]];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = slice_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

#ifdef SL_HAVE_ISAL
/* ISA-L keeps the register as we do (no inversion inside), and takes an int length. */
static uint32_t crc_isal(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len > 0) {
		size_t n = len > (size_t)INT_MAX ? (size_t)INT_MAX & ~(size_t)7 : len;
		crc = crc32_iscsi((unsigned char *)p, (int)n, crc);
		p += n;
		len -= n;
	}
	return crc;
}
#endif

/* Multiply the 32x32 GF(2) matrix mat (one column per word) by the vector vec. */
static uint32_t gf2_matrix_times(const uint32_t *mat, uint32_t vec)
{
	uint32_t sum = 0;

	for (int i = 0; vec; i++, vec >>= 1)
		if (vec & 1)
			sum ^= mat[i];
	return sum;
}

static void gf2_matrix_square(uint32_t *square, const uint32_t *mat)
{
	for (int i = 0; i < 32; i++)
		square[i] = gf2_matrix_times(mat, mat[i]);
}

/* Build in op the operator that advances a CRC register over len zero bytes (len a power of two). Starts from
 * the operator for one zero bit and squares it: 2 bits, 4 bits, 1 byte, 2 bytes, ... */
static void crc_zeros_op(uint32_t op[32], size_t len)
{
	uint32_t odd[32];

	odd[0] = POLY;
	for (int i = 1; i < 32; i++)
		odd[i] = 1u << (i - 1);
	gf2_matrix_square(op, odd); /* 2 zero bits */
	gf2_matrix_square(odd, op); /* 4 zero bits */
	for (;;) {
		gf2_matrix_square(op, odd); /* 1, 4, 16, ... zero bytes */
		len >>= 1;
		if (len == 0)
			return;
		gf2_matrix_square(odd, op); /* 2, 8, 32, ... zero bytes */
		len >>= 1;
		if (len == 0)
			break;
	}
	memcpy(op, odd, sizeof(odd));
}

/* Spread the operator over four byte-indexed tables so that applying it costs four lookups. */
static void crc_zeros_table(uint32_t zeros[4][256], size_t len)
{
	uint32_t op[32];

	crc_zeros_op(op, len);
	for (uint32_t n = 0; n < 256; n++)
		for (int k = 0; k < 4; k++)
			zeros[k][n] = gf2_matrix_times(op, n << (8 * k));
}

static uint32_t crc_shift(const uint32_t zeros[4][256], uint32_t crc)
{
	return zeros[0][crc & 0xff] ^ zeros[1][(crc >> 8) & 0xff] ^ zeros[2][(crc >> 16) & 0xff] ^ zeros[3][crc >> 24];
}

#if defined(__x86_64__)
static inline uint64_t load_u64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* Three streams over blocks of block_bytes each, joined with the matching zeros table; returns the bytes left. */
__attribute__((target("sse4.2"))) static uint64_t crc_hw_3way(uint64_t crc0, const uint8_t **pp, size_t *lenp,
                                                              size_t block_bytes, const uint32_t zeros[4][256])
{
	const uint8_t *p = *pp;
	size_t len = *lenp;

	while (len >= 3 * block_bytes) {
		uint64_t crc1 = 0, crc2 = 0;
		const uint8_t *end = p + block_bytes;

		do {
			crc0 = _mm_crc32_u64(crc0, load_u64(p));
			crc1 = _mm_crc32_u64(crc1, load_u64(p + block_bytes));
			crc2 = _mm_crc32_u64(crc2, load_u64(p + 2 * block_bytes));
			p += 8;
		} while (p < end);
		crc0 = crc_shift(zeros, (uint32_t)crc0) ^ crc1;
		crc0 = crc_shift(zeros, (uint32_t)crc0) ^ crc2;
		p += 2 * block_bytes;
		len -= 3 * block_bytes;
	}
	*pp = p;
	*lenp = len;
	return crc0;
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t c = crc;

	while (len && ((uintptr_t)p & 7)) {
		c = _mm_crc32_u8((uint32_t)c, *p++);
		len--;
	}
	c = crc_hw_3way(c, &p, &len, LONG_BLOCK_BYTES, (const uint32_t(*)[256])long_zeros);
	c = crc_hw_3way(c, &p, &len, SHORT_BLOCK_BYTES, (const uint32_t(*)[256])short_zeros);
	while (len >= 8) {
		c = _mm_crc32_u64(c, load_u64(p));
		p += 8;
		len -= 8;
	}
	while (len--)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	return (uint32_t)c;
}
#endif

static void crc_init(void)
{
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = n;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
		slice_table[0][n] = c;
	}
	for (uint32_t n = 0; n < 256; n++)
		for (int k = 1; k < 8; k++)
			slice_table[k][n] = (slice_table[k - 1][n] >> 8) ^ slice_table[0][slice_table[k - 1][n] & 0xff];
	crc_impl = crc_slice8;
#if defined(__x86_64__)
	if (__builtin_cpu_supports("sse4.2")) {
		crc_zeros_table(long_zeros, LONG_BLOCK_BYTES);
		crc_zeros_table(short_zeros, SHORT_BLOCK_BYTES);
		crc_impl = crc_hw;
	}
#endif
#ifdef SL_HAVE_ISAL
	/* ISA-L picks its own best code for the CPU at run time, down to a table of its own. */
	crc_impl = crc_isal;
#endif
}

uint32_t sl_crc32c(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&init_once, crc_init);
	return ~crc_impl(~crc, data, len);
}

uint32_t sl_crc32c_table(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&init_once, crc_init);
	return ~crc_slice8(~crc, data, len);
}
