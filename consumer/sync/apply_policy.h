/* Internal to the applier: the rules a topic's sync contract adds (apply.h rule 9), as the engine (apply.c) calls
 * them. The engine owns transactions, positions, retries and holds; this file decides what one record does and
 * writes it through the store's operations, so that every store gets the same rules. */
#ifndef SL_CONSUMER_SYNC_APPLY_POLICY_H
#define SL_CONSUMER_SYNC_APPLY_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "consumer/sync/apply.h"

struct sl_apply_policy;

/* What a record came to under rule 9c/9d. */
enum sl_policy_outcome {
	SL_POLICY_APPLIED,
	SL_POLICY_DELETED,
	SL_POLICY_STALE,
	SL_POLICY_DUPLICATE,
	SL_POLICY_CONFLICT,
};

/* What rule 9a/9b make of a record before the other rules. */
enum sl_policy_prep {
	SL_PREP_GO,    /* apply *r_out (the record itself, or what it became) */
	SL_PREP_HOLD,  /* hold the partition at it until the applier starts again (why says what it waits for) */
	SL_PREP_RETRY, /* hold the partition at it and try again later (a thin event's source did not answer) */
	SL_PREP_DEAD,  /* dead-letter it with why */
};

/* Create the rules of o for store (NULL *out when o asks for none). Returns 0, or -EINVAL with err set (the store
 * lacks an operation the rules need, a policy without what it needs), -ENOMEM. */
int sl_apply_policy_new(struct sl_apply_policy **out, const struct sl_apply_options *o,
                        const struct sl_apply_store *store, char *err, size_t err_bytes);
void sl_apply_policy_free(struct sl_apply_policy *p);

/* Rule 9a and 9b. *r_out is r or a record valid until the next call. */
enum sl_policy_prep sl_apply_policy_prepare(struct sl_apply_policy *p, const struct sl_apply_record *r,
                                            const struct sl_apply_record **r_out, char *why, size_t why_bytes);

/* Whether rules 9c and 9d decide the records (a policy other than version, or field ownership). */
bool sl_apply_policy_decides(const struct sl_apply_policy *p);

/* Rules 9c and 9d for r inside the open transaction (rules 3 and the idempotency key are the engine's). Returns 0
 * with *out, SL_APPLY_REJECTED when the store refused r before writing anything, or another negative errno. */
int sl_apply_policy_record(struct sl_apply_policy *p, const struct sl_apply_record *r, int64_t now_ms,
                           enum sl_policy_outcome *out);

#endif
