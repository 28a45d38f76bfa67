/* A source of truth's rows, read in key order: what `synclog backfill` produces and `synclog reconcile` compares
 * with a target. Each kind of source is one file behind the table of operations below (source_sqlite.c,
 * source_jsonl.c; PostgreSQL is one more file and one more line in source.c's table of kinds), and a target's
 * table is read through the same interface (target.h), so reconciliation compares two sources.
 *
 * A row (struct sl_source_row):
 *   key      the key column's text; NULL when the row has none (a bad row)
 *   version  the version column as an integer; SL_VERSION_NONE when it is missing or not an integer (a bad row)
 *   value    the text of --value COL, or else the JSON object of the other columns in table order (without the key,
 *            version and deleted columns); NULL for a null value and for a deleted row
 *   deleted  the `deleted` column (if the source has one) is true: the row stands for a delete
 *   position where the row is, for messages: its rowid or line number (0 when the source has none)
 *   bad      NULL, or why the row cannot be used (no key, a version that is not an integer, ...), one phrase
 *
 * Key order: keys are compared as bytes (sl_source_key_compare: memcmp, and a key before every longer key it
 * begins), which is SQLite's BINARY collation of text, so a target ordered by its TEXT key lists its keys in the
 * same order. Rows without a key come before every row with one.
 *
 * Threads: a source belongs to one thread. */
#ifndef SL_CONSUMER_SYNC_SOURCE_H
#define SL_CONSUMER_SYNC_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/batch.h"

struct sl_source_row {
	const uint8_t *key;
	size_t key_len;
	int64_t version;
	const uint8_t *value;
	size_t value_len;
	bool deleted;
	uint64_t position;
	const char *bad;
};

/* A key as bounds are given: NULL data with len 0 means no bound. */
struct sl_key {
	const uint8_t *data;
	size_t len;
};

/* Which columns hold what (names as the source spells them). */
struct sl_source_columns {
	const char *key;     /* "key" */
	const char *version; /* "version" */
	const char *value;   /* NULL: the JSON object of the other columns */
};

#define SL_SOURCE_KEY_COLUMN_DEFAULT     "key"
#define SL_SOURCE_VERSION_COLUMN_DEFAULT "version"
/* The column that, when true, makes a row a delete. */
#define SL_SOURCE_DELETED_COLUMN         "deleted"

struct sl_source_ops {
	/* Read the rows with after < key <= upto, in key order; after.data NULL: from the first row, rows without a
	 * key included; upto.data NULL: to the last. Replaces a scan in progress. The bounds are copied. Returns 0
	 * or a negative errno. */
	int (*scan)(void *src, struct sl_key after, struct sl_key upto);
	/* The next row of the scan: 1 with *out filled (its pointers valid until the next call of next or scan), 0 at
	 * the end, or a negative errno (error() says what failed). */
	int (*next)(void *src, struct sl_source_row *out);
	/* Rows the source holds (for progress), or -1 when it cannot say cheaply. */
	int64_t (*count)(void *src);
	const char *(*error)(void *src);
	void (*close)(void *src);
	/* Optional, all four or none: ranges summarised where the rows are (a database server), so that a range
	 * that agrees costs one row over the network instead of its rows (reconcile.h). digest_kind names the digest
	 * (NULL: this source cannot summarise, its columns or keys do not allow it); two sides' summaries are
	 * compared only when their kinds are the same string. Live rows only, one per key, in key order:
	 *   range_bounds    the keys that end consecutive ranges of range_rows live rows each after `after` (NULL
	 *                   data: from the first row), up to max of them into out (valid until the next call); fewer
	 *                   than max when the rows end (the last, shorter range has no bound: it runs to the end)
	 *   summaries_send  ask for the summaries of count ranges lo[i] < key <= hi[i] (NULL data: no bound); the
	 *                   keys are not needed once it returns
	 *   summaries_read  wait for them: for each range, its live rows and their digest
	 * In two halves, so that both sides' servers work at once. Each returns 0 or a negative errno (error() says
	 * what failed); after a failed send, no read. */
	const char *(*digest_kind)(void *src);
	int (*range_bounds)(void *src, struct sl_key after, uint32_t range_rows, uint32_t max, struct sl_key *out,
	                    uint32_t *count_out);
	int (*summaries_send)(void *src, const struct sl_key *lo, const struct sl_key *hi, uint32_t count);
	int (*summaries_read)(void *src, uint64_t *counts, uint64_t *digests);
};

/* Longest spec and stem kept. */
#define SL_SOURCE_SPEC_BYTES_MAX 1100

struct sl_source {
	const struct sl_source_ops *ops;
	void *ctx;
	/* What was opened, as given ("sqlite:/data/crm.db:customers"), for messages and checkpoints. */
	char spec[SL_SOURCE_SPEC_BYTES_MAX];
	/* A path to put files about this source next to (a backfill's checkpoint): "/data/crm.db.customers"; empty
	 * when the source lives in no file, and the current directory is used. */
	char stem[SL_SOURCE_SPEC_BYTES_MAX];
	/* What a row's position is, for messages: "rowid", "line"; "" when positions mean nothing. */
	const char *position_name;
};

/* Open the source spec names: "sqlite:PATH:TABLE", "jsonl:PATH", "postgresql://...?table=NAME" (or postgres://)
 * or "postgres:CONNINFO:TABLE". Returns 0, or a negative errno with err set:
 * -EINVAL for a spec of no known kind or a column the source lacks, -ENOENT for a missing file or table, ... */
int sl_source_open(struct sl_source *out, const char *spec, const struct sl_source_columns *columns, char *err,
                   size_t err_bytes);
void sl_source_close(struct sl_source *s);

/* <0, 0, >0 as a is before, equal to or after b in key order. */
int sl_source_key_compare(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len);

/* ---- the kinds (one file each); sl_source_open chooses by the spec's prefix ---- */

/* arg is what follows the prefix ("PATH:TABLE", "PATH"). Each fills out->ops, out->ctx, out->stem and
 * out->position_name. */
int sl_source_sqlite_open(struct sl_source *out, const char *arg, const struct sl_source_columns *columns, char *err,
                          size_t err_bytes);
int sl_source_jsonl_open(struct sl_source *out, const char *arg, const struct sl_source_columns *columns, char *err,
                         size_t err_bytes);
/* The PostgreSQL kind reads its spec from out->spec: "postgresql://...?table=NAME", "postgres://...?table=NAME"
 * or "postgres:CONNINFO:TABLE" (source_pg.c). */
int sl_source_pg_open(struct sl_source *out, const char *arg, const struct sl_source_columns *columns, char *err,
                      size_t err_bytes);

/* ---- keys kept across calls ---- */

/* A copy of a key that a source keeps between calls (a scan's bounds, the last key it gave), in a buffer reused
 * from key to key. set: a key is held (an empty one too). */
struct sl_key_copy {
	uint8_t *data;
	size_t len;
	size_t cap;
	bool set;
};
/* Hold a copy of data[0 .. len) (the buffer grows to the longest key, 64 bytes at least). 0 or -ENOMEM. */
int sl_key_copy_set(struct sl_key_copy *k, const void *data, size_t len);
void sl_key_copy_free(struct sl_key_copy *k);

/* ---- JSON text of a row's columns, for the kinds that build the value object ---- */

/* A growing buffer of JSON text, reused from row to row (allocates only when a row is longer than any before). */
struct sl_json_buf {
	char *data;
	size_t len;
	size_t cap;
};
/* Append raw bytes / a JSON string of UTF-8 text (-EILSEQ when it is not UTF-8 or holds NUL). 0 or -ENOMEM. */
int sl_json_buf_add(struct sl_json_buf *b, const char *bytes, size_t len);
int sl_json_buf_add_string(struct sl_json_buf *b, const uint8_t *text, size_t len);
void sl_json_buf_free(struct sl_json_buf *b);

#endif
