/* The limits both front ends share: memory budget, connection slots, descriptor plan. See limits.h for the rules. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "broker/limits.h"
#include "proto/base/assert.h"

uint64_t sl_limits_memory_default(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	uint64_t ram = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
	uint64_t v = ram / SL_LIMITS_MEMORY_RAM_DIVISOR;
	return v < SL_LIMITS_MEMORY_MIN_BYTES ? SL_LIMITS_MEMORY_MIN_BYTES : v;
}

void sl_limits_init(struct sl_limits *l, uint64_t memory_max, uint32_t connections_max)
{
	memset(l, 0, sizeof(*l));
	l->memory_max = memory_max ? memory_max : sl_limits_memory_default();
	l->connections_max = connections_max;
}

int sl_limits_plan_descriptors(struct sl_limits *l, char *warning, size_t warning_cap)
{
	struct rlimit rl;
	if (warning_cap)
		warning[0] = '\0';
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	/* Every descriptor we may hold is planned for below, so take all the hard limit allows. */
	if (rl.rlim_cur < rl.rlim_max) {
		struct rlimit raised = {rl.rlim_max, rl.rlim_max};
		if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
			rl.rlim_cur = rl.rlim_max;
	}
	uint64_t nofile = rl.rlim_cur == RLIM_INFINITY ? (1u << 20) : (uint64_t)rl.rlim_cur;
	l->nofile = nofile;
	uint64_t fixed = SL_LIMITS_FDS_RESERVED + SL_LIMITS_SENDFILE_FDS + SL_LIMITS_METRICS_CONNECTIONS_MAX;
	if (nofile < fixed + 2 * SL_LIMITS_FILES_FDS_MIN) {
		snprintf(warning, warning_cap,
		         "the descriptor limit (%" PRIu64
		         ") is too low for the broker: raise it (ulimit -n) to at least %" PRIu64,
		         nofile, fixed + 2 * SL_LIMITS_FILES_FDS_MIN);
		return -EMFILE;
	}
	/* Partition files get what connections leave, and at least a quarter of what is not reserved. */
	uint64_t shared = nofile - fixed;
	uint64_t files_min = shared / 4 > SL_LIMITS_FILES_FDS_MIN ? shared / 4 : SL_LIMITS_FILES_FDS_MIN;
	if (l->connections_max > shared - files_min) {
		snprintf(warning, warning_cap,
		         "--connections-max %u does not fit the descriptor limit %" PRIu64 ": serving at most %" PRIu64
		         " connections (raise ulimit -n)",
		         l->connections_max, nofile, shared - files_min);
		l->connections_max = (uint32_t)(shared - files_min);
	}
	l->files_fds_max = shared - l->connections_max;
	return 0;
}

void sl_limits_charge(struct sl_limits *l, uint64_t bytes)
{
	l->memory_used += bytes;
	if (l->memory_used > l->memory_used_peak)
		l->memory_used_peak = l->memory_used;
}

void sl_limits_release(struct sl_limits *l, uint64_t bytes)
{
	SL_ASSERT(l->memory_used >= bytes);
	l->memory_used -= bytes;
	l->memory_released = 1;
}

int sl_limits_memory_admit(const struct sl_limits *l, uint64_t conn_bytes, uint64_t bytes)
{
	if (l->memory_used + bytes <= l->memory_max)
		return 1;
	return conn_bytes + bytes <= SL_LIMITS_CONN_FLOOR_BYTES;
}

uint64_t sl_limits_response_bytes_max(const struct sl_limits *l)
{
	uint64_t left = l->memory_used < l->memory_max ? l->memory_max - l->memory_used : 0;
	return left > SL_LIMITS_CONN_FLOOR_BYTES ? left : SL_LIMITS_CONN_FLOOR_BYTES;
}

static void waiter_link(struct sl_limits *l, struct sl_limits_waiter *w)
{
	w->waiting = 1;
	w->next = NULL;
	w->prev = l->wait_tail;
	if (l->wait_tail)
		l->wait_tail->next = w;
	else
		l->wait_head = w;
	l->wait_tail = w;
	l->memory_waiting++;
}

void sl_limits_wait(struct sl_limits *l, struct sl_limits_waiter *w, uint64_t held_bytes, uint64_t need_bytes)
{
	w->held_bytes = held_bytes;
	w->need_bytes = need_bytes;
	if (w->waiting)
		return;
	SL_ASSERT(w->resume_cb != NULL);
	waiter_link(l, w);
	l->memory_waits++;
}

void sl_limits_unwait(struct sl_limits *l, struct sl_limits_waiter *w)
{
	if (!w->waiting)
		return;
	if (w->prev)
		w->prev->next = w->next;
	else
		l->wait_head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		l->wait_tail = w->prev;
	w->prev = w->next = NULL;
	w->waiting = 0;
	SL_ASSERT(l->memory_waiting > 0);
	l->memory_waiting--;
}

void sl_limits_resume_waiters(struct sl_limits *l)
{
	if (!l->memory_released)
		return;
	l->memory_released = 0;
	/* One pass, bounded by the waiters there were: one not admitted yet goes to the tail. Each step takes the
	 * head, so a callback that unwaits others (closing their connections) cannot derail it. */
	uint32_t n = l->memory_waiting;
	for (uint32_t i = 0; i < n && l->wait_head != NULL; i++) {
		struct sl_limits_waiter *w = l->wait_head;
		sl_limits_unwait(l, w);
		if (sl_limits_memory_admit(l, w->held_bytes, w->need_bytes))
			w->resume_cb(w);
		else
			waiter_link(l, w);
	}
}

int sl_limits_connections_full(const struct sl_limits *l)
{
	return l->connections_open >= l->connections_max;
}

void sl_limits_connection_opened(struct sl_limits *l)
{
	l->connections_open++;
}

void sl_limits_connection_closed(struct sl_limits *l)
{
	SL_ASSERT(l->connections_open > 0);
	l->connections_open--;
}

size_t sl_limits_metrics_text(const struct sl_limits *l, const struct sl_files *files, char *buf, size_t cap)
{
	static const char *const names[] = {
	        "gauge memory_bytes",
	        "gauge memory_max_bytes",
	        "gauge memory_peak_bytes",
	        "gauge connections_waiting_memory",
	        "counter memory_waits_total",
	        "counter connections_evicted_total",
	        "counter connections_timed_out_total",
	        "counter metrics_connections_refused_total",
	        "counter metrics_connections_timed_out_total",
	        "gauge descriptors_max",
	        "gauge partition_files_open",
	        "gauge partition_files_max",
	        "counter partition_files_closed_total",
	        "counter partition_files_over_budget_total",
	};
	const uint64_t values[] = {
	        l->memory_used,           l->memory_max,
	        l->memory_used_peak,      l->memory_waiting,
	        l->memory_waits,          l->connections_evicted,
	        l->connections_timed_out, l->metrics_refused,
	        l->metrics_timed_out,     l->nofile,
	        files->fds_open,          files->fds_max,
	        files->closed_count,      files->over_budget_count,
	};
	_Static_assert(sizeof(names) / sizeof(names[0]) == sizeof(values) / sizeof(values[0]), "one value per name");
	size_t len = 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && len + 1 < cap; i++) {
		const char *name = strchr(names[i], ' ') + 1;
		int type_len = (int)(name - 1 - names[i]);
		int n = snprintf(buf + len, cap - len, "# TYPE synclog_%s %.*s\nsynclog_%s %" PRIu64 "\n", name,
		                 type_len, names[i], name, values[i]);
		if (n < 0)
			break;
		len += (size_t)n < cap - len ? (size_t)n : cap - len - 1;
	}
	return len;
}
