/* SCRAM-SHA-256 messages and proofs; see scram.h for the exchange and the choices. The hashing is OpenSSL's
 * (PKCS5_PBKDF2_HMAC, HMAC, SHA256); comparisons of secrets are constant-time (CRYPTO_memcmp). */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "proto/base/assert.h"
#include "proto/base/base64.h"
#include "proto/scram.h"

_Static_assert(SHA256_DIGEST_LENGTH == SL_SCRAM_KEY_BYTES, "SCRAM-SHA-256 keys are SHA-256 digests");
_Static_assert(SL_SCRAM_ITERATIONS_MIN == 4096, "RFC 7677's minimum iteration count");

/* Random bytes for a nonce: base64 of 18 bytes is 24 characters with no padding, all printable and none a comma. */
#define NONCE_RANDOM_BYTES 18

/* ---- crypto ---- */

static int hmac(const uint8_t *key, size_t key_bytes, const void *data, size_t len, uint8_t out[SL_SCRAM_KEY_BYTES])
{
	unsigned int n = 0;
	if (HMAC(EVP_sha256(), key, (int)key_bytes, data, len, out, &n) == NULL || n != SL_SCRAM_KEY_BYTES)
		return -EIO;
	return 0;
}

static int salted_password(const void *password, size_t password_bytes, const uint8_t *salt, size_t salt_bytes,
                           uint32_t iterations, uint8_t out[SL_SCRAM_KEY_BYTES])
{
	if (PKCS5_PBKDF2_HMAC(password_bytes ? password : "", (int)password_bytes, salt, (int)salt_bytes,
	                      (int)iterations, EVP_sha256(), SL_SCRAM_KEY_BYTES, out) != 1)
		return -EIO;
	return 0;
}

static int keys_of(const uint8_t salted[SL_SCRAM_KEY_BYTES], uint8_t client_key[SL_SCRAM_KEY_BYTES],
                   uint8_t stored_key[SL_SCRAM_KEY_BYTES], uint8_t server_key[SL_SCRAM_KEY_BYTES])
{
	if (hmac(salted, SL_SCRAM_KEY_BYTES, "Client Key", 10, client_key) < 0 ||
	    hmac(salted, SL_SCRAM_KEY_BYTES, "Server Key", 10, server_key) < 0)
		return -EIO;
	SHA256(client_key, SL_SCRAM_KEY_BYTES, stored_key);
	return 0;
}

int sl_scram_verifier_make(const void *password, size_t password_bytes, const uint8_t *salt, size_t salt_bytes,
                           uint32_t iterations, struct sl_scram_verifier *out)
{
	uint8_t salted[SL_SCRAM_KEY_BYTES], client_key[SL_SCRAM_KEY_BYTES];
	if (iterations < SL_SCRAM_ITERATIONS_MIN || iterations > SL_SCRAM_ITERATIONS_MAX || salt_bytes == 0 ||
	    salt_bytes > SL_SCRAM_SALT_BYTES_MAX)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->iterations = iterations;
	out->salt_bytes = (uint32_t)salt_bytes;
	memcpy(out->salt, salt, salt_bytes);
	int rc = salted_password(password, password_bytes, salt, salt_bytes, iterations, salted);
	if (rc == 0)
		rc = keys_of(salted, client_key, out->stored_key, out->server_key);
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(client_key, sizeof(client_key));
	return rc;
}

int sl_scram_verifier_new(const void *password, size_t password_bytes, uint32_t iterations,
                          struct sl_scram_verifier *out)
{
	uint8_t salt[SL_SCRAM_SALT_BYTES_DEFAULT];
	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return -EIO;
	return sl_scram_verifier_make(password, password_bytes, salt, sizeof(salt), iterations, out);
}

static int nonce_random(char *out, size_t cap)
{
	uint8_t raw[NONCE_RANDOM_BYTES];
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -EIO;
	return sl_base64_encode(raw, sizeof(raw), out, cap) < 0 ? -EIO : 0;
}

/* ---- parsing ----
 *
 * A message is attributes separated by commas, each a key, '=', and a value that holds no comma. */

struct cursor {
	const char *p;
	size_t len, at;
};

/* The next attribute: *key (1 or more letters) and its value. 0, or -1 at the end or on a malformed one. */
static int attr_next(struct cursor *c, struct sl_scram_text *key, struct sl_scram_text *value)
{
	if (c->at >= c->len)
		return -1;
	size_t k = c->at;
	while (k < c->len && ((c->p[k] >= 'a' && c->p[k] <= 'z') || (c->p[k] >= 'A' && c->p[k] <= 'Z')))
		k++;
	if (k == c->at || k >= c->len || c->p[k] != '=')
		return -1;
	key->p = c->p + c->at;
	key->len = k - c->at;
	const char *comma = memchr(c->p + k + 1, ',', c->len - k - 1);
	size_t end = comma ? (size_t)(comma - c->p) : c->len;
	value->p = c->p + k + 1;
	value->len = end - k - 1;
	/* A comma must be followed by another attribute. */
	if (comma != NULL && end + 1 >= c->len)
		return -1;
	c->at = comma ? end + 1 : c->len;
	return 0;
}

static int key_is(const struct sl_scram_text *key, char k)
{
	return key->len == 1 && key->p[0] == k;
}

static int message_ok(const char *msg, size_t len, const char **why)
{
	if (len == 0 || len > SL_SCRAM_MESSAGE_BYTES_MAX) {
		*why = "message empty or longer than 1024 bytes";
		return 0;
	}
	if (memchr(msg, '\0', len) != NULL) {
		*why = "message holds a NUL byte";
		return 0;
	}
	return 1;
}

/* A nonce: printable ASCII but ',' (RFC 5802's printable). */
static int nonce_ok(const struct sl_scram_text *n)
{
	if (n->len == 0 || n->len > SL_SCRAM_NONCE_BYTES_MAX)
		return 0;
	for (size_t i = 0; i < n->len; i++)
		if (n->p[i] < 0x21 || n->p[i] > 0x7e || n->p[i] == ',')
			return 0;
	return 1;
}

/* saslname -> its text: "=2C" is ',' and "=3D" is '='; any other '=' is malformed. */
static int saslname_decode(const struct sl_scram_text *v, char *out, size_t cap)
{
	size_t o = 0;
	if (v->len == 0)
		return -1;
	for (size_t i = 0; i < v->len; i++) {
		char ch = v->p[i];
		if (ch == '=') {
			if (i + 2 >= v->len)
				return -1;
			if (v->p[i + 1] == '2' && v->p[i + 2] == 'C')
				ch = ',';
			else if (v->p[i + 1] == '3' && v->p[i + 2] == 'D')
				ch = '=';
			else
				return -1;
			i += 2;
		}
		if (o + 1 >= cap)
			return -1;
		out[o++] = ch;
	}
	out[o] = '\0';
	return 0;
}

static int fail(const char **why, const char *reason)
{
	*why = reason;
	return -EBADMSG;
}

/* The extensions after the standard attributes: key=value pairs we do not act on. An "m=" is a mandatory
 * extension by definition (RFC 5802 5.1), and one we do not know, so it is refused where it may appear. */
static int extensions_ok(struct cursor *c)
{
	struct sl_scram_text k, v;
	while (c->at < c->len)
		if (attr_next(c, &k, &v) < 0)
			return 0;
	return 1;
}

int sl_scram_parse_client_first(const char *msg, size_t len, struct sl_scram_client_first *out, const char **why)
{
	memset(out, 0, sizeof(*out));
	if (!message_ok(msg, len, why))
		return -EBADMSG;
	/* gs2-header: cbind flag, ',', optional a=authzid, ','. */
	if (msg[0] == 'p')
		return fail(why, "channel binding (p=) is not supported: use SCRAM-SHA-256, not -PLUS");
	if ((msg[0] != 'n' && msg[0] != 'y') || len < 3 || msg[1] != ',')
		return fail(why, "client-first must start with n, or y,");
	const char *second = memchr(msg + 2, ',', len - 2);
	if (second == NULL)
		return fail(why, "client-first has no gs2 header");
	struct sl_scram_text authzid = {msg + 2, (size_t)(second - msg) - 2};
	if (authzid.len > 0 && (authzid.len < 3 || authzid.p[0] != 'a' || authzid.p[1] != '='))
		return fail(why, "malformed authorization identity in the gs2 header");
	out->gs2_header.p = msg;
	out->gs2_header.len = (size_t)(second - msg) + 1;
	out->bare.p = second + 1;
	out->bare.len = len - out->gs2_header.len;
	struct cursor c = {out->bare.p, out->bare.len, 0};
	struct sl_scram_text k, v;
	if (attr_next(&c, &k, &v) < 0)
		return fail(why, "client-first has no user name");
	if (key_is(&k, 'm'))
		return fail(why, "mandatory extension (m=) not supported");
	if (!key_is(&k, 'n') || saslname_decode(&v, out->user, sizeof(out->user)) < 0)
		return fail(why, "client-first must name the user (n=) in 1 to 255 bytes");
	if (attr_next(&c, &k, &v) < 0 || !key_is(&k, 'r') || !nonce_ok(&v))
		return fail(why, "client-first must carry a nonce (r=) of printable characters");
	out->nonce = v;
	if (!extensions_ok(&c))
		return fail(why, "malformed extension in client-first");
	if (authzid.len > 0) {
		char az[SL_SCRAM_USER_BYTES_MAX + 1];
		struct sl_scram_text azv = {authzid.p + 2, authzid.len - 2};
		if (saslname_decode(&azv, az, sizeof(az)) < 0 || strcmp(az, out->user) != 0)
			return fail(why, "the authorization identity (a=) must be the user itself");
	}
	return 0;
}

static int digits_u32(const struct sl_scram_text *v, uint32_t *out)
{
	uint64_t n = 0;
	if (v->len == 0 || v->len > 10)
		return -1;
	for (size_t i = 0; i < v->len; i++) {
		if (v->p[i] < '0' || v->p[i] > '9')
			return -1;
		n = n * 10 + (uint64_t)(v->p[i] - '0');
	}
	if (n > UINT32_MAX)
		return -1;
	*out = (uint32_t)n;
	return 0;
}

int sl_scram_parse_server_first(const char *msg, size_t len, struct sl_scram_server_first *out, const char **why)
{
	memset(out, 0, sizeof(*out));
	if (!message_ok(msg, len, why))
		return -EBADMSG;
	struct cursor c = {msg, len, 0};
	struct sl_scram_text k, v;
	if (attr_next(&c, &k, &v) < 0 || !key_is(&k, 'r') || !nonce_ok(&v))
		return fail(why, "server-first must start with the nonce (r=)");
	out->nonce = v;
	if (attr_next(&c, &k, &v) < 0 || !key_is(&k, 's'))
		return fail(why, "server-first must carry the salt (s=)");
	int n = sl_base64_decode(v.p, v.len, out->salt, sizeof(out->salt));
	if (n <= 0)
		return fail(why, "server-first salt is not base64 of 1 to 64 bytes");
	out->salt_bytes = (uint32_t)n;
	if (attr_next(&c, &k, &v) < 0 || !key_is(&k, 'i') || digits_u32(&v, &out->iterations) < 0)
		return fail(why, "server-first must carry the iteration count (i=)");
	if (!extensions_ok(&c))
		return fail(why, "malformed extension in server-first");
	return 0;
}

int sl_scram_parse_client_final(const char *msg, size_t len, struct sl_scram_client_final *out, const char **why)
{
	memset(out, 0, sizeof(*out));
	if (!message_ok(msg, len, why))
		return -EBADMSG;
	struct cursor c = {msg, len, 0};
	struct sl_scram_text k, v;
	if (attr_next(&c, &k, &v) < 0 || !key_is(&k, 'c'))
		return fail(why, "client-final must start with the channel binding (c=)");
	int n = sl_base64_decode(v.p, v.len, out->channel_binding, sizeof(out->channel_binding));
	if (n <= 0)
		return fail(why, "client-final channel binding is not base64");
	out->channel_binding_bytes = (uint32_t)n;
	if (attr_next(&c, &k, &v) < 0 || !key_is(&k, 'r') || !nonce_ok(&v))
		return fail(why, "client-final must carry the nonce (r=)");
	out->nonce = v;
	/* Extensions, then the proof, which is last. */
	for (;;) {
		size_t start = c.at;
		if (attr_next(&c, &k, &v) < 0)
			return fail(why, "client-final must end with the proof (p=)");
		if (key_is(&k, 'p')) {
			if (c.at != c.len)
				return fail(why, "the proof (p=) must be the last attribute of client-final");
			if (sl_base64_decode(v.p, v.len, out->proof, sizeof(out->proof)) != SL_SCRAM_KEY_BYTES)
				return fail(why, "client-final proof is not base64 of 32 bytes");
			out->without_proof.p = msg;
			out->without_proof.len = start - 1; /* without the comma before p= */
			return 0;
		}
	}
}

int sl_scram_parse_server_final(const char *msg, size_t len, struct sl_scram_server_final *out, const char **why)
{
	memset(out, 0, sizeof(*out));
	if (!message_ok(msg, len, why))
		return -EBADMSG;
	struct cursor c = {msg, len, 0};
	struct sl_scram_text k, v;
	if (attr_next(&c, &k, &v) < 0)
		return fail(why, "server-final is malformed");
	if (key_is(&k, 'e')) {
		out->failed = 1;
		out->error = v;
	} else if (key_is(&k, 'v')) {
		if (sl_base64_decode(v.p, v.len, out->signature, sizeof(out->signature)) != SL_SCRAM_KEY_BYTES)
			return fail(why, "server-final signature is not base64 of 32 bytes");
	} else {
		return fail(why, "server-final must be v= or e=");
	}
	if (!extensions_ok(&c))
		return fail(why, "malformed extension in server-final");
	return 0;
}

/* ---- writing ---- */

struct writer {
	char *p;
	size_t cap, len;
	int overflow;
};

static void put(struct writer *w, const void *data, size_t len)
{
	if (w->overflow || w->len + len + 1 > w->cap) {
		w->overflow = 1;
		return;
	}
	memcpy(w->p + w->len, data, len);
	w->len += len;
	w->p[w->len] = '\0';
}

static void put_str(struct writer *w, const char *s)
{
	put(w, s, strlen(s));
}

static void put_b64(struct writer *w, const uint8_t *data, size_t len)
{
	char text[SL_BASE64_ENCODED_BYTES(SL_SCRAM_MESSAGE_BYTES_MAX) + 1];
	SL_ASSERT(SL_BASE64_ENCODED_BYTES(len) < sizeof(text));
	int n = sl_base64_encode(data, len, text, sizeof(text));
	put(w, text, (size_t)n);
}

/* ---- server ---- */

int sl_scram_server_start(struct sl_scram_server *s, const char *msg, size_t len, const char **why)
{
	struct sl_scram_client_first cf;
	if (s->state != SL_SCRAM_SERVER_START) {
		s->state = SL_SCRAM_SERVER_FAILED;
		return fail(why, "client-first sent twice");
	}
	int rc = sl_scram_parse_client_first(msg, len, &cf, why);
	if (rc < 0) {
		s->state = SL_SCRAM_SERVER_FAILED;
		return rc;
	}
	snprintf(s->user, sizeof(s->user), "%s", cf.user);
	memcpy(s->gs2_header, cf.gs2_header.p, cf.gs2_header.len);
	s->gs2_header_bytes = cf.gs2_header.len;
	memcpy(s->nonce, cf.nonce.p, cf.nonce.len);
	s->nonce_bytes = cf.nonce.len;
	s->nonce[s->nonce_bytes] = '\0';
	memcpy(s->auth_message, cf.bare.p, cf.bare.len);
	s->auth_message_bytes = cf.bare.len;
	s->state = SL_SCRAM_SERVER_USER_KNOWN;
	return 0;
}

/* Choice 4: an unknown user's salt is an HMAC of its name under a key of the broker's, so it is the same on every
 * attempt, as a real user's is; its keys are random, so no proof matches. */
static int fake_verifier(const char *user, const uint8_t key[SL_SCRAM_KEY_BYTES], struct sl_scram_verifier *v)
{
	uint8_t mac[SL_SCRAM_KEY_BYTES];
	if (hmac(key, SL_SCRAM_KEY_BYTES, user, strlen(user), mac) < 0)
		return -EIO;
	memset(v, 0, sizeof(*v));
	v->iterations = SL_SCRAM_ITERATIONS_DEFAULT;
	v->salt_bytes = SL_SCRAM_SALT_BYTES_DEFAULT;
	memcpy(v->salt, mac, SL_SCRAM_SALT_BYTES_DEFAULT);
	if (RAND_bytes(v->stored_key, SL_SCRAM_KEY_BYTES) != 1 || RAND_bytes(v->server_key, SL_SCRAM_KEY_BYTES) != 1)
		return -EIO;
	return 0;
}

int sl_scram_server_first(struct sl_scram_server *s, const struct sl_scram_verifier *v,
                          const uint8_t fake_key[SL_SCRAM_KEY_BYTES], const char *server_nonce, char *out,
                          size_t out_cap, size_t *out_len)
{
	char ours[SL_SCRAM_NONCE_BYTES_MAX + 1];
	if (s->state != SL_SCRAM_SERVER_USER_KNOWN) {
		s->state = SL_SCRAM_SERVER_FAILED;
		return -EBADMSG;
	}
	if (v != NULL) {
		s->verifier = *v;
		s->user_known = 1;
	} else if (fake_verifier(s->user, fake_key, &s->verifier) < 0) {
		s->state = SL_SCRAM_SERVER_FAILED;
		return -EIO;
	}
	if (server_nonce == NULL) {
		if (nonce_random(ours, sizeof(ours)) < 0) {
			s->state = SL_SCRAM_SERVER_FAILED;
			return -EIO;
		}
		server_nonce = ours;
	}
	size_t n = strlen(server_nonce);
	SL_ASSERT(n > 0 && n <= SL_SCRAM_NONCE_BYTES_MAX);
	memcpy(s->nonce + s->nonce_bytes, server_nonce, n);
	s->nonce_bytes += n;
	s->nonce[s->nonce_bytes] = '\0';
	char num[16];
	snprintf(num, sizeof(num), "%u", s->verifier.iterations);
	struct writer w = {out, out_cap, 0, 0};
	put_str(&w, "r=");
	put(&w, s->nonce, s->nonce_bytes);
	put_str(&w, ",s=");
	put_b64(&w, s->verifier.salt, s->verifier.salt_bytes);
	put_str(&w, ",i=");
	put_str(&w, num);
	if (w.overflow) {
		s->state = SL_SCRAM_SERVER_FAILED;
		return -ENOSPC;
	}
	struct writer am = {s->auth_message, sizeof(s->auth_message), s->auth_message_bytes, 0};
	put_str(&am, ",");
	put(&am, out, w.len);
	SL_ASSERT(!am.overflow);
	s->auth_message_bytes = am.len;
	*out_len = w.len;
	s->state = SL_SCRAM_SERVER_FIRST_SENT;
	return 0;
}

static int server_refuse(struct sl_scram_server *s, const char *error, char *out, size_t out_cap, size_t *out_len)
{
	struct writer w = {out, out_cap, 0, 0};
	put_str(&w, "e=");
	put_str(&w, error);
	*out_len = w.overflow ? 0 : w.len;
	s->state = SL_SCRAM_SERVER_FAILED;
	return 0;
}

int sl_scram_server_final(struct sl_scram_server *s, const char *msg, size_t len, char *out, size_t out_cap,
                          size_t *out_len, const char **why)
{
	struct sl_scram_client_final cf;
	if (s->state != SL_SCRAM_SERVER_FIRST_SENT) {
		server_refuse(s, "other-error", out, out_cap, out_len);
		return fail(why, "client-final before client-first");
	}
	int rc = sl_scram_parse_client_final(msg, len, &cf, why);
	if (rc == 0 && (cf.channel_binding_bytes != s->gs2_header_bytes ||
	                memcmp(cf.channel_binding, s->gs2_header, s->gs2_header_bytes) != 0))
		rc = fail(why, "the channel binding (c=) does not repeat the gs2 header of client-first");
	/* Choice 7: the nonce must end with the one the server sent. */
	if (rc == 0 && (cf.nonce.len < s->nonce_bytes ||
	                memcmp(cf.nonce.p + cf.nonce.len - s->nonce_bytes, s->nonce, s->nonce_bytes) != 0))
		rc = fail(why, "the nonce of client-final does not end with the one the server sent");
	if (rc < 0) {
		server_refuse(s, "other-error", out, out_cap, out_len);
		return rc;
	}
	struct writer am = {s->auth_message, sizeof(s->auth_message), s->auth_message_bytes, 0};
	put_str(&am, ",");
	put(&am, cf.without_proof.p, cf.without_proof.len);
	SL_ASSERT(!am.overflow);
	s->auth_message_bytes = am.len;
	uint8_t signature[SL_SCRAM_KEY_BYTES], client_key[SL_SCRAM_KEY_BYTES], stored[SL_SCRAM_KEY_BYTES];
	if (hmac(s->verifier.stored_key, SL_SCRAM_KEY_BYTES, s->auth_message, s->auth_message_bytes, signature) < 0) {
		server_refuse(s, "other-error", out, out_cap, out_len);
		return fail(why, "HMAC failed");
	}
	for (int i = 0; i < SL_SCRAM_KEY_BYTES; i++)
		client_key[i] = cf.proof[i] ^ signature[i];
	SHA256(client_key, SL_SCRAM_KEY_BYTES, stored);
	int match = CRYPTO_memcmp(stored, s->verifier.stored_key, SL_SCRAM_KEY_BYTES) == 0;
	OPENSSL_cleanse(client_key, sizeof(client_key));
	if (!match || !s->user_known) {
		server_refuse(s, "invalid-proof", out, out_cap, out_len);
		*why = "wrong password or unknown user";
		return -EACCES;
	}
	uint8_t server_signature[SL_SCRAM_KEY_BYTES];
	if (hmac(s->verifier.server_key, SL_SCRAM_KEY_BYTES, s->auth_message, s->auth_message_bytes, server_signature) <
	    0) {
		server_refuse(s, "other-error", out, out_cap, out_len);
		return fail(why, "HMAC failed");
	}
	struct writer w = {out, out_cap, 0, 0};
	put_str(&w, "v=");
	put_b64(&w, server_signature, SL_SCRAM_KEY_BYTES);
	SL_ASSERT(!w.overflow);
	*out_len = w.len;
	s->state = SL_SCRAM_SERVER_DONE;
	return 0;
}

/* ---- client ---- */

/* The user name as a saslname: ',' and '=' escaped. */
static void put_saslname(struct writer *w, const char *user)
{
	for (const char *p = user; *p; p++) {
		if (*p == ',')
			put_str(w, "=2C");
		else if (*p == '=')
			put_str(w, "=3D");
		else
			put(w, p, 1);
	}
}

int sl_scram_client_first(struct sl_scram_client *c, const char *user, const char *nonce, char *out, size_t out_cap,
                          size_t *out_len)
{
	memset(c, 0, sizeof(*c));
	size_t n = strlen(user);
	if (n == 0 || n > SL_SCRAM_USER_BYTES_MAX)
		return -EINVAL;
	if (nonce == NULL) {
		if (nonce_random(c->nonce, sizeof(c->nonce)) < 0)
			return -EIO;
	} else {
		struct sl_scram_text t = {nonce, strlen(nonce)};
		if (!nonce_ok(&t))
			return -EINVAL;
		snprintf(c->nonce, sizeof(c->nonce), "%s", nonce);
	}
	struct writer b = {c->bare, sizeof(c->bare), 0, 0};
	put_str(&b, "n=");
	put_saslname(&b, user);
	put_str(&b, ",r=");
	put_str(&b, c->nonce);
	if (b.overflow)
		return -EINVAL;
	c->bare_bytes = b.len;
	struct writer w = {out, out_cap, 0, 0};
	put_str(&w, "n,,");
	put(&w, c->bare, c->bare_bytes);
	if (w.overflow)
		return -ENOSPC;
	*out_len = w.len;
	c->state = 1;
	return 0;
}

int sl_scram_client_final(struct sl_scram_client *c, const void *password, size_t password_bytes,
                          const char *server_first, size_t len, char *out, size_t out_cap, size_t *out_len,
                          const char **why)
{
	struct sl_scram_server_first sf;
	if (c->state != 1) {
		c->state = 4;
		return fail(why, "server-first out of order");
	}
	int rc = sl_scram_parse_server_first(server_first, len, &sf, why);
	size_t ours = strlen(c->nonce);
	if (rc == 0 && (sf.nonce.len <= ours || memcmp(sf.nonce.p, c->nonce, ours) != 0))
		rc = fail(why, "the server's nonce does not start with the client's");
	if (rc == 0 && (sf.iterations < SL_SCRAM_ITERATIONS_MIN || sf.iterations > SL_SCRAM_ITERATIONS_MAX))
		rc = fail(why, "the server asks for an iteration count outside 4096 to 1000000");
	if (rc < 0) {
		c->state = 4;
		return rc;
	}
	/* client-final-without-proof: c=biws is base64 of the gs2 header "n,,". */
	char without_proof[SL_SCRAM_MESSAGE_BYTES_MAX + 1];
	struct writer wp = {without_proof, sizeof(without_proof), 0, 0};
	put_str(&wp, "c=biws,r=");
	put(&wp, sf.nonce.p, sf.nonce.len);
	char auth_message[SL_SCRAM_AUTH_MESSAGE_BYTES_MAX + 1];
	struct writer am = {auth_message, sizeof(auth_message), 0, 0};
	put(&am, c->bare, c->bare_bytes);
	put_str(&am, ",");
	put(&am, server_first, len);
	put_str(&am, ",");
	put(&am, without_proof, wp.len);
	if (wp.overflow || am.overflow) {
		c->state = 4;
		return fail(why, "messages too long");
	}
	uint8_t salted[SL_SCRAM_KEY_BYTES], client_key[SL_SCRAM_KEY_BYTES], stored[SL_SCRAM_KEY_BYTES];
	uint8_t server_key[SL_SCRAM_KEY_BYTES], signature[SL_SCRAM_KEY_BYTES], proof[SL_SCRAM_KEY_BYTES];
	rc = salted_password(password, password_bytes, sf.salt, sf.salt_bytes, sf.iterations, salted);
	if (rc == 0)
		rc = keys_of(salted, client_key, stored, server_key);
	if (rc == 0)
		rc = hmac(stored, SL_SCRAM_KEY_BYTES, auth_message, am.len, signature);
	if (rc == 0)
		rc = hmac(server_key, SL_SCRAM_KEY_BYTES, auth_message, am.len, c->server_signature);
	OPENSSL_cleanse(salted, sizeof(salted));
	if (rc < 0) {
		c->state = 4;
		*why = "the crypto library failed";
		return -EIO;
	}
	for (int i = 0; i < SL_SCRAM_KEY_BYTES; i++)
		proof[i] = client_key[i] ^ signature[i];
	OPENSSL_cleanse(client_key, sizeof(client_key));
	struct writer w = {out, out_cap, 0, 0};
	put(&w, without_proof, wp.len);
	put_str(&w, ",p=");
	put_b64(&w, proof, sizeof(proof));
	if (w.overflow) {
		c->state = 4;
		return -ENOSPC;
	}
	*out_len = w.len;
	c->state = 2;
	return 0;
}

int sl_scram_client_verify(struct sl_scram_client *c, const char *server_final, size_t len, const char **why)
{
	struct sl_scram_server_final sf;
	if (c->state != 2) {
		c->state = 4;
		return fail(why, "server-final out of order");
	}
	int rc = sl_scram_parse_server_final(server_final, len, &sf, why);
	if (rc < 0) {
		c->state = 4;
		return rc;
	}
	if (sf.failed) {
		snprintf(c->server_error, sizeof(c->server_error), "%.*s", (int)sf.error.len, sf.error.p);
		*why = c->server_error;
		c->state = 4;
		return -EACCES;
	}
	if (CRYPTO_memcmp(sf.signature, c->server_signature, SL_SCRAM_KEY_BYTES) != 0) {
		*why = "the server's signature is wrong: it does not know this user's verifier";
		c->state = 4;
		return -EACCES;
	}
	c->state = 3;
	return 0;
}
