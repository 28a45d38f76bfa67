/* errno -> wire error code, as one table; see errors.h. */
#include <errno.h>
#include <stddef.h>

#include "proto/errors.h"

/* frame.c's table of names and messages uses these numbers: the generated enum must keep them. */
_Static_assert(SYNCLOG__ERROR_CODE__NONE == 0, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__UNSUPPORTED_VERSION == 1, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__INVALID_REQUEST == 2, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__UNKNOWN_TOPIC == 3, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__TOPIC_EXISTS == 4, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__INVALID_TOPIC_NAME == 5, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__INVALID_PARTITIONS == 6, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__UNKNOWN_PARTITION == 7, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__CORRUPT_BATCH == 8, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__BATCH_TOO_LARGE == 9, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__OFFSET_OUT_OF_RANGE == 10, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__OUT_OF_ORDER_SEQUENCE == 11, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__UNKNOWN_PRODUCER == 12, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__STORAGE_ERROR == 13, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__NOT_ENOUGH_SPACE == 14, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__PARTITION_UNAVAILABLE == 15, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__THROTTLED == 16, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__BROKER_SHUTTING_DOWN == 17, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__UNSUPPORTED_CODEC == 18, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__UNKNOWN_GROUP == 30, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__UNKNOWN_MEMBER == 31, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__ILLEGAL_GENERATION == 32, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__REBALANCE_IN_PROGRESS == 33, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__GROUP_NOT_EMPTY == 34, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__INVALID_GROUP_NAME == 35, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__UNSUPPORTED_FEATURE == 40, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__UNSUPPORTED_BATCH == 45, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__RECORDS_LOST == 46, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__GROUP_LIMIT == 55, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__INVALID_CONFIG == 65, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__CLEANER_FAILED == 66, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__AUTHENTICATION_FAILED == 80, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__TOPIC_AUTHORIZATION_FAILED == 81, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__GROUP_AUTHORIZATION_FAILED == 82, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__CLUSTER_AUTHORIZATION_FAILED == 83, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__UNKNOWN_USER == 84, "wire code");
_Static_assert(SYNCLOG__ERROR_CODE__INTERNAL == 99, "wire code");

static const struct {
	int err;
	Synclog__ErrorCode code;
} table[] = {
        {ENOSPC, SYNCLOG__ERROR_CODE__NOT_ENOUGH_SPACE},
        {EDQUOT, SYNCLOG__ERROR_CODE__NOT_ENOUGH_SPACE},
        {EFBIG, SYNCLOG__ERROR_CODE__NOT_ENOUGH_SPACE}, /* RLIMIT_FSIZE or the file system's file size limit */
        {EMSGSIZE, SYNCLOG__ERROR_CODE__BATCH_TOO_LARGE},
        {EBADMSG, SYNCLOG__ERROR_CODE__CORRUPT_BATCH},
        {EAGAIN, SYNCLOG__ERROR_CODE__THROTTLED},
        {ERANGE, SYNCLOG__ERROR_CODE__OFFSET_OUT_OF_RANGE},
        {ENOTSUP, SYNCLOG__ERROR_CODE__UNSUPPORTED_CODEC},
        {EUCLEAN, SYNCLOG__ERROR_CODE__PARTITION_UNAVAILABLE},
        {ENODATA, SYNCLOG__ERROR_CODE__RECORDS_LOST}, /* sl_log_locate in a range repair cut out */
        {ESHUTDOWN, SYNCLOG__ERROR_CODE__BROKER_SHUTTING_DOWN},
        {ENOMEM, SYNCLOG__ERROR_CODE__INTERNAL},
};

Synclog__ErrorCode sl_errno_to_code(int err)
{
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (-table[i].err == err)
			return table[i].code;
	return SYNCLOG__ERROR_CODE__STORAGE_ERROR;
}
