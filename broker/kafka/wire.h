/* Kafka's primitive wire types, read from untrusted bytes and written into growable buffers: the one place that
 * knows how an INT16, a STRING or a COMPACT_BYTES is laid out. Every read checks the bytes left before it touches
 * them; a failed read sets the reader's error and returns zero values, so a decoder can read a whole structure
 * and check once at the end (SQLite's "sticky error" style).
 *
 * TYPES (all integers big-endian; Kafka's protocol guide, "Protocol Primitive Types"):
 *
 *   INT8/16/32/64      1/2/4/8 bytes, two's complement
 *   UNSIGNED_VARINT    7 bits per byte, low groups first, high bit = more follows (at most 5 bytes for 32 bits)
 *   STRING             INT16 length N >= 0, then N bytes of UTF-8
 *   NULLABLE_STRING    INT16 length, -1 for null
 *   BYTES              INT32 length N >= 0, then N bytes;  NULLABLE_BYTES: -1 for null
 *   ARRAY              INT32 count, -1 for null, then the elements
 *   COMPACT_*          (flexible versions, KIP-482) the length or count as UNSIGNED_VARINT N+1, 0 for null
 *   TAGGED_FIELDS      UNSIGNED_VARINT count, then per field UNSIGNED_VARINT tag, UNSIGNED_VARINT size, size bytes
 *
 * Which thread may call: any; the structs are the caller's. */
#ifndef SL_KAFKA_WIRE_H
#define SL_KAFKA_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- reading ---- */

struct sl_kread {
	const uint8_t *p;
	const uint8_t *end;
	int err; /* sticky: once set, every read returns 0/NULL */
};

static inline int sl_kread_need(struct sl_kread *r, size_t n)
{
	if (r->err || (size_t)(r->end - r->p) < n) {
		r->err = 1;
		return 0;
	}
	return 1;
}

static inline size_t sl_kread_left(const struct sl_kread *r)
{
	return r->err ? 0 : (size_t)(r->end - r->p);
}

static inline int8_t sl_kread_i8(struct sl_kread *r)
{
	if (!sl_kread_need(r, 1))
		return 0;
	return (int8_t)*r->p++;
}

static inline int16_t sl_kread_i16(struct sl_kread *r)
{
	if (!sl_kread_need(r, 2))
		return 0;
	uint16_t v = (uint16_t)(r->p[0] << 8 | r->p[1]);
	r->p += 2;
	return (int16_t)v;
}

static inline int32_t sl_kread_i32(struct sl_kread *r)
{
	if (!sl_kread_need(r, 4))
		return 0;
	uint32_t v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
	r->p += 4;
	return (int32_t)v;
}

static inline int64_t sl_kread_i64(struct sl_kread *r)
{
	uint64_t hi = (uint32_t)sl_kread_i32(r);
	uint64_t lo = (uint32_t)sl_kread_i32(r);
	return (int64_t)(hi << 32 | lo);
}

/* An UNSIGNED_VARINT of at most 32 bits. */
static inline uint32_t sl_kread_uvarint(struct sl_kread *r)
{
	uint32_t v = 0;
	for (int shift = 0; shift < 35; shift += 7) {
		if (!sl_kread_need(r, 1))
			return 0;
		uint8_t b = *r->p++;
		if (shift == 28 && (b & 0xf0) != 0)
			break; /* more than 32 bits */
		v |= (uint32_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0)
			return v;
	}
	r->err = 1;
	return 0;
}

/* Bytes of a length read before: a pointer into the input, NULL when len is -1 (null) or the input is short. */
static inline const uint8_t *sl_kread_take(struct sl_kread *r, int64_t len)
{
	if (len < 0 || !sl_kread_need(r, (size_t)len))
		return NULL;
	const uint8_t *p = r->p;
	r->p += len;
	return p;
}

/* Skip the tagged fields of a flexible structure: none of the fields this broker reads are tagged. */
static inline void sl_kread_skip_tags(struct sl_kread *r)
{
	uint32_t n = sl_kread_uvarint(r);
	for (uint32_t i = 0; i < n && !r->err; i++) {
		(void)sl_kread_uvarint(r); /* tag */
		uint32_t size = sl_kread_uvarint(r);
		(void)sl_kread_take(r, size);
	}
}

/* ---- writing ---- */

/* A growable output buffer. Writes past memory exhaustion set err and are dropped. */
struct sl_kwrite {
	uint8_t *buf;
	size_t len;
	size_t cap;
	int err;
};

int sl_kwrite_reserve(struct sl_kwrite *w, size_t more);
void sl_kwrite_free(struct sl_kwrite *w);

static inline void sl_kwrite_bytes(struct sl_kwrite *w, const void *p, size_t n)
{
	if (n == 0 || sl_kwrite_reserve(w, n) < 0)
		return;
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static inline void sl_kwrite_i8(struct sl_kwrite *w, int8_t v)
{
	uint8_t b = (uint8_t)v;
	sl_kwrite_bytes(w, &b, 1);
}

static inline void sl_kwrite_i16(struct sl_kwrite *w, int16_t v)
{
	uint8_t b[2] = {(uint8_t)((uint16_t)v >> 8), (uint8_t)v};
	sl_kwrite_bytes(w, b, 2);
}

static inline void sl_kwrite_i32(struct sl_kwrite *w, int32_t v)
{
	uint32_t u = (uint32_t)v;
	uint8_t b[4] = {(uint8_t)(u >> 24), (uint8_t)(u >> 16), (uint8_t)(u >> 8), (uint8_t)u};
	sl_kwrite_bytes(w, b, 4);
}

static inline void sl_kwrite_i64(struct sl_kwrite *w, int64_t v)
{
	sl_kwrite_i32(w, (int32_t)((uint64_t)v >> 32));
	sl_kwrite_i32(w, (int32_t)(uint64_t)v);
}

static inline void sl_kwrite_uvarint(struct sl_kwrite *w, uint32_t v)
{
	uint8_t b[5];
	size_t n = 0;
	while (v >= 0x80) {
		b[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	b[n++] = (uint8_t)v;
	sl_kwrite_bytes(w, b, n);
}

/* STRING, or NULLABLE_STRING when s is NULL. */
static inline void sl_kwrite_str(struct sl_kwrite *w, const char *s)
{
	if (s == NULL) {
		sl_kwrite_i16(w, -1);
		return;
	}
	size_t n = strlen(s);
	if (n > INT16_MAX)
		n = INT16_MAX;
	sl_kwrite_i16(w, (int16_t)n);
	sl_kwrite_bytes(w, s, n);
}

/* COMPACT_STRING, or COMPACT_NULLABLE_STRING when s is NULL. */
static inline void sl_kwrite_cstr(struct sl_kwrite *w, const char *s)
{
	if (s == NULL) {
		sl_kwrite_uvarint(w, 0);
		return;
	}
	size_t n = strlen(s);
	if (n > INT16_MAX)
		n = INT16_MAX;
	sl_kwrite_uvarint(w, (uint32_t)n + 1);
	sl_kwrite_bytes(w, s, n);
}

/* BYTES, or NULLABLE_BYTES (-1) when p is NULL. */
static inline void sl_kwrite_blob(struct sl_kwrite *w, const void *p, int32_t n)
{
	if (p == NULL && n <= 0) {
		sl_kwrite_i32(w, n < 0 ? -1 : 0);
		return;
	}
	sl_kwrite_i32(w, n);
	sl_kwrite_bytes(w, p, (size_t)n);
}

/* Back-patch an INT32 written earlier at offset at. */
static inline void sl_kwrite_put_i32(struct sl_kwrite *w, size_t at, int32_t v)
{
	if (w->err || at + 4 > w->len)
		return;
	uint32_t u = (uint32_t)v;
	w->buf[at] = (uint8_t)(u >> 24);
	w->buf[at + 1] = (uint8_t)(u >> 16);
	w->buf[at + 2] = (uint8_t)(u >> 8);
	w->buf[at + 3] = (uint8_t)u;
}

#endif
