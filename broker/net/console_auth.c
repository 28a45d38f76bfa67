/* Who is asking the console, when the broker requires authentication (--auth scram): HTTP Basic, checked against
 * the same SCRAM-SHA-256 users the native listener uses (proto/users.h). The console then asks the handlers as
 * that principal, so its pages show only what the principal may describe (broker/security.h).
 *
 * A password is checked by deriving its SCRAM key (PBKDF2, 4,096 iterations or more: milliseconds of CPU) on the
 * thread pool, never on the loop. A browser sends the same credentials with every request, so a checked pair is
 * remembered for CACHE_TTL_MS as a keyed digest (never the password), together with the user's stored key: a
 * changed password or a deleted user no longer matches. The cache is bounded (CACHE_ENTRIES, the oldest goes).
 *
 * Rules:
 *   1. Basic credentials travel only over TLS, or from a loopback address (the same machine); otherwise the
 *      console refuses before reading them (403) and says how to turn TLS on.
 *   2. No header, an unknown user or a wrong password: 401 with WWW-Authenticate, so the browser asks again; a
 *      failure is counted and audited like a failed SCRAM login (sl_security_auth_failed).
 *   3. An unknown user costs the same derivation as a known one (a made-up salt), so timing does not tell which
 *      names exist.
 *   4. Each derivation counts as a connection attempt of the source address (--connection-rate-max), and at
 *      most SL_LIMITS_METRICS_CONNECTIONS_MAX are in flight (one per open metrics connection).
 *
 * Which thread may call: the loop, except verify_work (the thread pool; it sees only its own copy). */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/net/console.h"
#include "broker/security.h"
#include "proto/base/base64.h"
#include "proto/base/clock.h"

/* A browser tab refreshing every 5 s reuses its entry; an hour-long idle tab checks its password again. */
#define CACHE_TTL_MS       (5 * 60 * 1000)
/* Operators with a console open at once; more evict the oldest (they pay one more derivation). */
#define CACHE_ENTRIES      64
#define PASSWORD_BYTES_MAX 1024

struct cache_entry {
	char user[SL_USER_NAME_BYTES_MAX + 1]; /* "" : empty */
	uint8_t digest[32];                    /* HMAC-SHA-256(key, user NUL password) */
	uint8_t stored_key[SL_SCRAM_KEY_BYTES];
	int64_t expires_ms;
};

struct sl_console_auth {
	uint8_t key[32];
	struct cache_entry cache[CACHE_ENTRIES];
};

struct sl_console_auth *sl_console_auth_new(void)
{
	struct sl_console_auth *a = calloc(1, sizeof(*a));
	if (a != NULL && RAND_bytes(a->key, sizeof(a->key)) != 1) {
		free(a);
		return NULL;
	}
	return a;
}

void sl_console_auth_free(struct sl_console_auth *a)
{
	if (a != NULL)
		OPENSSL_cleanse(a, sizeof(*a));
	free(a);
}

static void digest_of(const struct sl_console_auth *a, const char *user, const char *password, uint8_t out[32])
{
	uint8_t msg[SL_USER_NAME_BYTES_MAX + 1 + PASSWORD_BYTES_MAX + 1];
	size_t u = strlen(user), p = strlen(password);
	memcpy(msg, user, u + 1);
	memcpy(msg + u + 1, password, p);
	unsigned len = 32;
	HMAC(EVP_sha256(), a->key, sizeof(a->key), msg, u + 1 + p, out, &len);
	OPENSSL_cleanse(msg, sizeof(msg));
}

/* A checked pair still valid for the user as the users file has it now. */
static int cache_hit(struct sl_console_auth *a, const struct sl_user *u, const uint8_t digest[32], int64_t now_ms)
{
	for (int i = 0; i < CACHE_ENTRIES; i++) {
		struct cache_entry *e = &a->cache[i];
		if (e->user[0] != '\0' && e->expires_ms > now_ms && strcmp(e->user, u->name) == 0 &&
		    CRYPTO_memcmp(e->digest, digest, 32) == 0 &&
		    CRYPTO_memcmp(e->stored_key, u->verifier.stored_key, SL_SCRAM_KEY_BYTES) == 0)
			return 1;
	}
	return 0;
}

static void cache_put(struct sl_console_auth *a, const char *user, const uint8_t digest[32],
                      const uint8_t stored_key[SL_SCRAM_KEY_BYTES], int64_t now_ms)
{
	struct cache_entry *e = &a->cache[0];
	for (int i = 0; i < CACHE_ENTRIES; i++) {
		if (a->cache[i].expires_ms < e->expires_ms)
			e = &a->cache[i];
		if (a->cache[i].user[0] == '\0' || a->cache[i].expires_ms <= now_ms) {
			e = &a->cache[i];
			break;
		}
	}
	snprintf(e->user, sizeof(e->user), "%s", user);
	memcpy(e->digest, digest, 32);
	memcpy(e->stored_key, stored_key, SL_SCRAM_KEY_BYTES);
	e->expires_ms = now_ms + CACHE_TTL_MS;
}

/* The credentials of an "Authorization: Basic ..." header of request: 0, or -ENOENT (no such header) or -EINVAL
 * (malformed, or a part too long). */
static int basic_credentials(const char *request, char *user, size_t user_cap, char *password, size_t password_cap)
{
	const char *line = strstr(request, "\n");
	while (line != NULL) {
		line++;
		if (strncasecmp(line, "Authorization:", 14) == 0)
			break;
		line = strstr(line, "\n");
	}
	if (line == NULL)
		return -ENOENT;
	const char *v = line + 14;
	while (*v == ' ' || *v == '\t')
		v++;
	if (strncasecmp(v, "Basic ", 6) != 0)
		return -EINVAL;
	v += 6;
	while (*v == ' ')
		v++;
	size_t n = strcspn(v, "\r\n ");
	uint8_t decoded[SL_USER_NAME_BYTES_MAX + 1 + PASSWORD_BYTES_MAX + 1];
	int len = n > 0 && n < 2 * sizeof(decoded) ? sl_base64_decode(v, n, decoded, sizeof(decoded) - 1) : -EINVAL;
	if (len < 0)
		return -EINVAL;
	decoded[len] = '\0';
	const char *colon = memchr(decoded, ':', (size_t)len);
	size_t ulen = colon ? (size_t)(colon - (const char *)decoded) : 0;
	size_t plen = colon ? (size_t)len - ulen - 1 : 0;
	int rc = 0;
	if (colon == NULL || ulen == 0 || ulen >= user_cap || plen >= password_cap ||
	    memchr(decoded, '\0', (size_t)len))
		rc = -EINVAL;
	if (rc == 0) {
		memcpy(user, decoded, ulen);
		user[ulen] = '\0';
		memcpy(password, colon + 1, plen);
		password[plen] = '\0';
	}
	OPENSSL_cleanse(decoded, sizeof(decoded));
	return rc;
}

/* Rule 2: counted and audited as a failed login of user from the client's address. */
static void failed(struct sl_server *srv, const struct sl_console_client *client, const char *user, const char *why)
{
	struct sl_session s = {0};
	snprintf(s.peer, sizeof(s.peer), "%s", client->peer);
	sl_security_auth_failed(srv, &s, user, why);
}

struct verify {
	uv_work_t work;
	struct sl_server *srv;
	struct sl_console_client client;
	struct sl_console_verdict verdict;
	sl_console_auth_cb cb;
	void *arg;
	char password[PASSWORD_BYTES_MAX + 1];
	uint8_t digest[32];
	struct sl_scram_verifier stored; /* the user's, or a made-up one (rule 3) */
	int known;
	int ok;
};

static void verify_work(uv_work_t *w)
{
	struct verify *v = w->data;
	struct sl_scram_verifier got;
	v->ok = sl_scram_verifier_make(v->password, strlen(v->password), v->stored.salt, v->stored.salt_bytes,
	                               v->stored.iterations, &got) == 0 &&
	        v->known && CRYPTO_memcmp(got.stored_key, v->stored.stored_key, SL_SCRAM_KEY_BYTES) == 0;
	OPENSSL_cleanse(&got, sizeof(got));
}

static void verify_after(uv_work_t *w, int status)
{
	struct verify *v = w->data;
	struct sl_console_auth *a = sl_console_auth_state(v->srv);
	(void)status;
	if (v->ok && a != NULL)
		cache_put(a, v->verdict.principal, v->digest, v->stored.stored_key, sl_clock_mono_ns() / 1000000);
	if (!v->ok) {
		v->verdict.status = 401;
		snprintf(v->verdict.why, sizeof(v->verdict.why), "wrong password or unknown user");
		failed(v->srv, &v->client, v->verdict.principal, "console: wrong password or unknown user");
	}
	OPENSSL_cleanse(v->password, sizeof(v->password));
	v->cb(v->arg, &v->verdict);
	free(v);
}

void sl_console_authenticate(struct sl_server *srv, const char *request, const struct sl_console_client *client,
                             sl_console_auth_cb cb, void *arg)
{
	struct sl_console_verdict verdict = {0};
	struct sl_console_auth *a = sl_console_auth_state(srv);
	if (srv->security == NULL || !srv->security->auth_enabled) {
		cb(arg, &verdict); /* status 0: go on, as nobody in particular */
		return;
	}
	if (!client->tls && !client->loopback) {
		verdict.status = 403;
		snprintf(verdict.why, sizeof(verdict.why),
		         "the console takes passwords only over TLS: start synclogd with --tls-cert and --tls-key and "
		         "open https://, or use it from the broker's machine");
		cb(arg, &verdict);
		return;
	}
	char password[PASSWORD_BYTES_MAX + 1];
	int rc = basic_credentials(request, verdict.principal, sizeof(verdict.principal), password, sizeof(password));
	if (rc < 0 || a == NULL) {
		verdict.status = a == NULL ? 500 : 401;
		snprintf(verdict.why, sizeof(verdict.why), "%s",
		         rc == -ENOENT ? "this broker requires authentication: sign in with a synclog user"
		         : rc < 0      ? "the Authorization header is not Basic base64(user:password)"
		                       : "out of memory");
		if (rc == -EINVAL)
			failed(srv, client, "", "console: malformed Basic credentials");
		OPENSSL_cleanse(password, sizeof(password));
		cb(arg, &verdict);
		return;
	}
	const struct sl_user *u = sl_users_find(&srv->security->users, verdict.principal);
	uint8_t digest[32];
	digest_of(a, verdict.principal, password, digest);
	if (u != NULL && cache_hit(a, u, digest, sl_clock_mono_ns() / 1000000)) {
		OPENSSL_cleanse(password, sizeof(password));
		cb(arg, &verdict);
		return;
	}
	/* A password to derive: the connection attempts of the source address pay for it (--connection-rate-max;
	 * loopback is never limited), so guessing through the console is no cheaper than through the listener. */
	if (sl_security_connection_allowed(srv, client->addr.ss_family ? (const struct sockaddr *)&client->addr
	                                                               : NULL) < 0) {
		OPENSSL_cleanse(password, sizeof(password));
		verdict.status = 503;
		snprintf(verdict.why, sizeof(verdict.why),
		         "too many sign-in attempts from this address (--connection-rate-max): try again in a second");
		cb(arg, &verdict);
		return;
	}
	struct verify *v = calloc(1, sizeof(*v));
	if (v == NULL) {
		OPENSSL_cleanse(password, sizeof(password));
		verdict.status = 500;
		snprintf(verdict.why, sizeof(verdict.why), "out of memory");
		cb(arg, &verdict);
		return;
	}
	v->srv = srv;
	v->client = *client;
	v->verdict = verdict;
	v->cb = cb;
	v->arg = arg;
	memcpy(v->password, password, sizeof(v->password));
	OPENSSL_cleanse(password, sizeof(password));
	memcpy(v->digest, digest, sizeof(digest));
	v->known = u != NULL;
	if (u != NULL) {
		v->stored = u->verifier;
	} else {
		/* Rule 3: the derivation an unknown user would cost, with a salt made from the name. */
		v->stored.iterations = SL_SCRAM_ITERATIONS_MIN;
		v->stored.salt_bytes = 16;
		memcpy(v->stored.salt, digest, 16);
	}
	v->work.data = v;
	if (uv_queue_work(&srv->loop, &v->work, verify_work, verify_after) != 0) {
		verify_work(&v->work);
		verify_after(&v->work, 0);
	}
}
