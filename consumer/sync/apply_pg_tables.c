/* The tables of the PostgreSQL store (apply.h, "the PostgreSQL store"): their SQL, created when missing and checked
 * on the first connection, the statements prepared on every connection with the types of their parameters, the
 * claim of an entity table by its topic, and their upkeep (the purges). The schema and table names are quoted into
 * the SQL once, at open; no name ever comes from a record. */
#include <endian.h>
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/base/clock.h"
#include "consumer/sync/apply_pg_impl.h"
#include "consumer/client/client_impl.h"
#include "consumer/client/json_text.h"

#define SCHEMA_VERSION 1
/* The advisory lock of a schema: (this class, hashtext(schema)). The class is "sync" in ASCII, so that the lock is
 * recognisable in pg_locks and does not collide with a service's own locks on small integers. */
#define LOCK_CLASS     1937337955

/* ---- schema and statements ---- */

/* The statements of the store with the quoted schema q put in. */
static int statements_build(struct sl_apply_pg *s, const char *q)
{
	const char *T = s->table_ident, *A = s->archive_ident;
	const char *vt = s->values == SL_APPLY_VALUES_JSON ? "jsonb" : "text";
	const char *cols = "key, version, value, deleted, deleted_at_ms, origin, topic, \"partition\", \"offset\","
	                   " applied_at_ms";
	const char *row_set =
	        "version = excluded.version, value = excluded.value, deleted = excluded.deleted,"
	        " deleted_at_ms = excluded.deleted_at_ms, origin = excluded.origin, topic = excluded.topic,"
	        " \"partition\" = excluded.\"partition\", \"offset\" = excluded.\"offset\","
	        " applied_at_ms = excluded.applied_at_ms";
	/* A delete keeps the time of the first deletion when the row was deleted already, and the stored value when
	 * deletes hide (--on-delete hide) rather than clear it. */
	const char *delete_set_fmt = "version = excluded.version, deleted = true, deleted_at_ms = CASE WHEN"
	                             " entities.deleted THEN entities.deleted_at_ms ELSE excluded.deleted_at_ms END,"
	                             " origin = excluded.origin, topic = excluded.topic,"
	                             " \"partition\" = excluded.\"partition\", \"offset\" = excluded.\"offset\","
	                             " applied_at_ms = excluded.applied_at_ms%s";
	const char *archive_cols = "key, version, value, origin, topic, \"partition\", \"offset\", applied_at_ms,"
	                           " deleted_version, deleted_offset, archived_at_ms";
	const char *conflict_cols = "key, stored_version, incoming_version, stored_digest, incoming_digest, origin,"
	                            " topic, \"partition\", \"offset\", seen_at_ms";
	/* Rule 5: a floor keeps the higher of two versions. */
	const char *floor_set = "ON CONFLICT (tbl, key) DO UPDATE SET version = GREATEST(synclog_purged.version,"
	                        " excluded.version), purged_at_ms = excluded.purged_at_ms";
	char delete_set[640];
	const char *batch_cols = "key, version, value, deleted, deleted_at_ms, origin, topic, \"partition\","
	                         " \"offset\", now_ms";
	const char *offsets = "\"group\", topic, \"partition\", next_offset, applied, stale, duplicate, deleted,"
	                      " dead_lettered, updated_at_ms";

	snprintf(delete_set, sizeof(delete_set), delete_set_fmt,
	         s->on_delete == SL_APPLY_ON_DELETE_HIDE ? "" : ", value = NULL");
#define SQL(i, ...)                                          \
	do {                                                 \
		if (asprintf(&s->sql[i], __VA_ARGS__) < 0) { \
			s->sql[i] = NULL;                    \
			return -ENOMEM;                      \
		}                                            \
	} while (0)
	SQL(ST_KEY_GET, "SELECT version, deleted FROM %s WHERE key = $1", T);
	SQL(ST_UPSERT,
	    "INSERT INTO %s AS entities (%s) VALUES ($1, $2, $3::%s, false, NULL, $4, $5, $6, $7, $8)"
	    " ON CONFLICT (key) DO UPDATE SET %s",
	    T, cols, vt, row_set);
	SQL(ST_SOFT_DELETE,
	    "INSERT INTO %s AS entities (%s) VALUES ($1, $2, NULL, true, $8, $4, $5, $6, $7, $8)"
	    " ON CONFLICT (key) DO UPDATE SET %s",
	    T, cols, delete_set);
	SQL(ST_STALE,
	    "INSERT INTO %s.stale_events (key, stored_version, incoming_version, topic, \"partition\", \"offset\","
	    " seen_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
	    q);
	SQL(ST_IK_SEEN, "SELECT 1 FROM %s.synclog_idempotency_keys WHERE idempotency_key = $1", q);
	SQL(ST_IK_REMEMBER,
	    "INSERT INTO %s.synclog_idempotency_keys (idempotency_key, seen_at_ms) VALUES ($1, $2)"
	    " ON CONFLICT (idempotency_key) DO UPDATE SET seen_at_ms = excluded.seen_at_ms",
	    q);
	SQL(ST_OFFSETS_READ,
	    "SELECT topic, \"partition\", next_offset, applied, stale, duplicate, deleted, dead_lettered"
	    " FROM %s.synclog_offsets WHERE \"group\" = $1 ORDER BY topic, \"partition\"",
	    q);
	SQL(ST_OFFSET_INSERT,
	    "INSERT INTO %s.synclog_offsets (%s) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO "
	    "NOTHING",
	    q, offsets);
	SQL(ST_OFFSET_UPDATE,
	    "UPDATE %s.synclog_offsets SET next_offset = $4, applied = applied + $5, stale = stale + $6,"
	    " duplicate = duplicate + $7, deleted = deleted + $8, dead_lettered = dead_lettered + $9,"
	    " updated_at_ms = $10 WHERE \"group\" = $1 AND topic = $2 AND \"partition\" = $3 AND next_offset = $11",
	    q);
	SQL(ST_PURGE_TOMBSTONES, "DELETE FROM %s WHERE deleted AND deleted_at_ms <= $1", T);
	SQL(ST_PURGE_STALE, "DELETE FROM %s.stale_events WHERE seen_at_ms <= $1", q);
	SQL(ST_PURGE_IK_AGE, "DELETE FROM %s.synclog_idempotency_keys WHERE seen_at_ms <= $1", q);
	SQL(ST_PURGE_IK_COUNT,
	    "DELETE FROM %s.synclog_idempotency_keys WHERE idempotency_key IN (SELECT idempotency_key FROM"
	    " %s.synclog_idempotency_keys ORDER BY seen_at_ms LIMIT greatest(0, (SELECT count(*) FROM"
	    " %s.synclog_idempotency_keys) - $1))",
	    q, q, q);
	SQL(ST_PREFETCH_KEYS, "SELECT key, version, deleted FROM %s WHERE key = ANY($1)", T);
	SQL(ST_PREFETCH_IKS, "SELECT idempotency_key FROM %s.synclog_idempotency_keys WHERE idempotency_key = ANY($1)",
	    q);
	SQL(ST_BATCH_ROWS,
	    "INSERT INTO %s AS entities (%s) SELECT %s FROM pg_temp.synclog_batch WHERE kind = 'u'"
	    " ON CONFLICT (key) DO UPDATE SET %s",
	    T, cols, batch_cols, row_set);
	SQL(ST_BATCH_DELETES,
	    "INSERT INTO %s AS entities (%s) SELECT %s FROM pg_temp.synclog_batch WHERE kind = 'd'"
	    " ON CONFLICT (key) DO UPDATE SET %s",
	    T, cols, batch_cols, delete_set);
	SQL(ST_BATCH_STALE,
	    "INSERT INTO %s.stale_events (key, stored_version, incoming_version, topic, \"partition\", \"offset\","
	    " seen_at_ms) SELECT key, stored_version, version, topic, \"partition\", \"offset\", now_ms"
	    " FROM pg_temp.synclog_batch WHERE kind = 's'",
	    q);
	SQL(ST_BATCH_IKS,
	    "INSERT INTO %s.synclog_idempotency_keys (idempotency_key, seen_at_ms) SELECT idempotency_key, now_ms"
	    " FROM pg_temp.synclog_batch WHERE kind = 'i'"
	    " ON CONFLICT (idempotency_key) DO UPDATE SET seen_at_ms = excluded.seen_at_ms",
	    q);
	SQL(ST_LOCK, "SELECT pg_advisory_xact_lock(%d, hashtext($1))", LOCK_CLASS);
	/* The row as it was, before a delete replaces it: $1 key, $2 the delete's version, $3 its offset, $4 now. Only
	 * a live row is archived: a second delete of a deleted key has nothing to keep. */
	SQL(ST_ARCHIVE,
	    "INSERT INTO %s (%s) SELECT key, version, value, origin, topic, \"partition\", \"offset\", applied_at_ms,"
	    " $2, $3, $4 FROM %s WHERE key = $1 AND NOT deleted",
	    A, archive_cols, T);
	SQL(ST_BATCH_ARCHIVE_KEPT,
	    "INSERT INTO %s (%s) SELECT key, version, value, origin, topic, \"partition\", \"offset\", now_ms,"
	    " deleted_version, deleted_offset, now_ms FROM pg_temp.synclog_batch WHERE kind = 'A'",
	    A, archive_cols);
	SQL(ST_BATCH_ARCHIVE_STORED,
	    "INSERT INTO %s (%s) SELECT e.key, e.version, e.value, e.origin, e.topic, e.\"partition\", e.\"offset\","
	    " e.applied_at_ms, b.deleted_version, b.deleted_offset, b.now_ms FROM pg_temp.synclog_batch b JOIN %s e"
	    " ON e.key = b.key WHERE b.kind = 'a' AND NOT e.deleted",
	    A, archive_cols, T);
	SQL(ST_TOMBSTONES_DUE,
	    "SELECT key, topic, \"partition\", \"offset\" FROM %s WHERE deleted AND deleted_at_ms <= $1"
	    " ORDER BY deleted_at_ms LIMIT $2",
	    T);
	SQL(ST_TOMBSTONE_PURGE,
	    "DELETE FROM %s WHERE key = $1 AND deleted AND topic = $2 AND \"partition\" = $3 AND \"offset\" = $4", T);
	/* Rule 5: floors, and their upkeep ($1 the table's name wherever floors are read). */
	SQL(ST_FLOOR_GET, "SELECT version FROM %s.synclog_purged WHERE tbl = $1 AND key = $2", q);
	SQL(ST_PREFETCH_FLOORS, "SELECT key, version FROM %s.synclog_purged WHERE tbl = $1 AND key = ANY($2)", q);
	/* The tombstones about to go keep their versions as floors: $1 before, $2 the table's name, $3 now. */
	SQL(ST_PURGE_FLOORS_KEEP,
	    "INSERT INTO %s.synclog_purged AS synclog_purged (tbl, key, version, purged_at_ms) SELECT $2, key, version,"
	    " $3 FROM %s WHERE deleted AND deleted_at_ms <= $1 %s",
	    q, T, floor_set);
	/* A floor whose key has a row again at or above it says nothing the row does not: keep the table compact. */
	SQL(ST_PURGE_FLOORS_PRUNE,
	    "DELETE FROM %s.synclog_purged p WHERE p.tbl = $1 AND EXISTS (SELECT 1 FROM %s e WHERE e.key = p.key AND"
	    " e.version >= p.version)",
	    q, T);
	SQL(ST_PURGE_CONFLICTS, "DELETE FROM %s.conflicts WHERE seen_at_ms <= $1", q);
	/* One tombstone whose delete the log no longer holds: $1 key, $2 topic, $3 partition, $4 offset, $5 the
	 * table's name, $6 now. */
	SQL(ST_TOMBSTONE_FLOOR_KEEP,
	    "INSERT INTO %s.synclog_purged AS synclog_purged (tbl, key, version, purged_at_ms) SELECT $5, key, version,"
	    " $6 FROM %s WHERE key = $1 AND deleted AND topic = $2 AND \"partition\" = $3 AND \"offset\" = $4 %s",
	    q, T, floor_set);
	/* Rule 4b/4c: the stored value as text (jsonb prints it its own way: compared as JSON, value.h). */
	SQL(ST_VALUE_GET, "SELECT value::text, deleted FROM %s WHERE key = $1", T);
	SQL(ST_PREFETCH_VALUES, "SELECT key, value::text, deleted FROM %s WHERE key = ANY($1)", T);
	SQL(ST_CONFLICT, "INSERT INTO %s.conflicts (%s) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)", q,
	    conflict_cols);
	SQL(ST_BATCH_CONFLICTS,
	    "INSERT INTO %s.conflicts (%s) SELECT key, stored_version, version, stored_digest, incoming_digest,"
	    " origin, topic, \"partition\", \"offset\", now_ms FROM pg_temp.synclog_batch WHERE kind = 'c'",
	    q, conflict_cols);
	/* Which topic feeds the table ($1 its name). */
	SQL(ST_CLAIM_GET, "SELECT topic FROM %s.synclog_tables WHERE name = $1", q);
	SQL(ST_CLAIM,
	    "INSERT INTO %s.synclog_tables (name, topic, claimed_at_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", q);
	/* Offset resets (apply.h): the generation adopted ($1 group, $2 generation, $3 now), and a position that may
	 * move back ($1 group, $2 topic, $3 partition, $4 next offset, $5 now; the counts stay). */
	SQL(ST_RESET_GET, "SELECT reset_generation FROM %s.synclog_resets WHERE \"group\" = $1", q);
	SQL(ST_RESET_SET,
	    "INSERT INTO %s.synclog_resets (\"group\", reset_generation, adopted_at_ms) VALUES ($1, $2, $3)"
	    " ON CONFLICT (\"group\") DO UPDATE SET reset_generation = excluded.reset_generation,"
	    " adopted_at_ms = excluded.adopted_at_ms",
	    q);
	SQL(ST_OFFSET_RESET,
	    "INSERT INTO %s.synclog_offsets (\"group\", topic, \"partition\", next_offset, applied, stale, duplicate,"
	    " deleted, dead_lettered, updated_at_ms) VALUES ($1, $2, $3, $4, 0, 0, 0, 0, 0, $5)"
	    " ON CONFLICT (\"group\", topic, \"partition\") DO UPDATE SET next_offset = excluded.next_offset,"
	    " updated_at_ms = excluded.updated_at_ms",
	    q);
#undef SQL
	return 0;
}

/* Create what is missing, in one transaction under the schema's lock (two appliers starting together must not
 * both create), and check what exists: the schema version and the value column's type. */
static int schema_setup(struct sl_apply_pg *s, const char *q, const char *lit)
{
	const char *vt = s->values == SL_APPLY_VALUES_JSON ? "jsonb" : "text";
	const char *T = s->table_ident, *A = s->archive_ident;
	char tombstones[SL_APPLY_PG_NAME_BYTES_MAX + 16], archive_key[SL_APPLY_PG_NAME_BYTES_MAX + 16],
	        table_lit[SL_APPLY_PG_NAME_BYTES_MAX + 3];
	char *sql = NULL;
	PGresult *res;
	int rc, version = -1;

	/* Index names follow the table's, quoted as identifiers; the table's name is letters, digits and '_'. */
	snprintf(tombstones, sizeof(tombstones), "\"%s_tombstones\"", s->table);
	snprintf(archive_key, sizeof(archive_key), "\"%s_archive_key\"", s->table);
	snprintf(table_lit, sizeof(table_lit), "'%s'", s->table);
	if (asprintf(&sql,
	             "BEGIN; SELECT pg_advisory_xact_lock(%d, hashtext(%s));"
	             "CREATE SCHEMA IF NOT EXISTS %s;"
	             "CREATE TABLE IF NOT EXISTS %s.synclog_schema (version integer NOT NULL);"
	             "CREATE TABLE IF NOT EXISTS %s (key text COLLATE \"C\" PRIMARY KEY, version bigint NOT NULL, "
	             "value %s,"
	             " deleted boolean NOT NULL, deleted_at_ms bigint, origin text, topic text, \"partition\" integer,"
	             " \"offset\" bigint, applied_at_ms bigint);"
	             "CREATE INDEX IF NOT EXISTS %s ON %s (deleted_at_ms) WHERE deleted;"
	             "CREATE TABLE IF NOT EXISTS %s (key text NOT NULL, version bigint NOT NULL, value %s, origin text,"
	             " topic text, \"partition\" integer, \"offset\" bigint, applied_at_ms bigint, deleted_version "
	             "bigint"
	             " NOT NULL, deleted_offset bigint, archived_at_ms bigint NOT NULL);"
	             "CREATE INDEX IF NOT EXISTS %s ON %s (key);"
	             "CREATE TABLE IF NOT EXISTS %s.synclog_tables (name text PRIMARY KEY, topic text NOT NULL,"
	             " claimed_at_ms bigint NOT NULL);"
	             "CREATE TABLE IF NOT EXISTS %s.synclog_purged (tbl text NOT NULL, key text COLLATE \"C\" NOT "
	             "NULL, version bigint"
	             " NOT NULL, purged_at_ms bigint NOT NULL, PRIMARY KEY (tbl, key));"
	             "CREATE TABLE IF NOT EXISTS %s.conflicts (key text NOT NULL, stored_version bigint NOT NULL,"
	             " incoming_version bigint NOT NULL, stored_digest text, incoming_digest text, origin text, topic"
	             " text, \"partition\" integer, \"offset\" bigint, seen_at_ms bigint NOT NULL);"
	             "CREATE INDEX IF NOT EXISTS conflicts_seen ON %s.conflicts (seen_at_ms);"
	             "CREATE TABLE IF NOT EXISTS %s.stale_events (key text NOT NULL, stored_version bigint NOT NULL,"
	             " incoming_version bigint NOT NULL, topic text, \"partition\" integer, \"offset\" bigint,"
	             " seen_at_ms bigint NOT NULL);"
	             "CREATE INDEX IF NOT EXISTS stale_events_seen ON %s.stale_events (seen_at_ms);"
	             "CREATE TABLE IF NOT EXISTS %s.synclog_offsets (\"group\" text NOT NULL, topic text NOT NULL,"
	             " \"partition\" integer NOT NULL, next_offset bigint NOT NULL, applied bigint NOT NULL,"
	             " stale bigint NOT NULL, duplicate bigint NOT NULL, deleted bigint NOT NULL,"
	             " dead_lettered bigint NOT NULL, updated_at_ms bigint NOT NULL,"
	             " PRIMARY KEY (\"group\", topic, \"partition\"));"
	             "CREATE TABLE IF NOT EXISTS %s.synclog_idempotency_keys (idempotency_key bytea PRIMARY KEY,"
	             " seen_at_ms bigint NOT NULL);"
	             "CREATE INDEX IF NOT EXISTS synclog_idempotency_keys_seen ON %s.synclog_idempotency_keys"
	             " (seen_at_ms);"
	             "CREATE TABLE IF NOT EXISTS %s.synclog_resets (\"group\" text PRIMARY KEY,"
	             " reset_generation bigint NOT NULL, adopted_at_ms bigint NOT NULL);"
	             "INSERT INTO %s.synclog_schema (version) SELECT %d WHERE NOT EXISTS (SELECT FROM"
	             " %s.synclog_schema);"
	             "COMMIT",
	             LOCK_CLASS, lit, q, q, T, vt, tombstones, T, A, vt, archive_key, A, q, q, q, q, q, q, q, q, q, q,
	             q, SCHEMA_VERSION, q) < 0)
		return sl_apply_pg_fail_memory(s, "create the tables");
	rc = sl_pg_link_exec(&s->link, sql, "create the tables");
	free(sql);
	if (rc != 0)
		return rc;
	if (asprintf(&sql,
	             "SELECT (SELECT max(version) FROM %s.synclog_schema), (SELECT format_type(a.atttypid, a.atttypmod)"
	             " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid ="
	             " c.relnamespace WHERE n.nspname = %s AND c.relname = %s AND a.attname = 'value')",
	             q, lit, table_lit) < 0)
		return sl_apply_pg_fail_memory(s, "read the schema version");
	res = PQexec(s->link.conn, sql);
	free(sql);
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		rc = res != NULL ? sl_pg_link_fail_result(&s->link, res, "read the schema version", false)
		                 : sl_pg_link_fail(&s->link, "read the schema version");
		PQclear(res);
		return rc;
	}
	version = atoi(PQgetvalue(res, 0, 0));
	if (version > SCHEMA_VERSION) {
		snprintf(
		        s->link.error, sizeof(s->link.error),
		        "postgresql %s: schema version %d was written by a newer synclog (this one knows %d): use that "
		        "version",
		        s->schema, version, SCHEMA_VERSION);
		rc = -EINVAL;
	} else if (strcmp(PQgetvalue(res, 0, 1), vt) != 0) {
		snprintf(s->link.error, sizeof(s->link.error),
		         "postgresql %s: %s.value is %s but the values are %s: apply with --values %s, or into "
		         "another schema",
		         s->schema, s->table, PQgetvalue(res, 0, 1), vt,
		         strcmp(PQgetvalue(res, 0, 1), "jsonb") == 0 ? "json" : "text");
		rc = -EINVAL;
	}
	PQclear(res);
	return rc;
}

/* name as an identifier ("...", quotes doubled) or a string literal ('...', quotes doubled; the name has no
 * backslash, so standard_conforming_strings does not matter). NULL when out of memory. */
static char *quote(const char *name, char q)
{
	size_t len = strlen(name);
	char *out = malloc(2 * len + 3), *p = out;

	if (out == NULL)
		return NULL;
	*p++ = q;
	for (const char *c = name; *c != '\0'; c++) {
		if (*c == q)
			*p++ = q;
		*p++ = *c;
	}
	*p++ = q;
	*p = '\0';
	return out;
}

/* The parameter types of each statement (every parameter is sent binary). */
static void stmt_types(const struct sl_apply_pg *s, enum stmt i, Oid *types, int *n)
{
	Oid value = s->values == SL_APPLY_VALUES_JSON ? SL_PG_OID_JSONB : SL_PG_OID_TEXT;
	static const Oid entity[] = {SL_PG_OID_TEXT, SL_PG_OID_INT8, 0, SL_PG_OID_TEXT, SL_PG_OID_TEXT, SL_PG_OID_INT4,
	                             SL_PG_OID_INT8, SL_PG_OID_INT8};
	static const Oid offset[] = {SL_PG_OID_TEXT, SL_PG_OID_TEXT, SL_PG_OID_INT4, SL_PG_OID_INT8,
	                             SL_PG_OID_INT8, SL_PG_OID_INT8, SL_PG_OID_INT8, SL_PG_OID_INT8,
	                             SL_PG_OID_INT8, SL_PG_OID_INT8, SL_PG_OID_INT8};

	*n = 0;
	switch (i) {
	case ST_KEY_GET:
		types[(*n)++] = SL_PG_OID_TEXT;
		break;
	case ST_UPSERT:
	case ST_SOFT_DELETE:
		memcpy(types, entity, sizeof(entity));
		types[2] = value;
		*n = 8;
		break;
	case ST_STALE:
		types[0] = SL_PG_OID_TEXT;
		types[1] = types[2] = SL_PG_OID_INT8;
		types[3] = SL_PG_OID_TEXT;
		types[4] = SL_PG_OID_INT4;
		types[5] = types[6] = SL_PG_OID_INT8;
		*n = 7;
		break;
	case ST_IK_SEEN:
		types[(*n)++] = SL_PG_OID_BYTEA;
		break;
	case ST_IK_REMEMBER:
		types[0] = SL_PG_OID_BYTEA;
		types[1] = SL_PG_OID_INT8;
		*n = 2;
		break;
	case ST_OFFSETS_READ:
		types[(*n)++] = SL_PG_OID_TEXT;
		break;
	case ST_OFFSET_INSERT:
	case ST_OFFSET_UPDATE:
		memcpy(types, offset, sizeof(offset));
		*n = i == ST_OFFSET_UPDATE ? 11 : 10;
		break;
	case ST_PURGE_TOMBSTONES:
	case ST_PURGE_STALE:
	case ST_PURGE_IK_AGE:
	case ST_PURGE_IK_COUNT:
		types[(*n)++] = SL_PG_OID_INT8;
		break;
	case ST_PREFETCH_KEYS:
		types[(*n)++] = SL_PG_OID_TEXT_ARRAY;
		break;
	case ST_PREFETCH_IKS:
		types[(*n)++] = SL_PG_OID_BYTEA_ARRAY;
		break;
	case ST_ARCHIVE:
		types[0] = SL_PG_OID_TEXT;
		types[1] = types[2] = types[3] = SL_PG_OID_INT8;
		*n = 4;
		break;
	case ST_TOMBSTONES_DUE:
		types[0] = types[1] = SL_PG_OID_INT8;
		*n = 2;
		break;
	case ST_TOMBSTONE_PURGE:
		types[0] = types[1] = SL_PG_OID_TEXT;
		types[2] = SL_PG_OID_INT4;
		types[3] = SL_PG_OID_INT8;
		*n = 4;
		break;
	case ST_LOCK:
	case ST_VALUE_GET:
	case ST_PREFETCH_VALUES:
	case ST_CLAIM_GET:
		types[(*n)++] = i == ST_PREFETCH_VALUES ? SL_PG_OID_TEXT_ARRAY : SL_PG_OID_TEXT;
		break;
	case ST_FLOOR_GET:
	case ST_PREFETCH_FLOORS:
		types[0] = SL_PG_OID_TEXT;
		types[1] = i == ST_PREFETCH_FLOORS ? SL_PG_OID_TEXT_ARRAY : SL_PG_OID_TEXT;
		*n = 2;
		break;
	case ST_PURGE_FLOORS_KEEP:
		types[0] = SL_PG_OID_INT8;
		types[1] = SL_PG_OID_TEXT;
		types[2] = SL_PG_OID_INT8;
		*n = 3;
		break;
	case ST_PURGE_FLOORS_PRUNE:
		types[(*n)++] = SL_PG_OID_TEXT;
		break;
	case ST_PURGE_CONFLICTS:
		types[(*n)++] = SL_PG_OID_INT8;
		break;
	case ST_TOMBSTONE_FLOOR_KEEP:
		types[0] = types[1] = SL_PG_OID_TEXT;
		types[2] = SL_PG_OID_INT4;
		types[3] = SL_PG_OID_INT8;
		types[4] = SL_PG_OID_TEXT;
		types[5] = SL_PG_OID_INT8;
		*n = 6;
		break;
	case ST_CONFLICT:
		types[0] = SL_PG_OID_TEXT;
		types[1] = types[2] = SL_PG_OID_INT8;
		types[3] = types[4] = types[5] = types[6] = SL_PG_OID_TEXT;
		types[7] = SL_PG_OID_INT4;
		types[8] = types[9] = SL_PG_OID_INT8;
		*n = 10;
		break;
	case ST_CLAIM:
		types[0] = types[1] = SL_PG_OID_TEXT;
		types[2] = SL_PG_OID_INT8;
		*n = 3;
		break;
	case ST_RESET_GET:
		types[(*n)++] = SL_PG_OID_TEXT;
		break;
	case ST_RESET_SET:
		types[0] = SL_PG_OID_TEXT;
		types[1] = types[2] = SL_PG_OID_INT8;
		*n = 3;
		break;
	case ST_OFFSET_RESET:
		types[0] = types[1] = SL_PG_OID_TEXT;
		types[2] = SL_PG_OID_INT4;
		types[3] = types[4] = SL_PG_OID_INT8;
		*n = 5;
		break;
	case ST_BATCH_CONFLICTS:
	case ST_BATCH_ROWS:
	case ST_BATCH_DELETES:
	case ST_BATCH_STALE:
	case ST_BATCH_IKS:
	case ST_BATCH_ARCHIVE_KEPT:
	case ST_BATCH_ARCHIVE_STORED:
	case ST_COUNT:
		break;
	}
}

/* The session of a new connection: on the first, the tables (created when missing, then checked); on every one,
 * the temporary table of the kept rows and the prepared statements. */
int sl_apply_pg_session_setup(struct sl_pg_link *l, void *cb_arg)
{
	struct sl_apply_pg *s = cb_arg;
	char sql[1024];
	int rc = 0;

	if (!s->schema_checked) {
		rc = schema_setup(s, s->schema_ident, s->schema_literal);
		s->schema_checked = rc == 0;
	}
	snprintf(sql, sizeof(sql),
	         "CREATE TEMPORARY TABLE IF NOT EXISTS synclog_batch (kind text NOT NULL, key text, version bigint,"
	         " value %s, deleted boolean, deleted_at_ms bigint, origin text, topic text, \"partition\" integer,"
	         " \"offset\" bigint, now_ms bigint, stored_version bigint, idempotency_key bytea, deleted_version"
	         " bigint, deleted_offset bigint, stored_digest text, incoming_digest text)"
	         " ON COMMIT DELETE ROWS",
	         s->values == SL_APPLY_VALUES_JSON ? "jsonb" : "text");
	if (rc == 0)
		rc = sl_pg_link_exec(l, sql, "create the temporary table synclog_batch");
	for (int i = 0; rc == 0 && i < ST_COUNT; i++) {
		char name[STMT_NAME_BYTES];
		Oid types[16];
		int n;

		stmt_types(s, (enum stmt)i, types, &n);
		snprintf(name, sizeof(name), "s%d", i);
		rc = sl_pg_link_prepare(l, name, s->sql[i], n, types);
	}
	return rc;
}

/* ---- upkeep ---- */

/* Queue one of the purge's DELETEs with one parameter, its rows added to *count. */
static int purge_send(struct sl_apply_pg *s, enum stmt i, const char *param, int param_len, uint64_t *count,
                      const char *what)
{
	const char *values[1] = {param};
	int lengths[1] = {param_len};

	return sl_apply_pg_send(s, i, 1, values, lengths, false,
	                        (struct sl_pg_step){.check = SL_PG_COUNT, .out = count, .what = what});
}

int sl_apply_pg_purge(void *store, int64_t now_ms, int64_t retention_ms, struct sl_apply_purge_counts *out)
{
	struct sl_apply_pg *s = store;
	uint64_t before = htobe64((uint64_t)(now_ms - retention_ms)), now = htobe64((uint64_t)now_ms);
	uint64_t keys_max = htobe64(SL_APPLY_IDEMPOTENCY_KEYS_MAX), floors = 0, conflicts = 0;
	const char *keep[3] = {(const char *)&before, s->table, (const char *)&now};
	int keep_lengths[3] = {8, (int)strlen(s->table), 8};
	int rc;

	memset(out, 0, sizeof(*out));
	rc = sl_apply_pg_txn_send_begin(s);
	/* With follow_log the tombstones go one by one as the log's cleaner drops their deletes (tombstone_purge,
	 * which keeps each floor too); otherwise by time here, each one's version kept as its key's floor first. */
	if (rc == 0 && !s->follow_log) {
		rc = sl_apply_pg_send(s, ST_PURGE_FLOORS_KEEP, 3, keep, keep_lengths, false,
		                      (struct sl_pg_step){.check = SL_PG_COUNT,
		                                          .out = &floors,
		                                          .what = "keep the versions of purged keys"});
		if (rc == 0)
			rc = purge_send(s, ST_PURGE_TOMBSTONES, keep[0], 8, &out->tombstones, "purge tombstones");
	}
	if (rc == 0)
		rc = purge_send(s, ST_PURGE_FLOORS_PRUNE, s->table, (int)strlen(s->table), &floors,
		                "drop the floors of keys stored again");
	if (rc == 0)
		rc = purge_send(s, ST_PURGE_CONFLICTS, keep[0], 8, &conflicts, "purge conflicts");
	if (rc == 0)
		rc = purge_send(s, ST_PURGE_STALE, keep[0], 8, &out->stale_events, "purge stale events");
	if (rc == 0)
		rc = purge_send(s, ST_PURGE_IK_AGE, keep[0], 8, &out->idempotency_keys, "expire idempotency keys");
	if (rc == 0)
		rc = purge_send(s, ST_PURGE_IK_COUNT, (const char *)&keys_max, 8, &out->idempotency_keys,
		                "bound the idempotency keys");
	return rc != 0 ? rc : sl_pg_link_run(&s->link);
}

struct tombstones_out {
	struct sl_apply_tombstone *t;
	uint32_t max;
	uint32_t count;
};

/* Rows (key, topic, partition, offset; text) into the engine's array; the keys are the engine's to free. */
static int tombstones_cb(const PGresult *res, void *out)
{
	struct tombstones_out *o = out;

	for (int i = 0; i < PQntuples(res) && o->count < o->max; i++) {
		struct sl_apply_tombstone *t = &o->t[o->count];

		t->key = strdup(PQgetvalue(res, i, 0));
		if (t->key == NULL)
			return -ENOMEM;
		snprintf(t->topic, sizeof(t->topic), "%s", PQgetvalue(res, i, 1));
		t->partition = (uint32_t)strtoul(PQgetvalue(res, i, 2), NULL, 10);
		t->offset = strtoll(PQgetvalue(res, i, 3), NULL, 10);
		o->count++;
	}
	return 0;
}

int sl_apply_pg_tombstones_due(void *store, int64_t before_ms, struct sl_apply_tombstone *out, uint32_t max,
                               uint32_t *count_out)
{
	struct sl_apply_pg *s = store;
	struct tombstones_out o = {.t = out, .max = max};
	uint64_t before = htobe64((uint64_t)before_ms), limit = htobe64(max);
	const char *values[2] = {(const char *)&before, (const char *)&limit};
	int lengths[2] = {8, 8};
	int rc;

	SL_ASSERT(s->txn == TXN_NONE);
	rc = sl_pg_link_ready(&s->link);
	if (rc == 0)
		rc = sl_apply_pg_send(
		        s, ST_TOMBSTONES_DUE, 2, values, lengths, false,
		        (struct sl_pg_step){
		                .check = SL_PG_ROWS, .out = &o, .rows_cb = tombstones_cb, .what = "list deleted rows"});
	if (rc == 0)
		rc = sl_pg_link_run(&s->link);
	if (rc != 0) {
		for (uint32_t i = 0; i < o.count; i++)
			free(out[i].key);
		o.count = 0;
	}
	*count_out = o.count;
	return rc;
}

int sl_apply_pg_tombstone_purge(void *store, const struct sl_apply_tombstone *t, bool *purged_out)
{
	struct sl_apply_pg *s = store;
	uint32_t partition = htobe32(t->partition);
	uint64_t offset = htobe64((uint64_t)t->offset), now = htobe64((uint64_t)sl_clock_wall_ms()), purged = 0;
	const char *values[6] = {t->key,   t->topic,          (const char *)&partition, (const char *)&offset,
	                         s->table, (const char *)&now};
	int lengths[6] = {(int)strlen(t->key), (int)strlen(t->topic), 4, 8, (int)strlen(s->table), 8};
	int rc = sl_apply_pg_txn_send_begin(s);

	/* Its version becomes the key's floor (rule 5), then the row goes. */
	if (rc == 0)
		rc = sl_apply_pg_send(
		        s, ST_TOMBSTONE_FLOOR_KEEP, 6, values, lengths, false,
		        (struct sl_pg_step){.check = SL_PG_COMMAND, .what = "keep the version of a purged key"});
	if (rc == 0)
		rc = sl_apply_pg_send(
		        s, ST_TOMBSTONE_PURGE, 4, values, lengths, false,
		        (struct sl_pg_step){.check = SL_PG_COUNT, .out = &purged, .what = "purge a deleted row"});
	if (rc == 0)
		rc = sl_pg_link_run(&s->link);
	*purged_out = rc == 0 && purged == 1;
	return rc;
}

/* ---- the table's topic ---- */

struct claim_owner {
	bool found;
	char topic[SL_TOPIC_NAME_BYTES_MAX + 1];
};

static int claim_owner_cb(const PGresult *res, void *out)
{
	struct claim_owner *o = out;

	o->found = PQntuples(res) == 1;
	if (o->found)
		snprintf(o->topic, sizeof(o->topic), "%s", PQgetvalue(res, 0, 0));
	return 0;
}

int sl_apply_pg_claim(struct sl_apply_pg *db, const char *topic)
{
	struct sl_apply_pg *s = db;
	struct claim_owner owner = {0};
	uint64_t now = htobe64((uint64_t)sl_clock_wall_ms());
	const char *values[3] = {s->table, topic, (const char *)&now};
	int lengths[3] = {(int)strlen(s->table), (int)strlen(topic), 8};
	int rc;

	/* In a transaction of its own, under the schema's lock: two appliers claiming at once see each other. */
	SL_ASSERT(s->txn == TXN_NONE);
	s->txn = TXN_PENDING;
	rc = sl_apply_pg_txn_send_begin(s);
	if (rc == 0)
		rc = sl_apply_pg_send(s, ST_CLAIM_GET, 1, values, lengths, false,
		                      (struct sl_pg_step){.check = SL_PG_ROWS,
		                                          .out = &owner,
		                                          .rows_cb = claim_owner_cb,
		                                          .what = "read which topic feeds the table"});
	if (rc == 0)
		rc = sl_pg_link_run(&s->link);
	if (rc == 0 && owner.found && strcmp(owner.topic, topic) != 0) {
		snprintf(
		        s->link.error, sizeof(s->link.error),
		        "postgresql %s: table '%s' is fed by topic '%s'; applying topic '%s' into it would compare the "
		        "versions of one topic's keys with the other's: apply '%s' into its own table (--table NAME)",
		        s->schema, s->table, owner.topic, topic, topic);
		rc = -EEXIST;
	}
	if (rc == 0 && !owner.found)
		rc = sl_apply_pg_send(
		        s, ST_CLAIM, 3, values, lengths, false,
		        (struct sl_pg_step){.check = SL_PG_COMMAND, .what = "claim the table for its topic"});
	if (rc == 0)
		rc = sl_pg_link_send_sql(&s->link, "COMMIT", "commit the table's claim");
	if (rc == 0)
		rc = sl_pg_link_run(&s->link);
	if (rc != 0) {
		char why[SL_ERROR_BYTES];

		snprintf(why, sizeof(why), "%s", s->link.error);
		sl_apply_pg_rollback(s);
		snprintf(s->link.error, sizeof(s->link.error), "%s", why);
		return rc;
	}
	s->txn = TXN_NONE;
	return 0;
}

int sl_apply_pg_open(struct sl_apply_pg **out, const struct sl_apply_pg_options *o, char *err, size_t err_bytes)
{
	const char *schema = o->schema != NULL ? o->schema : SL_APPLY_PG_SCHEMA_DEFAULT;
	const char *table = o->table != NULL ? o->table : SL_APPLY_SQLITE_TABLE_DEFAULT;
	struct sl_pg_link_options lo = {
	        .conninfo = o->conninfo,
	        .reconnect_timeout_ms = o->reconnect_timeout_ms != 0 ? o->reconnect_timeout_ms
	                                                             : SL_APPLY_PG_RECONNECT_TIMEOUT_MS_DEFAULT,
	        .application_name = "synclog-apply",
	        .session_cb = sl_apply_pg_session_setup,
	};
	struct sl_apply_pg *s;
	char label[SL_PG_LABEL_BYTES_MAX];
	int rc;

	*out = NULL;
	if (schema[0] == '\0' || strlen(schema) > SL_APPLY_PG_NAME_BYTES_MAX || strchr(schema, '\\') != NULL ||
	    !sl_utf8_text_valid((const uint8_t *)schema, strlen(schema))) {
		sl_error_set(err, err_bytes,
		             "postgresql target: the schema name must be 1 to %d bytes of UTF-8 text without '\\'",
		             SL_APPLY_PG_NAME_BYTES_MAX);
		return -EINVAL;
	}
	if (sl_apply_sqlite_table_check(table) != 0) {
		sl_error_set(
		        err, err_bytes,
		        "postgresql target: the table name must be a letter or '_', then letters, digits or '_', at "
		        "most %d in all, not a table of synclog's own",
		        SL_APPLY_PG_NAME_BYTES_MAX);
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		sl_error_set(err, err_bytes, "postgresql target: out of memory");
		return -ENOMEM;
	}
	snprintf(s->schema, sizeof(s->schema), "%s", schema);
	snprintf(s->table, sizeof(s->table), "%s", table);
	snprintf(label, sizeof(label), "postgresql %s", schema);
	lo.label = label;
	lo.session_cb_arg = s;
	s->values = o->values;
	s->on_delete = o->on_delete;
	s->follow_log = o->follow_log;
	rc = sl_pg_link_init(&s->link, &lo);
	if (rc == 0) {
		s->schema_ident = quote(schema, '"');
		s->schema_literal = quote(schema, '\'');
		if (s->schema_ident != NULL &&
		    (asprintf(&s->table_ident, "%s.\"%s\"", s->schema_ident, table) < 0 ||
		     asprintf(&s->archive_ident, "%s.\"%s_archive\"", s->schema_ident, table) < 0)) {
			s->table_ident = s->archive_ident = NULL;
		}
		if (s->schema_ident == NULL || s->schema_literal == NULL || s->table_ident == NULL ||
		    s->archive_ident == NULL || statements_build(s, s->schema_ident) != 0)
			rc = sl_apply_pg_fail_memory(s, "build the statements");
	}
	if (rc == 0)
		rc = sl_pg_link_connect(&s->link);
	if (rc != 0) {
		sl_error_set(err, err_bytes, "%s", s->link.error);
		sl_apply_pg_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

void sl_apply_pg_close(struct sl_apply_pg *s)
{
	if (s == NULL)
		return;
	sl_pg_link_close(&s->link);
	for (int i = 0; i < ST_COUNT; i++)
		free(s->sql[i]);
	free(s->schema_ident);
	free(s->schema_literal);
	free(s->table_ident);
	free(s->archive_ident);
	sl_pg_buf_free(&s->stored_values);
	free(s->keys.entries);
	free(s->keys.slots);
	free(s->iks.entries);
	free(s->iks.slots);
	sl_pg_buf_free(&s->copy);
	sl_pg_buf_free(&s->params[0]);
	sl_pg_buf_free(&s->params[1]);
	free(s->offsets);
	free(s);
}
