/* Reconciliation: compare a source of truth (source.h) with a target (target.h) by key, and say which keys differ
 * and how, at a cost close to one read of each side when they agree.
 *
 * How (the way data-diff tools do it):
 *   1. The source is read once in key order and cut into ranges of range_rows live rows; each range is summarised
 *      by its row count and a digest (the sum of an XXH3-64 hash of each row's key, version and value).
 *   2. The same key range of the target (after < key <= upto: a seek and a short walk) is summarised the same way.
 *      Equal summaries: the range agrees, and its rows count as compared.
 *   3. A range whose summaries differ is cut again into fanout parts by the source's rows, each summarised on both
 *      sides, and so on down to leaf_rows; a part that small (or one where the source has no rows) is walked row
 *      by row on both sides in key order, and each key classified.
 * With --sample F only a random fraction F of the ranges of step 1 is compared (the source is still read whole, to
 * find the ranges).
 * When both sides summarise where their rows are (source.h's optional digest operations, of the same digest_kind:
 * PostgreSQL on both sides), steps 1 and 2 run on the servers instead: the source's server gives the bounds of the
 * ranges (every range_rows-th live key), each server counts and digests every range, a few hundred ranges per round
 * trip, so a range that agrees costs one row from each side over the network and none is read by this process;
 * a range that differs is split the same way (the parts' bounds from the source's server, their summaries from
 * both), and only parts of leaf_rows or fewer are read and walked. The source is then never read whole, so its bad rows
 * are not reported (a source that can summarise has a NOT NULL unique key and a NOT NULL integer version: at most an
 * empty key can be bad, and it is left out).
 *
 * Classes, for a key live on at least one side (a deleted row counts as absent, except for its version):
 *   missing  live in the source, absent or deleted in the target
 *   extra    live in the target, absent or deleted in the source
 *   version  live on both sides at different versions
 *   value    live on both at the same version with different values (JSON compared as JSON: key order and
 *            whitespace do not count, value.h)
 * A difference whose target holds a newer version than the source's row (live, or a delete or purged floor) is
 * marked target_ahead: producing the source's row would be stale at the target; the source must be bumped.
 * Rows are digested as bytes, so a value written in another key order costs its range a walk, never a false
 * difference. Source rows with the same key are taken once, the highest version (the later row on a tie); bad
 * source rows (no key, no integer version) are reported and left out.
 *
 * Threads: a run belongs to one thread. */
#ifndef SL_CONSUMER_SYNC_RECONCILE_H
#define SL_CONSUMER_SYNC_RECONCILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "consumer/sync/source.h"
#include "consumer/sync/target.h"

enum sl_diff_kind { SL_DIFF_MISSING = 0, SL_DIFF_EXTRA, SL_DIFF_VERSION, SL_DIFF_VALUE };

/* One differing key, as the callback sees it (pointers valid during the call). */
struct sl_diff {
	enum sl_diff_kind kind;
	const uint8_t *key;
	size_t key_len;
	int64_t source_version;      /* SL_VERSION_NONE when the source has no row for the key */
	int64_t target_version;      /* SL_VERSION_NONE when the target has no row (nor floor) for the key */
	bool source_deleted;         /* the source's row is a delete */
	bool target_deleted;         /* the target's row is a tombstone or a purged key's floor */
	bool target_ahead;           /* the target's version is above the source's: the source must be bumped */
	const uint8_t *source_value; /* the source's value (NULL: none or null) */
	size_t source_value_len;
};

typedef void (*sl_reconcile_diff_cb)(const struct sl_diff *d, void *cb_arg);
/* A source row left out (no key, a version that is not an integer): its position, key (may be NULL) and why. */
typedef void (*sl_reconcile_bad_row_cb)(const struct sl_source_row *row, void *cb_arg);

struct sl_reconcile_options {
	struct sl_source *source;
	struct sl_source *target; /* the target's rows (struct sl_target.rows) */
	/* Fraction of the ranges compared: 1 for all; (0, 1] */
	double sample;
	uint64_t seed; /* of the sample's choice */
	/* Live source rows per range of step 1, per part (fanout), and the size walked row by row. */
	uint32_t range_rows;
	uint32_t fanout;
	uint32_t leaf_rows;
	sl_reconcile_diff_cb diff_cb;       /* may be NULL */
	sl_reconcile_bad_row_cb bad_row_cb; /* may be NULL */
	void *cb_arg;
};

/* Defaults, each with its reason:
 *   sample 1 (all ranges).
 *   range_rows 1,000: with 0.01% of rows differing at random, about one range in ten differs, so walking them
 *     re-reads about a tenth of each side; larger ranges would each hold a difference and send every range to
 *     the walk, smaller ones would cost a seek each for little.
 *   fanout 8, leaf_rows 64: two levels from a range to its walk. */
void sl_reconcile_options_init(struct sl_reconcile_options *o);

struct sl_reconcile_result {
	uint64_t compared; /* keys live on at least one side, in the compared ranges */
	uint64_t missing;
	uint64_t extra;
	uint64_t version;
	uint64_t value;
	uint64_t target_ahead; /* of the differences above */
	uint64_t skipped;      /* bad source rows left out */
	uint64_t ranges;       /* ranges of step 1 */
	uint64_t ranges_compared;
	uint64_t ranges_differing;
	uint64_t rows_walked; /* rows read row by row (both sides) */
	double diff_ratio;    /* (missing + extra + version + value) / compared; 0 when nothing was compared */
};

/* Run one comparison. Returns 0 with *out filled, or a negative errno with err set (a side failed to read). */
int sl_reconcile_run(const struct sl_reconcile_options *o, struct sl_reconcile_result *out, char *err,
                     size_t err_bytes);

/* The record that repairs d at the target (origin=repair, through the normal path): the source's row for missing,
 * version and value, a delete carrying the target's version for extra. Returns 1 with *out filled (pointers into
 * d), or 0 when no record can repair it (target_ahead: the source must be bumped instead). */
int sl_reconcile_repair_record(const struct sl_diff *d, int64_t timestamp_ms, struct sl_record *out);

const char *sl_diff_kind_name(enum sl_diff_kind kind);

#endif
