/* The request API shared by the front ends and the handlers; see request.h for the lifecycle it keeps. */
#include <errno.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/request.h"
#include "broker/shard.h"
#include "proto/base/assert.h"
#include "proto/base/clock.h"

void sl_req_init(struct sl_req *req, struct sl_server *srv, const struct sl_req_frontend *fe, void *fe_data,
                 struct sl_session *session)
{
	req->srv = srv;
	req->fe = fe;
	req->fe_data = fe_data;
	req->session = session;
	req->start_ns = sl_clock_mono_ns();
	synclog__response__init(&req->resp);
}

void sl_req_hold(struct sl_req *req, uint64_t bytes)
{
	if (req->fe->hold == NULL)
		return;
	req->fe->hold(req, bytes);
	req->held_bytes += bytes;
}

void *sl_req_alloc(struct sl_req *req, size_t bytes)
{
	struct sl_req_chunk *ch = calloc(1, sizeof(*ch) + bytes);
	if (ch == NULL)
		return NULL;
	ch->next = req->chunks;
	req->chunks = ch;
	return ch->data;
}

char *sl_req_strdup(struct sl_req *req, const char *s)
{
	size_t n = strlen(s);
	char *p = sl_req_alloc(req, n + 1);
	if (p)
		memcpy(p, s, n);
	return p;
}

void sl_req_fail(struct sl_req *req, Synclog__ErrorCode code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(req->error_message, sizeof(req->error_message), fmt, ap);
	va_end(ap);
	req->resp.error = code;
	req->resp.error_message = req->error_message;
}

struct sl_req_file *sl_req_file_of(struct sl_req *req, const uint8_t *data, size_t len)
{
	if (req->file_count == 0 || data == NULL)
		return NULL;
	/* A marker is the address of an entry of req->files; any other address falls outside the array. */
	uintptr_t at = (uintptr_t)data - (uintptr_t)req->files;
	size_t k = at / sizeof(*req->files);
	if (at % sizeof(*req->files) != 0 || k >= req->file_count || req->files[k].len != len)
		return NULL;
	return &req->files[k];
}

static void req_free(struct sl_req *req)
{
	if (req->free_body)
		req->free_body(req);
	free(req->body_mem);
	for (uint32_t i = 0; i < req->file_count; i++)
		if (req->files[i].fd >= 0)
			close(req->files[i].fd);
	free(req->files);
	if (req->msg && !req->msg_borrowed)
		synclog__request__free_unpacked(req->msg, NULL);
	while (req->chunks) {
		struct sl_req_chunk *ch = req->chunks;
		req->chunks = ch->next;
		free(ch);
	}
	/* Last: the front end may free the frame a borrowed message pointed into, and req itself. */
	req->fe->finish(req);
}

void sl_req_release(struct sl_req *req)
{
	if (req->responded && req->pending == 0 && !req->parked)
		req_free(req);
}

void sl_req_respond(struct sl_req *req)
{
	SL_ASSERT(!req->responded);
	req->responded = 1;
	unsigned kind = req->msg ? (unsigned)req->msg->body_case : 0;
	if (kind >= SL_REQUEST_KINDS)
		kind = 0;
	struct sl_server_stats *st = &req->srv->stats;
	sl_histogram_observe_ns(&st->request_latency[kind], sl_clock_mono_ns() - req->start_ns);
	st->requests_by_kind[kind]++;
	if (req->resp.error != SYNCLOG__ERROR_CODE__NONE)
		st->request_errors_by_kind[kind]++;
	req->resp.correlation_id = req->msg ? req->msg->correlation_id : 0;
	sl_security_responded(req);
	req->fe->send(req);
	sl_req_release(req);
}

void sl_req_park(struct sl_req *req, void (*cancel_cb)(struct sl_req *req, int drop))
{
	SL_ASSERT(!req->parked && cancel_cb != NULL);
	struct sl_session *s = req->session;
	req->parked = 1;
	req->cancel_cb = cancel_cb;
	req->cancel_prev = NULL;
	req->cancel_next = s->cancel_head;
	if (s->cancel_head)
		s->cancel_head->cancel_prev = req;
	s->cancel_head = req;
}

void sl_req_unpark(struct sl_req *req)
{
	SL_ASSERT(req->parked);
	struct sl_session *s = req->session;
	if (req->cancel_prev)
		req->cancel_prev->cancel_next = req->cancel_next;
	else
		s->cancel_head = req->cancel_next;
	if (req->cancel_next)
		req->cancel_next->cancel_prev = req->cancel_prev;
	req->cancel_next = req->cancel_prev = NULL;
	req->parked = 0;
}

void sl_req_cancel_all(struct sl_session *s, int drop)
{
	/* Each hook unparks its request, so the head moves on every pass. */
	while (s->cancel_head) {
		struct sl_req *req = s->cancel_head;
		req->cancel_cb(req, drop);
		SL_ASSERT(s->cancel_head != req);
	}
}

int sl_session_producer_id_admit(struct sl_session *s, int64_t producer_id)
{
	for (uint32_t i = 0; i < s->producer_id_count; i++)
		if (s->producer_ids[i] == producer_id)
			return 0;
	if (s->producer_id_count == SL_SESSION_PRODUCER_IDS_MAX)
		return -EAGAIN;
	s->producer_ids[s->producer_id_count++] = producer_id;
	return 0;
}
