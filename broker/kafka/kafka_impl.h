/* Inside the Kafka front end: a Kafka request's life from its frame to its response, shared by the connection
 * code (conn.c) and the translation of each API (apis.c, data.c, admin.c, groups.c).
 *
 * A Kafka request may name several topics; the handlers take one topic per request. So a Kafka request becomes
 * zero or more handler requests ("subs", struct sl_req of request.h with this front end's send/finish), each
 * answering into one part of the Kafka response:
 *
 *   frame -> decode -> api fn --+-- answers itself (ApiVersions, Metadata, ...) --------------+
 *                               |                                                             v
 *                               +-- sub 0 .. sub N-1 -> sl_dispatch -> handler -> send:  part_cb(index)
 *                                                                   all answered -> done_cb -> ANSWERED
 *   ANSWERED and every request before it on the connection answered -> written: head, parts[0..N), tail
 *
 * Invariants:
 *   1. Responses leave a connection in the order its requests arrived (Kafka's guarantee; the Java client checks
 *      it). A request answered early waits in the connection's queue behind the ones before it.
 *   2. A request is freed once it was written (or dropped with its connection) and every sub it started was
 *      finished by request.h (subs_alive == 0): a sub's batches point into the request's frame.
 *   3. Subs park on the request's own session, so the front end can answer exactly one request's long polls now
 *      (sl_req_cancel_all(&kr->session, 0)) without touching another's.
 *   4. While subs are being dispatched the request holds one count of subs_open, so a sub answered at once
 *      cannot complete the request before the others were started.
 *   5. A Fetch answer to a plaintext connection may carry records by reference (request.h, files_reserve): the
 *      subs' reservations add up on the request (one answer of the shard's pool, broker/sendfile.h, and the sum
 *      of their files), part_cb moves each span's descriptor from its sub into kr->files, placed after its
 *      length field in its part, and the answer goes out through a pipe by splices. It starts only once every
 *      write before it on the connection is done, and nothing after it is written until it is sent, so the
 *      splices and libuv's writes never interleave on the socket (invariant 1). A span was sized by the plan;
 *      its descriptor is the request's own, so retention deleting the segment before or while it is sent
 *      changes none of its bytes (sendfile.h invariant 1); a file found shorter than its span cuts the stream,
 *      as on the native listener.
 *
 * Which thread may call: the shard's loop thread only. */
#ifndef SL_KAFKA_IMPL_H
#define SL_KAFKA_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "broker/frame_pool.h"
#include "broker/kafka/decode.h"
#include "broker/kafka/kafka.h"
#include "broker/kafka/wire.h"
#include "broker/request.h"
#include "broker/shard.h"

/* Kafka's error codes used here (the protocol guide's "Error Codes"). */
enum {
	SL_KERR_UNKNOWN_SERVER_ERROR = -1,
	SL_KERR_NONE = 0,
	SL_KERR_OFFSET_OUT_OF_RANGE = 1,
	SL_KERR_CORRUPT_MESSAGE = 2,
	SL_KERR_UNKNOWN_TOPIC_OR_PARTITION = 3,
	SL_KERR_NOT_LEADER_OR_FOLLOWER = 6,
	SL_KERR_REQUEST_TIMED_OUT = 7,
	SL_KERR_MESSAGE_TOO_LARGE = 10,
	SL_KERR_COORDINATOR_NOT_AVAILABLE = 15,
	SL_KERR_NOT_COORDINATOR = 16,
	SL_KERR_INVALID_TOPIC_EXCEPTION = 17,
	SL_KERR_INVALID_REQUIRED_ACKS = 21,
	SL_KERR_ILLEGAL_GENERATION = 22,
	SL_KERR_INCONSISTENT_GROUP_PROTOCOL = 23,
	SL_KERR_INVALID_GROUP_ID = 24,
	SL_KERR_TOPIC_AUTHORIZATION_FAILED = 29,
	SL_KERR_GROUP_AUTHORIZATION_FAILED = 30,
	SL_KERR_CLUSTER_AUTHORIZATION_FAILED = 31,
	SL_KERR_UNKNOWN_MEMBER_ID = 25,
	SL_KERR_INVALID_SESSION_TIMEOUT = 26,
	SL_KERR_REBALANCE_IN_PROGRESS = 27,
	SL_KERR_UNSUPPORTED_SASL_MECHANISM = 33,
	SL_KERR_ILLEGAL_SASL_STATE = 34,
	SL_KERR_UNSUPPORTED_VERSION = 35,
	SL_KERR_TOPIC_ALREADY_EXISTS = 36,
	SL_KERR_INVALID_PARTITIONS = 37,
	SL_KERR_INVALID_REPLICATION_FACTOR = 38,
	SL_KERR_INVALID_REPLICA_ASSIGNMENT = 39,
	SL_KERR_INVALID_CONFIG = 40,
	SL_KERR_INVALID_REQUEST = 42,
	SL_KERR_OUT_OF_ORDER_SEQUENCE_NUMBER = 45,
	SL_KERR_INVALID_TXN_STATE = 48,
	SL_KERR_KAFKA_STORAGE_ERROR = 56,
	SL_KERR_SASL_AUTHENTICATION_FAILED = 58,
	SL_KERR_UNKNOWN_PRODUCER_ID = 59,
	SL_KERR_NON_EMPTY_GROUP = 68,
	SL_KERR_GROUP_ID_NOT_FOUND = 69,
	SL_KERR_UNSUPPORTED_COMPRESSION_TYPE = 76,
	SL_KERR_GROUP_MAX_SIZE_REACHED = 81,
	SL_KERR_INVALID_RECORD = 87,
};

/* inflate.c: a gzip (codec 1), snappy (2) or lz4 (3) batch as the same batch uncompressed, in the arena, whose bound
 * grows by it; at most out_max bytes. Returns 0, -EINVAL (corrupt: CRC, lengths, compressed data; *why says
 * which), -EMSGSIZE (over out_max) or -ENOMEM. */
#define SL_KAFKA_CODEC_GZIP   1
#define SL_KAFKA_CODEC_SNAPPY 2
#define SL_KAFKA_CODEC_LZ4    3
int sl_kafka_batch_inflate(struct sl_kafka_arena *arena, const uint8_t *in, size_t len, size_t out_max, uint8_t **out,
                           size_t *out_len, const char **why);

/* A topic created through CreateTopics without a partition count (-1, v4+) gets this many. */
#define SL_KAFKA_DEFAULT_PARTITIONS 1

/* Handler requests one Kafka request may start (topics of a Produce, Fetch, CreateTopics or DeleteTopics,
 * partitions of a ListOffsets): each costs about a kilobyte while it lives, so this bounds what one frame can make
 * the broker hold to about 10 MiB. A request over it is refused with a line in the log and its connection
 * closed; no client sends that many topics to one broker in one request in practice. */
#define SL_KAFKA_SUBS_MAX 10000

/* errors.c: the Kafka code for a handler's error code. */
int16_t sl_kafka_error_of(Synclog__ErrorCode code);

struct sl_kafka_conn;

struct sl_kafka_group; /* groups.c: the join and sync phases of one group */

struct sl_kafka {
	struct sl_server *srv;
	uv_tcp_t listener;
	struct sl_kafka_conn *conns;
	char host[256]; /* advertised in Metadata and FindCoordinator */
	int port;
	struct sl_frame_pool frame_pool; /* buffers of large requests, reused */
	struct sl_kafka_group *groups;
	uv_timer_t groups_timer; /* rebalance deadlines and leaders gone mid-sync */
	int groups_timer_on;
};

/* A span of a segment file in a Fetch answer (invariant 5): len bytes of fd at pos, sent at byte at of
 * parts[part]. */
struct sl_kafka_file {
	uint32_t part;
	size_t at;
	int fd; /* the request's to close; -1 once the send owns it */
	uint64_t pos;
	uint64_t len;
};

struct sl_kafka_req {
	struct sl_kafka_conn *conn;
	struct sl_kafka_req *next; /* the connection's queue (invariant 1) */
	struct sl_server *srv;
	uint8_t *frame;
	size_t frame_bytes;
	int frame_pooled; /* frame came from the listener's frame pool (large frames), else malloc */
	struct sl_kafka_arena arena;
	struct sl_kafka_request rq;
	struct sl_session session; /* the subs' (invariant 3) */
	uint32_t subs_open;        /* dispatched, not answered (invariant 4) */
	uint32_t subs_alive;       /* not yet finished by request.h (invariant 2) */
	int answered;
	int dropped;     /* the connection went: nothing is written */
	int no_response; /* Produce with acks=0 */
	int popped;      /* left the queue: written, being written or dropped */
	int writing;
	/* The response: head (size, correlation id, fields before the parts), parts, tail. */
	struct sl_kwrite head;
	struct sl_kwrite *parts;
	uint32_t part_count;
	struct sl_kwrite tail;
	/* Translation of a sub's answer into parts[index], and of the last answer into head and tail. */
	void (*part_cb)(struct sl_kafka_req *kr, uint32_t index, struct sl_req *sub);
	void (*done_cb)(struct sl_kafka_req *kr);
	void *state; /* the API's own, in the arena */
	uv_write_t write;
	uint8_t *tls_out;             /* TLS: the response's ciphertext, freed once written */
	struct sl_principal *charged; /* whose bytes in flight the frame is (security.h rule 5) */
	int close_after;              /* close the connection once this response is written (a failed authentication) */
	int sasl_unframed;            /* a SASL token after SaslHandshake v0: no Kafka header either way (sasl.c) */
	uint32_t throttle_ms;         /* the principal's quota held this response back (security.h rule 4) */
	/* Records sent from the segment files (invariant 5). */
	struct sl_kafka_file *files; /* file_cap entries: one for each file reserved */
	uint32_t file_count;
	uint32_t file_cap;
	int files_reserved;            /* holds a reservation of the shard's pool no send took yet */
	uint32_t files_reserved_count; /* its files: the sum of the subs' */
	struct sl_sendfile *sf;        /* the answer on its way from the files */
};

/* conn.c */
/* A handler request answering into kr->parts[index]; NULL when out of memory. msg is set by the caller, in
 * sl_req_alloc memory of the sub, then the caller calls sl_kafka_sub_dispatch. */
struct sl_req *sl_kafka_sub_new(struct sl_kafka_req *kr, uint32_t index);
void sl_kafka_sub_dispatch(struct sl_req *sub);
/* A sub that could not be built (out of memory): answered INTERNAL at once, through part_cb. */
void sl_kafka_sub_fail(struct sl_req *sub);
/* Check the number of subs a request would start (SL_KAFKA_SUBS_MAX); logs and closes the connection when over.
 * Returns 0 or -E2BIG. */
int sl_kafka_subs_check(struct sl_kafka_req *kr, uint64_t subs);
/* Allocate kr->parts (count zeroed buffers) and hold subs_open while they are dispatched (invariant 4). */
int sl_kafka_req_begin_subs(struct sl_kafka_req *kr, uint32_t part_count);
/* Release the dispatch hold: the request completes once every sub answered. */
void sl_kafka_req_end_subs(struct sl_kafka_req *kr);
/* part_cb of a Fetch: the span whose marker a sub's result holds (sl_req_file_of) goes at the current end of
 * kr->parts[part], right after its length field; the request takes its descriptor (invariant 5). */
void sl_kafka_req_file_add(struct sl_kafka_req *kr, uint32_t part, struct sl_req_file *f);
/* The response is complete (head/parts/tail written): send it in its turn. */
void sl_kafka_req_answer(struct sl_kafka_req *kr);
/* Start the response head: size placeholder, correlation id, and the header's tagged fields when flexible. */
void sl_kafka_head_begin(struct sl_kafka_req *kr, int tagged);
/* Keep kr alive while a group coordinator holds it parked (it is on no session: conn.c cannot cancel it), and
 * let it go once answered. */
void sl_kafka_req_hold(struct sl_kafka_req *kr);
void sl_kafka_req_unhold(struct sl_kafka_req *kr);
/* Log a problem with this request's client (one line, naming the peer and the API). */
void sl_kafka_log(const struct sl_kafka_req *kr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Close the connection after the responses before this one were sent (a protocol error). */
void sl_kafka_req_close_conn(struct sl_kafka_req *kr);

/* The connection's security (broker/security.h): its own session (the principal, the SCRAM exchange, the quota's
 * throttle), whether it speaks TLS, and where its SASL exchange stands (sasl.c). Each request's session carries a
 * copy of the connection's identity, so the handlers and sl_security_check see who is asking. */
enum sl_kafka_sasl { SL_KAFKA_SASL_NONE = 0, SL_KAFKA_SASL_SCRAM, SL_KAFKA_SASL_PLAIN, SL_KAFKA_SASL_DONE };
struct sl_session *sl_kafka_conn_session(struct sl_kafka_conn *c);
int sl_kafka_conn_tls(const struct sl_kafka_conn *c);
enum sl_kafka_sasl sl_kafka_conn_sasl(const struct sl_kafka_conn *c);
void sl_kafka_conn_sasl_set(struct sl_kafka_conn *c, enum sl_kafka_sasl state);
/* SaslHandshake v0 agreed on a mechanism: the connection's next frames are that mechanism's tokens, unframed
 * (sasl.c), until the exchange ends. */
void sl_kafka_conn_sasl_unframed_set(struct sl_kafka_conn *c);
/* Close the connection once kr's response is written (after the ones before it). */
void sl_kafka_req_close_after(struct sl_kafka_req *kr);
/* For the APIs answered without a handler (groups, metadata): 1 when kr's principal may do op to the resource. */
int sl_kafka_allows(struct sl_kafka_req *kr, enum sl_acl_resource r, const char *name, enum sl_acl_op op);

/* sasl.c */
void sl_kafka_sasl_handshake(struct sl_kafka_req *kr);
void sl_kafka_sasl_authenticate(struct sl_kafka_req *kr);

/* apis.c: answer or translate a decoded request. */
void sl_kafka_serve(struct sl_kafka_req *kr);
/* Served versions of key (0 when the listener does not answer it). */
int sl_kafka_api_served(int16_t key, int16_t *min_out, int16_t *max_out);

/* The API translations (one file per kind, like broker/handlers/). */
void sl_kafka_api_versions(struct sl_kafka_req *kr);
void sl_kafka_metadata(struct sl_kafka_req *kr);
void sl_kafka_find_coordinator(struct sl_kafka_req *kr);
void sl_kafka_describe_configs(struct sl_kafka_req *kr);
void sl_kafka_produce(struct sl_kafka_req *kr);
void sl_kafka_fetch(struct sl_kafka_req *kr);
void sl_kafka_list_offsets(struct sl_kafka_req *kr);
void sl_kafka_create_topics(struct sl_kafka_req *kr);
void sl_kafka_delete_topics(struct sl_kafka_req *kr);
void sl_kafka_init_producer_id(struct sl_kafka_req *kr);
void sl_kafka_join_group(struct sl_kafka_req *kr);
void sl_kafka_sync_group(struct sl_kafka_req *kr);
void sl_kafka_heartbeat(struct sl_kafka_req *kr);
void sl_kafka_leave_group(struct sl_kafka_req *kr);
void sl_kafka_offset_commit(struct sl_kafka_req *kr);
void sl_kafka_offset_fetch(struct sl_kafka_req *kr);
void sl_kafka_list_groups(struct sl_kafka_req *kr);
void sl_kafka_describe_groups(struct sl_kafka_req *kr);
/* groups.c: start the coordinator's timer; answer every parked join and sync now (shutdown); stop the timer. */
void sl_kafka_groups_start(struct sl_kafka *k);
void sl_kafka_groups_stop(struct sl_kafka *k);
void sl_kafka_groups_close(struct sl_kafka *k);

#endif
