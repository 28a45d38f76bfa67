/* The partition log on a full disk: appends that hit RLIMIT_FSIZE or a full tmpfs fail with a negative errno and
 * are never acknowledged, nothing acknowledged is lost, the log still ends on the last acknowledged batch, and
 * appends succeed again, at the next offset, once there is room. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log_test_util.h"

/* The file size limit of the child: a few dozen batches fit under it, inside the first (1 MiB) segment. */
#define FSIZE_LIMIT_BYTES      (256u * 1024)
#define FULL_SEGMENT_BYTES_MAX (1024u * 1024)
/* Bound on appends while waiting for the disk to fill: 1000 batches of ~5 KiB overflow both limits. */
#define FILL_APPENDS_MAX       1000
#define TMPFS_OPTIONS          "size=2m"
/* What the filler file leaves free on the tmpfs: room for a few dozen batches before ENOSPC. */
#define TMPFS_LEFT_FREE_BYTES  (96u * 1024)

static struct lt_fixture *fixture(void **state)
{
	return *state;
}

/* In a child, a failed check prints where and exits non-zero; cmocka's asserts must not run there. */
#define CHILD_CHECK(cond)                                                                                         \
	do {                                                                                                      \
		if (!(cond)) {                                                                                    \
			fprintf(stderr, "disk-full child: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			_exit(10);                                                                                \
		}                                                                                                 \
	} while (0)

static void spec_for(struct lt_batch_spec *s, uint64_t *rng, uint32_t index)
{
	lt_spec_random(rng, s, 10, 500, 1700000000000ll + index);
	s->record_count = 10;
	s->value_bytes = 500; /* ~5 KiB: the limit falls inside a batch, not between two */
	s->codec = SL_BATCH_CODEC_NONE;
}

/* The log holds exactly the batches of m and ends right after the last one. */
static int log_matches(struct lt_fixture *fx, const struct lt_model *m)
{
	struct lt_scan scan;
	int rc = lt_log_scan(fx->log, &scan);
	int64_t next = m->count ? m->batches[m->count - 1].last_offset + 1 : 0;

	if (rc)
		return rc;
	rc = lt_model_check_scan(m, &scan);
	if (rc == 0 && (scan.next_offset != next || sl_log_next_offset(fx->log) != next)) {
		fprintf(stderr, "log ends at %" PRId64 ", the last acknowledged batch at %" PRId64 "\n",
		        sl_log_next_offset(fx->log), next);
		rc = -EBADMSG;
	}
	lt_scan_free(&scan);
	return rc;
}

/* Append one batch and wait. *queued_out says whether sl_log_append took it (so a failure came through the
 * callback) or refused it. */
/* The level append_one asks for: written, except in the test of fsync appends. */
static enum sl_durability append_level = SL_DURABILITY_WRITTEN;

static int append_one(struct lt_fixture *fx, struct lt_model *m, const struct lt_batch_spec *s, int *queued_out)
{
	const uint8_t *p;
	size_t len;
	struct lt_append *la = calloc(1, sizeof(*la));
	int rc;

	if (!la || lt_batch_build(&fx->builder, s, &p, &len) != 0)
		return -ENOMEM;
	lt_append_init(la, NULL, malloc(len), len, append_level);
	if (!la->a.batch)
		return -ENOMEM;
	memcpy(la->a.batch, p, len);
	rc = lt_append_wait(&fx->ring, fx->log, la);
	*queued_out = la->queued;
	if (la->queued && !la->done)
		return rc; /* still in the log's hands: leak it */
	if (rc == 0 && la->status == 0)
		rc = lt_model_push(m, s, p, len, la->a.base_offset, la->a.last_offset);
	free(la->a.batch);
	free(la);
	return rc;
}

static void set_fsize_limit(rlim_t soft)
{
	struct rlimit rl;

	CHILD_CHECK(getrlimit(RLIMIT_FSIZE, &rl) == 0);
	rl.rlim_cur = soft;
	CHILD_CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0);
}

/* Open the log in the child with a ring of its own (the parent's must not be shared across fork). */
static void child_open(struct lt_fixture *fx)
{
	CHILD_CHECK(sl_ring_init(&fx->ring, 0) == 0);
	fx->cfg.segment_bytes_max = FULL_SEGMENT_BYTES_MAX;
	CHILD_CHECK(lt_fixture_open(fx) == 0);
}

/* Append until an append fails; returns its status, after checking it came through the callback. */
static int child_fill(struct lt_fixture *fx, struct lt_model *m, uint64_t *rng, uint32_t *index)
{
	for (int i = 0; i < FILL_APPENDS_MAX; i++) {
		struct lt_batch_spec s;
		int queued = 0, rc;

		spec_for(&s, rng, (*index)++);
		rc = append_one(fx, m, &s, &queued);
		if (rc == 0)
			continue;
		fprintf(stderr, "disk-full child: append %d failed with %d (%s), %s\n", i, rc, strerror(-rc),
		        queued ? "through its callback" : "refused by sl_log_append");
		CHILD_CHECK(rc == -EFBIG || rc == -ENOSPC);
		CHILD_CHECK(queued);
		return rc;
	}
	CHILD_CHECK(!"no append failed under the file size limit");
	return 0;
}

/* The child of the RLIMIT_FSIZE test: acknowledged batches, a failure at the limit, the log unchanged by it, a
 * second failure, then the limit lifted and appends going on from the last acknowledged offset, also after a
 * reopen. Exits 0 when every check held. */
static void fsize_child(struct lt_fixture *fx)
{
	struct lt_model m = {0};
	uint64_t rng = 401;
	uint32_t index = 0;
	int64_t acked_next;
	struct lt_batch_spec s;
	int queued = 0;

	signal(SIGXFSZ, SIG_IGN);
	child_open(fx);
	set_fsize_limit(FSIZE_LIMIT_BYTES);
	child_fill(fx, &m, &rng, &index);
	CHILD_CHECK(m.count > 10);
	acked_next = m.batches[m.count - 1].last_offset + 1;
	CHILD_CHECK(log_matches(fx, &m) == 0);
	/* Still full: the next append fails too, and changes nothing. */
	spec_for(&s, &rng, index++);
	CHILD_CHECK(append_one(fx, &m, &s, &queued) < 0);
	CHILD_CHECK(log_matches(fx, &m) == 0);

	set_fsize_limit(RLIM_INFINITY);
	for (int i = 0; i < 20; i++) {
		spec_for(&s, &rng, index++);
		CHILD_CHECK(append_one(fx, &m, &s, &queued) == 0);
	}
	CHILD_CHECK(m.batches[m.count - 20].base_offset == acked_next);
	CHILD_CHECK(log_matches(fx, &m) == 0);
	CHILD_CHECK(lt_fixture_close(fx) == 0);
	CHILD_CHECK(lt_fixture_open(fx) == 0);
	CHILD_CHECK(log_matches(fx, &m) == 0);
	CHILD_CHECK(lt_fixture_close(fx) == 0);
	_exit(0);
}

/* The fsync variant, one append at a time: each one's fdatasync is linked to its write (log.c, sync_link), and
 * the write that meets the limit cancels it. That failure must stay an ordinary write failure (the append fails,
 * the log is cut back, appends at fsync go on), never a failed fdatasync, which would stop the log. */
static void fsize_fsync_child(struct lt_fixture *fx)
{
	struct lt_model m = {0};
	uint64_t rng = 403;
	uint32_t index = 0;
	struct lt_batch_spec s;
	struct sl_log_stats st;
	int queued = 0;

	signal(SIGXFSZ, SIG_IGN);
	append_level = SL_DURABILITY_FSYNC;
	child_open(fx);
	set_fsize_limit(FSIZE_LIMIT_BYTES);
	child_fill(fx, &m, &rng, &index);
	CHILD_CHECK(m.count > 10);
	sl_log_get_stats(fx->log, &st);
	fprintf(stderr, "disk-full child: %" PRIu64 " fdatasyncs linked to their write, %" PRIu64 " in all\n",
	        st.linked_fsync_count, st.fsync_count);
	CHILD_CHECK(st.linked_fsync_count > 0);
	CHILD_CHECK(log_matches(fx, &m) == 0);

	set_fsize_limit(RLIM_INFINITY);
	for (int i = 0; i < 20; i++) {
		spec_for(&s, &rng, index++);
		CHILD_CHECK(append_one(fx, &m, &s, &queued) == 0);
	}
	CHILD_CHECK(log_matches(fx, &m) == 0);
	CHILD_CHECK(lt_fixture_close(fx) == 0);
	CHILD_CHECK(lt_fixture_open(fx) == 0);
	CHILD_CHECK(log_matches(fx, &m) == 0);
	CHILD_CHECK(lt_fixture_close(fx) == 0);
	_exit(0);
}

/* The child of the in-flight variant: 32 appends queued at once run into the limit. The acknowledged ones are a
 * prefix with consecutive offsets, every one after the first failure fails too (no gap), and the log ends after
 * the last acknowledged one. */
static void fsize_inflight_child(struct lt_fixture *fx)
{
	struct lt_model m = {0};
	struct lt_acks acks = {0};
	struct lt_append v[32];
	struct lt_batch_spec specs[32];
	uint64_t rng = 402;
	uint32_t index = 0;
	size_t ok = 0;
	struct lt_batch_spec s;
	int queued = 0;

	signal(SIGXFSZ, SIG_IGN);
	child_open(fx);
	/* Most of the way to the limit one at a time, then the rest all at once. */
	for (int i = 0; i < 30; i++) {
		spec_for(&s, &rng, index++);
		CHILD_CHECK(append_one(fx, &m, &s, &queued) == 0);
	}
	set_fsize_limit(FSIZE_LIMIT_BYTES);
	for (size_t i = 0; i < 32; i++) {
		const uint8_t *p;
		size_t len;

		spec_for(&specs[i], &rng, index++);
		CHILD_CHECK(lt_batch_build(&fx->builder, &specs[i], &p, &len) == 0);
		lt_append_init(&v[i], &acks, malloc(len), len, SL_DURABILITY_WRITTEN);
		CHILD_CHECK(v[i].a.batch != NULL);
		memcpy(v[i].a.batch, p, len);
	}
	CHILD_CHECK(lt_append_all(&fx->ring, fx->log, v, 32) == 0);
	while (ok < 32 && v[ok].status == 0) {
		const uint8_t *p;
		size_t len;

		CHILD_CHECK(v[ok].a.base_offset == (m.count ? m.batches[m.count - 1].last_offset + 1 : 0));
		CHILD_CHECK(lt_batch_build(&fx->builder, &specs[ok], &p, &len) == 0);
		CHILD_CHECK(lt_model_push(&m, &specs[ok], p, len, v[ok].a.base_offset, v[ok].a.last_offset) == 0);
		ok++;
	}
	fprintf(stderr, "disk-full child: %zu of 32 in-flight appends acknowledged before the limit\n", ok);
	CHILD_CHECK(ok < 32);
	for (size_t i = ok; i < 32; i++) {
		if (v[i].status >= 0)
			fprintf(stderr, "disk-full child: append %zu acknowledged after append %zu failed\n", i, ok);
		CHILD_CHECK(v[i].status < 0);
	}
	CHILD_CHECK(v[ok].status == -EFBIG || v[ok].status == -ENOSPC);
	CHILD_CHECK(log_matches(fx, &m) == 0);

	set_fsize_limit(RLIM_INFINITY);
	spec_for(&s, &rng, index++);
	CHILD_CHECK(append_one(fx, &m, &s, &queued) == 0);
	CHILD_CHECK(log_matches(fx, &m) == 0);
	CHILD_CHECK(lt_fixture_close(fx) == 0);
	CHILD_CHECK(lt_fixture_open(fx) == 0);
	CHILD_CHECK(log_matches(fx, &m) == 0);
	CHILD_CHECK(lt_fixture_close(fx) == 0);
	_exit(0);
}

static void run_in_child(struct lt_fixture *fx, void (*child)(struct lt_fixture *))
{
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		child(fx);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("the child failed (status 0x%x): see its message above", status);
}

static void test_file_size_limit_fails_appends_cleanly_and_appends_resume_when_lifted(void **state)
{
	run_in_child(fixture(state), fsize_child);
}

static void test_file_size_limit_fails_a_linked_fsync_append_as_a_write_failure(void **state)
{
	run_in_child(fixture(state), fsize_fsync_child);
}

static void test_file_size_limit_fails_every_append_in_flight_after_the_first_failure(void **state)
{
	run_in_child(fixture(state), fsize_inflight_child);
}

/* Mount a 2 MiB tmpfs at root/mnt and put the log there. Skips unless root and the mount works. */
static void mount_small_tmpfs(struct lt_fixture *fx)
{
	char mnt[PATH_MAX];

	if (geteuid() != 0) {
		print_message("not root: no tmpfs to fill, skipped\n");
		skip();
	}
	assert_int_equal(lt_path_join(mnt, sizeof(mnt), fx->root, "mnt"), 0);
	assert_int_equal(mkdir(mnt, 0755), 0);
	if (mount("tmpfs", mnt, "tmpfs", 0, TMPFS_OPTIONS) != 0) {
		print_message("mount -t tmpfs -o %s: %s: skipped\n", TMPFS_OPTIONS, strerror(errno));
		skip();
	}
	snprintf(fx->mount_dir, sizeof(fx->mount_dir), "%s", mnt);
	assert_int_equal(lt_path_join(fx->dir, sizeof(fx->dir), mnt, "p0"), 0);
}

/* Write a file of zeros leaving left_free bytes free on the filesystem of dir. */
static void write_filler(const char *path, const char *dir, uint64_t left_free)
{
	static uint8_t zeros[64 * 1024];
	struct statvfs vfs;
	uint64_t free_bytes, want, done = 0;
	int fd;

	assert_int_equal(statvfs(dir, &vfs), 0);
	free_bytes = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	assert_true(free_bytes > left_free);
	want = free_bytes - left_free;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	while (done < want) {
		size_t n = want - done < sizeof(zeros) ? (size_t)(want - done) : sizeof(zeros);
		ssize_t w = write(fd, zeros, n);

		assert_true(w > 0);
		done += (uint64_t)w;
	}
	assert_int_equal(close(fd), 0);
}

static void test_full_tmpfs_fails_appends_with_enospc_and_appends_resume_when_space_returns(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct lt_model m = {0};
	uint64_t rng = lt_seed("tmpfs full", 403);
	uint32_t index = 0;
	char filler[PATH_MAX];
	struct lt_batch_spec s;
	int queued = 0, rc = 0;
	int64_t acked_next;

	mount_small_tmpfs(fx);
	/* 256 KiB segments: the disk fills while rolling, too. */
	fx->cfg.segment_bytes_max = 256 * 1024;
	assert_int_equal(lt_fixture_open(fx), 0);
	for (int i = 0; i < 20; i++) {
		spec_for(&s, &rng, index++);
		assert_int_equal(append_one(fx, &m, &s, &queued), 0);
	}
	assert_int_equal(lt_path_join(filler, sizeof(filler), fx->mount_dir, "filler"), 0);
	write_filler(filler, fx->mount_dir, TMPFS_LEFT_FREE_BYTES);

	for (int i = 0; i < FILL_APPENDS_MAX; i++) {
		spec_for(&s, &rng, index++);
		rc = append_one(fx, &m, &s, &queued);
		if (rc)
			break;
	}
	print_message("append failed with %d (%s), %s, after %zu acknowledged batches\n", rc, strerror(-rc),
	              queued ? "through its callback" : "refused by sl_log_append", m.count);
	assert_int_equal(rc, -ENOSPC);
	assert_int_equal(log_matches(fx, &m), 0);
	acked_next = m.batches[m.count - 1].last_offset + 1;

	assert_int_equal(unlink(filler), 0);
	for (int i = 0; i < 20; i++) {
		spec_for(&s, &rng, index++);
		rc = append_one(fx, &m, &s, &queued);
		if (rc)
			fail_msg("append %d after the filler was removed: %d (%s)", i, rc, strerror(-rc));
	}
	assert_int_equal(m.batches[m.count - 20].base_offset, acked_next);
	assert_int_equal(log_matches(fx, &m), 0);
	assert_int_equal(lt_fixture_close(fx), 0);
	assert_int_equal(lt_fixture_open(fx), 0);
	assert_int_equal(log_matches(fx, &m), 0);
	assert_int_equal(lt_fixture_close(fx), 0);
	assert_int_equal(umount2(fx->mount_dir, 0), 0);
	fx->mount_dir[0] = '\0';
	lt_model_free(&m);
}

#define LOG_TEST(fn) cmocka_unit_test_setup_teardown(fn, lt_fixture_setup, lt_fixture_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        LOG_TEST(test_file_size_limit_fails_appends_cleanly_and_appends_resume_when_lifted),
	        LOG_TEST(test_file_size_limit_fails_a_linked_fsync_append_as_a_write_failure),
	        LOG_TEST(test_file_size_limit_fails_every_append_in_flight_after_the_first_failure),
	        LOG_TEST(test_full_tmpfs_fails_appends_with_enospc_and_appends_resume_when_space_returns),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
