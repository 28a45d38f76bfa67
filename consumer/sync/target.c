/* The target interface's one switch: a spec's prefix chooses its kind (target.h). A new kind of target is one line
 * in kinds[] and one file. */
#include <errno.h>
#include <string.h>

#include "consumer/client/client_impl.h"
#include "consumer/sync/target.h"

static const struct {
	const char *prefix;
	int (*open)(struct sl_target *out, const char *arg, const char *table, char *err, size_t err_bytes);
} kinds[] = {
        {"sqlite:", sl_target_sqlite_open},
};

int sl_target_open(struct sl_target *out, const char *spec, const char *table, char *err, size_t err_bytes)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < SL_ARRAY_COUNT(kinds); i++) {
		size_t n = strlen(kinds[i].prefix);

		if (strncmp(spec, kinds[i].prefix, n) == 0 && spec[n] != '\0') {
			int rc = kinds[i].open(out, spec + n, table, err, err_bytes);

			if (rc == 0 && strlen(spec) < sizeof(out->rows.spec))
				strcpy(out->rows.spec, spec);
			return rc;
		}
	}
	sl_error_set(err, err_bytes, "target '%s': expected sqlite:PATH", spec);
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
