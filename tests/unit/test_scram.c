/* SCRAM-SHA-256 (proto/scram.c): RFC 7677's example exchange byte for byte, both sides; a wrong password and an
 * unknown user fail alike; malformed and out-of-order messages are refused; the choices of scram.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "proto/base/base64.h"
#include "proto/scram.h"

/* RFC 7677 section 3. */
#define RFC_CLIENT_FIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define RFC_SERVER_NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SERVER_FIRST "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC_CLIENT_FINAL \
	"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static const uint8_t fake_key[SL_SCRAM_KEY_BYTES] = {1, 2, 3};

static void rfc_verifier(struct sl_scram_verifier *v)
{
	uint8_t salt[16];
	int n = sl_base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==", 24, salt, sizeof(salt));
	assert_int_equal(n, 16);
	assert_int_equal(sl_scram_verifier_make("pencil", 6, salt, 16, 4096, v), 0);
}

static void client_writes_rfc7677_example(void **state)
{
	struct sl_scram_client c;
	char out[SL_SCRAM_MESSAGE_BYTES_MAX];
	size_t len;
	const char *why = NULL;
	assert_int_equal(sl_scram_client_first(&c, "user", "rOprNGfwEbeRWgbNEkqO", out, sizeof(out), &len), 0);
	assert_string_equal(out, RFC_CLIENT_FIRST);
	assert_int_equal(sl_scram_client_final(&c, "pencil", 6, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), out,
	                                       sizeof(out), &len, &why),
	                 0);
	assert_string_equal(out, RFC_CLIENT_FINAL);
	assert_int_equal(sl_scram_client_verify(&c, RFC_SERVER_FINAL, strlen(RFC_SERVER_FINAL), &why), 0);
}

static void server_answers_rfc7677_example(void **state)
{
	struct sl_scram_server s = {0};
	struct sl_scram_verifier v;
	char out[SL_SCRAM_MESSAGE_BYTES_MAX];
	size_t len;
	const char *why = NULL;
	rfc_verifier(&v);
	assert_int_equal(sl_scram_server_start(&s, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST), &why), 0);
	assert_string_equal(s.user, "user");
	assert_int_equal(sl_scram_server_first(&s, &v, fake_key, RFC_SERVER_NONCE, out, sizeof(out), &len), 0);
	assert_string_equal(out, RFC_SERVER_FIRST);
	assert_int_equal(
	        sl_scram_server_final(&s, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL), out, sizeof(out), &len, &why), 0);
	assert_string_equal(out, RFC_SERVER_FINAL);
	assert_int_equal(s.state, SL_SCRAM_SERVER_DONE);
}

/* A whole exchange between our client and our server with random nonces and salt; returns the server's result. */
static int exchange(const char *user, const char *password, const struct sl_scram_verifier *v, char *server_final)
{
	struct sl_scram_client c;
	struct sl_scram_server s = {0};
	char a[SL_SCRAM_MESSAGE_BYTES_MAX], b[SL_SCRAM_MESSAGE_BYTES_MAX];
	size_t alen, blen;
	const char *why = NULL;
	assert_int_equal(sl_scram_client_first(&c, user, NULL, a, sizeof(a), &alen), 0);
	assert_int_equal(sl_scram_server_start(&s, a, alen, &why), 0);
	assert_int_equal(sl_scram_server_first(&s, v, fake_key, NULL, b, sizeof(b), &blen), 0);
	assert_int_equal(sl_scram_client_final(&c, password, strlen(password), b, blen, a, sizeof(a), &alen, &why), 0);
	int rc = sl_scram_server_final(&s, a, alen, b, sizeof(b), &blen, &why);
	memcpy(server_final, b, blen);
	server_final[blen] = '\0';
	int crc = sl_scram_client_verify(&c, b, blen, &why);
	assert_int_equal(rc == 0, crc == 0);
	return rc;
}

static void right_password_authenticates_both_ways(void **state)
{
	struct sl_scram_verifier v;
	char fin[SL_SCRAM_MESSAGE_BYTES_MAX];
	assert_int_equal(sl_scram_verifier_new("s3cret, with=commas", 19, 4096, &v), 0);
	assert_int_equal(exchange("ali=ce,x", "s3cret, with=commas", &v, fin), 0);
	assert_memory_equal(fin, "v=", 2);
}

static void wrong_password_and_unknown_user_fail_alike(void **state)
{
	struct sl_scram_verifier v;
	char fin[SL_SCRAM_MESSAGE_BYTES_MAX];
	assert_int_equal(sl_scram_verifier_new("right", 5, 4096, &v), 0);
	assert_int_equal(exchange("alice", "wrong", &v, fin), -EACCES);
	assert_string_equal(fin, "e=invalid-proof");
	/* Unknown user: even the right password of someone else fails, with the same answer. */
	assert_int_equal(exchange("nobody", "right", NULL, fin), -EACCES);
	assert_string_equal(fin, "e=invalid-proof");
}

static void unknown_user_gets_the_same_salt_every_time(void **state)
{
	char first[2][SL_SCRAM_MESSAGE_BYTES_MAX];
	for (int i = 0; i < 2; i++) {
		struct sl_scram_server s = {0};
		const char *why;
		size_t len;
		assert_int_equal(sl_scram_server_start(&s, "n,,n=ghost,r=abc", 16, &why), 0);
		assert_int_equal(sl_scram_server_first(&s, NULL, fake_key, "xyz", first[i], sizeof(first[i]), &len), 0);
	}
	assert_string_equal(first[0], first[1]);
}

static void malformed_client_first_is_refused(void **state)
{
	static const char *bad[] = {
	        "",                      /* empty */
	        "n,,r=abc",              /* no user */
	        "n,,n=,r=abc",           /* empty user */
	        "n,,n=a=2Xb,r=abc",      /* bad escape */
	        "n,,n=a=2",              /* escape cut short */
	        "n,,n=alice",            /* no nonce */
	        "n,,n=alice,r=",         /* empty nonce */
	        "n,,n=alice,r=a b",      /* a space in the nonce */
	        "p=tls-unique,,n=a,r=b", /* channel binding */
	        "x,,n=a,r=b",            /* bad flag */
	        "n,,m=ext,n=a,r=b",      /* mandatory extension */
	        "n,a=bob,n=alice,r=abc", /* acting as someone else */
	        "n,,n=alice,r=abc,",     /* trailing comma */
	        "n,,n=alice,r=abc,=x",   /* extension with no name */
	        "n,x,n=alice,r=abc",     /* malformed authzid */
	        "n",                     /* cut short */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sl_scram_client_first cf;
		const char *why = NULL;
		if (sl_scram_parse_client_first(bad[i], strlen(bad[i]), &cf, &why) != -EBADMSG)
			fail_msg("'%s' was accepted", bad[i]);
		assert_non_null(why);
	}
	struct sl_scram_client_first cf;
	const char *why;
	assert_int_equal(sl_scram_parse_client_first("n,\0,n=a,r=b", 11, &cf, &why), -EBADMSG);
	/* Accepted: y, the user itself as authzid, extensions (Kafka's tokenauth). */
	assert_int_equal(sl_scram_parse_client_first("y,a=alice,n=alice,r=abc,tokenauth=true", 38, &cf, &why), 0);
	assert_string_equal(cf.user, "alice");
}

static void server_refuses_a_final_that_does_not_match_its_first(void **state)
{
	struct sl_scram_verifier v;
	rfc_verifier(&v);
	char out[SL_SCRAM_MESSAGE_BYTES_MAX];
	size_t len;
	const char *why;
	/* A nonce the server did not send. */
	struct sl_scram_server s = {0};
	assert_int_equal(sl_scram_server_start(&s, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST), &why), 0);
	assert_int_equal(sl_scram_server_first(&s, &v, fake_key, "other", out, sizeof(out), &len), 0);
	assert_int_equal(
	        sl_scram_server_final(&s, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL), out, sizeof(out), &len, &why),
	        -EBADMSG);
	assert_string_equal(out, "e=other-error");
	/* A final before the first. */
	struct sl_scram_server s2 = {0};
	assert_int_equal(
	        sl_scram_server_final(&s2, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL), out, sizeof(out), &len, &why),
	        -EBADMSG);
	/* A channel binding that is not the gs2 header ("y,," instead of "n,,"). */
	struct sl_scram_server s3 = {0};
	assert_int_equal(sl_scram_server_start(&s3, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST), &why), 0);
	assert_int_equal(sl_scram_server_first(&s3, &v, fake_key, RFC_SERVER_NONCE, out, sizeof(out), &len), 0);
	const char *wrong_cb = "c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
	                       "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
	assert_int_equal(sl_scram_server_final(&s3, wrong_cb, strlen(wrong_cb), out, sizeof(out), &len, &why),
	                 -EBADMSG);
	/* Once failed, always failed. */
	assert_int_equal(s3.state, SL_SCRAM_SERVER_FAILED);
}

/* librdkafka's client-final repeats the client nonce in front of the server's (choice 7). A client that does that,
 * computed here by hand from RFC 5802's formulas, authenticates; one whose nonce does not end with the server's
 * is refused. */
static void client_final_nonce_may_repeat_the_client_nonce_in_front(void **state)
{
	struct sl_scram_verifier v;
	struct sl_scram_server s = {0};
	char sf[SL_SCRAM_MESSAGE_BYTES_MAX], out[SL_SCRAM_MESSAGE_BYTES_MAX], without_proof[512], final[640],
	        auth[2048];
	size_t sf_len, out_len;
	const char *why;
	rfc_verifier(&v);
	assert_int_equal(sl_scram_server_start(&s, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST), &why), 0);
	assert_int_equal(sl_scram_server_first(&s, &v, fake_key, RFC_SERVER_NONCE, sf, sizeof(sf), &sf_len), 0);
	snprintf(without_proof, sizeof(without_proof), "c=biws,r=rOprNGfwEbeRWgbNEkqO%s", sf + 2);
	*strchr(without_proof + 9, ',') = '\0'; /* r= ends where server-first's s= begins */
	snprintf(auth, sizeof(auth), "%s,%s,%s", RFC_CLIENT_FIRST + 3, sf, without_proof);
	uint8_t salted[32], client_key[32], stored[32], sig[32], proof[32];
	unsigned int n;
	assert_int_equal(PKCS5_PBKDF2_HMAC("pencil", 6, v.salt, (int)v.salt_bytes, 4096, EVP_sha256(), 32, salted), 1);
	HMAC(EVP_sha256(), salted, 32, (const uint8_t *)"Client Key", 10, client_key, &n);
	SHA256(client_key, 32, stored);
	HMAC(EVP_sha256(), stored, 32, (const uint8_t *)auth, strlen(auth), sig, &n);
	for (int i = 0; i < 32; i++)
		proof[i] = client_key[i] ^ sig[i];
	char proof64[64];
	sl_base64_encode(proof, 32, proof64, sizeof(proof64));
	snprintf(final, sizeof(final), "%s,p=%s", without_proof, proof64);
	assert_int_equal(sl_scram_server_final(&s, final, strlen(final), out, sizeof(out), &out_len, &why), 0);
	assert_memory_equal(out, "v=", 2);
	/* The same final against a server that sent another nonce: refused before the proof. */
	struct sl_scram_server s2 = {0};
	assert_int_equal(sl_scram_server_start(&s2, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST), &why), 0);
	assert_int_equal(sl_scram_server_first(&s2, &v, fake_key, "zzzz", sf, sizeof(sf), &sf_len), 0);
	assert_int_equal(sl_scram_server_final(&s2, final, strlen(final), out, sizeof(out), &out_len, &why), -EBADMSG);
}

static void client_refuses_a_forged_server(void **state)
{
	struct sl_scram_client c;
	char out[SL_SCRAM_MESSAGE_BYTES_MAX];
	size_t len;
	const char *why;
	/* A server-first whose nonce does not extend ours. */
	assert_int_equal(sl_scram_client_first(&c, "user", "rOprNGfwEbeRWgbNEkqO", out, sizeof(out), &len), 0);
	const char *other = "r=XXXX,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
	assert_int_equal(sl_scram_client_final(&c, "pencil", 6, other, strlen(other), out, sizeof(out), &len, &why),
	                 -EBADMSG);
	/* Too few iterations. */
	assert_int_equal(sl_scram_client_first(&c, "user", "rOprNGfwEbeRWgbNEkqO", out, sizeof(out), &len), 0);
	const char *weak = "r=rOprNGfwEbeRWgbNEkqOzz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1";
	assert_int_equal(sl_scram_client_final(&c, "pencil", 6, weak, strlen(weak), out, sizeof(out), &len, &why),
	                 -EBADMSG);
	/* A server signature that is wrong: the server does not know our verifier. */
	assert_int_equal(sl_scram_client_first(&c, "user", "rOprNGfwEbeRWgbNEkqO", out, sizeof(out), &len), 0);
	assert_int_equal(sl_scram_client_final(&c, "pencil", 6, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), out,
	                                       sizeof(out), &len, &why),
	                 0);
	const char *forged = "v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
	assert_int_equal(sl_scram_client_verify(&c, forged, strlen(forged), &why), -EACCES);
	/* A refusal carries the server's reason. */
	assert_int_equal(sl_scram_client_first(&c, "user", "rOprNGfwEbeRWgbNEkqO", out, sizeof(out), &len), 0);
	assert_int_equal(sl_scram_client_final(&c, "pencil", 6, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), out,
	                                       sizeof(out), &len, &why),
	                 0);
	assert_int_equal(sl_scram_client_verify(&c, "e=invalid-proof", 15, &why), -EACCES);
	assert_string_equal(why, "invalid-proof");
}

static void verifier_refuses_weak_parameters(void **state)
{
	struct sl_scram_verifier v;
	uint8_t salt[4] = {1, 2, 3, 4};
	assert_int_equal(sl_scram_verifier_make("p", 1, salt, 4, 4095, &v), -EINVAL);
	assert_int_equal(sl_scram_verifier_make("p", 1, salt, 0, 4096, &v), -EINVAL);
	assert_int_equal(sl_scram_verifier_make("p", 1, salt, 4, 4096, &v), 0);
}

static void base64_is_strict(void **state)
{
	uint8_t out[8];
	char text[16];
	assert_int_equal(sl_base64_encode((const uint8_t *)"ab", 2, text, sizeof(text)), 4);
	assert_string_equal(text, "YWI=");
	assert_int_equal(sl_base64_decode("YWI=", 4, out, sizeof(out)), 2);
	assert_int_equal(sl_base64_decode("YWJ=", 4, out, sizeof(out)), -EINVAL); /* leftover bits */
	assert_int_equal(sl_base64_decode("YW=I", 4, out, sizeof(out)), -EINVAL); /* misplaced padding */
	assert_int_equal(sl_base64_decode("YWI", 3, out, sizeof(out)), -EINVAL);  /* cut short */
	assert_int_equal(sl_base64_decode("YW I", 4, out, sizeof(out)), -EINVAL); /* whitespace */
	assert_int_equal(sl_base64_decode("YWJjZA==", 8, out, 3), -ENOSPC);
	assert_int_equal(sl_base64_decode("", 0, out, sizeof(out)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(client_writes_rfc7677_example),
	        cmocka_unit_test(server_answers_rfc7677_example),
	        cmocka_unit_test(right_password_authenticates_both_ways),
	        cmocka_unit_test(wrong_password_and_unknown_user_fail_alike),
	        cmocka_unit_test(unknown_user_gets_the_same_salt_every_time),
	        cmocka_unit_test(malformed_client_first_is_refused),
	        cmocka_unit_test(server_refuses_a_final_that_does_not_match_its_first),
	        cmocka_unit_test(client_final_nonce_may_repeat_the_client_nonce_in_front),
	        cmocka_unit_test(client_refuses_a_forged_server),
	        cmocka_unit_test(verifier_refuses_weak_parameters),
	        cmocka_unit_test(base64_is_strict),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
