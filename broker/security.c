/* The broker's security checks and state; see security.h for where each runs and the rules. */
#include <errno.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/security.h"
#include "broker/shard.h"
#include "proto/base/assert.h"
#include "proto/base/clock.h"
#include "proto/base/slog.h"

void sl_security_config_default(struct sl_security_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->tls_client_auth = SL_TLS_CLIENT_AUTH_NONE;
	/* 200 connection attempts a second from one address: far above what a well-behaved client or a test script
	 * opens, far below what guessing passwords needs. */
	cfg->connection_rate_per_s = 200;
	/* Four times one connection's bound (four maximum frames each): a principal may keep several connections
	 * busy, but a hundred connections of one principal cannot hold a hundred times that of the broker's memory. */
	cfg->principal_inflight_bytes_max = 256ull << 20;
}

int sl_tls_client_auth_parse(const char *s, enum sl_tls_client_auth *out)
{
	if (strcmp(s, "none") == 0)
		*out = SL_TLS_CLIENT_AUTH_NONE;
	else if (strcmp(s, "optional") == 0)
		*out = SL_TLS_CLIENT_AUTH_OPTIONAL;
	else if (strcmp(s, "required") == 0)
		*out = SL_TLS_CLIENT_AUTH_REQUIRED;
	else
		return -EINVAL;
	return 0;
}

/* Split the super user list into names: each checked, at most SL_SUPER_USERS_MAX. */
static int super_users_split(const char *list, char names[][SL_USER_NAME_BYTES_MAX + 1], uint32_t *count, char *err,
                             size_t err_cap)
{
	*count = 0;
	const char *p = list;
	while (*p != '\0') {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		char name[SL_USER_NAME_BYTES_MAX + 2];
		if (n == 0 || n > SL_USER_NAME_BYTES_MAX) {
			snprintf(err, err_cap, "super user names are 1 to 64 characters, separated by single commas");
			return -EINVAL;
		}
		memcpy(name, p, n);
		name[n] = '\0';
		if (sl_user_name_check(name) < 0) {
			snprintf(err, err_cap, "super user '%s': names are 1 to 64 characters of [A-Za-z0-9._@-]",
			         name);
			return -EINVAL;
		}
		if (*count == SL_SUPER_USERS_MAX) {
			snprintf(err, err_cap, "more than %d super users: grant the rest cluster admin with ACLs",
			         SL_SUPER_USERS_MAX);
			return -EINVAL;
		}
		if (names)
			snprintf(names[*count], SL_USER_NAME_BYTES_MAX + 1, "%s", name);
		(*count)++;
		p += n;
		if (*p == ',')
			p++;
		if (comma && *p == '\0') {
			snprintf(err, err_cap, "super user list ends with a comma");
			return -EINVAL;
		}
	}
	return 0;
}

int sl_security_super_users_check(const char *list, char *err, size_t err_cap)
{
	uint32_t n;
	return super_users_split(list, NULL, &n, err, err_cap);
}

static int is_super_user(const struct sl_security *sec, const char *name)
{
	for (uint32_t i = 0; i < sec->super_user_count; i++)
		if (strcmp(sec->super_users[i], name) == 0)
			return 1;
	return 0;
}

int sl_security_open(struct sl_server *srv, char *err, size_t err_cap)
{
	struct sl_security *sec = calloc(1, sizeof(*sec));
	if (sec == NULL)
		return -ENOMEM;
	sec->srv = srv;
	sec->cfg = &srv->cfg.security;
	sec->auth_enabled = sec->cfg->auth_scram || sec->cfg->tls_client_auth == SL_TLS_CLIENT_AUTH_REQUIRED;
	sec->acl_generation = 1;
	int rc = super_users_split(sec->cfg->super_users, sec->super_users, &sec->super_user_count, err, err_cap);
	if (rc == 0 && RAND_bytes(sec->fake_key, sizeof(sec->fake_key)) != 1) {
		snprintf(err, err_cap, "cannot get random bytes from OpenSSL");
		rc = -EIO;
	}
	if (rc == 0)
		rc = sl_users_load(srv->cfg.data_dir, &sec->users, err, err_cap);
	if (rc == 0)
		rc = sl_acls_load(srv->cfg.data_dir, &sec->acls, err, err_cap);
	if (rc == 0) {
		sec->address_rates = calloc(SL_ADDRESS_RATES_MAX, sizeof(*sec->address_rates));
		if (sec->address_rates == NULL)
			rc = -ENOMEM;
	}
	if (rc == 0)
		rc = sl_audit_open(&sec->audit, &srv->loop, srv->cfg.data_dir, err, err_cap);
	if (rc < 0) {
		sl_users_free(&sec->users);
		sl_acls_free(&sec->acls);
		free(sec->address_rates);
		free(sec);
		return rc;
	}
	srv->security = sec;
	struct sl_slog *e = sl_slog_begin(SL_SLOG_INFO, "security");
	sl_slog_str(e, "authentication",
	            sec->cfg->auth_scram ? "scram"
	            : sec->auth_enabled  ? "tls-client-cert"
	                                 : "off");
	sl_slog_str(e, "tls", sec->cfg->tls_cert[0] ? "on" : "off");
	sl_slog_uint(e, "users", sec->users.count);
	sl_slog_uint(e, "acls", sec->acls.count);
	sl_slog_uint(e, "super_users", sec->super_user_count);
	sl_slog_str(e, "audit_log", sec->audit.path);
	sl_slog_end(e);
	if (sec->auth_enabled && sec->super_user_count == 0 && sec->acls.count == 0)
		sl_slog_msg(SL_SLOG_WARN, "no_administrator",
		            "authentication is on but there is no super user and no ACL: every request will be "
		            "refused; restart with --super-users NAME after `synclog user add NAME --data-dir DIR`");
	return 0;
}

int sl_security_busy(struct sl_server *srv)
{
	struct sl_security *sec = srv->security;
	return sec != NULL && (sec->write_busy || sec->write_head != NULL || sl_audit_busy(&sec->audit));
}

void sl_security_close(struct sl_server *srv)
{
	struct sl_security *sec = srv->security;
	if (sec == NULL)
		return;
	sl_audit_close(&sec->audit);
	for (size_t i = 0; i < sizeof(sec->principals) / sizeof(sec->principals[0]); i++) {
		while (sec->principals[i]) {
			struct sl_principal *p = sec->principals[i];
			sec->principals[i] = p->next;
			free(p);
		}
	}
	sl_users_free(&sec->users);
	sl_acls_free(&sec->acls);
	free(sec->address_rates);
	free(sec);
	srv->security = NULL;
}

const char *sl_security_principal(const struct sl_session *s, const struct sl_security *sec)
{
	if (s->sec.authenticated)
		return s->sec.principal;
	return sec->auth_enabled ? "" : SL_PRINCIPAL_ANONYMOUS;
}

/* ---- principals ---- */

static uint32_t hash_name(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

/* Forget one principal with no connection, to make room (SL_PRINCIPALS_MAX). Returns 1 if one was. */
static int principal_evict(struct sl_security *sec)
{
	for (size_t i = 0; i < sizeof(sec->principals) / sizeof(sec->principals[0]); i++) {
		for (struct sl_principal **pp = &sec->principals[i]; *pp; pp = &(*pp)->next) {
			/* A request still in flight holds a pointer to its principal (sl_security_inflight_charge). */
			if ((*pp)->connections == 0 && (*pp)->inflight_bytes == 0) {
				struct sl_principal *p = *pp;
				*pp = p->next;
				free(p);
				sec->principal_count--;
				return 1;
			}
		}
	}
	return 0;
}

static struct sl_principal *principal_get(struct sl_security *sec, const char *name)
{
	size_t b = hash_name(name) % (sizeof(sec->principals) / sizeof(sec->principals[0]));
	for (struct sl_principal *p = sec->principals[b]; p; p = p->next)
		if (strcmp(p->name, name) == 0)
			return p;
	if (sec->principal_count >= SL_PRINCIPALS_MAX && !principal_evict(sec))
		return NULL;
	struct sl_principal *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	snprintf(p->name, sizeof(p->name), "%s", name);
	int64_t now = sl_clock_mono_ns();
	double produce = (double)sec->cfg->produce_bytes_per_s, fetch = (double)sec->cfg->fetch_bytes_per_s;
	sl_rate_init(&p->produce, produce, produce, now);
	sl_rate_init(&p->fetch, fetch, fetch, now);
	p->next = sec->principals[b];
	sec->principals[b] = p;
	sec->principal_count++;
	return p;
}

/* Take s off its principal: one connection fewer, out of its sessions. */
static void session_unlink(struct sl_session *s)
{
	struct sl_principal *p = s->sec.state;
	if (p == NULL)
		return;
	SL_ASSERT(p->connections > 0);
	p->connections--;
	if (s->sec.principal_prev)
		s->sec.principal_prev->sec.principal_next = s->sec.principal_next;
	else
		p->sessions = s->sec.principal_next;
	if (s->sec.principal_next)
		s->sec.principal_next->sec.principal_prev = s->sec.principal_prev;
	s->sec.principal_next = s->sec.principal_prev = NULL;
	s->sec.state = NULL;
}

int sl_security_session_authenticated(struct sl_server *srv, struct sl_session *s, const char *principal,
                                      const char *mechanism, char *err, size_t err_cap)
{
	struct sl_security *sec = srv->security;
	struct sl_principal *p = principal_get(sec, principal);
	if (p == NULL) {
		snprintf(err, err_cap, "out of memory for principal '%s'", principal);
		return -ENOMEM;
	}
	uint32_t max = sec->cfg->principal_connections_max;
	if (max > 0 && p->connections >= max && s->sec.state != p) {
		sec->stats.connections_principal_limited++;
		snprintf(err, err_cap,
		         "principal '%s' already has %u connections, the most synclogd allows one principal "
		         "(--principal-connections-max): close some",
		         principal, p->connections);
		return -EUSERS;
	}
	if (s->sec.state != p) {
		session_unlink(s);
		p->connections++;
		s->sec.state = p;
		s->sec.principal_prev = NULL;
		s->sec.principal_next = p->sessions;
		if (p->sessions)
			p->sessions->sec.principal_prev = s;
		p->sessions = s;
	}
	snprintf(s->sec.principal, sizeof(s->sec.principal), "%s", principal);
	s->sec.authenticated = 1;
	s->sec.super_user = is_super_user(sec, principal);
	s->sec.mechanism = mechanism;
	memset(s->sec.cache, 0, sizeof(s->sec.cache));
	sec->stats.auth_succeeded++;
	struct sl_slog *e = sl_slog_begin(SL_SLOG_DEBUG, "authenticated");
	sl_slog_str(e, "principal", principal);
	sl_slog_str(e, "mechanism", mechanism);
	sl_slog_str(e, "address", s->peer);
	sl_slog_end(e);
	return 0;
}

void sl_security_auth_failed(struct sl_server *srv, struct sl_session *s, const char *user, const char *why)
{
	struct sl_security *sec = srv->security;
	char target[SL_SCRAM_USER_BYTES_MAX + 8];
	snprintf(target, sizeof(target), "user:%s", user ? user : "");
	sec->stats.auth_failed++;
	sl_audit_record(&sec->audit, SL_AUDIT_AUTHENTICATE, SL_AUDIT_FAILED, "", s->peer, target, why);
	struct sl_slog *e = sl_slog_begin(SL_SLOG_WARN, "authentication_failed");
	sl_slog_str(e, "user", user ? user : "");
	sl_slog_str(e, "address", s->peer);
	sl_slog_str(e, "reason", why);
	sl_slog_end(e);
}

void sl_security_session_end(struct sl_server *srv, struct sl_session *s)
{
	session_unlink(s);
	if (s->sec.scram != NULL) {
		memset(s->sec.scram, 0, sizeof(*s->sec.scram));
		free(s->sec.scram);
		s->sec.scram = NULL;
	}
}

/* ---- bytes in flight per principal (rule 5) ---- */

void sl_security_inflight_charge(struct sl_session *s, uint64_t frame_bytes, struct sl_principal **charged_out)
{
	struct sl_principal *p = s->sec.state;
	*charged_out = p;
	if (p != NULL)
		p->inflight_bytes += frame_bytes;
}

void sl_security_inflight_release(struct sl_server *srv, struct sl_principal *p, uint64_t frame_bytes)
{
	if (p == NULL)
		return;
	SL_ASSERT(p->inflight_bytes >= frame_bytes);
	p->inflight_bytes -= frame_bytes;
	uint64_t max = srv->security->cfg->principal_inflight_bytes_max;
	if (!p->waiting || p->inflight_bytes > max / 2)
		return;
	p->waiting = 0;
	/* A wake may close a connection (and unlink its session): take the next one first. */
	for (struct sl_session *s = p->sessions, *next; s != NULL; s = next) {
		next = s->sec.principal_next;
		if (s->wake_cb)
			s->wake_cb(s);
	}
}

int sl_security_inflight_over(struct sl_server *srv, struct sl_session *s)
{
	struct sl_principal *p = s->sec.state;
	uint64_t max = srv->security->cfg->principal_inflight_bytes_max;
	if (p == NULL || max == 0 || p->inflight_bytes < max)
		return 0;
	p->waiting = 1;
	return 1;
}

/* ---- rates ---- */

int sl_security_connection_allowed(struct sl_server *srv, const struct sockaddr *addr)
{
	struct sl_security *sec = srv->security;
	uint32_t rate = sec->cfg->connection_rate_per_s;
	if (rate == 0 || addr == NULL)
		return 0;
	uint8_t key[16] = {0};
	uint8_t family;
	if (addr->sa_family == AF_INET) {
		memcpy(key, &((const struct sockaddr_in *)addr)->sin_addr, 4);
		family = 4;
	} else if (addr->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)addr)->sin6_addr, 16);
		family = 6;
	} else {
		return 0;
	}
	/* Loopback is not limited: a process on this host has other ways to load it, the limit is against floods
	 * from the network (and a local pool opening hundreds of connections at once must not be refused). */
	static const uint8_t v6_loopback[16] = {[15] = 1};
	static const uint8_t v4_mapped[12] = {[10] = 0xff, [11] = 0xff};
	if ((family == 4 && key[0] == 127) || (family == 6 && memcmp(key, v6_loopback, 16) == 0) ||
	    (family == 6 && memcmp(key, v4_mapped, 12) == 0 && key[12] == 127))
		return 0;
	uint32_t h = 2166136261u;
	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	struct sl_address_rate *slot = &sec->address_rates[h % SL_ADDRESS_RATES_MAX];
	int64_t now = sl_clock_mono_ns();
	if (slot->family != family || memcmp(slot->addr, key, 16) != 0) {
		slot->family = family;
		memcpy(slot->addr, key, 16);
		/* A new address may open a second's worth at once: the bucket is as if it had filled for a second. */
		sl_rate_init(&slot->rate, rate, rate, now - 1000000000);
	}
	if (sl_rate_take(&slot->rate, 1, now) > 0) {
		slot->rate.tokens += 1; /* a refused attempt costs nothing more: the bucket refills at its rate */
		sec->stats.connections_rate_limited++;
		return -EAGAIN;
	}
	return 0;
}

/* ---- authorization ---- */

static int session_allowed(struct sl_security *sec, struct sl_session_security *ss, enum sl_acl_resource r,
                           const char *name, enum sl_acl_op op)
{
	if (!sec->auth_enabled || ss->super_user)
		return 1;
	if (!ss->authenticated)
		return 0;
	for (int i = 0; i < SL_ACL_CACHE_ENTRIES; i++) {
		struct sl_acl_cache_entry *c = &ss->cache[i];
		if (c->generation == sec->acl_generation && c->resource == r && c->op == op &&
		    strcmp(c->name, name) == 0)
			return c->allowed;
	}
	int ok = sl_acls_allows(&sec->acls, ss->principal, r, name, op);
	if (strlen(name) <= SL_ACL_NAME_BYTES_MAX) {
		struct sl_acl_cache_entry *c = &ss->cache[ss->cache_next++ % SL_ACL_CACHE_ENTRIES];
		c->generation = sec->acl_generation;
		c->resource = r;
		c->op = op;
		c->allowed = ok;
		snprintf(c->name, sizeof(c->name), "%s", name);
	}
	return ok;
}

static int allowed(struct sl_req *req, enum sl_acl_resource r, const char *name, enum sl_acl_op op)
{
	return session_allowed(req->srv->security, &req->session->sec, r, name, op);
}

int sl_security_allows(struct sl_req *req, enum sl_acl_resource r, const char *name, enum sl_acl_op op)
{
	return allowed(req, r, name, op);
}

int sl_security_session_allows(struct sl_server *srv, struct sl_session *s, enum sl_acl_resource r, const char *name,
                               enum sl_acl_op op)
{
	return session_allowed(srv->security, &s->sec, r, name, op);
}

static Synclog__ErrorCode denied_code(enum sl_acl_resource r)
{
	return r == SL_ACL_TOPIC   ? SYNCLOG__ERROR_CODE__TOPIC_AUTHORIZATION_FAILED
	       : r == SL_ACL_GROUP ? SYNCLOG__ERROR_CODE__GROUP_AUTHORIZATION_FAILED
	                           : SYNCLOG__ERROR_CODE__CLUSTER_AUTHORIZATION_FAILED;
}

/* Rule 2: a log line, unless this second already had SL_DENIED_LOG_PER_S. */
static void denied_log(struct sl_req *req, const char *what)
{
	struct sl_security *sec = req->srv->security;
	int64_t now = sl_clock_mono_ms();
	sec->stats.denied++;
	if (now - sec->denied_window_ms >= 1000) {
		sec->denied_window_ms = now;
		sec->denied_in_window = 0;
	}
	if (sec->denied_in_window >= SL_DENIED_LOG_PER_S) {
		sec->stats.denied_unlogged++;
		return;
	}
	sec->denied_in_window++;
	struct sl_slog *e = sl_slog_begin(SL_SLOG_WARN, "access_denied");
	sl_slog_str(e, "principal", sl_security_principal(req->session, sec));
	sl_slog_str(e, "address", req->session->peer);
	sl_slog_str(e, "request", what);
	sl_slog_str(e, "msg", req->error_message);
	sl_slog_uint(e, "unlogged_before", sec->stats.denied_unlogged);
	sl_slog_end(e);
}

/* Check one resource; on refusal answer the request. Returns 1 when allowed. */
static int need(struct sl_req *req, enum sl_acl_resource r, const char *name, enum sl_acl_op op)
{
	if (allowed(req, r, name, op))
		return 1;
	const char *principal = req->session->sec.principal;
	if (r != SL_ACL_CLUSTER && op == SL_ACL_DESCRIBE)
		sl_req_fail(req, denied_code(r),
		            "principal '%s' may not see %s '%.200s': no ACL allows it (every %s operation includes "
		            "describe: an administrator can grant one with `synclog acl add --principal %s --%s %.200s "
		            "--op OP`)",
		            principal, sl_acl_resource_name(r), name, sl_acl_resource_name(r), principal,
		            sl_acl_resource_name(r), name);
	else if (r == SL_ACL_CLUSTER)
		sl_req_fail(req, denied_code(r),
		            "principal '%s' may not do that: it needs the cluster admin operation (an administrator "
		            "can grant it with `synclog acl add --principal %s --cluster --op admin`)",
		            principal, principal);
	else
		sl_req_fail(req, denied_code(r),
		            "principal '%s' may not %s %s '%.200s': no ACL allows it (an administrator can grant it "
		            "with `synclog acl add --principal %s --%s %.200s --op %s`)",
		            principal, sl_acl_op_name(op), sl_acl_resource_name(r), name, principal,
		            sl_acl_resource_name(r), name, sl_acl_op_name(op));
	denied_log(req, sl_acl_op_name(op));
	sl_req_respond(req);
	return 0;
}

static const char *or_empty(const char *s)
{
	return s ? s : "";
}

/* The audit action and target of an administrative request (rule 3), before it is checked or handled. */
static void audit_prepare(struct sl_req *req)
{
	const Synclog__Request *m = req->msg;
	enum sl_audit_action a;
	char *t = req->audit_target;
	size_t cap = sizeof(req->audit_target);
	switch (m->body_case) {
	case SYNCLOG__REQUEST__BODY_CREATE_TOPIC:
		a = SL_AUDIT_TOPIC_CREATE;
		snprintf(t, cap, "topic:%.200s",
		         m->create_topic->config ? or_empty(m->create_topic->config->name) : "");
		break;
	case SYNCLOG__REQUEST__BODY_DELETE_TOPIC:
		a = SL_AUDIT_TOPIC_DELETE;
		snprintf(t, cap, "topic:%.200s", or_empty(m->delete_topic->name));
		break;
	case SYNCLOG__REQUEST__BODY_ALTER_TOPIC:
		a = SL_AUDIT_TOPIC_ALTER;
		snprintf(t, cap, "topic:%.200s", or_empty(m->alter_topic->name));
		break;
	case SYNCLOG__REQUEST__BODY_COMPACT_TOPIC:
		a = SL_AUDIT_TOPIC_COMPACT;
		snprintf(t, cap, "topic:%.200s", or_empty(m->compact_topic->name));
		break;
	case SYNCLOG__REQUEST__BODY_OFFSET_COMMIT:
		if (or_empty(m->offset_commit->member_id)[0] != '\0')
			return; /* a member's commit is its work, not an administrator's */
		a = SL_AUDIT_OFFSETS_RESET;
		snprintf(t, cap, "group:%.200s", or_empty(m->offset_commit->group));
		break;
	case SYNCLOG__REQUEST__BODY_DELETE_GROUP:
		a = SL_AUDIT_GROUP_DELETE;
		snprintf(t, cap, "group:%.200s", or_empty(m->delete_group->group));
		break;
	case SYNCLOG__REQUEST__BODY_USER_UPSERT:
		a = SL_AUDIT_USER_ADD;
		snprintf(t, cap, "user:%.64s", or_empty(m->user_upsert->name));
		break;
	case SYNCLOG__REQUEST__BODY_USER_DELETE:
		a = SL_AUDIT_USER_DELETE;
		snprintf(t, cap, "user:%.64s", or_empty(m->user_delete->name));
		break;
	case SYNCLOG__REQUEST__BODY_ACL_ADD:
	case SYNCLOG__REQUEST__BODY_ACL_REMOVE: {
		const Synclog__Acl *acl =
		        m->body_case == SYNCLOG__REQUEST__BODY_ACL_ADD ? m->acl_add->acl : m->acl_remove->acl;
		a = m->body_case == SYNCLOG__REQUEST__BODY_ACL_ADD ? SL_AUDIT_ACL_ADD : SL_AUDIT_ACL_REMOVE;
		if (acl == NULL)
			snprintf(t, cap, "acl:");
		else
			snprintf(t, cap, "acl:%.64s/%.16s/%s/%.200s/%.16s", or_empty(acl->principal),
			         or_empty(acl->resource), acl->prefix ? "prefix" : "literal", or_empty(acl->name),
			         or_empty(acl->op));
		break;
	}
	default:
		return;
	}
	req->audit_action = (int)a + 1;
}

/* Every topic of a list needs op. */
static int need_topics(struct sl_req *req, char **topics, size_t n, enum sl_acl_op op)
{
	for (size_t i = 0; i < n; i++)
		if (!need(req, SL_ACL_TOPIC, or_empty(topics[i]), op))
			return 0;
	return 1;
}

int sl_security_check(struct sl_req *req)
{
	struct sl_security *sec = req->srv->security;
	struct sl_session_security *ss = &req->session->sec;
	const Synclog__Request *m = req->msg;
	audit_prepare(req);
	if (m->body_case == SYNCLOG__REQUEST__BODY_HELLO || m->body_case == SYNCLOG__REQUEST__BODY_AUTHENTICATE)
		return 0;
	if (!sec->auth_enabled || ss->super_user)
		return 0;
	if (!ss->authenticated) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__AUTHENTICATION_FAILED,
		            "this broker requires authentication: authenticate with SCRAM-SHA-256 first (synclog: "
		            "--user NAME and the password in SYNCLOG_PASSWORD or --password-file)");
		req->session->close_after_write = 1;
		denied_log(req, "unauthenticated");
		sl_req_respond(req);
		return -EACCES;
	}
	int ok = 1;
	switch (m->body_case) {
	case SYNCLOG__REQUEST__BODY_CREATE_TOPIC: {
		const char *name = m->create_topic->config ? or_empty(m->create_topic->config->name) : "";
		/* Creating takes cluster admin, or alter on the name: a team may own a prefix of topics. */
		if (!allowed(req, SL_ACL_CLUSTER, "", SL_ACL_ADMIN))
			ok = need(req, SL_ACL_TOPIC, name, SL_ACL_ALTER);
		break;
	}
	case SYNCLOG__REQUEST__BODY_DELETE_TOPIC:
		ok = need(req, SL_ACL_TOPIC, or_empty(m->delete_topic->name), SL_ACL_DELETE);
		break;
	case SYNCLOG__REQUEST__BODY_DESCRIBE_TOPIC:
		ok = need(req, SL_ACL_TOPIC, or_empty(m->describe_topic->name), SL_ACL_DESCRIBE);
		break;
	case SYNCLOG__REQUEST__BODY_ALTER_TOPIC:
		ok = need(req, SL_ACL_TOPIC, or_empty(m->alter_topic->name), SL_ACL_ALTER);
		break;
	case SYNCLOG__REQUEST__BODY_COMPACT_TOPIC:
		ok = need(req, SL_ACL_TOPIC, or_empty(m->compact_topic->name), SL_ACL_ALTER);
		break;
	case SYNCLOG__REQUEST__BODY_PRODUCE:
		ok = need(req, SL_ACL_TOPIC, or_empty(m->produce->topic), SL_ACL_PRODUCE);
		break;
	case SYNCLOG__REQUEST__BODY_FETCH:
		ok = need(req, SL_ACL_TOPIC, or_empty(m->fetch->topic), SL_ACL_CONSUME);
		break;
	case SYNCLOG__REQUEST__BODY_LIST_OFFSETS:
		ok = need(req, SL_ACL_TOPIC, or_empty(m->list_offsets->topic), SL_ACL_DESCRIBE);
		break;
	case SYNCLOG__REQUEST__BODY_JOIN_GROUP:
		ok = need(req, SL_ACL_GROUP, or_empty(m->join_group->group), SL_ACL_READ) &&
		     need_topics(req, m->join_group->topics, m->join_group->n_topics, SL_ACL_CONSUME);
		break;
	case SYNCLOG__REQUEST__BODY_HEARTBEAT:
		ok = need(req, SL_ACL_GROUP, or_empty(m->heartbeat->group), SL_ACL_READ);
		break;
	case SYNCLOG__REQUEST__BODY_LEAVE_GROUP:
		ok = need(req, SL_ACL_GROUP, or_empty(m->leave_group->group), SL_ACL_READ);
		break;
	case SYNCLOG__REQUEST__BODY_OFFSET_COMMIT: {
		const Synclog__OffsetCommitRequest *c = m->offset_commit;
		int member = or_empty(c->member_id)[0] != '\0';
		ok = need(req, SL_ACL_GROUP, or_empty(c->group), member ? SL_ACL_READ : SL_ACL_RESET);
		for (size_t i = 0; ok && member && i < c->n_topics; i++)
			ok = need(req, SL_ACL_TOPIC, or_empty(c->topics[i]->topic), SL_ACL_CONSUME);
		break;
	}
	case SYNCLOG__REQUEST__BODY_OFFSET_FETCH:
		ok = need(req, SL_ACL_GROUP, or_empty(m->offset_fetch->group), SL_ACL_DESCRIBE);
		break;
	case SYNCLOG__REQUEST__BODY_DESCRIBE_GROUP:
		ok = need(req, SL_ACL_GROUP, or_empty(m->describe_group->group), SL_ACL_DESCRIBE);
		break;
	case SYNCLOG__REQUEST__BODY_DELETE_GROUP:
		ok = need(req, SL_ACL_GROUP, or_empty(m->delete_group->group), SL_ACL_DELETE);
		break;
	case SYNCLOG__REQUEST__BODY_ALTER_GROUP:
		/* A group's health settings are an operator's, like its offsets. */
		ok = need(req, SL_ACL_GROUP, or_empty(m->alter_group->group), SL_ACL_RESET);
		break;
	case SYNCLOG__REQUEST__BODY_REPORT_RUN: {
		/* A backfill's report clears the lost state of the topic's groups: whoever may produce the backfill may
		 * say it is done. A reconcile's report only informs. */
		const Synclog__RunReport *run = m->report_run->run;
		const char *topic = run ? or_empty(run->topic) : "";
		int backfill = run && strcmp(or_empty(run->kind), "backfill") == 0;
		ok = need(req, SL_ACL_TOPIC, topic, backfill ? SL_ACL_PRODUCE : SL_ACL_DESCRIBE);
		break;
	}
	case SYNCLOG__REQUEST__BODY_USER_UPSERT:
	case SYNCLOG__REQUEST__BODY_USER_DELETE:
	case SYNCLOG__REQUEST__BODY_LIST_USERS:
	case SYNCLOG__REQUEST__BODY_ACL_ADD:
	case SYNCLOG__REQUEST__BODY_ACL_REMOVE:
	case SYNCLOG__REQUEST__BODY_LIST_ACLS:
		ok = need(req, SL_ACL_CLUSTER, "", SL_ACL_ADMIN);
		break;
	default:
		/* ListTopics, ListGroups and Status are filtered by describe in their handlers; InitProducer needs only
		 * an authenticated principal (its batches still need produce on their topic). */
		break;
	}
	return ok ? 0 : -EACCES;
}

/* ---- after the handler ---- */

static enum sl_audit_result result_of(Synclog__ErrorCode code)
{
	switch (code) {
	case SYNCLOG__ERROR_CODE__NONE:
		return SL_AUDIT_OK;
	case SYNCLOG__ERROR_CODE__AUTHENTICATION_FAILED:
	case SYNCLOG__ERROR_CODE__TOPIC_AUTHORIZATION_FAILED:
	case SYNCLOG__ERROR_CODE__GROUP_AUTHORIZATION_FAILED:
	case SYNCLOG__ERROR_CODE__CLUSTER_AUTHORIZATION_FAILED:
		return SL_AUDIT_DENIED;
	default:
		return SL_AUDIT_FAILED;
	}
}

/* Rule 4: bytes this answer moves for its principal, and the wait it owes. */
static void quota(struct sl_req *req)
{
	struct sl_security *sec = req->srv->security;
	const Synclog__Request *m = req->msg;
	uint64_t rate, bytes = 0;
	int produce = m->body_case == SYNCLOG__REQUEST__BODY_PRODUCE;
	if (produce) {
		rate = sec->cfg->produce_bytes_per_s;
		for (size_t i = 0; rate && i < m->produce->n_partitions; i++)
			bytes += m->produce->partitions[i]->batch.len;
	} else if (m->body_case == SYNCLOG__REQUEST__BODY_FETCH &&
	           req->resp.body_case == SYNCLOG__RESPONSE__BODY_FETCH && req->resp.fetch != NULL) {
		rate = sec->cfg->fetch_bytes_per_s;
		for (size_t i = 0; rate && i < req->resp.fetch->n_results; i++)
			bytes += req->resp.fetch->results[i]->records.len;
	} else {
		return;
	}
	if (rate == 0 || bytes == 0)
		return;
	struct sl_session_security *ss = &req->session->sec;
	struct sl_principal *p = ss->state;
	if (p == NULL)
		p = principal_get(sec, sl_security_principal(req->session, sec));
	if (p == NULL)
		return;
	int64_t now_ns = sl_clock_mono_ns();
	int64_t wait_ns = sl_rate_take(produce ? &p->produce : &p->fetch, (double)bytes, now_ns);
	if (wait_ns == 0)
		return;
	uint64_t wait_ms = ((uint64_t)wait_ns + 999999) / 1000000;
	if (wait_ms > SL_QUOTA_THROTTLE_MS_MAX)
		wait_ms = SL_QUOTA_THROTTLE_MS_MAX;
	req->resp.throttle_time_ms = (uint32_t)wait_ms;
	int64_t until = now_ns / 1000000 + (int64_t)wait_ms;
	if (until > ss->throttle_until_ms)
		ss->throttle_until_ms = until;
	if (produce)
		sec->stats.throttled_produce++;
	else
		sec->stats.throttled_fetch++;
	sec->stats.throttle_ms += wait_ms;
}

void sl_security_responded(struct sl_req *req)
{
	struct sl_security *sec = req->srv->security;
	if (sec == NULL || req->msg == NULL)
		return;
	if (req->audit_action > 0) {
		enum sl_audit_result r = result_of(req->resp.error);
		sl_audit_record(&sec->audit, (enum sl_audit_action)(req->audit_action - 1), r,
		                sl_security_principal(req->session, sec), req->session->peer, req->audit_target,
		                r == SL_AUDIT_OK ? NULL : req->error_message);
	}
	if (req->resp.error == SYNCLOG__ERROR_CODE__NONE)
		quota(req);
}
