/* The users file (proto/users.c): what is written reads back the same, sorted; a damaged file is refused whole
 * with its line number; names are checked; the file holds verifiers, never the password; saving creates
 * DATA/security with mode 0700. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "proto/base/fs.h"
#include "proto/users.h"
#include "log_test_util.h"

static void verifier(const char *password, struct sl_scram_verifier *v)
{
	assert_int_equal(sl_scram_verifier_new(password, strlen(password), 4096, v), 0);
}

static void written_file_reads_back_sorted(void **state)
{
	struct sl_users u = {0}, back;
	struct sl_scram_verifier va, vb;
	int created = -1;
	verifier("pa", &va);
	verifier("pb", &vb);
	assert_int_equal(sl_users_put(&u, "zed", &va, &created), 0);
	assert_int_equal(created, 1);
	assert_int_equal(sl_users_put(&u, "alice", &vb, &created), 0);
	assert_int_equal(sl_users_put(&u, "alice", &va, &created), 0); /* replaced, not added */
	assert_int_equal(created, 0);
	assert_int_equal(u.count, 2);
	char *text, err[256];
	size_t len;
	assert_int_equal(sl_users_format(&u, &text, &len), 0);
	assert_int_equal(sl_users_parse(text, len, &back, err, sizeof(err)), 0);
	assert_int_equal(back.count, 2);
	assert_string_equal(back.items[0].name, "alice");
	assert_string_equal(back.items[1].name, "zed");
	assert_memory_equal(&back.items[0].verifier, &va, sizeof(va));
	assert_non_null(sl_users_find(&back, "zed"));
	assert_null(sl_users_find(&back, "bob"));
	/* Only verifiers: the password is nowhere in the text. */
	assert_null(strstr(text, "pa "));
	free(text);
	assert_int_equal(sl_users_remove(&back, "alice"), 0);
	assert_int_equal(sl_users_remove(&back, "alice"), -ENOENT);
	assert_int_equal(back.count, 1);
	sl_users_free(&back);
	sl_users_free(&u);
}

static void damaged_file_is_refused_with_its_line(void **state)
{
	static const struct {
		const char *text;
		const char *err;
	} bad[] = {
	        {"# c\nalice SCRAM-SHA-1 4096 AAAA "
	         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
	         "line 2: mechanism"},
	        {"alice SCRAM-SHA-256 100 AAAA AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= "
	         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
	         "line 1: iterations"},
	        {"alice SCRAM-SHA-256 4096 AAAA AAAA AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", "line 1: stored"},
	        {"al ice SCRAM-SHA-256 4096 AAAA AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= "
	         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
	         "line 1: more than six fields"},
	        {"bad/name SCRAM-SHA-256 4096 AAAA AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= "
	         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
	         "line 1: user name"},
	        {"alice SCRAM-SHA-256 4096 AAAA AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= "
	         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\nalice SCRAM-SHA-256 4096 AAAA "
	         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
	         "line 3: user listed twice"},
	        {"alice SCRAM-SHA-256 4096 AAAA AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= "
	         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
	         "line 1: the last line has no newline"},
	        {"alice SCRAM-SHA-256 4096 AAAA AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", "line 1: expected"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sl_users u;
		char err[256] = "";
		assert_int_equal(sl_users_parse(bad[i].text, strlen(bad[i].text), &u, err, sizeof(err)), -EINVAL);
		if (strncmp(err, bad[i].err, strlen(bad[i].err)) != 0)
			fail_msg("case %zu: error '%s', want '%s...'", i, err, bad[i].err);
		assert_int_equal(u.count, 0);
	}
}

static void user_names_are_checked(void **state)
{
	assert_int_equal(sl_user_name_check("alice"), 0);
	assert_int_equal(sl_user_name_check("svc.billing-01@prod"), 0);
	assert_int_equal(sl_user_name_check(""), -EINVAL);
	assert_int_equal(sl_user_name_check("a b"), -EINVAL);
	assert_int_equal(sl_user_name_check("a,b"), -EINVAL);
	assert_int_equal(sl_user_name_check("*"), -EINVAL);
	char longname[70];
	memset(longname, 'a', 65);
	longname[65] = '\0';
	assert_int_equal(sl_user_name_check(longname), -EINVAL);
	longname[64] = '\0';
	assert_int_equal(sl_user_name_check(longname), 0);
}

static void save_creates_a_private_directory_and_load_reads_it(void **state)
{
	char dir[256];
	assert_int_equal(lt_tmpdir_make(dir, sizeof(dir)), 0);
	struct sl_users u = {0}, back;
	char err[256];
	/* No file yet: no users, not an error. */
	assert_int_equal(sl_users_load(dir, &back, err, sizeof(err)), 0);
	assert_int_equal(back.count, 0);
	struct sl_scram_verifier v;
	verifier("pw", &v);
	assert_int_equal(sl_users_put(&u, "admin", &v, NULL), 0);
	assert_int_equal(sl_users_save(dir, &u), 0);
	char path[512];
	snprintf(path, sizeof(path), "%s/security", dir);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(sl_users_load(dir, &back, err, sizeof(err)), 0);
	assert_int_equal(back.count, 1);
	assert_string_equal(back.items[0].name, "admin");
	sl_users_free(&back);
	sl_users_free(&u);
	assert_int_equal(sl_fs_rm_rf(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(written_file_reads_back_sorted),
	        cmocka_unit_test(damaged_file_is_refused_with_its_line),
	        cmocka_unit_test(user_names_are_checked),
	        cmocka_unit_test(save_creates_a_private_directory_and_load_reads_it),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
