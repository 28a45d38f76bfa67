/* A topic's sync contract: the seed's contract block (source of truth, delivery, conflicts, recovery, schema,
 * deletes, consumer impact) as a file an operator writes in YAML or JSON, checked here once for every tool, stored
 * with the topic by the broker (broker/contracts.c) and read back by the tools, whose defaults it sets for that
 * topic (apply: conflicts, ownership, schema versions, tombstone retention, deletes, fetch URL; reconcile: the
 * threshold; contract check: every clause).
 *
 * THE FILE (every key optional except source_of_truth.system; an unknown key is refused with its line):
 *
 *   source_of_truth:
 *     system: billing                    the service whose writes win (origin_system of its records)
 *   fields_owned: [status, plan]         fields the source of truth owns; or per system:
 *                                          {billing: [status, plan], support: [note]}
 *   fields_derived: [stale_badge]        fields the consumers compute: no event sets them
 *   delivery:
 *     model: shared-log                  shared-log | event-push | target-pull (what the spec chose)
 *     ordering: per-key                  per-key | global | none
 *     duplicates: idempotency-key        idempotency-key | version
 *     without_idempotency_key: refuse    refuse | count: what the broker does with a live record without one
 *                                          when duplicates is idempotency-key (default count)
 *     stale: log-and-drop                log-and-drop (the applier's rule; nothing else is offered)
 *     payload: fat                       fat | thin (thin events are fetched from fetch_url)
 *     fetch_url: http://billing/customers/{key}
 *   conflicts: version                   version | source-of-truth | lww | reject, or
 *                                          {policy: lww, max_clock_skew: 2s}
 *   recovery:
 *     backfill_source: sqlite:/srv/billing.db:customers     a source spec of synclog backfill
 *     replay_owner: crm-team             free text: who replays (contract check names it on a FAIL)
 *     retry_limit: 8                     tries of one thin event's fetch before it is dead-lettered (apply
 *                                          --fetch-retries)
 *     reconcile_every: 1h                a duration: the last reconcile run must be younger
 *     mismatch_threshold: 0.0001         a ratio: reconcile alerts above it
 *     alert:
 *       stall_after: 5m                  a duration: a group stalled longer fails the contract; the broker's
 *                                          stall-after of the topic's partitions in group health
 *       notify: "#sync-oncall"           free text: who to tell (contract check names it on a FAIL)
 *   schema:
 *     versions: [1, 2]                   schema versions consumers accept (a record without one is version 1)
 *     on_unknown: hold                   hold | dead-letter
 *   deletes:
 *     mode: soft                         soft | archive | purge (apply --on-delete hide | archive | erase-value)
 *     retention: 7d                      how long a deleted row is kept (apply --tombstone-retention)
 *   consumer_impact:                     free text, any keys; the review drill asks for what consumers see
 *                                          during_delay, during_drift, on_duplicate, on_delete,
 *                                          on_schema_change, and what pauses the rollout (rollout_pause)
 *
 * Names (systems, fields) are 1 to 128 characters of letters, digits, '_', '-', '.'. A field is a member of the
 * value's top-level JSON object.
 *
 * THE STORED FORM: the normalized JSON object (sl_contract_json): members sorted, fields_owned always a map from
 * system to fields, conflicts always an object with its policy. It is what the broker keeps beside the file's own
 * text, and what sl_contract_parse reads back (JSON is YAML's subset, and both go through the same checks).
 *
 * Threads: a contract is read-only once parsed; any thread may read it. */
#ifndef SL_CONSUMER_SYNC_CONTRACT_H
#define SL_CONSUMER_SYNC_CONTRACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/limits.h" /* SL_CONTRACT_TEXT_BYTES_MAX: a file's text, the broker's limit too */

#define SL_CONTRACT_NAME_BYTES_MAX      128
/* Systems that own fields, fields in all, schema versions listed: bounds on what one contract describes. */
#define SL_CONTRACT_SYSTEMS_MAX         32
#define SL_CONTRACT_FIELDS_MAX          512
#define SL_CONTRACT_SCHEMA_VERSIONS_MAX 64
#define SL_CONTRACT_SPEC_BYTES_MAX      1100
/* replay_owner, alert.notify: a team or a channel, not an essay. */
#define SL_CONTRACT_FREE_TEXT_BYTES_MAX 256
/* The most tries of one record the contract may ask for: apply's --fetch-retries takes 1 to 1000 too. */
#define SL_CONTRACT_RETRY_LIMIT_MAX     1000

enum sl_contract_conflicts {
	SL_CONFLICTS_VERSION = 0, /* apply.h's rules: versions decide, an equal version with another value is kept */
	SL_CONFLICTS_SOURCE_OF_TRUTH, /* only the source of truth's events change its fields */
	SL_CONFLICTS_LWW,             /* the later change time wins, beyond max_clock_skew_ms */
	SL_CONFLICTS_REJECT,          /* a conflicting event waits for an operator (synclog conflicts) */
};
enum sl_contract_duplicates { SL_DUPLICATES_VERSION = 0, SL_DUPLICATES_IDEMPOTENCY_KEY };
enum sl_contract_missing_ik { SL_MISSING_IK_COUNT = 0, SL_MISSING_IK_REFUSE };
enum sl_contract_on_unknown { SL_ON_UNKNOWN_HOLD = 0, SL_ON_UNKNOWN_DEAD_LETTER };
enum sl_contract_deletes { SL_DELETES_SOFT = 0, SL_DELETES_ARCHIVE, SL_DELETES_PURGE };

struct sl_contract_owner {
	char system[SL_CONTRACT_NAME_BYTES_MAX + 1];
	uint32_t field_first; /* index into fields */
	uint32_t field_count;
};

struct sl_contract {
	char source_of_truth[SL_CONTRACT_NAME_BYTES_MAX + 1];
	struct sl_contract_owner owners[SL_CONTRACT_SYSTEMS_MAX];
	uint32_t owner_count;
	char **fields; /* the owners' fields, then the derived ones */
	uint32_t field_count;
	uint32_t derived_first;
	uint32_t derived_count;
	enum sl_contract_duplicates duplicates;
	enum sl_contract_missing_ik without_idempotency_key;
	bool thin;
	char fetch_url[SL_CONTRACT_SPEC_BYTES_MAX]; /* "" when not given */
	enum sl_contract_conflicts conflicts;
	int64_t max_clock_skew_ms; /* lww; 0 when not given */
	char backfill_source[SL_CONTRACT_SPEC_BYTES_MAX];
	int64_t reconcile_every_ms;                             /* 0: not given */
	double mismatch_threshold;                              /* < 0: not given */
	int64_t stall_after_ms;                                 /* 0: not given */
	uint32_t retry_limit;                                   /* 0: not given */
	char replay_owner[SL_CONTRACT_FREE_TEXT_BYTES_MAX + 1]; /* "" when not given */
	char notify[SL_CONTRACT_FREE_TEXT_BYTES_MAX + 1];       /* "" when not given */
	int32_t schema_versions[SL_CONTRACT_SCHEMA_VERSIONS_MAX];
	uint32_t schema_version_count; /* 0: any version is accepted */
	enum sl_contract_on_unknown on_unknown;
	bool deletes_given;
	enum sl_contract_deletes deletes;
	int64_t delete_retention_ms; /* 0: not given */
	uint32_t blank_lines;        /* bit i: review_lines[i] of contract.c is not given */
	char *json;                  /* the stored form, NUL-terminated */
};

/* Parse and check a contract file: YAML (libyaml), or JSON when its first non-blank character is '{'. Returns 0
 * with *out (free it with sl_contract_free), -EINVAL with err naming the line and the key ("line 7:
 * delivery.duplicates: 'idem' is not one of idempotency-key, version"), -E2BIG (over SL_CONTRACT_TEXT_BYTES_MAX),
 * -ENOMEM. */
int sl_contract_parse(const char *text, size_t len, struct sl_contract **out, char *err, size_t err_bytes);
void sl_contract_free(struct sl_contract *c);

/* Who owns a field of the value's top-level object: the system's name; NULL for a derived field (no event sets
 * it). A field no list names belongs to the source of truth. */
const char *sl_contract_field_owner(const struct sl_contract *c, const char *field, size_t field_len);
/* Whether the contract says who owns which fields (fields_owned or fields_derived given): the applier then merges
 * an event's fields into the stored value instead of replacing it. */
bool sl_contract_has_ownership(const struct sl_contract *c);
/* Whether schema version v is accepted (0, a record without one, is version 1). */
bool sl_contract_schema_accepted(const struct sl_contract *c, int32_t v);

/* The review drill of a sync spec: the lines of the contract block a reviewer asks for that this contract leaves
 * blank (a source of truth is always given). Writes up to names_max key paths ("recovery.replay_owner",
 * "consumer_impact.during_delay", ...) into names, static strings; returns how many are blank, which may be more
 * than names_max. */
size_t sl_contract_blank_lines(const struct sl_contract *c, const char **names, size_t names_max);

/* Names as the file spells them. */
const char *sl_contract_conflicts_name(enum sl_contract_conflicts p);
int sl_contract_conflicts_parse(const char *s, enum sl_contract_conflicts *out);

#endif
