/* The SQLite target store of the applier: the schema of ../shared/CLI.md ("The target store of synclog apply"),
 * every statement prepared once at open and reused, values and keys bound in place (no copy, no allocation of ours
 * per record), WAL mode. The tables are described in apply.h. The entity table's name is chosen at open (--table),
 * so the statements that touch it are written from templates where {T} stands for the quoted table name and {I}
 * for its tombstone index; the table name itself is never taken from a record.
 *
 * Why WITHOUT ROWID for entities: the key is the primary key, so a rowid table would keep two B-trees (rows and
 * the key's index) and every lookup would walk both; without rowid one walk finds the row.
 * Why synchronous=NORMAL: in WAL mode a commit is then a write to the WAL without fsync. A crash of the process
 * loses nothing committed; a power loss can drop the last transactions, but data and offsets go together, so
 * the applier simply applies those records again from the log. */
#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "proto/base/clock.h"
#include "consumer/sync/apply.h"
#include "consumer/sync/value.h"
#include "consumer/client/client_impl.h"
#include "consumer/client/json_text.h"

#define SCHEMA_VERSION  2
/* How long a statement waits for another connection's lock (an operator's query, a checkpoint) before failing with
 * -EBUSY, which the engine retries: long enough for a checkpoint, short enough to notice a stuck reader. */
#define BUSY_TIMEOUT_MS 5000
#define PATH_BYTES_MAX  1024
/* An entity table's name: short enough to read in a query, and "_tombstones" still fits SQLite's habits. */
#define TABLE_BYTES_MAX 63
/* A statement with the table name written in: the longest template plus two quoted names, with room. */
#define SQL_BYTES_MAX   2048

/* The entity table and its tombstone index, created when missing ({T}, {I}: see the top). */
static const char table_sql[] =
        "CREATE TABLE IF NOT EXISTS {T} ("
        " key TEXT PRIMARY KEY, version INTEGER NOT NULL, value TEXT,"
        " deleted INTEGER NOT NULL CHECK (deleted IN (0, 1)), deleted_at_ms INTEGER, origin TEXT, topic TEXT,"
        " \"partition\" INTEGER, \"offset\" INTEGER, applied_at_ms INTEGER) WITHOUT ROWID;"
        "CREATE INDEX IF NOT EXISTS {I} ON {T} (deleted_at_ms) WHERE deleted = 1;"
        /* apply --on-delete archive (apply.h): the rows deletes replaced, one archive per entity table ("entities"
         * keeps "entities_archive"); created with the table so that the schema is one. */
        "CREATE TABLE IF NOT EXISTS {A} ("
        " key TEXT NOT NULL, version INTEGER NOT NULL, value TEXT, origin TEXT, topic TEXT, \"partition\" INTEGER,"
        " \"offset\" INTEGER, applied_at_ms INTEGER, deleted_version INTEGER NOT NULL, deleted_offset INTEGER,"
        " archived_at_ms INTEGER NOT NULL);"
        "CREATE INDEX IF NOT EXISTS {AI} ON {A} (key);";

/* The store's own tables, shared by every entity table of the database. */
static const char schema_sql[] =
        "CREATE TABLE IF NOT EXISTS synclog_tables ("
        " name TEXT PRIMARY KEY, topic TEXT NOT NULL, claimed_at_ms INTEGER NOT NULL) WITHOUT ROWID;"
        "CREATE TABLE IF NOT EXISTS synclog_purged ("
        " tbl TEXT NOT NULL, key TEXT NOT NULL, version INTEGER NOT NULL, purged_at_ms INTEGER NOT NULL,"
        " PRIMARY KEY (tbl, key)) WITHOUT ROWID;"
        "CREATE TABLE IF NOT EXISTS conflicts ("
        " key TEXT NOT NULL, stored_version INTEGER NOT NULL, incoming_version INTEGER NOT NULL,"
        " stored_digest TEXT, incoming_digest TEXT, origin TEXT, topic TEXT, \"partition\" INTEGER,"
        " \"offset\" INTEGER, seen_at_ms INTEGER NOT NULL);"
        "CREATE INDEX IF NOT EXISTS conflicts_seen ON conflicts (seen_at_ms);"
        "CREATE TABLE IF NOT EXISTS stale_events ("
        " key TEXT NOT NULL, stored_version INTEGER NOT NULL, incoming_version INTEGER NOT NULL, topic TEXT,"
        " \"partition\" INTEGER, \"offset\" INTEGER, seen_at_ms INTEGER NOT NULL);"
        "CREATE INDEX IF NOT EXISTS stale_events_seen ON stale_events (seen_at_ms);"
        "CREATE TABLE IF NOT EXISTS synclog_offsets ("
        " \"group\" TEXT NOT NULL, topic TEXT NOT NULL, \"partition\" INTEGER NOT NULL,"
        " next_offset INTEGER NOT NULL, applied INTEGER NOT NULL, stale INTEGER NOT NULL,"
        " duplicate INTEGER NOT NULL, deleted INTEGER NOT NULL, dead_lettered INTEGER NOT NULL,"
        " updated_at_ms INTEGER NOT NULL, PRIMARY KEY (\"group\", topic, \"partition\")) WITHOUT ROWID;"
        "CREATE TABLE IF NOT EXISTS synclog_idempotency_keys ("
        " idempotency_key BLOB PRIMARY KEY, seen_at_ms INTEGER NOT NULL) WITHOUT ROWID;"
        "CREATE INDEX IF NOT EXISTS synclog_idempotency_keys_seen ON synclog_idempotency_keys (seen_at_ms);"
        "CREATE TABLE IF NOT EXISTS synclog_resets ("
        " \"group\" TEXT PRIMARY KEY, reset_generation INTEGER NOT NULL, adopted_at_ms INTEGER NOT NULL)"
        " WITHOUT ROWID;";

enum stmt {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_KEY_GET,
	ST_FLOOR_GET,
	ST_UPSERT,
	ST_SOFT_DELETE,
	ST_UPSERT_IF_NEWER,
	ST_SOFT_DELETE_IF_NEWER,
	ST_VALUE_GET,
	ST_STALE,
	ST_CONFLICT,
	ST_IK_SEEN,
	ST_IK_REMEMBER,
	ST_OFFSETS_READ,
	ST_OFFSET_INSERT,
	ST_OFFSET_UPDATE,
	ST_PURGE_FLOORS_KEEP,
	ST_PURGE_TOMBSTONES,
	ST_PURGE_FLOORS_PRUNE,
	ST_PURGE_STALE,
	ST_PURGE_CONFLICTS,
	ST_PURGE_IK_AGE,
	ST_PURGE_IK_COUNT,
	ST_RESET_GET,
	ST_RESET_SET,
	ST_OFFSET_RESET,
	ST_SOFT_DELETE_ERASE,
	ST_SOFT_DELETE_ERASE_IF_NEWER,
	ST_ARCHIVE,
	ST_ARCHIVE_IF_NEWER,
	ST_TOMBSTONES_DUE,
	ST_TOMBSTONE_FLOOR_KEEP,
	ST_TOMBSTONE_PURGE,
	ST_COUNT
};

/* Parameters of the entity writes: ?1 key, ?2 version, ?3 value, ?4 origin, ?5 topic, ?6 partition, ?7 offset,
 * ?8 now, ?9 the table's name (for its floors). The _IF_NEWER forms insert only when the key has no floor at or
 * above the version (rule 5), and add a WHERE to the DO UPDATE: an existing row with a version as high is left
 * alone; sqlite3_changes() then says 0. (INSERT ... SELECT needs its WHERE before ON CONFLICT: SQLite's grammar.) */
#define ENTITY_COLUMNS                                                                                            \
	"INSERT INTO {T} (key, version, value, deleted, deleted_at_ms, origin, topic, \"partition\", \"offset\"," \
	" applied_at_ms) "
#define UPSERT_SET                                                                                          \
	" ON CONFLICT (key) DO UPDATE SET version = excluded.version, value = excluded.value, deleted = 0," \
	" deleted_at_ms = NULL, origin = excluded.origin, topic = excluded.topic,"                          \
	" \"partition\" = excluded.\"partition\", \"offset\" = excluded.\"offset\", applied_at_ms = "       \
	"excluded.applied_at_ms"
#define SOFT_DELETE_SET                                                                                       \
	" ON CONFLICT (key) DO UPDATE SET version = excluded.version, deleted = 1, deleted_at_ms = CASE WHEN" \
	" {T}.deleted = 1 THEN {T}.deleted_at_ms ELSE excluded.deleted_at_ms END, origin = excluded.origin,"  \
	" topic = excluded.topic, \"partition\" = excluded.\"partition\", \"offset\" = excluded.\"offset\","  \
	" applied_at_ms = excluded.applied_at_ms"
#define UPSERT_VALUES      "VALUES (?1, ?2, ?3, 0, NULL, ?4, ?5, ?6, ?7, ?8)"
#define SOFT_DELETE_VALUES "VALUES (?1, ?2, NULL, 1, ?8, ?4, ?5, ?6, ?7, ?8)"
#define NO_FLOOR_ABOVE     " WHERE NOT EXISTS (SELECT 1 FROM synclog_purged WHERE tbl = ?9 AND key = ?1 AND version >= ?2)"
#define NEWER_ONLY         " WHERE excluded.version > {T}.version"

/* The soft delete that also clears the value (--on-delete erase-value and archive); its _IF_NEWER form follows the
 * rules of the other entity writes (floors, newer only). */
#define SOFT_DELETE_ERASE_SET                                                                                     \
	" ON CONFLICT (key) DO UPDATE SET version = excluded.version, value = NULL, deleted = 1, deleted_at_ms =" \
	" CASE WHEN {T}.deleted = 1 THEN {T}.deleted_at_ms ELSE excluded.deleted_at_ms END,"                      \
	" origin = excluded.origin, topic = excluded.topic, \"partition\" = excluded.\"partition\","              \
	" \"offset\" = excluded.\"offset\", applied_at_ms = excluded.applied_at_ms"
/* The row as it was, before a delete replaces it (--on-delete archive): ?1 key, ?2 the delete's version, ?3 its
 * offset, ?4 now. Only a live row is archived: a second delete of a deleted key has nothing to keep. */
#define ARCHIVE_SQL                                                                                                   \
	"INSERT INTO {A} (key, version, value, origin, topic, \"partition\", \"offset\", applied_at_ms,"              \
	" deleted_version, deleted_offset, archived_at_ms) SELECT key, version, value, origin, topic, \"partition\"," \
	" \"offset\", applied_at_ms, ?2, ?3, ?4 FROM {T} WHERE key = ?1 AND deleted = 0"

static const char *const stmt_sql[ST_COUNT] = {
        [ST_SOFT_DELETE_ERASE] = ENTITY_COLUMNS SOFT_DELETE_VALUES SOFT_DELETE_ERASE_SET,
        [ST_SOFT_DELETE_ERASE_IF_NEWER] = ENTITY_COLUMNS
        "SELECT ?1, ?2, NULL, 1, ?8, ?4, ?5, ?6, ?7, ?8" NO_FLOOR_ABOVE SOFT_DELETE_ERASE_SET NEWER_ONLY,
        [ST_ARCHIVE] = ARCHIVE_SQL,
        [ST_ARCHIVE_IF_NEWER] = ARCHIVE_SQL " AND version < ?2",
        [ST_TOMBSTONES_DUE] = "SELECT key, topic, \"partition\", \"offset\" FROM {T} WHERE deleted = 1 AND"
                              " deleted_at_ms <= ?1 ORDER BY deleted_at_ms LIMIT ?2",
        /* One tombstone whose delete the log no longer holds: its version becomes the key's floor (rule 5),
         * then the row goes. ?1 key, ?2 topic, ?3 partition, ?4 offset, ?5 the table's name, ?6 now. */
        [ST_TOMBSTONE_FLOOR_KEEP] = "INSERT INTO synclog_purged (tbl, key, version, purged_at_ms)"
                                    " SELECT ?5, key, version, ?6 FROM {T} WHERE key = ?1 AND deleted = 1 AND"
                                    " topic = ?2 AND \"partition\" = ?3 AND \"offset\" = ?4"
                                    " ON CONFLICT (tbl, key) DO UPDATE SET version = max(version, excluded.version),"
                                    " purged_at_ms = excluded.purged_at_ms",
        [ST_TOMBSTONE_PURGE] = "DELETE FROM {T} WHERE key = ?1 AND deleted = 1 AND topic = ?2 AND"
                               " \"partition\" = ?3 AND \"offset\" = ?4",
        [ST_BEGIN] = "BEGIN IMMEDIATE",
        [ST_COMMIT] = "COMMIT",
        [ST_ROLLBACK] = "ROLLBACK",
        [ST_KEY_GET] = "SELECT version, deleted FROM {T} WHERE key = ?1",
        [ST_FLOOR_GET] = "SELECT version FROM synclog_purged WHERE tbl = ?1 AND key = ?2",
        [ST_UPSERT] = ENTITY_COLUMNS UPSERT_VALUES UPSERT_SET,
        [ST_SOFT_DELETE] = ENTITY_COLUMNS SOFT_DELETE_VALUES SOFT_DELETE_SET,
        [ST_UPSERT_IF_NEWER] =
                ENTITY_COLUMNS "SELECT ?1, ?2, ?3, 0, NULL, ?4, ?5, ?6, ?7, ?8" NO_FLOOR_ABOVE UPSERT_SET NEWER_ONLY,
        [ST_SOFT_DELETE_IF_NEWER] = ENTITY_COLUMNS
        "SELECT ?1, ?2, NULL, 1, ?8, ?4, ?5, ?6, ?7, ?8" NO_FLOOR_ABOVE SOFT_DELETE_SET NEWER_ONLY,
        [ST_VALUE_GET] = "SELECT value, deleted FROM {T} WHERE key = ?1",
        [ST_STALE] = "INSERT INTO stale_events (key, stored_version, incoming_version, topic, \"partition\","
                     " \"offset\", seen_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        [ST_CONFLICT] = "INSERT INTO conflicts (key, stored_version, incoming_version, stored_digest, incoming_digest,"
                        " origin, topic, \"partition\", \"offset\", seen_at_ms)"
                        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        [ST_IK_SEEN] = "SELECT 1 FROM synclog_idempotency_keys WHERE idempotency_key = ?1",
        [ST_IK_REMEMBER] = "INSERT INTO synclog_idempotency_keys (idempotency_key, seen_at_ms) VALUES (?1, ?2)"
                           " ON CONFLICT (idempotency_key) DO UPDATE SET seen_at_ms = excluded.seen_at_ms",
        [ST_OFFSETS_READ] = "SELECT topic, \"partition\", next_offset, applied, stale, duplicate, deleted,"
                            " dead_lettered FROM synclog_offsets WHERE \"group\" = ?1 ORDER BY topic, \"partition\"",
        [ST_OFFSET_INSERT] = "INSERT INTO synclog_offsets (\"group\", topic, \"partition\", next_offset, applied,"
                             " stale, duplicate, deleted, dead_lettered, updated_at_ms)"
                             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT DO NOTHING",
        [ST_OFFSET_UPDATE] = "UPDATE synclog_offsets SET next_offset = ?4, applied = applied + ?5,"
                             " stale = stale + ?6, duplicate = duplicate + ?7, deleted = deleted + ?8,"
                             " dead_lettered = dead_lettered + ?9, updated_at_ms = ?10"
                             " WHERE \"group\" = ?1 AND topic = ?2 AND \"partition\" = ?3 AND next_offset = ?11",
        /* Rule 5: the version of each tombstone about to go is kept as its key's floor (the higher of two). */
        [ST_PURGE_FLOORS_KEEP] = "INSERT INTO synclog_purged (tbl, key, version, purged_at_ms)"
                                 " SELECT ?2, key, version, ?3 FROM {T} WHERE deleted = 1 AND deleted_at_ms <= ?1"
                                 " ON CONFLICT (tbl, key) DO UPDATE SET version = max(version, excluded.version),"
                                 " purged_at_ms = excluded.purged_at_ms",
        [ST_PURGE_TOMBSTONES] = "DELETE FROM {T} WHERE deleted = 1 AND deleted_at_ms <= ?1",
        /* A floor whose key has a row again at or above it says nothing the row does not: keep the table compact. */
        [ST_PURGE_FLOORS_PRUNE] = "DELETE FROM synclog_purged WHERE tbl = ?1 AND EXISTS (SELECT 1 FROM {T} e"
                                  " WHERE e.key = synclog_purged.key AND e.version >= synclog_purged.version)",
        [ST_PURGE_STALE] = "DELETE FROM stale_events WHERE seen_at_ms <= ?1",
        [ST_PURGE_CONFLICTS] = "DELETE FROM conflicts WHERE seen_at_ms <= ?1",
        [ST_PURGE_IK_AGE] = "DELETE FROM synclog_idempotency_keys WHERE seen_at_ms <= ?1",
        [ST_PURGE_IK_COUNT] = "DELETE FROM synclog_idempotency_keys WHERE idempotency_key IN (SELECT idempotency_key"
                              " FROM synclog_idempotency_keys ORDER BY seen_at_ms LIMIT max(0, (SELECT count(*)"
                              " FROM synclog_idempotency_keys) - ?1))",
        [ST_RESET_GET] = "SELECT reset_generation FROM synclog_resets WHERE \"group\" = ?1",
        [ST_RESET_SET] = "INSERT INTO synclog_resets (\"group\", reset_generation, adopted_at_ms) VALUES (?1, ?2, ?3)"
                         " ON CONFLICT (\"group\") DO UPDATE SET reset_generation = excluded.reset_generation,"
                         " adopted_at_ms = excluded.adopted_at_ms",
        [ST_OFFSET_RESET] =
                "INSERT INTO synclog_offsets (\"group\", topic, \"partition\", next_offset, applied, stale,"
                " duplicate, deleted, dead_lettered, updated_at_ms) VALUES (?1, ?2, ?3, ?4, 0, 0, 0, 0, 0, ?5)"
                " ON CONFLICT DO UPDATE SET next_offset = excluded.next_offset,"
                " updated_at_ms = excluded.updated_at_ms",
};

struct sl_apply_sqlite {
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	enum sl_apply_values values;
	bool reject_transient; /* the last rejection came from a constraint, not from the record's own bytes */
	enum sl_apply_on_delete on_delete;
	bool follow_log; /* deleted rows are left to the purge that follows the log */
	char table[TABLE_BYTES_MAX + 1];
	char path[PATH_BYTES_MAX];
	char error[SL_ERROR_BYTES];
};

/* The errno of an SQLite result code. Constraint, size and type errors are about the record: rejections. */
static int errno_of(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_CONSTRAINT:
	case SQLITE_TOOBIG:
	case SQLITE_MISMATCH:
		return SL_APPLY_REJECTED;
	default:
		return -EIO;
	}
}

static int fail(struct sl_apply_sqlite *s, int rc, const char *what)
{
	const char *hint = "";

	if ((rc & 0xff) == SQLITE_FULL)
		hint = ": free disk space, then start the applier again";
	else if ((rc & 0xff) == SQLITE_BUSY)
		hint = ": another connection holds the database lock";
	snprintf(s->error, sizeof(s->error), "sqlite %s: %s: %s%s", s->path, what, sqlite3_errmsg(s->db), hint);
	/* A constraint depends on what else the database holds; a value too big or of the wrong type never fits. */
	s->reject_transient = (rc & 0xff) == SQLITE_CONSTRAINT;
	return errno_of(rc);
}

static int reject(struct sl_apply_sqlite *s, const char *fmt, const struct sl_apply_record *r)
{
	s->reject_transient = false;
	snprintf(s->error, sizeof(s->error), fmt, (long long)r->rec.offset);
	return SL_APPLY_REJECTED;
}

/* Run a statement that returns no rows to its end and reset it. */
static int step_done(struct sl_apply_sqlite *s, enum stmt i, const char *what)
{
	sqlite3_stmt *st = s->st[i];
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return fail(s, rc, what);
	return 0;
}

static bool text_valid(const uint8_t *p, int32_t len)
{
	return sl_utf8_text_valid(p, (size_t)len);
}

static int op_begin(void *store, int64_t now_ms)
{
	(void)now_ms;
	return step_done(store, ST_BEGIN, "begin a transaction");
}

static int op_commit(void *store)
{
	return step_done(store, ST_COMMIT, "commit");
}

static void op_rollback(void *store)
{
	struct sl_apply_sqlite *s = store;

	/* SQLite rolls back by itself after some errors (SQLITE_FULL, SQLITE_IOERR): then there is nothing to do. */
	if (sqlite3_get_autocommit(s->db))
		return;
	step_done(s, ST_ROLLBACK, "roll back");
}

static int op_key_get(void *store, const struct sl_apply_record *r, struct sl_apply_key_state *out)
{
	struct sl_apply_sqlite *s = store;
	sqlite3_stmt *st = s->st[ST_KEY_GET];
	int rc;

	if (!text_valid(r->rec.key, r->rec.key_len))
		return reject(s, "offset %lld: the key is not UTF-8 text (or holds NUL bytes)", r);
	sqlite3_bind_text(st, 1, (const char *)r->rec.key, r->rec.key_len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	memset(out, 0, sizeof(*out));
	if (rc == SQLITE_ROW) {
		out->exists = true;
		out->version = sqlite3_column_int64(st, 0);
		out->deleted = sqlite3_column_int(st, 1) != 0;
		rc = SQLITE_DONE;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return fail(s, rc, "read a key's version");
	if (out->exists)
		return 0;
	/* Rule 5: a key that is not stored may have been purged. */
	st = s->st[ST_FLOOR_GET];
	sqlite3_bind_text(st, 1, s->table, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, (const char *)r->rec.key, r->rec.key_len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->purged = true;
		out->floor_version = sqlite3_column_int64(st, 0);
		rc = SQLITE_DONE;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return fail(s, rc, "read a purged key's version");
	return 0;
}

/* Bind the parameters shared by upsert and soft delete (all but the value). */
static void entity_bind(sqlite3_stmt *st, const struct sl_apply_record *r, int64_t version, int64_t now_ms)
{
	sqlite3_bind_text(st, 1, (const char *)r->rec.key, r->rec.key_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, version);
	sqlite3_bind_text(st, 4, sl_origin_name(r->rec.origin), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, r->topic, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, r->partition);
	sqlite3_bind_int64(st, 7, r->rec.offset);
	sqlite3_bind_int64(st, 8, now_ms);
}

/* Refuse a value this target does not store. */
static int value_check(struct sl_apply_sqlite *s, const struct sl_apply_record *r)
{
	const uint8_t *v = r->rec.value;
	int32_t len = r->rec.value_len;

	if (v != NULL && s->values == SL_APPLY_VALUES_JSON && !sl_json_valid(v, (size_t)len))
		return reject(s, "offset %lld: the value is not JSON text (RFC 8259): the target stores JSON entities",
		              r);
	if (v != NULL && s->values == SL_APPLY_VALUES_TEXT && !text_valid(v, len))
		return reject(s, "offset %lld: the value is not UTF-8 text (or holds NUL bytes)", r);
	return 0;
}

/* Bind and run the upsert or soft delete statement i for r. */
static int entity_write(struct sl_apply_sqlite *s, enum stmt i, const struct sl_apply_record *r, int64_t version,
                        int64_t now_ms)
{
	sqlite3_stmt *st = s->st[i];
	bool upsert = i == ST_UPSERT || i == ST_UPSERT_IF_NEWER;

	if (!upsert && s->on_delete != SL_APPLY_ON_DELETE_HIDE) {
		bool if_newer = i == ST_SOFT_DELETE_IF_NEWER;
		if (s->on_delete == SL_APPLY_ON_DELETE_ARCHIVE) {
			enum stmt a = if_newer ? ST_ARCHIVE_IF_NEWER : ST_ARCHIVE;
			sqlite3_bind_text(s->st[a], 1, (const char *)r->rec.key, r->rec.key_len, SQLITE_STATIC);
			sqlite3_bind_int64(s->st[a], 2, version);
			sqlite3_bind_int64(s->st[a], 3, r->rec.offset);
			sqlite3_bind_int64(s->st[a], 4, now_ms);
			int rc = step_done(s, a, "archive an entity");
			if (rc != 0)
				return rc;
		}
		i = if_newer ? ST_SOFT_DELETE_ERASE_IF_NEWER : ST_SOFT_DELETE_ERASE;
		st = s->st[i];
	}

	entity_bind(st, r, version, now_ms);
	if (i == ST_UPSERT_IF_NEWER || i == ST_SOFT_DELETE_IF_NEWER)
		sqlite3_bind_text(st, 9, s->table, -1, SQLITE_STATIC);
	if (upsert && r->rec.value != NULL)
		sqlite3_bind_text(st, 3, (const char *)r->rec.value, r->rec.value_len, SQLITE_STATIC);
	else if (upsert)
		sqlite3_bind_null(st, 3);
	return step_done(s, i, upsert ? "write an entity" : "mark an entity deleted");
}

static int op_upsert(void *store, const struct sl_apply_record *r, int64_t version, int64_t now_ms)
{
	struct sl_apply_sqlite *s = store;
	int rc = value_check(s, r);

	return rc != 0 ? rc : entity_write(s, ST_UPSERT, r, version, now_ms);
}

static int op_soft_delete(void *store, const struct sl_apply_record *r, int64_t version, int64_t now_ms)
{
	return entity_write(store, ST_SOFT_DELETE, r, version, now_ms);
}

static int op_write_if_newer(void *store, const struct sl_apply_record *r, int64_t now_ms, bool *written_out)
{
	struct sl_apply_sqlite *s = store;
	bool del = r->rec.op == SL_OP_DELETE;
	int rc;

	*written_out = false;
	if (!text_valid(r->rec.key, r->rec.key_len))
		return reject(s, "offset %lld: the key is not UTF-8 text (or holds NUL bytes)", r);
	if (!del && (rc = value_check(s, r)) != 0)
		return rc;
	rc = entity_write(s, del ? ST_SOFT_DELETE_IF_NEWER : ST_UPSERT_IF_NEWER, r, r->rec.version, now_ms);
	*written_out = rc == 0 && sqlite3_changes(s->db) == 1;
	return rc;
}

static int op_stale_record(void *store, const struct sl_apply_record *r, int64_t stored_version, int64_t now_ms)
{
	struct sl_apply_sqlite *s = store;
	sqlite3_stmt *st = s->st[ST_STALE];

	sqlite3_bind_text(st, 1, (const char *)r->rec.key, r->rec.key_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, stored_version);
	/* 0 for an unversioned backfill or repair record that found the key stored (rule 6). */
	sqlite3_bind_int64(st, 3, r->rec.version != SL_VERSION_NONE ? r->rec.version : 0);
	sqlite3_bind_text(st, 4, r->topic, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, r->partition);
	sqlite3_bind_int64(st, 6, r->rec.offset);
	sqlite3_bind_int64(st, 7, now_ms);
	return step_done(s, ST_STALE, "log a stale event");
}

/* Rule 4b: the stored row of r's key against r. */
static int op_value_same(void *store, const struct sl_apply_record *r, bool *same_out)
{
	struct sl_apply_sqlite *s = store;
	sqlite3_stmt *st = s->st[ST_VALUE_GET];
	bool del = r->rec.op == SL_OP_DELETE;
	int rc;

	sqlite3_bind_text(st, 1, (const char *)r->rec.key, r->rec.key_len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*same_out = false;
	if (rc == SQLITE_ROW) {
		const uint8_t *v = sqlite3_column_blob(st, 0);
		size_t len = (size_t)sqlite3_column_bytes(st, 0);
		bool deleted = sqlite3_column_int(st, 1) != 0;

		if (v == NULL && sqlite3_column_type(st, 0) != SQLITE_NULL)
			v = (const uint8_t *)""; /* an empty value, not a null one */
		if (del || deleted)
			*same_out = del && deleted;
		else
			*same_out = sl_value_equal(v, len, r->rec.value,
			                           r->rec.value != NULL ? (size_t)r->rec.value_len : 0);
		rc = SQLITE_DONE;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return fail(s, rc, "read a stored value");
	return 0;
}

/* Digest of a value as the conflicts table keeps it (16 hex digits), or NULL for a deleted row or a delete. */
static void digest_bind(sqlite3_stmt *st, int index, const void *v, size_t len, bool present,
                        char hex[SL_VALUE_DIGEST_HEX_BYTES])
{
	if (!present) {
		sqlite3_bind_null(st, index);
		return;
	}
	sl_value_digest_hex(sl_value_digest(v, len), hex);
	sqlite3_bind_text(st, index, hex, -1, SQLITE_STATIC);
}

static int op_conflict_record(void *store, const struct sl_apply_record *r, int64_t stored_version, int64_t now_ms)
{
	struct sl_apply_sqlite *s = store;
	sqlite3_stmt *get = s->st[ST_VALUE_GET], *st = s->st[ST_CONFLICT];
	char stored_hex[SL_VALUE_DIGEST_HEX_BYTES], incoming_hex[SL_VALUE_DIGEST_HEX_BYTES];
	int rc;

	sqlite3_bind_text(get, 1, (const char *)r->rec.key, r->rec.key_len, SQLITE_STATIC);
	rc = sqlite3_step(get);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(get);
		return fail(s, rc == SQLITE_DONE ? SQLITE_INTERNAL : rc, "read a conflicting row");
	}
	digest_bind(st, 4, sqlite3_column_blob(get, 0), (size_t)sqlite3_column_bytes(get, 0),
	            sqlite3_column_int(get, 1) == 0, stored_hex);
	sqlite3_reset(get);
	sqlite3_bind_text(st, 1, (const char *)r->rec.key, r->rec.key_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, stored_version);
	sqlite3_bind_int64(st, 3, r->rec.version);
	digest_bind(st, 5, r->rec.value, r->rec.value != NULL ? (size_t)r->rec.value_len : 0, r->rec.op != SL_OP_DELETE,
	            incoming_hex);
	sqlite3_bind_text(st, 6, sl_origin_name(r->rec.origin), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, r->topic, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, r->partition);
	sqlite3_bind_int64(st, 9, r->rec.offset);
	sqlite3_bind_int64(st, 10, now_ms);
	return step_done(s, ST_CONFLICT, "keep a conflict");
}

static int op_idempotency_seen(void *store, const struct sl_apply_record *r, bool *seen_out)
{
	struct sl_apply_sqlite *s = store;
	sqlite3_stmt *st = s->st[ST_IK_SEEN];
	int rc;

	if (r->rec.idempotency_key_len > SL_APPLY_IDEMPOTENCY_KEY_BYTES_MAX)
		return reject(s, "offset %lld: the idempotency key is longer than 1024 bytes", r);
	sqlite3_bind_blob(st, 1, r->rec.idempotency_key, r->rec.idempotency_key_len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*seen_out = rc == SQLITE_ROW;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return fail(s, rc, "look up an idempotency key");
	return 0;
}

static int op_idempotency_remember(void *store, const struct sl_apply_record *r, int64_t now_ms)
{
	struct sl_apply_sqlite *s = store;
	sqlite3_stmt *st = s->st[ST_IK_REMEMBER];

	sqlite3_bind_blob(st, 1, r->rec.idempotency_key, r->rec.idempotency_key_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now_ms);
	return step_done(s, ST_IK_REMEMBER, "remember an idempotency key");
}

static int op_offsets_read(void *store, const char *group, sl_apply_offsets_read_cb cb, void *cb_arg)
{
	struct sl_apply_sqlite *s = store;
	sqlite3_stmt *st = s->st[ST_OFFSETS_READ];
	int rc, cb_rc = 0;

	sqlite3_bind_text(st, 1, group, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *topic = sqlite3_column_text(st, 0);
		struct sl_apply_position pos = {
		        .topic = topic != NULL ? (const char *)topic : "",
		        .partition = (uint32_t)sqlite3_column_int64(st, 1),
		        .next_offset = sqlite3_column_int64(st, 2),
		};
		struct sl_apply_counters totals = {
		        .applied = (uint64_t)sqlite3_column_int64(st, 3),
		        .stale = (uint64_t)sqlite3_column_int64(st, 4),
		        .duplicate = (uint64_t)sqlite3_column_int64(st, 5),
		        .deleted = (uint64_t)sqlite3_column_int64(st, 6),
		        .dead_lettered = (uint64_t)sqlite3_column_int64(st, 7),
		};

		if (pos.next_offset < 0) {
			snprintf(s->error, sizeof(s->error),
			         "sqlite %s: synclog_offsets holds a negative offset for topic '%s' partition %u",
			         s->path, pos.topic, pos.partition);
			sqlite3_reset(st);
			return -EUCLEAN;
		}
		cb_rc = cb(&pos, &totals, cb_arg);
		if (cb_rc != 0)
			break;
	}
	sqlite3_reset(st);
	if (cb_rc != 0)
		return cb_rc;
	if (rc != SQLITE_DONE)
		return fail(s, rc, "read the stored offsets");
	return 0;
}

static int op_offset_write(void *store, const char *group, const struct sl_apply_position *pos, int64_t expected_offset,
                           const struct sl_apply_counters *delta, int64_t now_ms)
{
	struct sl_apply_sqlite *s = store;
	enum stmt i = expected_offset < 0 ? ST_OFFSET_INSERT : ST_OFFSET_UPDATE;
	sqlite3_stmt *st = s->st[i];
	int rc;

	sqlite3_bind_text(st, 1, group, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, pos->topic, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, pos->partition);
	sqlite3_bind_int64(st, 4, pos->next_offset);
	sqlite3_bind_int64(st, 5, (int64_t)delta->applied);
	sqlite3_bind_int64(st, 6, (int64_t)delta->stale);
	sqlite3_bind_int64(st, 7, (int64_t)delta->duplicate);
	sqlite3_bind_int64(st, 8, (int64_t)delta->deleted);
	sqlite3_bind_int64(st, 9, (int64_t)delta->dead_lettered);
	sqlite3_bind_int64(st, 10, now_ms);
	if (i == ST_OFFSET_UPDATE)
		sqlite3_bind_int64(st, 11, expected_offset);
	rc = step_done(s, i, "write the consumed offset");
	if (rc != 0)
		return rc == SL_APPLY_REJECTED ? -EIO : rc;
	if (sqlite3_changes(s->db) != 1) {
		snprintf(s->error, sizeof(s->error), "sqlite %s: the stored offset of topic '%s' partition %u moved",
		         s->path, pos->topic, pos->partition);
		return -ESTALE;
	}
	return 0;
}

static int purge_one(struct sl_apply_sqlite *s, enum stmt i, int64_t param, uint64_t *count, const char *what)
{
	int rc;

	sqlite3_bind_int64(s->st[i], 1, param);
	rc = step_done(s, i, what);
	if (rc == 0)
		*count += (uint64_t)sqlite3_changes(s->db);
	return rc;
}

static int op_purge(void *store, int64_t now_ms, int64_t retention_ms, struct sl_apply_purge_counts *out)
{
	struct sl_apply_sqlite *s = store;
	int64_t before = now_ms - retention_ms;
	uint64_t floors = 0, conflicts = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	/* With follow_log the tombstones go one by one as the log's cleaner drops their deletes
	 * (op_tombstone_purge, which keeps each floor too); otherwise by time here. */
	rc = 0;
	if (!s->follow_log) {
		sqlite3_bind_text(s->st[ST_PURGE_FLOORS_KEEP], 2, s->table, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s->st[ST_PURGE_FLOORS_KEEP], 3, now_ms);
		rc = purge_one(s, ST_PURGE_FLOORS_KEEP, before, &floors, "keep the versions of purged keys");
		if (rc == 0)
			rc = purge_one(s, ST_PURGE_TOMBSTONES, before, &out->tombstones, "purge tombstones");
	}
	if (rc == 0) {
		sqlite3_bind_text(s->st[ST_PURGE_FLOORS_PRUNE], 1, s->table, -1, SQLITE_STATIC);
		rc = step_done(s, ST_PURGE_FLOORS_PRUNE, "drop the floors of keys stored again");
	}
	if (rc == 0)
		rc = purge_one(s, ST_PURGE_CONFLICTS, before, &conflicts, "purge conflicts");
	if (rc == 0)
		rc = purge_one(s, ST_PURGE_STALE, before, &out->stale_events, "purge stale events");
	if (rc == 0)
		rc = purge_one(s, ST_PURGE_IK_AGE, before, &out->idempotency_keys, "expire idempotency keys");
	if (rc == 0)
		rc = purge_one(s, ST_PURGE_IK_COUNT, SL_APPLY_SQLITE_IDEMPOTENCY_KEYS_MAX, &out->idempotency_keys,
		               "bound the idempotency keys");
	return rc;
}

static int op_tombstones_due(void *store, int64_t before_ms, struct sl_apply_tombstone *out, uint32_t max,
                             uint32_t *count_out)
{
	struct sl_apply_sqlite *s = store;
	sqlite3_stmt *st = s->st[ST_TOMBSTONES_DUE];
	uint32_t n = 0;
	int rc = SQLITE_DONE;

	sqlite3_bind_int64(st, 1, before_ms);
	sqlite3_bind_int64(st, 2, max);
	while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(st, 0),
		           *topic = (const char *)sqlite3_column_text(st, 1);
		out[n].key = strdup(key != NULL ? key : "");
		if (out[n].key == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		snprintf(out[n].topic, sizeof(out[n].topic), "%s", topic != NULL ? topic : "");
		out[n].partition = (uint32_t)sqlite3_column_int64(st, 2);
		out[n].offset = sqlite3_column_int64(st, 3);
		n++;
	}
	sqlite3_reset(st);
	*count_out = n;
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		for (uint32_t i = 0; i < n; i++)
			free(out[i].key);
		*count_out = 0;
		return fail(s, rc, "list deleted rows");
	}
	return 0;
}

static int op_tombstone_purge(void *store, const struct sl_apply_tombstone *t, bool *purged_out)
{
	struct sl_apply_sqlite *s = store;
	sqlite3_stmt *keep = s->st[ST_TOMBSTONE_FLOOR_KEEP], *st = s->st[ST_TOMBSTONE_PURGE];

	sqlite3_bind_text(keep, 1, t->key, -1, SQLITE_STATIC);
	sqlite3_bind_text(keep, 2, t->topic, -1, SQLITE_STATIC);
	sqlite3_bind_int64(keep, 3, t->partition);
	sqlite3_bind_int64(keep, 4, t->offset);
	sqlite3_bind_text(keep, 5, s->table, -1, SQLITE_STATIC);
	sqlite3_bind_int64(keep, 6, sl_clock_wall_ms());
	int rc = step_done(s, ST_TOMBSTONE_FLOOR_KEEP, "keep the version of a purged key");
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, t->key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, t->topic, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, t->partition);
	sqlite3_bind_int64(st, 4, t->offset);
	rc = step_done(s, ST_TOMBSTONE_PURGE, "purge a deleted row");
	*purged_out = rc == 0 && sqlite3_changes(s->db) == 1;
	return rc;
}

void sl_apply_sqlite_set_deletes(struct sl_apply_sqlite *db, enum sl_apply_on_delete on_delete, bool follow_log)
{
	db->on_delete = on_delete;
	db->follow_log = follow_log;
}

static const char *op_error(void *store)
{
	return ((struct sl_apply_sqlite *)store)->error;
}

static int op_reset_generation_get(void *store, const char *group, int64_t *generation_out)
{
	struct sl_apply_sqlite *s = store;
	sqlite3_stmt *st = s->st[ST_RESET_GET];
	int rc;

	sqlite3_bind_text(st, 1, group, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*generation_out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return fail(s, rc, "read the adopted reset generation");
	return 0;
}

static int op_reset_generation_set(void *store, const char *group, int64_t generation, int64_t now_ms)
{
	struct sl_apply_sqlite *s = store;
	sqlite3_stmt *st = s->st[ST_RESET_SET];
	int rc;

	sqlite3_bind_text(st, 1, group, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, generation);
	sqlite3_bind_int64(st, 3, now_ms);
	rc = step_done(s, ST_RESET_SET, "record the adopted reset generation");
	return rc == SL_APPLY_REJECTED ? -EIO : rc;
}

static int op_offset_reset(void *store, const char *group, const struct sl_apply_position *pos, int64_t now_ms)
{
	struct sl_apply_sqlite *s = store;
	sqlite3_stmt *st = s->st[ST_OFFSET_RESET];
	int rc;

	sqlite3_bind_text(st, 1, group, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, pos->topic, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, pos->partition);
	sqlite3_bind_int64(st, 4, pos->next_offset);
	sqlite3_bind_int64(st, 5, now_ms);
	rc = step_done(s, ST_OFFSET_RESET, "write a reset offset");
	return rc == SL_APPLY_REJECTED ? -EIO : rc;
}

static bool op_rejection_transient(void *store)
{
	return ((struct sl_apply_sqlite *)store)->reject_transient;
}

/* The operations both tables have: one list, so that neither misses one. */
#define SQLITE_OPS_COMMON                                                                                            \
	.begin = op_begin, .commit = op_commit, .rollback = op_rollback, .key_get = op_key_get, .upsert = op_upsert, \
	.soft_delete = op_soft_delete, .write_if_newer = op_write_if_newer, .stale_record = op_stale_record,         \
	.duplicate_record = NULL, .value_same = op_value_same, .conflict_record = op_conflict_record,                \
	.idempotency_seen = op_idempotency_seen, .idempotency_remember = op_idempotency_remember,                    \
	.offsets_read = op_offsets_read, .offset_write = op_offset_write, .purge = op_purge, .error = op_error,      \
	.reset_generation_get = op_reset_generation_get, .reset_generation_set = op_reset_generation_set,            \
	.rejection_transient = op_rejection_transient, .offset_reset = op_offset_reset

static const struct sl_apply_store_ops sqlite_ops = {SQLITE_OPS_COMMON};

/* The same, with the purge that follows the log (sl_apply_sqlite_set_deletes). */
static const struct sl_apply_store_ops sqlite_log_ops = {
        SQLITE_OPS_COMMON,
        .tombstones_due = op_tombstones_due,
        .tombstone_purge = op_tombstone_purge,
};

void sl_apply_sqlite_store(struct sl_apply_sqlite *db, struct sl_apply_store *out)
{
	out->ops = db->follow_log ? &sqlite_log_ops : &sqlite_ops;
	out->ctx = db;
}

/* Write tmpl with {T} replaced by the quoted table name, {I} by the quoted name of its tombstone index, {A} by its
 * archive table and {AI} by that table's index, into out. The table name passed sl_apply_sqlite_table_check, so it
 * needs no escaping inside the quotes. */
static int sql_expand(const struct sl_apply_sqlite *s, const char *tmpl, char *out, size_t cap)
{
	size_t at = 0;

	for (const char *p = tmpl; *p != '\0'; p++) {
		int n = 0;

		if (strncmp(p, "{T}", 3) == 0)
			n = snprintf(out + at, cap - at, "\"%s\"", s->table), p += 2;
		else if (strncmp(p, "{AI}", 4) == 0)
			n = snprintf(out + at, cap - at, "\"%s_archive_key\"", s->table), p += 3;
		else if (strncmp(p, "{A}", 3) == 0)
			n = snprintf(out + at, cap - at, "\"%s_archive\"", s->table), p += 2;
		else if (strncmp(p, "{I}", 3) == 0)
			n = snprintf(out + at, cap - at, "\"%s_tombstones\"", s->table), p += 2;
		else if (at + 1 < cap)
			out[at] = *p, n = 1;
		if (n < 0 || at + (size_t)n >= cap)
			return -ENAMETOOLONG;
		at += (size_t)n;
	}
	out[at] = '\0';
	return 0;
}

int sl_apply_sqlite_table_check(const char *name)
{
	static const char *const own[] = {"stale_events", "conflicts", "reconcile_runs"};
	size_t n = name != NULL ? strlen(name) : 0;

	if (n == 0 || n > TABLE_BYTES_MAX || strncmp(name, "sqlite_", 7) == 0 || strncmp(name, "synclog_", 8) == 0)
		return -EINVAL;
	/* Every entity table T has its archive T_archive: a table of that name would be another's archive. */
	if (n >= 8 && strcmp(name + n - 8, "_archive") == 0)
		return -EINVAL;
	for (size_t i = 0; i < SL_ARRAY_COUNT(own); i++)
		if (strcmp(name, own[i]) == 0)
			return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9')))
			return -EINVAL;
	}
	return 0;
}

/* One statement with the table name written in, run to its end. */
static int exec_expanded(struct sl_apply_sqlite *s, const char *tmpl, const char *what)
{
	char sql[SQL_BYTES_MAX];
	int rc = sql_expand(s, tmpl, sql, sizeof(sql));

	SL_ASSERT(rc == 0); /* the templates and the longest table name fit */
	rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
	return rc != SQLITE_OK ? fail(s, rc, what) : 0;
}

/* Pragmas and schema. Returns 0 or a negative errno with s->error set. */
static int schema_setup(struct sl_apply_sqlite *s)
{
	sqlite3_stmt *st;
	int rc, version;

	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return fail(s, rc, "open the database");
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
		sqlite3_finalize(st);
		if (rc != SQLITE_ROW)
			return fail(s, rc, "switch to WAL mode");
		snprintf(s->error, sizeof(s->error), "sqlite %s: the database cannot use WAL mode (is it in memory?)",
		         s->path);
		return -EINVAL;
	}
	sqlite3_finalize(st);
	/* A 64 MiB page cache holds the upper levels of the entities B-tree for millions of keys. */
	rc = sqlite3_exec(s->db, "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536; PRAGMA foreign_keys = OFF",
	                  NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return fail(s, rc, "set the pragmas");
	rc = sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return fail(s, rc, "read the schema version");
	rc = sqlite3_step(st);
	version = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_finalize(st);
	if (version < 0)
		return fail(s, rc, "read the schema version");
	if (version > SCHEMA_VERSION) {
		snprintf(s->error, sizeof(s->error),
		         "sqlite %s: schema version %d was written by a newer synclog (this one knows %d): use that "
		         "version",
		         s->path, version, SCHEMA_VERSION);
		return -EINVAL;
	}
	/* Version 1 had entities and no floors, conflicts or table claims: the new tables are simply added, and
	 * the table is claimed below by the topic its rows name. */
	rc = sqlite3_exec(s->db, schema_sql, NULL, NULL, NULL);
	if (rc == SQLITE_OK && version < SCHEMA_VERSION)
		rc = sqlite3_exec(s->db, "PRAGMA user_version = 2", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return fail(s, rc, "create the tables");
	return exec_expanded(s, table_sql, "create the entity table");
}

_Static_assert(SCHEMA_VERSION == 2, "the PRAGMA user_version statement above writes 2");

/* A single text from a query with up to two text parameters: 1 with out filled, 0 for no row. */
static int query_text(struct sl_apply_sqlite *s, const char *tmpl, const char *p1, const char *p2, char *out,
                      size_t cap)
{
	char sql[SQL_BYTES_MAX];
	sqlite3_stmt *st;
	int rc;

	rc = sql_expand(s, tmpl, sql, sizeof(sql));
	SL_ASSERT(rc == 0); /* the templates and the longest table name fit */
	rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return fail(s, rc, "read which topic feeds the table");
	sqlite3_bind_text(st, 1, p1, -1, SQLITE_STATIC);
	if (p2 != NULL)
		sqlite3_bind_text(st, 2, p2, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return fail(s, rc, "read which topic feeds the table");
	return rc == SQLITE_ROW;
}

static int collision(struct sl_apply_sqlite *s, const char *owner, const char *topic)
{
	snprintf(s->error, sizeof(s->error),
	         "sqlite %s: table '%s' is fed by topic '%s'; applying topic '%s' into it would compare the versions "
	         "of one topic's keys with the other's: apply '%s' into its own table (--table NAME)",
	         s->path, s->table, owner, topic, topic);
	return -EEXIST;
}

/* Claim the table for topic, or refuse when another topic feeds it (one transaction: two appliers starting at
 * once cannot both claim). Returns 0 or a negative errno with s->error set. */
static int table_claim(struct sl_apply_sqlite *s, const char *topic)
{
	char owner[SL_TOPIC_NAME_BYTES_MAX + 1];
	sqlite3_stmt *st;
	int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return fail(s, rc, "begin a transaction");
	rc = query_text(s, "SELECT topic FROM synclog_tables WHERE name = ?1", s->table, NULL, owner, sizeof(owner));
	if (rc == 1) {
		rc = strcmp(owner, topic) != 0 ? collision(s, owner, topic) : 0;
		goto out;
	}
	/* Not claimed yet: a version 1 table, or a new one (then this finds nothing at once). */
	if (rc == 0)
		rc = query_text(s, "SELECT topic FROM {T} WHERE topic IS NOT NULL AND topic != ?1 LIMIT 1", topic, NULL,
		                owner, sizeof(owner));
	if (rc == 1)
		rc = collision(s, owner, topic);
	else if (rc == 0 &&
	         (rc = sqlite3_prepare_v2(s->db,
	                                  "INSERT INTO synclog_tables (name, topic, claimed_at_ms) VALUES (?1, ?2,"
	                                  " ?3) ON CONFLICT DO NOTHING",
	                                  -1, &st, NULL)) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, s->table, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, topic, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, sl_clock_wall_ms());
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		rc = rc == SQLITE_DONE ? 0 : fail(s, rc, "claim the table for its topic");
	} else if (rc > 0) {
		rc = fail(s, rc, "claim the table for its topic");
	}
out:
	if (rc == 0 && (rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK)
		rc = fail(s, rc, "commit the table's claim");
	if (rc != 0 && !sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

int sl_apply_sqlite_claim(struct sl_apply_sqlite *db, const char *topic)
{
	return table_claim(db, topic);
}

int sl_apply_sqlite_open_table(struct sl_apply_sqlite **out, const struct sl_apply_sqlite_options *o, char *err,
                               size_t err_bytes)
{
	const char *path = o->path, *table = o->table != NULL ? o->table : SL_APPLY_SQLITE_TABLE_DEFAULT;
	struct sl_apply_sqlite *s;
	int rc;

	*out = NULL;
	if (path == NULL || path[0] == '\0' || strlen(path) >= PATH_BYTES_MAX) {
		sl_error_set(err, err_bytes, "sqlite target: the path must be 1 to %d characters", PATH_BYTES_MAX - 1);
		return -EINVAL;
	}
	if (sl_apply_sqlite_table_check(table) != 0) {
		sl_error_set(
		        err, err_bytes,
		        "sqlite target: table name '%s': use a letter or '_', then letters, digits or '_', at most "
		        "%d in all, not stale_events, conflicts, reconcile_runs or sqlite_* or synclog_*",
		        table, TABLE_BYTES_MAX);
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		sl_error_set(err, err_bytes, "sqlite target: out of memory");
		return -ENOMEM;
	}
	snprintf(s->path, sizeof(s->path), "%s", path);
	snprintf(s->table, sizeof(s->table), "%s", table);
	s->values = o->values;
	rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		sl_error_set(err, err_bytes, "sqlite %s: cannot open: %s: check the path and its permissions", path,
		             s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		sqlite3_close(s->db);
		free(s);
		return -EIO;
	}
	rc = schema_setup(s);
	if (rc == 0 && o->topic != NULL)
		rc = table_claim(s, o->topic);
	for (int i = 0; rc == 0 && i < ST_COUNT; i++) {
		char sql[SQL_BYTES_MAX];
		int prc;

		prc = sql_expand(s, stmt_sql[i], sql, sizeof(sql));
		SL_ASSERT(prc == 0); /* the templates and the longest table name fit */
		prc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);
		if (prc != SQLITE_OK)
			rc = fail(s, prc, "prepare a statement");
	}
	if (rc != 0) {
		sl_error_set(err, err_bytes, "%s", s->error);
		sl_apply_sqlite_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

int sl_apply_sqlite_open(struct sl_apply_sqlite **out, const char *path, enum sl_apply_values values, char *err,
                         size_t err_bytes)
{
	struct sl_apply_sqlite_options o = {.path = path, .values = values};

	return sl_apply_sqlite_open_table(out, &o, err, err_bytes);
}

void sl_apply_sqlite_close(struct sl_apply_sqlite *s)
{
	if (s == NULL)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_close(s->db);
	free(s);
}
