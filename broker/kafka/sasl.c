/* SASL on the Kafka listener (KIP-43, KIP-152): SaslHandshake picks the mechanism, then the mechanism's tokens
 * travel in SaslAuthenticate requests (handshake v1: kcat, librdkafka, the Java client since 1.0) or, after
 * handshake v0, as bare frames of their own (kafka-python 2.0, older Java clients), so Kafka clients authenticate
 * with their usual settings (security.protocol=SASL_SSL, sasl.mechanisms=SCRAM-SHA-256 or PLAIN, user, password).
 *
 *   SaslHandshake v0/v1(mechanism) -> error 0 and the mechanisms, or UNSUPPORTED_SASL_MECHANISM (33)
 *   SCRAM-SHA-256: SaslAuthenticate(client-first) -> server-first; SaslAuthenticate(client-final) -> server-final
 *   PLAIN:         SaslAuthenticate(authzid NUL user NUL password) -> empty
 *   a failure: SASL_AUTHENTICATION_FAILED (58) with a message, and the connection closes after the answer
 *
 * After handshake v0 each token is a frame of its own: offset 0, 4 bytes, big-endian size N; offset 4, N bytes,
 * the token; no request header, no correlation id. The answer is the next token framed the same way (N = 0 for
 * PLAIN's empty one). A failure has no way to be told: the connection is closed, with the reason in the log, as
 * Kafka does.
 *
 * Rules:
 *   1. PLAIN sends the password itself, so it is offered only on a TLS connection.
 *   2. Both check against the same users file as the native protocol (proto/users.h): PLAIN derives the
 *      password's verifier with the user's salt and iterations (4096 rounds of PBKDF2, a millisecond or two of the
 *      loop's time per login) and compares it in constant time; SCRAM is proto/scram.h's exchange.
 *   3. SaslAuthenticate without a handshake, or after the exchange ended, is ILLEGAL_SASL_STATE (34) and closes
 *      the connection. Until it has authenticated, a connection to a broker with authentication on may send only
 *      ApiVersions, SaslHandshake and SaslAuthenticate (conn.c closes it otherwise, as Kafka does). */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "broker/kafka/kafka_impl.h"
#include "proto/base/slog.h"

#define MECH_PLAIN "PLAIN"

void sl_kafka_sasl_handshake(struct sl_kafka_req *kr)
{
	struct sl_kafka_conn *c = kr->conn;
	const char *mech = kr->rq.u.sasl_handshake.mechanism;
	int tls = sl_kafka_conn_tls(c);
	int16_t err = SL_KERR_NONE;
	if (strcmp(mech, SL_SCRAM_MECHANISM) == 0) {
		sl_kafka_conn_sasl_set(c, SL_KAFKA_SASL_SCRAM);
	} else if (strcmp(mech, MECH_PLAIN) == 0 && tls) {
		sl_kafka_conn_sasl_set(c, SL_KAFKA_SASL_PLAIN);
	} else {
		err = SL_KERR_UNSUPPORTED_SASL_MECHANISM;
		sl_kafka_log(kr, "SASL mechanism '%.64s' not offered (SCRAM-SHA-256%s)", mech,
		             tls ? ", PLAIN" : "; PLAIN only over TLS");
	}
	if (err == SL_KERR_NONE && kr->rq.api_version == 0)
		sl_kafka_conn_sasl_unframed_set(c); /* the tokens come as bare frames */
	struct sl_kwrite *w = &kr->head;
	sl_kafka_head_begin(kr, 0);
	sl_kwrite_i16(w, err);
	sl_kwrite_i32(w, tls ? 2 : 1);
	sl_kwrite_str(w, SL_SCRAM_MECHANISM);
	if (tls)
		sl_kwrite_str(w, MECH_PLAIN);
	sl_kafka_req_answer(kr);
}

/* The token after SaslHandshake v0: only its size before it; a failure closes the connection (sasl.c header). */
static void unframed_answer(struct sl_kafka_req *kr, int16_t err, const char *msg, const void *bytes, size_t len)
{
	if (err != SL_KERR_NONE) {
		sl_kafka_log(kr, "%s (SASL after SaslHandshake v0, which has no error answer): closing the connection",
		             msg ? msg : "refused");
		sl_kafka_req_close_conn(kr);
		return;
	}
	sl_kwrite_i32(&kr->head, 0); /* size, patched when written */
	sl_kwrite_bytes(&kr->head, bytes, len);
	sl_kafka_req_answer(kr);
}

static void authenticate_answer(struct sl_kafka_req *kr, int16_t err, const char *msg, const void *bytes, size_t len)
{
	if (kr->sasl_unframed) {
		unframed_answer(kr, err, msg, bytes, len);
		return;
	}
	struct sl_kwrite *w = &kr->head;
	sl_kafka_head_begin(kr, 0);
	sl_kwrite_i16(w, err);
	sl_kwrite_str(w, msg);
	sl_kwrite_blob(w, bytes, (int32_t)len);
	if (kr->rq.api_version >= 1)
		sl_kwrite_i64(w, 0); /* session_lifetime_ms: no re-authentication asked */
	if (err != SL_KERR_NONE)
		sl_kafka_req_close_after(kr);
	sl_kafka_req_answer(kr);
}

static void refuse(struct sl_kafka_req *kr, const char *user, const char *why, const void *bytes, size_t len)
{
	struct sl_session *s = sl_kafka_conn_session(kr->conn);
	char msg[320];
	sl_security_auth_failed(kr->srv, s, user, why);
	snprintf(msg, sizeof(msg), "authentication of user '%.64s' failed: %s", user, why);
	sl_kafka_conn_sasl_set(kr->conn, SL_KAFKA_SASL_DONE);
	authenticate_answer(kr, SL_KERR_SASL_AUTHENTICATION_FAILED, msg, bytes, len);
}

/* The exchange ended well: the connection is user's (security.h). */
static void authenticated(struct sl_kafka_req *kr, const char *user, const char *mechanism, const void *bytes,
                          size_t len)
{
	struct sl_session *s = sl_kafka_conn_session(kr->conn);
	char err[256];
	if (sl_security_session_authenticated(kr->srv, s, user, mechanism, err, sizeof(err)) < 0) {
		refuse(kr, user, err, NULL, 0);
		return;
	}
	sl_kafka_conn_sasl_set(kr->conn, SL_KAFKA_SASL_DONE);
	authenticate_answer(kr, SL_KERR_NONE, NULL, bytes, len);
}

static void scram_step(struct sl_kafka_req *kr, const uint8_t *in, size_t in_len)
{
	struct sl_security *sec = kr->srv->security;
	struct sl_session *s = sl_kafka_conn_session(kr->conn);
	char out[SL_SCRAM_MESSAGE_BYTES_MAX];
	const char *why = "";
	size_t n = 0;
	if (s->sec.scram == NULL) {
		s->sec.scram = calloc(1, sizeof(*s->sec.scram));
		if (s->sec.scram == NULL) {
			refuse(kr, "", "out of memory", NULL, 0);
			return;
		}
		if (sl_scram_server_start(s->sec.scram, (const char *)in, in_len, &why) < 0) {
			refuse(kr, s->sec.scram->user, why, NULL, 0);
			return;
		}
		const struct sl_user *u = sl_users_find(&sec->users, s->sec.scram->user);
		if (sl_scram_server_first(s->sec.scram, u ? &u->verifier : NULL, sec->fake_key, NULL, out, sizeof(out),
		                          &n) < 0) {
			refuse(kr, s->sec.scram->user, "the broker could not compute its answer", NULL, 0);
			return;
		}
		authenticate_answer(kr, SL_KERR_NONE, NULL, out, n);
		return;
	}
	char user[SL_SCRAM_USER_BYTES_MAX + 1];
	snprintf(user, sizeof(user), "%s", s->sec.scram->user);
	int rc = sl_scram_server_final(s->sec.scram, (const char *)in, in_len, out, sizeof(out), &n, &why);
	OPENSSL_cleanse(s->sec.scram, sizeof(*s->sec.scram));
	free(s->sec.scram);
	s->sec.scram = NULL;
	if (rc < 0) {
		refuse(kr, user, rc == -EACCES ? "wrong password or unknown user" : why, out, n);
		return;
	}
	authenticated(kr, user, SL_SCRAM_MECHANISM, out, n);
}

/* PLAIN (RFC 4616): [authzid] NUL authcid NUL passwd. */
static void plain(struct sl_kafka_req *kr, const uint8_t *in, size_t len)
{
	struct sl_security *sec = kr->srv->security;
	const uint8_t *nul1 = memchr(in, 0, len);
	const uint8_t *nul2 = nul1 ? memchr(nul1 + 1, 0, len - (size_t)(nul1 + 1 - in)) : NULL;
	char user[SL_USER_NAME_BYTES_MAX + 1], authzid[SL_USER_NAME_BYTES_MAX + 1];
	if (nul2 == NULL || (size_t)(nul2 - nul1 - 1) > SL_USER_NAME_BYTES_MAX ||
	    (size_t)(nul1 - in) > SL_USER_NAME_BYTES_MAX || memchr(nul2 + 1, 0, len - (size_t)(nul2 + 1 - in))) {
		refuse(kr, "", "malformed PLAIN message", NULL, 0);
		return;
	}
	memcpy(authzid, in, (size_t)(nul1 - in));
	authzid[nul1 - in] = '\0';
	memcpy(user, nul1 + 1, (size_t)(nul2 - nul1 - 1));
	user[nul2 - nul1 - 1] = '\0';
	if (authzid[0] != '\0' && strcmp(authzid, user) != 0) {
		refuse(kr, user, "the authorization identity must be the user itself", NULL, 0);
		return;
	}
	const uint8_t *password = nul2 + 1;
	size_t password_len = len - (size_t)(password - in);
	const struct sl_user *u = sl_users_find(&sec->users, user);
	struct sl_scram_verifier v;
	int match = 0;
	/* An unknown user costs the same work as a known one, so the time taken tells nothing. */
	const uint8_t *salt = u ? u->verifier.salt : sec->fake_key;
	size_t salt_bytes = u ? u->verifier.salt_bytes : SL_SCRAM_SALT_BYTES_DEFAULT;
	uint32_t iterations = u ? u->verifier.iterations : SL_SCRAM_ITERATIONS_DEFAULT;
	if (sl_scram_verifier_make(password, password_len, salt, salt_bytes, iterations, &v) == 0 && u != NULL)
		match = CRYPTO_memcmp(v.stored_key, u->verifier.stored_key, SL_SCRAM_KEY_BYTES) == 0;
	OPENSSL_cleanse(&v, sizeof(v));
	if (!match) {
		refuse(kr, user, "wrong password or unknown user", NULL, 0);
		return;
	}
	authenticated(kr, user, MECH_PLAIN, NULL, 0);
}

void sl_kafka_sasl_authenticate(struct sl_kafka_req *kr)
{
	const struct sl_kafka_bytes *b = &kr->rq.u.sasl_authenticate.auth_bytes;
	size_t len = b->len > 0 ? (size_t)b->len : 0;
	switch (sl_kafka_conn_sasl(kr->conn)) {
	case SL_KAFKA_SASL_SCRAM:
		scram_step(kr, b->data, len);
		return;
	case SL_KAFKA_SASL_PLAIN:
		plain(kr, b->data, len);
		return;
	default:
		sl_kafka_log(kr, "SaslAuthenticate without a SaslHandshake, or after the exchange ended");
		sl_kafka_conn_sasl_set(kr->conn, SL_KAFKA_SASL_DONE);
		authenticate_answer(kr, SL_KERR_ILLEGAL_SASL_STATE,
		                    "send SaslHandshake (v1) first, and authenticate once per connection", NULL, 0);
	}
}
