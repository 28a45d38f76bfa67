/* SCRAM-SHA-256 (RFC 5802 with RFC 7677's hash): the password authentication of the native protocol's handshake
 * and of the Kafka listener's SASL, for both sides. The broker keeps only verifiers (salt, iteration count,
 * StoredKey, ServerKey), never a password: a stolen users file does not log anyone in, and the password never
 * crosses the wire, only a proof that the client knows it.
 *
 * The exchange, each message a line of text (RFC 5802 section 7), with its parser below:
 *
 *   client                                                    server
 *   client-first  "n,,n=alice,r=CNONCE"              ---->    parse, look up alice's verifier
 *                 "r=CNONCE+SNONCE,s=SALT,i=4096"    <----    server-first
 *   client-final  "c=biws,r=CNONCE+SNONCE,p=PROOF"   ---->    check PROOF against StoredKey
 *                 "v=SERVER_SIGNATURE"               <----    server-final (or "e=invalid-proof")
 *
 *   SaltedPassword  = PBKDF2-HMAC-SHA-256(password, salt, i)
 *   ClientKey       = HMAC(SaltedPassword, "Client Key")      StoredKey = SHA-256(ClientKey)
 *   ServerKey       = HMAC(SaltedPassword, "Server Key")
 *   AuthMessage     = client-first-bare "," server-first "," client-final-without-proof
 *   ClientProof     = ClientKey XOR HMAC(StoredKey, AuthMessage)
 *   ServerSignature = HMAC(ServerKey, AuthMessage)
 *
 * Choices, each with its reason:
 *   1. Passwords are used as their bytes, without SASLprep, as Kafka's Java client and librdkafka do: a password
 *      set through one of them then works through the others.
 *   2. No channel binding: a client-first starting "p=" is refused; "n" and "y" are accepted (RFC 5802 5.1: "y"
 *      means the client could bind but believes the server cannot, which is true).
 *   3. An authorization identity (a=) is accepted only when it names the user itself: one user never acts as
 *      another.
 *   4. An unknown user gets a server-first built from a key only the broker knows (sl_scram_server_first with
 *      no verifier), with the same salt every time, and fails at the proof, as a wrong password does: the
 *      answers do not tell which user names exist.
 *   5. A client refuses fewer than 4096 iterations (RFC 7677's minimum) and more than SL_SCRAM_ITERATIONS_MAX
 *      (so that a hostile server cannot make it hash for minutes).
 *   6. Every message is at most SL_SCRAM_MESSAGE_BYTES_MAX bytes and holds no NUL: the parsers never read past
 *      len and never allocate.
 *   7. The server accepts a client-final nonce that ends with the nonce it sent (RFC 5802 asks for equality):
 *      librdkafka sends the client's nonce again in front of it, and Kafka's brokers accept that with the same
 *      rule. Nothing is weakened: the proof covers the client-final as sent, and the server's random part must be
 *      there.
 *
 * Which thread may call: any; a state struct belongs to one exchange. */
#ifndef SL_PROTO_SCRAM_H
#define SL_PROTO_SCRAM_H

#include <stddef.h>
#include <stdint.h>

#define SL_SCRAM_MECHANISM              "SCRAM-SHA-256"
#define SL_SCRAM_KEY_BYTES              32 /* SHA-256 */
/* Long enough for any client's nonce (kcat's are 32 characters), a user name and a few extensions. */
#define SL_SCRAM_MESSAGE_BYTES_MAX      1024
#define SL_SCRAM_USER_BYTES_MAX         255
#define SL_SCRAM_NONCE_BYTES_MAX        255
#define SL_SCRAM_SALT_BYTES_MAX         64
/* 16 bytes of salt, as RFC 7677's example: unique per user and password, which is all a salt must be. */
#define SL_SCRAM_SALT_BYTES_DEFAULT     16
#define SL_SCRAM_ITERATIONS_MIN         4096
#define SL_SCRAM_ITERATIONS_DEFAULT     4096
#define SL_SCRAM_ITERATIONS_MAX         1000000
/* AuthMessage: the bare client-first, the server-first and the client-final without its proof, and two commas. */
#define SL_SCRAM_AUTH_MESSAGE_BYTES_MAX (3 * SL_SCRAM_MESSAGE_BYTES_MAX + 2)

/* What the broker stores of a password. */
struct sl_scram_verifier {
	uint32_t iterations;
	uint32_t salt_bytes;
	uint8_t salt[SL_SCRAM_SALT_BYTES_MAX];
	uint8_t stored_key[SL_SCRAM_KEY_BYTES];
	uint8_t server_key[SL_SCRAM_KEY_BYTES];
};

/* The verifier of password with the given salt and iteration count. Returns 0, -EINVAL (iterations or salt out of
 * range), -EIO (the crypto library failed). */
int sl_scram_verifier_make(const void *password, size_t password_bytes, const uint8_t *salt, size_t salt_bytes,
                           uint32_t iterations, struct sl_scram_verifier *out);
/* The same with a fresh random salt of SL_SCRAM_SALT_BYTES_DEFAULT bytes. */
int sl_scram_verifier_new(const void *password, size_t password_bytes, uint32_t iterations,
                          struct sl_scram_verifier *out);

/* ---- the parsers: each reads one message, pointers into it; 0, or -EBADMSG with *why saying what is wrong ---- */

struct sl_scram_text {
	const char *p;
	size_t len;
};

struct sl_scram_client_first {
	struct sl_scram_text gs2_header; /* "n,," or "y,," or "n,a=alice," */
	struct sl_scram_text bare;       /* what follows the gs2 header: it goes into AuthMessage */
	struct sl_scram_text nonce;
	char user[SL_SCRAM_USER_BYTES_MAX + 1]; /* "=2C" and "=3D" decoded */
};
int sl_scram_parse_client_first(const char *msg, size_t len, struct sl_scram_client_first *out, const char **why);

struct sl_scram_server_first {
	struct sl_scram_text nonce;
	uint32_t iterations;
	uint32_t salt_bytes;
	uint8_t salt[SL_SCRAM_SALT_BYTES_MAX];
};
int sl_scram_parse_server_first(const char *msg, size_t len, struct sl_scram_server_first *out, const char **why);

struct sl_scram_client_final {
	struct sl_scram_text without_proof; /* goes into AuthMessage */
	struct sl_scram_text nonce;
	uint32_t channel_binding_bytes; /* the decoded c= value: the gs2 header again */
	uint8_t channel_binding[SL_SCRAM_MESSAGE_BYTES_MAX];
	uint8_t proof[SL_SCRAM_KEY_BYTES];
};
int sl_scram_parse_client_final(const char *msg, size_t len, struct sl_scram_client_final *out, const char **why);

struct sl_scram_server_final {
	int failed;                 /* 1: the server said e=... */
	struct sl_scram_text error; /* its reason */
	uint8_t signature[SL_SCRAM_KEY_BYTES];
};
int sl_scram_parse_server_final(const char *msg, size_t len, struct sl_scram_server_final *out, const char **why);

/* ---- the server side ----
 *
 *   START --sl_scram_server_start--> USER_KNOWN --sl_scram_server_first--> FIRST_SENT --sl_scram_server_final--> DONE
 *     any call out of order, or any failure --> FAILED (every later call fails) */
enum sl_scram_server_state {
	SL_SCRAM_SERVER_START = 0,
	SL_SCRAM_SERVER_USER_KNOWN,
	SL_SCRAM_SERVER_FIRST_SENT,
	SL_SCRAM_SERVER_DONE,
	SL_SCRAM_SERVER_FAILED,
};

struct sl_scram_server {
	enum sl_scram_server_state state;
	char user[SL_SCRAM_USER_BYTES_MAX + 1];
	int user_known;
	struct sl_scram_verifier verifier;
	char gs2_header[SL_SCRAM_MESSAGE_BYTES_MAX];
	size_t gs2_header_bytes;
	char nonce[2 * SL_SCRAM_NONCE_BYTES_MAX + 1]; /* the client's and ours */
	size_t nonce_bytes;
	char auth_message[SL_SCRAM_AUTH_MESSAGE_BYTES_MAX];
	size_t auth_message_bytes;
};

/* Read the client-first message; the user name is then in s->user for the caller to look up. */
int sl_scram_server_start(struct sl_scram_server *s, const char *msg, size_t len, const char **why);
/* Write the server-first message into out (NUL-terminated, out_cap >= SL_SCRAM_MESSAGE_BYTES_MAX) with v, the user's
 * verifier, or with v NULL (unknown user) a stand-in derived from fake_key (choice 4). server_nonce NULL: random.
 * Returns 0 with *out_len set, or -EIO. */
int sl_scram_server_first(struct sl_scram_server *s, const struct sl_scram_verifier *v,
                          const uint8_t fake_key[SL_SCRAM_KEY_BYTES], const char *server_nonce, char *out,
                          size_t out_cap, size_t *out_len);
/* Check the client-final message. Returns 0 (authenticated: out holds "v=..."), -EACCES (wrong password or unknown
 * user: out holds "e=invalid-proof"), -EBADMSG (malformed or out of order: out holds "e=other-error" and *why says
 * what). */
int sl_scram_server_final(struct sl_scram_server *s, const char *msg, size_t len, char *out, size_t out_cap,
                          size_t *out_len, const char **why);

/* ---- the client side ---- */
struct sl_scram_client {
	int state; /* 0 new, 1 first sent, 2 final sent, 3 done, 4 failed */
	char bare[SL_SCRAM_MESSAGE_BYTES_MAX];
	size_t bare_bytes;
	char nonce[SL_SCRAM_NONCE_BYTES_MAX + 1];
	uint8_t server_signature[SL_SCRAM_KEY_BYTES];
	char server_error[64]; /* the e= reason of a refusal, for *why */
};

/* Write the client-first message for user (nonce NULL: random). Returns 0, -EINVAL (empty or too long a name). */
int sl_scram_client_first(struct sl_scram_client *c, const char *user, const char *nonce, char *out, size_t out_cap,
                          size_t *out_len);
/* Read the server-first message and write the client-final one. Returns 0, -EBADMSG (with *why), -EIO. */
int sl_scram_client_final(struct sl_scram_client *c, const void *password, size_t password_bytes,
                          const char *server_first, size_t len, char *out, size_t out_cap, size_t *out_len,
                          const char **why);
/* Read the server-final message: 0 when the server proved it knows the verifier, -EACCES when it refused us (*why
 * holds its reason) or its signature is wrong, -EBADMSG. */
int sl_scram_client_verify(struct sl_scram_client *c, const char *server_final, size_t len, const char **why);

#endif
