/* The ACL model (broker/acl.c): default deny, literal, prefix and "*" names, "*" principals, describe implied by
 * the other operations, operations that belong to another resource type refused, and the file read back as it
 * was written, a damaged one refused with its line. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/acl.h"
#include "proto/base/fs.h"
#include "log_test_util.h"

static struct sl_acl acl(const char *principal, enum sl_acl_resource r, const char *name, int prefix, enum sl_acl_op op)
{
	struct sl_acl a;
	memset(&a, 0, sizeof(a));
	snprintf(a.principal, sizeof(a.principal), "%s", principal);
	a.resource = r;
	snprintf(a.name, sizeof(a.name), "%s", name);
	a.prefix = prefix;
	a.op = op;
	return a;
}

static void add(struct sl_acls *t, struct sl_acl a)
{
	int created;
	assert_int_equal(sl_acls_add(t, &a, &created), 0);
	assert_int_equal(created, 1);
}

static void nothing_is_allowed_without_an_acl(void **state)
{
	struct sl_acls t = {0};
	assert_false(sl_acls_allows(&t, "alice", SL_ACL_TOPIC, "orders", SL_ACL_PRODUCE));
	assert_false(sl_acls_allows(&t, "alice", SL_ACL_CLUSTER, "", SL_ACL_ADMIN));
	add(&t, acl("bob", SL_ACL_TOPIC, "orders", 0, SL_ACL_PRODUCE));
	assert_false(sl_acls_allows(&t, "alice", SL_ACL_TOPIC, "orders", SL_ACL_PRODUCE));
	sl_acls_free(&t);
}

static void literal_prefix_and_any_names(void **state)
{
	struct sl_acls t = {0};
	add(&t, acl("alice", SL_ACL_TOPIC, "orders", 0, SL_ACL_PRODUCE));
	add(&t, acl("alice", SL_ACL_TOPIC, "billing.", 1, SL_ACL_CONSUME));
	add(&t, acl("alice", SL_ACL_GROUP, "*", 0, SL_ACL_READ));
	assert_true(sl_acls_allows(&t, "alice", SL_ACL_TOPIC, "orders", SL_ACL_PRODUCE));
	assert_false(sl_acls_allows(&t, "alice", SL_ACL_TOPIC, "orders2", SL_ACL_PRODUCE));
	assert_false(sl_acls_allows(&t, "alice", SL_ACL_TOPIC, "order", SL_ACL_PRODUCE));
	assert_true(sl_acls_allows(&t, "alice", SL_ACL_TOPIC, "billing.invoices", SL_ACL_CONSUME));
	assert_false(sl_acls_allows(&t, "alice", SL_ACL_TOPIC, "billing", SL_ACL_CONSUME));
	assert_false(sl_acls_allows(&t, "alice", SL_ACL_TOPIC, "billing.invoices", SL_ACL_PRODUCE));
	assert_true(sl_acls_allows(&t, "alice", SL_ACL_GROUP, "anything", SL_ACL_READ));
	/* The same name on another resource type is another resource. */
	assert_false(sl_acls_allows(&t, "alice", SL_ACL_GROUP, "orders", SL_ACL_DELETE));
	sl_acls_free(&t);
}

static void any_principal_means_every_authenticated_one(void **state)
{
	struct sl_acls t = {0};
	add(&t, acl("*", SL_ACL_TOPIC, "public", 0, SL_ACL_CONSUME));
	assert_true(sl_acls_allows(&t, "alice", SL_ACL_TOPIC, "public", SL_ACL_CONSUME));
	assert_true(sl_acls_allows(&t, "bob", SL_ACL_TOPIC, "public", SL_ACL_CONSUME));
	assert_false(sl_acls_allows(&t, "bob", SL_ACL_TOPIC, "public", SL_ACL_PRODUCE));
	sl_acls_free(&t);
}

static void describe_follows_from_any_other_operation(void **state)
{
	struct sl_acls t = {0};
	add(&t, acl("alice", SL_ACL_TOPIC, "orders", 0, SL_ACL_PRODUCE));
	add(&t, acl("alice", SL_ACL_GROUP, "g", 0, SL_ACL_RESET));
	assert_true(sl_acls_allows(&t, "alice", SL_ACL_TOPIC, "orders", SL_ACL_DESCRIBE));
	assert_true(sl_acls_allows(&t, "alice", SL_ACL_GROUP, "g", SL_ACL_DESCRIBE));
	/* ...but no other operation follows from describe. */
	struct sl_acls d = {0};
	add(&d, acl("alice", SL_ACL_TOPIC, "orders", 0, SL_ACL_DESCRIBE));
	assert_false(sl_acls_allows(&d, "alice", SL_ACL_TOPIC, "orders", SL_ACL_CONSUME));
	sl_acls_free(&t);
	sl_acls_free(&d);
}

static void invalid_acls_are_refused(void **state)
{
	char err[256];
	enum sl_acl_op op;
	assert_int_equal(sl_acl_op_parse(SL_ACL_GROUP, "produce", &op, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "read, describe, delete, reset"));
	assert_int_equal(sl_acl_op_parse(SL_ACL_TOPIC, "produce", &op, err, sizeof(err)), 0);
	struct sl_acl bad[] = {
	        acl("al ice", SL_ACL_TOPIC, "t", 0, SL_ACL_PRODUCE),  /* principal */
	        acl("alice", SL_ACL_TOPIC, "a/b", 0, SL_ACL_PRODUCE), /* name */
	        acl("alice", SL_ACL_TOPIC, "", 0, SL_ACL_PRODUCE),    /* empty name */
	        acl("alice", SL_ACL_TOPIC, "*", 1, SL_ACL_PRODUCE),   /* prefix of everything */
	        acl("alice", SL_ACL_GROUP, "g", 0, SL_ACL_PRODUCE),   /* a topic operation on a group */
	        acl("alice", SL_ACL_CLUSTER, "x", 0, SL_ACL_ADMIN),   /* the cluster has no name */
	        acl("alice", SL_ACL_TOPIC, "t", 0, SL_ACL_ADMIN),     /* a cluster operation on a topic */
	};
	struct sl_acls t = {0};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (sl_acl_check(&bad[i], err, sizeof(err)) != -EINVAL)
			fail_msg("case %zu accepted", i);
		assert_int_equal(sl_acls_add(&t, &bad[i], NULL), -EINVAL);
	}
	assert_int_equal(t.count, 0);
}

static void file_reads_back_and_damage_is_refused(void **state)
{
	struct sl_acls t = {0}, back;
	add(&t, acl("zed", SL_ACL_TOPIC, "orders", 0, SL_ACL_PRODUCE));
	add(&t, acl("*", SL_ACL_GROUP, "team-", 1, SL_ACL_READ));
	add(&t, acl("ops", SL_ACL_CLUSTER, "", 0, SL_ACL_ADMIN));
	int created;
	struct sl_acl dup = acl("zed", SL_ACL_TOPIC, "orders", 0, SL_ACL_PRODUCE);
	assert_int_equal(sl_acls_add(&t, &dup, &created), 0);
	assert_int_equal(created, 0);
	char dir[256], err[320];
	assert_int_equal(lt_tmpdir_make(dir, sizeof(dir)), 0);
	assert_int_equal(sl_acls_save(dir, &t), 0);
	assert_int_equal(sl_acls_load(dir, &back, err, sizeof(err)), 0);
	assert_int_equal(back.count, 3);
	assert_memory_equal(back.items, t.items, 3 * sizeof(t.items[0]));
	assert_true(sl_acls_allows(&back, "anyone", SL_ACL_GROUP, "team-a", SL_ACL_READ));
	assert_int_equal(sl_acls_remove(&back, &dup), 0);
	assert_int_equal(sl_acls_remove(&back, &dup), -ENOENT);
	sl_acls_free(&back);
	char path[512];
	snprintf(path, sizeof(path), "%s/security/acls", dir);
	static const struct {
		const char *text, *err;
	} bad[] = {
	        {"alice topic literal t produce\nalice group literal g produce\n", "line 2: a group has no operation"},
	        {"alice topic literal t produce\nalice topic literal t produce\n", "line 2: ACL listed twice"},
	        {"alice topic exact t produce\n", "line 1: pattern"},
	        {"alice cluster literal x admin\n", "line 1: a cluster ACL's name is '-'"},
	        {"alice topic literal t\n", "line 1: expected"},
	        {"alice topic literal t produce", "line 1: the last line has no newline"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(sl_fs_replace_atomic(path, bad[i].text, strlen(bad[i].text)), 0);
		assert_int_equal(sl_acls_load(dir, &back, err, sizeof(err)), -EINVAL);
		if (strstr(err, bad[i].err) == NULL)
			fail_msg("case %zu: '%s', want '%s'", i, err, bad[i].err);
	}
	sl_acls_free(&t);
	assert_int_equal(sl_fs_rm_rf(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(nothing_is_allowed_without_an_acl),
	        cmocka_unit_test(literal_prefix_and_any_names),
	        cmocka_unit_test(any_principal_means_every_authenticated_one),
	        cmocka_unit_test(describe_follows_from_any_other_operation),
	        cmocka_unit_test(invalid_acls_are_refused),
	        cmocka_unit_test(file_reads_back_and_damage_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
