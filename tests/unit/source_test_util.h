/* Assertions the source tests share (tests/unit/test_source_jsonl.c, test_source_sqlite.c, test_source_pg.c):
 * every source (consumer/sync/source.h) is read the same way, a scan then rows, so its tests check rows the same
 * way. These use cmocka's asserts: call them from a test's own process. */
#ifndef SL_TESTS_SOURCE_TEST_UTIL_H
#define SL_TESTS_SOURCE_TEST_UTIL_H

#include "consumer/sync/source.h"

/* Start a scan of the keys after after up to upto (each NULL: unbounded), asserting it starts. */
void st_scan(struct sl_source *src, const char *after, const char *upto);
/* The next row of the scan, asserting there is one. */
struct sl_source_row st_next_row(struct sl_source *src);
/* Assert the row's key, or its value, is exactly text. */
void st_key_equal(const struct sl_source_row *r, const char *text);
void st_value_equal(const struct sl_source_row *r, const char *text);

#endif
