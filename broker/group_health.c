/* Consumer group health, Burrow's model built into the broker: every tick, each tracked group partition gets a
 * sample (committed offset, log end, time) in a ring of its group's window and a state judged from them; the
 * rules are at the top of groups.c. Also the lag of a partition in records and in time, with the timestamp of
 * the oldest unconsumed record cached so that a scrape or a describe does not read the disk for it again.
 *
 * Which thread may call: the shard's loop thread only. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/groups.h"
#include "proto/base/slog.h"
#include "proto/batch.h"

/* Record timestamps looked up per health tick (one pread each, from the page cache): bounds the tick's reads. */
#define TIMESTAMP_LOOKUPS_PER_TICK 2048u

/* ---- health ---- */

int64_t sl_group_stall_after_ms(const struct sl_groups *g, const struct sl_group *grp)
{
	return grp->stall_after_ms > 0 ? grp->stall_after_ms : g->settings.stall_after_ms;
}

uint32_t sl_group_window(const struct sl_groups *g, const struct sl_group *grp)
{
	return grp->window > 0 ? grp->window : g->settings.window;
}

uint32_t sl_groups_tick_ms(const struct sl_groups_settings *s)
{
	/* Once a second, or four times per stall-after when that is shorter (tests use 1-2 s). */
	int64_t ms = s->stall_after_ms / 4;
	return ms > 1000 ? 1000u : ms < 100 ? 100u : (uint32_t)ms;
}

/* Timestamp of the record at offset (the oldest unconsumed one), for lag in time. A compressed batch is not
 * decompressed for this: its first record's timestamp stands in, early by at most the producer's linger. */
static int record_timestamp(struct sl_log *log, int64_t offset, int64_t *ts_out)
{
	struct sl_log_span span;
	int rc = sl_log_locate(log, offset, 1, &span);
	if (rc < 0 || span.len == 0)
		return rc < 0 ? rc : -ERANGE;
	struct sl_batch_header h;
	uint8_t hdr[SL_BATCH_HEADER_BYTES];
	if (pread(span.fd, hdr, sizeof(hdr), (off_t)span.pos) != (ssize_t)sizeof(hdr) ||
	    sl_batch_header_parse(hdr, sizeof(hdr), &h) < 0)
		return -EIO;
	/* A batch the cleaner stamped carries its delete horizon in baseTimestamp: its records tell the time. */
	int horizon = (h.attributes & SL_BATCH_ATTR_DELETE_HORIZON) != 0;
	*ts_out = horizon ? h.max_timestamp : h.base_timestamp;
	if ((h.attributes & SL_BATCH_ATTR_CODEC_MASK) != 0 || (h.base_offset == offset && !horizon))
		return 0;
	size_t len = sl_batch_total_bytes(&h);
	uint8_t *buf = malloc(len);
	rc = buf ? 0 : -ENOMEM;
	if (rc == 0 && pread(span.fd, buf, len, (off_t)span.pos) != (ssize_t)len)
		rc = -EIO;
	struct sl_record_iter it;
	if (rc == 0)
		rc = sl_record_iter_init(&it, buf, len, NULL, 0);
	struct sl_record r;
	while (rc == 0 && sl_record_iter_next(&it, &r) == 1) {
		if (r.offset >= offset) {
			*ts_out = r.timestamp_ms;
			break;
		}
	}
	free(buf);
	return rc;
}

static struct sl_log *partition_log(struct sl_groups *g, const char *topic, uint32_t partition)
{
	struct sl_topic *t = sl_topics_find(g->topics, topic);
	if (t == NULL || partition >= t->cfg.partitions)
		return NULL;
	return t->parts[partition].log;
}

/* Lag of c against log; the time lag's record timestamp is looked up only when the position moved (the cache),
 * and not at all when lookups_left is 0 (the last value stands). */
static void lag_of(struct sl_log *log, struct sl_commit *c, int64_t now_ms, uint32_t *lookups_left, int64_t *next_out,
                   int64_t *lag_out, int64_t *lag_ms_out)
{
	int64_t start = sl_log_start_offset(log), next = sl_log_next_offset(log);
	int64_t from = c->offset >= 0 ? c->offset : start;
	if (from < start)
		from = start; /* retention passed the commit: what is left is the lag */
	*next_out = next;
	*lag_out = next > from ? next - from : 0;
	*lag_ms_out = 0;
	if (*lag_out == 0)
		return;
	if (c->ts_offset != from && (lookups_left == NULL || *lookups_left > 0)) {
		int64_t ts;
		if (lookups_left != NULL)
			(*lookups_left)--;
		if (record_timestamp(log, from, &ts) == 0) {
			c->ts_offset = from;
			c->ts_ms = ts;
		}
	}
	if (c->ts_offset == from)
		*lag_ms_out = now_ms > c->ts_ms ? now_ms - c->ts_ms : 0;
}

int sl_group_lag(struct sl_groups *g, struct sl_commit *c, int64_t now_ms, int64_t *next_out, int64_t *lag_out,
                 int64_t *lag_ms_out)
{
	struct sl_log *log = partition_log(g, c->topic, c->partition);
	if (log == NULL)
		return -ENOENT;
	lag_of(log, c, now_ms, NULL, next_out, lag_out, lag_ms_out);
	return 0;
}

static enum sl_health judge(const struct sl_commit *c, uint32_t window, int64_t stall_after_ms, int owned,
                            int64_t now_ms)
{
	if (c->records_lost > 0)
		return SL_HEALTH_LOST;
	uint32_t n = c->sample_count;
	const struct sl_health_sample *s = c->samples;
	/* Samples in time order: the ring starts at sample_next once full. */
#define SAMPLE(i) (s[(c->sample_next + window - n + (i)) % window])
	if (c->lag == 0) {
		int moved = n > 0 && SAMPLE(n - 1).log_end != SAMPLE(0).log_end;
		return moved ? SL_HEALTH_OK : SL_HEALTH_IDLE;
	}
	if (!owned && now_ms - (c->lag_since_ms > c->owned_ms ? c->lag_since_ms : c->owned_ms) >= stall_after_ms)
		return SL_HEALTH_STOPPED;
	if (owned && now_ms - (c->lag_since_ms > c->moved_ms ? c->lag_since_ms : c->moved_ms) >= stall_after_ms)
		return SL_HEALTH_STALLED;
	if (n == window) {
		int grew = 1;
		for (uint32_t i = 1; i < n && grew; i++)
			grew = SAMPLE(i).log_end - SAMPLE(i).committed >=
			       SAMPLE(i - 1).log_end - SAMPLE(i - 1).committed;
		int64_t first = SAMPLE(0).log_end - SAMPLE(0).committed,
		        last = SAMPLE(n - 1).log_end - SAMPLE(n - 1).committed;
		if (grew && last > first && SAMPLE(n - 1).committed != SAMPLE(0).committed)
			return SL_HEALTH_LAGGING;
	}
#undef SAMPLE
	return SL_HEALTH_OK;
}

static void state_change_log(const struct sl_group *grp, const struct sl_commit *c, enum sl_health from, int64_t lag_ms)
{
	int bad = c->state == SL_HEALTH_STALLED || c->state == SL_HEALTH_STOPPED || c->state == SL_HEALTH_LOST;
	struct sl_slog *e = sl_slog_begin(bad ? SL_SLOG_WARN : SL_SLOG_INFO, "group_state");
	sl_slog_str(e, "group", grp->name);
	sl_slog_str(e, "topic", c->topic);
	sl_slog_uint(e, "partition", c->partition);
	sl_slog_str(e, "state", sl_health_name(c->state));
	sl_slog_str(e, "previous", sl_health_name(from));
	sl_slog_int(e, "lag", c->lag);
	sl_slog_int(e, "lag_ms", lag_ms);
	sl_slog_int(e, "committed", c->offset);
	if (c->records_lost > 0)
		sl_slog_int(e, "records_lost", c->records_lost);
	sl_slog_end(e);
}

static void partition_tick(struct sl_groups *g, struct sl_group *grp, struct sl_commit *c, uint32_t window,
                           int64_t stall_after_ms, int64_t now_ms, uint32_t *lookups_left)
{
	struct sl_log *log = partition_log(g, c->topic, c->partition);
	if (log == NULL) {
		c->lag = -1;
		return;
	}
	if (c->samples == NULL || c->sample_count > window) {
		/* First tick, or the window changed: start the ring over. */
		free(c->samples);
		c->samples = calloc(window, sizeof(*c->samples));
		c->sample_count = c->sample_next = 0;
		if (c->samples == NULL)
			return;
	}
	int64_t next, lag, lag_ms;
	lag_of(log, c, now_ms, lookups_left, &next, &lag, &lag_ms);
	int64_t start = sl_log_start_offset(log);
	if (c->offset >= 0 && c->offset < start && c->records_lost < start - c->offset) {
		c->records_lost = start - c->offset; /* retention removed what the group had not read */
		sl_groups_lost_persist(g, grp, c);
	}
	c->lag = lag;
	c->lag_ms = lag_ms;
	if (lag == 0)
		c->lag_since_ms = 0;
	else if (c->lag_since_ms == 0)
		c->lag_since_ms = now_ms;
	/* While the group forms or is reset, its members wait for their assignment: they are live. */
	int owned = sl_group_owner(grp, c->topic, c->partition) != NULL ||
	            (grp->member_count > 0 && (grp->state == SL_GROUP_FORMING || grp->state == SL_GROUP_RESETTING));
	if (owned)
		c->owned_ms = now_ms;
	c->samples[c->sample_next] = (struct sl_health_sample){c->offset >= 0 ? c->offset : start, next, now_ms};
	c->sample_next = (c->sample_next + 1) % window;
	if (c->sample_count < window)
		c->sample_count++;
	enum sl_health state = judge(c, window, stall_after_ms, owned, now_ms);
	if (state != c->state) {
		enum sl_health from = c->state;
		c->state = state;
		c->state_since_ms = now_ms;
		state_change_log(grp, c, from, lag_ms);
	}
}

void sl_groups_health_tick(struct sl_groups *g, int64_t now_ms)
{
	uint32_t lookups_left = TIMESTAMP_LOOKUPS_PER_TICK;
	for (uint32_t k = 0; k < g->group_count; k++) {
		struct sl_group *grp = g->sorted[k];
		uint32_t window = sl_group_window(g, grp);
		int64_t stall_after = sl_group_stall_after_ms(g, grp);
		sl_group_track_all(g, grp, now_ms);
		enum sl_health worst = SL_HEALTH_IDLE;
		for (uint32_t i = 0; i < grp->commit_count; i++) {
			partition_tick(g, grp, &grp->commits[i], window, stall_after, now_ms, &lookups_left);
			if (grp->commits[i].lag >= 0 && grp->commits[i].state > worst)
				worst = grp->commits[i].state;
		}
		if (worst != grp->worst) {
			grp->worst = worst;
			grp->worst_since_ms = now_ms;
		}
	}
	sl_groups_compact_check(g);
}
