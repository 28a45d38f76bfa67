/* What reconciliation needs of a target (the store `synclog apply` writes): its entity table read as a source in
 * key order (source.h), and a table to keep each run's summary in. One file per kind of target (target_sqlite.c,
 * target_pg.c), one line each in target.c's table of kinds.
 *
 * The rows a target gives: every row of the entity table, a deleted one as deleted (with the version of its
 * delete), and every purged key that still has a floor (apply.h rule 5) as a deleted row at its floor version, so
 * that reconciliation sees that the target holds a delete newer than an old source row instead of nothing.
 *
 * Threads: a target belongs to one thread. */
#ifndef SL_CONSUMER_SYNC_TARGET_H
#define SL_CONSUMER_SYNC_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "consumer/sync/source.h"

/* One reconciliation run, as `synclog reconcile` prints it and the target keeps it (table reconcile_runs). */
struct sl_reconcile_run {
	int64_t started_at_ms;
	int64_t finished_at_ms;
	const char *source; /* the source's spec */
	uint64_t compared;
	uint64_t missing;
	uint64_t extra;
	uint64_t version;
	uint64_t value;
	double diff_ratio;
	double threshold;
	double sample; /* the fraction of ranges compared: 1 for all */
	uint64_t repaired;
	bool alert; /* diff_ratio above threshold */
};

struct sl_target_ops {
	/* Keep run in the target's run history. Returns 0 or a negative errno (error() says why). */
	int (*run_record)(void *target, const struct sl_reconcile_run *run);
	/* The topic that feeds the entity table, into out: 1, or 0 when the target does not say. */
	int (*topic_get)(void *target, char *out, size_t out_bytes);
	const char *(*error)(void *target);
	void (*close)(void *target);
};

struct sl_target {
	const struct sl_target_ops *ops;
	void *ctx;
	/* The entity table's rows (see the top); closed with the target. */
	struct sl_source rows;
};

/* Open the target spec names ("sqlite:PATH", "postgresql://...", "postgres://...", "postgres:CONNINFO"), with
 * the schema of its tables (PostgreSQL only; NULL: the applier's default, synclog) and its entity table (NULL:
 * entities). It must exist: a target is made by `synclog apply`. Returns 0, or a negative errno with err set
 * (-EINVAL for a spec of no known kind or a schema given to a kind without schemas, -ENOENT for a missing database
 * or table). */
int sl_target_open(struct sl_target *out, const char *spec, const char *schema, const char *table, char *err,
                   size_t err_bytes);
void sl_target_close(struct sl_target *t);
/* NULL when spec is a kind this build knows and takes the schema (when not NULL); else what is wrong (a usage
 * error). */
const char *sl_target_check(const char *spec, const char *schema);

/* The kinds: arg is what follows the prefix ("PATH"), or the whole spec for a URI (its scheme is libpq's). */
int sl_target_sqlite_open(struct sl_target *out, const char *arg, const char *schema, const char *table, char *err,
                          size_t err_bytes);
int sl_target_pg_open(struct sl_target *out, const char *arg, const char *schema, const char *table, char *err,
                      size_t err_bytes);

#endif
