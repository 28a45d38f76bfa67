/* Recovery of a partition log that was not closed cleanly: a last batch cut or garbled at any byte is dropped and
 * the log goes on from the batch before; damage before the tail refuses the open with -EUCLEAN (naming file and
 * position) until repair mode drops the damaged batch, and only it; a clean-shutdown marker skips the scan. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log_test_util.h"

/* Small segments so that a few dozen ~1 KiB batches make several sealed segments and an active one. */
#define TORN_SEGMENT_BYTES_MAX (16u * 1024)
/* ~1 KiB batches: each is more than an index interval, so every one of them starts a new index entry. */
#define BIG_BATCH_COUNT        60

static struct lt_fixture *fixture(void **state)
{
	return *state;
}

/* The log every test here starts from, and where its last two batches lie. */
struct torn_log {
	struct lt_model model;
	struct lt_segment *segs;
	size_t seg_count;
	char active_path[PATH_MAX];
	uint64_t last_pos; /* the last batch: position in the active segment, and length */
	uint64_t last_len;
	uint64_t before_last_pos; /* the batch before it */
	uint64_t before_last_len;
	uint64_t max_batch_len;
};

static void torn_log_free(struct torn_log *t)
{
	lt_model_free(&t->model);
	free(t->segs);
}

/* Position of model batch i in its segment file: the bytes of the batches before it in the same segment. */
static uint64_t position_in_segment(const struct torn_log *t, size_t i, int64_t seg_base)
{
	uint64_t pos = 0;

	for (size_t j = 0; j < i; j++)
		if (t->model.batches[j].base_offset >= seg_base)
			pos += t->model.batches[j].len;
	return pos;
}

static int64_t segment_base_of(const struct torn_log *t, int64_t offset)
{
	size_t i = 0;

	while (i + 1 < t->seg_count && t->segs[i + 1].base_offset <= offset)
		i++;
	return t->segs[i].base_offset;
}

/* Write the log in fx->dir and close it cleanly: BIG_BATCH_COUNT batches of ~1 KiB, then a small one and a
 * last one, a bit larger. The small batch before the last starts an index entry (a full KiB lies before it) and
 * is shorter than an interval, so the last batch lies after the last index checkpoint: it is the tail. Then
 * check the clean-shutdown marker is there, and delete it, as a crash would have left no marker. */
static void torn_log_build(struct lt_fixture *fx, struct torn_log *t, uint64_t seed)
{
	struct lt_batch_spec *specs = calloc(BIG_BATCH_COUNT + 2, sizeof(*specs));
	uint64_t rng = seed;
	char marker[PATH_MAX];
	struct sl_log_span span;
	size_t n = BIG_BATCH_COUNT + 2;

	memset(t, 0, sizeof(*t));
	assert_non_null(specs);
	for (size_t i = 0; i < BIG_BATCH_COUNT; i++) {
		specs[i].seed = lt_rand_next(&rng);
		specs[i].record_count = 3;
		specs[i].value_bytes = 300;
		specs[i].timestamp_ms = 1700000000000ll + (int64_t)i * 1000;
		specs[i].codec = i % 5 == 4 ? SL_BATCH_CODEC_ZSTD : SL_BATCH_CODEC_NONE;
	}
	specs[n - 2] = (struct lt_batch_spec){lt_rand_next(&rng), 1, 40, 1700000000000ll + (int64_t)n * 1000, 0};
	specs[n - 1] = (struct lt_batch_spec){lt_rand_next(&rng), 2, 60, 1700000000000ll + (int64_t)n * 1000 + 7, 0};
	fx->cfg.segment_bytes_max = TORN_SEGMENT_BYTES_MAX;
	assert_int_equal(lt_fixture_open(fx), 0);
	assert_int_equal(lt_append_specs(fx, &t->model, specs, n, SL_DURABILITY_WRITTEN, NULL, 1), 0);
	free(specs);

	/* Where the last batches lie, as the log itself says. */
	assert_int_equal(sl_log_locate(fx->log, t->model.batches[n - 1].base_offset, 1, &span), 0);
	t->last_pos = span.pos;
	t->last_len = span.len;
	assert_int_equal(sl_log_locate(fx->log, t->model.batches[n - 2].base_offset, 1, &span), 0);
	t->before_last_pos = span.pos;
	t->before_last_len = span.len;
	assert_int_equal(t->last_len, t->model.batches[n - 1].len);
	assert_int_equal(t->before_last_pos + t->before_last_len, t->last_pos);
	assert_true(t->before_last_len < fx->cfg.index_interval_bytes);
	for (size_t i = 0; i < n; i++)
		if (t->model.batches[i].len > t->max_batch_len)
			t->max_batch_len = t->model.batches[i].len;
	assert_true(t->model.batches[0].len > fx->cfg.index_interval_bytes);

	assert_int_equal(lt_fixture_close(fx), 0);
	assert_int_equal(lt_path_join(marker, sizeof(marker), fx->dir, LT_CLEAN_MARKER), 0);
	if (!lt_file_exists(marker))
		fail_msg("no clean-shutdown marker %s after a clean sl_log_close", marker);
	assert_int_equal(unlink(marker), 0);

	assert_int_equal(lt_segments_list(fx->dir, &t->segs, &t->seg_count), 0);
	/* Three sealed segments at least, and an active one holding several batches before the last two. */
	assert_true(t->seg_count >= 4);
	assert_true(t->last_pos > 3 * t->model.batches[0].len);
	assert_int_equal(position_in_segment(t, n - 1, t->segs[t->seg_count - 1].base_offset), t->last_pos);
	assert_int_equal(lt_path_join(t->active_path, sizeof(t->active_path), fx->dir, t->segs[t->seg_count - 1].name),
	                 0);
}

static int open_log_at(struct lt_fixture *fx, const char *dir, int repair, struct sl_log **out)
{
	struct sl_log_config cfg = fx->cfg;

	cfg.repair = repair;
	fx->err[0] = '\0';
	return sl_log_open(&fx->ring, dir, &cfg, out, fx->err, sizeof(fx->err));
}

/* Replace dst by a copy of the partition directory src. */
static void copy_partition(const char *src, const char *dst)
{
	assert_int_equal(sl_fs_rm_rf(dst), 0);
	assert_int_equal(lt_copy_tree(src, dst), 0);
}

/* Bytes 12..15 of a batch, the partition leader epoch, lie outside the CRC and no invariant of the log covers
 * them: flipping them leaves a valid batch, which the log may keep. */
static int in_leader_epoch(uint64_t at)
{
	return at >= 12 && at < 16;
}

/* The last batch kept with its leader epoch flipped at byte at: everything else as appended. */
static void assert_kept_with_flipped_epoch(struct lt_fixture *fx, const struct torn_log *t, uint64_t at)
{
	struct lt_scan scan;
	const struct lt_model_batch *last = &t->model.batches[t->model.count - 1];
	const struct lt_scanned_batch *kept;

	assert_int_equal(sl_log_next_offset(fx->log), last->last_offset + 1);
	assert_int_equal(lt_log_scan(fx->log, &scan), 0);
	assert_int_equal(scan.count, t->model.count);
	assert_int_equal(lt_model_check_range(&t->model, 0, &scan, 0, scan.count - 1), 0);
	kept = &scan.batches[scan.count - 1];
	assert_int_equal(kept->len, last->len);
	for (size_t i = 8; i < last->len; i++)
		assert_int_equal(scan.bytes[kept->at + i], last->bytes[i] ^ (i == at ? 0xff : 0));
	lt_scan_free(&scan);
	assert_int_equal(lt_fixture_close(fx), 0);
}

/* The log at dir opened after the last batch was damaged at byte `at` (of the batch) by what: it must hold every
 * batch before the last, end where the last began, take the next append at that offset, and keep all of it
 * across a clean close and reopen. With may_keep, keeping the last batch
 * (its leader epoch flipped) is right too. */
static void assert_recovered_to_batch_before_last(struct lt_fixture *fx, const struct torn_log *t, const char *dir,
                                                  uint64_t at, const char *what, uint64_t truncated_bytes, int may_keep)
{
	struct sl_log *log = NULL;
	struct sl_log_stats st;
	struct lt_scan scan;
	struct lt_model m = {0};
	const struct lt_model_batch *last = &t->model.batches[t->model.count - 1];
	struct lt_batch_spec again = last->spec;
	int rc = open_log_at(fx, dir, 0, &log);

	if (rc != 0)
		fail_msg("open after the last batch was %s at byte %" PRIu64 ": %d (%s)", what, at, rc, fx->err);
	fx->log = log; /* so teardown closes it if an assert below fails */
	sl_log_get_stats(log, &st);
	if (may_keep && st.next_offset == last->last_offset + 1) {
		assert_kept_with_flipped_epoch(fx, t, at);
		return;
	}
	if (st.next_offset != last->base_offset || st.clean_open != 0 || st.truncated_bytes != truncated_bytes)
		fail_msg("last batch %s at byte %" PRIu64 ": next offset %" PRId64 " (want %" PRId64
		         "), clean_open %d, "
		         "truncated %" PRIu64 " bytes (want %" PRIu64 ")",
		         what, at, st.next_offset, last->base_offset, st.clean_open, st.truncated_bytes,
		         truncated_bytes);
	assert_int_equal(lt_log_scan(log, &scan), 0);
	assert_int_equal(scan.count, t->model.count - 1);
	assert_int_equal(lt_model_check_range(&t->model, 0, &scan, 0, scan.count), 0);
	lt_scan_free(&scan);

	/* The same batch appended again lands at the offset the cut one had. */
	for (size_t i = 0; i + 1 < t->model.count; i++)
		assert_int_equal(lt_model_push(&m, &t->model.batches[i].spec, t->model.batches[i].bytes,
		                               t->model.batches[i].len, t->model.batches[i].base_offset,
		                               t->model.batches[i].last_offset),
		                 0);
	again.seed ^= at;
	assert_int_equal(lt_append_spec(fx, &m, &again, SL_DURABILITY_FSYNC, NULL, NULL), 0);
	assert_int_equal(m.batches[m.count - 1].base_offset, last->base_offset);
	assert_int_equal(lt_fixture_close(fx), 0);
	assert_int_equal(open_log_at(fx, dir, 0, &fx->log), 0);
	assert_int_equal(lt_log_scan(fx->log, &scan), 0);
	assert_int_equal(lt_model_check_scan(&m, &scan), 0);
	lt_scan_free(&scan);
	assert_int_equal(lt_fixture_close(fx), 0);
	lt_model_free(&m);
}

static void work_paths(struct lt_fixture *fx, const struct torn_log *t, char *work, char *active, size_t cap)
{
	assert_int_equal(lt_path_join(work, cap, fx->root, "work"), 0);
	assert_int_equal(lt_path_join(active, cap, work, t->segs[t->seg_count - 1].name), 0);
}

static void test_last_batch_cut_at_any_byte_recovers_to_the_batch_before(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct torn_log t;
	char work[PATH_MAX], active[PATH_MAX];

	torn_log_build(fx, &t, lt_seed("cut last batch", 201));
	work_paths(fx, &t, work, active, sizeof(work));
	for (uint64_t p = t.last_pos; p < t.last_pos + t.last_len; p++) {
		copy_partition(fx->dir, work);
		assert_int_equal(truncate(active, (off_t)p), 0);
		assert_recovered_to_batch_before_last(fx, &t, work, p - t.last_pos, "cut", p - t.last_pos, 0);
	}
	torn_log_free(&t);
}

static void test_last_batch_garbled_at_any_byte_recovers_to_the_batch_before(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct torn_log t;
	char work[PATH_MAX], active[PATH_MAX];

	torn_log_build(fx, &t, lt_seed("garble last batch", 202));
	work_paths(fx, &t, work, active, sizeof(work));
	for (uint64_t p = t.last_pos; p < t.last_pos + t.last_len; p++) {
		copy_partition(fx->dir, work);
		assert_int_equal(lt_file_xor_byte(active, p, 0xff), 0);
		assert_recovered_to_batch_before_last(fx, &t, work, p - t.last_pos, "garbled", t.last_len,
		                                      in_leader_epoch(p - t.last_pos));
	}
	torn_log_free(&t);
}

/* Which batch to damage, and where it lies. */
struct damage {
	size_t model_index;
	const struct lt_segment *seg;
	uint64_t batch_pos;
	uint64_t byte_pos; /* the byte flipped, inside the batch's records: its CRC no longer matches */
};

/* The last batch of an older sealed segment (the second one: two sealed segments follow it). Every check of a
 * sealed segment's end (from its last index entry on) reads it. */
static void damage_in_older_sealed_segment(const struct torn_log *t, struct damage *d)
{
	const struct lt_segment *seg = &t->segs[1];
	long last = lt_model_find(&t->model, t->segs[2].base_offset - 1);

	assert_true(last >= 0);
	d->model_index = (size_t)last;
	d->seg = seg;
	d->batch_pos = position_in_segment(t, (size_t)last, seg->base_offset);
	d->byte_pos = d->batch_pos + t->model.batches[last].len / 2;
	assert_int_equal(segment_base_of(t, t->model.batches[last].base_offset), seg->base_offset);
}

/* The batch at the active segment's last index checkpoint: the crash path starts its scan there, so an intact
 * log's recovery scan covers exactly the bytes from it to the end of the segment. Its bytes were fsynced before
 * the checkpoint was written, so damage in it is corruption, not a torn write. */
static void damage_at_active_checkpoint(struct lt_fixture *fx, const struct torn_log *t, struct damage *d)
{
	const struct lt_segment *seg = &t->segs[t->seg_count - 1];
	char probe[PATH_MAX];
	struct sl_log *log = NULL;
	struct sl_log_stats st;
	uint64_t checkpoint;
	long b;

	assert_int_equal(lt_path_join(probe, sizeof(probe), fx->root, "probe"), 0);
	copy_partition(fx->dir, probe);
	assert_int_equal(open_log_at(fx, probe, 0, &log), 0);
	sl_log_get_stats(log, &st);
	assert_int_equal(sl_log_close(log), 0);
	assert_int_equal(sl_fs_rm_rf(probe), 0);
	assert_true(st.recovered_tail_bytes > 0 && (int64_t)st.recovered_tail_bytes < seg->file_bytes);
	checkpoint = (uint64_t)seg->file_bytes - st.recovered_tail_bytes;
	/* It precedes the last batch (torn_log_build's layout), and a batch starts there. */
	assert_true(checkpoint < t->last_pos);
	for (b = (long)t->model.count - 1; b >= 0; b--)
		if (t->model.batches[b].base_offset >= seg->base_offset &&
		    position_in_segment(t, (size_t)b, seg->base_offset) == checkpoint)
			break;
	if (b < 0)
		fail_msg("recovery scanned the last %" PRIu64 " bytes of %s: byte %" PRIu64 " starts no batch",
		         st.recovered_tail_bytes, seg->name, checkpoint);
	d->model_index = (size_t)b;
	d->seg = seg;
	d->batch_pos = checkpoint;
	d->byte_pos = checkpoint + t->model.batches[b].len / 2;
}

static void assert_open_refused_naming_the_damage(struct lt_fixture *fx, const struct damage *d)
{
	struct sl_log *log = NULL;
	char pos[32];
	int rc = open_log_at(fx, fx->dir, 0, &log);

	if (rc != -EUCLEAN) {
		if (rc == 0)
			sl_log_close(log);
		fail_msg("open with a garbled byte at %" PRIu64 " of %s (batch at %" PRIu64 "): rc %d, not -EUCLEAN",
		         d->byte_pos, d->seg->name, d->batch_pos, rc);
	}
	snprintf(pos, sizeof(pos), "%" PRIu64, d->batch_pos);
	print_message("refused as expected: %s\n", fx->err);
	if (!strstr(fx->err, d->seg->name) || !strstr(fx->err, pos))
		fail_msg("the error does not name segment %s and position %s: \"%s\"", d->seg->name, pos, fx->err);
	/* Refusing changed nothing: it refuses again the same way. */
	assert_int_equal(open_log_at(fx, fx->dir, 0, &log), -EUCLEAN);
}

static void damage_file(struct lt_fixture *fx, const struct damage *d)
{
	char path[PATH_MAX];

	assert_int_equal(lt_path_join(path, sizeof(path), fx->dir, d->seg->name), 0);
	assert_int_equal(lt_file_xor_byte(path, d->byte_pos, 0xff), 0);
}

static void test_damage_in_an_older_sealed_segment_refuses_open_with_euclean(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct torn_log t;
	struct damage d;

	torn_log_build(fx, &t, lt_seed("damage sealed", 203));
	damage_in_older_sealed_segment(&t, &d);
	damage_file(fx, &d);
	assert_open_refused_naming_the_damage(fx, &d);
	torn_log_free(&t);
}

static void test_damage_at_the_active_checkpoint_refuses_open_with_euclean(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct torn_log t;
	struct damage d;

	torn_log_build(fx, &t, lt_seed("damage checkpoint", 204));
	damage_at_active_checkpoint(fx, &t, &d);
	damage_file(fx, &d);
	assert_open_refused_naming_the_damage(fx, &d);
	torn_log_free(&t);
}

static void test_other_partitions_open_while_one_is_corrupt(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct torn_log t;
	struct damage d;
	char other[PATH_MAX];
	struct sl_log *log = NULL;
	struct lt_scan scan;

	torn_log_build(fx, &t, lt_seed("other partitions", 205));
	/* Another partition with the same bytes, undamaged and also without a marker. */
	assert_int_equal(lt_path_join(other, sizeof(other), fx->root, "p1"), 0);
	copy_partition(fx->dir, other);
	damage_in_older_sealed_segment(&t, &d);
	damage_file(fx, &d);
	assert_int_equal(open_log_at(fx, fx->dir, 0, &log), -EUCLEAN);
	if (open_log_at(fx, other, 0, &fx->log) != 0)
		fail_msg("the undamaged partition did not open: %s", fx->err);
	assert_int_equal(lt_log_scan(fx->log, &scan), 0);
	assert_int_equal(lt_model_check_scan(&t.model, &scan), 0);
	lt_scan_free(&scan);
	assert_int_equal(lt_fixture_close(fx), 0);
	torn_log_free(&t);
}

/* A file named like the segment's .log with ".corrupt-" after it exists in dir: the damaged bytes kept aside. */
static int damaged_bytes_kept(const char *dir, const char *seg_name)
{
	struct lt_segment *segs;
	size_t n;
	char prefix[96], cmd[PATH_MAX + 128];
	FILE *p;
	int found = 0;

	(void)segs;
	(void)n;
	snprintf(prefix, sizeof(prefix), "%s.corrupt-", seg_name);
	snprintf(cmd, sizeof(cmd), "ls '%s'", dir);
	p = popen(cmd, "r");
	if (p == NULL)
		return 0;
	char line[256];
	while (fgets(line, sizeof(line), p) != NULL)
		found |= strncmp(line, prefix, strlen(prefix)) == 0;
	pclose(p);
	return found;
}

/* The log holds model m (lost ranges skipped) and exactly the one lost range [first, next). */
static void assert_log_is(struct lt_fixture *fx, const struct lt_model *m, int64_t first, int64_t next)
{
	struct lt_scan scan;
	const struct sl_log_lost *lost;

	assert_int_equal(sl_log_lost_ranges(fx->log, &lost), 1);
	assert_int_equal(lost[0].first, first);
	assert_int_equal(lost[0].next, next);
	assert_int_equal(lt_log_scan(fx->log, &scan), 0);
	assert_int_equal(scan.lost_count, 1);
	assert_int_equal(scan.lost_first[0], first);
	assert_int_equal(scan.lost_next[0], next);
	assert_int_equal(lt_model_check_scan(m, &scan), 0);
	lt_scan_free(&scan);
}

/* Repair mode opens the damaged log and drops only the damaged batch: every batch before and after it keeps its
 * offsets, its offsets are one lost range that reads answer with -ENODATA and where the log goes on, its bytes are
 * kept aside, appends go on at the end, and the log opens normally afterwards, after a clean close or a crash.
 * (Repair used to cut the log at the damage: one flipped byte took every later batch out of service.) */
static void assert_repair_drops_only_the_damaged_batch(struct lt_fixture *fx, const struct torn_log *t,
                                                       const struct damage *d)
{
	struct lt_model m = {0};
	struct sl_log_stats st;
	struct sl_log_span span;
	const struct lt_model_batch *bad = &t->model.batches[d->model_index];
	struct lt_batch_spec s = t->model.batches[0].spec;
	int64_t end = t->model.batches[t->model.count - 1].last_offset + 1;
	const struct sl_log_lost *lost;
	char marker[PATH_MAX];
	int rc = open_log_at(fx, fx->dir, 1, &fx->log);

	if (rc != 0)
		fail_msg("repair-mode open: %d (%s)", rc, fx->err);
	print_message("repair said: %s\n", fx->err);
	if (!strstr(fx->err, "lost"))
		fail_msg("the repair report does not name the offsets lost: \"%s\"", fx->err);
	assert_true(damaged_bytes_kept(fx->dir, d->seg->name));
	assert_int_equal(sl_log_next_offset(fx->log), end);
	assert_int_equal(sl_log_lost_ranges(fx->log, &lost), 1);
	assert_true(lost[0].found_now);
	assert_int_equal(sl_log_locate(fx->log, bad->base_offset, 1, &span), -ENODATA);
	assert_int_equal(span.next_offset, bad->last_offset + 1);
	for (size_t i = 0; i < t->model.count; i++) {
		const struct lt_model_batch *b = &t->model.batches[i];

		if (i != d->model_index)
			assert_int_equal(lt_model_push(&m, &b->spec, b->bytes, b->len, b->base_offset, b->last_offset),
			                 0);
	}
	assert_log_is(fx, &m, bad->base_offset, bad->last_offset + 1);
	assert_int_equal(lt_append_spec(fx, &m, &s, SL_DURABILITY_FSYNC, NULL, NULL), 0);
	assert_int_equal(m.batches[m.count - 1].base_offset, end);
	assert_int_equal(lt_fixture_close(fx), 0);

	/* After a clean close: no scan, the same log. */
	assert_int_equal(lt_fixture_open(fx), 0);
	sl_log_get_stats(fx->log, &st);
	assert_int_equal(st.clean_open, 1);
	assert_log_is(fx, &m, bad->base_offset, bad->last_offset + 1);
	assert_int_equal(sl_log_lost_ranges(fx->log, &lost), 1);
	assert_false(lost[0].found_now);
	assert_int_equal(lt_fixture_close(fx), 0);

	/* After a crash (no marker): the recorded gap is not damage, the log opens and is the same. */
	assert_int_equal(lt_path_join(marker, sizeof(marker), fx->dir, LT_CLEAN_MARKER), 0);
	assert_int_equal(unlink(marker), 0);
	if (lt_fixture_open(fx) != 0)
		fail_msg("open after a crash of the repaired log: %s", fx->err);
	assert_log_is(fx, &m, bad->base_offset, bad->last_offset + 1);
	assert_int_equal(lt_fixture_close(fx), 0);
	lt_model_free(&m);
}

static void test_repair_mode_drops_only_the_damaged_batch_of_a_sealed_segment(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct torn_log t;
	struct damage d;

	torn_log_build(fx, &t, lt_seed("repair sealed", 206));
	damage_in_older_sealed_segment(&t, &d);
	damage_file(fx, &d);
	assert_repair_drops_only_the_damaged_batch(fx, &t, &d);
	torn_log_free(&t);
}

static void test_repair_mode_drops_only_the_damaged_batch_at_the_active_checkpoint(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct torn_log t;
	struct damage d;

	torn_log_build(fx, &t, lt_seed("repair checkpoint", 207));
	damage_at_active_checkpoint(fx, &t, &d);
	damage_file(fx, &d);
	assert_repair_drops_only_the_damaged_batch(fx, &t, &d);
	torn_log_free(&t);
}

/* A batch in the middle of a sealed segment: the segment is split around it. */
static void test_repair_mode_drops_only_a_damaged_batch_in_the_middle_of_a_sealed_segment(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct torn_log t;
	struct damage d;
	long first, last;

	torn_log_build(fx, &t, lt_seed("repair middle", 210));
	first = lt_model_find(&t.model, t.segs[1].base_offset);
	last = lt_model_find(&t.model, t.segs[2].base_offset - 1);
	assert_true(first >= 0 && last > first + 1);
	d.model_index = (size_t)(first + last) / 2;
	d.seg = &t.segs[1];
	d.batch_pos = position_in_segment(&t, d.model_index, t.segs[1].base_offset);
	d.byte_pos = d.batch_pos + t.model.batches[d.model_index].len / 2;
	damage_file(fx, &d);
	assert_repair_drops_only_the_damaged_batch(fx, &t, &d);
	torn_log_free(&t);
}

static void test_clean_close_leaves_the_marker_and_the_next_open_does_not_scan(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct torn_log t;
	struct sl_log_stats st;
	struct lt_scan scan;
	char marker[PATH_MAX];

	torn_log_build(fx, &t, lt_seed("clean marker", 208));
	assert_int_equal(lt_path_join(marker, sizeof(marker), fx->dir, LT_CLEAN_MARKER), 0);
	/* Recover (no marker), close cleanly, open again: the marker is consumed by the open, since a crash of the
	 * open log must not find it. */
	assert_int_equal(lt_fixture_open(fx), 0);
	assert_int_equal(lt_fixture_close(fx), 0);
	if (!lt_file_exists(marker))
		fail_msg("no clean-shutdown marker %s after a clean sl_log_close", marker);
	assert_int_equal(lt_fixture_open(fx), 0);
	if (lt_file_exists(marker))
		fail_msg("the clean-shutdown marker %s is still there while the log is open", marker);
	assert_int_equal(lt_fixture_close(fx), 0);
	assert_int_equal(lt_fixture_open(fx), 0);
	sl_log_get_stats(fx->log, &st);
	assert_int_equal(st.clean_open, 1);
	if (st.recovered_tail_bytes >= fx->cfg.index_interval_bytes)
		fail_msg("open after a clean close scanned %" PRIu64 " bytes", st.recovered_tail_bytes);
	assert_int_equal(st.truncated_bytes, 0);
	assert_int_equal(lt_log_scan(fx->log, &scan), 0);
	assert_int_equal(lt_model_check_scan(&t.model, &scan), 0);
	lt_scan_free(&scan);
	torn_log_free(&t);
}

static void test_open_without_the_marker_scans_only_the_tail_after_the_last_checkpoint(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct torn_log t;
	struct sl_log_stats st;
	struct lt_scan scan;

	torn_log_build(fx, &t, lt_seed("tail scan", 209));
	assert_int_equal(lt_fixture_open(fx), 0);
	sl_log_get_stats(fx->log, &st);
	assert_int_equal(st.clean_open, 0);
	assert_int_equal(st.truncated_bytes, 0);
	/* The last two batches at least (the checkpoint precedes them), at most an interval and a batch. */
	if (st.recovered_tail_bytes < t.last_len ||
	    st.recovered_tail_bytes > fx->cfg.index_interval_bytes + t.max_batch_len)
		fail_msg("recovery scanned %" PRIu64 " bytes; the tail after the last checkpoint is between %" PRIu64
		         " and %" PRIu64,
		         st.recovered_tail_bytes, t.last_len, fx->cfg.index_interval_bytes + t.max_batch_len);
	assert_int_equal(lt_log_scan(fx->log, &scan), 0);
	assert_int_equal(lt_model_check_scan(&t.model, &scan), 0);
	lt_scan_free(&scan);
	torn_log_free(&t);
}

#define LOG_TEST(fn) cmocka_unit_test_setup_teardown(fn, lt_fixture_setup, lt_fixture_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        LOG_TEST(test_last_batch_cut_at_any_byte_recovers_to_the_batch_before),
	        LOG_TEST(test_last_batch_garbled_at_any_byte_recovers_to_the_batch_before),
	        LOG_TEST(test_damage_in_an_older_sealed_segment_refuses_open_with_euclean),
	        LOG_TEST(test_damage_at_the_active_checkpoint_refuses_open_with_euclean),
	        LOG_TEST(test_other_partitions_open_while_one_is_corrupt),
	        LOG_TEST(test_repair_mode_drops_only_the_damaged_batch_of_a_sealed_segment),
	        LOG_TEST(test_repair_mode_drops_only_the_damaged_batch_at_the_active_checkpoint),
	        LOG_TEST(test_repair_mode_drops_only_a_damaged_batch_in_the_middle_of_a_sealed_segment),
	        LOG_TEST(test_clean_close_leaves_the_marker_and_the_next_open_does_not_scan),
	        LOG_TEST(test_open_without_the_marker_scans_only_the_tail_after_the_last_checkpoint),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
