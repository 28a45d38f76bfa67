/* The applier: replays change records into a target store so that an old version never overwrites a new one, a
 * duplicate is never applied twice, deletes are soft and purged after a window, and a poison record is dead-
 * lettered instead of stalling its partition. The engine talks to a store and to a record source through small
 * function tables, so a service can embed it with its own store; SQLite and the broker are the built-in pair.
 *
 * The rules, for every record of a batch, in this order:
 *   1. Offset below the partition's position in the store: delivered again, counted duplicate, not applied.
 *   2. No key: a poison record (dead-lettered at once: retrying cannot give it a key).
 *   3. An idempotency key seen before: duplicate.
 *   4. A version, and the key stored: lower than stored is stale (one stale_events row, not applied), higher
 *      applies. An old version delivered again without an idempotency key cannot be told from a late one: it
 *      counts as stale (and is never applied either way). Equal to the stored version:
 *        a. origin=repair: the record replaces the row at that version (reconciliation heals a value that drifted
 *           at an equal version this way; a repair never replaces a newer row, that is rule 4's stale);
 *        b. the same value (or a delete of a deleted row): a duplicate;
 *        c. a different value: a conflict, not applied, kept as one row of the store's conflicts (both versions,
 *           both value digests, origin, topic, partition, offset) for reconciliation and the operator. A store
 *           without value_same counts it as a duplicate.
 *   5. A version, and the key not stored but purged (its tombstone was removed by rule 6's purge): the version of
 *      that delete is kept as the key's floor, and a record at or below it is stale, so a late backfill of an old
 *      version cannot bring a purged key back. Above the floor it applies as for a new key; an origin=repair record
 *      at the floor's version applies too, as it would over a tombstone of that version (rule 4a).
 *   6. No version (SL_VERSION_NONE): ordered by log position. Records are applied in offset order and a key lives
 *      in one partition, so an origin=live record always applies; the row keeps the stored version (the floor, or
 *      0, for a new row), so a versioned record after it still compares against the last version the source gave.
 *      It is never stale, and a duplicate only by idempotency key. Sources that version records use versions >= 1.
 *      An unversioned origin=backfill or origin=repair record cannot say whether it is older than what the store
 *      holds, so it applies only when the key is absent (not stored and never purged); otherwise it is stale
 *      (logged with incoming version 0). `synclog backfill` never sends one.
 *   7. op delete: the row is marked deleted with the version and the time (a tombstone row when the key was not
 *      stored), and keeps its value until it is purged. A later upsert with a lower version is stale and does not
 *      bring it back; a higher version does. Purge removes tombstones older than the retention window and keeps
 *      the version of each as the key's floor (rule 5), in a compact table of key and version.
 *   8. A store rejection (-EBADMSG: a value or key the store does not accept) is retried reject_retries_max
 *      times with backoff, then the record goes to the dead-letter sink with the error text, and the records after
 *      it are applied. Retries are made in rounds: a rejected record is set aside (with every later record of the
 *      same key, so a key's records still apply in offset order), the rest of the transaction goes on, and the
 *      records set aside are tried again together after one backoff per round; so thousands of poison records
 *      cost reject_retries_max backoffs, not that many per record. A record the database refuses only at commit
 *      (see Batches) enters this path once a search by halves has found it.
 *   9. What a topic's sync contract adds (consumer/sync/apply_policy.c; options contract, conflicts, ...), checked
 *      before rules 3 to 7:
 *        a. Schema: a record with a value whose schema_version (absent: 1) the contract does not accept is upcast
 *           (options upcast_cb, version by version) until it is; otherwise the partition is held at it (nothing
 *           after it in that partition is applied; the others go on) or it is dead-lettered, per the contract.
 *        b. Thin events (op changed): the entity is fetched (options fetch_cb); found, the record applies as an
 *           upsert of what was fetched; gone (404), as a delete. While the source cannot answer, the partition is
 *           held at the record and tried again with backoff; after fetch_retries_max tries it is dead-lettered.
 *        c. The conflict policy (options conflicts) replaces rules 4 and 4c for a key that is stored:
 *             version          rules 4 to 7 as above;
 *             source-of-truth  a record whose system (its origin_system; without one, the source of truth for a
 *                              backfill or repair record, nobody for a live one) is not the source of truth is
 *                              rejected (a conflicts row, status rejected), unless field ownership lets it write
 *                              its own fields (d); the source of truth's record at the stored version replaces
 *                              another system's row;
 *             lww              a record of another system than the row's last writer is ordered by its change
 *                              time (changed_at, else its timestamp): later by more than max_clock_skew_ms
 *                              applies, earlier by more is stale, within it the source of truth's write wins, else
 *                              the row stays (a conflicts row, status logged, says which); the same system's
 *                              records are ordered by version;
 *             reject           rule 4c's conflict is kept with the incoming value, status open: an operator
 *                              decides (sl_apply_conflict_resolve, `synclog conflicts resolve`).
 *        d. Field ownership (the contract's fields_owned or fields_derived), for an upsert of a JSON object that
 *           applies: the stored object's members owned by the record's system are replaced by the record's (those
 *           it leaves out are removed); all others keep the target's value, and a record's member it does not own
 *           that differs from the target's is noted in the conflicts table (policy fields, status logged).
 *      The record's system and change time are stored with the row (origin_system, changed_at_ms).
 * Every record lands in exactly one counter: applied (upserts), deleted (deletes), stale, duplicate, conflicts or
 * dead_lettered (a record held by rule 9 lands in none until it is applied).
 *
 * Transactions: the records of one fetched batch are applied in one store transaction together with the next
 * offset of every partition they came from (and per-partition running counts), so a crash at any point leaves
 * the store at a batch boundary that its own offsets describe; a restart resumes there, whatever the broker
 * says. Offsets are written compare-and-set: a second applier on the same store and group makes the write fail,
 * and this one rolls back, resumes from what the store holds and, if it keeps losing, stops. Dead letters are
 * handed to the sink as they come and made durable (dead_letter_flush_cb) once, just before the transaction that
 * commits their offsets: one flush per transaction, not one per record. A failure after the flush and before the
 * commit sends them again: dead letters are at-least-once, and the envelope's topic, partition and offset identify
 * a repeat (a commit the database refuses, below, sends none again: the search that follows counts those records
 * dead-lettered without a second letter). The broker (the source's commit) hears of the offsets afterwards, at
 * most every commit_interval_ms: it is for operators' lag, not for correctness.
 *
 * Batches (a store with prefetch, such as PostgreSQL, where a round trip per record would cost more than the
 * record): the engine first copies the records of a fetched batch (up to transaction_records_max of them, and
 * SL_APPLY_GATHER_BYTES_MAX of keys, values and idempotency keys) into memory of its own, begins a transaction
 * and hands them all to prefetch, then applies them by the rules above, in order, exactly as it would one at a
 * time (a record the store refuses when called is set aside and retried in rounds, rule 8): the store answers
 * from what it loaded and sends the writes at commit in one go. Every rule stays here, so stores cannot drift
 * apart. When the store finds at commit that the database refused one of the kept writes, the transaction is
 * rolled back and the same records are applied again in halves, a refused half halved again, down to one record
 * applied without prefetch, where the database's refusal names the record: it is set aside, retried in rounds
 * and dead-lettered by rule 8 while the rest are applied; then batches resume (apply.c says how).
 *
 * Stopping (options.stop, a signal handler's flag): checked between records and between retry rounds; the open
 * transaction is committed with what was handled (records set aside and not yet resolved keep their offsets:
 * they, and what follows them in their partition, are read again next time) and sl_apply_poll returns -EINTR.
 * A search by halves that was under way ends there; the next run meets the refused record again.
 *
 * Offset resets: the broker raises a group's reset generation with every operator commit. The store keeps the
 * generation it last adopted; a source that reports a newer one (reset_poll) makes the engine write the broker's
 * offsets as the target's positions, with the new generation, in one transaction, and read on from there. A
 * target that holds no positions yet only records the generation: it starts from the log start.
 *
 * Threads: an engine, its store and its source belong to one thread. */
#ifndef SL_CONSUMER_APPLY_H
#define SL_CONSUMER_APPLY_H

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "consumer/sync/contract.h"
#include "proto/batch.h"

/* The error a store returns for a record it refuses (bad value, bad key): the engine retries, then dead-letters.
 * Any other negative errno is a failure of the store itself: the engine rolls back and retries the batch. */
#define SL_APPLY_REJECTED (-EBADMSG)

struct sl_apply_counters {
	uint64_t applied;
	uint64_t stale;
	uint64_t duplicate;
	uint64_t deleted;
	uint64_t dead_lettered;
	uint64_t conflicts; /* rule 4c; a store keeps them in its conflicts table, not in its running counts */
};

/* One record as the engine sees it. topic must stay valid while the source lives; the record's pointers until
 * the next call of the source's next or fetch. */
struct sl_apply_record {
	const char *topic;
	uint32_t partition;
	struct sl_record rec; /* rec.offset is the record's offset in its partition */
};

/* Where a (group,) topic and partition stand: the offset of the next record to apply. */
struct sl_apply_position {
	const char *topic;
	uint32_t partition;
	int64_t next_offset;
};

/* What the store holds for a key. */
struct sl_apply_key_state {
	bool exists;
	bool deleted;
	int64_t version;
	/* When the key is not stored: whether it was purged, and the version of its purged delete (rule 5). */
	bool purged;
	int64_t floor_version;
};

/* A deleted row of the target, for the purge that follows the log (store op tombstones_due). */
struct sl_apply_tombstone {
	char *key; /* allocated by the store; the engine frees it */
	char topic[201];
	uint32_t partition;
	int64_t offset; /* of the delete */
};

struct sl_apply_purge_counts {
	uint64_t tombstones;
	uint64_t stale_events;
	uint64_t idempotency_keys;
};

/* A stored row as the contract's rules need it (store op row_get). Pointers are valid until the next call on the
 * store. */
struct sl_apply_row {
	struct sl_apply_key_state state;
	const uint8_t *value; /* NULL: a null value, or no row */
	size_t value_len;
	const uint8_t *origin_system; /* NULL: unknown */
	size_t origin_system_len;
	int64_t changed_at_ms; /* 0: unknown */
};

/* The status of a conflicts row: logged (a decision kept for the record: the row stayed or was written),
 * rejected (a record the policy refused), open (waiting for an operator: the reject policy), resolved (an operator
 * decided), superseded (the row moved on before anyone decided). */
enum sl_apply_conflict_status {
	SL_APPLY_CONFLICT_LOGGED = 0,
	SL_APPLY_CONFLICT_REJECTED,
	SL_APPLY_CONFLICT_OPEN,
	SL_APPLY_CONFLICT_RESOLVED,
	SL_APPLY_CONFLICT_SUPERSEDED,
};
const char *sl_apply_conflict_status_name(enum sl_apply_conflict_status s);

/* Why a record went to the conflicts table (store op conflict_note). */
struct sl_apply_conflict_note {
	const char *policy; /* "version", "source-of-truth", "lww", "reject", "fields" */
	enum sl_apply_conflict_status status;
	const char *reason; /* one line */
};

/* One conflicts row, as conflicts_get and conflicts_list hand it out (pointers valid until the next call). */
struct sl_apply_conflict {
	int64_t id;
	const char *key;
	int64_t stored_version;
	int64_t incoming_version;
	const char *incoming_value; /* NULL: a delete, or not kept */
	const char *op;             /* "upsert" or "delete"; NULL: not kept (a row of an older store) */
	const char *origin;
	const char *origin_system; /* NULL: none */
	const char *policy;
	const char *status;
	const char *reason;
	const char *topic;
	uint32_t partition;
	int64_t offset;
	int64_t seen_at_ms;
	int64_t resolved_at_ms; /* 0: not resolved */
	const char *resolution; /* NULL: not resolved */
};
typedef int (*sl_apply_conflict_cb)(const struct sl_apply_conflict *c, void *cb_arg);

/* Called by a store's offsets_read once per stored position; returns 0 or a negative errno that stops the read. */
typedef int (*sl_apply_offsets_read_cb)(const struct sl_apply_position *pos, const struct sl_apply_counters *totals,
                                        void *cb_arg);

/* The store. Every call returns 0 or a negative errno (SL_APPLY_REJECTED for a refused record) and leaves a
 * message for error(). Calls between begin and commit/rollback form one transaction; the engine opens at most one
 * at a time. A rejecting call changes nothing. A store checks a record's fields in the first call that sees them
 * (the key in key_get, the idempotency key in idempotency_seen, the value in upsert), so that a call after the
 * record's first write never rejects: the engine treats such a failure as a failure of the store. */
struct sl_apply_store_ops {
	int (*begin)(void *store, int64_t now_ms);
	int (*commit)(void *store);
	/* Must undo everything since begin; must be safe to call when no transaction is open. */
	void (*rollback)(void *store);
	int (*key_get)(void *store, const struct sl_apply_record *r, struct sl_apply_key_state *out);
	/* Write the record's value as the key's state at version, not deleted. */
	int (*upsert)(void *store, const struct sl_apply_record *r, int64_t version, int64_t now_ms);
	/* Mark the key deleted at version (creating a tombstone row when it is not stored); keep its value. */
	int (*soft_delete)(void *store, const struct sl_apply_record *r, int64_t version, int64_t now_ms);
	/* Optional fast path (NULL: the engine uses key_get, then upsert or soft_delete): write r, which carries a
	 * version, as upsert or soft_delete would, but only when the key is stored with a lower version, or is not
	 * stored and has no floor at or above r's version (rule 5); *written_out says whether it wrote. Checks the
	 * key and the value like key_get and upsert do. One lookup instead of two for the common case of a newer
	 * version. */
	int (*write_if_newer)(void *store, const struct sl_apply_record *r, int64_t now_ms, bool *written_out);
	/* Log a stale record (one row per record). */
	int (*stale_record)(void *store, const struct sl_apply_record *r, int64_t stored_version, int64_t now_ms);
	/* Note a duplicate (may be NULL: the engine counts duplicates anyway). */
	int (*duplicate_record)(void *store, const struct sl_apply_record *r, int64_t now_ms);
	/* Rule 4b/4c, for a key stored at r's version (both may be NULL: equal versions are then duplicates):
	 * whether r carries what the store holds (an upsert: a live row with an equal value, JSON compared as JSON;
	 * a delete: a deleted row), and keeping a conflict (one row per record). */
	int (*value_same)(void *store, const struct sl_apply_record *r, bool *same_out);
	int (*conflict_record)(void *store, const struct sl_apply_record *r, int64_t stored_version, int64_t now_ms);
	/* Idempotency keys: whether r's key was seen, and remember it. */
	int (*idempotency_seen)(void *store, const struct sl_apply_record *r, bool *seen_out);
	int (*idempotency_remember)(void *store, const struct sl_apply_record *r, int64_t now_ms);
	/* Every stored position of group, with the running counts stored beside it. */
	int (*offsets_read)(void *store, const char *group, sl_apply_offsets_read_cb cb, void *cb_arg);
	/* Set the position of (group, topic, partition) to pos->next_offset and add delta to its counts, only if the
	 * stored position is expected_offset (-1: no row). Returns -ESTALE when it is not. */
	int (*offset_write)(void *store, const char *group, const struct sl_apply_position *pos,
	                    int64_t expected_offset, const struct sl_apply_counters *delta, int64_t now_ms);
	/* Remove tombstones deleted at or before now_ms - retention_ms (keeping each one's version as its key's
	 * floor, rule 5), stale_events and conflicts rows and idempotency keys older than that, and idempotency keys
	 * beyond the store's bound. Inside a transaction. */
	int (*purge)(void *store, int64_t now_ms, int64_t retention_ms, struct sl_apply_purge_counts *out);
	/* Optional, both or neither: the purge that follows the log. A store that has them leaves its deleted rows to
	 * them (purge above does not remove those): up to max rows deleted at or before before_ms, oldest first
	 * (outside a transaction), and the removal of one (inside one) if it still is that delete (*purged_out). The
	 * engine removes a row once the source says the log no longer holds its delete, so that target and log keep
	 * a delete equally long: while the log holds it, a late stale record is still refused by a replay of the
	 * log, and must be by the target too. */
	int (*tombstones_due)(void *store, int64_t before_ms, struct sl_apply_tombstone *out, uint32_t max,
	                      uint32_t *count_out);
	int (*tombstone_purge)(void *store, const struct sl_apply_tombstone *t, bool *purged_out);
	const char *(*error)(void *store);
	/* ---- what a sync contract's rules need (rule 9; NULL in a store that offers none: sl_apply_new refuses a
	 * contract policy or field ownership then). Every write above also keeps the record's origin_system and change
	 * time (changed_at_ms, else timestamp_ms) with the row. ---- */
	/* The stored row of r's key (its value, its last writer and change time, and key_get's state). Checks the key
	 * as key_get does. */
	int (*row_get)(void *store, const struct sl_apply_record *r, struct sl_apply_row *out);
	/* Keep r in the conflicts table with note (one row per call), with its value in full, origin_system and
	 * stored_version. */
	int (*conflict_note)(void *store, const struct sl_apply_record *r, int64_t stored_version,
	                     const struct sl_apply_conflict_note *note, int64_t now_ms);
	/* The operator's queue: conflicts rows with status status (NULL: every row) in id order after after_id, at
	 * most limit; and one row by id (-ENOENT when there is none). Outside or inside a transaction. */
	int (*conflicts_list)(void *store, const char *status, int64_t after_id, uint32_t limit,
	                      sl_apply_conflict_cb cb, void *cb_arg);
	int (*conflict_get)(void *store, int64_t id, sl_apply_conflict_cb cb, void *cb_arg);
	/* Mark conflict id with status and resolution (a line saying what was decided), inside a transaction. */
	int (*conflict_mark)(void *store, int64_t id, enum sl_apply_conflict_status status, const char *resolution,
	                     int64_t now_ms);
	/* Optional: keep a partition's state as the engine reports it (sl_apply_state_cb) where an operator looks
	 * (the SQLite store's synclog_partition_state), inside a transaction. */
	int (*partition_state_set)(void *store, const char *group, const char *topic, uint32_t partition,
	                           const char *state, const char *reason, int64_t since_ms);
	/* Optional (NULL: the store knows no resets): the reset generation the store adopted for group (0: none), and
	 * setting it inside a transaction. */
	int (*reset_generation_get)(void *store, const char *group, int64_t *generation_out);
	int (*reset_generation_set)(void *store, const char *group, int64_t generation, int64_t now_ms);
	/* Optional: whether the last rejection depends on the target's state (a constraint: it may succeed later)
	 * rather than on the record alone (a value the target can never take). NULL: permanent. */
	bool (*rejection_transient)(void *store);
	/* Optional: overwrite the position of (group, topic, partition) with pos->next_offset (an offset reset: it
	 * may move back), creating the row when missing. Inside a transaction. */
	int (*offset_reset)(void *store, const char *group, const struct sl_apply_position *pos, int64_t now_ms);
	/* Optional batch path (NULL: every call works on the store at once). Called right after begin with every
	 * record the engine will apply in this transaction, in order (count >= 1; the array and the bytes it points
	 * to stay valid until the transaction ends). Until commit or rollback the store may answer key_get and
	 * idempotency_seen from what it loaded for these records in one query (with its own writes since applied),
	 * and keep upsert, soft_delete, stale_record, idempotency_remember and offset_write to send them at commit
	 * in one go (offset_write's -ESTALE then comes from commit). It still checks every record's fields in the
	 * call that first sees them, as above (prefetch itself refuses nothing: a record it cannot look up is
	 * refused by that call). What only the database can refuse (a constraint, a type) shows at commit, which
	 * then undoes the transaction and returns SL_APPLY_REJECTED: the engine applies the same records again in
	 * smaller transactions, the last of one record begun without prefetch, where every call works at once and a
	 * refusal names its record. */
	int (*prefetch)(void *store, const struct sl_apply_record *records, uint32_t count);
};

/* Bytes of keys, values and idempotency keys the engine copies for one prefetched transaction (plus one record):
 * a fetch brings at most 1 MiB per partition before decompression, so 64 MiB holds a fetch of many partitions
 * and bounds what one transaction keeps in memory. */
#define SL_APPLY_GATHER_BYTES_MAX (64u << 20)

struct sl_apply_store {
	const struct sl_apply_store_ops *ops;
	void *ctx;
};

/* The record source: a log reader that hands out batches. */
struct sl_apply_source_ops {
	/* Read from these positions on (a position per partition the store knows; other partitions from the start
	 * of the log). Called when the engine starts and after every rollback: records handed out before are
	 * forgotten. */
	int (*seek)(void *src, const struct sl_apply_position *positions, uint32_t count);
	/* Get the next batch, waiting a bounded time when there is none (0 with an empty batch is fine). -EINTR: a
	 * signal; nothing was lost. */
	int (*fetch)(void *src);
	/* The next record of the batch: 1 with *out set, 0 at the end of the batch, or a negative errno. */
	int (*next)(void *src, struct sl_apply_record *out);
	/* True once the source reached the end it was asked to stop at (never, when following). */
	bool (*done)(void *src);
	/* Tell the broker the group's positions (may be NULL). Failure is reported, never fatal. totals are the
	 * target's running counts (what it kept from earlier runs plus this one), reported with the commit. */
	int (*commit)(void *src, const struct sl_apply_position *positions, uint32_t count,
	              const struct sl_apply_counters *totals);
	/* Optional: whether the log still holds the delete at topic/partition/offset (*present_out). -ENOTSUP when
	 * the topic keeps its deletes only by retention (not compacted): the target's rows then go by time alone. */
	int (*tombstone_in_log)(void *src, const char *topic, uint32_t partition, int64_t offset, bool *present_out);
	const char *(*error)(void *src);
	/* Optional: 1 with the group's reset generation and the broker's offsets of the partitions this source reads
	 * (valid until the next call) when the generation changed since the last call that returned 1; 0 when not; or
	 * a negative errno. */
	int (*reset_poll)(void *src, int64_t *generation_out, const struct sl_apply_position **positions_out,
	                  uint32_t *count_out);
};

/* fetch returns this when the partitions it reads changed (a rebalance): the engine seeks again from its
 * positions before the next fetch. */
#define SL_APPLY_SOURCE_RESEEK (-ERESTART)

struct sl_apply_source {
	const struct sl_apply_source_ops *ops;
	void *ctx;
};

/* The dead-letter sink: take r with error (one line) and whether the error may pass (transient: the target's state,
 * such as a constraint) or not (permanent: the record itself); return 0 or a negative errno. It may only queue r
 * when dead_letter_flush_cb makes it durable. */
typedef int (*sl_apply_dead_letter_cb)(const struct sl_apply_record *r, const char *error, bool transient,
                                       void *cb_arg);

struct sl_apply_options {
	const char *group; /* the target's name for its positions: 1 to 200 characters */
	/* Tombstones, stale_events rows and idempotency keys are kept this long. */
	int64_t tombstone_retention_ms;
	/* How often a polling engine purges. */
	uint32_t purge_interval_ms;
	/* A rejected record is tried again this many times, waiting retry_backoff_ms, doubling up to
	 * retry_backoff_ms_max, before it is dead-lettered. */
	uint32_t reject_retries_max;
	/* A failed transaction (store error, dead-letter sink error) is retried from the store's positions this many
	 * times in a row before sl_apply_poll returns the error, with the same backoff. */
	uint32_t failure_retries_max;
	uint32_t retry_backoff_ms;
	uint32_t retry_backoff_ms_max;
	/* Records of one transaction: a batch larger than this is committed in parts. */
	uint32_t transaction_records_max;
	/* Least time between two commits to the source (the broker). */
	uint32_t commit_interval_ms;
	/* Required: where poison records go. */
	sl_apply_dead_letter_cb dead_letter_cb;
	void *dead_letter_cb_arg;
	/* Make every dead letter handed to the sink durable (NULL: dead_letter_cb already is). Called once before
	 * each commit of a transaction that dead-lettered records. */
	int (*dead_letter_flush_cb)(void *cb_arg);
	/* A flag a signal handler sets (NULL: never): see "Stopping" above. */
	const volatile sig_atomic_t *stop;
	/* Clock and sleep, replaceable by tests (NULL: CLOCK_REALTIME and nanosleep). */
	int64_t (*now_ms)(void *clock_arg);
	void (*sleep_ms)(uint32_t ms, void *clock_arg);
	void *clock_arg;
	/* ---- rule 9: a topic's sync contract ---- */
	/* The contract (consumer/sync/contract.h; NULL: none): its source of truth, field ownership and accepted
	 * schema versions. Must outlive the engine. */
	const struct sl_contract *contract;
	/* The conflict policy and lww's skew (the contract's, or apply --conflicts). Any policy but version needs the
	 * store's row_get and conflict_note; source-of-truth needs a source of truth (the contract's, or
	 * source_of_truth below). */
	enum sl_contract_conflicts conflicts;
	int64_t max_clock_skew_ms;
	const char *source_of_truth; /* overrides the contract's (apply --source-of-truth) */
	/* Rule 9a: what an unaccepted schema version meets, and how an old version is brought up: the callback turns
	 * r's value of schema version *version_inout into the next version it knows, setting *version_inout, *out and
	 * *out_len (valid until the next call); it returns 0, -ENOENT (no upcast from that version), or -EBADMSG with
	 * why (the value does not fit the mapping: the record is dead-lettered with it). */
	enum sl_contract_on_unknown on_unknown_schema;
	int (*upcast_cb)(const struct sl_apply_record *r, const uint8_t *value, size_t len, int32_t *version_inout,
	                 const uint8_t **out, size_t *out_len, char *why, size_t why_bytes, void *cb_arg);
	void *upcast_cb_arg;
	/* Rule 9b: fetch the entity a thin event names. Returns 0 with *out and *out_len (valid until the next call),
	 * -ENOENT (the entity is gone: a delete), -EAGAIN (the source cannot answer now: try again later) or -EBADMSG
	 * (it never will for this record), with why. NULL: thin events are dead-lettered. */
	int (*fetch_cb)(const struct sl_apply_record *r, const uint8_t **out, size_t *out_len, char *why,
	                size_t why_bytes, void *cb_arg);
	void *fetch_cb_arg;
	/* A thin event's fetch is tried this many times, waiting fetch_backoff_ms doubling to fetch_backoff_ms_max
	 * between tries, before it is dead-lettered. */
	uint32_t fetch_retries_max;
	uint32_t fetch_backoff_ms;
	uint32_t fetch_backoff_ms_max;
	/* A partition's state changed: "ok", "stalled" (a thin event's source does not answer; held, tried again) or
	 * "held" (an unknown schema version; held until the applier starts again with a contract or an upcast that
	 * takes it), with why and the offset it waits at. May be NULL. */
	void (*state_cb)(const char *topic, uint32_t partition, const char *state, const char *reason, int64_t offset,
	                 void *cb_arg);
	void *state_cb_arg;
};

/* Defaults, each with its reason:
 *   tombstone_retention_ms 7 days: longer than any outage a target is expected to come back from, so a stale
 *     upsert replayed after a delete still meets its tombstone.
 *   purge_interval_ms 60 s, and at most half the retention (at least 1 s): purging is one indexed DELETE; doing it
 *     every minute keeps each pass small.
 *   reject_retries_max 3 with backoff 10 ms doubling to 1 s: a rejection that depends on state (a constraint)
 *     gets a second chance, and a record that will never fit costs at most 70 ms before it is dead-lettered.
 *   failure_retries_max 5: a busy or briefly failing store gets 10+20+40+80+160 ms; after that the operator has
 *     to look, and nothing was committed past the failure.
 *   transaction_records_max 100,000: one fetch of every partition fits, and a transaction's WAL stays below
 *     ~50 MB.
 *   commit_interval_ms 1000: lag as operators see it is at most a second old.
 *   conflicts version, on_unknown_schema hold: the rules above, and nothing applied out of schema.
 *   fetch_retries_max 8 with backoff 100 ms doubling to 30 s: a source API that restarts (seconds) or fails over
 *     (a minute or two) is waited for, about 3 minutes in all; longer, and the operator should hear of it from the
 *     dead letter rather than from a partition that waits forever. */
void sl_apply_options_init(struct sl_apply_options *o);

struct sl_apply;

/* Create an engine on store and source (both stay owned by the caller and must outlive the engine). Returns 0,
 * -EINVAL (bad options; err says which), -ENOMEM. */
int sl_apply_new(struct sl_apply **out, const struct sl_apply_options *o, const struct sl_apply_store *store,
                 const struct sl_apply_source *source, char *err, size_t err_bytes);
/* Read the group's positions from the store and seek the source there. Returns 0 or a negative errno. */
int sl_apply_start(struct sl_apply *a);
/* One round: purge when it is due, fetch one batch, apply it (in one transaction, or more when it is larger than
 * transaction_records_max or holds a dead-lettered record), commit to the source when due. Returns the number of
 * records handled (>= 0), -EINTR (a signal during the fetch; call again), or a negative errno after a source
 * failure or failure_retries_max failed transactions in a row (sl_apply_error says what failed). A failed
 * transaction that will be retried returns 0. */
int sl_apply_poll(struct sl_apply *a);
/* The source's done: true once it reached its end and everything fetched is applied. */
bool sl_apply_done(const struct sl_apply *a);
/* Purge now, in its own transaction. */
int sl_apply_purge(struct sl_apply *a, struct sl_apply_purge_counts *out);
/* Commit the positions to the source now (at the end of a run). Returns 0 or the source's error. */
int sl_apply_flush(struct sl_apply *a);
/* Counts of this engine's run (not what the store kept from earlier runs). */
void sl_apply_counters_get(const struct sl_apply *a, struct sl_apply_counters *out);
/* The store's running counts for the group: what it held at start plus this run's. */
void sl_apply_totals_get(const struct sl_apply *a, struct sl_apply_counters *out);
/* Offset resets this engine adopted. */
uint64_t sl_apply_resets_adopted(const struct sl_apply *a);
/* Next offset to apply of topic/partition as committed in the store, or -1 when the store has none. */
int64_t sl_apply_position_get(const struct sl_apply *a, const char *topic, uint32_t partition);
const char *sl_apply_error(const struct sl_apply *a);
/* Transactions that failed in a row and will be retried (0 after a poll that succeeded): a caller that sees it
 * grow can tell the operator why (sl_apply_error) while the engine retries. */
uint32_t sl_apply_failures(const struct sl_apply *a);
void sl_apply_free(struct sl_apply *a);
/* Partitions held by rule 9a now (at an unknown schema version, until the engine starts again); partitions waiting
 * for a thin event's source (9b) are not counted: they go on by themselves. */
uint32_t sl_apply_held_count(const struct sl_apply *a);

/* An operator's decision on conflict id of the store (an open or rejected row; status open is the reject policy's
 * queue), in one transaction:
 *   SL_APPLY_KEEP_SOURCE  the record's value (or delete) is written, at its version
 *   SL_APPLY_KEEP_TARGET  the row stays as it is
 *   SL_APPLY_KEEP_FIELDS  the stored JSON object with fields (KEY=VALUE each; VALUE is JSON, else a string) set
 * and the conflict is marked resolved with what was decided. Refused with -ESTALE (and marked superseded) when the
 * row's version is no longer the one the conflict met: a newer write already decided; -EALREADY when it was
 * resolved; -ENOENT when there is no such conflict; -EINVAL for a bad field (why says which). */
enum sl_apply_keep { SL_APPLY_KEEP_SOURCE = 0, SL_APPLY_KEEP_TARGET, SL_APPLY_KEEP_FIELDS };
int sl_apply_conflict_resolve(const struct sl_apply_store *store, int64_t id, enum sl_apply_keep keep,
                              const char *const *fields, uint32_t field_count, int64_t now_ms, char *why,
                              size_t why_bytes);

/* Rows the purge that follows the log looks at per pass: each costs one question to the broker. */
#define SL_APPLY_TOMBSTONE_CHECKS_MAX 1000

/* Purge a store without an engine (synclog apply --purge): one transaction. */
int sl_apply_store_purge(const struct sl_apply_store *store, int64_t now_ms, int64_t retention_ms,
                         struct sl_apply_purge_counts *out);

/* ---- the SQLite store (consumer/apply_sqlite.c) ----
 *
 * The database holds, created when missing (schema version 3 in PRAGMA user_version; a version 1 or 2 database is
 * brought to 3 when opened: new tables are created, new columns added to the old tables):
 *   entities (key TEXT PRIMARY KEY, version INTEGER NOT NULL, value TEXT, deleted INTEGER NOT NULL (0 or 1),
 *             deleted_at_ms INTEGER, origin TEXT, topic TEXT, partition INTEGER, offset INTEGER,
 *             applied_at_ms INTEGER, origin_system TEXT, changed_at_ms INTEGER)
 *                                                              the target state, one row per key (WITHOUT ROWID);
 *                                                              another name with --table, same columns;
 *                                                              origin_system and changed_at_ms: the last writer's
 *                                                              system and change time (rule 9)
 *   synclog_tables (name TEXT PRIMARY KEY, topic TEXT, claimed_at_ms)
 *                                                              which topic feeds each entity table: one topic per
 *                                                              table, since a table's key is the entity key alone
 *   synclog_purged (tbl, key, version, purged_at_ms)           the floors of purged keys (rule 5), per table
 *   stale_events (key, stored_version, incoming_version, topic, partition, offset, seen_at_ms)
 *   conflicts (key, stored_version, incoming_version, stored_digest, incoming_digest, origin, topic, partition,
 *              offset, seen_at_ms, policy, status, reason, origin_system, incoming_value, op, resolved_at_ms,
 *              resolution)                                     rules 4c and 9; digests are XXH3-64 of the value
 *                                                              bytes in 16 hex digits, NULL for a deleted row or a
 *                                                              delete; its rowid is the conflict's id; rows of
 *                                                              version 2 have NULL policy, status (read as
 *                                                              version, logged), value and op
 *   synclog_partition_state ("group", topic, partition, state, reason, since_ms)
 *                                                              the last state the engine reported (rule 9)
 *   synclog_offsets ("group", topic, partition, next_offset, applied, stale, duplicate, deleted, dead_lettered,
 *                    updated_at_ms)                           positions and running counts, per group
 *   synclog_idempotency_keys (idempotency_key BLOB PRIMARY KEY, seen_at_ms)
 * in WAL mode with synchronous=NORMAL: a commit is atomic and survives a crash of the process; after a power
 * loss the last transactions may be gone, data and offsets together, and are applied again from the log. */

/* What a value must be to be stored. */
enum sl_apply_values {
	SL_APPLY_VALUES_JSON = 0, /* one JSON value (RFC 8259): the entity snapshot; anything else is rejected */
	SL_APPLY_VALUES_TEXT = 1, /* UTF-8 text without NUL bytes */
};

/* Tables the engine's bookkeeping adds (created when missing, schema version unchanged):
 *   synclog_resets ("group" TEXT PRIMARY KEY, reset_generation INTEGER, adopted_at_ms INTEGER): the broker's
 *                  reset generation the target last adopted, per group */

/* Idempotency keys kept at most by a store (the oldest go first): 10 million keys of ~40 bytes are ~1 GB of
 * database, the most a target should spend on remembering. */
#define SL_APPLY_IDEMPOTENCY_KEYS_MAX        10000000
#define SL_APPLY_SQLITE_IDEMPOTENCY_KEYS_MAX SL_APPLY_IDEMPOTENCY_KEYS_MAX
/* An idempotency key longer than this is refused: it is an event id, not a payload. */
#define SL_APPLY_IDEMPOTENCY_KEY_BYTES_MAX   1024

struct sl_apply_sqlite;

/* The entity table's default name (CLI.md). */
#define SL_APPLY_SQLITE_TABLE_DEFAULT "entities"

struct sl_apply_sqlite_options {
	const char *path;
	enum sl_apply_values values;
	/* The entity table (NULL: entities): a letter or '_', then letters, digits or '_', at most 63 in all; not a
	 * name of the store's own tables and not starting with "sqlite_" or "synclog_". */
	const char *table;
	/* The topic that feeds the table (NULL: claim nothing, for a purge). The first open for a table claims it for
	 * its topic; opening it for another topic fails with -EEXIST, before anything is written: two topics in one
	 * table would compare one topic's versions with the other's for the same key. A version 1 database's table
	 * is claimed by the topic its rows name, if they name one. */
	const char *topic;
};

/* Open (creating) the database at o->path and its table. Returns 0, or a negative errno with err set (cannot open,
 * not a database, a newer schema, a bad table name (-EINVAL), a table fed by another topic (-EEXIST)). */
int sl_apply_sqlite_open_table(struct sl_apply_sqlite **out, const struct sl_apply_sqlite_options *o, char *err,
                               size_t err_bytes);
/* Claim db's table for topic now (what the topic option does at open, for a caller that first checks the topic
 * exists). Returns 0, -EEXIST (fed by another topic) or another negative errno; the store's error() says which. */
int sl_apply_sqlite_claim(struct sl_apply_sqlite *db, const char *topic);
/* The same with table entities and no claim, for embedders that feed the table one topic. */
int sl_apply_sqlite_open(struct sl_apply_sqlite **out, const char *path, enum sl_apply_values values, char *err,
                         size_t err_bytes);
/* 0 when name can be an entity table (the rule of sl_apply_sqlite_options.table), else -EINVAL. */
int sl_apply_sqlite_table_check(const char *name);
/* The store table of db, for sl_apply_new. */
void sl_apply_sqlite_store(struct sl_apply_sqlite *db, struct sl_apply_store *out);

/* What a delete does to the row (synclog apply --on-delete):
 *   HIDE         the row is marked deleted and keeps its value until it is purged (the default)
 *   ERASE_VALUE  the row is marked deleted and its value cleared at once (personal data)
 *   ARCHIVE      the row as it was (value, version, origin, offset) is copied to entities_archive (key, version,
 *                value, origin, topic, partition, offset, applied_at_ms, deleted_version, deleted_offset,
 *                archived_at_ms), and the row is marked deleted with its value cleared
 * In every mode the deleted row stays, without value for ERASE_VALUE and ARCHIVE, so that versions still compare
 * until it is purged. */
enum sl_apply_on_delete { SL_APPLY_ON_DELETE_HIDE = 0, SL_APPLY_ON_DELETE_ERASE_VALUE, SL_APPLY_ON_DELETE_ARCHIVE };
/* Set what deletes do, and whether deleted rows are left to the purge that follows the log (tombstones_due and
 * tombstone_purge are then in the store table; without, purge removes them by time alone). */
void sl_apply_sqlite_set_deletes(struct sl_apply_sqlite *db, enum sl_apply_on_delete on_delete, bool follow_log);
void sl_apply_sqlite_close(struct sl_apply_sqlite *db);

/* ---- the PostgreSQL store (consumer/sync/apply_pg.c) ----
 *
 * The same tables as SQLite, in a schema of their own (created when missing, with the schema), with PostgreSQL's
 * types (schema version 1 in SCHEMA.synclog_schema):
 *   entities (key text COLLATE "C" PRIMARY KEY, version bigint NOT NULL, value jsonb (text with
 *             SL_APPLY_VALUES_TEXT), deleted boolean NOT NULL, deleted_at_ms bigint, origin text, topic text,
 *             "partition" integer, "offset" bigint, applied_at_ms bigint)
 *   stale_events (key text, stored_version bigint, incoming_version bigint, topic text, "partition" integer,
 *                 "offset" bigint, seen_at_ms bigint)
 *   synclog_offsets ("group", topic, "partition", next_offset, applied, stale, duplicate, deleted, dead_lettered,
 *                    updated_at_ms)
 *   synclog_idempotency_keys (idempotency_key bytea PRIMARY KEY, seen_at_ms bigint)
 *   synclog_resets ("group" text PRIMARY KEY, reset_generation bigint, adopted_at_ms bigint)
 *   entities_archive (as SQLite's, with bigint, jsonb or text)
 *   synclog_tables, synclog_purged (key text COLLATE "C"), conflicts   (as SQLite's)
 *   reconcile_runs (made by `synclog reconcile`: target.h)
 * Keys are of the "C" collation: their index is in byte order, the order reconciliation reads a target in
 * (source.h). A refusal by the database of SQLSTATE class 23 (a constraint: a unique index, a CHECK, a foreign
 * key) is transient (rejection_transient), of class 22 (a value jsonb or the column cannot take) permanent, as is
 * a record the store refuses itself. A commit is as durable as the server's synchronous_commit makes it. The
 * store prefetches: each transaction reads the stored state of all its keys in one query and sends its writes at
 * commit (apply_pg.c says how). */

struct sl_apply_pg_options {
	/* A libpq connection URI (postgresql://...) or key=value connection string. */
	const char *conninfo;
	/* The schema of the tables: 1 to 63 bytes (NULL: SL_APPLY_PG_SCHEMA_DEFAULT). */
	const char *schema;
	/* The entity table, by the rule of sl_apply_sqlite_table_check (NULL: entities); its archive is
	 * TABLE_archive. */
	const char *table;
	enum sl_apply_values values;
	/* What deletes do, and whether deleted rows are left to the purge that follows the log, as for SQLite
	 * (sl_apply_sqlite_set_deletes). */
	enum sl_apply_on_delete on_delete;
	bool follow_log;
	/* A lost connection is tried again, with backoff, for this long before calls fail (0: the default). */
	uint32_t reconnect_timeout_ms;
};

#define SL_APPLY_PG_SCHEMA_DEFAULT               "synclog"
/* 60 s: longer than a restart of the server or a failover of a managed database, short enough that an applier
 * whose database is gone for good says so while someone is still looking. */
#define SL_APPLY_PG_RECONNECT_TIMEOUT_MS_DEFAULT 60000

struct sl_apply_pg;

/* Connect, create the schema and tables when missing and check them (schema version, the value column's type
 * against values, a UTF-8 database). Returns 0, or a negative errno with err set. */
int sl_apply_pg_open(struct sl_apply_pg **out, const struct sl_apply_pg_options *o, char *err, size_t err_bytes);
/* The store table of db, for sl_apply_new. */
void sl_apply_pg_store(struct sl_apply_pg *db, struct sl_apply_store *out);
/* Claim the entity table for topic, as sl_apply_sqlite_claim does (table synclog_tables of the schema). */
int sl_apply_pg_claim(struct sl_apply_pg *db, const char *topic);
void sl_apply_pg_close(struct sl_apply_pg *db);

/* ---- a target store by name (consumer/sync/apply_target.c) ----
 * sqlite:PATH, postgresql://... or postgres://... (a libpq URI), postgres:CONNINFO (a key=value string). */

struct sl_apply_target_options {
	const char *schema; /* PostgreSQL: the tables' schema (NULL: SL_APPLY_PG_SCHEMA_DEFAULT) */
	const char *table;  /* the entity table (NULL: entities), by sl_apply_sqlite_table_check's rule */
	enum sl_apply_values values;
	enum sl_apply_on_delete on_delete;
	/* Deleted rows are left to the purge that follows the log (tombstones_due and tombstone_purge). */
	bool follow_log;
};

struct sl_apply_target;

/* NULL when target is a form this build knows and the options fit it; else what is wrong (a usage error). */
const char *sl_apply_target_check(const char *target, const struct sl_apply_target_options *o);
/* Open (creating) the store target names. Returns 0, or a negative errno with err set. */
int sl_apply_target_open(struct sl_apply_target **out, const char *target, const struct sl_apply_target_options *o,
                         char *err, size_t err_bytes);
void sl_apply_target_store(struct sl_apply_target *t, struct sl_apply_store *out);
/* Claim the target's table for topic (sl_apply_sqlite_claim): 0, -EEXIST (fed by another topic) or another
 * negative errno; the store's error() says which. */
int sl_apply_target_claim(struct sl_apply_target *t, const char *topic);
void sl_apply_target_close(struct sl_apply_target *t);

/* ---- the broker as source and dead-letter sink (consumer/apply_broker.c) ---- */

struct sl_apply_fetch_source_options {
	const char *broker;
	const char *client_id;
	const struct sl_security_options *security; /* TLS and credentials; NULL: none */
	const char *topic;
	/* The group the applier joins as a member: the broker deals the topic's partitions among the appliers of
	 * the group, shows them in group describe, and takes their commits (the store's positions, for lag) with
	 * the target's running counts. */
	const char *group;
	const char *target; /* how the target is named in reports ("sqlite:/path") */
	/* Keep waiting for new records; otherwise stop at the log end as it was when the partitions were assigned. */
	bool follow;
	/* Connecting and each answer of the broker (0: the client library's default, 30 s). */
	uint32_t io_timeout_ms;
	/* librdkafka settings when broker is a Kafka cluster (may be NULL). */
	const struct sl_kafka_config *kafka_config;
};

struct sl_apply_fetch_source;

/* Join the group and, without follow, capture the end offsets. Reading starts where sl_apply_start's seek puts
 * it: each partition at the target's offset, else at the log start. Returns 0 or a negative errno with err set. */
int sl_apply_fetch_source_new(struct sl_apply_fetch_source **out, const struct sl_apply_fetch_source_options *o,
                              char *err, size_t err_bytes);
void sl_apply_fetch_source_get(struct sl_apply_fetch_source *s, struct sl_apply_source *out);
uint32_t sl_apply_fetch_source_partition_count(const struct sl_apply_fetch_source *s);
/* Records deleted by retention before they could be applied (the source skipped to the log start). */
uint64_t sl_apply_fetch_source_skipped(const struct sl_apply_fetch_source *s);
/* Records retention removed before the target applied them, found when partitions were first sought: behind
 * the log start, or everything before the log start for a partition the target never applied. Reported to the
 * broker (the group's state becomes lost) with the next commit. */
uint64_t sl_apply_fetch_source_lost(const struct sl_apply_fetch_source *s);
/* Leave the group (its partitions move to other appliers at once); with commit_nothing, after refusing to read
 * past a gap. Returns 0 or the leave's failure. */
int sl_apply_fetch_source_close(struct sl_apply_fetch_source *s, bool commit_nothing);
void sl_apply_fetch_source_free(struct sl_apply_fetch_source *s);

/* The dead-letter topic: TOPIC.dlq, created with one partition when missing (dead letters are few and read by
 * people; one partition keeps them in the order they were sent). Every target of the topic writes there, and each
 * letter says which target it belongs to. Letters are sent as they come and made durable (acknowledged with
 * fsync) by sl_apply_dlq_flush, which the engine calls before committing their offsets. Each dead letter is one
 * record: key = the original key, origin = the original origin, no version, and as value one JSON object:
 *   {"error":"...","error_class":"permanent"|"transient","group":G,"target":"sqlite:/path","topic":"T",
 *    "partition":P,"offset":O,"timestamp_ms":T,"key":K,"value":V,"version":N,"op":"upsert"|"delete",
 *    "origin":"live","idempotency_key":I,"schema_version":S,"dead_lettered_at_ms":T}
 * error_class: permanent when the record itself can never be taken (a value that is not JSON, no key), transient
 * when the target's state refused it (a constraint) and a redrive may succeed later. V is the original value
 * itself when it is valid JSON, else a JSON string (as `synclog consume --json` prints values), null for a null
 * value; K and I are strings or null; version is null when the record had none. A value too large for one record
 * is left out ("value_omitted": its size in bytes); it stays readable at its offset. */
struct sl_apply_dlq;

#define SL_APPLY_DLQ_SUFFIX ".dlq"

/* security: TLS and credentials (may be NULL); kafka_config: librdkafka settings when broker is a Kafka cluster
 * (may be NULL). On a cluster that cannot create topics through the Admin API (no controller), TOPIC.dlq must exist
 * beforehand. */
int sl_apply_dlq_new(struct sl_apply_dlq **out, const char *broker, const struct sl_security_options *security,
                     const struct sl_kafka_config *kafka_config, const char *topic, const char *group,
                     const char *target, char *err, size_t err_bytes);
/* The dead-letter callback (cb_arg is the sl_apply_dlq) and its flush (options.dead_letter_flush_cb). */
int sl_apply_dlq_send(const struct sl_apply_record *r, const char *error, bool transient, void *cb_arg);
int sl_apply_dlq_flush(void *cb_arg);
const char *sl_apply_dlq_topic(const struct sl_apply_dlq *d);
const char *sl_apply_dlq_error(const struct sl_apply_dlq *d);
void sl_apply_dlq_free(struct sl_apply_dlq *d);

#endif
