/* The SQLite source (source.h): a table of a database file, "sqlite:PATH:TABLE", read-only.
 *
 * Key order: a key column of TEXT affinity is read with ORDER BY key COLLATE BINARY, which an index on the key
 * (a TEXT PRIMARY KEY, for one) serves without sorting; any other column is ordered by CAST(key AS TEXT), since
 * the order must be that of the key's text (an INTEGER key's 10 comes before 9), which costs SQLite one sort per
 * scan.
 * Snapshots: a scan an index serves is issued again from its last key every REQUERY_ROWS rows, so a long backfill
 * does not hold one read transaction (and the source's WAL) for its whole run; a sorted scan keeps one statement.
 * Statements: one per shape of bounds (none, lower, upper, both), prepared once and reset between scans: a
 * reconciliation asks for thousands of ranges. */
#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "consumer/client/client_impl.h"
#include "consumer/sync/source.h"

/* Rows between two issues of an indexed scan: a read transaction lasts at most this many rows (milliseconds). */
#define REQUERY_ROWS     10000
#define NAME_BYTES_MAX   256
#define PATH_BYTES_MAX   1024
/* Columns of a source table at most (SQLite's own default limit is 2000). */
#define COLUMNS_MAX      2000
#define BUSY_TIMEOUT_MS  5000
#define SQL_BYTES_EXTRA  512
/* %.17g of a double, with sign and exponent. */
#define DOUBLE_BYTES_MAX 32

enum shape { SHAPE_ALL, SHAPE_AFTER, SHAPE_UPTO, SHAPE_BETWEEN, SHAPE_COUNT };

struct sqlite_source {
	sqlite3 *db;
	char path[PATH_BYTES_MAX];
	char table[NAME_BYTES_MAX];
	sqlite3_stmt *st[SHAPE_COUNT];
	sqlite3_stmt *cur; /* the statement of the scan in progress; NULL when none */
	bool indexed;      /* ORDER BY served by an index: requery allowed */
	bool has_rowid;
	int deleted_col;  /* result column of `deleted`, or -1 */
	int rowid_col;    /* result column of rowid, or -1 */
	int value_first;  /* first result column of the value */
	int value_count;  /* value columns */
	bool value_named; /* --value COL: the value is that column's text */
	char **prefixes;  /* per value column: "\"name\":" (with a comma before all but the first) */
	struct sl_key_copy upto;
	struct sl_key_copy last; /* the last key returned by this scan */
	uint32_t rows_since_query;
	bool ended;
	struct sl_json_buf value;
	char bad[256];
	char error[SL_ERROR_BYTES];
};

static int fail(struct sqlite_source *s, int rc, const char *what)
{
	snprintf(s->error, sizeof(s->error), "source sqlite:%s:%s: %s: %s", s->path, s->table, what,
	         sqlite3_errmsg(s->db));
	return (rc & 0xff) == SQLITE_NOMEM ? -ENOMEM : (rc & 0xff) == SQLITE_BUSY ? -EBUSY : -EIO;
}

/* "name" with its quotes doubled, as an SQL identifier, appended to out. */
static void ident(char *out, size_t cap, const char *name)
{
	size_t at = strlen(out);

	if (at + 1 < cap)
		out[at++] = '"';
	for (const char *p = name; *p != '\0' && at + 2 < cap; p++) {
		if (*p == '"')
			out[at++] = '"';
		out[at++] = *p;
	}
	if (at + 1 < cap)
		out[at++] = '"';
	out[at] = '\0';
}

/* SQLite's affinity rule: a declared type containing CHAR, CLOB or TEXT has TEXT affinity. */
static bool text_affinity(const char *decl)
{
	return decl != NULL && (strcasestr(decl, "CHAR") != NULL || strcasestr(decl, "CLOB") != NULL ||
	                        strcasestr(decl, "TEXT") != NULL);
}

struct table_info {
	char **names;
	int count;
	int key, version, deleted, value; /* indexes into names, -1 when absent */
	bool key_text;
};

static void table_info_free(struct table_info *t)
{
	for (int i = 0; i < t->count; i++)
		free(t->names[i]);
	free(t->names);
}

/* The table's columns in order, and which are the key, version, value and deleted columns. */
static int table_info_read(struct sqlite_source *s, const struct sl_source_columns *c, struct table_info *t)
{
	char sql[NAME_BYTES_MAX * 2 + 64] = "PRAGMA table_info(";
	sqlite3_stmt *st;
	int rc;

	memset(t, 0, sizeof(*t));
	t->key = t->version = t->deleted = t->value = -1;
	ident(sql, sizeof(sql), s->table);
	strcat(sql, ")");
	rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return fail(s, rc, "read the table's columns");
	t->names = calloc(COLUMNS_MAX, sizeof(*t->names));
	if (t->names == NULL) {
		sqlite3_finalize(st);
		return -ENOMEM;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && t->count < COLUMNS_MAX) {
		const char *name = (const char *)sqlite3_column_text(st, 1);
		const char *decl = (const char *)sqlite3_column_text(st, 2);
		int i = t->count;

		t->names[i] = strdup(name != NULL ? name : "");
		if (t->names[i] == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		t->count++;
		if (strcmp(t->names[i], c->key) == 0) {
			t->key = i;
			t->key_text = text_affinity(decl);
		} else if (strcmp(t->names[i], c->version) == 0) {
			t->version = i;
		} else if (c->value != NULL && strcmp(t->names[i], c->value) == 0) {
			t->value = i;
		} else if (strcmp(t->names[i], SL_SOURCE_DELETED_COLUMN) == 0) {
			t->deleted = i;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return fail(s, rc, "read the table's columns");
	if (t->count == 0) {
		snprintf(s->error, sizeof(s->error), "source sqlite:%s: no table '%s' in that database", s->path,
		         s->table);
		return -ENOENT;
	}
	if (t->key < 0 || t->version < 0 || (c->value != NULL && t->value < 0)) {
		const char *missing = t->key < 0 ? c->key : t->version < 0 ? c->version : c->value;
		const char *flag = t->key < 0 ? "--key" : t->version < 0 ? "--version" : "--value";

		snprintf(s->error, sizeof(s->error),
		         "source sqlite:%s:%s: the table has no column '%s': name the right one with %s COL", s->path,
		         s->table, missing, flag);
		return -EINVAL;
	}
	return 0;
}

/* The select list and the value columns' JSON prefixes. */
static int select_build(struct sqlite_source *s, const struct table_info *t, char *sql, size_t cap, char *key_expr,
                        size_t key_cap)
{
	struct sl_json_buf name = {0};
	int col = 0, n = 0;

	key_expr[0] = '\0';
	if (!t->key_text)
		snprintf(key_expr, key_cap, "CAST(");
	ident(key_expr, key_cap, t->names[t->key]);
	if (!t->key_text)
		strncat(key_expr, " AS TEXT)", key_cap - strlen(key_expr) - 1);
	snprintf(sql, cap, "SELECT %s, ", key_expr);
	ident(sql, cap, t->names[t->version]);
	col = 2;
	if (t->deleted >= 0) {
		strncat(sql, ", ", cap - strlen(sql) - 1);
		ident(sql, cap, t->names[t->deleted]);
		s->deleted_col = col++;
	}
	if (s->has_rowid) {
		strncat(sql, ", rowid", cap - strlen(sql) - 1);
		s->rowid_col = col++;
	}
	s->value_first = col;
	s->prefixes = calloc((size_t)t->count, sizeof(*s->prefixes));
	if (s->prefixes == NULL)
		return -ENOMEM;
	for (int i = 0; i < t->count; i++) {
		if (i == t->key || i == t->version || i == t->deleted || (t->value >= 0 && i != t->value))
			continue;
		strncat(sql, ", ", cap - strlen(sql) - 1);
		ident(sql, cap, t->names[i]);
		name.len = 0;
		if (sl_json_buf_add(&name, n > 0 ? "," : "", n > 0 ? 1 : 0) != 0 ||
		    sl_json_buf_add_string(&name, (const uint8_t *)t->names[i], strlen(t->names[i])) != 0 ||
		    sl_json_buf_add(&name, ":", 2) != 0 || (s->prefixes[n] = strdup(name.data)) == NULL) {
			sl_json_buf_free(&name);
			return -ENOMEM;
		}
		n++;
	}
	sl_json_buf_free(&name);
	s->value_count = n;
	s->value_named = t->value >= 0;
	strncat(sql, " FROM ", cap - strlen(sql) - 1);
	ident(sql, cap, s->table);
	return strlen(sql) + 1 >= cap ? -ENAMETOOLONG : 0;
}

static int statements_prepare(struct sqlite_source *s, const char *select, const char *key_expr)
{
	static const char *const where[SHAPE_COUNT] = {
	        [SHAPE_ALL] = "",
	        [SHAPE_AFTER] = " WHERE %s COLLATE BINARY > ?1",
	        [SHAPE_UPTO] = " WHERE %s COLLATE BINARY <= ?2",
	        [SHAPE_BETWEEN] = " WHERE %s COLLATE BINARY > ?1 AND %s COLLATE BINARY <= ?2",
	};
	size_t cap = strlen(select) + 3 * strlen(key_expr) + SQL_BYTES_EXTRA;
	char *sql = malloc(cap), *plan = malloc(cap + 32);
	sqlite3_stmt *st;
	int rc = 0;

	if (sql == NULL || plan == NULL) {
		free(sql);
		free(plan);
		return -ENOMEM;
	}
	for (int i = 0; i < SHAPE_COUNT && rc == 0; i++) {
		int n = snprintf(sql, cap, "%s", select);

		n += snprintf(sql + n, cap - (size_t)n, where[i], key_expr, key_expr);
		snprintf(sql + n, cap - (size_t)n, " ORDER BY %s COLLATE BINARY", key_expr);
		if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) != SQLITE_OK)
			rc = fail(s, SQLITE_ERROR, "prepare the scan");
		if (rc == 0 && i == SHAPE_AFTER) {
			/* Whether an index gives the order: then no sort, and the scan may be issued again cheaply. */
			snprintf(plan, cap + 32, "EXPLAIN QUERY PLAN %s", sql);
			s->indexed = true;
			if (sqlite3_prepare_v2(s->db, plan, -1, &st, NULL) != SQLITE_OK) {
				rc = fail(s, SQLITE_ERROR, "plan the scan");
				break;
			}
			while (sqlite3_step(st) == SQLITE_ROW) {
				const char *detail = (const char *)sqlite3_column_text(st, 3);

				if (detail != NULL && strstr(detail, "TEMP B-TREE") != NULL)
					s->indexed = false;
			}
			sqlite3_finalize(st);
		}
	}
	free(sql);
	free(plan);
	return rc;
}

static bool table_has_rowid(struct sqlite_source *s)
{
	char sql[NAME_BYTES_MAX * 2 + 64] = "SELECT rowid FROM ";
	sqlite3_stmt *st;
	bool ok;

	ident(sql, sizeof(sql), s->table);
	strcat(sql, " LIMIT 0");
	ok = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK;
	sqlite3_finalize(st);
	return ok;
}

/* ---- scanning ---- */

static int bind_key(sqlite3_stmt *st, int i, const uint8_t *data, size_t len)
{
	return sqlite3_bind_text(st, i, len > 0 ? (const char *)data : "", (int)len, SQLITE_STATIC);
}

/* Issue the scan from after (exclusive; NULL: from the first row) to s->upto. */
static int query(struct sqlite_source *s, const uint8_t *after, size_t after_len, bool has_after)
{
	enum shape shape =
	        has_after ? (s->upto.set ? SHAPE_BETWEEN : SHAPE_AFTER) : (s->upto.set ? SHAPE_UPTO : SHAPE_ALL);

	if (s->cur != NULL)
		sqlite3_reset(s->cur);
	s->cur = s->st[shape];
	sqlite3_clear_bindings(s->cur);
	if (has_after)
		bind_key(s->cur, 1, after, after_len);
	if (s->upto.set)
		bind_key(s->cur, 2, s->upto.data, s->upto.len);
	s->rows_since_query = 0;
	s->ended = false;
	return 0;
}

static int op_scan(void *ctx, struct sl_key after, struct sl_key upto)
{
	struct sqlite_source *s = ctx;

	s->upto.set = false;
	s->last.set = false;
	if (upto.data != NULL && sl_key_copy_set(&s->upto, upto.data, upto.len) != 0)
		return -ENOMEM;
	/* The bound lives in last, which the requery binds anyway. */
	if (after.data != NULL && sl_key_copy_set(&s->last, after.data, after.len) != 0)
		return -ENOMEM;
	return query(s, s->last.data, s->last.len, after.data != NULL);
}

/* A version as stored: an INTEGER, or TEXT of a decimal integer. */
static bool version_read(sqlite3_stmt *st, int col, int64_t *out)
{
	const char *text;
	char *end;
	long long v;

	switch (sqlite3_column_type(st, col)) {
	case SQLITE_INTEGER:
		*out = sqlite3_column_int64(st, col);
		return *out != SL_VERSION_NONE;
	case SQLITE_TEXT:
		text = (const char *)sqlite3_column_text(st, col);
		if (!((text[0] >= '0' && text[0] <= '9') || (text[0] == '-' && text[1] >= '0' && text[1] <= '9')))
			return false;
		errno = 0;
		v = strtoll(text, &end, 10);
		if (errno != 0 || *end != '\0' || v == SL_VERSION_NONE)
			return false;
		*out = v;
		return true;
	default:
		return false;
	}
}

static bool deleted_read(sqlite3_stmt *st, int col)
{
	const char *text;

	switch (sqlite3_column_type(st, col)) {
	case SQLITE_INTEGER:
		return sqlite3_column_int64(st, col) != 0;
	case SQLITE_FLOAT:
		return sqlite3_column_double(st, col) != 0;
	case SQLITE_TEXT:
		text = (const char *)sqlite3_column_text(st, col);
		return strcasecmp(text, "true") == 0 || strcmp(text, "1") == 0 || strcasecmp(text, "yes") == 0;
	default:
		return false;
	}
}

/* The shortest decimal that reads back as d, as JSON; null for what JSON cannot say. */
static int double_add(struct sl_json_buf *b, double d)
{
	char text[DOUBLE_BYTES_MAX];

	if (!isfinite(d))
		return sl_json_buf_add(b, "null", 4);
	for (int precision = 15; precision <= 17; precision++) {
		snprintf(text, sizeof(text), "%.*g", precision, d);
		if (strtod(text, NULL) == d)
			break;
	}
	return sl_json_buf_add(b, text, strlen(text));
}

/* Build the row's value in s->value; returns 0, -EILSEQ (a column is not UTF-8: s->bad says which) or -ENOMEM. */
static int value_build(struct sqlite_source *s, sqlite3_stmt *st)
{
	struct sl_json_buf *b = &s->value;
	int rc = sl_json_buf_add(b, "{", 1);

	for (int i = 0; i < s->value_count && rc == 0; i++) {
		int col = s->value_first + i;
		char num[DOUBLE_BYTES_MAX];

		rc = sl_json_buf_add(b, s->prefixes[i], strlen(s->prefixes[i]));
		if (rc != 0)
			break;
		switch (sqlite3_column_type(st, col)) {
		case SQLITE_INTEGER:
			snprintf(num, sizeof(num), "%lld", (long long)sqlite3_column_int64(st, col));
			rc = sl_json_buf_add(b, num, strlen(num));
			break;
		case SQLITE_FLOAT:
			rc = double_add(b, sqlite3_column_double(st, col));
			break;
		case SQLITE_TEXT:
			rc = sl_json_buf_add_string(b, sqlite3_column_text(st, col),
			                            (size_t)sqlite3_column_bytes(st, col));
			if (rc == -EILSEQ)
				snprintf(s->bad, sizeof(s->bad), "column %s is not UTF-8 text",
				         sqlite3_column_name(st, col));
			break;
		case SQLITE_BLOB:
			snprintf(s->bad, sizeof(s->bad),
			         "column %s holds a BLOB, which a JSON value cannot hold: name one text column with "
			         "--value",
			         sqlite3_column_name(st, col));
			return -EILSEQ;
		default:
			rc = sl_json_buf_add(b, "null", 4);
		}
	}
	return rc == 0 ? sl_json_buf_add(b, "}", 1) : rc;
}

static void row_fill(struct sqlite_source *s, sqlite3_stmt *st, struct sl_source_row *out)
{
	const uint8_t *key = sqlite3_column_text(st, 0);
	int rc;

	memset(out, 0, sizeof(*out));
	s->bad[0] = '\0';
	out->position = s->rowid_col >= 0 ? (uint64_t)sqlite3_column_int64(st, s->rowid_col) : 0;
	out->key = key;
	out->key_len = (size_t)sqlite3_column_bytes(st, 0);
	out->deleted = s->deleted_col >= 0 && deleted_read(st, s->deleted_col);
	if (key == NULL) {
		out->bad = "no key";
		return;
	}
	if (out->key_len == 0) {
		out->bad = "an empty key";
		return;
	}
	if (!version_read(st, 1, &out->version)) {
		out->version = SL_VERSION_NONE;
		if (sqlite3_column_type(st, 1) == SQLITE_NULL)
			snprintf(s->bad, sizeof(s->bad), "no version");
		else
			snprintf(s->bad, sizeof(s->bad), "version '%.40s' is not an integer",
			         (const char *)sqlite3_column_text(st, 1));
		out->bad = s->bad;
		return;
	}
	if (out->deleted)
		return;
	if (s->value_named) {
		out->value = sqlite3_column_blob(st, s->value_first);
		out->value_len = (size_t)sqlite3_column_bytes(st, s->value_first);
		if (out->value == NULL && sqlite3_column_type(st, s->value_first) != SQLITE_NULL)
			out->value = (const uint8_t *)""; /* empty text, not null */
		return;
	}
	s->value.len = 0;
	rc = value_build(s, st);
	if (rc == -EILSEQ) {
		out->bad = s->bad;
		return;
	}
	if (rc != 0) {
		out->bad = "out of memory building its value";
		return;
	}
	out->value = (const uint8_t *)s->value.data;
	out->value_len = s->value.len;
}

static int op_next(void *ctx, struct sl_source_row *out)
{
	struct sqlite_source *s = ctx;
	int rc;

	if (s->cur == NULL || s->ended)
		return 0;
	/* Let go of the read snapshot now and then (see the top); the scan goes on after its last key. */
	if (s->indexed && s->rows_since_query >= REQUERY_ROWS && s->last.set) {
		rc = query(s, s->last.data, s->last.len, true);
		if (rc != 0)
			return rc;
	}
	rc = sqlite3_step(s->cur);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(s->cur);
		s->ended = true;
		return 0;
	}
	if (rc != SQLITE_ROW)
		return fail(s, rc, "read a row");
	s->rows_since_query++;
	row_fill(s, s->cur, out);
	if (out->key != NULL && s->indexed && sl_key_copy_set(&s->last, out->key, out->key_len) != 0)
		return -ENOMEM;
	return 1;
}

static int64_t op_count(void *ctx)
{
	struct sqlite_source *s = ctx;
	char sql[NAME_BYTES_MAX * 2 + 64] = "SELECT count(*) FROM ";
	sqlite3_stmt *st;
	int64_t n = -1;

	ident(sql, sizeof(sql), s->table);
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static const char *op_error(void *ctx)
{
	return ((struct sqlite_source *)ctx)->error;
}

static void op_close(void *ctx)
{
	struct sqlite_source *s = ctx;

	if (s == NULL)
		return;
	for (int i = 0; i < SHAPE_COUNT; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_close(s->db);
	for (int i = 0; s->prefixes != NULL && i < s->value_count; i++)
		free(s->prefixes[i]);
	free(s->prefixes);
	sl_key_copy_free(&s->upto);
	sl_key_copy_free(&s->last);
	sl_json_buf_free(&s->value);
	free(s);
}

static const struct sl_source_ops sqlite_source_ops = {
        .scan = op_scan,
        .next = op_next,
        .count = op_count,
        .error = op_error,
        .close = op_close,
};

/* "PATH:TABLE": the table is what follows the last ':' (a path may hold ':', a table name here may not). */
static int spec_split(struct sqlite_source *s, const char *arg, char *err, size_t err_bytes)
{
	const char *colon = strrchr(arg, ':');

	if (colon == NULL || colon == arg || colon[1] == '\0') {
		sl_error_set(err, err_bytes, "source sqlite:%s: expected sqlite:PATH:TABLE", arg);
		return -EINVAL;
	}
	if ((size_t)(colon - arg) >= sizeof(s->path) || strlen(colon + 1) >= sizeof(s->table)) {
		sl_error_set(err, err_bytes, "source sqlite:%s: path or table name too long", arg);
		return -EINVAL;
	}
	memcpy(s->path, arg, (size_t)(colon - arg));
	s->path[colon - arg] = '\0';
	snprintf(s->table, sizeof(s->table), "%s", colon + 1);
	return 0;
}

int sl_source_sqlite_open(struct sl_source *out, const char *arg, const struct sl_source_columns *columns, char *err,
                          size_t err_bytes)
{
	struct sqlite_source *s = calloc(1, sizeof(*s));
	struct table_info t;
	char *select = NULL, key_expr[NAME_BYTES_MAX * 2 + 32];
	size_t select_cap;
	int rc;

	if (s == NULL) {
		sl_error_set(err, err_bytes, "source: out of memory");
		return -ENOMEM;
	}
	s->deleted_col = s->rowid_col = -1;
	rc = spec_split(s, arg, err, err_bytes);
	if (rc != 0) {
		free(s);
		return rc;
	}
	rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		sl_error_set(err, err_bytes, "source sqlite:%s: cannot open %s: %s", arg, s->path,
		             s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		op_close(s);
		return (rc & 0xff) == SQLITE_CANTOPEN ? -ENOENT : -EIO;
	}
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	rc = table_info_read(s, columns, &t);
	if (rc == 0) {
		s->has_rowid = table_has_rowid(s);
		select_cap = (size_t)t.count * (NAME_BYTES_MAX * 2 + 4) + sizeof(key_expr) + SQL_BYTES_EXTRA;
		select = malloc(select_cap);
		rc = select == NULL ? -ENOMEM : select_build(s, &t, select, select_cap, key_expr, sizeof(key_expr));
	}
	if (rc == 0)
		rc = statements_prepare(s, select, key_expr);
	if (t.names != NULL)
		table_info_free(&t);
	free(select);
	if (rc != 0) {
		sl_error_set(err, err_bytes, "%s", rc == -ENOMEM ? "source: out of memory" : s->error);
		op_close(s);
		return rc;
	}
	out->ops = &sqlite_source_ops;
	out->ctx = s;
	snprintf(out->stem, sizeof(out->stem), "%s.%s", s->path, s->table);
	out->position_name = s->has_rowid ? "rowid" : "";
	return 0;
}
