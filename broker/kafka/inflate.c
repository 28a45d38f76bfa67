/* Kafka clients' gzip batches, made plain before they are stored. kafkajs has no other codec built in, and Java,
 * kafka-python and Kafka Connect users turn gzip on with one setting; synclog's segments, fetchers and applier
 * read only none and zstd (proto/batch.c invariant 4). So the Kafka listener decompresses a gzip batch into an
 * uncompressed one with the same header and records, and stores that: every reader of either front end then reads
 * it, and a Kafka consumer gets it back as a plain batch, which every client reads. Producers that want their
 * records compressed on disk use zstd, which is stored as sent.
 *
 * What changes between the batch received and the batch stored (offsets as proto/batch.c's FORMAT):
 *
 *   offset  size  field          received                         stored
 *   8       4     batchLength    49 + compressed bytes            49 + ISIZE
 *   17      4     crc            CRC32C of bytes 21..end          recomputed over the new bytes 21..end
 *   21      2     attributes     codec 1 (gzip) in bits 0-2       codec 0 (none), other bits kept
 *   61      ...   records        one gzip member (RFC 1952)       its content: recordsCount records
 *
 * Rules:
 *   1. The received CRC is checked before anything is decompressed: a batch damaged on the way is refused as
 *      corrupt, never given a fresh, valid CRC.
 *   2. The output size is the gzip member's ISIZE (its last 4 bytes, the content's size mod 2^32), bounded by
 *      out_max before any memory is taken; content longer or shorter than ISIZE, or bytes after the member, is a
 *      corrupt batch. So a small hostile batch cannot make the broker inflate more than out_max.
 *   3. The records are not parsed here: the produce handler validates the plain batch as it validates every
 *      batch (proto/batch.c invariants 5 to 9).
 *
 * Which thread may call: any; it touches only its arguments. */
#include <errno.h>
#include <string.h>
#include <zlib.h>

#include "broker/kafka/kafka_impl.h"
#include "proto/batch.h"
#include "proto/crc32c.h"

#define OFF_BATCH_LENGTH 8
#define OFF_CRC          17
#define OFF_ATTRIBUTES   21
/* A gzip member is at least a 10-byte header and an 8-byte trailer (CRC-32, ISIZE). */
#define GZIP_BYTES_MIN   18
_Static_assert(OFF_ATTRIBUTES == SL_BATCH_CRC_START, "the CRC covers the attributes onward");
_Static_assert(SL_BATCH_HEADER_BYTES == 61, "records start at 61");

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

int sl_kafka_batch_inflate(struct sl_kafka_arena *arena, const uint8_t *in, size_t len, size_t out_max,
                           uint8_t **out, size_t *out_len, const char **why)
{
	if (len < SL_BATCH_HEADER_BYTES + GZIP_BYTES_MIN || get_be32(in + OFF_BATCH_LENGTH) != len - 12) {
		*why = "batch length does not match its bytes";
		return -EINVAL;
	}
	if ((in[OFF_ATTRIBUTES + 1] & SL_BATCH_ATTR_CODEC_MASK) != SL_KAFKA_CODEC_GZIP) {
		*why = "not a gzip batch";
		return -EINVAL;
	}
	if (sl_crc32c(0, in + SL_BATCH_CRC_START, len - SL_BATCH_CRC_START) != get_be32(in + OFF_CRC)) {
		*why = "CRC mismatch"; /* rule 1 */
		return -EINVAL;
	}
	const uint8_t *z = in + SL_BATCH_HEADER_BYTES;
	size_t z_len = len - SL_BATCH_HEADER_BYTES;
	const uint8_t *t = z + z_len - 4;
	size_t content = (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 | (size_t)t[3] << 24; /* rule 2 */
	if (out_max < SL_BATCH_HEADER_BYTES || content > out_max - SL_BATCH_HEADER_BYTES) {
		*why = "decompressed batch larger than a request may be";
		return -EMSGSIZE;
	}
	size_t total = SL_BATCH_HEADER_BYTES + content;
	arena->bytes_max += (total + 7) & ~(size_t)7; /* the request's bound grows by what out_max allowed */
	uint8_t *b = sl_kafka_arena_alloc(arena, total);
	if (b == NULL) {
		*why = "out of memory";
		return -ENOMEM;
	}
	memcpy(b, in, SL_BATCH_HEADER_BYTES);
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) { /* 16: gzip wrapping only, as Kafka's codec 1 is */
		*why = "out of memory";
		return -ENOMEM;
	}
	zs.next_in = (Bytef *)z;
	zs.avail_in = (uInt)z_len;
	zs.next_out = b + SL_BATCH_HEADER_BYTES;
	zs.avail_out = (uInt)content;
	int rc = inflate(&zs, Z_FINISH);
	int whole = rc == Z_STREAM_END && zs.avail_in == 0 && zs.total_out == content;
	inflateEnd(&zs);
	if (!whole) {
		*why = zs.avail_out == 0 || rc == Z_STREAM_END ? "gzip content does not match its size (ISIZE)"
		                                               : "gzip data is corrupt";
		return -EINVAL;
	}
	put_be32(b + OFF_BATCH_LENGTH, (uint32_t)(total - 12));
	b[OFF_ATTRIBUTES + 1] &= (uint8_t)~SL_BATCH_ATTR_CODEC_MASK;
	put_be32(b + OFF_CRC, sl_crc32c(0, b + SL_BATCH_CRC_START, total - SL_BATCH_CRC_START));
	*out = b;
	*out_len = total;
	return 0;
}
