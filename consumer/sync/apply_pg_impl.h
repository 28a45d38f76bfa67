/* Internals of the PostgreSQL store shared by its files: apply_pg.c (transactions: the key table, prefetch, kept
 * writes, commit) and apply_pg_tables.c (the tables: their SQL and creation, the claim of an entity table, the
 * purges). apply_pg.c's top says how a transaction goes. Not installed: it includes libpq. */
#ifndef SL_CONSUMER_SYNC_APPLY_PG_IMPL_H
#define SL_CONSUMER_SYNC_APPLY_PG_IMPL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "consumer/sync/apply.h"
#include "consumer/sync/pg_link.h"

/* A schema's or a table's name: PostgreSQL's NAMEDATALEN - 1. */
#define SL_APPLY_PG_NAME_BYTES_MAX 63

/* ---- the key table (apply_pg.c) ---- */

enum kept { KEPT_NONE, KEPT_ROW, KEPT_DELETE };

struct pg_key {
	const uint8_t *key;
	int32_t key_len;
	uint64_t hash;
	/* The key's state as the rules see it (for an idempotency key: exists = stored or remembered), and the floor
	 * of a key not stored but purged (apply.h rule 5). */
	bool exists;
	bool deleted;
	int64_t version;
	bool purged;
	int64_t floor_version;
	/* The stored row's value as text, fetched for a record at the stored version (rule 4b, value_same): at
	 * stored_value_at in the store's stored_values buffer. */
	bool stored_known;
	bool stored_deleted;
	bool stored_value_null;
	uint32_t stored_value_at;
	uint32_t stored_value_len;
	/* The write kept for commit: the record it came from (origin, topic, partition, offset), the row's value and
	 * deletion, and the time of the call. */
	enum kept kept;
	const struct sl_apply_record *r;
	const uint8_t *value;
	int32_t value_len;
	bool row_deleted;
	int64_t deleted_at_ms;
	int64_t now_ms;
};

struct pg_keys {
	struct pg_key *entries;
	uint32_t count;
	uint32_t cap;
	uint32_t *slots;     /* index + 1 into entries, 0 for an empty slot */
	uint32_t slot_count; /* a power of two, at least twice count */
};

/* ---- the store ---- */

/* An offset write kept for the commit of a prefetched transaction. Its strings belong to the engine and outlive
 * the transaction. */
struct pg_offset {
	const char *group;
	const char *topic;
	uint32_t partition;
	int64_t next_offset;
	int64_t expected_offset;
	struct sl_apply_counters delta;
	int64_t now_ms;
};

enum txn_state {
	TXN_NONE,    /* no transaction */
	TXN_PENDING, /* begun: BEGIN and the lock not sent yet */
	TXN_OPEN,    /* BEGIN sent on this connection */
};

enum stmt {
	ST_KEY_GET,
	ST_UPSERT,
	ST_SOFT_DELETE,
	ST_STALE,
	ST_IK_SEEN,
	ST_IK_REMEMBER,
	ST_OFFSETS_READ,
	ST_OFFSET_INSERT,
	ST_OFFSET_UPDATE,
	ST_PURGE_TOMBSTONES,
	ST_PURGE_STALE,
	ST_PURGE_IK_AGE,
	ST_PURGE_IK_COUNT,
	ST_PREFETCH_KEYS,
	ST_PREFETCH_IKS,
	ST_BATCH_ROWS,
	ST_BATCH_DELETES,
	ST_BATCH_STALE,
	ST_BATCH_IKS,
	ST_LOCK,
	ST_ARCHIVE,
	ST_BATCH_ARCHIVE_KEPT,
	ST_BATCH_ARCHIVE_STORED,
	ST_TOMBSTONES_DUE,
	ST_TOMBSTONE_PURGE,
	ST_FLOOR_GET,
	ST_PREFETCH_FLOORS,
	ST_VALUE_GET,
	ST_PREFETCH_VALUES,
	ST_CONFLICT,
	ST_BATCH_CONFLICTS,
	ST_PURGE_FLOORS_KEEP,
	ST_PURGE_FLOORS_PRUNE,
	ST_PURGE_CONFLICTS,
	ST_TOMBSTONE_FLOOR_KEEP,
	ST_CLAIM_GET,
	ST_CLAIM,
	ST_RESET_GET,
	ST_RESET_SET,
	ST_OFFSET_RESET,
	ST_COUNT
};

/* Prepared statement names: "s0", "s1", ... (the statement's index). */
#define STMT_NAME_BYTES 8
_Static_assert(ST_COUNT < 1000, "a statement's name fits STMT_NAME_BYTES");

struct sl_apply_pg {
	struct sl_pg_link link;
	char schema[SL_APPLY_PG_NAME_BYTES_MAX + 1];
	char table[SL_APPLY_PG_NAME_BYTES_MAX + 1]; /* the entity table (--table) */
	char *schema_ident;                         /* the schema quoted as an identifier, "..." */
	char *schema_literal;                       /* and as a string literal, '...' */
	char *table_ident;                          /* "schema"."table" */
	char *archive_ident;                        /* "schema"."table_archive" */
	bool schema_checked;                        /* created and checked on the first connection */
	enum sl_apply_values values;
	enum sl_apply_on_delete on_delete;
	bool follow_log; /* deleted rows are left to the purge that follows the log */
	/* The store's operations (apply.h): the one table of apply_pg.c, with the purge that follows the log added
	 * when follow_log is set. */
	struct sl_apply_store_ops ops;
	char *sql[ST_COUNT]; /* the statements, with the schema quoted in; prepared on every connection */
	enum txn_state txn;
	bool prefetched;       /* the open transaction began with a prefetch: writes are kept */
	bool reject_transient; /* the last rejection was a constraint's (SQLSTATE class 23), not the record's own */
	struct pg_keys keys;
	struct pg_keys iks;
	struct sl_pg_buf copy; /* the COPY rows of the kept stale events and idempotency keys, then of the rows */
	uint32_t copy_stale;
	uint32_t copy_iks;
	uint32_t copy_archived_kept;
	uint32_t copy_archived_stored;
	uint32_t copy_conflicts;
	struct sl_pg_buf stored_values; /* the stored values the key table's entries point into (stored_value_at) */
	struct pg_offset *offsets;
	uint32_t offset_count;
	uint32_t offset_cap;
	struct sl_pg_buf params[2]; /* array parameters, and a jsonb value with its version byte */
	sl_apply_offsets_read_cb offsets_cb;
	void *offsets_cb_arg;
	int offsets_cb_rc;
};

/* ---- shared by the files ---- */

/* Queue prepared statement i (binary parameters; see sl_pg_link_send). */
int sl_apply_pg_send(struct sl_apply_pg *s, enum stmt i, int n, const char *const *values, const int *lengths,
                     bool results_binary, struct sl_pg_step step);
/* Send BEGIN and the schema's lock when the open transaction has not sent them yet, reconnecting first when the
 * connection was lost since the last transaction. */
int sl_apply_pg_txn_send_begin(struct sl_apply_pg *s);
/* The store's rollback (safe with no transaction open). */
void sl_apply_pg_rollback(void *store);
int sl_apply_pg_fail_memory(struct sl_apply_pg *s, const char *what);
/* The session of a new connection (the link's session_cb, cb_arg the store). */
int sl_apply_pg_session_setup(struct sl_pg_link *l, void *cb_arg);
/* The store operations apply_pg_tables.c has (apply.h: purge, tombstones_due, tombstone_purge). */
int sl_apply_pg_purge(void *store, int64_t now_ms, int64_t retention_ms, struct sl_apply_purge_counts *out);
int sl_apply_pg_tombstones_due(void *store, int64_t before_ms, struct sl_apply_tombstone *out, uint32_t max,
                               uint32_t *count_out);
int sl_apply_pg_tombstone_purge(void *store, const struct sl_apply_tombstone *t, bool *purged_out);

#endif
