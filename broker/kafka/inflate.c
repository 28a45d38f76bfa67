/* Kafka clients' gzip, snappy and lz4 batches, made plain before they are stored. kafkajs has no other codec built
 * in than gzip, and Java, librdkafka, kafka-python and Kafka Connect users turn one on with one setting;
 * synclog's segments, fetchers and applier read only none and zstd (proto/batch.c invariant 4). So the Kafka
 * listener decompresses such a batch into an uncompressed one with the same header and records, and stores that:
 * every reader of either front end then reads it, and a Kafka consumer gets it back as a plain batch, which every
 * client reads. Producers that want their records compressed on disk use zstd, which is stored as sent.
 *
 * What changes between the batch received and the batch stored (offsets as proto/batch.c's FORMAT):
 *
 *   offset  size  field          received                            stored
 *   8       4     batchLength    49 + compressed bytes               49 + content bytes
 *   17      4     crc            CRC32C of bytes 21..end             recomputed over the new bytes 21..end
 *   21      2     attributes     codec 1 gzip, 2 snappy, 3 lz4       codec 0 (none), other bits kept
 *   61      ...   records        one gzip member (RFC 1952), snappy  their content: recordsCount records
 *                                (below), or one LZ4 frame (lz4
 *                                frame format 1.6)
 *
 * Snappy comes in xerial's framing (the Java client's and kafka-python's) or as one raw block (librdkafka's):
 *
 *   offset  size  field
 *   0       8     magic 0x82 'S' 'N' 'A' 'P' 'P' 'Y' 0x00 (absent: the whole section is one raw snappy block)
 *   8       4     version (1), big-endian
 *   12      4     oldest compatible version (1), big-endian
 *   16      ...   blocks, each: 4 bytes big-endian length L, then L bytes of one raw snappy block
 *
 * Rules:
 *   1. The received CRC is checked before anything is decompressed: a batch damaged on the way is refused as
 *      corrupt, never given a fresh, valid CRC.
 *   2. The content's size is known, and bounded by out_max, before any memory is taken for it: gzip's is the
 *      member's ISIZE (its last 4 bytes, the size mod 2^32), snappy's the sum of its blocks' length preambles,
 *      lz4's is counted by a first pass that decodes into a
 *      small scratch buffer and stops past out_max (a frame's own content size field is optional, and the Java
 *      client leaves it out). Content longer or shorter than that size, or bytes after the member or frame, is a
 *      corrupt batch. So a small hostile batch cannot make the broker take more than out_max.
 *   3. The records are not parsed here: the produce handler validates the plain batch as it validates every
 *      batch (proto/batch.c invariants 5 to 9).
 *
 * Which thread may call: any; it touches only its arguments. */
#include <errno.h>
#include <string.h>
#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>

#include "proto/base/be.h"
#include "broker/kafka/kafka_impl.h"
#include "proto/batch.h"
#include "proto/crc32c.h"

#define OFF_BATCH_LENGTH    8
#define OFF_CRC             17
#define OFF_ATTRIBUTES      21
/* A gzip member is at least a 10-byte header and an 8-byte trailer (CRC-32, ISIZE). */
#define GZIP_BYTES_MIN      18
/* xerial's snappy framing: 8 bytes of magic, then version and compatible version (4 bytes each). */
#define XERIAL_MAGIC_BYTES  8
#define XERIAL_HEADER_BYTES 16
/* LZ4's first pass decodes into this much stack at a time: only the count is kept. */
#define LZ4_SCRATCH_BYTES   (16u * 1024)
_Static_assert(OFF_ATTRIBUTES == SL_BATCH_CRC_START, "the CRC covers the attributes onward");
_Static_assert(SL_BATCH_HEADER_BYTES == 61, "records start at 61");

/* Decode one LZ4 frame of z_len bytes into dst (cap bytes), or, with dst NULL, only count its content up to
 * cap + 1 bytes. *n_out: the content's bytes. Returns 0, -EINVAL (not exactly one whole frame), -EMSGSIZE (more
 * than cap), -ENOMEM. */
static int lz4_decode(const uint8_t *z, size_t z_len, uint8_t *dst, size_t cap, size_t *n_out)
{
	LZ4F_dctx *ctx;
	if (LZ4F_isError(LZ4F_createDecompressionContext(&ctx, LZ4F_VERSION)))
		return -ENOMEM;
	uint8_t scratch[LZ4_SCRATCH_BYTES];
	size_t at = 0, n = 0, hint = 1;
	int rc = 0;
	/* Each pass consumes input or makes output (else the frame is stuck), so at most z_len + cap passes. */
	while (hint != 0) {
		size_t src_len = z_len - at;
		size_t dst_len = dst ? cap - n : sizeof(scratch);
		/* With no input left it may still have decoded output to give (a block larger than the scratch). */
		hint = LZ4F_decompress(ctx, dst ? dst + n : scratch, &dst_len, z + at, &src_len, NULL);
		if (LZ4F_isError(hint) || (src_len == 0 && dst_len == 0)) {
			rc = -EINVAL; /* corrupt, or stuck: cut short, or content past dst */
			break;
		}
		at += src_len;
		n += dst_len;
		if (n > cap) {
			rc = -EMSGSIZE;
			break;
		}
	}
	LZ4F_freeDecompressionContext(ctx);
	if (rc == 0 && at != z_len)
		rc = -EINVAL; /* bytes after the frame */
	*n_out = n;
	return rc;
}

/* One raw snappy block into dst (cap bytes), or with dst NULL only its length preamble. */
static int snappy_block(const uint8_t *b, size_t len, uint8_t *dst, size_t cap, size_t *got)
{
	size_t size;
	if (snappy_uncompressed_length((const char *)b, len, &size) != SNAPPY_OK)
		return -EINVAL;
	if (size > cap)
		return -EMSGSIZE;
	size_t out = size;
	if (dst != NULL && (snappy_uncompress((const char *)b, len, (char *)dst, &out) != SNAPPY_OK || out != size))
		return -EINVAL;
	*got = size;
	return 0;
}

/* Snappy content, xerial-framed or one raw block (the FORMAT above), into dst (cap bytes), or with dst NULL only
 * counted. Returns 0, -EINVAL or -EMSGSIZE (more than cap). */
static int snappy_decode(const uint8_t *z, size_t z_len, uint8_t *dst, size_t cap, size_t *n_out)
{
	static const uint8_t magic[XERIAL_MAGIC_BYTES] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
	*n_out = 0;
	if (z_len < XERIAL_HEADER_BYTES || memcmp(z, magic, sizeof(magic)) != 0)
		return snappy_block(z, z_len, dst, cap, n_out);
	size_t at = XERIAL_HEADER_BYTES, n = 0;
	while (at < z_len) { /* each pass takes at least 4 bytes */
		if (z_len - at < 4 || sl_load_be32(z + at) > z_len - at - 4)
			return -EINVAL;
		size_t block = sl_load_be32(z + at), got;
		at += 4;
		int rc = snappy_block(z + at, block, dst ? dst + n : NULL, cap - n, &got);
		if (rc < 0)
			return rc;
		n += got;
		at += block;
	}
	*n_out = n;
	return 0;
}

/* The size of the content of the records section z (rule 2). */
static int content_size(int codec, const uint8_t *z, size_t z_len, size_t max, size_t *size_out, const char **why)
{
	if (codec == SL_KAFKA_CODEC_GZIP) {
		if (z_len < GZIP_BYTES_MIN) {
			*why = "gzip data is corrupt";
			return -EINVAL;
		}
		const uint8_t *t = z + z_len - 4;
		*size_out = (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 | (size_t)t[3] << 24;
		return 0;
	}
	int rc = codec == SL_KAFKA_CODEC_SNAPPY ? snappy_decode(z, z_len, NULL, max, size_out)
	                                        : lz4_decode(z, z_len, NULL, max, size_out);
	if (rc == -EINVAL)
		*why = codec == SL_KAFKA_CODEC_SNAPPY ? "snappy data is corrupt" : "lz4 data is corrupt";
	return rc;
}

/* Decode the records section z into exactly content bytes at dst. */
static int decode_into(int codec, const uint8_t *z, size_t z_len, uint8_t *dst, size_t content, const char **why)
{
	if (codec == SL_KAFKA_CODEC_LZ4 || codec == SL_KAFKA_CODEC_SNAPPY) {
		size_t n;
		int rc = codec == SL_KAFKA_CODEC_LZ4 ? lz4_decode(z, z_len, dst, content, &n)
		                                     : snappy_decode(z, z_len, dst, content, &n);
		if (rc < 0 || n != content) {
			*why = codec == SL_KAFKA_CODEC_LZ4 ? "lz4 data is corrupt" : "snappy data is corrupt";
			return -EINVAL;
		}
		return 0;
	}
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) { /* 16: gzip wrapping only, as Kafka's codec 1 is */
		*why = "out of memory";
		return -ENOMEM;
	}
	zs.next_in = (Bytef *)z;
	zs.avail_in = (uInt)z_len;
	zs.next_out = dst;
	zs.avail_out = (uInt)content;
	int rc = inflate(&zs, Z_FINISH);
	int whole = rc == Z_STREAM_END && zs.avail_in == 0 && zs.total_out == content;
	inflateEnd(&zs);
	if (!whole) {
		*why = zs.avail_out == 0 || rc == Z_STREAM_END ? "gzip content does not match its size (ISIZE)"
		                                               : "gzip data is corrupt";
		return -EINVAL;
	}
	return 0;
}

int sl_kafka_batch_inflate(struct sl_kafka_arena *arena, const uint8_t *in, size_t len, size_t out_max, uint8_t **out,
                           size_t *out_len, const char **why)
{
	if (len < SL_BATCH_HEADER_BYTES || sl_load_be32(in + OFF_BATCH_LENGTH) != len - 12) {
		*why = "batch length does not match its bytes";
		return -EINVAL;
	}
	int codec = in[OFF_ATTRIBUTES + 1] & SL_BATCH_ATTR_CODEC_MASK;
	if (codec != SL_KAFKA_CODEC_GZIP && codec != SL_KAFKA_CODEC_SNAPPY && codec != SL_KAFKA_CODEC_LZ4) {
		*why = "not a gzip, snappy or lz4 batch";
		return -EINVAL;
	}
	if (sl_crc32c(0, in + SL_BATCH_CRC_START, len - SL_BATCH_CRC_START) != sl_load_be32(in + OFF_CRC)) {
		*why = "CRC mismatch"; /* rule 1 */
		return -EINVAL;
	}
	if (out_max < SL_BATCH_HEADER_BYTES) {
		*why = "decompressed batch larger than a request may be";
		return -EMSGSIZE;
	}
	const uint8_t *z = in + SL_BATCH_HEADER_BYTES;
	size_t z_len = len - SL_BATCH_HEADER_BYTES;
	size_t content;
	int rc = content_size(codec, z, z_len, out_max - SL_BATCH_HEADER_BYTES, &content, why); /* rule 2 */
	if (rc == 0 && content > out_max - SL_BATCH_HEADER_BYTES)
		rc = -EMSGSIZE;
	if (rc == -EMSGSIZE)
		*why = "decompressed batch larger than a request may be";
	if (rc < 0)
		return rc;
	size_t total = SL_BATCH_HEADER_BYTES + content;
	arena->bytes_max += (total + 7) & ~(size_t)7; /* the request's bound grows by what out_max allowed */
	uint8_t *b = sl_kafka_arena_alloc(arena, total);
	if (b == NULL) {
		*why = "out of memory";
		return -ENOMEM;
	}
	memcpy(b, in, SL_BATCH_HEADER_BYTES);
	if ((rc = decode_into(codec, z, z_len, b + SL_BATCH_HEADER_BYTES, content, why)) < 0)
		return rc;
	sl_store_be32(b + OFF_BATCH_LENGTH, (uint32_t)(total - 12));
	b[OFF_ATTRIBUTES + 1] &= (uint8_t)~SL_BATCH_ATTR_CODEC_MASK;
	sl_store_be32(b + OFF_CRC, sl_crc32c(0, b + SL_BATCH_CRC_START, total - SL_BATCH_CRC_START));
	*out = b;
	*out_len = total;
	return 0;
}
