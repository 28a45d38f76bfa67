/* The console's charts need the last hour of records/s in and out and the last minutes of each group's lag; the
 * broker keeps only current counters, so a timer on the loop samples them at a fixed resolution into bounded
 * rings (console.h: SL_CONSOLE_TICK_MS, _RATE_POINTS, _LAG_POINTS, _GROUPS_TRACKED_MAX). Nothing is written to
 * disk: after a restart the charts start empty.
 *
 * A tick is one pass over the topics (their counters) and over the tracked groups' partitions (lag as of the last
 * health tick), the same work a health tick does, once every ten seconds. Group tracks follow srv->groups.sorted
 * (name order) by a merge of two sorted lists: a new group gets a track, a deleted one loses its own.
 *
 * Invariants:
 *   1. tracks[0..track_count) are in strictly increasing name order and track_count <= GROUPS_TRACKED_MAX.
 *   2. A ring's count <= its capacity; its oldest point is at (head + cap - count) % cap.
 *
 * It also keeps the API's cost counters (console.h: sl_console_stats), which live as long as the history.
 *
 * Which thread may call: the shard's loop thread only. */
#include <stdlib.h>
#include <string.h>

#include "broker/net/console.h"
#include "proto/base/clock.h"

struct track {
	char name[SL_GROUP_NAME_BYTES_MAX + 1];
	uint32_t head, count;
	struct sl_console_point points[SL_CONSOLE_LAG_POINTS];
};

struct sl_console {
	uv_timer_t tick;
	uint64_t last_in, last_out; /* totals at the previous tick */
	int64_t last_mono_ms;       /* 0: no previous tick */
	uint32_t head, count;
	struct sl_console_point rates[SL_CONSOLE_RATE_POINTS];
	struct track **tracks, **spare; /* spare: the next tick's list, swapped in */
	uint32_t track_count;
	struct sl_console_stats stats;
	struct sl_console_auth *auth; /* console_auth.c's cache of checked credentials */
};

static void ring_push(struct sl_console_point *ring, uint32_t cap, uint32_t *head, uint32_t *count,
                      struct sl_console_point p)
{
	ring[*head] = p;
	*head = (*head + 1) % cap;
	if (*count < cap)
		(*count)++;
}

static void ring_copy(const struct sl_console_point *ring, uint32_t cap, uint32_t head, uint32_t count,
                      struct sl_console_series *out)
{
	out->count = count;
	for (uint32_t i = 0; i < count; i++)
		out->points[i] = ring[(head + cap - count + i) % cap];
}

static void sample_rates(struct sl_server *srv, struct sl_console *c, int64_t now_ms)
{
	uint64_t in = 0, out = 0;
	for (struct sl_topic *t = srv->topics.head; t; t = t->next) {
		for (int k = 0; k < 3; k++)
			in += t->counters.produce_records[k];
		out += t->counters.fetch_records;
	}
	int64_t mono_ms = sl_clock_mono_ns() / 1000000;
	if (c->last_mono_ms > 0 && mono_ms > c->last_mono_ms) {
		double s = (double)(mono_ms - c->last_mono_ms) / 1000.0;
		/* A deleted topic takes its counts with it: a total that went down is a rate of 0, not negative. */
		struct sl_console_point p = {now_ms, in >= c->last_in ? (double)(in - c->last_in) / s : 0,
		                             out >= c->last_out ? (double)(out - c->last_out) / s : 0};
		ring_push(c->rates, SL_CONSOLE_RATE_POINTS, &c->head, &c->count, p);
	}
	c->last_in = in;
	c->last_out = out;
	c->last_mono_ms = mono_ms;
}

static void sample_lag(struct sl_server *srv, struct sl_console *c, int64_t now_ms)
{
	struct sl_groups *g = &srv->groups;
	uint32_t old = 0, n = 0;
	for (uint32_t k = 0; k < g->group_count && n < SL_CONSOLE_GROUPS_TRACKED_MAX; k++) {
		struct sl_group *grp = g->sorted[k];
		/* Tracks of groups that sort before this one are gone. */
		while (old < c->track_count && strcmp(c->tracks[old]->name, grp->name) < 0)
			free(c->tracks[old++]);
		struct track *t;
		if (old < c->track_count && strcmp(c->tracks[old]->name, grp->name) == 0) {
			t = c->tracks[old++];
		} else {
			t = calloc(1, sizeof(*t));
			if (t == NULL)
				continue; /* out of memory: this group has no chart */
			snprintf(t->name, sizeof(t->name), "%s", grp->name);
		}
		struct sl_console_point p = {now_ms, 0, 0};
		for (uint32_t i = 0; i < grp->commit_count; i++) {
			const struct sl_commit *cm = &grp->commits[i];
			if (cm->lag < 0)
				continue;
			p.a += (double)cm->lag;
			if ((double)cm->lag_ms > p.b)
				p.b = (double)cm->lag_ms;
		}
		ring_push(t->points, SL_CONSOLE_LAG_POINTS, &t->head, &t->count, p);
		c->spare[n++] = t;
	}
	while (old < c->track_count)
		free(c->tracks[old++]);
	struct track **swap = c->tracks;
	c->tracks = c->spare;
	c->spare = swap;
	c->track_count = n;
}

static void tick_cb(uv_timer_t *timer)
{
	struct sl_server *srv = timer->data;
	if (!srv->ready)
		return; /* recovery still owns the topics and groups */
	int64_t now_ms = sl_clock_wall_ms();
	sample_rates(srv, srv->console, now_ms);
	sample_lag(srv, srv->console, now_ms);
}

int sl_console_history_start(struct sl_server *srv)
{
	struct sl_console *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->tracks = calloc(SL_CONSOLE_GROUPS_TRACKED_MAX, sizeof(*c->tracks));
	c->spare = calloc(SL_CONSOLE_GROUPS_TRACKED_MAX, sizeof(*c->spare));
	c->auth = sl_console_auth_new();
	if (c->tracks == NULL || c->spare == NULL || c->auth == NULL) {
		sl_console_auth_free(c->auth);
		free(c->tracks);
		free(c->spare);
		free(c);
		return -ENOMEM;
	}
	uv_timer_init(&srv->loop, &c->tick);
	c->tick.data = srv;
	uv_timer_start(&c->tick, tick_cb, SL_CONSOLE_FIRST_TICK_MS, SL_CONSOLE_TICK_MS);
	srv->console = c;
	return 0;
}

static void history_free_cb(uv_handle_t *h)
{
	struct sl_console *c = (struct sl_console *)((char *)h - offsetof(struct sl_console, tick));
	for (uint32_t i = 0; i < c->track_count; i++)
		free(c->tracks[i]);
	free(c->tracks);
	free(c->spare);
	sl_console_auth_free(c->auth);
	free(c);
}

void sl_console_history_stop(struct sl_server *srv)
{
	struct sl_console *c = srv->console;
	if (c == NULL)
		return;
	srv->console = NULL;
	uv_close((uv_handle_t *)&c->tick, history_free_cb);
}

void sl_console_history_copy(struct sl_server *srv, const char *group, struct sl_console_series *out)
{
	struct sl_console *c = srv->console;
	out->count = 0;
	out->tracked = 0;
	if (c == NULL)
		return;
	if (group == NULL) {
		out->tracked = 1;
		ring_copy(c->rates, SL_CONSOLE_RATE_POINTS, c->head, c->count, out);
		return;
	}
	uint32_t lo = 0, hi = c->track_count; /* invariant 1: a binary search */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(c->tracks[mid]->name, group);
		if (cmp == 0) {
			struct track *t = c->tracks[mid];
			out->tracked = 1;
			ring_copy(t->points, SL_CONSOLE_LAG_POINTS, t->head, t->count, out);
			return;
		}
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
}

void sl_console_stats_get(struct sl_server *srv, struct sl_console_stats *out)
{
	static const struct sl_console_stats none;
	*out = srv->console != NULL ? srv->console->stats : none;
}

void sl_console_stats_add(struct sl_server *srv, int64_t loop_ns)
{
	struct sl_console *c = srv->console;
	if (c == NULL)
		return;
	c->stats.requests++;
	c->stats.loop_ns_last = loop_ns;
	if (loop_ns > c->stats.loop_ns_max)
		c->stats.loop_ns_max = loop_ns;
}

struct sl_console_auth *sl_console_auth_state(struct sl_server *srv)
{
	return srv->console != NULL ? srv->console->auth : NULL;
}
