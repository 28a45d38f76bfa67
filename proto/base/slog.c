/* Structured event logs; see slog.h for the two line formats and the rules. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto/base/slog.h"

static int log_fd = 2;
static enum sl_slog_level log_level = SL_SLOG_INFO;
static enum sl_slog_format log_format = SL_SLOG_TEXT;

static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const char *const level_upper[] = {"ERROR", "WARN", "INFO", "DEBUG"};

struct sl_slog {
	char line[SL_SLOG_LINE_BYTES];
	size_t len;
	int truncated;
};

static _Thread_local struct sl_slog current;

void sl_slog_configure(int fd, enum sl_slog_level level, enum sl_slog_format format)
{
	log_fd = fd;
	log_level = level;
	log_format = format;
}

int sl_slog_level_parse(const char *s, enum sl_slog_level *out)
{
	for (int i = 0; i < 4; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum sl_slog_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

int sl_slog_format_parse(const char *s, enum sl_slog_format *out)
{
	if (strcmp(s, "text") == 0)
		*out = SL_SLOG_TEXT;
	else if (strcmp(s, "json") == 0)
		*out = SL_SLOG_JSON;
	else
		return -EINVAL;
	return 0;
}

int sl_slog_enabled(enum sl_slog_level level)
{
	return level <= log_level;
}

/* Room kept at the end of the line for the closing "}\n" or " truncated\n". */
#define TAIL_BYTES 16

static void put_raw(struct sl_slog *e, const char *s, size_t n)
{
	if (e->truncated)
		return;
	if (e->len + n > sizeof(e->line) - TAIL_BYTES) {
		e->truncated = 1;
		return;
	}
	memcpy(e->line + e->len, s, n);
	e->len += n;
}

static void put_str(struct sl_slog *e, const char *s)
{
	put_raw(e, s, strlen(s));
}

/* A value as text: bare when it is one plain word, else quoted with \" \\ \n \t and \xNN escapes. */
static void put_text_value(struct sl_slog *e, const char *v)
{
	int plain = v[0] != '\0';
	for (const unsigned char *p = (const unsigned char *)v; *p && plain; p++)
		plain = *p > ' ' && *p != '"' && *p != '\\' && *p != '=' && *p < 0x7f;
	if (plain) {
		put_str(e, v);
		return;
	}
	put_raw(e, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		char esc[8];
		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			put_raw(e, esc, 2);
		} else if (*p == '\n') {
			put_raw(e, "\\n", 2);
		} else if (*p == '\t') {
			put_raw(e, "\\t", 2);
		} else if (*p < ' ' || *p == 0x7f) {
			snprintf(esc, sizeof(esc), "\\x%02x", *p);
			put_str(e, esc);
		} else {
			put_raw(e, (const char *)p, 1);
		}
	}
	put_raw(e, "\"", 1);
}

size_t sl_json_quote(const char *v, char *out, size_t cap)
{
	size_t n = 0;
#define PUT(c)                        \
	do {                          \
		if (n + 1 >= cap)     \
			return 0;     \
		out[n++] = (char)(c); \
	} while (0)
	PUT('"');
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p == '"' || *p == '\\') {
			PUT('\\');
			PUT(*p);
		} else if (*p < ' ') {
			char esc[8];
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
			for (int i = 0; esc[i]; i++)
				PUT(esc[i]);
		} else {
			PUT(*p);
		}
	}
	PUT('"');
#undef PUT
	out[n] = '\0';
	return n;
}

static void put_json_string(struct sl_slog *e, const char *v)
{
	if (e->truncated)
		return;
	size_t n = sl_json_quote(v, e->line + e->len, sizeof(e->line) - TAIL_BYTES - e->len);
	if (n == 0)
		e->truncated = 1;
	else
		e->len += n;
}

struct sl_slog *sl_slog_begin(enum sl_slog_level level, const char *event)
{
	if (!sl_slog_enabled(level))
		return NULL;
	struct sl_slog *e = &current;
	e->len = 0;
	e->truncated = 0;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char when[40];
	snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
	if (log_format == SL_SLOG_JSON) {
		put_str(e, "{\"ts\":\"");
		put_str(e, when);
		put_str(e, "\",\"level\":\"");
		put_str(e, level_names[level]);
		put_str(e, "\",\"event\":");
		put_json_string(e, event);
	} else {
		put_str(e, when);
		put_raw(e, " ", 1);
		put_str(e, level_upper[level]);
		put_raw(e, " ", 1);
		put_str(e, event);
	}
	return e;
}

static void put_key(struct sl_slog *e, const char *key)
{
	if (log_format == SL_SLOG_JSON) {
		put_raw(e, ",", 1);
		put_json_string(e, key);
		put_raw(e, ":", 1);
	} else {
		put_raw(e, " ", 1);
		put_str(e, key);
		put_raw(e, "=", 1);
	}
}

/* A field is written whole or not at all: a field cut in the middle would leave an open quote. */
static void field_done(struct sl_slog *e, size_t mark)
{
	if (e->truncated)
		e->len = mark;
}

void sl_slog_str(struct sl_slog *e, const char *key, const char *value)
{
	if (e == NULL)
		return;
	size_t mark = e->len;
	put_key(e, key);
	if (value == NULL)
		put_str(e, log_format == SL_SLOG_JSON ? "null" : "-");
	else if (log_format == SL_SLOG_JSON)
		put_json_string(e, value);
	else
		put_text_value(e, value);
	field_done(e, mark);
}

void sl_slog_int(struct sl_slog *e, const char *key, int64_t value)
{
	if (e == NULL)
		return;
	char buf[24];
	snprintf(buf, sizeof(buf), "%lld", (long long)value);
	size_t mark = e->len;
	put_key(e, key);
	put_str(e, buf);
	field_done(e, mark);
}

void sl_slog_uint(struct sl_slog *e, const char *key, uint64_t value)
{
	if (e == NULL)
		return;
	char buf[24];
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)value);
	size_t mark = e->len;
	put_key(e, key);
	put_str(e, buf);
	field_done(e, mark);
}

static void vfmt(struct sl_slog *e, const char *key, const char *fmt, va_list ap)
{
	char buf[1024];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	sl_slog_str(e, key, buf);
}

void sl_slog_fmt(struct sl_slog *e, const char *key, const char *fmt, ...)
{
	if (e == NULL)
		return;
	va_list ap;
	va_start(ap, fmt);
	vfmt(e, key, fmt, ap);
	va_end(ap);
}

void sl_slog_end(struct sl_slog *e)
{
	if (e == NULL)
		return;
	int truncated = e->truncated;
	e->truncated = 0; /* the tail always fits: TAIL_BYTES were kept */
	if (truncated)
		put_str(e, log_format == SL_SLOG_JSON ? ",\"truncated\":true" : " truncated");
	if (log_format == SL_SLOG_JSON)
		put_raw(e, "}", 1);
	put_raw(e, "\n", 1);
	const char *p = e->line;
	size_t left = e->len;
	while (left > 0) {
		ssize_t n = write(log_fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* nowhere to report a failed log write */
		p += n;
		left -= (size_t)n;
	}
}

void sl_slog_msg(enum sl_slog_level level, const char *event, const char *fmt, ...)
{
	struct sl_slog *e = sl_slog_begin(level, event);
	if (e == NULL)
		return;
	va_list ap;
	va_start(ap, fmt);
	vfmt(e, "msg", fmt, ap);
	va_end(ap);
	sl_slog_end(e);
}
