/* The PostgreSQL target as reconciliation reads it (target.h): the entity table the PostgreSQL store keeps (apply.h,
 * "the PostgreSQL store") with the floors of its purged keys, read through pg_rows.h (a server-side cursor in key
 * order, and ranges summarised by the server), and the table reconcile_runs of its schema:
 *   reconcile_runs (started_at_ms, finished_at_ms, source, "table", compared, missing, extra, version, value,
 *                   diff_ratio, threshold, sample, repaired, alert)      one row per run, created when missing
 * The rows are one query: the entity table UNION ALL the floors of synclog_purged whose key the table does not hold
 * again (a row stored over its floor is the truth, as for SQLite), both of keys of the "C" collation, so the
 * server merges the two indexes in key order without sorting. Run records and the feeding topic go through a
 * second connection, so that they never land in a scan's transaction. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/client/client_impl.h"
#include "consumer/sync/apply.h"
#include "consumer/sync/pg_link.h"
#include "consumer/sync/pg_rows.h"
#include "consumer/sync/target.h"

#define SCHEMA_BYTES_MAX 64
#define TABLE_BYTES_MAX  64

struct pg_target {
	struct sl_pg_link link;
	char schema[SCHEMA_BYTES_MAX];
	char table[TABLE_BYTES_MAX];
	char *schema_ident; /* "schema", quoted */
};

static int fail_memory(struct pg_target *t, const char *what)
{
	snprintf(t->link.error, sizeof(t->link.error), "%s: %s: out of memory", t->link.label, what);
	return -ENOMEM;
}

static int t_run_record(void *ctx, const struct sl_reconcile_run *run)
{
	struct pg_target *t = ctx;
	char *source = NULL, *sql = NULL;
	int rc;

	rc = sl_pg_link_ready(&t->link);
	if (rc != 0)
		return rc;
	source = PQescapeLiteral(t->link.conn, run->source != NULL ? run->source : "",
	                         run->source != NULL ? strlen(run->source) : 0);
	if (source == NULL ||
	    asprintf(&sql,
	             "INSERT INTO %s.reconcile_runs VALUES (%lld, %lld, %s, '%s', %llu, %llu, %llu, %llu, %llu, %.17g,"
	             " %.17g, %.17g, %llu, %s)",
	             t->schema_ident, (long long)run->started_at_ms, (long long)run->finished_at_ms, source, t->table,
	             (unsigned long long)run->compared, (unsigned long long)run->missing,
	             (unsigned long long)run->extra, (unsigned long long)run->version, (unsigned long long)run->value,
	             run->diff_ratio, run->threshold, run->sample, (unsigned long long)run->repaired,
	             run->alert ? "true" : "false") < 0) {
		PQfreemem(source);
		return fail_memory(t, "keep the run in reconcile_runs");
	}
	PQfreemem(source);
	rc = sl_pg_link_send_sql(&t->link, sql, "keep the run in reconcile_runs");
	free(sql);
	return rc == 0 ? sl_pg_link_run(&t->link) : rc;
}

static int topic_read(const PGresult *res, void *out)
{
	char **topic = out;

	if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) && (*topic = strdup(PQgetvalue(res, 0, 0))) == NULL)
		return -ENOMEM;
	return 0;
}

static int t_topic_get(void *ctx, char *out, size_t out_bytes)
{
	struct pg_target *t = ctx;
	const Oid types[1] = {SL_PG_OID_TEXT};
	const char *values[1] = {t->table};
	const int lengths[1] = {(int)strlen(t->table)};
	char *topic = NULL, *sql;
	int found = 0;

	if (asprintf(&sql, "SELECT topic FROM %s.synclog_tables WHERE name = $1", t->schema_ident) < 0)
		return 0;
	if (sl_pg_link_ready(&t->link) == 0 &&
	    sl_pg_link_send_params(&t->link, sql, 1, types, values, lengths, false,
	                           (struct sl_pg_step){.check = SL_PG_ROWS,
	                                               .out = &topic,
	                                               .rows_cb = topic_read,
	                                               .what = "read the table's topic"}) == 0 &&
	    sl_pg_link_run(&t->link) == 0 && topic != NULL) {
		snprintf(out, out_bytes, "%s", topic);
		found = 1;
	}
	free(topic);
	free(sql);
	return found;
}

static const char *t_error(void *ctx)
{
	return ((struct pg_target *)ctx)->link.error;
}

static void t_close(void *ctx)
{
	struct pg_target *t = ctx;

	if (t == NULL)
		return;
	sl_pg_link_close(&t->link);
	PQfreemem(t->schema_ident);
	free(t);
}

static const struct sl_target_ops target_ops = {
        .run_record = t_run_record,
        .topic_get = t_topic_get,
        .error = t_error,
        .close = t_close,
};

static int exists_read(const PGresult *res, void *out)
{
	bool *found = out;

	found[0] = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
	found[1] = PQntuples(res) == 1 && PQgetvalue(res, 0, 1)[0] == 't';
	return 0;
}

/* The tables must exist (the applier makes them); reconcile_runs is made here. */
static int tables_check(struct pg_target *t)
{
	static const char exists_sql[] = "SELECT to_regclass(quote_ident($1) || '.' || quote_ident($2)) IS NOT NULL,"
	                                 " to_regclass(quote_ident($1) || '.synclog_purged') IS NOT NULL";
	const Oid types[2] = {SL_PG_OID_TEXT, SL_PG_OID_TEXT};
	const char *values[2] = {t->schema, t->table};
	const int lengths[2] = {(int)strlen(t->schema), (int)strlen(t->table)};
	char *sql = NULL;
	bool found[2] = {false, false};
	int rc;

	rc = sl_pg_link_send_params(
	        &t->link, exists_sql, 2, types, values, lengths, false,
	        (struct sl_pg_step){
	                .check = SL_PG_ROWS, .out = found, .rows_cb = exists_read, .what = "find the tables"});
	if (rc == 0)
		rc = sl_pg_link_run(&t->link);
	if (rc == 0 && !(found[0] && found[1])) {
		snprintf(t->link.error, sizeof(t->link.error),
		         "%s: no table %s.%s: is it a target of `synclog apply`%s%s?", t->link.label, t->schema,
		         t->table, strcmp(t->schema, SL_APPLY_PG_SCHEMA_DEFAULT) == 0 ? "" : " with that --schema",
		         strcmp(t->table, SL_APPLY_SQLITE_TABLE_DEFAULT) == 0 ? "" : " and --table");
		return -ENOENT;
	}
	if (rc == 0 &&
	    asprintf(&sql,
	             "CREATE TABLE IF NOT EXISTS %s.reconcile_runs (started_at_ms bigint NOT NULL,"
	             " finished_at_ms bigint NOT NULL, source text, \"table\" text, compared bigint,"
	             " missing bigint, extra bigint, version bigint, value bigint, diff_ratio double precision,"
	             " threshold double precision, sample double precision, repaired bigint, alert boolean)",
	             t->schema_ident) < 0)
		return fail_memory(t, "create table reconcile_runs");
	if (rc == 0) {
		rc = sl_pg_link_send_sql(&t->link, sql, "create table reconcile_runs");
		free(sql);
		if (rc == 0)
			rc = sl_pg_link_run(&t->link);
	}
	return rc;
}

int sl_target_pg_open(struct sl_target *out, const char *arg, const char *schema, const char *table, char *err,
                      size_t err_bytes)
{
	struct sl_pg_link_options lo = {
	        .conninfo = arg,
	        .application_name = "synclog-reconcile",
	        .reconnect_timeout_ms = SL_APPLY_PG_RECONNECT_TIMEOUT_MS_DEFAULT,
	};
	char label[SL_PG_LABEL_BYTES_MAX], *from = NULL, *table_lit = NULL;
	struct pg_target *t;
	int rc;

	if (schema == NULL)
		schema = SL_APPLY_PG_SCHEMA_DEFAULT;
	if (table == NULL)
		table = SL_APPLY_SQLITE_TABLE_DEFAULT;
	if (sl_apply_sqlite_table_check(table) != 0 || schema[0] == '\0' || strlen(schema) >= SCHEMA_BYTES_MAX) {
		sl_error_set(err, err_bytes, "target postgresql: bad table name '%s' or schema '%s' (1 to 63 bytes)",
		             table, schema);
		return -EINVAL;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL) {
		sl_error_set(err, err_bytes, "target: out of memory");
		return -ENOMEM;
	}
	snprintf(t->schema, sizeof(t->schema), "%s", schema);
	snprintf(t->table, sizeof(t->table), "%s", table);
	snprintf(label, sizeof(label), "target postgresql %s.%s", schema, table);
	lo.label = label;
	rc = sl_pg_link_init(&t->link, &lo);
	if (rc == 0)
		rc = sl_pg_link_connect(&t->link);
	if (rc == 0 && (t->schema_ident = PQescapeIdentifier(t->link.conn, schema, strlen(schema))) == NULL)
		rc = fail_memory(t, "quote the schema");
	if (rc == 0)
		rc = tables_check(t);
	if (rc == 0 &&
	    ((table_lit = PQescapeLiteral(t->link.conn, table, strlen(table))) == NULL ||
	     asprintf(&from,
	              "(SELECT e.key, e.version, e.value::text AS value, e.deleted FROM %1$s.\"%2$s\" e UNION ALL"
	              " SELECT p.key, p.version, NULL::text, true FROM %1$s.synclog_purged p WHERE p.tbl = %3$s AND"
	              " NOT EXISTS (SELECT FROM %1$s.\"%2$s\" e2 WHERE e2.key = p.key)) r",
	              t->schema_ident, table, table_lit) < 0)) {
		from = NULL;
		rc = fail_memory(t, "build the scans");
	}
	if (rc == 0) {
		struct sl_pg_rows_query q = {
		        .conninfo = arg,
		        .label = label,
		        .application_name = "synclog-reconcile",
		        .from = from,
		        .key = "r.key COLLATE \"C\"",
		        .version = "r.version",
		        .deleted = "r.deleted",
		        .value = "r.value",
		        .live = "NOT r.deleted",
		        .key_not_null = true,
		};

		rc = sl_pg_rows_open(&out->rows, &q, err, err_bytes);
		if (rc != 0) {
			free(from);
			PQfreemem(table_lit);
			t_close(t);
			return rc;
		}
	}
	free(from);
	PQfreemem(table_lit);
	if (rc != 0) {
		sl_error_set(err, err_bytes, "%s", t->link.error);
		t_close(t);
		return rc;
	}
	out->ops = &target_ops;
	out->ctx = t;
	out->rows.stem[0] = '\0';
	return 0;
}
