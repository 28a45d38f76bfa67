/* libFuzzer target for the Kafka listener's decompression of gzip, snappy and lz4 batches (broker/kafka/inflate.c),
 * which reads compressed bytes any Kafka client sends. The input's first byte picks the codec, the rest is the
 * records section; the target seals it into a batch with a valid CRC (else every input would stop at the CRC
 * check), so the decompressors see it. A batch that inflates must come out plain, sealed and no larger than the
 * bound; any read past a buffer shows up under AddressSanitizer. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/base/be.h"
#include "broker/kafka/kafka_impl.h"
#include "proto/batch.h"
#include "proto/crc32c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What one input may inflate to: enough for real batches, small enough to keep runs fast. */
#define OUT_BYTES_MAX (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int codecs[] = {SL_KAFKA_CODEC_GZIP, SL_KAFKA_CODEC_SNAPPY, SL_KAFKA_CODEC_LZ4};
	if (size < 1 || size > (1u << 20))
		return 0;
	size_t len = SL_BATCH_HEADER_BYTES + size - 1;
	uint8_t *b = calloc(1, len);
	if (b == NULL)
		return 0;
	/* A header as a client writes it: magic 2, one record, no producer id; the fuzzer's bytes as records. */
	b[16] = SL_BATCH_MAGIC;
	b[22] = (uint8_t)codecs[data[0] % 3];
	memset(b + 43, 0xff, 14); /* producerId, producerEpoch, baseSequence: -1 */
	sl_store_be32(b + 57, 1);
	memcpy(b + SL_BATCH_HEADER_BYTES, data + 1, size - 1);
	sl_store_be32(b + 8, (uint32_t)(len - 12));
	sl_store_be32(b + 17, sl_crc32c(0, b + SL_BATCH_CRC_START, len - SL_BATCH_CRC_START));

	struct sl_kafka_arena arena = {.bytes_max = 0};
	uint8_t *out;
	size_t out_len;
	const char *why = "";
	if (sl_kafka_batch_inflate(&arena, b, len, OUT_BYTES_MAX, &out, &out_len, &why) == 0) {
		if (out_len < SL_BATCH_HEADER_BYTES || out_len > OUT_BYTES_MAX ||
		    (out[22] & SL_BATCH_ATTR_CODEC_MASK) != 0 || sl_load_be32(out + 8) != out_len - 12 ||
		    sl_load_be32(out + 17) != sl_crc32c(0, out + SL_BATCH_CRC_START, out_len - SL_BATCH_CRC_START) ||
		    memcmp(out + 23, b + 23, SL_BATCH_HEADER_BYTES - 23) != 0)
			abort();
	}
	sl_kafka_arena_free(&arena);
	free(b);
	return 0;
}
