/* libFuzzer target for proto/batch: no input may make validation or iteration read out of bounds, every batch
 * validation accepts must iterate to exactly recordsCount records, and every batch the builder makes must validate
 * and give back the records it was built from.
 *
 * The first input byte picks a mode, so the fuzzer can get past the CRC and reach the record parser:
 *   mode 0  the rest as is;
 *   mode 1  the rest with batchLength, magic and CRC patched to be right, so only the records can be wrong;
 *   mode 2  as 1, but bytes 61.. are compressed into a zstd records section first;
 *   mode 3  the rest is a script of records for the builder (codec from bit 2 of the first byte).
 *
 * Build and run (from the repository root):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -D_GNU_SOURCE tests/fuzz/fuzz_batch.c proto/[a-z]*.c -lzstd \
 *         -o /tmp/fuzz_batch && /tmp/fuzz_batch -max_total_time=60 CORPUS_DIR
 * Seeds: build with -DFUZZ_SEED_WRITER (no -fsanitize=fuzzer) and run it with CORPUS_DIR to write a few. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "proto/batch.h"
#include "proto/crc32c.h"

/* Bounds the memory a decompression bomb can claim; libFuzzer inputs stay far below it. */
#define SCRATCH_BYTES      (1024 * 1024)
#define BUILDER_BYTES_MAX  (64 * 1024)
#define SCRIPT_RECORDS_MAX 64
#define PATCH_BYTES_MAX    (256 * 1024)

static uint8_t *scratch;
static uint8_t *patched;
static struct sl_batch_builder builder;

static void setup(void)
{
	if (scratch != NULL)
		return;
	scratch = malloc(SCRATCH_BYTES);
	patched = malloc(PATCH_BYTES_MAX);
	if (scratch == NULL || patched == NULL || sl_batch_builder_init(&builder, BUILDER_BYTES_MAX) != 0)
		abort();
}

static void require(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "fuzz_batch: property broken: %s\n", what);
		abort();
	}
}

static int inside(const uint8_t *ptr, int32_t len, const uint8_t *lo, const uint8_t *hi)
{
	return len <= 0 || (ptr >= lo && ptr + len <= hi);
}

/* Validate, then iterate whatever the outcome: the iterator must be safe on unvalidated bytes too. */
static void check_batch(const uint8_t *p, size_t len)
{
	struct sl_batch_header h;
	struct sl_record_iter it;
	struct sl_record r;
	const char *why = NULL;
	int32_t returned = 0;
	int valid, rc;

	rc = sl_batch_validate(p, len, &h, scratch, SCRATCH_BYTES, &why);
	require(rc == 0 || rc == -EBADMSG || rc == -ENOTSUP, "validate returns 0, -EBADMSG or -ENOTSUP");
	require(rc == 0 || why != NULL, "validate explains every failure");
	valid = rc == 0;

	rc = sl_record_iter_init(&it, p, len, scratch, SCRATCH_BYTES);
	if (valid)
		require(rc == 0, "a valid batch opens for iteration");
	if (rc != 0)
		return;
	const uint8_t *lo = it.pos, *hi = it.end;
	/* Bounded by recordsCount + 1 calls: next never returns more than recordsCount records. */
	for (int64_t i = 0; i <= (int64_t)it.header.record_count; i++) {
		rc = sl_record_iter_next(&it, &r);
		if (rc != 1)
			break;
		require(inside(r.key, r.key_len, lo, hi) && inside(r.value, r.value_len, lo, hi) &&
		                inside(r.idempotency_key, r.idempotency_key_len, lo, hi),
		        "record pointers stay inside the records section");
		returned++;
	}
	if (valid) {
		require(rc == 0, "a valid batch iterates without error");
		require(returned == h.record_count, "a valid batch yields recordsCount records");
	}
	require(returned <= it.header.record_count, "no more than recordsCount records");
}

/* Modes 1 and 2: make the header agree with the bytes so that only the records section can be wrong. */
static void check_patched(const uint8_t *data, size_t len, int compress)
{
	size_t total = len;

	if (len < SL_BATCH_HEADER_BYTES || len > PATCH_BYTES_MAX)
		return;
	memcpy(patched, data, SL_BATCH_HEADER_BYTES);
	if (compress) {
		size_t n = ZSTD_compress(patched + SL_BATCH_HEADER_BYTES, PATCH_BYTES_MAX - SL_BATCH_HEADER_BYTES,
		                         data + SL_BATCH_HEADER_BYTES, len - SL_BATCH_HEADER_BYTES, 1);
		if (ZSTD_isError(n))
			return;
		total = SL_BATCH_HEADER_BYTES + n;
		patched[21] = 0;
		patched[22] = SL_BATCH_CODEC_ZSTD;
	} else {
		memcpy(patched + SL_BATCH_HEADER_BYTES, data + SL_BATCH_HEADER_BYTES, len - SL_BATCH_HEADER_BYTES);
	}
	uint32_t batch_length = (uint32_t)(total - SL_BATCH_LOG_OVERHEAD_BYTES);
	patched[8] = (uint8_t)(batch_length >> 24);
	patched[9] = (uint8_t)(batch_length >> 16);
	patched[10] = (uint8_t)(batch_length >> 8);
	patched[11] = (uint8_t)batch_length;
	patched[16] = SL_BATCH_MAGIC;
	uint32_t crc = sl_crc32c(0, patched + 21, total - 21);
	patched[17] = (uint8_t)(crc >> 24);
	patched[18] = (uint8_t)(crc >> 16);
	patched[19] = (uint8_t)(crc >> 8);
	patched[20] = (uint8_t)crc;
	check_batch(patched, total);
}

struct cursor {
	const uint8_t *p, *end;
};

static uint64_t take(struct cursor *c, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes && c->p < c->end; i++)
		v = v << 8 | *c->p++;
	return v;
}

/* A slice of the script itself, as key, value or idempotency key; short when the script runs out. */
static const uint8_t *take_bytes(struct cursor *c, int32_t *len)
{
	const uint8_t *p = c->p;

	if (*len > c->end - c->p)
		*len = (int32_t)(c->end - c->p);
	c->p += *len;
	return p;
}

/* Mode 3: build a batch from a script, then require it to validate and iterate back to the same records. */
static void check_built(const uint8_t *data, size_t len, int codec)
{
	struct sl_record want[SCRIPT_RECORDS_MAX], got;
	struct cursor c = {data, data + len};
	struct sl_record_iter it;
	const uint8_t *batch;
	size_t batch_len, count = 0;
	int rc;

	sl_batch_builder_reset(&builder);
	while (c.p < c.end && count < SCRIPT_RECORDS_MAX) {
		struct sl_record *r = &want[count];
		uint8_t flags = (uint8_t)take(&c, 1);

		memset(r, 0, sizeof(*r));
		r->timestamp_ms = (flags & 0x80) ? (int64_t)take(&c, 8) : (int64_t)(int16_t)take(&c, 2);
		r->key_len = (int32_t)take(&c, 1);
		r->key = take_bytes(&c, &r->key_len);
		if (flags & 0x01)
			r->key = NULL, r->key_len = -1;
		r->value_len = (int32_t)take(&c, 2) % 2048;
		r->value = take_bytes(&c, &r->value_len);
		r->op = (flags & 0x02) ? SL_OP_DELETE : SL_OP_UPSERT;
		if ((flags & 0x04) || r->op == SL_OP_DELETE)
			r->value = NULL, r->value_len = -1;
		r->origin = (enum sl_origin)((flags >> 3) % 3);
		r->version = (flags & 0x20) ? (int64_t)take(&c, 8) : SL_VERSION_NONE;
		if (flags & 0x40) {
			r->idempotency_key_len = (int32_t)take(&c, 1) % 40;
			r->idempotency_key = take_bytes(&c, &r->idempotency_key_len);
			r->schema_version = (int32_t)take(&c, 4);
		}
		/* Every scripted record is well formed and fits an empty builder, so -EINVAL would be a bug; -ENOSPC
		 * comes from a full batch or a timestamp too far from the first. */
		rc = sl_batch_builder_add(&builder, r);
		require(rc == 0 || rc == -ENOSPC, "add of a well-formed record returns 0 or -ENOSPC");
		if (rc != 0)
			break;
		count++;
	}
	if (count == 0)
		return;
	require(sl_batch_builder_finish(&builder, codec, &batch, &batch_len) == 0, "finish succeeds");
	const char *why = NULL;
	rc = sl_batch_validate(batch, batch_len, NULL, scratch, SCRATCH_BYTES, &why);
	if (rc != 0)
		fprintf(stderr, "fuzz_batch: built batch rejected: %s\n", why);
	require(rc == 0, "every built batch validates");
	require(sl_record_iter_init(&it, batch, batch_len, scratch, SCRATCH_BYTES) == 0, "built batch iterates");
	for (size_t i = 0; i < count; i++) {
		const struct sl_record *w = &want[i];

		require(sl_record_iter_next(&it, &got) == 1, "every built record comes back");
		require(got.offset == (int64_t)i && got.timestamp_ms == w->timestamp_ms, "offset and timestamp");
		require(got.key_len == w->key_len && (w->key_len <= 0 || memcmp(got.key, w->key, w->key_len) == 0),
		        "key");
		require(got.value_len == w->value_len &&
		                (w->value_len <= 0 || memcmp(got.value, w->value, w->value_len) == 0),
		        "value");
		require(got.version == w->version && got.op == w->op && got.origin == w->origin, "sync fields");
		require(got.schema_version == w->schema_version, "schema version");
		require((got.idempotency_key == NULL) == (w->idempotency_key == NULL) &&
		                got.idempotency_key_len == w->idempotency_key_len &&
		                (w->idempotency_key_len <= 0 ||
		                 memcmp(got.idempotency_key, w->idempotency_key, w->idempotency_key_len) == 0),
		        "idempotency key");
	}
	require(sl_record_iter_next(&it, &got) == 0, "nothing after the built records");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	if (size == 0)
		return 0;
	switch (data[0] & 3) {
	case 0:
		check_batch(data + 1, size - 1);
		break;
	case 1:
		check_patched(data + 1, size - 1, 0);
		break;
	case 2:
		check_patched(data + 1, size - 1, 1);
		break;
	case 3:
		check_built(data + 1, size - 1, (data[0] & 4) ? SL_BATCH_CODEC_ZSTD : SL_BATCH_CODEC_NONE);
		break;
	}
	return 0;
}

#ifdef FUZZ_SEED_WRITER
/* Writes seed inputs into the directory argv[1]: built batches in modes 0, 1 and 2, and one script for mode 3. */
static void seed_write(const char *dir, const char *name, uint8_t mode, const uint8_t *p, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL || fputc(mode, f) == EOF || fwrite(p, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	static const char *const keys[] = {"alpha", "beta", "gamma"};
	const uint8_t script[] = {0x60, 0x00, 0x10, 0x01, 'k',  0x00, 0x02, 'v',  'v', 0,   0,
	                          0,    0,    0,    0,    0,    7,    0x03, 'i',  'k', 'x', 0,
	                          0,    0,    3,    0x02, 0x00, 0x20, 0x00, 0x00, 0x00};
	const uint8_t *batch;
	size_t len;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	setup();
	for (int codec = 0; codec < 2; codec++) {
		sl_batch_builder_reset(&builder);
		for (int i = 0; i < 6; i++) {
			struct sl_record r = {.timestamp_ms = 1000 - i * 10,
			                      .key = (const uint8_t *)keys[i % 3],
			                      .key_len = (int32_t)strlen(keys[i % 3]),
			                      .value = (const uint8_t *)"value value value value",
			                      .value_len = 23,
			                      .version = i,
			                      .origin = (enum sl_origin)(i % 3),
			                      .idempotency_key = (const uint8_t *)"ik",
			                      .idempotency_key_len = i % 3,
			                      .schema_version = i};
			if (i == 5)
				r.op = SL_OP_DELETE, r.value = NULL, r.value_len = -1;
			if (sl_batch_builder_add(&builder, &r) != 0)
				return 1;
		}
		if (sl_batch_builder_finish(&builder, codec ? SL_BATCH_CODEC_ZSTD : SL_BATCH_CODEC_NONE, &batch,
		                            &len) != 0)
			return 1;
		seed_write(argv[1], codec ? "batch-zstd" : "batch-none", 0, batch, len);
		if (!codec) {
			seed_write(argv[1], "patched-none", 1, batch, len);
			seed_write(argv[1], "patched-zstd", 2, batch, len);
		}
	}
	seed_write(argv[1], "script", 3, script, sizeof(script));
	seed_write(argv[1], "script-zstd", 7, script, sizeof(script));
	return 0;
}
#endif
