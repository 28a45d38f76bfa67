/* A request as the handlers see it, whichever front end decoded it (the native protobuf listener in broker/net/,
 * the Kafka listener in broker/kafka/): the decoded message, the response being built, the memory that lives as
 * long as the request, and the calls a handler answers with. The front end owns the connection; a handler never
 * sees it. Which thread may call: the shard's loop thread only.
 *
 * Lifecycle (a request is in exactly one of these states):
 *
 *   front end                          handler                                 front end
 *   decode -> sl_dispatch() -> HANDLING -- sl_req_respond() --> RESPONDED ----> (pending == 0, no cancel hook)
 *                                |                               ^                 -> fe->finish(): freed
 *                                +-- sl_req_park() --> PARKED ---+ (the hook runs on wake, timeout or cancel)
 *
 * Invariants:
 *   1. sl_req_respond is called exactly once per request; the front end sends the response or, when its client
 *      is gone, drops it.
 *   2. A request is freed only when it was answered, all storage work it started has called back (pending == 0)
 *      and it is not parked.
 *   3. A parked request is on its session's cancel list; the front end calls sl_req_cancel_all when the client
 *      goes (drop != 0) or the broker shuts down (drop == 0: answer now with what it has). */
#ifndef SL_BROKER_REQUEST_H
#define SL_BROKER_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "broker/security.h"
#include "proto/synclog.pb-c.h"

struct sl_server;
struct sl_req;
struct sl_produce_item;
struct sl_fetch_wait;
struct sl_fetch_read;
struct sl_fetch_warm;

/* What a front end does for its requests. */
struct sl_req_frontend {
	const char *name; /* "native", "kafka": for logs */
	/* Encode req->resp and queue it to the client, or drop it when the client is gone. */
	void (*send)(struct sl_req *req);
	/* The request is done (invariant 2): give back what the front end holds for it, including what was held
	 * for it (req->held_bytes), then free(req). */
	void (*finish)(struct sl_req *req);
	/* A handler holds bytes for this request's answer before send sees them (reads in flight into buffers):
	 * the front end counts them with the connection's bytes in flight and the broker's memory budget
	 * (broker/limits.h) until finish. NULL: not counted. */
	void (*hold)(struct sl_req *req, uint64_t bytes);
	/* May this request's answer carry file_count stored spans by reference (req->files, struct sl_req_file)
	 * rather than as bytes in memory? 0: yes, and the front end has set aside what sending them needs (it gives
	 * that back in send or finish); negative errno: no, the handler reads the bytes as usual. NULL: never. */
	int (*files_reserve)(struct sl_req *req, uint32_t file_count);
};

/* A stored span an answer carries by reference: the handler sets a bytes field's data to the address of this
 * entry (a marker, never read as bytes) and its len to len; the front end that reserved it sends len bytes from
 * fd at pos in that place. fd is the request's own descriptor of the file (a dup: the file's bytes stay readable
 * if retention or the cleaner deletes it meanwhile); whoever holds it last closes it (-1: nothing to close). */
struct sl_req_file {
	int fd;
	uint64_t pos;
	uint64_t len;
};

/* Producer ids one connection may bring into the partitions' producer tables: ids it was first to use on a
 * partition whose table did not know them (any number of partitions each). Our client makes one producer per
 * connection; a Kafka client one per producer. Without a bound, one connection could fill a partition's table
 * (4,096 ids, handlers/produce.c) and push real producers' idempotence state out. InitProducer itself takes no
 * place in any table and is not bounded. */
#define SL_SESSION_PRODUCER_IDS_MAX 8

/* What the handlers know of the client a request came from: one per connection, owned by the front end. */
struct sl_session {
	int hello_done;             /* native protocol: Hello negotiated */
	int close_after_write;      /* protocol mismatch: close once the error is sent */
	struct sl_req *cancel_head; /* parked requests (invariant 3) */
	char peer[64];              /* "ADDRESS:PORT" of the client, for logs */
	int64_t producer_ids[SL_SESSION_PRODUCER_IDS_MAX];
	uint32_t producer_id_count;
	struct sl_session_security sec; /* its principal, the SCRAM exchange, quotas (broker/security.h) */
	/* The front end's: read the connection again if it stopped at its principal's bound (security.h rule 5). */
	void (*wake_cb)(struct sl_session *s);
};

struct sl_req {
	struct sl_server *srv;
	const struct sl_req_frontend *fe;
	void *fe_data; /* the front end's own (its connection) */
	struct sl_session *session;
	Synclog__Request *msg;
	int msg_borrowed; /* msg lives in chunks: not protobuf-c's to free */
	Synclog__Response resp;
	char error_message[512];
	int responded;
	/* An administrative request's audit line (broker/security.h rule 3): 1 + enum sl_audit_action, or 0. */
	int audit_action;
	char audit_target[320];
	int64_t start_ns;    /* CLOCK_MONOTONIC at sl_req_init: the request latency metric */
	size_t pending;      /* storage work started and not yet called back */
	uint64_t held_bytes; /* sl_req_hold: what the front end counts for this request besides its frame */
	/* Parking (invariant 3): the hook answers or drops the request; the front end never calls into a handler. */
	void (*cancel_cb)(struct sl_req *req, int drop);
	struct sl_req *cancel_next, *cancel_prev;
	int parked;
	/* Produce. */
	struct sl_produce_item *items;
	size_t item_count;
	uint32_t hold_ms; /* the backfill quota holds the answer back this long once the appends are done */
	Synclog__ProduceResponse produce;
	Synclog__ProducePartitionResult **produce_results;
	/* Fetch. */
	Synclog__FetchResponse fetch;
	Synclog__FetchPartitionResult *fetch_results;
	Synclog__FetchPartitionResult **fetch_result_ptrs;
	struct sl_fetch_wait *waits;
	struct sl_fetch_read *fetch_reads; /* one per asked partition (handlers/fetch.c) */
	size_t fetch_reads_pending;
	struct sl_req_file *files; /* spans the answer carries by reference (files_reserve); closed at free */
	uint32_t file_count;
	struct uv_timer_s *wait_timer;    /* a parked fetch or a held produce: allocated while parked; freed in its
	                                   * close callback */
	uint64_t fetch_ready_bytes;       /* parked: bytes a fill would return now, as the waits counted them */
	struct sl_fetch_warm *fetch_warm; /* the disk work of a cold plan, run off the loop (handlers/fetch.c) */
	/* Other responses keep their bodies here and in heap memory freed by free_body. */
	void (*free_body)(struct sl_req *req);
	union {
		Synclog__HelloResponse hello;
		Synclog__CreateTopicResponse create_topic;
		Synclog__DeleteTopicResponse delete_topic;
		Synclog__ListTopicsResponse list_topics;
		Synclog__DescribeTopicResponse describe_topic;
		Synclog__ListOffsetsResponse list_offsets;
		Synclog__InitProducerResponse init_producer;
	} body;
	void *body_mem;
	/* Response memory from sl_req_alloc, freed with the request. */
	struct sl_req_chunk *chunks;
};

struct sl_req_chunk {
	struct sl_req_chunk *next;
	max_align_t data[];
};

/* Set up a request the front end allocated (zeroed) for message msg; it then calls sl_dispatch (dispatch.h). */
void sl_req_init(struct sl_req *req, struct sl_server *srv, const struct sl_req_frontend *fe, void *fe_data,
                 struct sl_session *session);
/* The answer will need bytes that are allocated now (front end's hold, request.h). */
void sl_req_hold(struct sl_req *req, uint64_t bytes);
/* Zeroed memory that lives as long as the request (response bodies). NULL when out of memory. */
void *sl_req_alloc(struct sl_req *req, size_t bytes);
char *sl_req_strdup(struct sl_req *req, const char *s);
/* The span whose marker a bytes field of req's answer holds (data and len as the field has them), or NULL when the
 * field holds bytes in memory. For the front ends that reserved files (request.h, files_reserve). */
struct sl_req_file *sl_req_file_of(struct sl_req *req, const uint8_t *data, size_t len);
/* Set the request-level error of req's response. */
void sl_req_fail(struct sl_req *req, Synclog__ErrorCode code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Hand the response to the front end (invariant 1) and free the request unless storage work is pending or it is
 * parked, in which case sl_req_release frees it later. */
void sl_req_respond(struct sl_req *req);
/* Free a request once invariant 2 holds; a no-op before. */
void sl_req_release(struct sl_req *req);
/* Park req on its session: cancel_cb runs if the client goes or the broker stops before the handler answers. */
void sl_req_park(struct sl_req *req, void (*cancel_cb)(struct sl_req *req, int drop));
/* Take req off its session's list (the handler answers it itself). */
void sl_req_unpark(struct sl_req *req);
/* Run the cancel hook of every parked request of a session (front end: client gone, or shutdown). */
void sl_req_cancel_all(struct sl_session *s, int drop);
/* 0 when the session may bring producer_id (it is already one of its own, or a place is left, and then it
 * becomes one), -EAGAIN when it already brought SL_SESSION_PRODUCER_IDS_MAX. */
int sl_session_producer_id_admit(struct sl_session *s, int64_t producer_id);
/* The timestamp of the record a ListOffsets by time found for po, one of its answers (-1: none, the log end; also
 * for the other specs). The Kafka listener answers it; the native protocol has no field for it
 * (handlers/list_offsets.c). */
int64_t sl_list_offsets_found_timestamp(const Synclog__PartitionOffset *po);

#endif
