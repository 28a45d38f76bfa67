/* The users file, DATA/security/users: who may authenticate, as SCRAM-SHA-256 verifiers (proto/scram.h), never
 * passwords. The broker reads it at start and rewrites it when `synclog user add|delete` goes through it; the
 * same command with --data-dir writes it directly while the broker is stopped (holding DATA/.lock as the broker
 * does), to create the first administrator. It lives here, below both, because both write it.
 *
 * Format: text, one user per line, fields separated by one space, lines ending in '\n':
 *
 *   # a comment (the writer puts one at the top); blank lines are ignored
 *   NAME SCRAM-SHA-256 ITERATIONS SALT STORED_KEY SERVER_KEY
 *   alice SCRAM-SHA-256 4096 W22ZaJ0SNY7soEsUEjb6gQ== WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=
 * wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=
 *
 *   NAME        1 to 64 characters of [A-Za-z0-9._@-] (sl_user_name_check)
 *   ITERATIONS  decimal, 4096 to 1000000
 *   SALT        base64 (proto/base/base64.h) of 1 to 64 bytes
 *   STORED_KEY, SERVER_KEY  base64 of 32 bytes each
 *
 * Invariants:
 *   1. Names are unique; in memory the users are sorted by name (strcmp), so lookups are binary searches and the
 *      file is written in a stable order.
 *   2. A file that breaks any rule above is refused as a whole, with its line number: the broker does not start
 *      with half its users.
 *   3. Writes replace the file atomically (sl_fs_replace_atomic); DATA/security is mode 0700, so only the
 *      broker's user reads the verifiers.
 *
 * Which thread may call: any, one thread per struct sl_users at a time. Loading and saving block on the disk. */
#ifndef SL_PROTO_USERS_H
#define SL_PROTO_USERS_H

#include <stddef.h>
#include <stdint.h>

#include "proto/scram.h"

#define SL_SECURITY_DIR         "security"
#define SL_USERS_FILE           "users"
#define SL_USER_NAME_BYTES_MAX  64
/* Far more people and services than one broker serves, and a bound on what reading the file can cost (about
 * 1.7 MB). */
#define SL_USERS_MAX            10000
#define SL_USERS_FILE_BYTES_MAX (4u << 20)

struct sl_user {
	char name[SL_USER_NAME_BYTES_MAX + 1];
	struct sl_scram_verifier verifier;
};

struct sl_users {
	struct sl_user *items; /* sorted by name (invariant 1) */
	uint32_t count;
	uint32_t cap;
};

/* 0 when name is 1 to 64 characters of [A-Za-z0-9._@-], else -EINVAL. */
int sl_user_name_check(const char *name);

/* Read a whole file's text. Returns 0, -EINVAL with "line N: what" in err (invariant 2), -E2BIG, -ENOMEM. */
int sl_users_parse(const char *text, size_t len, struct sl_users *out, char *err, size_t err_cap);
/* The file's text (malloc'ed, *text_out; free() it). Returns 0 or -ENOMEM. */
int sl_users_format(const struct sl_users *u, char **text_out, size_t *len_out);

/* DATA/security/users into *out; a missing file or directory is no users. Errors as parse, plus file errors. */
int sl_users_load(const char *data_dir, struct sl_users *out, char *err, size_t err_cap);
/* Create DATA/security (0700) if missing, then replace the users file with u atomically (invariant 3). */
int sl_users_save(const char *data_dir, const struct sl_users *u);
/* Create DATA/security with mode 0700 (and DATA), or tighten it to 0700 when it exists. */
int sl_security_dir_make(const char *data_dir);

const struct sl_user *sl_users_find(const struct sl_users *u, const char *name);
/* Add name with v, or replace its verifier when it exists (*created_out says which; may be NULL). Returns 0,
 * -EINVAL (bad name), -E2BIG (SL_USERS_MAX users already), -ENOMEM. */
int sl_users_put(struct sl_users *u, const char *name, const struct sl_scram_verifier *v, int *created_out);
/* Returns 0 or -ENOENT. */
int sl_users_remove(struct sl_users *u, const char *name);
/* A deep copy (to change while the original keeps serving). Returns 0 or -ENOMEM. */
int sl_users_copy(const struct sl_users *from, struct sl_users *to);
void sl_users_free(struct sl_users *u);

#endif
