/* The audit trail: every administrative action (topic create and delete, offset resets, group delete, user and
 * ACL changes), allowed, refused or failed, and every failed authentication, appended to DATA/security/audit.log
 * and counted for the metrics. Append-only: the broker opens it O_APPEND and never rewrites or truncates it;
 * rotating it is the operator's (copy, then truncate, or logrotate's copytruncate).
 *
 * Format: one JSON object per line, fields in this order:
 *
 *   {"ts":"2026-05-01T12:00:00.123Z","principal":"alice","address":"10.0.0.7:51234","action":"topic_delete",
 *    "target":"topic:orders","result":"denied","detail":"..."}
 *
 *   principal  the authenticated principal, "" before authentication, "ANONYMOUS" with authentication off
 *   action     authenticate, topic_create, topic_delete, topic_alter, topic_compact, offsets_reset,
 *              group_delete, user_add, user_delete, acl_add, acl_remove
 *   target     RESOURCE:NAME (topic:orders, group:billing, user:alice, acl:alice/topic/literal/orders/produce)
 *   result     ok, denied (no ACL allows it) or failed (refused for another reason: detail says which)
 *   detail     the error message, or absent
 *
 * The loop never writes the file: lines gather in a buffer that one thread-pool job at a time appends and
 * fdatasyncs, so a line is durable within one disk flush of its action. Invariants:
 *   1. At most SL_AUDIT_PENDING_BYTES_MAX bytes wait; past it lines are dropped, counted, and the next line
 *      written is preceded by {"ts":...,"action":"audit_dropped","detail":"N lines dropped before this one"}, so a
 *      gap is never silent.
 *   2. Lines are appended in the order their actions happened; one job is in flight at a time.
 *
 * Which thread may call: the shard's loop thread only. */
#ifndef SL_BROKER_AUDIT_H
#define SL_BROKER_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#define SL_AUDIT_FILE              "audit.log"
/* A burst of failed logins from a script fills this in about 4000 lines; a disk that slow is already a problem the
 * counters show. */
#define SL_AUDIT_PENDING_BYTES_MAX (1u << 20)

enum sl_audit_action {
	SL_AUDIT_AUTHENTICATE = 0,
	SL_AUDIT_TOPIC_CREATE,
	SL_AUDIT_TOPIC_DELETE,
	SL_AUDIT_TOPIC_ALTER,
	SL_AUDIT_TOPIC_COMPACT,
	SL_AUDIT_OFFSETS_RESET,
	SL_AUDIT_GROUP_DELETE,
	SL_AUDIT_USER_ADD,
	SL_AUDIT_USER_DELETE,
	SL_AUDIT_ACL_ADD,
	SL_AUDIT_ACL_REMOVE,
	SL_AUDIT_ACTION_COUNT,
};
enum sl_audit_result { SL_AUDIT_OK = 0, SL_AUDIT_DENIED, SL_AUDIT_FAILED, SL_AUDIT_RESULT_COUNT };

struct uv_loop_s;
struct sl_audit_job;

struct sl_audit {
	int fd; /* -1: closed */
	char path[4096];
	struct uv_loop_s *loop;
	char *pending; /* lines not yet handed to a job; SL_AUDIT_PENDING_BYTES_MAX */
	size_t pending_len;
	struct sl_audit_job *job; /* the append in flight, or NULL */
	uint64_t dropped_unreported;
	/* Counters for the metrics. */
	uint64_t events[SL_AUDIT_ACTION_COUNT][SL_AUDIT_RESULT_COUNT];
	uint64_t dropped;
	uint64_t write_errors;
};

const char *sl_audit_action_name(enum sl_audit_action a);
const char *sl_audit_result_name(enum sl_audit_result r);

/* Open (create) DATA/security/audit.log for appending. Blocking: call before the loop serves. Returns 0 or a
 * negative errno with err set. */
int sl_audit_open(struct sl_audit *a, struct uv_loop_s *loop, const char *data_dir, char *err, size_t err_cap);
/* Record one action; detail may be NULL. */
void sl_audit_record(struct sl_audit *a, enum sl_audit_action action, enum sl_audit_result result,
                     const char *principal, const char *address, const char *target, const char *detail);
/* 1 while lines wait or a job is in flight (shutdown waits for 0; a call starts the job when none runs). */
int sl_audit_busy(struct sl_audit *a);
/* After the loop ended: write what is left, synchronously, and close. */
void sl_audit_close(struct sl_audit *a);

#endif
