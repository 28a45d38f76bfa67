/* Rows of a PostgreSQL query as a source (source.h), in key order with a server-side cursor, and summarised by the
 * server for reconciliation: what the PostgreSQL source (a user's table) and the PostgreSQL target (the applier's
 * entity table with the floors of its purged keys) share. source_pg.c has the cursor and the summaries; a caller
 * gives the query's parts as SQL expressions over its FROM, the names in them quoted already.
 *
 * Not installed: it includes libpq. Threads: as source.h. */
#ifndef SL_CONSUMER_SYNC_PG_ROWS_H
#define SL_CONSUMER_SYNC_PG_ROWS_H

#include <stdbool.h>
#include <stddef.h>

#include "consumer/sync/source.h"

struct sl_pg_rows_query {
	const char *conninfo;
	const char *label;            /* what errors name: "source postgres:...:t", "target ... table entities" */
	const char *application_name; /* as pg_stat_activity shows the session */
	const char *from;             /* a FROM item: "\"s\".\"t\" t", or a subquery with an alias */
	const char *key;              /* the key's text; rows come ordered by key COLLATE "C" (source.h's order) */
	const char *version;          /* the version as text: an integer's decimal digits, or anything (a bad row) */
	const char *deleted;          /* a boolean: the row stands for a delete */
	const char *value;            /* the value's text; NULL when the value is null */
	bool key_not_null;            /* the key is never NULL (a NOT NULL column): an index then orders every scan */
	/* NULL: no summaries. Else a boolean of a usable live row (a key, an integer version, not deleted), over a
	 * FROM whose keys are unique: the server then counts and digests ranges (source.h, digest_kind). */
	const char *live;
};

/* The kind of digest the server computes: a sum modulo 2^64 over the live rows of hashtextextended(value,
 * hashtextextended(key, version) # value-is-null) (version an integer). PostgreSQL keeps hashtextextended stable
 * (hash partitioning depends on it), so two servers agree. */
#define SL_PG_ROWS_DIGEST_KIND "postgresql-hashtextextended-sum-2"

/* Open out as the query's rows (out->spec is the caller's, the rest is set here). Connects at once. Returns 0, or a
 * negative errno with err set. */
int sl_pg_rows_open(struct sl_source *out, const struct sl_pg_rows_query *q, char *err, size_t err_bytes);

#endif
