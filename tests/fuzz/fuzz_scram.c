/* libFuzzer target for the authentication handshake (proto/scram.c): the four SCRAM message parsers, the server's
 * state machine fed a client-first and a client-final from the input, and the client's fed a server-first and a
 * server-final. The input is two messages separated by the first newline. Checked beyond "no crash": every
 * answer the server writes is "v=..." or "e=...", a server never authenticates a proof it did not check, and a
 * user name our client writes reads back the same through the server's parser. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/scram.h"

static struct sl_scram_verifier verifier;
static const uint8_t fake_key[SL_SCRAM_KEY_BYTES] = {7};
static int ready;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void parsers(const char *m, size_t len)
{
	struct sl_scram_client_first cf;
	struct sl_scram_server_first sf;
	struct sl_scram_client_final cfin;
	struct sl_scram_server_final sfin;
	const char *why;
	if (sl_scram_parse_client_first(m, len, &cf, &why) == 0) {
		if (cf.bare.p < m || cf.bare.p + cf.bare.len > m + len || strlen(cf.user) == 0 ||
		    cf.gs2_header.len + cf.bare.len != len)
			abort();
	}
	if (sl_scram_parse_server_first(m, len, &sf, &why) == 0 && (sf.salt_bytes == 0 || sf.nonce.len == 0))
		abort();
	if (sl_scram_parse_client_final(m, len, &cfin, &why) == 0 && cfin.without_proof.len >= len)
		abort();
	sl_scram_parse_server_final(m, len, &sfin, &why);
}

static void server(const char *a, size_t alen, const char *b, size_t blen)
{
	struct sl_scram_server s;
	char out[SL_SCRAM_MESSAGE_BYTES_MAX];
	size_t len = 0;
	const char *why;
	memset(&s, 0, sizeof(s));
	if (sl_scram_server_start(&s, a, alen, &why) != 0)
		return;
	if (sl_scram_server_first(&s, &verifier, fake_key, "SERVERNONCE", out, sizeof(out), &len) != 0)
		abort();
	int rc = sl_scram_server_final(&s, b, blen, out, sizeof(out), &len, &why);
	if (len < 2 || out[len] != '\0' || (memcmp(out, "v=", 2) != 0 && memcmp(out, "e=", 2) != 0))
		abort();
	/* The fuzzer does not know the password "pencil": a proof it made up never matches. */
	if (rc == 0 || (rc != -EACCES && rc != -EBADMSG))
		abort();
}

static void client(const char *a, size_t alen, const char *b, size_t blen)
{
	struct sl_scram_client c;
	struct sl_scram_server_first sf;
	char out[SL_SCRAM_MESSAGE_BYTES_MAX];
	size_t len;
	const char *why;
	if (sl_scram_client_first(&c, "user", "rOprNGfwEbeRWgbNEkqO", out, sizeof(out), &len) != 0)
		abort();
	/* Hashing a million iterations per input would starve the search: keep to the cheap ones. */
	if (sl_scram_parse_server_first(a, alen, &sf, &why) == 0 && sf.iterations > 8192)
		return;
	if (sl_scram_client_final(&c, "pencil", 6, a, alen, out, sizeof(out), &len, &why) != 0)
		return;
	int rc = sl_scram_client_verify(&c, b, blen, &why);
	if (rc != 0 && rc != -EACCES && rc != -EBADMSG)
		abort();
}

/* A user name our client writes (escaping ',' and '=') is the name the server reads. */
static void round_trip(const char *a, size_t alen)
{
	char user[SL_SCRAM_USER_BYTES_MAX + 1], out[SL_SCRAM_MESSAGE_BYTES_MAX];
	struct sl_scram_client c;
	struct sl_scram_client_first cf;
	size_t len;
	const char *why;
	if (alen == 0 || alen > SL_SCRAM_USER_BYTES_MAX / 3 || memchr(a, '\0', alen) != NULL)
		return;
	memcpy(user, a, alen);
	user[alen] = '\0';
	if (sl_scram_client_first(&c, user, "abc", out, sizeof(out), &len) != 0)
		abort();
	if (sl_scram_parse_client_first(out, len, &cf, &why) != 0 || strcmp(cf.user, user) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ready) {
		if (sl_scram_verifier_make("pencil", 6, (const uint8_t *)"saltsaltsaltsalt", 16, 4096, &verifier) != 0)
			abort();
		ready = 1;
	}
	const char *in = (const char *)data;
	const char *nl = memchr(in, '\n', size);
	size_t alen = nl ? (size_t)(nl - in) : size;
	const char *b = nl ? nl + 1 : in + size;
	size_t blen = nl ? size - alen - 1 : 0;
	parsers(in, alen);
	parsers(b, blen);
	server(in, alen, b, blen);
	client(in, alen, b, blen);
	round_trip(in, alen);
	return 0;
}
