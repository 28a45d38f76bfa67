/* Assertions the source tests share (tests/unit/test_source_jsonl.c, test_source_sqlite.c, test_source_pg.c):
 * every source (consumer/sync/source.h) is read the same way, a scan then rows, so its tests check rows the same
 * way. These use cmocka's asserts: call them from a test's own process. */
#ifndef SL_TESTS_SOURCE_TEST_UTIL_H
#define SL_TESTS_SOURCE_TEST_UTIL_H

#include "consumer/client/synclog.h"
#include "consumer/sync/source.h"

/* A source read from one file in a temporary directory (the JSON-lines and SQLite tests): path is that file, spec
 * what the test opens. */
struct st_file_env {
	char dir[256];
	char path[300];
	char spec[400];
	char err[SL_ERROR_BYTES];
	struct sl_source src;
};

/* cmocka setup: a new env in *state, its path DIR/file_name in a new temporary directory; -1 when it cannot be made. */
int st_file_setup(void **state, const char *file_name);
/* cmocka teardown: close the source, remove the directory, free the env. */
int st_file_teardown(void **state);

/* Start a scan of the keys after after up to upto (each NULL: unbounded), asserting it starts. */
void st_scan(struct sl_source *src, const char *after, const char *upto);
/* The next row of the scan, asserting there is one. */
struct sl_source_row st_next_row(struct sl_source *src);
/* Assert the scan's next rows have these count keys, in this order, and that the scan ends after them. */
void st_expect_keys(struct sl_source *src, const char *const *keys, size_t count);
/* Assert the row's key, or its value, is exactly text. */
void st_key_equal(const struct sl_source_row *r, const char *text);
void st_value_equal(const struct sl_source_row *r, const char *text);

#endif
