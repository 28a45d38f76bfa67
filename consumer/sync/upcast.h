/* Upcasts: how the applier brings a value of an old schema version up to one the contract accepts (apply.h rule 9a),
 * given on the command line as a path mapping per version (apply --upcast VERSION=MAPPING) or by a shared object
 * (apply --upcast-hook LIB.so).
 *
 * A MAPPING takes a JSON object of schema version VERSION to version VERSION + 1; its steps, separated by commas,
 * run in order (jq's paths: .a.b, ."a key"):
 *   .to.path=.from.path   move: the value at .from.path goes to .to.path (objects on the way are created); when
 *                         the record has no .from.path, nothing happens
 *   .path=JSON            set: a JSON literal ("active", 0, true, null, [1,2], {"a":1})
 *   del(.path)            delete
 * Example: --upcast '1=.contact.email=.email,.name.first=.first_name,del(.legacy_id),.tier="standard"'
 * The result is written back member by member, each number as short as it reads back (value.h).
 *
 * A HOOK is a shared object with
 *   int synclog_upcast(int32_t from_version, const char *value, size_t value_len, char **out, size_t *out_len,
 *                      int32_t *to_version);
 * returning 0 with *out (malloc'ed; the applier frees it) and *to_version, 1 when it has no upcast from that
 * version, or a negative number when the value cannot be upcast (the record is then dead-lettered). Mappings are
 * tried first, then the hook.
 *
 * Threads: an upcast set belongs to one thread. */
#ifndef SL_CONSUMER_SYNC_UPCAST_H
#define SL_CONSUMER_SYNC_UPCAST_H

#include <stddef.h>
#include <stdint.h>

#include "consumer/sync/apply.h"

/* Mappings one applier takes, and steps per mapping: a schema's history, with room. */
#define SL_UPCAST_MAPPINGS_MAX 64
#define SL_UPCAST_STEPS_MAX    256

struct sl_upcast;

int sl_upcast_new(struct sl_upcast **out);
void sl_upcast_free(struct sl_upcast *u);
/* Add "VERSION=MAPPING". Returns 0, or -EINVAL with err naming the step and what is wrong, -ENOMEM. */
int sl_upcast_add_mapping(struct sl_upcast *u, const char *spec, char *err, size_t err_bytes);
/* Load the hook at path. Returns 0, or -EINVAL with err (cannot load it, no synclog_upcast in it). */
int sl_upcast_add_hook(struct sl_upcast *u, const char *path, char *err, size_t err_bytes);
/* The applier's upcast callback (cb_arg: the set). */
int sl_upcast_cb(const struct sl_apply_record *r, const uint8_t *value, size_t len, int32_t *version_inout,
                 const uint8_t **out, size_t *out_len, char *why, size_t why_bytes, void *cb_arg);

#endif
