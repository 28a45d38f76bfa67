/* Reading a compacted log: a read from any offset returns the first surviving record at or after it (through gaps
 * inside batches, between batches and at the ends of segments); a time lookup returns the first surviving record
 * at or after the time; and a consumer reading from earliest while the cleaner thread cleans and the log takes
 * appends sees every record once, in offset order, before and after the swap, and reaches the history's state. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clean_test_util.h"

#define KEYS          150
#define SEGMENT_BYTES (8u * 1024)
/* Small reads, so that a consumer needs many of them and the swap falls between two. */
#define READ_BYTES    4096u

struct seen {
	int64_t *offsets;
	int64_t *timestamps;
	size_t count, cap;
};

static void seen_push(struct seen *v, int64_t offset, int64_t ts)
{
	if (v->count == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 1024;
		v->offsets = realloc(v->offsets, v->cap * sizeof(int64_t));
		v->timestamps = realloc(v->timestamps, v->cap * sizeof(int64_t));
		assert_non_null(v->offsets);
		assert_non_null(v->timestamps);
	}
	v->offsets[v->count] = offset;
	v->timestamps[v->count++] = ts;
}

static void seen_free(struct seen *v)
{
	free(v->offsets);
	free(v->timestamps);
	memset(v, 0, sizeof(*v));
}

/* Read once from *pos: every record at or after it goes to out (and to st when given); *pos moves on. */
static void read_once(struct sl_log *log, int64_t *pos, struct seen *out, struct ct_state *st, uint8_t *buf,
                      uint8_t *scratch)
{
	size_t len;
	int64_t next;
	assert_int_equal(sl_log_read(log, *pos, buf, READ_BYTES, &len, &next), 0);
	assert_true(next > *pos && len > 0);
	for (size_t p = 0; p < len;) {
		struct sl_batch_header h;
		assert_int_equal(sl_batch_header_parse(buf + p, len - p, &h), 0);
		size_t blen = sl_batch_total_bytes(&h);
		assert_int_equal(sl_batch_validate_stored(buf + p, blen, &h, scratch, SL_BATCH_BYTES_MAX, NULL), 0);
		struct sl_record_iter it;
		struct sl_record r;
		assert_int_equal(sl_record_iter_init(&it, buf + p, blen, scratch, SL_BATCH_BYTES_MAX), 0);
		int rc;
		while ((rc = sl_record_iter_next(&it, &r)) == 1) {
			if (r.offset < *pos)
				continue;
			assert_true(out->count == 0 || r.offset > out->offsets[out->count - 1]);
			seen_push(out, r.offset, r.timestamp_ms);
			if (st != NULL) {
				char key[16] = "", value[40] = "";
				unsigned k;
				memcpy(key, r.key, (size_t)r.key_len);
				assert_int_equal(sscanf(key, "k%u", &k), 1);
				if (r.value_len > 0)
					memcpy(value, r.value, (size_t)r.value_len);
				ct_state_apply_rec(st, k, r.version, r.op, value);
			}
		}
		assert_int_equal(rc, 0);
		p += blen;
	}
	*pos = next;
}

static void read_all(struct sl_log *log, struct seen *out)
{
	uint8_t *buf = malloc(READ_BYTES * 16), *scratch = malloc(SL_BATCH_BYTES_MAX);
	assert_non_null(buf);
	assert_non_null(scratch);
	int64_t pos = sl_log_start_offset(log);
	while (pos < sl_log_next_offset(log))
		read_once(log, &pos, out, NULL, buf, scratch);
	free(buf);
	free(scratch);
}

static void compacted_log(struct lt_fixture *fx, struct ct_stream *s)
{
	fx->cfg.segment_bytes_max = SEGMENT_BYTES;
	uint64_t rng = lt_seed("clean_reads", 0x4eadd);
	assert_int_equal(lt_fixture_open(fx), 0);
	assert_int_equal(ct_stream_gen(&rng, s, 3000, KEYS), 0);
	assert_int_equal(ct_append(fx, &rng, s, 0, s->count), 0);
	assert_int_equal(ct_roll_and_seal(fx), 0);
	size_t from = s->count;
	assert_int_equal(ct_stream_gen(&rng, s, 100, KEYS), 0);
	assert_int_equal(ct_append(fx, &rng, s, from, s->count), 0); /* the active segment has some too */
	struct sl_clean_params p;
	ct_params(&p);
	assert_int_equal(ct_clean(fx, &p, NULL), 0);
}

static void test_read_from_any_offset_reads_through_gaps(void **state)
{
	struct lt_fixture *fx = *state;
	struct ct_stream *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	compacted_log(fx, s);
	struct seen all = {0};
	read_all(fx->log, &all);
	assert_true(all.count < s->count);
	uint8_t *buf = malloc(READ_BYTES * 16), *scratch = malloc(SL_BATCH_BYTES_MAX);
	assert_non_null(buf);
	assert_non_null(scratch);
	size_t j = 0;
	for (int64_t o = sl_log_start_offset(fx->log); o < sl_log_next_offset(fx->log); o++) {
		while (all.offsets[j] < o)
			j++;
		struct seen one = {0};
		int64_t pos = o;
		/* A read may return only records before o (their batch's later records went): the next read moves
		 * on, as a consumer's does. */
		for (int reads = 0; one.count == 0 && reads < 100 && pos < sl_log_next_offset(fx->log); reads++)
			read_once(fx->log, &pos, &one, NULL, buf, scratch);
		/* The first record returned is the first surviving one at or after o. */
		assert_true(one.count > 0);
		assert_int_equal(one.offsets[0], all.offsets[j]);
		seen_free(&one);
	}
	free(buf);
	free(scratch);
	seen_free(&all);
	assert_int_equal(lt_fixture_close(fx), 0);
	ct_stream_free(s);
	free(s);
}

static void test_time_lookup_finds_first_surviving_record(void **state)
{
	struct lt_fixture *fx = *state;
	struct ct_stream *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	compacted_log(fx, s);
	struct seen all = {0};
	read_all(fx->log, &all);
	for (size_t i = 0; i < s->count; i += 37) {
		int64_t ts = ct_timestamp_ms(i), got;
		assert_int_equal(sl_log_offset_for_time(fx->log, ts, &got), 0);
		size_t j = 0;
		while (j < all.count && all.timestamps[j] < ts)
			j++;
		/* The answer is an offset no later than the first surviving record at or after ts, and nothing that
		 * survives lies between the two. */
		int64_t want = j < all.count ? all.offsets[j] : sl_log_next_offset(fx->log);
		assert_true(got <= want);
		assert_true(j == 0 || all.offsets[j - 1] < got);
	}
	seen_free(&all);
	assert_int_equal(lt_fixture_close(fx), 0);
	ct_stream_free(s);
	free(s);
}

static atomic_int woken;

static void wake_cb(void *arg)
{
	atomic_store(&woken, 1);
}

static void test_consumer_reading_through_a_swap_sees_each_record_once(void **state)
{
	struct lt_fixture *fx = *state;
	struct ct_stream *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	fx->cfg.segment_bytes_max = SEGMENT_BYTES;
	uint64_t rng = lt_seed("consumer_through_swap", 0x5a4b);
	assert_int_equal(lt_fixture_open(fx), 0);
	assert_int_equal(ct_stream_gen(&rng, s, 3000, KEYS), 0);
	assert_int_equal(ct_append(fx, &rng, s, 0, s->count), 0);
	assert_int_equal(ct_roll_and_seal(fx), 0);

	struct sl_cleaner *cleaner;
	assert_int_equal(sl_cleaner_start(&cleaner, wake_cb, NULL), 0);
	struct sl_clean_params p;
	ct_params(&p);
	p.bytes_per_s_max = 1u << 20; /* ~200 ms for this log */
	struct sl_clean_job *job;
	assert_int_equal(sl_clean_prepare(fx->log, &p, &job), 0);
	assert_int_equal(sl_cleaner_submit(cleaner, job), 0);

	uint8_t *buf = malloc(READ_BYTES * 16), *scratch = malloc(SL_BATCH_BYTES_MAX);
	struct ct_state *st = malloc(sizeof(*st)), *want = malloc(sizeof(*want));
	assert_non_null(buf);
	assert_non_null(scratch);
	assert_non_null(st);
	assert_non_null(want);
	ct_state_init(st);
	struct seen seen = {0};
	int64_t pos = sl_log_start_offset(fx->log), swapped_at = -1;
	int64_t half = sl_log_next_offset(fx->log) / 2;
	int appends = 0;
	while (swapped_at < 0 || pos < sl_log_next_offset(fx->log)) {
		/* Read the first half before the swap, the rest after it. */
		if (pos < sl_log_next_offset(fx->log) && (pos < half || swapped_at >= 0))
			read_once(fx->log, &pos, &seen, st, buf, scratch);
		if (swapped_at < 0 && appends < 400) {
			/* Producers go on meanwhile; now and then a segment rolls. */
			size_t from = s->count;
			assert_int_equal(ct_stream_gen(&rng, s, 5, KEYS), 0);
			assert_int_equal(ct_append(fx, &rng, s, from, s->count), 0);
			appends++;
		}
		if (atomic_load(&woken)) {
			struct sl_clean_job *done = sl_cleaner_take(cleaner);
			if (done != NULL) {
				assert_int_equal(done->status, 0);
				sl_clean_finish(done);
				/* The old descriptors may go once the ring submitted what this pass prepared. */
				assert_true(sl_ring_submit(&fx->ring) >= 0);
				sl_cleaner_dispose(cleaner, done);
				swapped_at = pos;
			}
		}
		if (swapped_at < 0 && (appends >= 400 || pos >= half)) {
			struct timespec ts = {0, 1000000};
			nanosleep(&ts, NULL);
		}
	}
	assert_true(swapped_at >= half && swapped_at < sl_log_next_offset(fx->log));
	/* Every record the compacted log holds past the swap point was seen, and the replay reached the history's
	 * state: nothing was lost, nothing seen twice (offsets strictly increase, checked in read_once). */
	struct seen after = {0};
	read_all(fx->log, &after);
	size_t j = 0;
	for (size_t i = 0; i < after.count; i++) {
		if (after.offsets[i] < swapped_at)
			continue;
		while (j < seen.count && seen.offsets[j] < after.offsets[i])
			j++;
		assert_true(j < seen.count && seen.offsets[j] == after.offsets[i]);
	}
	ct_state_of_stream(s, s->count, want);
	assert_int_equal(ct_state_compare(want, st, 0), 0);
	printf("# swap after %" PRId64 " of %" PRId64 " offsets, %d appends during the clean\n", swapped_at,
	       sl_log_next_offset(fx->log), appends);
	sl_cleaner_stop(cleaner);
	seen_free(&seen);
	seen_free(&after);
	free(buf);
	free(scratch);
	free(st);
	free(want);
	assert_int_equal(lt_fixture_close(fx), 0);
	ct_stream_free(s);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_read_from_any_offset_reads_through_gaps, lt_fixture_setup,
	                                        lt_fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_time_lookup_finds_first_surviving_record, lt_fixture_setup,
	                                        lt_fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_consumer_reading_through_a_swap_sees_each_record_once,
	                                        lt_fixture_setup, lt_fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
