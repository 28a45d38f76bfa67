/* The one atomic file replacement (proto/base/fs.h) and its users: temp file written and fsynced, renamed over
 * the target, then the directory fsynced. Without the last step a power cut after the rename can lose the new
 * name, which is what the producer-state snapshot used to do. The order of calls is checked through the hooks. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/storage/producer_state.h"
#include "proto/base/fs.h"
#include "tests/unit/log_test_util.h"

#define EVENTS_MAX 16

static char events[EVENTS_MAX][16];
static int event_count;
static int fail_rename;

static void record(const char *what)
{
	if (event_count < EVENTS_MAX)
		snprintf(events[event_count++], sizeof(events[0]), "%s", what);
}

static int hook_fsync(int fd, int is_dir)
{
	record(is_dir ? "fsync-dir" : "fsync-file");
	return fsync(fd) < 0 ? -errno : 0;
}

static int hook_rename(int dir_fd, const char *from, const char *to)
{
	record("rename");
	if (fail_rename)
		return -EIO;
	return renameat(dir_fd, from, dir_fd, to) < 0 ? -errno : 0;
}

static int setup(void **state)
{
	static char dir[256];
	assert_int_equal(lt_tmpdir_make(dir, sizeof(dir)), 0);
	*state = dir;
	event_count = 0;
	fail_rename = 0;
	sl_fs_hooks.fsync_fd = hook_fsync;
	sl_fs_hooks.rename_at = hook_rename;
	return 0;
}

static int teardown(void **state)
{
	memset(&sl_fs_hooks, 0, sizeof(sl_fs_hooks));
	sl_fs_rm_rf(*state);
	return 0;
}

static void assert_order_file_rename_dir(void)
{
	assert_int_equal(event_count, 3);
	assert_string_equal(events[0], "fsync-file");
	assert_string_equal(events[1], "rename");
	assert_string_equal(events[2], "fsync-dir");
}

static void replace_fsyncs_the_directory_after_the_rename(void **state)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/meta", (char *)*state);
	assert_int_equal(sl_fs_replace_atomic(path, "one\n", 4), 0);
	assert_order_file_rename_dir();
	char buf[16];
	size_t len;
	assert_int_equal(sl_fs_read_small(path, buf, sizeof(buf), &len), 0);
	assert_string_equal(buf, "one\n");
}

static void failed_rename_keeps_the_old_file_and_no_temp(void **state)
{
	char path[512], tmp[600];
	snprintf(path, sizeof(path), "%s/meta", (char *)*state);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	assert_int_equal(sl_fs_replace_atomic(path, "old\n", 4), 0);
	fail_rename = 1;
	assert_int_equal(sl_fs_replace_atomic(path, "new\n", 4), -EIO);
	char buf[16];
	assert_int_equal(sl_fs_read_small(path, buf, sizeof(buf), NULL), 0);
	assert_string_equal(buf, "old\n");
	assert_false(lt_file_exists(tmp));
}

static void producer_snapshot_uses_the_atomic_replacement(void **state)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/producers.snapshot", (char *)*state);
	struct sl_producer_state s;
	sl_producer_state_init(&s);
	assert_int_equal(sl_producer_state_save(&s, path, 42), 0);
	assert_order_file_rename_dir();
	int64_t at = -1;
	assert_int_equal(sl_producer_state_load(&s, path, &at), 0);
	assert_int_equal(at, 42);
	sl_producer_state_free(&s);
}

static void rm_rf_removes_a_tree_and_ignores_a_missing_path(void **state)
{
	char sub[512], file[600];
	snprintf(sub, sizeof(sub), "%s/a/b/c", (char *)*state);
	assert_int_equal(sl_fs_mkdir_p(sub), 0);
	snprintf(file, sizeof(file), "%s/f", sub);
	assert_int_equal(sl_fs_replace_atomic(file, "x", 1), 0);
	snprintf(sub, sizeof(sub), "%s/a", (char *)*state);
	assert_int_equal(sl_fs_rm_rf(sub), 0);
	assert_false(lt_file_exists(sub));
	assert_int_equal(sl_fs_rm_rf(sub), 0);
}

static void data_dir_lock_is_exclusive_and_names_the_holder(void **state)
{
	int fd;
	pid_t holder;
	assert_int_equal(sl_fs_lock_data_dir(*state, &fd, &holder), 0);
	/* flock locks belong to the open file description: a second open in the same process conflicts too. */
	int fd2 = -1;
	assert_int_equal(sl_fs_lock_data_dir(*state, &fd2, &holder), -EWOULDBLOCK);
	assert_int_equal(holder, getpid());
	close(fd);
	assert_int_equal(sl_fs_lock_data_dir(*state, &fd2, &holder), 0);
	close(fd2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(replace_fsyncs_the_directory_after_the_rename, setup, teardown),
	        cmocka_unit_test_setup_teardown(failed_rename_keeps_the_old_file_and_no_temp, setup, teardown),
	        cmocka_unit_test_setup_teardown(producer_snapshot_uses_the_atomic_replacement, setup, teardown),
	        cmocka_unit_test_setup_teardown(rm_rf_removes_a_tree_and_ignores_a_missing_path, setup, teardown),
	        cmocka_unit_test_setup_teardown(data_dir_lock_is_exclusive_and_names_the_holder, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
