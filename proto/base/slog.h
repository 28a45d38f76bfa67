/* Structured event logs: one line per event, with time, level, an event name and typed fields, as text
 *   2026-12-06T07:19:07.123Z INFO group_state group=billing topic=customers partition=3 state=stalled lag=1200
 * or as one JSON object per line
 *   {"ts":"2026-12-06T07:19:07.123Z","level":"info","event":"group_state","group":"billing",...,"lag":1200}
 * (synclogd --log-format text|json --log-level error|warn|info|debug). A field value is never split over lines:
 * text escapes spaces, quotes and control bytes by quoting the value; JSON escapes as JSON does.
 *
 * Use: struct sl_slog *e = sl_slog_begin(SL_SLOG_WARN, "partition_unavailable"); then sl_slog_str / _int /
 * _uint calls, then sl_slog_end(e). Every call accepts NULL (an event below the level), so callers need no check.
 * Which thread may call: any; an event is written with one write(2) of its whole line, so lines of two threads
 * never interleave. Bounded: a line is at most SL_SLOG_LINE_BYTES; fields past that are dropped and the line
 * ends with a "truncated" marker. */
#ifndef SL_BASE_SLOG_H
#define SL_BASE_SLOG_H

#include <stddef.h>
#include <stdint.h>

enum sl_slog_level { SL_SLOG_ERROR = 0, SL_SLOG_WARN = 1, SL_SLOG_INFO = 2, SL_SLOG_DEBUG = 3 };
enum sl_slog_format { SL_SLOG_TEXT = 0, SL_SLOG_JSON = 1 };

/* Long enough for any event with a few topic and group names (200 bytes each) and an error message. */
#define SL_SLOG_LINE_BYTES 4096

/* Where and what to log: fd (default 2, stderr), the lowest level written (default info), the format (default
 * text). Call once at start, before other threads log. */
void sl_slog_configure(int fd, enum sl_slog_level level, enum sl_slog_format format);
/* "error", "warn", "info", "debug" / "text", "json" -> value; -EINVAL for anything else. */
int sl_slog_level_parse(const char *s, enum sl_slog_level *out);
int sl_slog_format_parse(const char *s, enum sl_slog_format *out);
/* 1 when events of this level are written. */
int sl_slog_enabled(enum sl_slog_level level);

struct sl_slog;
/* Start an event; NULL when its level is filtered out. The event is thread-local: finish it before the next. */
struct sl_slog *sl_slog_begin(enum sl_slog_level level, const char *event);
void sl_slog_str(struct sl_slog *e, const char *key, const char *value);
void sl_slog_int(struct sl_slog *e, const char *key, int64_t value);
void sl_slog_uint(struct sl_slog *e, const char *key, uint64_t value);
/* A field whose value is printf-formatted (an error message, an address). */
void sl_slog_fmt(struct sl_slog *e, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Write the line. */
void sl_slog_end(struct sl_slog *e);

/* v as a JSON string, quotes included, into out (NUL-terminated): the one JSON string writer of the event logs and
 * the audit log (broker/audit.h). Returns its length, or 0 when it does not fit in cap bytes. */
size_t sl_json_quote(const char *v, char *out, size_t cap);

/* One-line shorthand for an event with a single "msg" field. */
void sl_slog_msg(enum sl_slog_level level, const char *event, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#endif
