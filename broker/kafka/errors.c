/* The one map from the handlers' error codes (proto/synclog.proto) to Kafka's, chosen so that a Kafka client
 * reacts as it should: retries what is retriable (storage errors, a retried batch still being written), gives up
 * on what is not (a corrupt batch, a fenced producer). The handler's message goes to the broker's log. */
#include "broker/kafka/kafka_impl.h"

int16_t sl_kafka_error_of(Synclog__ErrorCode code)
{
	switch (code) {
	case SYNCLOG__ERROR_CODE__NONE:
		return SL_KERR_NONE;
	case SYNCLOG__ERROR_CODE__UNSUPPORTED_VERSION:
		return SL_KERR_UNSUPPORTED_VERSION;
	case SYNCLOG__ERROR_CODE__INVALID_REQUEST:
		return SL_KERR_INVALID_REQUEST;
	case SYNCLOG__ERROR_CODE__UNKNOWN_TOPIC:
	case SYNCLOG__ERROR_CODE__UNKNOWN_PARTITION:
		return SL_KERR_UNKNOWN_TOPIC_OR_PARTITION;
	case SYNCLOG__ERROR_CODE__TOPIC_EXISTS:
		return SL_KERR_TOPIC_ALREADY_EXISTS;
	case SYNCLOG__ERROR_CODE__INVALID_TOPIC_NAME:
		return SL_KERR_INVALID_TOPIC_EXCEPTION;
	case SYNCLOG__ERROR_CODE__INVALID_PARTITIONS:
		return SL_KERR_INVALID_PARTITIONS;
	case SYNCLOG__ERROR_CODE__CORRUPT_BATCH:
		return SL_KERR_CORRUPT_MESSAGE;
	case SYNCLOG__ERROR_CODE__BATCH_TOO_LARGE:
		return SL_KERR_MESSAGE_TOO_LARGE;
	case SYNCLOG__ERROR_CODE__OFFSET_OUT_OF_RANGE:
		return SL_KERR_OFFSET_OUT_OF_RANGE;
	case SYNCLOG__ERROR_CODE__OUT_OF_ORDER_SEQUENCE:
		return SL_KERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
	case SYNCLOG__ERROR_CODE__UNKNOWN_PRODUCER:
		return SL_KERR_UNKNOWN_PRODUCER_ID;
	case SYNCLOG__ERROR_CODE__STORAGE_ERROR:
	case SYNCLOG__ERROR_CODE__NOT_ENOUGH_SPACE:
	case SYNCLOG__ERROR_CODE__PARTITION_UNAVAILABLE:
		/* Retriable in every Kafka client; nothing was acknowledged. */
		return SL_KERR_KAFKA_STORAGE_ERROR;
	case SYNCLOG__ERROR_CODE__THROTTLED:
		/* A retried batch whose original is still being written: the client retries, and the retry is then
		 * answered with the original's offsets. */
		return SL_KERR_REQUEST_TIMED_OUT;
	case SYNCLOG__ERROR_CODE__BROKER_SHUTTING_DOWN:
		/* Clients refresh metadata and retry: the same broker once it is back. */
		return SL_KERR_NOT_LEADER_OR_FOLLOWER;
	case SYNCLOG__ERROR_CODE__UNSUPPORTED_CODEC:
		return SL_KERR_UNSUPPORTED_COMPRESSION_TYPE;
	case SYNCLOG__ERROR_CODE__UNSUPPORTED_FEATURE:
	case SYNCLOG__ERROR_CODE__INVALID_CONFIG:
		/* A topic config the broker does not have, or a value it refuses. */
		return SL_KERR_INVALID_CONFIG;
	case SYNCLOG__ERROR_CODE__UNKNOWN_GROUP:
		return SL_KERR_GROUP_ID_NOT_FOUND;
	case SYNCLOG__ERROR_CODE__UNKNOWN_MEMBER:
		return SL_KERR_UNKNOWN_MEMBER_ID;
	case SYNCLOG__ERROR_CODE__ILLEGAL_GENERATION:
		return SL_KERR_ILLEGAL_GENERATION;
	case SYNCLOG__ERROR_CODE__REBALANCE_IN_PROGRESS:
		return SL_KERR_REBALANCE_IN_PROGRESS;
	case SYNCLOG__ERROR_CODE__GROUP_NOT_EMPTY:
		return SL_KERR_NON_EMPTY_GROUP;
	case SYNCLOG__ERROR_CODE__INVALID_GROUP_NAME:
		return SL_KERR_INVALID_GROUP_ID;
	/* Security (broker/security.h): the resource kind of a refusal picks Kafka's code. */
	case SYNCLOG__ERROR_CODE__AUTHENTICATION_FAILED:
		return SL_KERR_SASL_AUTHENTICATION_FAILED;
	case SYNCLOG__ERROR_CODE__TOPIC_AUTHORIZATION_FAILED:
		return SL_KERR_TOPIC_AUTHORIZATION_FAILED;
	case SYNCLOG__ERROR_CODE__GROUP_AUTHORIZATION_FAILED:
		return SL_KERR_GROUP_AUTHORIZATION_FAILED;
	case SYNCLOG__ERROR_CODE__CLUSTER_AUTHORIZATION_FAILED:
		return SL_KERR_CLUSTER_AUTHORIZATION_FAILED;
	default:
		return SL_KERR_UNKNOWN_SERVER_ERROR;
	}
}
