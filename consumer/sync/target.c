/* The target interface's one switch: a spec's prefix chooses its kind (target.h). A new kind of target is one line
 * in kinds[] and one file. */
#include <errno.h>
#include <string.h>

#include "consumer/client/client_impl.h"
#include "consumer/sync/target.h"

static const struct {
	const char *prefix;
	bool keep_prefix; /* a URI's scheme is part of what libpq reads */
	bool has_schema;
	int (*open)(struct sl_target *out, const char *arg, const char *schema, const char *table, char *err,
	            size_t err_bytes);
} kinds[] = {
        {"sqlite:", false, false, sl_target_sqlite_open},
        {"postgresql://", true, true, sl_target_pg_open},
        {"postgres://", true, true, sl_target_pg_open},
        {"postgres:", false, true, sl_target_pg_open},
};

const char *sl_target_check(const char *spec, const char *schema)
{
	for (size_t i = 0; i < SL_ARRAY_COUNT(kinds); i++) {
		size_t n = strlen(kinds[i].prefix);

		if (strncmp(spec, kinds[i].prefix, n) == 0 && spec[n] != '\0')
			return schema != NULL && !kinds[i].has_schema ? "--schema applies to a PostgreSQL target"
			                                              : NULL;
	}
	return "--target must be sqlite:PATH, postgresql://... (a libpq URI) or postgres:CONNINFO";
}

int sl_target_open(struct sl_target *out, const char *spec, const char *schema, const char *table, char *err,
                   size_t err_bytes)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < SL_ARRAY_COUNT(kinds); i++) {
		size_t n = strlen(kinds[i].prefix);

		if (strncmp(spec, kinds[i].prefix, n) == 0 && spec[n] != '\0') {
			int rc;

			if (schema != NULL && !kinds[i].has_schema) {
				sl_error_set(err, err_bytes, "target %s: --schema applies to a PostgreSQL target",
				             spec);
				return -EINVAL;
			}
			rc = kinds[i].open(out, kinds[i].keep_prefix ? spec : spec + n, schema, table, err, err_bytes);

			if (rc == 0 && strlen(spec) < sizeof(out->rows.spec))
				strcpy(out->rows.spec, spec);
			return rc;
		}
	}
	sl_error_set(err, err_bytes,
	             "target '%s': expected sqlite:PATH, postgresql://... (a libpq URI) or postgres:CONNINFO", spec);
	return -EINVAL;
}

void sl_target_close(struct sl_target *t)
{
	sl_source_close(&t->rows);
	if (t->ops != NULL)
		t->ops->close(t->ctx);
	t->ops = NULL;
	t->ctx = NULL;
}
