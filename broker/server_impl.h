/* The broker's internal state shared by server.c (connections, framing, dispatch, shutdown) and the request
 * handlers (produce.c, fetch.c, admin.c). Private to broker/.
 *
 * Ownership: a connection is freed only when its handle is closed and no request of it is still in flight
 * (refs == 0). A request is freed once its response was handed to the socket, or dropped when its
 * connection is gone, and all storage work it started has called back. */
#ifndef SL_BROKER_SERVER_IMPL_H
#define SL_BROKER_SERVER_IMPL_H

#include <stddef.h>
#include <uv.h>

#include "broker/groups.h"
#include "broker/ring.h"
#include "broker/server.h"
#include "broker/topics.h"
#include "proto/synclog.pb-c.h"

struct sl_conn;
struct sl_req;

struct sl_server_stats {
	uint64_t connections_accepted;
	uint64_t connections_refused;
	uint64_t requests;
	uint64_t bad_frames;
	uint64_t produce_batches;
	uint64_t produce_records;
	uint64_t produce_bytes;
	uint64_t produce_errors;
	uint64_t fetch_requests;
	uint64_t fetch_bytes;
};

/* Buffers of large frames kept for reuse (frame_pool.c). Classes: 64 KiB, 128 KiB ... 16 MiB, the default frame
 * limit; 64 MiB kept at most: the buffers of four full-size frames, or of a few hundred 256 KiB batches. */
#define SL_FRAME_POOL_CLASS_MIN_BYTES (64u * 1024)
#define SL_FRAME_POOL_CLASSES         9
#define SL_FRAME_POOL_BYTES_MAX       (64u << 20)

struct sl_frame_pool {
	void *free[SL_FRAME_POOL_CLASSES];
	size_t bytes;
	uint64_t allocated_count;
	uint64_t reused_count;
};

/* A buffer of at least bytes, or NULL when out of memory. */
void *sl_frame_pool_get(struct sl_frame_pool *pool, size_t bytes);
/* Give a buffer from sl_frame_pool_get back (NULL is ignored). */
void sl_frame_pool_put(struct sl_frame_pool *pool, void *p);
void sl_frame_pool_free(struct sl_frame_pool *pool);

struct sl_server {
	struct sl_server_config cfg;
	uv_loop_t loop;
	struct sl_ring ring;
	uv_poll_t ring_poll;
	uv_prepare_t submit_prepare;
	uv_tcp_t listener;
	uv_signal_t sigterm;
	uv_signal_t sigint;
	uv_timer_t retention_timer;
	uv_check_t shutdown_check;
	struct sl_topics topics;
	struct sl_groups groups;
	uv_timer_t groups_timer; /* session expiry */
	struct sl_conn *conns;
	uint32_t conn_count;
	int shutting_down;
	int exit_code;
	int64_t next_producer_id;
	int64_t producer_id_reserved; /* ids below this are reserved on disk (admin.c) */
	/* Decompression buffer for validating zstd batches; one per shard, allocated on first use. */
	uint8_t *scratch;
	size_t scratch_cap;
	struct sl_frame_pool frame_pool;
	struct sl_server_stats stats;
	void *metrics; /* metrics.c */
};

struct sl_conn {
	uv_tcp_t tcp;
	struct sl_server *srv;
	struct sl_conn *prev, *next;
	uint8_t *rbuf; /* small frames, several per read; READ_BUFFER_BYTES (server.c) */
	size_t rlen;
	size_t rcap;
	/* A large frame being read into a buffer of its own, which its request then keeps (server.c). */
	uint8_t *fbuf;
	size_t fbuf_need; /* the frame's length without its header */
	size_t fbuf_have;
	int last_frame_owned; /* the previous frame was large: probe the next with a short read */
	int hello_done;
	int closing;           /* uv_close called */
	int read_paused;       /* backpressure */
	int close_after_write; /* protocol mismatch: close once the error is sent */
	uint32_t refs;         /* requests alive */
	uint64_t inflight_bytes;
	struct sl_req *parked; /* long-poll fetches waiting on this connection */
	char peer[64];
};

struct sl_produce_item;
struct sl_fetch_wait;

struct sl_req {
	struct sl_conn *conn;
	struct sl_server *srv;
	Synclog__Request *msg;
	int msg_borrowed;   /* msg lives in chunks and points into frame_mem: not protobuf-c's to free */
	uint8_t *frame_mem; /* the frame, when the request owns it (large frames) */
	size_t frame_bytes;
	Synclog__Response resp;
	char error_message[512];
	int responded;
	/* Produce. */
	struct sl_produce_item *items;
	size_t item_count;
	size_t pending;
	Synclog__ProduceResponse produce;
	Synclog__ProducePartitionResult **produce_results;
	/* Fetch. */
	Synclog__FetchResponse fetch;
	Synclog__FetchPartitionResult *fetch_results;
	Synclog__FetchPartitionResult **fetch_result_ptrs;
	struct sl_fetch_wait *waits;
	uv_timer_t *wait_timer; /* allocated while parked; freed in its close callback */
	struct sl_req *parked_next, *parked_prev;
	int parked;
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

/* Zeroed memory that lives as long as the request (response bodies). NULL when out of memory. */
void *sl_req_alloc(struct sl_req *req, size_t bytes);
char *sl_req_strdup(struct sl_req *req, const char *s);

/* server.c */
/* Hand the response to the socket (or drop it if the connection is gone) and free the request unless storage
 * work is still pending (req->pending), in which case sl_req_release frees it later. */
void sl_req_respond(struct sl_req *req);
/* Free a request whose response was sent or dropped and whose storage work is done. */
void sl_req_release(struct sl_req *req);
/* Set the request-level error of req's response. */
void sl_req_fail(struct sl_req *req, Synclog__ErrorCode code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Map a negative errno from storage to a wire error code. */
Synclog__ErrorCode sl_errno_to_code(int err);

/* produce.c */
void sl_handle_produce(struct sl_req *req);
/* An append of partition p finished: retry the appends that waited for room, wake long-poll fetches. */
void sl_partition_progress(struct sl_server *srv, struct sl_partition *p);

/* fetch.c */
void sl_handle_fetch(struct sl_req *req);
void sl_handle_list_offsets(struct sl_req *req);
/* Wake every long-poll fetch parked on p. */
void sl_fetch_wake(struct sl_partition *p);
/* The request a partition's first waiter belongs to. */
struct sl_req *sl_fetch_wait_req(const struct sl_fetch_wait *w);
/* Answer a parked fetch now with what it has (shutdown, connection closing). cancel != 0 drops it unanswered. */
void sl_fetch_unpark(struct sl_req *req, int cancel);

/* admin.c */
void sl_handle_hello(struct sl_req *req);
void sl_handle_create_topic(struct sl_req *req);
void sl_handle_delete_topic(struct sl_req *req);
void sl_handle_list_topics(struct sl_req *req);
void sl_handle_describe_topic(struct sl_req *req);
void sl_handle_init_producer(struct sl_req *req);
int sl_producer_ids_load(struct sl_server *srv);

/* group_handlers.c */
void sl_handle_join_group(struct sl_req *req);
void sl_handle_heartbeat(struct sl_req *req);
void sl_handle_leave_group(struct sl_req *req);
void sl_handle_offset_commit(struct sl_req *req);
void sl_handle_offset_fetch(struct sl_req *req);
void sl_handle_list_groups(struct sl_req *req);
void sl_handle_describe_group(struct sl_req *req);
void sl_handle_delete_group(struct sl_req *req);

/* metrics.c */
int sl_metrics_start(struct sl_server *srv, char *err, size_t err_cap);
void sl_metrics_stop(struct sl_server *srv);

#endif
