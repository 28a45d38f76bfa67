/* The audit log: lines built on the loop, appended and fdatasynced on the thread pool; see audit.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "broker/audit.h"
#include "proto/base/assert.h"
#include "proto/base/fs.h"
#include "proto/base/slog.h"
#include "proto/users.h"

/* One line: the fields are names of at most 200 characters, an address and an error message of at most 512. */
#define LINE_BYTES_MAX 2048

static const char *const actions[] = {
        "authenticate", "topic_create", "topic_delete", "topic_alter", "topic_compact", "offsets_reset",
        "group_delete", "user_add",     "user_delete",  "acl_add",     "acl_remove",
};
_Static_assert(sizeof(actions) / sizeof(actions[0]) == SL_AUDIT_ACTION_COUNT, "a name per action");
static const char *const results[] = {"ok", "denied", "failed"};
_Static_assert(sizeof(results) / sizeof(results[0]) == SL_AUDIT_RESULT_COUNT, "a name per result");

struct sl_audit_job {
	uv_work_t work;
	struct sl_audit *audit;
	char *text;
	size_t len;
	int status;
};

const char *sl_audit_action_name(enum sl_audit_action a)
{
	return (unsigned)a < SL_AUDIT_ACTION_COUNT ? actions[a] : "unknown";
}

const char *sl_audit_result_name(enum sl_audit_result r)
{
	return (unsigned)r < SL_AUDIT_RESULT_COUNT ? results[r] : "unknown";
}

int sl_audit_open(struct sl_audit *a, struct uv_loop_s *loop, const char *data_dir, char *err, size_t err_cap)
{
	memset(a, 0, sizeof(*a));
	a->fd = -1;
	a->loop = loop;
	snprintf(a->path, sizeof(a->path), "%s/%s/%s", data_dir, SL_SECURITY_DIR, SL_AUDIT_FILE);
	int rc = sl_security_dir_make(data_dir);
	if (rc < 0) {
		snprintf(err, err_cap, "cannot create %s/%s: %s", data_dir, SL_SECURITY_DIR, strerror(-rc));
		return rc;
	}
	a->pending = malloc(SL_AUDIT_PENDING_BYTES_MAX);
	if (a->pending == NULL)
		return -ENOMEM;
	a->fd = open(a->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (a->fd < 0) {
		rc = -errno;
		snprintf(err, err_cap, "cannot open the audit log %s: %s", a->path, strerror(errno));
		free(a->pending);
		a->pending = NULL;
		return rc;
	}
	return 0;
}

/* Append everything, then make it durable. */
static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return fdatasync(fd) < 0 ? -errno : 0;
}

static void job_work_cb(uv_work_t *w)
{
	struct sl_audit_job *j = w->data;
	j->status = write_all(j->audit->fd, j->text, j->len);
}

static void job_start(struct sl_audit *a);

static void job_after_cb(uv_work_t *w, int status)
{
	struct sl_audit_job *j = w->data;
	struct sl_audit *a = j->audit;
	if (status < 0) /* canceled before it ran: write it now rather than lose it */
		job_work_cb(w);
	if (j->status < 0) {
		a->write_errors++;
		sl_slog_msg(SL_SLOG_ERROR, "audit_write_failed", "appending to %s failed: %s", a->path,
		            strerror(-j->status));
	}
	free(j->text);
	free(j);
	a->job = NULL;
	if (a->pending_len > 0)
		job_start(a);
}

static void job_start(struct sl_audit *a)
{
	if (a->job != NULL || a->pending_len == 0 || a->fd < 0)
		return;
	struct sl_audit_job *j = calloc(1, sizeof(*j));
	char *text = j ? malloc(a->pending_len) : NULL;
	if (text == NULL) {
		free(j);
		return; /* the lines stay pending; the next record or the busy check tries again */
	}
	memcpy(text, a->pending, a->pending_len);
	j->audit = a;
	j->text = text;
	j->len = a->pending_len;
	j->work.data = j;
	a->pending_len = 0;
	a->job = j;
	int rc = uv_queue_work(a->loop, &j->work, job_work_cb, job_after_cb);
	SL_ASSERT(rc == 0);
}

static size_t put_field(char *line, size_t at, const char *key, const char *value)
{
	if (at == 0 || at >= LINE_BYTES_MAX)
		return 0;
	int n = snprintf(line + at, LINE_BYTES_MAX - at, ",\"%s\":", key);
	if (n < 0 || (size_t)n >= LINE_BYTES_MAX - at)
		return 0;
	at += (size_t)n;
	size_t q = sl_json_quote(value, line + at, LINE_BYTES_MAX - at);
	return q == 0 ? 0 : at + q;
}

/* The line's opening: {"ts":"2026-05-01T12:00:00.123Z" */
static int line_open(char *line)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	return snprintf(line, LINE_BYTES_MAX, "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\"", tm.tm_year + 1900,
	                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

static size_t line_build(char *line, enum sl_audit_action action, enum sl_audit_result result, const char *principal,
                         const char *address, const char *target, const char *detail)
{
	int n = line_open(line);
	size_t at = (size_t)n;
	at = put_field(line, at, "principal", principal ? principal : "");
	at = put_field(line, at, "address", address ? address : "");
	at = put_field(line, at, "action", sl_audit_action_name(action));
	at = put_field(line, at, "target", target ? target : "");
	at = put_field(line, at, "result", sl_audit_result_name(result));
	if (detail != NULL && detail[0] != '\0') {
		size_t with = put_field(line, at, "detail", detail);
		if (with != 0)
			at = with; /* a detail too long for the line is left out, not the line */
	}
	if (at == 0 || at + 2 >= LINE_BYTES_MAX)
		return 0;
	line[at++] = '}';
	line[at++] = '\n';
	return at;
}

static int pending_put(struct sl_audit *a, const char *line, size_t len)
{
	if (a->pending == NULL || a->pending_len + len > SL_AUDIT_PENDING_BYTES_MAX)
		return -ENOSPC;
	memcpy(a->pending + a->pending_len, line, len);
	a->pending_len += len;
	return 0;
}

void sl_audit_record(struct sl_audit *a, enum sl_audit_action action, enum sl_audit_result result,
                     const char *principal, const char *address, const char *target, const char *detail)
{
	char line[LINE_BYTES_MAX];
	SL_ASSERT((unsigned)action < SL_AUDIT_ACTION_COUNT && (unsigned)result < SL_AUDIT_RESULT_COUNT);
	a->events[action][result]++;
	if (a->dropped_unreported > 0) {
		int n = line_open(line);
		n += snprintf(line + n, sizeof(line) - (size_t)n,
		              ",\"action\":\"audit_dropped\",\"detail\":\"%llu lines dropped before this one\"}\n",
		              (unsigned long long)a->dropped_unreported);
		if (pending_put(a, line, (size_t)n) == 0)
			a->dropped_unreported = 0;
	}
	size_t len = line_build(line, action, result, principal, address, target, detail);
	if (len == 0 || pending_put(a, line, len) < 0) {
		a->dropped++;
		a->dropped_unreported++;
		return;
	}
	job_start(a);
}

int sl_audit_busy(struct sl_audit *a)
{
	if (a->job == NULL && a->pending_len > 0)
		job_start(a);
	return a->job != NULL || (a->pending_len > 0 && a->fd >= 0);
}

void sl_audit_close(struct sl_audit *a)
{
	SL_ASSERT(a->job == NULL);
	if (a->fd >= 0 && a->pending_len > 0 && write_all(a->fd, a->pending, a->pending_len) < 0)
		a->write_errors++;
	if (a->fd >= 0)
		close(a->fd);
	a->fd = -1;
	free(a->pending);
	a->pending = NULL;
	a->pending_len = 0;
}
