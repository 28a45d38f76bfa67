/* Who is talking and what they may do: the broker's security state and the checks the front ends and dispatch.c
 * call. It holds the users (proto/users.h) and ACLs (broker/acl.h) loaded at start, the super users, the audit
 * log (broker/audit.h), the per-principal state (connections, produce and fetch quotas) and the rate limit of
 * connection attempts per source address.
 *
 * Where each check happens:
 *
 *   front end (broker/net/, broker/kafka/)      dispatch.c                           request.c
 *   accept: sl_security_connection_allowed  ->  sl_security_check(req): before   ->  sl_req_respond:
 *   TLS client cert: sl_security_session_       the handler; refuses with the        sl_security_responded(req):
 *     authenticated (principal = its CN)        authorization code of the resource   audit result, quota
 *   close: sl_security_session_end                                                   throttle time
 *
 * Rules:
 *   1. Authentication is on with --auth scram (or --tls-client-auth required). Then every request but Hello and
 *      Authenticate needs an authenticated connection, and every request needs an ACL (broker/acl.h) unless the
 *      principal is a super user. Off, everyone is ANONYMOUS and may do everything, as before this existed.
 *   2. A denied request is answered with TOPIC_, GROUP_ or CLUSTER_AUTHORIZATION_FAILED naming the principal,
 *      the operation and the resource, and logged (at most SL_DENIED_LOG_PER_S lines a second; the rest are
 *      counted and the next line says how many were not logged).
 *   3. Administrative requests are audited with their result whether allowed, denied or failed; so is every
 *      failed authentication.
 *   4. A principal over its produce or fetch byte rate gets its answers with throttle_time_ms, held back that
 *      long, and its connection is not read meanwhile (Kafka's way): the client is delayed, nothing is dropped.
 *   5. An authenticated principal's connections together hold at most --principal-inflight-bytes-max request
 *      bytes unanswered: past it each of them stops reading, and all resume once it is back under half.
 *
 * Which thread may call: the shard's loop thread only. */
#ifndef SL_BROKER_SECURITY_H
#define SL_BROKER_SECURITY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "broker/acl.h"
#include "broker/audit.h"
#include "proto/base/rate.h"
#include "proto/scram.h"
#include "proto/users.h"

/* The principal of every connection when authentication is off. */
#define SL_PRINCIPAL_ANONYMOUS   "ANONYMOUS"
#define SL_SUPER_USERS_MAX       64
/* Denied requests logged per second; more are counted (rule 2): a client retrying a forbidden produce in a loop
 * must not fill the disk with the same line. */
#define SL_DENIED_LOG_PER_S      10
/* The longest a quota holds a connection: past it a client would take the silence for a dead broker (its
 * request timeout is 30 s). */
#define SL_QUOTA_THROTTLE_MS_MAX 10000
/* Principals remembered at once (connections and quota buckets); those with no connection are forgotten first. */
#define SL_PRINCIPALS_MAX        65536
/* Source addresses whose connection attempts are rate limited at once; a new one takes the slot of another. */
#define SL_ADDRESS_RATES_MAX     4096

enum sl_tls_client_auth { SL_TLS_CLIENT_AUTH_NONE = 0, SL_TLS_CLIENT_AUTH_OPTIONAL, SL_TLS_CLIENT_AUTH_REQUIRED };

/* The flags of synclogd that configure security (broker/main.c). */
struct sl_security_config {
	int auth_scram;         /* --auth scram */
	char super_users[1024]; /* --super-users NAME,... */
	char tls_cert[1024];    /* --tls-cert: "" means no TLS */
	char tls_key[1024];
	char tls_ca[1024]; /* --tls-ca: verifies client certificates */
	enum sl_tls_client_auth tls_client_auth;
	int insecure;                          /* --insecure */
	uint64_t produce_bytes_per_s;          /* --quota-produce-rate, per principal; 0: none */
	uint64_t fetch_bytes_per_s;            /* --quota-fetch-rate */
	uint32_t principal_connections_max;    /* --principal-connections-max; 0: none */
	uint64_t principal_inflight_bytes_max; /* --principal-inflight-bytes-max: request bytes unanswered; 0: none */
	uint32_t connection_rate_per_s; /* --connection-rate-max: attempts per source address per second; 0: off */
};

void sl_security_config_default(struct sl_security_config *cfg);

/* One session's decisions, so that a producer sending to one topic costs one ACL scan per ACL change, not one
 * per request. */
#define SL_ACL_CACHE_ENTRIES 4
struct sl_acl_cache_entry {
	uint64_t generation; /* 0: empty */
	enum sl_acl_resource resource;
	enum sl_acl_op op;
	int allowed;
	char name[SL_ACL_NAME_BYTES_MAX + 1];
};

struct sl_principal;

/* What a connection's session knows of its security (struct sl_session holds one). */
struct sl_session_security {
	char principal[SL_USER_NAME_BYTES_MAX + 1]; /* "" until authenticated */
	int authenticated;
	int super_user;
	const char *mechanism;         /* "SCRAM-SHA-256", "TLS", or NULL */
	struct sl_scram_server *scram; /* the exchange in progress, or NULL */
	struct sl_principal *state;    /* connections and quotas of the principal, or NULL */
	struct sl_acl_cache_entry cache[SL_ACL_CACHE_ENTRIES];
	uint32_t cache_next;
	int64_t throttle_until_ms; /* rule 4: the front end does not read before this (monotonic ms) */
	/* The sessions of one principal, for waking them when its bytes in flight fall (rule 5). */
	struct sl_session *principal_next, *principal_prev;
};

struct sl_principal {
	struct sl_principal *next; /* hash chain */
	char name[SL_USER_NAME_BYTES_MAX + 1];
	uint32_t connections;
	struct sl_session *sessions;   /* its connections' sessions */
	uint64_t inflight_bytes;       /* request bytes read from its connections and not yet answered */
	int waiting;                   /* a connection of it stopped reading at the bound (rule 5) */
	struct sl_rate produce, fetch; /* rule 4: bytes, one second's worth of burst */
};

struct sl_address_rate {
	uint8_t addr[16];
	uint8_t family; /* 0: empty slot */
	struct sl_rate rate;
};

struct sl_security_stats {
	uint64_t auth_succeeded;
	uint64_t auth_failed;
	uint64_t denied;            /* requests refused: no ACL, or not authenticated */
	uint64_t denied_unlogged;   /* of those, not logged (rule 2) */
	uint64_t throttled_produce; /* responses that carried a throttle time */
	uint64_t throttled_fetch;
	uint64_t throttle_ms;                   /* the sum of those times */
	uint64_t connections_rate_limited;      /* closed at accept: too many attempts from one address */
	uint64_t connections_principal_limited; /* refused at authentication: the principal has too many */
};

struct sl_security_write; /* handlers/security.c: a users or ACL file change in flight */
struct sl_server;
struct sl_req;
struct sl_session;

struct sl_security {
	struct sl_server *srv;
	const struct sl_security_config *cfg;
	int auth_enabled; /* rule 1 */
	struct sl_users users;
	struct sl_acls acls;
	uint64_t acl_generation; /* bumped on every change of acls: session caches compare it */
	char super_users[SL_SUPER_USERS_MAX][SL_USER_NAME_BYTES_MAX + 1];
	uint32_t super_user_count;
	uint8_t fake_key[SL_SCRAM_KEY_BYTES]; /* proto/scram.h choice 4 */
	struct sl_audit audit;
	struct sl_principal *principals[1024];
	uint32_t principal_count;
	struct sl_address_rate *address_rates; /* SL_ADDRESS_RATES_MAX */
	/* Users and ACL file changes, one at a time, in arrival order (handlers/security.c). */
	struct sl_security_write *write_head, *write_tail;
	int write_busy;
	/* Rule 2's window. */
	int64_t denied_window_ms;
	uint32_t denied_in_window;
	struct sl_security_stats stats;
};

/* Parse "required", "optional", "none". */
int sl_tls_client_auth_parse(const char *s, enum sl_tls_client_auth *out);
/* Check the super user list ("a,b,c": user names, at most SL_SUPER_USERS_MAX). 0 or -EINVAL with err set. */
int sl_security_super_users_check(const char *list, char *err, size_t err_cap);

/* Load DATA/security/users and acls, open the audit log. Blocking: at start, before the loop serves. Returns 0 or
 * a negative errno with err set. */
int sl_security_open(struct sl_server *srv, char *err, size_t err_cap);
/* 1 while an audit append or a users/ACL file write is in flight (shutdown waits). */
int sl_security_busy(struct sl_server *srv);
/* After the loop ended. */
void sl_security_close(struct sl_server *srv);

/* Rules 1 to 3 for one request, before its handler: 0 to go on; otherwise the request was answered (refused). */
int sl_security_check(struct sl_req *req);
/* 1 when the request's principal may do op to the resource (rule 1): for handlers that filter lists. */
int sl_security_allows(struct sl_req *req, enum sl_acl_resource r, const char *name, enum sl_acl_op op);
/* The same for a session (a front end that answers some requests itself: the Kafka listener's groups). */
int sl_security_session_allows(struct sl_server *srv, struct sl_session *s, enum sl_acl_resource r, const char *name,
                               enum sl_acl_op op);
/* From sl_req_respond, before the answer goes out: the audit line (rule 3) and the throttle time (rule 4). */
void sl_security_responded(struct sl_req *req);

/* The connection is now principal (SCRAM or a TLS certificate; mechanism names which). Applies the super user
 * list and --principal-connections-max. Returns 0, or -EUSERS (too many connections for that principal: err says
 * so; the caller refuses the authentication). */
int sl_security_session_authenticated(struct sl_server *srv, struct sl_session *s, const char *principal,
                                      const char *mechanism, char *err, size_t err_cap);
/* A failed authentication of user (may be "") from the session's address: counted and audited. */
void sl_security_auth_failed(struct sl_server *srv, struct sl_session *s, const char *user, const char *why);
/* The connection is closing: its principal's connection count drops, the exchange in progress is freed. */
void sl_security_session_end(struct sl_server *srv, struct sl_session *s);
/* Rule 5. A request of frame_bytes was read on session s: charge its principal (*charged_out: whom, NULL when the
 * session has none yet), and release it when the request is done. Releasing under half the bound calls the
 * wake_cb of every session of the principal, so that connections stopped at the bound read again. */
void sl_security_inflight_charge(struct sl_session *s, uint64_t frame_bytes, struct sl_principal **charged_out);
void sl_security_inflight_release(struct sl_server *srv, struct sl_principal *p, uint64_t frame_bytes);
/* 1 when s's principal is at its bound (the front end stops reading s's connection). */
int sl_security_inflight_over(struct sl_server *srv, struct sl_session *s);
/* At accept: 0, or -EAGAIN when the source address has used its connection attempts for now. Loopback addresses
 * (127.0.0.0/8, ::1) are never limited. */
int sl_security_connection_allowed(struct sl_server *srv, const struct sockaddr *addr);

/* The principal a request acts as, for logs and audit: its name, or ANONYMOUS / "" (not yet authenticated). */
const char *sl_security_principal(const struct sl_session *s, const struct sl_security *sec);

#endif
