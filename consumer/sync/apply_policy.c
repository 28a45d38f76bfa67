/* The rules a topic's sync contract adds to the applier (apply.h rule 9): accepted schema versions and upcasts,
 * thin events fetched from the source, the conflict policies (version, source-of-truth, lww, reject), field
 * ownership, and an operator's decision on a conflict. Every decision goes through the store's operations, so any
 * store that has them (apply.h) gets the same rules.
 *
 * The order for one record of a stored key under a policy (rule 9c), after its idempotency key was checked:
 *   1. Source-of-truth: a record of another system is rejected, or writes only its own fields (9d).
 *   2. Ordering: by change time for lww between two systems, else by version (rules 4 to 6): newer, stale, equal.
 *   3. Equal: the same value is a duplicate; another value is the policy's conflict (kept, replaced, queued).
 *   4. Newer: written; an upsert of a JSON object under field ownership is merged into the stored object first.
 * A merged value is written member by member: the stored object's members in their order, the record's owned
 * members in place of theirs (and after them, those the stored object lacks), each value as its source wrote it
 * (0.1 stays 0.1: jansson would write it 0.10000000000000001). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/client/client_impl.h"
#include "consumer/client/json_text.h"
#include "consumer/sync/apply_policy.h"
#include "consumer/sync/source.h"
#include "consumer/sync/value.h"

/* Upcasts chained on one record at most: far more schema versions than a topic lives through. */
#define UPCASTS_MAX  64
/* The reason noted with a conflict; longer lists of fields are cut. */
#define REASON_BYTES 512

struct sl_apply_policy {
	const struct sl_apply_options *o;
	struct sl_apply_store store;
	const struct sl_contract *contract; /* may be NULL */
	const char *sot;                    /* the source of truth, or NULL */
	bool ownership;
	bool decides;
	struct sl_apply_record replaced; /* what rule 9a or 9b made of the last record */
	struct sl_json_buf merged;       /* the last merged value, NUL-terminated */
	uint32_t merged_owned;           /* members of its record the last merge took (its system's own) */
	char reason[REASON_BYTES];
};

const char *sl_apply_conflict_status_name(enum sl_apply_conflict_status s)
{
	static const char *const names[] = {"logged", "rejected", "open", "resolved", "superseded"};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

int sl_apply_policy_new(struct sl_apply_policy **out, const struct sl_apply_options *o,
                        const struct sl_apply_store *store, char *err, size_t err_bytes)
{
	const struct sl_apply_store_ops *ops = store->ops;
	struct sl_apply_policy *p;
	bool ownership = o->contract != NULL && sl_contract_has_ownership(o->contract);
	bool decides = o->conflicts != SL_CONFLICTS_VERSION || ownership;
	const char *sot = o->source_of_truth != NULL ? o->source_of_truth
	                  : o->contract != NULL      ? o->contract->source_of_truth
	                                             : NULL;

	*out = NULL;
	if (!decides && o->contract == NULL && o->fetch_cb == NULL && o->upcast_cb == NULL)
		return 0;
	if (decides && (ops->row_get == NULL || ops->conflict_note == NULL)) {
		sl_error_set(err, err_bytes,
		             "apply options: the %s needs a store that keeps conflicts and reads rows (row_get, "
		             "conflict_note)",
		             ownership ? "contract's field ownership" : "conflict policy");
		return -EINVAL;
	}
	if (o->conflicts == SL_CONFLICTS_SOURCE_OF_TRUTH && (sot == NULL || sot[0] == '\0')) {
		sl_error_set(err, err_bytes,
		             "apply options: the source-of-truth conflict policy needs the source of truth's name (the "
		             "contract's source_of_truth.system, or --source-of-truth)");
		return -EINVAL;
	}
	if (o->max_clock_skew_ms < 0) {
		sl_error_set(err, err_bytes, "apply options: max_clock_skew_ms must not be negative");
		return -EINVAL;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	p->o = o;
	p->store = *store;
	p->contract = o->contract;
	p->sot = sot != NULL && sot[0] != '\0' ? sot : NULL;
	p->ownership = ownership;
	p->decides = decides;
	*out = p;
	return 0;
}

void sl_apply_policy_free(struct sl_apply_policy *p)
{
	if (p == NULL)
		return;
	sl_json_buf_free(&p->merged);
	free(p);
}

bool sl_apply_policy_decides(const struct sl_apply_policy *p)
{
	return p != NULL && p->decides;
}

/* ---- rule 9a and 9b ---- */

static void accepted_list(const struct sl_contract *c, char *out, size_t cap)
{
	size_t at = 0;

	out[0] = '\0';
	for (uint32_t i = 0; i < c->schema_version_count && at < cap; i++)
		at += (size_t)snprintf(out + at, cap - at, "%s%d", i ? ", " : "", c->schema_versions[i]);
}

static enum sl_policy_prep schema_prepare(struct sl_apply_policy *p, const struct sl_apply_record *r,
                                          const struct sl_apply_record **r_out, char *why, size_t why_bytes)
{
	const struct sl_contract *c = p->contract;
	int32_t version = r->rec.schema_version != 0 ? r->rec.schema_version : 1;
	const uint8_t *value = r->rec.value;
	size_t len = (size_t)r->rec.value_len;
	char list[200];

	/* A delete carries no value, so nothing of it depends on a schema. */
	if (c == NULL || r->rec.value == NULL || sl_contract_schema_accepted(c, version))
		return SL_PREP_GO;
	for (int i = 0; i < UPCASTS_MAX && p->o->upcast_cb != NULL && !sl_contract_schema_accepted(c, version); i++) {
		int32_t from = version;
		int rc = p->o->upcast_cb(r, value, len, &version, &value, &len, why, why_bytes, p->o->upcast_cb_arg);

		if (rc == -ENOENT)
			break;
		if (rc != 0) {
			char detail[SL_ERROR_BYTES];

			snprintf(detail, sizeof(detail), "%s", why);
			snprintf(why, why_bytes, "upcasting schema version %d: %s", from, detail);
			return SL_PREP_DEAD;
		}
		SL_ASSERT(version != from); /* an upcast moves the version, or the loop could not end */
	}
	if (sl_contract_schema_accepted(c, version)) {
		p->replaced = *r;
		p->replaced.rec.value = value;
		p->replaced.rec.value_len = (int32_t)len;
		p->replaced.rec.schema_version = version;
		*r_out = &p->replaced;
		return SL_PREP_GO;
	}
	accepted_list(c, list, sizeof(list));
	snprintf(why, why_bytes,
	         "schema version %d is not one the contract accepts (%s) and no --upcast takes it there: deploy a "
	         "consumer that knows it (contract schema.versions, apply --upcast)",
	         version, list);
	return p->o->on_unknown_schema == SL_ON_UNKNOWN_DEAD_LETTER ? SL_PREP_DEAD : SL_PREP_HOLD;
}

static enum sl_policy_prep thin_prepare(struct sl_apply_policy *p, const struct sl_apply_record *r,
                                        const struct sl_apply_record **r_out, char *why, size_t why_bytes)
{
	const uint8_t *value = NULL;
	size_t len = 0;
	int rc;

	if (p->o->fetch_cb == NULL) {
		snprintf(why, why_bytes, "a thin event (op changed) and no --fetch-url to fetch the entity from");
		return SL_PREP_DEAD;
	}
	rc = p->o->fetch_cb(r, &value, &len, why, why_bytes, p->o->fetch_cb_arg);
	if (rc == -EAGAIN)
		return SL_PREP_RETRY;
	if (rc != 0 && rc != -ENOENT)
		return SL_PREP_DEAD;
	p->replaced = *r;
	if (rc == -ENOENT) {
		/* The source no longer has it: the change was a delete. */
		p->replaced.rec.op = SL_OP_DELETE;
		p->replaced.rec.value = NULL;
		p->replaced.rec.value_len = -1;
	} else {
		p->replaced.rec.op = SL_OP_UPSERT;
		p->replaced.rec.value = value;
		p->replaced.rec.value_len = (int32_t)len;
	}
	*r_out = &p->replaced;
	return SL_PREP_GO;
}

enum sl_policy_prep sl_apply_policy_prepare(struct sl_apply_policy *p, const struct sl_apply_record *r,
                                            const struct sl_apply_record **r_out, char *why, size_t why_bytes)
{
	*r_out = r;
	if (r->rec.op == SL_OP_CHANGED) {
		if (p == NULL) {
			snprintf(why, why_bytes,
			         "a thin event (op changed) and no --fetch-url to fetch the entity from");
			return SL_PREP_DEAD;
		}
		return thin_prepare(p, r, r_out, why, why_bytes);
	}
	return p != NULL ? schema_prepare(p, r, r_out, why, why_bytes) : SL_PREP_GO;
}

/* ---- rule 9c and 9d ---- */

static bool bytes_equal(const uint8_t *a, size_t a_len, const char *b)
{
	return a != NULL && b != NULL && strlen(b) == a_len && memcmp(a, b, a_len) == 0;
}

/* The system a record speaks for: its origin_system; without one, the source of truth, except for a live record
 * under the source-of-truth policy, which must say who it is (NULL: nobody). *len_out gets its length. */
static const uint8_t *record_system(const struct sl_apply_policy *p, const struct sl_record *rec, size_t *len_out)
{
	if (rec->origin_system != NULL) {
		*len_out = (size_t)rec->origin_system_len;
		return rec->origin_system;
	}
	if (p->sot == NULL || (rec->origin == SL_ORIGIN_LIVE && p->o->conflicts == SL_CONFLICTS_SOURCE_OF_TRUTH)) {
		*len_out = 0;
		return NULL;
	}
	*len_out = strlen(p->sot);
	return (const uint8_t *)p->sot;
}

static bool is_sot(const struct sl_apply_policy *p, const uint8_t *system, size_t len)
{
	return p->sot != NULL && bytes_equal(system, len, p->sot);
}

static int note(struct sl_apply_policy *p, const struct sl_apply_record *r, int64_t stored_version,
                enum sl_apply_conflict_status status, const char *policy, int64_t now_ms)
{
	struct sl_apply_conflict_note n = {.policy = policy, .status = status, .reason = p->reason};

	return p->store.ops->conflict_note(p->store.ctx, r, stored_version, &n, now_ms);
}

/* Append "key":value to out, value as text wrote it (member key of an object), else as v (value.h). */
static int member_emit(struct sl_json_buf *out, const char *key, const char *text, size_t len, json_t *v, bool first)
{
	const char *span;
	size_t span_len;

	if ((!first && sl_json_buf_add(out, ",", 1) != 0) ||
	    sl_json_buf_add_string(out, (const uint8_t *)key, strlen(key)) != 0 || sl_json_buf_add(out, ":", 1) != 0)
		return -ENOMEM;
	if (text != NULL && sl_json_member_span(text, len, key, &span, &span_len) == 1)
		return sl_json_buf_add(out, span, span_len);
	/* A name written with escapes is not found as written: the value is written from the tree. */
	return sl_value_json_write(v, out);
}

static bool owned_by(const struct sl_apply_policy *p, const char *key, const uint8_t *system, size_t system_len)
{
	const char *owner = sl_contract_field_owner(p->contract, key, strlen(key));

	return owner != NULL && bytes_equal(system, system_len, owner);
}

/* Merge r's JSON object into the stored one under field ownership (rule 9d) into p->merged. Returns 1 with the
 * merged text, 0 when r's value is not a JSON object (written whole), -ENOMEM. *not_owned gets the members r
 * carries and may not set, where they differ from the stored ones ("email (billing), badge (derived)"). */
static int merge(struct sl_apply_policy *p, const struct sl_apply_row *row, const struct sl_record *rec,
                 const uint8_t *system, size_t system_len, char *not_owned, size_t not_owned_bytes)
{
	const char *in_text = (const char *)rec->value, *base_text = NULL, *key;
	size_t in_len = rec->value != NULL ? (size_t)rec->value_len : 0, base_len = 0, at = 0;
	json_t *in, *base = NULL, *v;
	bool first = true;
	int rc = 0;

	not_owned[0] = '\0';
	in = in_text != NULL ? json_loadb(in_text, in_len, 0, NULL) : NULL;
	if (!json_is_object(in)) {
		json_decref(in);
		return 0;
	}
	if (row->state.exists && !row->state.deleted && row->value != NULL) {
		base_text = (const char *)row->value;
		base_len = row->value_len;
		base = json_loadb(base_text, base_len, 0, NULL);
	}
	if (!json_is_object(base)) {
		json_decref(base);
		base = json_object();
		base_text = NULL;
	}
	p->merged.len = 0;
	p->merged_owned = 0;
	rc = sl_json_buf_add(&p->merged, "{", 1);
	/* The stored members in their order: the system's own from the record (gone when it left them out). */
	json_object_foreach(base, key, v)
	{
		if (rc != 0)
			break;
		if (!owned_by(p, key, system, system_len)) {
			rc = member_emit(&p->merged, key, base_text, base_len, v, first);
			first = false;
		} else if (json_object_get(in, key) != NULL) {
			rc = member_emit(&p->merged, key, in_text, in_len, json_object_get(in, key), first);
			first = false;
		}
	}
	json_object_foreach(in, key, v)
	{
		if (rc != 0)
			break;
		if (owned_by(p, key, system, system_len)) {
			p->merged_owned++;
			if (json_object_get(base, key) == NULL) {
				rc = member_emit(&p->merged, key, in_text, in_len, v, first);
				first = false;
			}
		} else if (!json_equal(json_object_get(base, key), v) && at < not_owned_bytes) {
			const char *owner = sl_contract_field_owner(p->contract, key, strlen(key));

			at += (size_t)snprintf(not_owned + at, not_owned_bytes - at, "%s%s (%s)", at ? ", " : "", key,
			                       owner != NULL ? owner : "derived");
		}
	}
	if (rc == 0)
		rc = sl_json_buf_add(&p->merged, "}", 2); /* and the NUL, not counted below */
	if (rc == 0)
		p->merged.len--;
	json_decref(in);
	json_decref(base);
	return rc != 0 ? -ENOMEM : 1;
}

/* Whether r carries what the row holds (rule 4b): a delete of a deleted row, or an equal value of a live one. */
static bool row_same(const struct sl_apply_row *row, const struct sl_record *rec)
{
	if (rec->op == SL_OP_DELETE || row->state.deleted)
		return rec->op == SL_OP_DELETE && row->state.deleted;
	return sl_value_equal(row->value, row->value_len, rec->value, rec->value != NULL ? (size_t)rec->value_len : 0);
}

enum order { ORDER_NEWER, ORDER_STALE, ORDER_EQUAL, ORDER_WITHIN_SKEW };

/* Rules 4 to 6 (and 9c's lww between systems) for r against the row: where r stands. */
static enum order order_of(const struct sl_apply_policy *p, const struct sl_apply_row *row, const struct sl_record *rec,
                           const uint8_t *system, size_t system_len)
{
	const struct sl_apply_key_state *ks = &row->state;

	if (rec->version == SL_VERSION_NONE) {
		/* Rule 6: a live record applies in log order; a backfill or repair one only to an absent key. */
		return rec->origin == SL_ORIGIN_LIVE || (!ks->exists && !ks->purged) ? ORDER_NEWER : ORDER_STALE;
	}
	if (!ks->exists) {
		/* Rule 5: a purged key's floor. */
		if (!ks->purged || rec->version > ks->floor_version)
			return ORDER_NEWER;
		return rec->version == ks->floor_version && rec->origin == SL_ORIGIN_REPAIR ? ORDER_NEWER : ORDER_STALE;
	}
	if (p->o->conflicts == SL_CONFLICTS_LWW && row->changed_at_ms > 0 && row->origin_system != NULL &&
	    system != NULL &&
	    !(row->origin_system_len == system_len && memcmp(row->origin_system, system, system_len) == 0)) {
		int64_t t = rec->changed_at_ms > 0 ? rec->changed_at_ms : rec->timestamp_ms;
		int64_t skew = p->o->max_clock_skew_ms;

		if (t > row->changed_at_ms + skew)
			return ORDER_NEWER;
		if (t < row->changed_at_ms - skew)
			return ORDER_STALE;
		return ORDER_WITHIN_SKEW;
	}
	if (rec->version < ks->version)
		return ORDER_STALE;
	if (rec->version > ks->version || rec->origin == SL_ORIGIN_REPAIR)
		return ORDER_NEWER; /* rule 4a: a repair replaces the row at its own version */
	return ORDER_EQUAL;
}

/* Write r (an upsert merged under ownership first, or a delete) at version. */
static int write_record(struct sl_apply_policy *p, const struct sl_apply_record *r, const struct sl_apply_row *row,
                        const uint8_t *system, size_t system_len, int64_t version, int64_t now_ms,
                        enum sl_policy_outcome *out)
{
	const struct sl_apply_store_ops *ops = p->store.ops;
	struct sl_apply_record merged;
	char not_owned[REASON_BYTES - 64];
	int rc;

	if (r->rec.op == SL_OP_DELETE) {
		*out = SL_POLICY_DELETED;
		return ops->soft_delete(p->store.ctx, r, version, now_ms);
	}
	*out = SL_POLICY_APPLIED;
	if (!p->ownership)
		return ops->upsert(p->store.ctx, r, version, now_ms);
	rc = merge(p, row, &r->rec, system, system_len, not_owned, sizeof(not_owned));
	if (rc < 0)
		return rc;
	if (rc == 0)
		return ops->upsert(p->store.ctx, r, version, now_ms);
	merged = *r;
	merged.rec.value = (const uint8_t *)p->merged.data;
	merged.rec.value_len = (int32_t)p->merged.len;
	rc = ops->upsert(p->store.ctx, &merged, version, now_ms);
	if (rc == 0 && not_owned[0] != '\0') {
		snprintf(p->reason, sizeof(p->reason), "fields not owned by %.*s kept the target's value: %s",
		         (int)(system_len > 128 ? 128 : system_len), system != NULL ? (const char *)system : "",
		         not_owned);
		/* After the record's first write a refusal would leave half of it: a failure of the store. */
		rc = note(p, r, row->state.exists ? row->state.version : 0, SL_APPLY_CONFLICT_LOGGED, "fields", now_ms);
		if (rc == SL_APPLY_REJECTED)
			rc = -EPROTO;
	}
	return rc;
}

/* Rule 4b under ownership: whether r changes nothing the record's system owns. */
static int owned_same(struct sl_apply_policy *p, const struct sl_apply_row *row, const struct sl_record *rec,
                      const uint8_t *system, size_t system_len, bool *same_out)
{
	char not_owned[REASON_BYTES - 64];
	int rc;

	if (!p->ownership || rec->op == SL_OP_DELETE || row->state.deleted) {
		*same_out = row_same(row, rec);
		return 0;
	}
	rc = merge(p, row, rec, system, system_len, not_owned, sizeof(not_owned));
	if (rc < 0)
		return rc;
	*same_out =
	        rc == 0 ? row_same(row, rec)
	                : sl_value_equal(row->value, row->value_len, (const uint8_t *)p->merged.data, p->merged.len);
	return 0;
}

static void name_of(char *out, size_t cap, const uint8_t *s, size_t len)
{
	if (s == NULL)
		snprintf(out, cap, "an unnamed system");
	else
		snprintf(out, cap, "%.*s", (int)(len > 128 ? 128 : len), (const char *)s);
}

/* A record of a system that is not the source of truth, under that policy (9c, 9d). */
static int not_owner(struct sl_apply_policy *p, const struct sl_apply_record *r, const struct sl_apply_row *row,
                     const uint8_t *system, size_t system_len, int64_t now_ms, enum sl_policy_outcome *out)
{
	const struct sl_record *rec = &r->rec;
	int64_t stored = row->state.exists ? row->state.version : row->state.floor_version;
	char who[160];

	name_of(who, sizeof(who), system, system_len);
	if (p->ownership && system != NULL && rec->op == SL_OP_UPSERT && !row->state.deleted) {
		char not_owned[REASON_BYTES - 64];
		int rc = merge(p, row, rec, system, system_len, not_owned, sizeof(not_owned));

		if (rc < 0)
			return rc;
		if (rc == 1 && p->merged_owned > 0) {
			/* Its own fields, at the row's version: the version is the source of truth's (apply.h 9d). A
			 * record with none of its own is rejected whole, below. */
			return write_record(p, r, row, system, system_len, row->state.exists ? stored : 0, now_ms, out);
		}
	}
	if (system == NULL)
		snprintf(p->reason, sizeof(p->reason),
		         "a live record without origin_system: the source-of-truth policy accepts only %s's", p->sot);
	else
		snprintf(p->reason, sizeof(p->reason), "origin_system %s is not the source of truth (%s)", who, p->sot);
	*out = SL_POLICY_CONFLICT;
	return note(p, r, stored, SL_APPLY_CONFLICT_REJECTED, "source-of-truth", now_ms);
}

int sl_apply_policy_record(struct sl_apply_policy *p, const struct sl_apply_record *r, int64_t now_ms,
                           enum sl_policy_outcome *out)
{
	const struct sl_apply_store_ops *ops = p->store.ops;
	const struct sl_record *rec = &r->rec;
	struct sl_apply_row row;
	const uint8_t *system;
	size_t system_len;
	int64_t stored, version;
	bool same = false;
	char who[160], row_who[160];
	int rc = ops->row_get(p->store.ctx, r, &row);

	if (rc != 0)
		return rc;
	system = record_system(p, rec, &system_len);
	stored = row.state.exists ? row.state.version : row.state.floor_version;
	if (p->o->conflicts == SL_CONFLICTS_SOURCE_OF_TRUTH && !is_sot(p, system, system_len))
		return not_owner(p, r, &row, system, system_len, now_ms, out);
	version = rec->version != SL_VERSION_NONE ? rec->version
	          : row.state.exists              ? row.state.version
	          : row.state.purged              ? row.state.floor_version
	                                          : 0;
	switch (order_of(p, &row, rec, system, system_len)) {
	case ORDER_NEWER:
		return write_record(p, r, &row, system, system_len, version, now_ms, out);
	case ORDER_STALE:
		*out = SL_POLICY_STALE;
		return ops->stale_record(p->store.ctx, r, stored, now_ms);
	case ORDER_WITHIN_SKEW:
		if ((rc = owned_same(p, &row, rec, system, system_len, &same)) != 0)
			return rc;
		if (same)
			break;
		name_of(who, sizeof(who), system, system_len);
		name_of(row_who, sizeof(row_who), row.origin_system, row.origin_system_len);
		if (is_sot(p, system, system_len)) {
			snprintf(p->reason, sizeof(p->reason),
			         "lww: %s's change is within max_clock_skew of %s's: the source of truth wins", who,
			         row_who);
			rc = write_record(p, r, &row, system, system_len, version, now_ms, out);
			if (rc == 0)
				rc = note(p, r, stored, SL_APPLY_CONFLICT_LOGGED, "lww", now_ms);
			return rc == SL_APPLY_REJECTED ? -EPROTO : rc;
		}
		snprintf(p->reason, sizeof(p->reason),
		         "lww: %s's change is within max_clock_skew of %s's, and %s: the stored row stays", who,
		         row_who,
		         p->sot == NULL                                        ? "no source of truth is named"
		         : is_sot(p, row.origin_system, row.origin_system_len) ? "that is the source of truth"
		                                                               : "neither is the source of truth");
		*out = SL_POLICY_CONFLICT;
		return note(p, r, stored, SL_APPLY_CONFLICT_LOGGED, "lww", now_ms);
	case ORDER_EQUAL:
		if ((rc = owned_same(p, &row, rec, system, system_len, &same)) != 0)
			return rc;
		if (same)
			break;
		if (p->o->conflicts == SL_CONFLICTS_SOURCE_OF_TRUTH && row.origin_system != NULL &&
		    !is_sot(p, row.origin_system, row.origin_system_len)) {
			name_of(row_who, sizeof(row_who), row.origin_system, row.origin_system_len);
			snprintf(p->reason, sizeof(p->reason),
			         "the source of truth replaced %s's write at the same version", row_who);
			rc = write_record(p, r, &row, system, system_len, version, now_ms, out);
			if (rc == 0)
				rc = note(p, r, stored, SL_APPLY_CONFLICT_LOGGED, "source-of-truth", now_ms);
			return rc == SL_APPLY_REJECTED ? -EPROTO : rc;
		}
		*out = SL_POLICY_CONFLICT;
		if (p->o->conflicts == SL_CONFLICTS_REJECT) {
			snprintf(p->reason, sizeof(p->reason),
			         "the stored version with another value: an operator decides (synclog conflicts "
			         "resolve)");
			return note(p, r, stored, SL_APPLY_CONFLICT_OPEN, "reject", now_ms);
		}
		snprintf(p->reason, sizeof(p->reason), "the stored version with another value: the stored row stays");
		return note(p, r, stored, SL_APPLY_CONFLICT_LOGGED, sl_contract_conflicts_name(p->o->conflicts),
		            now_ms);
	}
	*out = SL_POLICY_DUPLICATE;
	return ops->duplicate_record != NULL ? ops->duplicate_record(p->store.ctx, r, now_ms) : 0;
}

/* ---- an operator's decision ---- */

/* What resolve needs of a conflicts row, copied (the store's pointers last only until its next call). */
struct held_conflict {
	bool found;
	char *key;
	char *value;
	char *origin;
	char *origin_system;
	char *status;
	char *topic;
	bool op_known;
	bool is_delete;
	int64_t stored_version;
	int64_t incoming_version;
	uint32_t partition;
	int64_t offset;
	int64_t id;
};

static char *dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

static int conflict_copy_cb(const struct sl_apply_conflict *c, void *cb_arg)
{
	struct held_conflict *h = cb_arg;

	h->found = true;
	h->id = c->id;
	h->key = dup_or_null(c->key);
	h->value = dup_or_null(c->incoming_value);
	h->origin = dup_or_null(c->origin);
	h->origin_system = dup_or_null(c->origin_system);
	h->status = dup_or_null(c->status);
	h->topic = dup_or_null(c->topic);
	h->op_known = c->op != NULL;
	h->is_delete = c->op != NULL && strcmp(c->op, "delete") == 0;
	h->stored_version = c->stored_version;
	h->incoming_version = c->incoming_version;
	h->partition = c->partition;
	h->offset = c->offset;
	return h->key == NULL || h->status == NULL || h->topic == NULL ? -ENOMEM : 0;
}

static void held_free(struct held_conflict *h)
{
	free(h->key);
	free(h->value);
	free(h->origin);
	free(h->origin_system);
	free(h->status);
	free(h->topic);
}

/* The stored JSON object with fields (KEY=VALUE) set, into out (NUL-terminated): a VALUE that is JSON as written,
 * else as a string. */
static int fields_set(const struct sl_apply_row *row, const char *const *fields, uint32_t count,
                      struct sl_json_buf *out, char *why, size_t why_bytes)
{
	const char *base_text = NULL, *key;
	size_t base_len = 0;
	json_t *base = NULL, *v;
	bool first = true;
	int rc;

	if (row->state.exists && !row->state.deleted && row->value != NULL) {
		base_text = (const char *)row->value;
		base_len = row->value_len;
		base = json_loadb(base_text, base_len, 0, NULL);
		if (!json_is_object(base)) {
			json_decref(base);
			snprintf(why, why_bytes,
			         "the stored value is not a JSON object: KEY=VALUE cannot set a field of it");
			return -EINVAL;
		}
	}
	if (base == NULL)
		base = json_object();
	for (uint32_t i = 0; i < count; i++) {
		const char *eq = strchr(fields[i], '=');

		if (eq == NULL || eq == fields[i] || (size_t)(eq - fields[i]) > SL_CONTRACT_NAME_BYTES_MAX) {
			snprintf(why, why_bytes, "'%s' is not KEY=VALUE with a field name of 1 to %d characters",
			         fields[i], SL_CONTRACT_NAME_BYTES_MAX);
			json_decref(base);
			return -EINVAL;
		}
	}
	rc = sl_json_buf_add(out, "{", 1);
	json_object_foreach(base, key, v)
	{
		bool set = false;

		for (uint32_t i = 0; i < count; i++)
			set = set || (strncmp(fields[i], key, strlen(key)) == 0 && fields[i][strlen(key)] == '=');
		if (rc == 0 && !set) {
			rc = member_emit(out, key, base_text, base_len, v, first);
			first = false;
		}
	}
	for (uint32_t i = 0; rc == 0 && i < count; i++) {
		const char *eq = strchr(fields[i], '='), *value = eq + 1;
		json_t *parsed = json_loads(value, JSON_DECODE_ANY, NULL);

		rc = (!first && sl_json_buf_add(out, ",", 1) != 0) ||
		                     sl_json_buf_add_string(out, (const uint8_t *)fields[i],
		                                            (size_t)(eq - fields[i])) != 0 ||
		                     sl_json_buf_add(out, ":", 1) != 0
		             ? -ENOMEM
		     : parsed != NULL ? sl_json_buf_add(out, value, strlen(value))
		                      : sl_json_buf_add_string(out, (const uint8_t *)value, strlen(value));
		json_decref(parsed);
		first = false;
		if (rc == -EILSEQ)
			snprintf(why, why_bytes, "'%s': the value is not UTF-8 text", fields[i]);
	}
	if (rc == 0 && (rc = sl_json_buf_add(out, "}", 2)) == 0)
		out->len--;
	json_decref(base);
	return rc == -EILSEQ ? -EINVAL : rc;
}

static int resolve_in_txn(const struct sl_apply_store *store, struct held_conflict *h, enum sl_apply_keep keep,
                          const char *const *fields, uint32_t field_count, int64_t now_ms, char *why, size_t why_bytes)
{
	const struct sl_apply_store_ops *ops = store->ops;
	struct sl_apply_record r = {.topic = h->topic, .partition = h->partition};
	struct sl_apply_row row;
	char resolution[600];
	struct sl_json_buf value = {0};
	int rc;

	r.rec.offset = h->offset;
	r.rec.timestamp_ms = now_ms;
	r.rec.key = (const uint8_t *)h->key;
	r.rec.key_len = (int32_t)strlen(h->key);
	r.rec.version = h->incoming_version;
	r.rec.op = h->is_delete ? SL_OP_DELETE : SL_OP_UPSERT;
	r.rec.value = (const uint8_t *)h->value;
	r.rec.value_len = h->value != NULL ? (int32_t)strlen(h->value) : -1;
	if (h->origin == NULL || sl_origin_parse(h->origin, strlen(h->origin), &r.rec.origin) != 0)
		r.rec.origin = SL_ORIGIN_LIVE;
	r.rec.origin_system = (const uint8_t *)h->origin_system;
	r.rec.origin_system_len = h->origin_system != NULL ? (int32_t)strlen(h->origin_system) : 0;
	if ((rc = ops->row_get(store->ctx, &r, &row)) != 0)
		return rc;
	if ((row.state.exists ? row.state.version : row.state.floor_version) != h->stored_version) {
		snprintf(resolution, sizeof(resolution), "the row moved on to version %lld before a decision",
		         (long long)(row.state.exists ? row.state.version : row.state.floor_version));
		rc = ops->conflict_mark(store->ctx, h->id, SL_APPLY_CONFLICT_SUPERSEDED, resolution, now_ms);
		snprintf(why, why_bytes,
		         "conflict %lld: the row of key %s is at version %lld now, not %lld: a newer write decided; "
		         "marked "
		         "superseded",
		         (long long)h->id, h->key,
		         (long long)(row.state.exists ? row.state.version : row.state.floor_version),
		         (long long)h->stored_version);
		return rc != 0 ? rc : 1; /* 1: commit the mark, then report -ESTALE */
	}
	if (keep == SL_APPLY_KEEP_SOURCE && (!h->op_known || (!h->is_delete && h->value == NULL))) {
		snprintf(
		        why, why_bytes,
		        "conflict %lld was kept without the record's value (by an older synclog): --keep source cannot "
		        "write it; use --keep target or KEY=VALUE",
		        (long long)h->id);
		return -EINVAL;
	}
	switch (keep) {
	case SL_APPLY_KEEP_SOURCE: {
		int64_t version = h->incoming_version > h->stored_version ? h->incoming_version : h->stored_version;

		rc = r.rec.op == SL_OP_DELETE ? ops->soft_delete(store->ctx, &r, version, now_ms)
		                              : ops->upsert(store->ctx, &r, version, now_ms);
		snprintf(resolution, sizeof(resolution), "kept the source: %s's %s at version %lld",
		         h->origin_system != NULL ? h->origin_system : "the record",
		         r.rec.op == SL_OP_DELETE ? "delete" : "value", (long long)version);
		break;
	}
	case SL_APPLY_KEEP_TARGET:
		snprintf(resolution, sizeof(resolution), "kept the target's row at version %lld",
		         (long long)h->stored_version);
		break;
	case SL_APPLY_KEEP_FIELDS: {
		size_t at = 0;

		if ((rc = fields_set(&row, fields, field_count, &value, why, why_bytes)) != 0) {
			sl_json_buf_free(&value);
			return rc;
		}
		r.rec.op = SL_OP_UPSERT;
		r.rec.value = (const uint8_t *)value.data;
		r.rec.value_len = (int32_t)value.len;
		r.rec.origin = SL_ORIGIN_REPAIR;
		r.rec.origin_system = NULL;
		r.rec.origin_system_len = 0;
		rc = ops->upsert(store->ctx, &r, h->stored_version, now_ms);
		at += (size_t)snprintf(resolution, sizeof(resolution), "set");
		for (uint32_t i = 0; i < field_count && at < sizeof(resolution); i++)
			at += (size_t)snprintf(resolution + at, sizeof(resolution) - at, " %s", fields[i]);
		break;
	}
	}
	if (rc == 0)
		rc = ops->conflict_mark(store->ctx, h->id, SL_APPLY_CONFLICT_RESOLVED, resolution, now_ms);
	sl_json_buf_free(&value);
	return rc;
}

int sl_apply_conflict_resolve(const struct sl_apply_store *store, int64_t id, enum sl_apply_keep keep,
                              const char *const *fields, uint32_t field_count, int64_t now_ms, char *why,
                              size_t why_bytes)
{
	const struct sl_apply_store_ops *ops = store->ops;
	struct held_conflict h = {0};
	int rc;

	why[0] = '\0';
	if (ops->conflict_get == NULL || ops->conflict_mark == NULL || ops->row_get == NULL) {
		snprintf(why, why_bytes, "this target keeps no operator queue of conflicts");
		return -ENOTSUP;
	}
	if (keep == SL_APPLY_KEEP_FIELDS && field_count == 0) {
		snprintf(why, why_bytes, "KEY=VALUE: at least one field to set");
		return -EINVAL;
	}
	rc = ops->begin(store->ctx, now_ms);
	if (rc == 0)
		rc = ops->conflict_get(store->ctx, id, conflict_copy_cb, &h);
	if (rc == 0 && !h.found)
		rc = -ENOENT;
	if (rc == -ENOENT)
		snprintf(why, why_bytes, "no conflict %lld in this target: see `synclog conflicts list`",
		         (long long)id);
	if (rc == 0 && strcmp(h.status, "open") != 0 && strcmp(h.status, "rejected") != 0) {
		snprintf(why, why_bytes, "conflict %lld is %s: only open or rejected conflicts wait for a decision",
		         (long long)id, h.status);
		rc = -EALREADY;
	}
	if (rc == 0)
		rc = resolve_in_txn(store, &h, keep, fields, field_count, now_ms, why, why_bytes);
	if (rc >= 0 && ops->commit(store->ctx) != 0)
		rc = -EIO;
	if (rc < 0) {
		if (why[0] == '\0')
			snprintf(why, why_bytes, "%s", ops->error(store->ctx));
		ops->rollback(store->ctx);
	}
	held_free(&h);
	return rc == 1 ? -ESTALE : rc;
}
