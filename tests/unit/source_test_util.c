/* The source tests' shared assertions (source_test_util.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/base/fs.h"
#include "tests/unit/log_test_util.h"

#include "tests/unit/source_test_util.h"

static struct sl_key key_of(const char *text)
{
	return (struct sl_key){(const uint8_t *)text, text != NULL ? strlen(text) : 0};
}

void st_scan(struct sl_source *src, const char *after, const char *upto)
{
	assert_int_equal(src->ops->scan(src->ctx, key_of(after), key_of(upto)), 0);
}

struct sl_source_row st_next_row(struct sl_source *src)
{
	struct sl_source_row r;

	assert_int_equal(src->ops->next(src->ctx, &r), 1);
	return r;
}

void st_expect_keys(struct sl_source *src, const char *const *keys, size_t count)
{
	struct sl_source_row r;

	for (size_t i = 0; i < count; i++) {
		r = st_next_row(src);
		st_key_equal(&r, keys[i]);
	}
	assert_int_equal(src->ops->next(src->ctx, &r), 0);
}

void st_key_equal(const struct sl_source_row *r, const char *text)
{
	assert_non_null(r->key);
	assert_int_equal(r->key_len, strlen(text));
	assert_memory_equal(r->key, text, r->key_len);
}

void st_value_equal(const struct sl_source_row *r, const char *text)
{
	assert_non_null(r->value);
	assert_int_equal(r->value_len, strlen(text));
	assert_memory_equal(r->value, text, r->value_len);
}

int st_file_setup(void **state, const char *file_name)
{
	struct st_file_env *e = calloc(1, sizeof(*e));

	if (e == NULL || lt_tmpdir_make(e->dir, sizeof(e->dir)) != 0) {
		free(e);
		return -1;
	}
	snprintf(e->path, sizeof(e->path), "%s/%s", e->dir, file_name);
	*state = e;
	return 0;
}

int st_file_teardown(void **state)
{
	struct st_file_env *e = *state;

	sl_source_close(&e->src);
	sl_fs_rm_rf(e->dir);
	free(e);
	return 0;
}
