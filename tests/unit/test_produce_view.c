/* Tests of proto/produce_view: the in-place reading of a Produce request agrees with protobuf-c on every frame it
 * accepts, points its batches into the frame, and declines every encoding outside the canonical one. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"
#include "proto/produce_view.h"
#include "proto/synclog.pb-c.h"

#define PARTS_MAX 8

/* A packed Request holding a Produce of n partitions; partition i carries i * 100 bytes of value 'a' + i. */
static uint8_t *pack_produce(size_t n, size_t *len_out)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__ProduceRequest pr = SYNCLOG__PRODUCE_REQUEST__INIT;
	Synclog__ProducePartition pp[PARTS_MAX], *pps[PARTS_MAX];
	uint8_t *data[PARTS_MAX];
	assert_true(n <= PARTS_MAX);
	for (size_t i = 0; i < n; i++) {
		synclog__produce_partition__init(&pp[i]);
		pp[i].partition = (uint32_t)(i * 7 + 1);
		data[i] = malloc(i * 100 + 1);
		memset(data[i], 'a' + (int)i, i * 100);
		pp[i].batch.data = i == 0 ? NULL : data[i];
		pp[i].batch.len = i * 100;
		pps[i] = &pp[i];
	}
	pr.topic = "orders.v1";
	pr.acks = SYNCLOG__ACKS__ACKS_WRITTEN;
	pr.n_partitions = n;
	pr.partitions = pps;
	req.correlation_id = 0x123456789ull;
	req.body_case = SYNCLOG__REQUEST__BODY_PRODUCE;
	req.produce = &pr;
	size_t len = synclog__request__get_packed_size(&req);
	uint8_t *frame = malloc(len);
	assert_int_equal(synclog__request__pack(&req, frame), len);
	for (size_t i = 0; i < n; i++)
		free(data[i]);
	*len_out = len;
	return frame;
}

/* Whatever the view accepts, protobuf-c decodes to the same values. Like the broker, frames with a NUL in a string
 * are refused before either decoder sees them. */
static void assert_agrees_with_protobuf_c(uint8_t *frame, size_t len)
{
	struct sl_produce_view v;
	struct sl_produce_view_part parts[PARTS_MAX];
	if (sl_frame_check_strings(&synclog__request__descriptor, frame, len) != 0)
		return;
	if (sl_produce_view_parse(frame, len, &v, NULL, 0) != 1)
		return;
	assert_true(v.part_count <= PARTS_MAX);
	assert_int_equal(sl_produce_view_parse(frame, len, &v, parts, PARTS_MAX), 1);
	Synclog__Request *req = synclog__request__unpack(NULL, len, frame);
	assert_non_null(req);
	assert_int_equal(req->body_case, SYNCLOG__REQUEST__BODY_PRODUCE);
	assert_true(req->correlation_id == v.correlation_id);
	assert_int_equal(strlen(req->produce->topic), v.topic_bytes);
	if (v.topic_bytes > 0)
		assert_memory_equal(req->produce->topic, v.topic, v.topic_bytes);
	assert_int_equal((int)req->produce->acks, v.acks);
	assert_int_equal((int)req->produce->backfill, v.backfill);
	assert_int_equal(req->produce->n_partitions, v.part_count);
	for (size_t i = 0; i < v.part_count; i++) {
		Synclog__ProducePartition *pp = req->produce->partitions[i];
		assert_int_equal(pp->partition, parts[i].partition);
		assert_int_equal(pp->batch.len, parts[i].batch_bytes);
		if (parts[i].batch_bytes > 0) {
			assert_true(parts[i].batch >= frame && parts[i].batch + parts[i].batch_bytes <= frame + len);
			assert_memory_equal(pp->batch.data, parts[i].batch, parts[i].batch_bytes);
		}
	}
	synclog__request__free_unpacked(req, NULL);
}

static void test_view_reads_a_packed_produce_in_place(void **state)
{
	(void)state;
	size_t len;
	uint8_t *frame = pack_produce(4, &len);
	struct sl_produce_view v;
	struct sl_produce_view_part parts[PARTS_MAX];
	assert_int_equal(sl_produce_view_parse(frame, len, &v, NULL, 0), 1);
	assert_int_equal(v.part_count, 4);
	assert_int_equal(sl_produce_view_parse(frame, len, &v, parts, PARTS_MAX), 1);
	assert_true(v.correlation_id == 0x123456789ull);
	assert_int_equal(v.topic_bytes, strlen("orders.v1"));
	assert_memory_equal(v.topic, "orders.v1", v.topic_bytes);
	assert_int_equal(v.acks, SYNCLOG__ACKS__ACKS_WRITTEN);
	assert_null(parts[0].batch);
	assert_int_equal(parts[0].batch_bytes, 0);
	for (size_t i = 1; i < 4; i++) {
		assert_int_equal(parts[i].partition, i * 7 + 1);
		assert_int_equal(parts[i].batch_bytes, i * 100);
		assert_true(parts[i].batch > frame && parts[i].batch + parts[i].batch_bytes <= frame + len);
		for (size_t k = 0; k < parts[i].batch_bytes; k++)
			assert_int_equal(parts[i].batch[k], 'a' + (int)i);
	}
	assert_agrees_with_protobuf_c(frame, len);
	free(frame);
}

/* The backfill declaration (field 50) is read in place too, so a backfill's batches are not copied either; given
 * twice, the view leaves it to protobuf-c. */
static void test_view_reads_the_backfill_flag(void **state)
{
	(void)state;
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__ProduceRequest pr = SYNCLOG__PRODUCE_REQUEST__INIT;
	uint8_t frame[64];
	struct sl_produce_view v;
	pr.topic = "t";
	pr.backfill = 1;
	req.body_case = SYNCLOG__REQUEST__BODY_PRODUCE;
	req.produce = &pr;
	size_t len = synclog__request__pack(&req, frame);
	assert_int_equal(sl_produce_view_parse(frame, len, &v, NULL, 0), 1);
	assert_int_equal(v.backfill, 1);
	assert_agrees_with_protobuf_c(frame, len);
	pr.backfill = 0;
	len = synclog__request__pack(&req, frame);
	assert_int_equal(sl_produce_view_parse(frame, len, &v, NULL, 0), 1);
	assert_int_equal(v.backfill, 0);
	/* field 50 varint twice: tag 0x90 0x03 */
	uint8_t twice[] = {0x7a, 0x06, 0x90, 0x03, 0x01, 0x90, 0x03, 0x00};
	assert_int_equal(sl_produce_view_parse(twice, sizeof(twice), &v, NULL, 0), 0);
}

static void test_view_declines_when_parts_do_not_fit(void **state)
{
	(void)state;
	size_t len;
	uint8_t *frame = pack_produce(4, &len);
	struct sl_produce_view v;
	struct sl_produce_view_part parts[PARTS_MAX];
	assert_int_equal(sl_produce_view_parse(frame, len, &v, parts, 3), 0);
	free(frame);
}

static void test_view_declines_other_requests(void **state)
{
	(void)state;
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__FetchRequest fr = SYNCLOG__FETCH_REQUEST__INIT;
	fr.topic = "orders";
	req.correlation_id = 9;
	req.body_case = SYNCLOG__REQUEST__BODY_FETCH;
	req.fetch = &fr;
	uint8_t frame[256];
	size_t len = synclog__request__pack(&req, frame);
	struct sl_produce_view v;
	assert_int_equal(sl_produce_view_parse(frame, len, &v, NULL, 0), 0);
	/* A request with no body at all. */
	uint8_t cid_only[] = {0x08, 0x05};
	assert_int_equal(sl_produce_view_parse(cid_only, sizeof(cid_only), &v, NULL, 0), 0);
}

static void test_view_reads_an_empty_produce(void **state)
{
	(void)state;
	uint8_t frame[] = {0x7a, 0x00}; /* field 15, length 0 */
	struct sl_produce_view v;
	assert_int_equal(sl_produce_view_parse(frame, sizeof(frame), &v, NULL, 0), 1);
	assert_null(v.topic);
	assert_int_equal(v.part_count, 0);
	assert_agrees_with_protobuf_c(frame, sizeof(frame));
}

/* Encodings protobuf-c accepts with rules of its own (merging, last one wins, unknown fields): left to it. */
static void test_view_declines_non_canonical_encodings(void **state)
{
	(void)state;
	struct sl_produce_view v;
	/* The produce body twice. */
	uint8_t twice[] = {0x7a, 0x00, 0x7a, 0x00};
	/* The correlation id twice. */
	uint8_t cid_twice[] = {0x08, 0x01, 0x08, 0x02, 0x7a, 0x00};
	/* An unknown field (99, varint) in the request. */
	uint8_t unknown[] = {0x98, 0x06, 0x01, 0x7a, 0x00};
	/* Acks twice inside the produce body. */
	uint8_t acks_twice[] = {0x7a, 0x04, 0x10, 0x01, 0x10, 0x02};
	/* A partition whose index is given twice. */
	uint8_t index_twice[] = {0x7a, 0x06, 0x1a, 0x04, 0x08, 0x01, 0x08, 0x02};
	/* A partition with a fixed32 field. */
	uint8_t fixed32[] = {0x7a, 0x07, 0x1a, 0x05, 0x0d, 0x01, 0x00, 0x00, 0x00};
	/* A partition index of 2^32. */
	uint8_t big_index[] = {0x7a, 0x08, 0x1a, 0x06, 0x08, 0x80, 0x80, 0x80, 0x80, 0x10};
	/* Acks negative (a 10-byte varint). */
	uint8_t neg_acks[] = {0x7a, 0x0b, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
	/* The wrong wire type for the produce body. */
	uint8_t wire[] = {0x78, 0x01};
	assert_int_equal(sl_produce_view_parse(twice, sizeof(twice), &v, NULL, 0), 0);
	assert_int_equal(sl_produce_view_parse(cid_twice, sizeof(cid_twice), &v, NULL, 0), 0);
	assert_int_equal(sl_produce_view_parse(unknown, sizeof(unknown), &v, NULL, 0), 0);
	assert_int_equal(sl_produce_view_parse(acks_twice, sizeof(acks_twice), &v, NULL, 0), 0);
	assert_int_equal(sl_produce_view_parse(index_twice, sizeof(index_twice), &v, NULL, 0), 0);
	assert_int_equal(sl_produce_view_parse(fixed32, sizeof(fixed32), &v, NULL, 0), 0);
	assert_int_equal(sl_produce_view_parse(big_index, sizeof(big_index), &v, NULL, 0), 0);
	assert_int_equal(sl_produce_view_parse(neg_acks, sizeof(neg_acks), &v, NULL, 0), 0);
	assert_int_equal(sl_produce_view_parse(wire, sizeof(wire), &v, NULL, 0), 0);
}

/* Every cut of a valid frame and every single-byte change of it: the view never reads outside the frame (the
 * sanitizer build checks that: each cut is its own allocation) and agrees with protobuf-c when it accepts. */
static void test_view_survives_cuts_and_flips(void **state)
{
	(void)state;
	size_t len;
	uint8_t *frame = pack_produce(3, &len);
	for (size_t cut = 0; cut <= len; cut++) {
		uint8_t *copy = malloc(cut ? cut : 1);
		memcpy(copy, frame, cut);
		assert_agrees_with_protobuf_c(copy, cut);
		free(copy);
	}
	uint8_t *copy = malloc(len);
	for (size_t at = 0; at < len; at++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(copy, frame, len);
			copy[at] ^= (uint8_t)(1u << bit);
			assert_agrees_with_protobuf_c(copy, len);
		}
	}
	free(copy);
	free(frame);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_view_reads_a_packed_produce_in_place),
	        cmocka_unit_test(test_view_reads_the_backfill_flag),
	        cmocka_unit_test(test_view_declines_when_parts_do_not_fit),
	        cmocka_unit_test(test_view_declines_other_requests),
	        cmocka_unit_test(test_view_reads_an_empty_produce),
	        cmocka_unit_test(test_view_declines_non_canonical_encodings),
	        cmocka_unit_test(test_view_survives_cuts_and_flips),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
