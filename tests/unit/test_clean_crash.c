/* Crash safety of a clean: a child process runs a clean of a log and dies (1) at each step of the swap (every new
 * file written, the manifest durable, after each rename, old files removed, manifest removed) and (2) by SIGKILL at
 * a random moment of a throttled clean, 24 rounds. Each time the parent reopens the log and checks that recovery
 * left no cleaner file behind, that the folder holds the old set (before the commit point) or the new set (after
 * it), and that a replay from the start still reaches the state of the whole history. About 8 s. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clean_test_util.h"

#define KEYS              200
#define RECORDS           2500
#define SEGMENT_BYTES     (8u * 1024)
#define KILL_ROUNDS       24
/* The killed cleans are throttled to this, so that a clean of ~300 KiB of I/O lasts ~400 ms and a kill lands
 * anywhere in it. */
#define KILL_BYTES_PER_S  (768u * 1024)
#define KILL_DELAY_MS_MAX 450

static enum sl_clean_step crash_step;
static int crash_occurrence; /* die at this occurrence of crash_step */

static void crash_hook(enum sl_clean_step s)
{
	if (s == crash_step && --crash_occurrence == 0)
		_exit(0);
}

/* The child: open the log with a ring of its own, clean it, exit (or die in the hook, or by SIGKILL). */
static void child_clean(struct lt_fixture *fx, uint64_t bytes_per_s)
{
	struct sl_ring ring;
	struct sl_log *log;
	char err[512];
	if (sl_ring_init(&ring, 0) < 0 || sl_log_open(&ring, fx->dir, &fx->cfg, &log, err, sizeof(err)) < 0)
		_exit(3);
	struct sl_clean_params p;
	ct_params(&p);
	p.bytes_per_s_max = bytes_per_s;
	struct sl_clean_job *job;
	if (sl_clean_prepare(log, &p, &job) < 0)
		_exit(4);
	int rc = sl_clean_run(job);
	_exit(rc == 0 ? 0 : 5);
}

static int leftovers(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL)
		if (strstr(de->d_name, ".cleaned") || strstr(de->d_name, "cleaner.swap"))
			n++;
	if (d)
		closedir(d);
	return n;
}

/* Reopen after the child died and check the three promises. Returns 1 when the new set is there. */
static int check_after_crash(struct lt_fixture *fx, const struct ct_stream *s, uint64_t bytes_before)
{
	assert_int_equal(lt_fixture_open(fx), 0);
	assert_int_equal(leftovers(fx->dir), 0);
	struct ct_state *want = malloc(sizeof(*want)), *got = malloc(sizeof(*got));
	assert_non_null(want);
	assert_non_null(got);
	ct_state_of_stream(s, s->count, want);
	assert_int_equal(ct_state_of_log(fx->log, s, got), 0);
	assert_int_equal(ct_state_compare(want, got, 0), 0);
	free(want);
	free(got);
	struct sl_log_stats st;
	sl_log_get_stats(fx->log, &st);
	uint64_t dirty, clean;
	sl_clean_dirty_ratio(fx->log, &dirty, &clean);
	int new_set = st.bytes < bytes_before;
	/* Old set: every sealed segment as it was. New set: every sealed segment compacted. Never a mix. */
	assert_true(new_set ? dirty == 0 && clean > 0 : clean == 0 && st.bytes == bytes_before);
	assert_int_equal(lt_fixture_close(fx), 0);
	return new_set;
}

/* A log with RECORDS records, sealed, closed; its copy in backup to restore before each round. */
static void make_log(struct lt_fixture *fx, struct ct_stream *s, char *backup, size_t cap, uint64_t *bytes_out)
{
	fx->cfg.segment_bytes_max = SEGMENT_BYTES;
	uint64_t rng = lt_seed("clean_crash", 0xc1ea4);
	assert_int_equal(lt_fixture_open(fx), 0);
	assert_int_equal(ct_stream_gen(&rng, s, RECORDS, KEYS), 0);
	assert_int_equal(ct_append(fx, &rng, s, 0, s->count), 0);
	assert_int_equal(ct_roll_and_seal(fx), 0);
	struct sl_log_stats st;
	sl_log_get_stats(fx->log, &st);
	*bytes_out = st.bytes;
	assert_int_equal(lt_fixture_close(fx), 0);
	assert_int_equal(lt_path_join(backup, cap, fx->root, "backup"), 0);
	assert_int_equal(lt_copy_tree(fx->dir, backup), 0);
}

static void restore(struct lt_fixture *fx, const char *backup)
{
	assert_int_equal(sl_fs_rm_rf(fx->dir), 0);
	assert_int_equal(lt_copy_tree(backup, fx->dir), 0);
}

static void test_crash_at_each_step_leaves_old_or_new_set(void **state)
{
	struct lt_fixture *fx = *state;
	struct ct_stream *s = calloc(1, sizeof(*s));
	char backup[PATH_MAX];
	uint64_t bytes_before;
	assert_non_null(s);
	make_log(fx, s, backup, sizeof(backup), &bytes_before);
	static const struct {
		enum sl_clean_step step;
		int occurrence;
		int committed;
	} cases[] = {
	        {SL_CLEAN_STEP_WRITTEN, 1, 0}, {SL_CLEAN_STEP_COMMITTED, 1, 1}, {SL_CLEAN_STEP_RENAMED, 1, 1},
	        {SL_CLEAN_STEP_RENAMED, 2, 1}, {SL_CLEAN_STEP_RENAMED, 3, 1},   {SL_CLEAN_STEP_RENAMED, 5, 1},
	        {SL_CLEAN_STEP_REMOVED, 1, 1}, {SL_CLEAN_STEP_DONE, 1, 1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		restore(fx, backup);
		crash_step = cases[i].step;
		crash_occurrence = cases[i].occurrence;
		sl_clean_step_hook = crash_hook;
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			child_clean(fx, 0);
		sl_clean_step_hook = NULL;
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		int new_set = check_after_crash(fx, s, bytes_before);
		assert_int_equal(new_set, cases[i].committed);
	}
	ct_stream_free(s);
	free(s);
}

static void test_kill_during_clean_leaves_old_or_new_set(void **state)
{
	struct lt_fixture *fx = *state;
	struct ct_stream *s = calloc(1, sizeof(*s));
	char backup[PATH_MAX];
	uint64_t bytes_before;
	assert_non_null(s);
	make_log(fx, s, backup, sizeof(backup), &bytes_before);
	uint64_t rng = lt_seed("kill_during_clean", 0x4b111);
	int old_sets = 0, new_sets = 0;
	for (int round = 0; round < KILL_ROUNDS; round++) {
		restore(fx, backup);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			child_clean(fx, KILL_BYTES_PER_S);
		int64_t delay_ms = lt_rand_range(&rng, 0, KILL_DELAY_MS_MAX);
		struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000};
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0));
		if (check_after_crash(fx, s, bytes_before))
			new_sets++;
		else
			old_sets++;
	}
	printf("# %d rounds: %d left the old set, %d the new set\n", KILL_ROUNDS, old_sets, new_sets);
	ct_stream_free(s);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_crash_at_each_step_leaves_old_or_new_set, lt_fixture_setup,
	                                        lt_fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_kill_during_clean_leaves_old_or_new_set, lt_fixture_setup,
	                                        lt_fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
