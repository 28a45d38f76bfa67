/* A topic's sync contract as the broker keeps it: every version in DATA/topics/<name>/contract.json (written
 * atomically, off the loop), the current one in memory with the two clauses the broker itself enforces (the
 * produce path's delivery.duplicates idempotency-key, and recovery.alert.stall_after as the default stall-after of
 * the groups' health on the topic's partitions) and the counts of what produce saw of it. The contract's meaning is
 * the tools' (consumer/sync/contract.h); the broker reads only those clauses of the normalized JSON it is given.
 *
 * FILE (JSON, one object):
 *   {"versions": [{"version": 1, "set_by": "alice@host", "peer": "127.0.0.1:50412", "set_at_ms": 1714557600000,
 *                  "text": "<the file as written>", "contract": "<the normalized JSON object, as text>"}, ...]}
 * oldest first, versions 1, 2, ... without gaps, at most SL_CONTRACT_VERSIONS_KEPT of them (the oldest go).
 *
 * Invariants:
 *   1. The in-memory current version is the file's last one (it is replaced only after the file was written).
 *   2. A version number is never reused for a topic, even when old versions were dropped (the last one decides).
 *   3. text and contract are each at most SL_CONTRACT_TEXT_BYTES_MAX bytes and hold no NUL.
 *
 * Which thread may call: sl_contract_load, _append and _read block on the disk: at startup, or on the thread pool.
 * The rest only touch memory: the loop thread. */
#ifndef SL_BROKER_CONTRACTS_H
#define SL_BROKER_CONTRACTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/limits.h"

#define SL_CONTRACT_FILE          "contract.json"
/* Versions kept per topic: months of weekly changes, and a file of at most ~6 MiB (2 x 64 KiB each). */
#define SL_CONTRACT_VERSIONS_KEPT 50
#define SL_CONTRACT_SET_BY_BYTES  256
#define SL_CONTRACT_PEER_BYTES    64

struct sl_contract_version {
	uint32_t version;
	char set_by[SL_CONTRACT_SET_BY_BYTES];
	char peer[SL_CONTRACT_PEER_BYTES];
	int64_t set_at_ms;
	char *text;     /* heap */
	char *contract; /* heap */
};

/* What a live record without an idempotency key meets (delivery.duplicates, delivery.without_idempotency_key). */
enum sl_contract_ik_rule { SL_CONTRACT_IK_ANY = 0, SL_CONTRACT_IK_COUNT, SL_CONTRACT_IK_REFUSE };

struct sl_contract_counts {
	int64_t since_ms;
	uint64_t live_records;
	uint64_t without_idempotency_key;
	uint64_t batches_refused;
	uint64_t records_refused;
};

/* The clauses of a contract the broker enforces. */
struct sl_contract_rules {
	enum sl_contract_ik_rule ik_rule;
	/* recovery.alert.stall_after: the stall-after of group health on the topic's partitions, unless the group
	 * has its own (group alter); 0: not given (the broker's --stall-after). */
	int64_t stall_after_ms;
};

/* A topic's contract in memory. */
struct sl_topic_contract {
	struct sl_contract_version current;
	struct sl_contract_rules rules;
	struct sl_contract_counts counts;
};

/* The broker's clauses of a normalized contract: delivery.duplicates and delivery.without_idempotency_key, and
 * recovery.alert.stall_after (a duration as sl_duration_parse reads it, or milliseconds). Returns 0, or -EINVAL
 * with why in err when contract is not a JSON object or the clauses' values are not the tools' words. */
int sl_contract_rules_parse(const char *contract, struct sl_contract_rules *out, char *err, size_t err_bytes);

/* Read topic_dir's contract file: 0 with *out (NULL when the topic has none; else free with
 * sl_topic_contract_free), or a negative errno with err set (unreadable or invalid file). */
int sl_contract_load(const char *topic_dir, struct sl_topic_contract **out, char *err, size_t err_bytes);
void sl_topic_contract_free(struct sl_topic_contract *c);
void sl_contract_version_free(struct sl_contract_version *v);

/* Append v as the next version (v->version is set here) and write the file atomically, dropping the oldest past
 * SL_CONTRACT_VERSIONS_KEPT. Returns 0 or a negative errno with err set; the file is the old one on failure. */
int sl_contract_append(const char *topic_dir, struct sl_contract_version *v, char *err, size_t err_bytes);

/* Read versions from the file: the one numbered version (0: the last), or with history every one kept, oldest
 * first. *out is an array of *count_out versions (free each with sl_contract_version_free, then the array).
 * Returns 0, -ENOENT (no contract, or not that version), or another negative errno with err set. */
int sl_contract_read(const char *topic_dir, uint32_t version, bool history, struct sl_contract_version **out,
                     uint32_t *count_out, char *err, size_t err_bytes);

#endif
