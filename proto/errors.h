/* The one map from a negative errno (what storage and the handlers return) to a wire error code of
 * proto/synclog.proto. Names and messages of the codes are in frame.c (sl_error_name, sl_error_message), keyed by
 * the same numbers; errors.c asserts at compile time that the generated enum still has them. */
#ifndef SL_PROTO_ERRORS_H
#define SL_PROTO_ERRORS_H

#include "proto/synclog.pb-c.h"

/* The code for a storage or handler errno. Disk full (-ENOSPC, -EDQUOT, -EFBIG) is NOT_ENOUGH_SPACE; a batch
 * too large for a frame is -EMSGSIZE (BATCH_TOO_LARGE); anything unknown is STORAGE_ERROR. */
Synclog__ErrorCode sl_errno_to_code(int err);

#endif
