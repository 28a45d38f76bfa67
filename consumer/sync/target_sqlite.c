/* The SQLite target as reconciliation reads it (target.h): the entity table the applier keeps (apply.h, "the SQLite
 * store") merged in key order with the floors of its purged keys, and the table reconcile_runs:
 *   reconcile_runs (started_at_ms, finished_at_ms, source, "table", compared, missing, extra, version, value,
 *                   diff_ratio, threshold, sample, repaired, alert)      one row per run, created when missing
 * The entity table is WITHOUT ROWID with the key as its primary key, so a scan in key order is a walk of its B-tree
 * and a range is a seek; both statements of each shape are prepared once, a reconciliation asks for thousands of
 * ranges. Reading runs beside a working applier: WAL mode lets both go on. */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/client/client_impl.h"
#include "consumer/sync/apply.h"
#include "consumer/sync/target.h"

#define PATH_BYTES_MAX  1024
#define TABLE_BYTES_MAX 64
#define BUSY_TIMEOUT_MS 5000

enum shape { SHAPE_ALL, SHAPE_AFTER, SHAPE_UPTO, SHAPE_BETWEEN, SHAPE_COUNT };

static const char runs_sql[] = "CREATE TABLE IF NOT EXISTS reconcile_runs ("
                               " started_at_ms INTEGER NOT NULL, finished_at_ms INTEGER NOT NULL, source TEXT,"
                               " \"table\" TEXT, compared INTEGER, missing INTEGER, extra INTEGER,"
                               " version INTEGER, value INTEGER, diff_ratio REAL, threshold REAL, sample REAL,"
                               " repaired INTEGER, alert INTEGER)";

/* One ordered cursor with a row looked at but not yet handed out. */
struct cursor {
	sqlite3_stmt *st[SHAPE_COUNT];
	sqlite3_stmt *cur;
	bool has_row; /* cur is on a row not yet handed out */
	bool ended;
};

struct sqlite_target {
	sqlite3 *db;
	char path[PATH_BYTES_MAX];
	char table[TABLE_BYTES_MAX];
	struct cursor rows;
	struct cursor floors; /* no statements when the database has no synclog_purged (schema version 1) */
	uint8_t *upto;        /* the scan's bounds, copied */
	size_t upto_len;
	uint8_t *after;
	size_t after_len;
	sqlite3_stmt *run_insert;
	char error[SL_ERROR_BYTES];
};

static int fail(struct sqlite_target *t, int rc, const char *what)
{
	snprintf(t->error, sizeof(t->error), "target sqlite:%s table %s: %s: %s", t->path, t->table, what,
	         sqlite3_errmsg(t->db));
	return (rc & 0xff) == SQLITE_NOMEM ? -ENOMEM : (rc & 0xff) == SQLITE_BUSY ? -EBUSY : -EIO;
}

static int prepare_shapes(struct sqlite_target *t, struct cursor *c, const char *select, const char *order)
{
	static const char *const where[SHAPE_COUNT] = {
	        [SHAPE_ALL] = "",
	        [SHAPE_AFTER] = " key > ?1",
	        [SHAPE_UPTO] = " key <= ?2",
	        [SHAPE_BETWEEN] = " key > ?1 AND key <= ?2",
	};
	bool has_where = strstr(select, " WHERE ") != NULL;

	for (int i = 0; i < SHAPE_COUNT; i++) {
		char sql[512];
		int rc;

		snprintf(sql, sizeof(sql), "%s%s%s %s", select,
		         i == SHAPE_ALL ? ""
		         : has_where    ? " AND"
		                        : " WHERE",
		         where[i], order);
		rc = sqlite3_prepare_v3(t->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &c->st[i], NULL);
		if (rc != SQLITE_OK)
			return fail(t, rc, "prepare a scan of the table");
	}
	return 0;
}

static void cursor_start(struct sqlite_target *t, struct cursor *c, bool table_bound)
{
	enum shape shape = t->after != NULL ? (t->upto != NULL ? SHAPE_BETWEEN : SHAPE_AFTER)
	                                    : (t->upto != NULL ? SHAPE_UPTO : SHAPE_ALL);

	if (c->cur != NULL)
		sqlite3_reset(c->cur);
	c->has_row = false;
	c->ended = c->st[0] == NULL;
	c->cur = c->st[shape];
	if (c->cur == NULL)
		return;
	sqlite3_clear_bindings(c->cur);
	if (t->after != NULL)
		sqlite3_bind_text(c->cur, 1, t->after_len ? (const char *)t->after : "", (int)t->after_len,
		                  SQLITE_STATIC);
	if (t->upto != NULL)
		sqlite3_bind_text(c->cur, 2, t->upto_len ? (const char *)t->upto : "", (int)t->upto_len, SQLITE_STATIC);
	if (table_bound)
		sqlite3_bind_text(c->cur, 3, t->table, -1, SQLITE_STATIC);
}

/* Step c to a row if it has none in hand. 0, or a negative errno. */
static int cursor_fill(struct sqlite_target *t, struct cursor *c)
{
	int rc;

	if (c->has_row || c->ended)
		return 0;
	rc = sqlite3_step(c->cur);
	if (rc == SQLITE_ROW) {
		c->has_row = true;
		return 0;
	}
	c->ended = true;
	return rc == SQLITE_DONE ? 0 : fail(t, rc, "read a row");
}

static int copy_bound(uint8_t **dst, size_t *len, struct sl_key k)
{
	free(*dst);
	*dst = NULL;
	*len = 0;
	if (k.data == NULL)
		return 0;
	*dst = malloc(k.len ? k.len : 1);
	if (*dst == NULL)
		return -ENOMEM;
	memcpy(*dst, k.data, k.len);
	*len = k.len;
	return 0;
}

static int rows_scan(void *ctx, struct sl_key after, struct sl_key upto)
{
	struct sqlite_target *t = ctx;

	if (copy_bound(&t->after, &t->after_len, after) != 0 || copy_bound(&t->upto, &t->upto_len, upto) != 0)
		return -ENOMEM;
	cursor_start(t, &t->rows, false);
	cursor_start(t, &t->floors, true);
	return 0;
}

static int rows_next(void *ctx, struct sl_source_row *out)
{
	struct sqlite_target *t = ctx;
	struct cursor *r = &t->rows, *f = &t->floors;
	int rc, c;

	if ((rc = cursor_fill(t, r)) != 0 || (rc = cursor_fill(t, f)) != 0)
		return rc;
	if (!r->has_row && !f->has_row)
		return 0;
	c = !r->has_row ? 1
	    : !f->has_row
	            ? -1
	            : sl_source_key_compare(sqlite3_column_text(r->cur, 0), (size_t)sqlite3_column_bytes(r->cur, 0),
	                                    sqlite3_column_text(f->cur, 0), (size_t)sqlite3_column_bytes(f->cur, 0));
	memset(out, 0, sizeof(*out));
	if (c <= 0) {
		/* A row stored again over its floor is the truth; the floor goes at the next purge. */
		if (c == 0)
			f->has_row = false;
		out->key = sqlite3_column_text(r->cur, 0);
		out->key_len = (size_t)sqlite3_column_bytes(r->cur, 0);
		out->version = sqlite3_column_int64(r->cur, 1);
		out->deleted = sqlite3_column_int(r->cur, 3) != 0;
		if (!out->deleted && sqlite3_column_type(r->cur, 2) != SQLITE_NULL) {
			out->value = sqlite3_column_blob(r->cur, 2);
			out->value_len = (size_t)sqlite3_column_bytes(r->cur, 2);
			if (out->value == NULL)
				out->value = (const uint8_t *)"";
		}
		r->has_row = false;
		return 1;
	}
	out->key = sqlite3_column_text(f->cur, 0);
	out->key_len = (size_t)sqlite3_column_bytes(f->cur, 0);
	out->version = sqlite3_column_int64(f->cur, 1);
	out->deleted = true;
	f->has_row = false;
	return 1;
}

/* Rows next hands out stay valid until the next step of their cursor: next steps the other cursor only when the
 * row in hand is used up, so a row from one cursor is never overwritten while the caller holds it. */

static int64_t rows_count(void *ctx)
{
	struct sqlite_target *t = ctx;
	char sql[128];
	sqlite3_stmt *st;
	int64_t n = -1;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s\"", t->table);
	if (sqlite3_prepare_v2(t->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static const char *t_error(void *ctx)
{
	return ((struct sqlite_target *)ctx)->error;
}

static void rows_close(void *ctx)
{
	/* The rows belong to the target: closed with it. */
	(void)ctx;
}

static const struct sl_source_ops rows_ops = {
        .scan = rows_scan,
        .next = rows_next,
        .count = rows_count,
        .error = t_error,
        .close = rows_close,
};

static int t_run_record(void *ctx, const struct sl_reconcile_run *run)
{
	struct sqlite_target *t = ctx;
	sqlite3_stmt *st = t->run_insert;
	int rc;

	sqlite3_bind_int64(st, 1, run->started_at_ms);
	sqlite3_bind_int64(st, 2, run->finished_at_ms);
	sqlite3_bind_text(st, 3, run->source, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, t->table, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (int64_t)run->compared);
	sqlite3_bind_int64(st, 6, (int64_t)run->missing);
	sqlite3_bind_int64(st, 7, (int64_t)run->extra);
	sqlite3_bind_int64(st, 8, (int64_t)run->version);
	sqlite3_bind_int64(st, 9, (int64_t)run->value);
	sqlite3_bind_double(st, 10, run->diff_ratio);
	sqlite3_bind_double(st, 11, run->threshold);
	sqlite3_bind_double(st, 12, run->sample);
	sqlite3_bind_int64(st, 13, (int64_t)run->repaired);
	sqlite3_bind_int(st, 14, run->alert);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : fail(t, rc, "keep the run in reconcile_runs");
}

static int t_topic_get(void *ctx, char *out, size_t out_bytes)
{
	struct sqlite_target *t = ctx;
	sqlite3_stmt *st;
	int found = 0;

	if (sqlite3_prepare_v2(t->db, "SELECT topic FROM synclog_tables WHERE name = ?1", -1, &st, NULL) != SQLITE_OK)
		return 0; /* a version 1 target: no claims */
	sqlite3_bind_text(st, 1, t->table, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL) {
		snprintf(out, out_bytes, "%s", (const char *)sqlite3_column_text(st, 0));
		found = 1;
	}
	sqlite3_finalize(st);
	return found;
}

static void cursor_free(struct cursor *c)
{
	for (int i = 0; i < SHAPE_COUNT; i++)
		sqlite3_finalize(c->st[i]);
}

static void t_close(void *ctx)
{
	struct sqlite_target *t = ctx;

	if (t == NULL)
		return;
	cursor_free(&t->rows);
	cursor_free(&t->floors);
	sqlite3_finalize(t->run_insert);
	sqlite3_close(t->db);
	free(t->after);
	free(t->upto);
	free(t);
}

static const struct sl_target_ops target_ops = {
        .run_record = t_run_record,
        .topic_get = t_topic_get,
        .error = t_error,
        .close = t_close,
};

/* Whether the database has a table called name. */
static bool table_exists(struct sqlite_target *t, const char *name)
{
	sqlite3_stmt *st;
	bool found = false;

	if (sqlite3_prepare_v2(t->db, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1", -1, &st,
	                       NULL) != SQLITE_OK)
		return false;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	found = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return found;
}

static int setup(struct sqlite_target *t)
{
	char select[256];
	int rc;

	sqlite3_busy_timeout(t->db, BUSY_TIMEOUT_MS);
	if (!table_exists(t, t->table)) {
		snprintf(t->error, sizeof(t->error),
		         "target sqlite:%s has no table '%s': is it a target of `synclog apply`%s?", t->path, t->table,
		         strcmp(t->table, SL_APPLY_SQLITE_TABLE_DEFAULT) == 0 ? "" : " with that --table");
		return -ENOENT;
	}
	snprintf(select, sizeof(select), "SELECT key, version, value, deleted FROM \"%s\"", t->table);
	rc = prepare_shapes(t, &t->rows, select, "ORDER BY key");
	if (rc == 0 && table_exists(t, "synclog_purged"))
		rc = prepare_shapes(t, &t->floors, "SELECT key, version FROM synclog_purged WHERE tbl = ?3",
		                    "ORDER BY key");
	if (rc == 0 && (rc = sqlite3_exec(t->db, runs_sql, NULL, NULL, NULL)) != SQLITE_OK)
		rc = fail(t, rc, "create table reconcile_runs");
	if (rc == 0 && (rc = sqlite3_prepare_v2(t->db,
	                                        "INSERT INTO reconcile_runs VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
	                                        " ?10, ?11, ?12, ?13, ?14)",
	                                        -1, &t->run_insert, NULL)) != SQLITE_OK)
		rc = fail(t, rc, "prepare the run record");
	return rc;
}

int sl_target_sqlite_open(struct sl_target *out, const char *arg, const char *schema, const char *table, char *err,
                          size_t err_bytes)
{
	struct sqlite_target *t;
	int rc;

	(void)schema; /* SQLite has none: sl_target_open refuses one */
	if (table == NULL)
		table = SL_APPLY_SQLITE_TABLE_DEFAULT;
	if (sl_apply_sqlite_table_check(table) != 0 || strlen(arg) >= PATH_BYTES_MAX) {
		sl_error_set(err, err_bytes, "target sqlite:%s: bad table name '%s' or path too long", arg, table);
		return -EINVAL;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL) {
		sl_error_set(err, err_bytes, "target: out of memory");
		return -ENOMEM;
	}
	snprintf(t->path, sizeof(t->path), "%s", arg);
	snprintf(t->table, sizeof(t->table), "%s", table);
	/* Not created when missing: a target is made by `synclog apply`. */
	rc = sqlite3_open_v2(t->path, &t->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		sl_error_set(err, err_bytes,
		             "target sqlite:%s: cannot open: %s: check the path (the target is made by "
		             "`synclog apply`)",
		             arg, t->db != NULL ? sqlite3_errmsg(t->db) : sqlite3_errstr(rc));
		t_close(t);
		return (rc & 0xff) == SQLITE_CANTOPEN ? -ENOENT : -EIO;
	}
	rc = setup(t);
	if (rc != 0) {
		sl_error_set(err, err_bytes, "%s", t->error);
		t_close(t);
		return rc;
	}
	out->ops = &target_ops;
	out->ctx = t;
	out->rows.ops = &rows_ops;
	out->rows.ctx = t;
	snprintf(out->rows.stem, sizeof(out->rows.stem), "%s", t->path);
	out->rows.position_name = "";
	return 0;
}
