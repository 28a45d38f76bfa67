/* The target stores a target string names (`synclog apply --target ...`): one table of the forms this build knows,
 * so that the command and the engine see only struct sl_apply_store, whatever holds the data.
 *
 *   sqlite:PATH                     the SQLite store (apply_sqlite.c)
 *   postgresql://... postgres://... a libpq connection URI, passed whole (apply_pg.c)
 *   postgres:CONNINFO               a libpq key=value connection string */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/sync/apply.h"
#include "consumer/client/client_impl.h"

struct sl_apply_target {
	const struct target_kind *kind;
	void *db;
	struct sl_apply_store store;
};

struct target_kind {
	const char *prefix;
	bool keep_prefix; /* a URI scheme is part of what libpq reads */
	bool has_schema;
	int (*open)(struct sl_apply_target *t, const char *where, const struct sl_apply_target_options *o, char *err,
	            size_t err_bytes);
	int (*claim)(void *db, const char *topic);
	void (*close)(void *db);
};

static int sqlite_open(struct sl_apply_target *t, const char *where, const struct sl_apply_target_options *o, char *err,
                       size_t err_bytes)
{
	struct sl_apply_sqlite_options so = {.path = where, .values = o->values, .table = o->table};
	struct sl_apply_sqlite *db;
	int rc = sl_apply_sqlite_open_table(&db, &so, err, err_bytes);

	if (rc == 0) {
		sl_apply_sqlite_set_deletes(db, o->on_delete, o->follow_log);
		t->db = db;
		sl_apply_sqlite_store(db, &t->store);
	}
	return rc;
}

static int sqlite_claim(void *db, const char *topic)
{
	return sl_apply_sqlite_claim(db, topic);
}

static void sqlite_close(void *db)
{
	sl_apply_sqlite_close(db);
}

static int pg_open(struct sl_apply_target *t, const char *where, const struct sl_apply_target_options *o, char *err,
                   size_t err_bytes)
{
	struct sl_apply_pg_options po = {
	        .conninfo = where,
	        .schema = o->schema,
	        .table = o->table,
	        .values = o->values,
	        .on_delete = o->on_delete,
	        .follow_log = o->follow_log,
	};
	struct sl_apply_pg *db;
	int rc = sl_apply_pg_open(&db, &po, err, err_bytes);

	if (rc == 0) {
		t->db = db;
		sl_apply_pg_store(db, &t->store);
	}
	return rc;
}

static int pg_claim(void *db, const char *topic)
{
	return sl_apply_pg_claim(db, topic);
}

static void pg_close(void *db)
{
	sl_apply_pg_close(db);
}

static const struct target_kind kinds[] = {
        {"sqlite:", false, false, sqlite_open, sqlite_claim, sqlite_close},
        {"postgresql://", true, true, pg_open, pg_claim, pg_close},
        {"postgres://", true, true, pg_open, pg_claim, pg_close},
        {"postgres:", false, true, pg_open, pg_claim, pg_close},
};

static const struct target_kind *kind_of(const char *target, const char **where)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t n = strlen(kinds[i].prefix);

		if (strncmp(target, kinds[i].prefix, n) == 0 && target[n] != '\0') {
			*where = kinds[i].keep_prefix ? target : target + n;
			return &kinds[i];
		}
	}
	return NULL;
}

const char *sl_apply_target_check(const char *target, const struct sl_apply_target_options *o)
{
	const char *where;
	const struct target_kind *k = kind_of(target, &where);

	if (k == NULL)
		return "--target must be sqlite:PATH, postgresql://... (a libpq URI) or postgres:CONNINFO";
	if (o->schema != NULL && !k->has_schema)
		return "--schema applies to a PostgreSQL target";
	return NULL;
}

int sl_apply_target_open(struct sl_apply_target **out, const char *target, const struct sl_apply_target_options *o,
                         char *err, size_t err_bytes)
{
	const char *where, *bad = sl_apply_target_check(target, o);
	const struct target_kind *k = kind_of(target, &where);
	struct sl_apply_target *t;
	int rc;

	*out = NULL;
	if (bad != NULL) {
		sl_error_set(err, err_bytes, "%s", bad);
		return -EINVAL;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL) {
		sl_error_set(err, err_bytes, "target: out of memory");
		return -ENOMEM;
	}
	t->kind = k;
	rc = k->open(t, where, o, err, err_bytes);
	if (rc != 0) {
		free(t);
		return rc;
	}
	*out = t;
	return 0;
}

void sl_apply_target_store(struct sl_apply_target *t, struct sl_apply_store *out)
{
	*out = t->store;
}

int sl_apply_target_claim(struct sl_apply_target *t, const char *topic)
{
	return t->kind->claim(t->db, topic);
}

void sl_apply_target_close(struct sl_apply_target *t)
{
	if (t == NULL)
		return;
	t->kind->close(t->db);
	free(t);
}
